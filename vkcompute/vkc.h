/* vkc — a small Vulkan compute runtime.
 *
 * It knows nothing about DeepGen: it picks a device, hands out GPU memory, builds compute
 * pipelines from the SPIR-V embedded at build time, records dispatches with the barriers they
 * need, and describes tensors (up to 4-D views over GPU buffers). Op launchers that turn
 * tensors into dispatches live in vkc_ops_*.h.
 *
 * Threading: a VkcDevice and everything made from it is used from one thread at a time.
 * Errors: functions that can fail for reasons outside the program (no device, out of memory,
 * driver failure) take a GError **; misuse by the caller (wrong shapes passed to an op) is a
 * programming error and is caught by g_return_* / g_assert.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <vulkan/vulkan.h>

G_BEGIN_DECLS

#define VKC_ERROR (vkc_error_quark ())
GQuark vkc_error_quark (void);

typedef enum {
  VKC_ERROR_NO_DEVICE,     /* no usable Vulkan device / loader */
  VKC_ERROR_OUT_OF_MEMORY, /* device or host memory exhausted */
  VKC_ERROR_DEVICE_LOST,   /* the driver reset the device */
  VKC_ERROR_FAILED,        /* any other Vulkan failure */
  VKC_ERROR_TOO_LARGE,     /* a request exceeds a device limit */
  VKC_ERROR_CANCELLED,
} VkcError;

/* ---------------------------------------------------------------------------------------
 * Device
 * ------------------------------------------------------------------------------------- */

typedef struct VkcDevice VkcDevice;

typedef struct {
  /* Device by index ("1") or by case-insensitive name substring ("radeon"); NULL = the
   * DEEPGEN_VK_DEVICE environment variable, else the best device (discrete first). */
  const char *device;
  /* Enable the Khronos validation layer with synchronization validation; every message it
   * emits is counted (vkc_device_validation_messages) and printed. -1 = from the
   * DEEPGEN_VK_VALIDATION environment variable. */
  int validation;
  /* Keep a VkPipelineCache in the user's cache folder (default on; tests turn it off). */
  bool no_pipeline_cache;
} VkcDeviceOptions;

#define VKC_DEVICE_OPTIONS_DEFAULT { NULL, -1, false }

/* What the chosen device can do; filled once at creation, read by op launchers to pick
 * shader variants. */
typedef struct {
  char name[VK_MAX_PHYSICAL_DEVICE_NAME_SIZE];
  char driver_name[VK_MAX_DRIVER_NAME_SIZE];
  char driver_info[VK_MAX_DRIVER_INFO_SIZE];
  uint32_t vendor_id, device_id, api_version, driver_version;
  VkPhysicalDeviceType type;
  bool fp16_arith;      /* shaderFloat16 */
  bool storage16;       /* storageBuffer16BitAccess */
  bool storage8;        /* storageBuffer8BitAccess */
  bool int8_arith;      /* shaderInt8 */
  bool int_dot_product; /* shaderIntegerDotProduct */
  /* VK_KHR_cooperative_matrix: enabled, with an fp16×fp16→fp32 subgroup-scope shape usable by
   * compute shaders, allowed by the vendor rules and not switched off
   * (DEEPGEN_VK_DISABLE_COOPMAT=1). coopmat_why says why it is on or off in words. With
   * DEEPGEN_VK_FORCE_COOPMAT=1 the vendor rules are waived, every op with a coopmat path takes it,
   * and vkc_device_new fails when the device cannot. */
  bool cooperative_matrix;
  bool coopmat_forced;
  uint32_t coopmat_m, coopmat_n, coopmat_k; /* the shape the coopmat kernels use */
  char coopmat_shapes[160];                 /* every fp16→fp32 subgroup shape listed, "8x8x8 16x16x16" */
  char coopmat_why[200];
  uint32_t driver_id;  /* VkDriverId */
  bool subgroup_arith; /* subgroup arithmetic ops in compute */
  bool subgroup_shuffle;
  uint32_t subgroup_size;
  uint32_t min_subgroup_size, max_subgroup_size;
  bool subgroup_size_control;
  uint32_t max_shared_memory; /* bytes per workgroup */
  uint32_t max_workgroup_invocations;
  uint32_t max_workgroup_count[3];
  uint32_t max_push_constants;
  VkDeviceSize max_storage_buffer_range;
  VkDeviceSize max_memory_allocation_size;
  VkDeviceSize max_buffer_size;
  VkDeviceSize min_storage_offset_alignment;
  VkDeviceSize device_local_bytes; /* size of the largest device-local heap; a testing aid:
                                         * DEEPGEN_VK_FAKE_DEVICE_BYTES=N (bytes) in the
                                         * environment replaces it, to exercise the memory
                                         * checks of callers (nothing else is limited) */
  bool unified_memory;             /* device-local memory is host-visible (iGPU, CPU, ReBAR) */
  bool timestamps;
  double timestamp_period_ns;
} VkcDeviceInfo;

