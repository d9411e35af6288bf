/* A weight file changed on disk while a model is open (docs/RELIABILITY.md): rewritten in place
 * with the same size (no SIGBUS, other values), replaced by a rename, removed — between runs and
 * in the middle of one. Every stage maps its files anew, so such a run would silently use a
 * model other than the one opened, or a mix of two. Each case must end in DG_ERROR_IO naming the
 * file, with no image; the model opened again runs. On a copy of the tiny model. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "deepgen.h"
#include "deepgen_hooks.h"
#include "golden.h"
#include "tiny_jobs.h"
#include "vkc.h"

static DgEngine *engine;

static void
copy_tree (GFile *from, GFile *to)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_make_directory (to, NULL, &error));
  g_autoptr (GFileEnumerator) e = g_file_enumerate_children (from, "standard::name,standard::type",
                                                             G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, NULL, &error);
  g_assert_no_error (error);
  GFileInfo *info;
  while ((info = g_file_enumerator_next_file (e, NULL, &error))) {
    g_autoptr (GFile) a = g_file_get_child (from, g_file_info_get_name (info));
    g_autoptr (GFile) b = g_file_get_child (to, g_file_info_get_name (info));
    if (g_file_info_get_file_type (info) == G_FILE_TYPE_DIRECTORY)
      copy_tree (a, b);
    else
      g_assert_true (g_file_copy (a, b, G_FILE_COPY_NONE, NULL, NULL, NULL, &error));
    g_assert_no_error (error);
    g_object_unref (info);
  }
  g_assert_no_error (error);
}

static void
remove_tree (const char *path)
{
  g_autoptr (GDir) d = g_dir_open (path, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name (d))) {
    g_autofree char *p = g_build_filename (path, name, NULL);
    if (g_file_test (p, G_FILE_TEST_IS_DIR) && !g_file_test (p, G_FILE_TEST_IS_SYMLINK))
      remove_tree (p);
    else
      g_unlink (p);
  }
  g_rmdir (path);
}

/* A fresh copy of the tiny model; free with remove_tree. */
static char *
model_copy (void)
{
  g_autofree char *src = golden_data_path ("tiny-deepgen");
  g_autofree char *tmp = g_dir_make_tmp ("deepgen-files-changed-XXXXXX", NULL);
  g_assert_nonnull (tmp);
  char *dir = g_build_filename (tmp, "model", NULL);
  g_autoptr (GFile) a = g_file_new_for_path (src), b = g_file_new_for_path (dir);
  copy_tree (a, b);
  return dir;
}

/* File times on Linux advance by the kernel's clock tick (a few ms): a change within the tick of
 * dg_model_open would keep the times it saw. Real rewrites come seconds later; the test waits. */
static void
next_tick (void)
{
  g_usleep (50 * 1000);
}

/* Overwrites the last byte of @path in place with another value: same file, same size. */
static void
rewrite_in_place (const char *path)
{
  next_tick ();
  int fd = g_open (path, O_RDWR, 0);
  g_assert_cmpint (fd, >=, 0);
  off_t end = lseek (fd, 0, SEEK_END);
  guint8 b;
  g_assert_cmpint (pread (fd, &b, 1, end - 1), ==, 1);
  b ^= 0x01;
  g_assert_cmpint (pwrite (fd, &b, 1, end - 1), ==, 1);
  g_assert_cmpint (close (fd), ==, 0);
}

/* Replaces @path by a copy of itself (a new file renamed over it, as downloaders do). */
static void
replace_by_rename (const char *path)
{
  next_tick ();
  g_autofree char *data = NULL;
  gsize len;
  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  g_autofree char *tmp = g_strconcat (path, ".new", NULL);
  g_assert_true (g_file_set_contents (tmp, data, (gssize) len, NULL));
  g_assert_cmpint (g_rename (tmp, path), ==, 0);
}

static void
expect_refused (DgModel *m, TinyJob *job, const char *file, const char *what, DgProgressFunc progress, gpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DgImage) out = dg_run (m, &job->request, progress, data, NULL, &error);
  g_assert_null (out);
  g_assert_error (error, DG_ERROR, DG_ERROR_IO);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, file));
  g_assert_nonnull (strstr (error->message, what));
  g_clear_error (&error);
  g_assert_false (dg_model_check_files (m, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_IO);
}

