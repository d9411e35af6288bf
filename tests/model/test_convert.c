/* `deepgen convert` (model/io/convert.h) on the tiny model, converted once into a temporary folder:
 *  - the converted folder is complete, opens, and its files are smaller; each component's q8_0
 *    tensors are exactly the Linear weights the memory plan counts as quantizable (the shared
 *    rule of plan.h), and the other tensors are stored as they were;
 *  - the DiT and the connector loaded from it compute exactly what the originals compute with
 *    load-time q8_0 (bf16 mode), even when asked for the released format: their GPU weights
 *    are the same bits;
 *  - a whole run gives the very image of a run on the original folder with DG_WEIGHTS_Q8_0,
 *    whatever format the converted folder is opened with, and the memory plan equals the pools;
 *  - the converter refuses a converted source, a non-empty destination and an incomplete source,
 *    and leaves nothing behind. */
#include <string.h>

#include <glib/gstdio.h>

#include "connector.h"
#include "convert.h"
#include "deepgen.h"
#include "dg_error.h"
#include "dit.h"
#include "gguf.h"
#include "golden.h"
#include "deepgen_hooks.h"
#include "plan.h"
#include "safetensors.h"

static VkcDevice *dev;
static DgEngine *engine;
static char *tiny, *tmp_root, *converted;

static guint64
file_size (const char *path)
{
  GStatBuf sb;
  g_assert_cmpint (g_stat (path, &sb), ==, 0);
  return (guint64) sb.st_size;
}

static void
rmtree (const char *path)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK)) {
    g_autoptr (GDir) d = g_dir_open (path, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name (d))) {
      g_autofree char *p = g_build_filename (path, name, NULL);
      rmtree (p);
    }
    g_rmdir (path);
  } else {
    g_unlink (path);
  }
}

static gboolean
dir_is_empty (const char *path)
{
  g_autoptr (GDir) d = g_dir_open (path, 0, NULL);
  return d && g_dir_read_name (d) == NULL;
}

/* ---- the folder --------------------------------------------------------------------------- */

static guint64
q8_elements (const DgSafetensors *st)
{
  guint64 n = 0;
  for (guint i = 0; i < dg_safetensors_n_tensors (st); i++)
    if (dg_safetensors_tensor (st, i)->dtype == DG_DTYPE_Q8_0)
      n += (guint64) dg_safetensors_tensor (st, i)->n_elements;
  return n;
}