VkcDevice *vkc_device_new (const VkcDeviceOptions *options, GError **error);
void vkc_device_free (VkcDevice *dev);
const VkcDeviceInfo *vkc_device_info (VkcDevice *dev);
/* One line per feature/limit that matters for the op launchers, for `deepgen info`. */
char *vkc_device_describe (VkcDevice *dev);
/* Names of all physical devices (for DEEPGEN_VK_DEVICE help); NULL-terminated, g_strfreev. */
char **vkc_list_devices (GError **error);
/* Number of validation-layer messages (warnings and errors) seen so far. */
guint vkc_device_validation_messages (VkcDevice *dev);
void vkc_device_reset_validation_messages (VkcDevice *dev);
bool vkc_device_validation_enabled (VkcDevice *dev);
/* Escape hatches for tests and for code that must issue raw Vulkan calls. */
VkDevice vkc_device_handle (VkcDevice *dev);
VkPhysicalDevice vkc_device_physical (VkcDevice *dev);

/* Fast-path self-checks. The first time a fast kernel (a cooperative-matrix variant) is about to
 * be used on a device and driver version, its launcher runs it on a small known input against the
 * scalar kernel; a mismatch disables it with one warning. Results are remembered in
 * g_get_user_cache_dir()/deepgen/selfcheck-VENDOR-DEVICE-DRIVERVERSION.txt (one "kernel ok|bad"
 * per line; delete the file to test again). */
typedef enum {
  VKC_FASTPATH_UNKNOWN = 0, /* not checked yet */
  VKC_FASTPATH_OK,
  VKC_FASTPATH_BAD,
  VKC_FASTPATH_NOT_RUN, /* the check could not run (out of memory, …): scalar for this device's
                               * lifetime, checked again by the next process */
} VkcFastpathState;
VkcFastpathState vkc_fastpath_state (VkcDevice *dev, const char *kernel);
const char *vkc_fastpath_cache_file (VkcDevice *dev);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (VkcDevice, vkc_device_free)

/* Fault injection for reliability tests (vkc_fault.c): with fail_alloc_at = N the N-th device
 * allocation (buffer, memory, pipeline, descriptor pool, command buffer) fails with
 * VKC_ERROR_OUT_OF_MEMORY; with lose_at_submit / lose_at_wait = N the device is lost at the N-th
 * queue submission / fence wait and stays lost. 0 = never. Setting restarts the counts. The same
 * from the environment at device creation: DEEPGEN_VK_FAIL_ALLOC_AT=N,
 * DEEPGEN_VK_FAIL_DEVICE_LOST_AT=submit:N or wait:N. */
typedef struct {
  guint64 fail_alloc_at, lose_at_submit, lose_at_wait;
} VkcFaults;
typedef struct {
  guint64 allocs, submits, waits;
} VkcFaultCounts;
void vkc_device_set_faults (VkcDevice *dev, const VkcFaults *faults);
void vkc_device_fault_counts (VkcDevice *dev, VkcFaultCounts *counts);
/* Whether the device was lost (a driver reset, or injected): nothing more runs on it. */
bool vkc_device_lost (VkcDevice *dev);
/* Destroys every pipeline made so far and the spare command buffers (none may be in use), so
 * that the next run creates them again — the fault tests use it to make every run's allocation
 * sequence the same. */
void vkc_device_drop_pipelines (VkcDevice *dev);

/* ---------------------------------------------------------------------------------------
 * Memory
 *
 * A pool owns a few large VkDeviceMemory blocks, each covered by one VkBuffer, and hands out
 * sub-ranges (first fit, freed individually) — used for weights. An arena is a bump
 * allocator over one pool block chain that is reset as a whole — used for activations.
 * ------------------------------------------------------------------------------------- */

