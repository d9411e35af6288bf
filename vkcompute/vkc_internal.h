/* Private state of the vkc runtime, shared by its source files. */
#pragma once
#include "vkc.h"

struct VkcDevice {
  VkInstance instance;
  VkDebugUtilsMessengerEXT messenger;
  VkPhysicalDevice physical;
  VkDevice device;
  VkQueue queue;
  uint32_t queue_family;
  VkCommandPool command_pool;
  /* Command buffers and timestamp query pools that finished their work, kept for the next
   * submission instead of freed (vkc_command_buffer_take / _give): one run records thousands of
   * submissions, and the Khronos validation layer's synchronization validation (1.3.239, the
   * test suite's) keeps ~3 KB for every command buffer ever allocated, freed or not, and more
   * for every query reset in it — 8 MiB a job in the soak. Bounded by how many are in use at
   * once. */
  GArray *spare_command_buffers; /* VkCommandBuffer */
  GArray *spare_query_pools;     /* VkQueryPool, each of VKC_TIMESTAMP_QUERIES queries */
  VkPipelineCache pipeline_cache;
  char *pipeline_cache_path;
  VkcDeviceInfo info;
  VkPhysicalDeviceMemoryProperties memory;
  bool validation;
  guint validation_messages;
  GHashTable *pipelines;        /* key string → VkcPipeline* */
  GHashTable *set_layouts;      /* n_bindings → VkDescriptorSetLayout (as pointer) */
  GHashTable *pipeline_layouts; /* n_bindings → VkPipelineLayout */
  /* Reusable staging buffer for uploads/downloads. */
  VkBuffer staging;
  VkDeviceMemory staging_memory;
  void *staging_map;
  VkDeviceSize staging_size;
  VkFence fence;
  /* Self-checks of the fast paths (vkc_fastpath.c): kernel name → VkcFastpathState, loaded
   * from / saved to a file in the user's cache folder per device and driver version. */
  GHashTable *fastpaths;
  char *fastpath_path;
  bool fastpaths_loaded;
  /* Bytes held by pool blocks, now and at most (vkc_device_reserved). */
  VkDeviceSize reserved, reserved_peak;
  /* Fault injection (vkc_fault.c) and the device's state after a loss. */
  VkcFaults faults;
  VkcFaultCounts fault_counts;
  bool lost;
  /* The first failure of a creation that has no GError of its own (a pipeline built while
   * recording); the command buffer that needed it fails with it at submission. */
  GError *pending_error;
};

struct VkcPipeline {
  char *key;
  const char *shader; /* points into the registry */
  guint n_bindings;
  VkPipeline pipeline;
  VkPipelineLayout layout;
  VkDescriptorSetLayout set_layout;
};

/* Turn a VkResult into a GError (returns false) or true for VK_SUCCESS. */
bool vkc_check (VkResult r, const char *what, GError **error);
const char *vkc_result_name (VkResult r);

/* Choose a memory type: all `required` flags, preferring `preferred`; -1 when none. */
int vkc_find_memory_type (VkcDevice *dev, uint32_t type_bits, VkMemoryPropertyFlags required,
                          VkMemoryPropertyFlags preferred);

/* Fault injection (vkc_fault.c): count one device allocation, VK_ERROR_OUT_OF_DEVICE_MEMORY
 * when it is the one to fail; read DEEPGEN_VK_FAIL_* at device creation. */
VkResult vkc_fault_alloc (VkcDevice *dev);
void vkc_fault_read_env (VkcDevice *dev);
/* Submit @cb, wait for it, reset the fence; the one place that submits (faults, lost device). */
bool vkc_submit_wait (VkcDevice *dev, VkCommandBuffer cb, GError **error);

/* A command buffer of the device's pool, ready to begin (a spare one, or newly allocated — that
 * one counts as a device allocation for fault injection); _give returns it when its work is done
 * or it was never submitted (never one still pending). Freeing the spares: vkc_spares_free. */
bool vkc_command_buffer_take (VkcDevice *dev, VkCommandBuffer *out, GError **error);
void vkc_command_buffer_give (VkcDevice *dev, VkCommandBuffer cb);
#define VKC_TIMESTAMP_QUERIES 8192
/* A timestamp query pool of VKC_TIMESTAMP_QUERIES queries (reset it in the command buffer before
 * use), VK_NULL_HANDLE when one cannot be made; _give as above. */
VkQueryPool vkc_query_pool_take (VkcDevice *dev);
void vkc_query_pool_give (VkcDevice *dev, VkQueryPool pool);
void vkc_spares_free (VkcDevice *dev);

/* One-shot command buffer for transfers (staging copies). */
bool vkc_one_shot_begin (VkcDevice *dev, VkCommandBuffer *out, GError **error);
bool vkc_one_shot_submit (VkcDevice *dev, VkCommandBuffer cb, GError **error);

void vkc_pipelines_destroy (VkcDevice *dev);
bool vkc_pipeline_cache_open (VkcDevice *dev);
void vkc_pipeline_cache_save (VkcDevice *dev);

/* Record the outcome of a fast path's self-check: kept for the device's lifetime and written to
 * the cache file; a failure prints one warning (per device, kernel and driver version: later
 * runs read the result and stay quiet). */
void vkc_fastpath_record (VkcDevice *dev, const char *name, bool ok, const char *detail);
void vkc_fastpaths_free (VkcDevice *dev);
/* The check of `name` could not run: remember that in memory only (VKC_FASTPATH_NOT_RUN). */
void vkc_fastpath_not_run (VkcDevice *dev, const char *name);
/* After its self-check has run (or was read from the cache): true when `name` passed, else false
 * with *why saying, for `deepgen info`, whether it failed or could not run. */
bool vkc_fastpath_passed (VkcDevice *dev, const char *name, const char **why);