static void
test_folder (void)
{
  g_autofree char *missing = dg_model_folder_missing (converted);
  g_assert_null (missing);
  DgPlanModel pm;
  g_assert_true (dg_plan_model_load (&pm, tiny, NULL));
  DgPlanModel pm_conv;
  g_assert_true (dg_plan_model_load (&pm_conv, converted, NULL));
  g_assert_cmpuint (pm_conv.n_queries, ==, pm.n_queries); /* read from connector/model.gguf */

  static const struct {
    const char *folder;
    DgComponent parts[2];
    guint n_parts;
  } comps[] = {
    { "vlm", { DG_COMPONENT_LLM, DG_COMPONENT_VIT }, 2 },
    { "connector", { DG_COMPONENT_CONNECTOR }, 1 },
    { "transformer", { DG_COMPONENT_DIT }, 1 },
  };
  for (guint c = 0; c < G_N_ELEMENTS (comps); c++) {
    g_autofree char *odir = g_build_filename (tiny, comps[c].folder, NULL);
    g_autofree char *cdir = g_build_filename (converted, comps[c].folder, NULL);
    g_autofree char *gguf = g_build_filename (cdir, DG_GGUF_FILE_NAME, NULL);
    g_assert_true (g_file_test (gguf, G_FILE_TEST_IS_REGULAR));
    g_autoptr (DgSafetensors) orig = dg_safetensors_open (odir, NULL);
    g_autoptr (GError) error = NULL;
    g_autoptr (DgSafetensors) conv = dg_safetensors_open (cdir, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (dg_safetensors_metadata (conv, "general.architecture"), ==, "deepgen");
    g_assert_cmpstr (dg_safetensors_metadata (conv, DG_GGUF_KEY_COMPONENT), ==, comps[c].folder);
    g_assert_cmpstr (dg_safetensors_metadata (conv, DG_GGUF_KEY_WEIGHTS), ==, "q8_0");

    /* the same tensors; the q8_0 ones are exactly what the plan quantizes */
    g_assert_cmpuint (dg_safetensors_n_tensors (conv), ==, dg_safetensors_n_tensors (orig));
    guint64 quantizable = 0;
    for (guint k = 0; k < comps[c].n_parts; k++) {
      DgComponentSize size;
      dg_plan_component_size (&pm, comps[c].parts[k], &size);
      quantizable += size.quantizable;
    }
    g_test_message ("%s: %" G_GUINT64_FORMAT " q8_0 weights, the plan quantizes %" G_GUINT64_FORMAT, comps[c].folder,
                    q8_elements (conv), quantizable);
    g_assert_cmpuint (q8_elements (conv), ==, quantizable);
    g_assert_cmpuint (quantizable, >, 0);
    guint64 orig_bytes = 0;
    for (guint i = 0; i < dg_safetensors_n_tensors (orig); i++) {
      const DgTensorInfo *o = dg_safetensors_tensor (orig, i);
      const DgTensorInfo *t = dg_safetensors_find (conv, o->name);
      g_assert_nonnull (t);
      g_assert_cmpuint (t->ndim, ==, o->ndim);
      for (guint d = 0; d < o->ndim; d++) g_assert_cmpint (t->shape[d], ==, o->shape[d]);
      orig_bytes += o->nbytes;
      if (t->dtype == DG_DTYPE_Q8_0) {
        g_assert_true (dg_plan_tensor_quantizable (comps[c].folder, o->name, o->ndim, o->shape));
      } else {
        g_assert_false (dg_plan_tensor_quantizable (comps[c].folder, o->name, o->ndim, o->shape));
        g_assert_cmpint (t->dtype, ==, o->dtype);
        g_assert_cmpmem (t->data, t->nbytes, o->data, o->nbytes);
      }
    }
    g_assert_cmpuint (file_size (gguf), <, orig_bytes);
  }
  /* (d) the DiT's file against the original's */
  g_autofree char *ot = g_build_filename (tiny, "transformer", "diffusion_pytorch_model.safetensors", NULL);
  g_autofree char *ct = g_build_filename (converted, "transformer", DG_GGUF_FILE_NAME, NULL);
  g_test_message ("transformer: %" G_GUINT64_FORMAT " → %" G_GUINT64_FORMAT " bytes", file_size (ot), file_size (ct));
  g_assert_cmpuint (file_size (ct), <, file_size (ot));
  /* no safetensors weights left in the converted folders, the rest copied */
  g_autofree char *os = g_build_filename (converted, "transformer", "diffusion_pytorch_model.safetensors", NULL);
  g_autofree char *vi = g_build_filename (converted, "vlm", "model.safetensors.index.json", NULL);
  g_autofree char *vae = g_build_filename (converted, "vae", "diffusion_pytorch_model.safetensors", NULL);
  g_autofree char *tok = g_build_filename (converted, "tokenizer", "tokenizer.json", NULL);
  g_assert_false (g_file_test (os, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (vi, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (vae, G_FILE_TEST_IS_REGULAR));
  g_assert_true (g_file_test (tok, G_FILE_TEST_IS_REGULAR));
}

/* ---- the components compute the same --------------------------------------------------------- */

static void
fill (float *x, gsize n, guint seed)
{
  guint32 s = seed * 2654435761u + 1;
  for (gsize i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    x[i] = ((float) (s >> 8) / 16777216.0f - 0.5f) * 2.0f;
  }
}

static VkcTensor
upload_random (DgArena *arena, int ndim, const int64_t *shape, guint seed)
{
  gsize n = 1;
  for (int d = 0; d < ndim; d++) n *= (gsize) shape[d];
  g_autofree float *h = g_new (float, n);
  fill (h, n, seed);
  VkcTensor t;
  g_assert_true (dg_arena_upload (arena, &t, VKC_F32, ndim, shape, h));
  return t;
}

static float *
dit_output (const char *dir, DgWeightFormat weights)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DgDit) dit = dg_dit_load (dev, dir, DG_PRECISION_BF16, weights, &error);
  g_assert_no_error (error);
  const DgDitConfig *cfg = dg_dit_config (dit);
  g_autoptr (DgArena) arena = dg_arena_new (dev, "test");
  VkcTensor x = upload_random (arena, 4, (const int64_t[]) { 2, 8, 8, cfg->in_channels }, 1);
  float ts[2] = { 999.0f, 500.0f };
  VkcTensor t;
  g_assert_true (dg_arena_upload (arena, &t, VKC_F32, 1, (const int64_t[]) { 2 }, ts));
  VkcTensor ctx = upload_random (arena, 3, (const int64_t[]) { 2, 5, cfg->joint_attention_dim }, 2);
  VkcTensor pooled = upload_random (arena, 2, (const int64_t[]) { 2, cfg->pooled_projection_dim }, 3);
  VkcTensor v;
  g_assert_true (DG_ACT (arena, &v, 2, 8, 8, cfg->out_channels));
  DgDitInput in = { .latents = &x, .timestep = &t, .context = &ctx, .pooled = &pooled };
  g_autoptr (VkcCmd) cmd = vkc_cmd_begin (dev, &error);
  g_assert_true (dg_dit_forward (dit, cmd, arena, &in, &v, &error));
  g_assert_true (dg_arena_check (arena, &error));
  g_assert_true (vkc_cmd_submit_wait (cmd, &error));
  g_assert_no_error (error);
  return dg_tensor_download_f32 (dev, &v, NULL);
}

/* The DiT from the converted folder computes bit for bit what the original computes with
 * load-time q8_0: whatever format it is asked for, its Linear weights are the file's q8_0. */
static void
test_dit_same (void)
{
  g_autofree char *odir = g_build_filename (tiny, "transformer", NULL);
  g_autofree char *cdir = g_build_filename (converted, "transformer", NULL);
  DgDitConfig cfg;
  g_assert_true (dg_dit_config_load (odir, &cfg, NULL));
  const gsize n = (gsize) 2 * 8 * 8 * cfg.out_channels;
  g_autofree float *want = dit_output (odir, DG_WEIGHTS_Q8_0);
  g_autofree float *released = dit_output (odir, DG_WEIGHTS_RELEASED);
  g_assert_true (memcmp (want, released, n * sizeof (float)) != 0); /* q8_0 changes the output */
  for (int k = 0; k < 2; k++) {
    g_autofree float *got = dit_output (cdir, k ? DG_WEIGHTS_RELEASED : DG_WEIGHTS_Q8_0);
    g_assert_cmpmem (got, n * sizeof (float), want, n * sizeof (float));
  }
}

static void
connector_output (const char *dir, DgWeightFormat weights, float **pooled_out, float **seq_out, gsize *n_pooled,
                  gsize *n_seq)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (DgConnector) conn = dg_connector_load (dev, dir, DG_PRECISION_BF16, weights, &error);
  g_assert_no_error (error);
  g_autoptr (DgArena) arena = dg_arena_new (dev, "test");
  VkcTensor merged = upload_random (arena, 3, (const int64_t[]) { 2, 6, dg_connector_in_dim (conn) }, 7);
  VkcTensor pooled, seq;
  g_autoptr (VkcCmd) cmd = vkc_cmd_begin (dev, &error);
  dg_connector_forward (conn, cmd, arena, &merged, &pooled, &seq);
  g_assert_true (dg_arena_check (arena, &error));
  g_assert_true (vkc_cmd_submit_wait (cmd, &error));
  g_assert_no_error (error);
  *pooled_out = dg_tensor_download_f32 (dev, &pooled, NULL);
  *seq_out = dg_tensor_download_f32 (dev, &seq, NULL);
  *n_pooled = (gsize) vkc_tensor_numel (&pooled);
  *n_seq = (gsize) vkc_tensor_numel (&seq);
}