typedef struct VkcPool VkcPool;

/* A sub-range of a pool block. `host` is non-NULL when the memory is host-visible. */
typedef struct {
  VkBuffer buffer;
  VkDeviceSize offset;
  VkDeviceSize size;
  void *host;
  VkcPool *pool;
  guint block;
} VkcAlloc;

typedef enum {
  VKC_POOL_DEVICE, /* device-local; falls back to any memory when none is device-local */
  VKC_POOL_HOST,   /* host-visible, coherent (readback, staging-free small tensors) */
} VkcPoolKind;

/* block_size 0 = a default (256 MiB, capped by maxMemoryAllocationSize/maxBufferSize). */
VkcPool *vkc_pool_new (VkcDevice *dev, VkcPoolKind kind, VkDeviceSize block_size, const char *label);
void vkc_pool_free (VkcPool *pool);
/* The bytes a piece of @size takes from a pool: allocations are 256-byte aligned. */
VkDeviceSize vkc_pool_piece_size (VkDeviceSize size);
/* Tells the pool that it is about to hand out @bytes more (a sum of vkc_pool_piece_size): until
 * its use reaches what it used now + @bytes, a new block is sized to what remains of that (at
 * least the piece that needs it, at most the device's allocation limit, so a large expectation
 * becomes several blocks) instead of block_size. A pool told its exact needs reserves exactly
 * them; a wrong guess costs at most a block of the leftover pieces. A later call replaces the
 * expectation (it counts from the use at that time). */
void vkc_pool_expect (VkcPool *pool, VkDeviceSize bytes);
bool vkc_pool_alloc (VkcPool *pool, VkDeviceSize size, VkcAlloc *out, GError **error);
void vkc_pool_release (VkcAlloc *alloc);
/* Bytes currently handed out / held in blocks (for memory reports). */
VkDeviceSize vkc_pool_used (VkcPool *pool);
VkDeviceSize vkc_pool_reserved (VkcPool *pool);
/* Arena mode: bump allocation from the pool's blocks, released all at once by reset. */
bool vkc_pool_arena_alloc (VkcPool *pool, VkDeviceSize size, VkcAlloc *out, GError **error);
void vkc_pool_arena_reset (VkcPool *pool);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (VkcPool, vkc_pool_free)

/* Bytes that all pools of @dev hold in blocks now, and the most they held since the device was
 * created or since the last vkc_device_reset_peak (the staging buffer is not counted). */
VkDeviceSize vkc_device_reserved (VkcDevice *dev, VkDeviceSize *peak);
void vkc_device_reset_peak (VkcDevice *dev);

/* Copy host → device range / device range → host, through the device's reusable staging
 * buffer (or directly when the memory is host-visible). Synchronous. */
bool vkc_upload (VkcDevice *dev, VkBuffer dst, VkDeviceSize dst_offset, const void *src, VkDeviceSize size,
                 GError **error);
bool vkc_download (VkcDevice *dev, void *dst, VkBuffer src, VkDeviceSize src_offset, VkDeviceSize size, GError **error);

/* ---------------------------------------------------------------------------------------
 * Tensors: up to 4-D, PyTorch order (dim 0 outermost), strides in elements.
 * ------------------------------------------------------------------------------------- */

/* VKC_Q8_0 and VKC_Q4_0 are block-quantized weight types (vkc_quant.h): blocks of 32 values
 * with one f16 scale, 36 bytes per block (int8 quants) or 20 bytes (4-bit quants). A tensor of a
 * block type is always a matrix [N, K] with K % 32 == 0 and contiguous rows (stride {K, 1});
 * tensor functions refuse anything else. Shapes, strides and element offsets stay in elements
 * (multiples of 32 along a row); vkc_dtype_bytes turns them into bytes. Views may narrow rows
 * (dim 0) but not columns. */
typedef enum {
  VKC_F32 = 0,
  VKC_F16 = 1,
  VKC_BF16 = 2,
  VKC_U32 = 3,
  VKC_I32 = 4,
  VKC_Q8_0 = 5,
  VKC_Q4_0 = 6,
} VkcDType;
/* The number of dtypes: the size of a dtype index (the shader lookup tables). */
#define VKC_N_DTYPES (VKC_Q4_0 + 1)

