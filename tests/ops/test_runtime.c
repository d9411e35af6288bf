/* The vkc runtime itself: validation really on, device selection, pools and arenas, tensor
 * views and bindings, barrier placement, transfers larger than the staging buffer. */
#include "op_test.h"
#include "vkc_ops_convert.h"
#include <glib/gstdio.h>
#include <string.h>

/* A deliberately invalid Vulkan call must be reported: proves the layer is active, so the
 * "no validation messages" checks of every other test mean something. */
static void
test_validation_layer_active (void)
{
  OpTest *t = op_test_new ();
  VkBufferCreateInfo bad = {
    .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
    .size = 256,
    .usage = 0, /* VUID-VkBufferCreateInfo-usage-requiredbitmask */
    .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
  };
  VkBuffer b = VK_NULL_HANDLE;
  vkCreateBuffer (vkc_device_handle (t->dev), &bad, NULL, &b);
  g_assert_cmpuint (vkc_device_validation_messages (t->dev), >=, 1);
  if (b)
    vkDestroyBuffer (vkc_device_handle (t->dev), b, NULL);
  vkc_device_reset_validation_messages (t->dev);
  op_test_free (t);
}

/* Synchronization validation is on too: two dispatches with a read-after-write hazard and
 * no barrier (we hide the write from the tracker) must be reported. */
static void
test_sync_validation_active (void)
{
  OpTest *t = op_test_new ();
  int64_t n = 4096;
  g_autofree float *x = op_randn (n, 3, 1.0f);
  VkcTensor a = op_tensor (t, VKC_F32, 1, &n, x);
  VkcTensor b = op_tensor (t, VKC_F32, 1, &n, NULL);
  VkcTensor c = op_tensor (t, VKC_F32, 1, &n, NULL);
  VkcPipeline *p = vkc_pipeline_get (t->dev, VKC_SHADER_ROUND_BF16_F32, NULL, 0, 2);
  struct {
    uint32_t n, src_off, dst_off;
  } pc = { (uint32_t) n, 0, 0 };
  VkcCmd *cmd = op_cmd (t);
  VkcBinding first[2] = { vkc_tensor_binding (t->dev, &a, false, NULL), vkc_tensor_binding (t->dev, &b, false, NULL) };
  vkc_cmd_dispatch (cmd, p, first, 2, &pc, sizeof pc, 16, 1, 1); /* writes b, hidden */
  VkcBinding second[2] = { vkc_tensor_binding (t->dev, &b, false, NULL), vkc_tensor_binding (t->dev, &c, true, NULL) };
  vkc_cmd_dispatch (cmd, p, second, 2, &pc, sizeof pc, 16, 1, 1); /* reads b: hazard */
  g_assert_cmpuint (vkc_cmd_n_barriers (cmd), ==, 0);
  op_run (t, cmd);
  g_assert_cmpuint (vkc_device_validation_messages (t->dev), >=, 1);
  vkc_device_reset_validation_messages (t->dev);
  op_test_free (t);
}

static void
test_device_info (void)
{
  OpTest *t = op_test_new ();
  const VkcDeviceInfo *i = vkc_device_info (t->dev);
  g_assert_cmpuint (i->max_storage_buffer_range, >=, 1u << 27);
  g_assert_cmpuint (i->subgroup_size, >=, 1);
  g_assert_cmpuint (i->max_shared_memory, >=, 16384);
  g_autofree char *d = vkc_device_describe (t->dev);
  g_assert_nonnull (strstr (d, "maxStorageBufferRange"));
  if (g_test_verbose ())
    g_test_message ("%s", d);
  op_test_free (t);
}