static void
test_connector_same (void)
{
  g_autofree char *odir = g_build_filename (tiny, "connector", NULL);
  g_autofree char *cdir = g_build_filename (converted, "connector", NULL);
  g_autofree float *wp = NULL, *ws = NULL, *gp = NULL, *gs = NULL;
  gsize np, ns, np2, ns2;
  connector_output (odir, DG_WEIGHTS_Q8_0, &wp, &ws, &np, &ns);
  connector_output (cdir, DG_WEIGHTS_RELEASED, &gp, &gs, &np2, &ns2);
  g_assert_cmpmem (gp, np2 * sizeof (float), wp, np * sizeof (float));
  g_assert_cmpmem (gs, ns2 * sizeof (float), ws, ns * sizeof (float));
}

/* ---- whole runs -------------------------------------------------------------------------------- */

static DgModel *
open_model (const char *dir, DgWeightFormat weights)
{
  DgLoadOptions lo = DG_LOAD_OPTIONS_INIT;
  lo.weights = weights;
  g_autoptr (GError) error = NULL;
  DgModel *m = dg_model_open (engine, dir, &lo, &error);
  g_assert_no_error (error);
  return m;
}

static DgImage *
test_image (int width, int height)
{
  DgImage *img = dg_image_new (width, height, 3);
  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++)
      for (int c = 0; c < 3; c++)
        img->pixels[(gsize) y * img->rowstride + x * 3 + c] = (guint8) ((x * (c + 1) + y * 3) & 255);
  return img;
}