#define VKC_MAX_DIMS 4

typedef struct {
  VkBuffer buffer;
  VkDeviceSize offset; /* bytes from the start of `buffer` to element [0,0,0,0] */
  VkcDType dtype;
  int ndim;
  int64_t shape[VKC_MAX_DIMS];
  int64_t stride[VKC_MAX_DIMS]; /* elements */
  VkcAlloc alloc;               /* owning allocation; alloc.pool == NULL for views and borrowed tensors */
} VkcTensor;

/* Bytes of one element of a plain (not block-quantized) dtype; 0 with a critical warning for
 * a block type (VKC_Q8_0, VKC_Q4_0), whose elements have no whole size: use vkc_dtype_bytes. */
size_t vkc_dtype_size (VkcDType t);
/* Bytes of `elements` consecutive elements of any dtype. For a block type, `elements` must be
 * a multiple of vkc_dtype_block (asserted): Q8_0 takes elements / 32 * 36 bytes, Q4_0
 * elements / 32 * 20. */
VkDeviceSize vkc_dtype_bytes (VkcDType t, int64_t elements);
/* Elements per block: 32 for the block types, 1 for the plain types (so > 1 tells a block
 * type). */
int64_t vkc_dtype_block (VkcDType t);
const char *vkc_dtype_name (VkcDType t);

/* A contiguous tensor in `pool` (or its arena when `arena` is true). A tensor of a block type
 * must be 2-D with shape[1] % 32 == 0, else this fails with VKC_ERROR_FAILED. */
bool vkc_tensor_alloc (VkcTensor *t, VkcPool *pool, bool arena, VkcDType dtype, int ndim, const int64_t *shape,
                       GError **error);
void vkc_tensor_release (VkcTensor *t);
int64_t vkc_tensor_numel (const VkcTensor *t);
bool vkc_tensor_is_contiguous (const VkcTensor *t);
/* Bytes from element 0 to one past the last element reachable through the strides. */
VkDeviceSize vkc_tensor_span_bytes (const VkcTensor *t);
/* Views share memory with `t`: narrow along a dimension, reshape (contiguous only), and a
 * generic view with explicit shape/strides/element offset. For a block type the result must
 * again be a [N, K] matrix with K % 32 == 0 and strides {K, 1} (so narrow only along dim 0,
 * and view offsets are multiples of 32): anything else aborts with a message (a programming
 * error, as other misuse of views). */
VkcTensor vkc_tensor_narrow (const VkcTensor *t, int dim, int64_t start, int64_t length);
VkcTensor vkc_tensor_reshape (const VkcTensor *t, int ndim, const int64_t *shape);
VkcTensor vkc_tensor_view (const VkcTensor *t, int ndim, const int64_t *shape, const int64_t *stride,
                           int64_t elem_offset);
/* Host transfers of a contiguous tensor (data in the tensor's dtype; for a block type the blocks
 * of vkc_quantize_q8_0 / vkc_quantize_q4_0, row after row). */
bool vkc_tensor_upload (VkcDevice *dev, const VkcTensor *t, const void *data, GError **error);
bool vkc_tensor_download (VkcDevice *dev, const VkcTensor *t, void *data, GError **error);
/* Shape as "[2, 3, 5]" for messages; returns a static per-thread buffer. */
const char *vkc_tensor_shape_str (const VkcTensor *t);

/* ---------------------------------------------------------------------------------------
 * Pipelines from embedded SPIR-V
 * ------------------------------------------------------------------------------------- */

typedef struct VkcPipeline VkcPipeline;

/* The shader variants: the enum VkcShader, one VKC_SHADER_<NAME> per variant declared in
 * shaders/<op>.cmake, generated by the build (DESIGN.md §4), so that naming a variant that does not
 * exist is a compile error. */
#include "vkc_shader_ids.h"

/* Look up (or build once and keep) the pipeline of an embedded shader variant. `spec` are
 * specialization constants with ids 0..n_spec-1 (uint32 bit patterns). All pipelines share
 * one layout shape: `n_bindings` storage buffers at set 0, bindings 0..n-1, and a 128-byte
 * push-constant range. Aborts if the variant was not built (VKC_SHADER_NONE, or a coopmat
 * variant without a coopmat glslc: check vkc_shader_exists first; a build error, not user input). */