static void
test_device_selection (void)
{
  g_autoptr (GError) error = NULL;
  VkcDeviceOptions opt = VKC_DEVICE_OPTIONS_DEFAULT;
  opt.validation = 1;
  opt.no_pipeline_cache = true;
  opt.device = "0";
  VkcDevice *dev = vkc_device_new (&opt, &error);
  g_assert_no_error (error);
  g_autofree char *name = g_utf8_strdown (vkc_device_info (dev)->name, -1);
  vkc_device_free (dev);
  /* by a name fragment, any case */
  char frag[4] = { 0 };
  memcpy (frag, name, 3);
  g_autofree char *upper = g_utf8_strup (frag, -1);
  opt.device = upper;
  dev = vkc_device_new (&opt, &error);
  g_assert_no_error (error);
  vkc_device_free (dev);
  opt.device = "99";
  dev = vkc_device_new (&opt, &error);
  g_assert_null (dev);
  g_assert_error (error, VKC_ERROR, VKC_ERROR_NO_DEVICE);
  g_clear_error (&error);
  opt.device = "no-such-gpu-xyz";
  dev = vkc_device_new (&opt, &error);
  g_assert_null (dev);
  g_assert_error (error, VKC_ERROR, VKC_ERROR_NO_DEVICE);
  g_auto (GStrv) list = vkc_list_devices (NULL);
  g_assert_nonnull (list);
  g_assert_nonnull (list[0]);
}

static void
test_pool_suballocation (void)
{
  OpTest *t = op_test_new ();
  g_autoptr (GError) error = NULL;
  VkcPool *pool = vkc_pool_new (t->dev, VKC_POOL_DEVICE, 1 << 20, "test");
  VkcAlloc a[8];
  for (int i = 0; i < 8; i++) {
    g_assert_true (vkc_pool_alloc (pool, 100000 + i, &a[i], &error));
    g_assert_cmpuint (a[i].offset % 256, ==, 0);
  }
  /* 8 × ~100 KB fit in one 1 MiB block */
  g_assert_cmpuint (vkc_pool_reserved (pool), ==, 1 << 20);
  for (int i = 0; i < 8; i += 2) vkc_pool_release (&a[i]);
  for (int i = 1; i < 8; i += 2) vkc_pool_release (&a[i]);
  g_assert_cmpuint (vkc_pool_used (pool), ==, 0);
  /* after freeing everything the neighbours merged: the whole block is usable again */
  VkcAlloc big;
  g_assert_true (vkc_pool_alloc (pool, 1 << 20, &big, &error));
  g_assert_cmpuint (vkc_pool_reserved (pool), ==, 1 << 20);
  /* larger than a block: a dedicated block */
  VkcAlloc huge;
  g_assert_true (vkc_pool_alloc (pool, 3 << 20, &huge, &error));
  g_assert_cmpuint (vkc_pool_reserved (pool), ==, 4 << 20);
  /* arena: bump and reset */
  VkcAlloc x, y;
  g_assert_true (vkc_pool_arena_alloc (pool, 1000, &x, &error));
  g_assert_true (vkc_pool_arena_alloc (pool, 1000, &y, &error));
  g_assert_cmpuint (y.offset, ==, x.offset + 1024);
  vkc_pool_arena_reset (pool);
  g_assert_true (vkc_pool_arena_alloc (pool, 1000, &y, &error));
  g_assert_cmpuint (y.offset, ==, x.offset);
  /* beyond maxMemoryAllocationSize: a clear error, no crash */
  VkcAlloc impossible;
  g_assert_false (vkc_pool_alloc (pool, vkc_device_info (t->dev)->max_memory_allocation_size + 1, &impossible, &error));
  g_assert_error (error, VKC_ERROR, VKC_ERROR_TOO_LARGE);
  vkc_pool_free (pool);
  op_test_free (t);
}

/* vkc_pool_expect: a pool told what it will hold takes one block of exactly that; what comes
 * after the expectation falls back to block_size; the device counts what pools reserve. */