static DgImage *
run (DgModel *m, gboolean edit, DgRunMemory *mem)
{
  g_autoptr (DgImage) ref = test_image (96, 128);
  const DgImage *refs[1] = { ref };
  DgRequest req = DG_REQUEST_INIT;
  req.job = edit ? DG_JOB_EDIT : DG_JOB_GENERATE;
  req.prompt = edit ? "make it blue" : "a red fox";
  req.width = req.height = 128;
  req.steps = 2;
  req.images = edit ? refs : NULL;
  req.n_images = edit ? 1 : 0;
  const DgRequest *rp[1] = { &req };
  DgRunHooks hooks = { .references_as_given = TRUE };
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) out = dg_run_batch_measured (m, rp, 1, &hooks, mem, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  return g_ptr_array_steal_index (out, 0);
}

static void
check_memory (const DgRunMemory *mem)
{
  g_assert_true (mem->planned);
  for (int s = 0; s < DG_PLAN_N_STAGES; s++) {
    const guint64 planned = mem->plan.stage[s].total, held = mem->stage_peaks[s];
    g_test_message ("%-10s planned %10" G_GUINT64_FORMAT "  held %10" G_GUINT64_FORMAT,
                    dg_plan_stage_name ((DgPlanStage) s), planned, held);
    if (s == DG_PLAN_VAE_ENCODE || s == DG_PLAN_DECODE) { /* GroupNorm scratch (test_pipeline_memory) */
      g_assert_cmpuint (held + (4u << 20), >=, planned);
      g_assert_cmpuint (planned + (4u << 20), >=, held);
    } else {
      g_assert_cmpuint (held, ==, planned);
    }
  }
}

static void
test_run_same (void)
{
  g_autoptr (DgModel) orig = open_model (tiny, DG_WEIGHTS_Q8_0);
  for (int edit = 0; edit < 2; edit++) {
    DgRunMemory mem;
    g_autoptr (DgImage) want = run (orig, edit, &mem);
    g_assert_cmpint (mem.plan.weights, ==, DG_WEIGHTS_Q8_0);
    static const DgWeightFormat asked[] = { DG_WEIGHTS_RELEASED, DG_WEIGHTS_AUTO, DG_WEIGHTS_Q8_0 };
    for (guint k = 0; k < G_N_ELEMENTS (asked); k++) {
      g_autoptr (DgModel) conv = open_model (converted, asked[k]);
      DgRunMemory cmem;
      g_autoptr (DgImage) got = run (conv, edit, &cmem);
      g_assert_cmpint (dg_model_last_run_weights (conv), ==, DG_WEIGHTS_Q8_0);
      g_assert_cmpint (cmem.plan.weights, ==, DG_WEIGHTS_Q8_0);
      check_memory (&cmem);
      g_assert_cmpint (got->width, ==, want->width);
      g_assert_cmpint (got->height, ==, want->height);
      for (int y = 0; y < want->height; y++)
        g_assert_cmpmem (got->pixels + (gsize) y * got->rowstride, want->width * 3,
                         want->pixels + (gsize) y * want->rowstride, want->width * 3);
      if (edit) /* one edit run per format is enough to show the plan and the pools agree */
        break;
    }
  }
}

/* ---- refusals ------------------------------------------------------------------------------- */