VkcPipeline *vkc_pipeline_get (VkcDevice *dev, VkcShader shader, const uint32_t *spec, guint n_spec, guint n_bindings);
/* The same for a shader that depends on the subgroup size (cooperative matrices, subgroup
 * tiles): the pipeline is built with full subgroups of `subgroup_size` invocations where the
 * device can require a size (subgroupSizeControl), else it gets the device's default size,
 * which `subgroup_size` must then equal (VkcDeviceInfo.subgroup_size). */
VkcPipeline *vkc_pipeline_get_sg (VkcDevice *dev, VkcShader shader, const uint32_t *spec, guint n_spec,
                                  guint n_bindings, uint32_t subgroup_size);
const char *vkc_pipeline_name (VkcPipeline *p);
/* True when the variant's SPIR-V was embedded at build time: false for VKC_SHADER_NONE (an empty
 * place of a lookup table) and for the coopmat variants of a build whose glslc lacks
 * GL_KHR_cooperative_matrix. */
bool vkc_shader_exists (VkcShader shader);
/* The variant's name as declared in shaders/<op>.cmake ("linear_tiled_f16"), for messages and keys. */
const char *vkc_shader_name (VkcShader shader);

#define VKC_PUSH_CONSTANT_BYTES 128

/* ---------------------------------------------------------------------------------------
 * Recording and submission
 * ------------------------------------------------------------------------------------- */

typedef struct VkcCmd VkcCmd;

/* A bound buffer range; `write` marks ranges the dispatch writes (drives barriers). */
typedef struct {
  VkBuffer buffer;
  VkDeviceSize offset;
  VkDeviceSize range;
  bool write;
} VkcBinding;

/* Bind a tensor: the range starts at the largest offset <= the tensor's offset that meets
 * minStorageBufferOffsetAlignment; *elem_offset receives the tensor's first element index
 * relative to that start (pass it to the shader) — for a block type the index of its first
 * 32-bit word instead, since a 36- or 20-byte block need not start a whole number of blocks
 * after an aligned offset. Fails an assertion when the span exceeds
 * maxStorageBufferRange — launchers split such tensors first (vkc_binding_fits). */
VkcBinding vkc_tensor_binding (VkcDevice *dev, const VkcTensor *t, bool write, uint32_t *elem_offset);
bool vkc_binding_fits (VkcDevice *dev, const VkcTensor *t);

VkcCmd *vkc_cmd_begin (VkcDevice *dev, GError **error);
VkcDevice *vkc_cmd_device (VkcCmd *cmd);
/* Record a dispatch. A barrier is inserted before it iff it reads or writes a range that an
 * earlier un-barriered command wrote, or writes a range an earlier one read. */
void vkc_cmd_dispatch (VkcCmd *cmd, VkcPipeline *p, const VkcBinding *bindings, guint n_bindings, const void *push,
                       size_t push_size, uint32_t gx, uint32_t gy, uint32_t gz);
void vkc_cmd_fill (VkcCmd *cmd, VkBuffer buffer, VkDeviceSize offset, VkDeviceSize size, uint32_t value);
void vkc_cmd_copy (VkcCmd *cmd, VkBuffer src, VkDeviceSize src_offset, VkBuffer dst, VkDeviceSize dst_offset,
                   VkDeviceSize size);
/* Submit, wait, and keep the command buffer for vkc_cmd_profile / resubmission. */
bool vkc_cmd_submit_wait (VkcCmd *cmd, GError **error);
void vkc_cmd_free (VkcCmd *cmd);
/* Number of dispatches and barriers recorded (for tests and reports). */
guint vkc_cmd_n_dispatches (VkcCmd *cmd);
guint vkc_cmd_n_barriers (VkcCmd *cmd);
/* Per-dispatch GPU time after submit_wait, summed by pipeline name; NULL when the device
 * has no timestamps. Caller frees with g_hash_table_unref (name → double* milliseconds). */
GHashTable *vkc_cmd_profile (VkcCmd *cmd);
double vkc_cmd_gpu_ms (VkcCmd *cmd);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (VkcCmd, vkc_cmd_free)

/* Round up a / b. */
static inline uint32_t
vkc_div_up (uint64_t a, uint64_t b)
{
  return (uint32_t) ((a + b - 1) / b);
}

G_END_DECLS