/* The model opened again at @dir runs the job. */
static void
reopened_runs (const char *dir, TinyJob *job)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DgModel) m = dg_model_open (engine, dir, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (dg_model_check_files (m, &error));
  g_autoptr (DgImage) out = dg_run (m, &job->request, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (out);
}

static void
test_between_runs (void)
{
  g_autofree char *dir = model_copy ();
  TinyJob job;
  tiny_job_init (&job, DG_JOB_GENERATE, 64, 48);
  struct {
    const char *file; /* under dir */
    int how;          /* 0 rewritten in place, 1 replaced by a rename, 2 removed */
    const char *says;
  } cases[] = {
    { "transformer/diffusion_pytorch_model.safetensors", 0, "changed on disk" },
    { "connector/model.safetensors", 1, "changed on disk" },
    { "vlm/model-00002-of-00002.safetensors", 2, "is gone" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr (GError) error = NULL;
    g_autoptr (DgModel) m = dg_model_open (engine, dir, NULL, &error);
    g_assert_no_error (error);
    g_autoptr (DgImage) first = dg_run (m, &job.request, NULL, NULL, NULL, &error);
    g_assert_no_error (error);
    g_autofree char *path = g_build_filename (dir, cases[i].file, NULL);
    g_autofree char *saved = NULL;
    gsize saved_len = 0;
    if (cases[i].how == 2)
      g_assert_true (g_file_get_contents (path, &saved, &saved_len, NULL));
    if (cases[i].how == 0)
      rewrite_in_place (path);
    else if (cases[i].how == 1)
      replace_by_rename (path);
    else
      g_assert_cmpint (g_unlink (path), ==, 0);
    g_autofree char *base = g_path_get_basename (path);
    expect_refused (m, &job, base, cases[i].says, NULL, NULL);
    if (cases[i].how == 2)
      g_assert_true (g_file_set_contents (path, saved, (gssize) saved_len, NULL));
    reopened_runs (dir, &job);
  }
  tiny_job_clear (&job);
  g_autofree char *tmp = g_path_get_dirname (dir);
  remove_tree (tmp);
}

typedef struct {
  const char *path;
  gboolean done;
} MidRun;

static void
rewrite_at_first_step (DgStage stage, int step, int n_steps, gpointer user_data)
{
  (void) n_steps;
  MidRun *mid = user_data;
  if (stage == DG_STAGE_DENOISE && step == 1 && !mid->done) {
    rewrite_in_place (mid->path);
    mid->done = TRUE;
  }
}

static void
test_during_a_run (void)
{
  g_autofree char *dir = model_copy ();
  TinyJob job;
  tiny_job_init (&job, DG_JOB_EDIT, 64, 48);
  g_autoptr (GError) error = NULL;
  g_autoptr (DgModel) m = dg_model_open (engine, dir, NULL, &error);
  g_assert_no_error (error);
  /* the VAE's file changes while the DiT denoises: the decoder would read the new one */
  g_autofree char *path = g_build_filename (dir, "vae", "diffusion_pytorch_model.safetensors", NULL);
  MidRun mid = { path, FALSE };
  expect_refused (m, &job, "diffusion_pytorch_model.safetensors", "changed on disk", rewrite_at_first_step, &mid);
  g_assert_true (mid.done);
  reopened_runs (dir, &job);
  tiny_job_clear (&job);
  g_autofree char *tmp = g_path_get_dirname (dir);
  remove_tree (tmp);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_autoptr (GError) error = NULL;
  engine = dg_engine_new (NULL, &error);
  g_assert_no_error (error);
  g_test_add_func ("/files-changed/between-runs", test_between_runs);
  g_test_add_func ("/files-changed/during-a-run", test_during_a_run);
  int rc = g_test_run ();
  g_assert_cmpuint (vkc_device_validation_messages (dg_engine_device (engine)), ==, 0);
  dg_engine_free (engine);
  return rc;
}