static void
test_refusals (void)
{
  g_autoptr (GError) error = NULL;
  /* a converted source */
  g_autofree char *again = g_build_filename (tmp_root, "again", NULL);
  g_assert_false (dg_convert_model (converted, again, NULL, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_assert_false (g_file_test (again, G_FILE_TEST_EXISTS));
  g_clear_error (&error);
  /* a non-empty destination is never touched */
  g_autofree char *full = g_build_filename (tmp_root, "full", NULL);
  g_assert_cmpint (g_mkdir (full, 0755), ==, 0);
  g_autofree char *keep = g_build_filename (full, "keep.txt", NULL);
  g_assert_true (g_file_set_contents (keep, "x", 1, NULL));
  g_assert_false (dg_convert_model (tiny, full, NULL, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT);
  g_assert_true (g_file_test (keep, G_FILE_TEST_IS_REGULAR));
  g_clear_error (&error);
  /* a destination inside the source */
  g_autofree char *inside = g_build_filename (converted, "sub", NULL);
  g_assert_false (dg_convert_model (converted, inside, NULL, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  /* an incomplete source */
  g_autofree char *partial = g_build_filename (tmp_root, "incomplete-src", NULL);
  g_assert_cmpint (g_mkdir (partial, 0755), ==, 0);
  g_autofree char *out = g_build_filename (tmp_root, "out", NULL);
  g_assert_false (dg_convert_model (partial, out, NULL, &error));
  g_assert_error (error, DG_ERROR, DG_ERROR_MISSING);
  g_assert_nonnull (strstr (error->message, "transformer"));
  g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
  g_clear_error (&error);
  /* nothing left behind: no .partial folders or files */
  g_autoptr (GDir) d = g_dir_open (tmp_root, 0, NULL);
  const char *name;
  while ((name = g_dir_read_name (d))) g_assert_null (strstr (name, "partial-"));
}

/* An empty destination folder is accepted and filled. */
static void
test_empty_destination (void)
{
  g_autofree char *empty = g_build_filename (tmp_root, "empty", NULL);
  g_assert_cmpint (g_mkdir (empty, 0755), ==, 0);
  g_assert_true (dir_is_empty (empty));
  g_autoptr (GError) error = NULL;
  g_assert_true (dg_convert_model (tiny, empty, NULL, &error));
  g_assert_no_error (error);
  g_autofree char *missing = dg_model_folder_missing (empty);
  g_assert_null (missing);
  rmtree (empty);
}

static void
on_progress (const char *what, guint64 done, guint64 total, gpointer data)
{
  GHashTable *seen = data;
  g_assert_cmpuint (done, <=, total);
  if (done == total)
    g_hash_table_add (seen, g_strdup (what));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_autoptr (GError) error = NULL;
  engine = dg_engine_new (NULL, &error);
  g_assert_no_error (error);
  dev = dg_engine_device (engine);
  tiny = golden_data_path ("tiny-deepgen");
  tmp_root = g_dir_make_tmp ("deepgen-convert-XXXXXX", &error);
  g_assert_no_error (error);
  converted = g_build_filename (tmp_root, "tiny-q8", NULL);
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  DgConvertOptions co = DG_CONVERT_OPTIONS_INIT;
  co.progress = on_progress;
  co.user_data = seen;
  g_assert_true (dg_convert_model (tiny, converted, &co, &error));
  g_assert_no_error (error);
  g_assert_true (g_hash_table_contains (seen, "transformer/model.gguf"));
  g_assert_true (g_hash_table_contains (seen, "vlm/model.gguf"));
  g_assert_true (g_hash_table_contains (seen, "connector/model.gguf"));
  g_assert_true (g_hash_table_contains (seen, "vae"));

  g_test_add_func ("/convert/folder", test_folder);
  g_test_add_func ("/convert/dit-same", test_dit_same);
  g_test_add_func ("/convert/connector-same", test_connector_same);
  g_test_add_func ("/convert/run-same", test_run_same);
  g_test_add_func ("/convert/refusals", test_refusals);
  g_test_add_func ("/convert/empty-destination", test_empty_destination);
  int rc = g_test_run ();
  rmtree (tmp_root);
  dg_engine_free (engine);
  return rc;
}