static void
test_pool_expect (void)
{
  OpTest *t = op_test_new ();
  g_autoptr (GError) error = NULL;
  VkDeviceSize before = vkc_device_reserved (t->dev, NULL), peak;
  vkc_device_reset_peak (t->dev);
  VkcPool *pool = vkc_pool_new (t->dev, VKC_POOL_DEVICE, 1 << 20, "test");
  g_assert_cmpuint (vkc_pool_piece_size (1), ==, 256);
  g_assert_cmpuint (vkc_pool_piece_size (256), ==, 256);
  g_assert_cmpuint (vkc_pool_piece_size (3000000), ==, 3000064);
  vkc_pool_expect (pool, vkc_pool_piece_size (3000000) + 2 * vkc_pool_piece_size (1000));
  VkcAlloc a, b, c, d;
  g_assert_true (vkc_pool_alloc (pool, 3000000, &a, &error));
  g_assert_true (vkc_pool_alloc (pool, 1000, &b, &error));
  g_assert_true (vkc_pool_alloc (pool, 1000, &c, &error));
  g_assert_cmpuint (vkc_pool_reserved (pool), ==, 3000064 + 2 * 1024);
  g_assert_cmpuint (vkc_pool_used (pool), ==, vkc_pool_reserved (pool));
  g_assert_cmpuint (vkc_device_reserved (t->dev, &peak), ==, before + 3000064 + 2048);
  g_assert_cmpuint (peak, ==, before + 3000064 + 2048);
  /* nothing more expected: a block of block_size */
  g_assert_true (vkc_pool_alloc (pool, 1000, &d, &error));
  g_assert_cmpuint (vkc_pool_reserved (pool), ==, 3000064 + 2048 + (1 << 20));
  /* an expectation short of the pieces costs a block of the piece that does not fit, no more */
  vkc_pool_expect (pool, 256);
  VkcAlloc e;
  g_assert_true (vkc_pool_alloc (pool, 2 << 20, &e, &error));
  g_assert_cmpuint (vkc_pool_reserved (pool), ==, 3000064 + 2048 + (1 << 20) + (2 << 20));
  vkc_pool_free (pool);
  g_assert_cmpuint (vkc_device_reserved (t->dev, &peak), ==, before);
  g_assert_cmpuint (peak, ==, before + 3000064 + 2048 + (3 << 20));
  vkc_device_reset_peak (t->dev);
  vkc_device_reserved (t->dev, &peak);
  g_assert_cmpuint (peak, ==, before);
  op_test_free (t);
}

static void
test_tensor_views (void)
{
  OpTest *t = op_test_new ();
  int64_t shape[3] = { 2, 5, 6 };
  g_autofree float *x = op_randn (60, 1, 1.0f);
  VkcTensor a = op_tensor (t, VKC_F32, 3, shape, x);
  g_assert_true (vkc_tensor_is_contiguous (&a));
  VkcTensor n = vkc_tensor_narrow (&a, 2, 2, 3); /* channel slice: strided */
  g_assert_false (vkc_tensor_is_contiguous (&n));
  g_assert_cmpuint (vkc_tensor_span_bytes (&n), ==, (VkDeviceSize) ((1 * 30 + 4 * 6 + 2) + 1) * 4);
  VkcTensor r = vkc_tensor_narrow (&a, 0, 1, 1); /* batch slice: contiguous */
  g_assert_true (vkc_tensor_is_contiguous (&r));
  int64_t flat[2] = { 5, 6 };
  VkcTensor rr = vkc_tensor_reshape (&r, 2, flat);
  g_autofree float *got = op_download (t, &rr);
  g_assert_cmpmem (got, 30 * 4, x + 30, 30 * 4);
  uint32_t off = 0;
  VkcBinding b = vkc_tensor_binding (t->dev, &n, false, &off);
  g_assert_cmpuint (b.offset % vkc_device_info (t->dev)->min_storage_offset_alignment, ==, 0);
  g_assert_cmpuint (b.offset + off * 4, ==, n.offset);
  g_assert_cmpstr (vkc_tensor_shape_str (&n), ==, "[2, 5, 3]");
  op_test_free (t);
}

/* Independent dispatches get no barrier; a read of something just written gets exactly one. */
static void
test_barriers (void)
{
  OpTest *t = op_test_new ();
  int64_t n = 1000;
  g_autofree float *x = op_randn (n, 2, 1.0f);
  VkcTensor a = op_tensor (t, VKC_F32, 1, &n, x);
  VkcTensor b = op_tensor (t, VKC_BF16, 1, &n, NULL);
  VkcTensor c = op_tensor (t, VKC_F16, 1, &n, NULL);
  VkcTensor d = op_tensor (t, VKC_F32, 1, &n, NULL);
  VkcCmd *cmd = op_cmd (t);
  vkc_op_convert (cmd, &b, &a); /* reads a, writes b */
  vkc_op_convert (cmd, &c, &a); /* reads a, writes c: independent */
  g_assert_cmpuint (vkc_cmd_n_barriers (cmd), ==, 0);
  vkc_op_convert (cmd, &d, &b); /* reads b: RAW */
  g_assert_cmpuint (vkc_cmd_n_barriers (cmd), ==, 1);
  vkc_op_convert (cmd, &b, &c); /* writes b, which the last op read (WAR) */
  g_assert_cmpuint (vkc_cmd_n_barriers (cmd), ==, 2);
  g_assert_cmpuint (vkc_cmd_n_dispatches (cmd), ==, 4);
  g_autoptr (GError) error = NULL;
  g_assert_true (vkc_cmd_submit_wait (cmd, &error));
  if (vkc_device_info (t->dev)->timestamps) {
    g_autoptr (GHashTable) prof = vkc_cmd_profile (cmd);
    g_assert_nonnull (prof);
    g_assert_nonnull (g_hash_table_lookup (prof, vkc_shader_name (VKC_SHADER_CONVERT_F32_BF16)));
  }
  vkc_cmd_free (cmd);
  g_autofree float *got = op_download (t, &d);
  for (int64_t i = 0; i < n; i++) g_assert_cmpfloat (got[i], ==, vkc_round_bf16 (x[i]));
  op_test_free (t);
}

