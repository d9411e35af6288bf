#include "tiny_jobs.h"

#include <string.h>

#include "golden.h"

void
tiny_job_init (TinyJob *job, DgJob kind, int width, int height)
{
  memset (job, 0, sizeof *job);
  job->source = dg_image_new (width, height, 3);
  job->mask = dg_image_new (width, height, 1);
  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++) {
      guint8 *p = job->source->pixels + (gsize) y * job->source->rowstride + 3 * x;
      p[0] = (guint8) (4 * x), p[1] = (guint8) (5 * y), p[2] = (guint8) (x ^ y);
      int dx = x - width / 2, dy = y - height / 2, r = MIN (width, height) / 3;
      job->mask->pixels[(gsize) y * job->mask->rowstride + x] = dx * dx + dy * dy < r * r ? 255 : 0;
    }
  job->images[0] = job->source;
  job->request = (DgRequest) DG_REQUEST_INIT;
  job->request.job = kind;
  job->request.prompt = kind == DG_JOB_GENERATE ? "a lighthouse" : "make it red";
  job->request.steps = 2;
  job->request.seed = 7;
  if (kind == DG_JOB_GENERATE) {
    job->request.width = width;
    job->request.height = height;
  } else {
    job->request.images = job->images;
    job->request.n_images = 1;
  }
  if (kind == DG_JOB_INPAINT)
    job->request.mask = job->mask;
}

void
tiny_job_clear (TinyJob *job)
{
  dg_image_free (job->source);
  dg_image_free (job->mask);
}

DgModel *
tiny_jobs_open_model (DgEngine *engine, DgPrecision precision, DgWeightFormat weights)
{
  g_autofree char *dir = golden_data_path ("tiny-deepgen");
  g_autoptr (GError) error = NULL;
  DgLoadOptions lo = { precision, weights };
  DgModel *m = dg_model_open (engine, dir, &lo, &error);
  g_assert_no_error (error);
  return m;
}

void
tiny_jobs_assert_same (const DgImage *a, const DgImage *b)
{
  g_assert_nonnull (a);
  g_assert_nonnull (b);
  g_assert_cmpint (a->width, ==, b->width);
  g_assert_cmpint (a->height, ==, b->height);
  g_assert_cmpint (a->channels, ==, b->channels);
  for (int y = 0; y < a->height; y++)
    g_assert_cmpmem (a->pixels + (gsize) y * a->rowstride, (gsize) a->width * a->channels,
                     b->pixels + (gsize) y * b->rowstride, (gsize) b->width * b->channels);
}
