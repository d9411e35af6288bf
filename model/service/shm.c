/* Pixels through shared memory (protocol.h, DESIGN.md §9): the sender writes an image into a
 * memfd and seals it; the receiver checks the seals and maps it read-only, so the bytes are never
 * copied through the socket and cannot change under the reader. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "protocol.h"

#define REQUIRED_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

int
dg_svc_memfd_from_image (const DgImage *img, const char *name, GError **error)
{
  const gsize row = (gsize) img->width * (gsize) img->channels;
  const gsize size = row * (gsize) img->height;
  int fd = memfd_create (name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) {
    g_set_error (error, DG_ERROR, DG_ERROR_IO, "memfd_create: %s", g_strerror (errno));
    return -1;
  }
  guint8 *map = MAP_FAILED;
  if (ftruncate (fd, (off_t) MAX (size, 1)) != 0 ||
      (map = mmap (NULL, MAX (size, 1), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED) {
    int err = errno;
    close (fd);
    g_set_error (error, DG_ERROR, err == ENOMEM || err == ENOSPC ? DG_ERROR_OOM : DG_ERROR_IO,
                 "shared memory for a %d×%d image: %s", img->width, img->height, g_strerror (err));
    return -1;
  }
  for (int y = 0; y < img->height; y++)
    memcpy (map + (gsize) y * row, img->pixels + (gsize) y * (gsize) img->rowstride, row);
  munmap (map, MAX (size, 1));
  /* F_SEAL_WRITE needs the writable mapping gone, hence after munmap. */
  if (fcntl (fd, F_ADD_SEALS, REQUIRED_SEALS | F_SEAL_SEAL) != 0) {
    int err = errno;
    close (fd);
    g_set_error (error, DG_ERROR, DG_ERROR_IO, "sealing shared memory: %s", g_strerror (err));
    return -1;
  }
  return fd;
}

typedef struct {
  DgImage image;
  void *map;
  gsize map_size;
} MappedImage;

DgImage *
dg_svc_image_map (int fd, const DgSvcImageDesc *d, gboolean mask, GError **error)
{
  if (mask ? d->channels != 1 : d->channels != 3 && d->channels != 4) {
    g_set_error_literal (error, DG_ERROR, DG_ERROR_FORMAT, "malformed service message: bad channel count");
    return NULL;
  }
  int seals = fcntl (fd, F_GET_SEALS);
  if (seals < 0 || (seals & REQUIRED_SEALS) != REQUIRED_SEALS) {
    g_set_error_literal (error, DG_ERROR, DG_ERROR_FORMAT,
                         "malformed service message: image memory is not a sealed memfd");
    return NULL;
  }
  struct stat st;
  const guint64 need = (guint64) d->rowstride * (guint64) (d->height - 1) + (guint64) d->width * d->channels;
  if (fstat (fd, &st) != 0 || (guint64) st.st_size < need) {
    g_set_error_literal (error, DG_ERROR, DG_ERROR_FORMAT,
                         "malformed service message: image memory smaller than the image");
    return NULL;
  }
  void *map = mmap (NULL, (gsize) st.st_size, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) {
    g_set_error (error, DG_ERROR, DG_ERROR_OOM, "mapping a %d×%d image: %s", d->width, d->height, g_strerror (errno));
    return NULL;
  }
  MappedImage *m = g_new0 (MappedImage, 1);
  m->image = (DgImage) { d->width, d->height, d->channels, d->rowstride, map };
  m->map = map;
  m->map_size = (gsize) st.st_size;
  return &m->image;
}

void
dg_svc_image_unmap (DgImage *img)
{
  if (!img)
    return;
  MappedImage *m = (MappedImage *) img; /* image is the first member */
  munmap (m->map, m->map_size);
  g_free (m);
}