/* Uploads and downloads bigger than the 64 MiB staging buffer go in pieces. */
static void
test_large_transfer (void)
{
  OpTest *t = op_test_new ();
  int64_t n = (70 << 20) / 4 + 3;
  float *x = g_new (float, n);
  for (int64_t i = 0; i < n; i++) x[i] = (float) i;
  VkcTensor a = op_tensor (t, VKC_F32, 1, &n, x);
  float *got = op_download (t, &a);
  g_assert_cmpmem (got, n * 4, x, n * 4);
  g_free (got);
  g_free (x);
  op_test_free (t);
}

/* The pipeline cache is written to the user's cache folder and reused. */
static void
test_pipeline_cache (void)
{
  g_autofree char *dir = g_dir_make_tmp ("vkc-cache-XXXXXX", NULL);
  g_setenv ("XDG_CACHE_HOME", dir, TRUE);
  for (int round = 0; round < 2; round++) {
    g_autoptr (GError) error = NULL;
    VkcDeviceOptions opt = VKC_DEVICE_OPTIONS_DEFAULT;
    opt.validation = 1;
    VkcDevice *dev = vkc_device_new (&opt, &error);
    g_assert_no_error (error);
    vkc_pipeline_get (dev, VKC_SHADER_CONVERT_F32_BF16, NULL, 0, 2);
    g_assert_cmpuint (vkc_device_validation_messages (dev), ==, 0);
    vkc_device_free (dev);
  }
  g_autofree char *sub = g_build_filename (dir, "deepgen", NULL);
  GDir *d = g_dir_open (sub, 0, NULL);
  g_assert_nonnull (d);
  const char *name = g_dir_read_name (d);
  g_assert_nonnull (name);
  g_assert_true (g_str_has_prefix (name, "pipelines-"));
  g_autofree char *path = g_build_filename (sub, name, NULL);
  g_dir_close (d);
  /* a corrupt cache file is ignored, not trusted */
  g_file_set_contents (path, "garbage garbage garbage garbage garbage garbage", -1, NULL);
  g_autoptr (GError) error = NULL;
  VkcDeviceOptions opt = VKC_DEVICE_OPTIONS_DEFAULT;
  opt.validation = 1;
  VkcDevice *dev = vkc_device_new (&opt, &error);
  g_assert_no_error (error);
  vkc_pipeline_get (dev, VKC_SHADER_CONVERT_F32_BF16, NULL, 0, 2);
  g_assert_cmpuint (vkc_device_validation_messages (dev), ==, 0);
  vkc_device_free (dev);
  g_unlink (path);
  g_rmdir (sub);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/runtime/validation-layer-active", test_validation_layer_active);
  g_test_add_func ("/runtime/sync-validation-active", test_sync_validation_active);
  g_test_add_func ("/runtime/device-info", test_device_info);
  g_test_add_func ("/runtime/device-selection", test_device_selection);
  g_test_add_func ("/runtime/pool", test_pool_suballocation);
  g_test_add_func ("/runtime/pool-expect", test_pool_expect);
  g_test_add_func ("/runtime/tensor-views", test_tensor_views);
  g_test_add_func ("/runtime/barriers", test_barriers);
  g_test_add_func ("/runtime/large-transfer", test_large_transfer);
  g_test_add_func ("/runtime/pipeline-cache", test_pipeline_cache);
  return g_test_run ();
}
