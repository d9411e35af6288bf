/* deepgen-studio saving where it cannot (docs/RELIABILITY.md): a read-only folder, a full disk
 * (a new file, and over an existing one) and a FIFO at the destination, through
 * studio_pixbuf_save. Each fails with the cause in the error, leaves no partial or temporary
 * file, and an existing file untouched. The folders are small tmpfs mounts in a private mount
 * namespace (as root, or in a user namespace); where neither can be had the test is skipped
 * (77). No display needed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "studio_save.h"

static char *work;

static gboolean
write_file (const char *path, const char *text)
{
  int fd = open (path, O_WRONLY);
  if (fd < 0)
    return FALSE;
  gboolean ok = write (fd, text, strlen (text)) == (ssize_t) strlen (text);
  return close (fd) == 0 && ok;
}

/* A private mount namespace: mounts made here vanish with the process. Before any thread. */
static gboolean
private_mounts (void)
{
  if (unshare (CLONE_NEWNS) != 0) {
    char map[64];
    uid_t uid = getuid ();
    gid_t gid = getgid ();
    if (unshare (CLONE_NEWUSER | CLONE_NEWNS) != 0)
      return FALSE;
    g_snprintf (map, sizeof map, "0 %u 1\n", (unsigned) uid);
    if (!write_file ("/proc/self/setgroups", "deny") || !write_file ("/proc/self/uid_map", map))
      return FALSE;
    g_snprintf (map, sizeof map, "0 %u 1\n", (unsigned) gid);
    if (!write_file ("/proc/self/gid_map", map))
      return FALSE;
  }
  return mount ("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
}

static char *
tmpfs (const char *name, const char *options)
{
  char *dir = g_build_filename (work, name, NULL);
  g_assert_cmpint (g_mkdir (dir, 0755), ==, 0);
  if (mount ("tmpfs", dir, "tmpfs", 0, options) != 0)
    g_error ("mount tmpfs %s (%s): %s", dir, options, g_strerror (errno));
  return dir;
}

static void
fill (const char *dir)
{
  g_autofree char *path = g_build_filename (dir, "fill", NULL);
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  g_assert_cmpint (fd, >=, 0);
  char block[4096] = { 0 };
  while (write (fd, block, sizeof block) > 0) {
  }
  close (fd);
}

static int
by_name (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* The names in @dir, sorted, joined by spaces. */
static char *
names (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  g_assert_nonnull (d);
  g_autoptr (GPtrArray) all = g_ptr_array_new_with_free_func (g_free);
  const char *n;
  while ((n = g_dir_read_name (d))) g_ptr_array_add (all, g_strdup (n));
  g_ptr_array_sort (all, by_name);
  g_ptr_array_add (all, NULL);
  return g_strjoinv (" ", (char **) all->pdata);
}

static GdkPixbuf *
picture (void)
{
  GdkPixbuf *pb = gdk_pixbuf_new (GDK_COLORSPACE_RGB, FALSE, 8, 96, 64);
  guchar *px = gdk_pixbuf_get_pixels (pb);
  int stride = gdk_pixbuf_get_rowstride (pb);
  for (int y = 0; y < 64; y++)
    for (int x = 0; x < 96; x++) {
      guchar *p = px + y * stride + 3 * x;
      p[0] = (guchar) (x * 37 ^ y * 11), p[1] = (guchar) (y * 4), p[2] = (guchar) (x * y);
    }
  return pb;
}

static void
test_control (void)
{
  g_autofree char *dir = tmpfs ("ok", "size=4m");
  g_autofree char *path = g_build_filename (dir, "out.png", NULL);
  g_autoptr (GdkPixbuf) pb = picture ();
  g_autoptr (GError) error = NULL;
  g_assert_true (studio_pixbuf_save (pb, path, "png", &error));
  g_assert_no_error (error);
  g_autoptr (GdkPixbuf) back = gdk_pixbuf_new_from_file (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (gdk_pixbuf_get_width (back), ==, 96);
  g_autofree char *left = names (dir);
  g_assert_cmpstr (left, ==, "out.png");
}

static void
test_read_only (void)
{
  g_autofree char *dir = tmpfs ("ro", "size=1m");
  g_assert_cmpint (mount ("none", dir, NULL, MS_REMOUNT | MS_RDONLY, NULL), ==, 0);
  g_autofree char *path = g_build_filename (dir, "out.png", NULL);
  g_autoptr (GdkPixbuf) pb = picture ();
  g_autoptr (GError) error = NULL;
  g_assert_false (studio_pixbuf_save (pb, path, "png", &error));
  g_assert_nonnull (error);
  g_test_message ("read-only: %s", error->message);
  g_assert_nonnull (strstr (error->message, g_strerror (EROFS)));
  g_assert_nonnull (strstr (error->message, "out.png"));
  g_autofree char *left = names (dir);
  g_assert_cmpstr (left, ==, "");
}

static void
test_full (void)
{
  g_autofree char *dir = tmpfs ("full", "size=256k");
  fill (dir);
  g_autofree char *path = g_build_filename (dir, "out.png", NULL);
  g_autoptr (GdkPixbuf) pb = picture ();
  for (guint i = 0; i < 2; i++) { /* PNG, then JPEG: every saver goes the same way */
    g_autoptr (GError) error = NULL;
    g_assert_false (studio_pixbuf_save (pb, path, i ? "jpeg" : "png", &error));
    g_assert_nonnull (error);
    g_test_message ("full disk: %s", error->message);
    g_assert_nonnull (strstr (error->message, g_strerror (ENOSPC)));
    g_assert_nonnull (strstr (error->message, "out.png"));
    g_autofree char *left = names (dir);
    g_assert_cmpstr (left, ==, "fill");
  }
}

static void
test_full_over_existing (void)
{
  g_autofree char *dir = tmpfs ("full2", "size=256k");
  g_autofree char *path = g_build_filename (dir, "out.png", NULL);
  g_assert_true (g_file_set_contents (path, "the previous image", -1, NULL));
  fill (dir);
  g_autoptr (GdkPixbuf) pb = picture ();
  g_autoptr (GError) error = NULL;
  g_assert_false (studio_pixbuf_save (pb, path, "png", &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, g_strerror (ENOSPC)));
  g_autofree char *text = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  g_assert_cmpstr (text, ==, "the previous image");
  g_autofree char *left = names (dir);
  g_assert_cmpstr (left, ==, "fill out.png");
}

static void
test_fifo (void)
{
  g_autofree char *dir = g_build_filename (work, "plain", NULL);
  g_assert_cmpint (g_mkdir (dir, 0755), ==, 0);
  g_autofree char *path = g_build_filename (dir, "out.png", NULL);
  g_assert_cmpint (mkfifo (path, 0644), ==, 0);
  g_autoptr (GdkPixbuf) pb = picture ();
  g_autoptr (GError) error = NULL;
  g_assert_false (studio_pixbuf_save (pb, path, "png", &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "not a regular file"));
  GStatBuf st;
  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_true (S_ISFIFO (st.st_mode));
  g_unlink (path);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  if (!private_mounts ()) {
    printf ("SKIP: no private mount namespace here (needs root or user namespaces) to mount a full or read-only "
            "tmpfs\n");
    return 77;
  }
  g_test_init (&argc, &argv, NULL);
  work = g_dir_make_tmp ("deepgen-studio-save-XXXXXX", NULL);
  g_assert_nonnull (work);
  g_test_add_func ("/studio-save/control", test_control);
  g_test_add_func ("/studio-save/read-only", test_read_only);
  g_test_add_func ("/studio-save/full-disk", test_full);
  g_test_add_func ("/studio-save/full-disk-over-a-file", test_full_over_existing);
  g_test_add_func ("/studio-save/fifo", test_fifo);
  int rc = g_test_run ();
  /* the tmpfs mounts go with the namespace; the folder under them is removed here */
  const char *subs[] = { "ok", "ro", "full", "full2" };
  for (guint i = 0; i < G_N_ELEMENTS (subs); i++) {
    g_autofree char *d = g_build_filename (work, subs[i], NULL);
    umount2 (d, MNT_DETACH);
    g_rmdir (d);
  }
  g_rmdir (work);
  return rc;
}
