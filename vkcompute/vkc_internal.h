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
