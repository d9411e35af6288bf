/* Instance, physical-device choice, logical device, validation messages. */
#include "vkc_internal.h"
#include "vkc_coopmat_khr.h"
#include <stdio.h>
#include <string.h>

G_DEFINE_QUARK (vkc - error - quark, vkc_error)

const char *
vkc_result_name (VkResult r)
{
  switch (r) {
  case VK_SUCCESS: return "VK_SUCCESS";
  case VK_NOT_READY: return "VK_NOT_READY";
  case VK_TIMEOUT: return "VK_TIMEOUT";
  case VK_INCOMPLETE: return "VK_INCOMPLETE";
  case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
  case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
  case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
  case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
  case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
  case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
  case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
  case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
  case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
  case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
  case VK_ERROR_FORMAT_NOT_SUPPORTED: return "VK_ERROR_FORMAT_NOT_SUPPORTED";
  case VK_ERROR_FRAGMENTED_POOL: return "VK_ERROR_FRAGMENTED_POOL";
  case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
  default: return "VK_ERROR_UNKNOWN";
  }
}

bool
vkc_check (VkResult r, const char *what, GError **error)
{
  if (r == VK_SUCCESS)
    return true;
  int code = VKC_ERROR_FAILED;
  const char *hint = "";
  if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY) {
    code = VKC_ERROR_OUT_OF_MEMORY;
    hint =
        r == VK_ERROR_OUT_OF_DEVICE_MEMORY
            ? " — the GPU is out of memory: close other GPU programs, or use a smaller image size or a quantized model"
            : " — the computer is out of memory";
  } else if (r == VK_ERROR_DEVICE_LOST) {
    code = VKC_ERROR_DEVICE_LOST;
    hint = " — the GPU driver reset the device (a driver timeout or crash); try again, or update the driver";
  } else if (r == VK_ERROR_INCOMPATIBLE_DRIVER || r == VK_ERROR_INITIALIZATION_FAILED) {
    code = VKC_ERROR_NO_DEVICE;
    hint = " — no working Vulkan driver: install your GPU's Vulkan driver (or Mesa's lavapipe for CPU-only use)";
  }
  g_set_error (error, VKC_ERROR, code, "%s failed: %s%s", what, vkc_result_name (r), hint);
  return false;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL
on_debug_message (VkDebugUtilsMessageSeverityFlagBitsEXT severity, VkDebugUtilsMessageTypeFlagsEXT type,
                  const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
  VkcDevice *dev = user;
  /* Loader chatter (GENERAL) is not a validation finding; everything the validation layer
   * reports at warning level or above is. */
  if ((type & (VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT)) &&
      severity >= VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) {
    dev->validation_messages++;
    fprintf (stderr, "vkc: validation %s: %s\n",
             severity >= VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT ? "error" : "warning",
             data->pMessage ? data->pMessage : "(no text)");
  }
  return VK_FALSE;
}

static bool
env_flag (const char *name)
{
  const char *v = g_getenv (name);
  return v && *v && strcmp (v, "0") != 0;
}

static bool
has_layer (const char *name)
{
  uint32_t n = 0;
  vkEnumerateInstanceLayerProperties (&n, NULL);
  g_autofree VkLayerProperties *props = g_new0 (VkLayerProperties, n ? n : 1);
  vkEnumerateInstanceLayerProperties (&n, props);
  for (uint32_t i = 0; i < n; i++)
    if (strcmp (props[i].layerName, name) == 0)
      return true;
  return false;
}

static bool
create_instance (VkcDevice *dev, bool validation, GError **error)
{
  VkApplicationInfo app = {
    .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
    .pApplicationName = "deepgen",
    .applicationVersion = VK_MAKE_VERSION (0, 1, 0),
    .pEngineName = "vkc",
    .apiVersion = VK_API_VERSION_1_3,
  };
  const char *layers[] = { "VK_LAYER_KHRONOS_validation" };
  const char *exts[] = { VK_EXT_DEBUG_UTILS_EXTENSION_NAME, "VK_EXT_validation_features" };
  VkValidationFeatureEnableEXT enables[] = { VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT };
  VkValidationFeaturesEXT features = {
    .sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT,
    .enabledValidationFeatureCount = G_N_ELEMENTS (enables),
    .pEnabledValidationFeatures = enables,
  };
  VkDebugUtilsMessengerCreateInfoEXT messenger = {
    .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
    .pNext = &features,
    .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
    .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                   VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
    .pfnUserCallback = on_debug_message,
    .pUserData = dev,
  };
  VkInstanceCreateInfo ci = {
    .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
    .pApplicationInfo = &app,
  };
  if (validation) {
    if (!has_layer (layers[0])) {
      g_set_error (error, VKC_ERROR, VKC_ERROR_NO_DEVICE,
                   "Vulkan validation was requested (DEEPGEN_VK_VALIDATION) but the Khronos validation "
                   "layer is not installed (Debian: apt install vulkan-validationlayers)");
      return false;
    }
    ci.pNext = &messenger; /* also reports problems during vkCreateInstance itself */
    ci.enabledLayerCount = 1;
    ci.ppEnabledLayerNames = layers;
    ci.enabledExtensionCount = G_N_ELEMENTS (exts);
    ci.ppEnabledExtensionNames = exts;
  }
  if (!vkc_check (vkCreateInstance (&ci, NULL, &dev->instance), "vkCreateInstance", error))
    return false;
  if (validation) {
    messenger.pNext = NULL;
    PFN_vkCreateDebugUtilsMessengerEXT create =
        (PFN_vkCreateDebugUtilsMessengerEXT) vkGetInstanceProcAddr (dev->instance, "vkCreateDebugUtilsMessengerEXT");
    if (!create ||
        !vkc_check (create (dev->instance, &messenger, NULL, &dev->messenger), "vkCreateDebugUtilsMessengerEXT", error))
      return false;
  }
  return true;
}

static int
device_type_rank (VkPhysicalDeviceType t)
{
  switch (t) {
  case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 4;
  case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 3;
  case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
  case VK_PHYSICAL_DEVICE_TYPE_CPU: return 1;
  default: return 0;
  }
}

/* Translation layers (Dozen: Vulkan on D3D12) only win when nothing native exists. */
static bool
is_translation_layer (const VkPhysicalDeviceProperties *p)
{
  return strstr (p->deviceName, "Microsoft Direct3D12") != NULL || strstr (p->deviceName, "Dozen") != NULL;
}

static bool
pick_physical (VkcDevice *dev, const char *want, GError **error)
{
  uint32_t n = 0;
  VkResult r = vkEnumeratePhysicalDevices (dev->instance, &n, NULL);
  if (r != VK_SUCCESS || n == 0) {
    g_set_error (error, VKC_ERROR, VKC_ERROR_NO_DEVICE,
                 "no Vulkan device found: install your GPU's Vulkan driver (or Mesa's lavapipe, "
                 "package mesa-vulkan-drivers, to run on the CPU)");
    return false;
  }
  g_autofree VkPhysicalDevice *devs = g_new0 (VkPhysicalDevice, n);
  vkEnumeratePhysicalDevices (dev->instance, &n, devs);

  if (want && *want) {
    char *end = NULL;
    guint64 idx = g_ascii_strtoull (want, &end, 10);
    if (end && *end == '\0') {
      if (idx >= n) {
        g_set_error (error, VKC_ERROR, VKC_ERROR_NO_DEVICE,
                     "DEEPGEN_VK_DEVICE=%s: there are only %u Vulkan devices (0..%u)", want, n, n - 1);
        return false;
      }
      dev->physical = devs[idx];
      return true;
    }
    g_autofree char *lw = g_utf8_strdown (want, -1);
    for (uint32_t i = 0; i < n; i++) {
      VkPhysicalDeviceProperties p;
      vkGetPhysicalDeviceProperties (devs[i], &p);
      g_autofree char *ln = g_utf8_strdown (p.deviceName, -1);
      if (strstr (ln, lw)) {
        dev->physical = devs[i];
        return true;
      }
    }
    g_set_error (error, VKC_ERROR, VKC_ERROR_NO_DEVICE,
                 "DEEPGEN_VK_DEVICE=%s matches no Vulkan device (run `deepgen info` to list them)", want);
    return false;
  }

  int best = -1, best_score = -1;
  for (uint32_t i = 0; i < n; i++) {
    VkPhysicalDeviceProperties p;
    vkGetPhysicalDeviceProperties (devs[i], &p);
    if (p.apiVersion < VK_API_VERSION_1_2)
      continue;
    int score = device_type_rank (p.deviceType) * 2 + (is_translation_layer (&p) ? 0 : 10);
    if (score > best_score) {
      best_score = score;
      best = (int) i;
    }
  }
  if (best < 0) {
    g_set_error (error, VKC_ERROR, VKC_ERROR_NO_DEVICE, "no Vulkan 1.2 device found: update your GPU driver");
    return false;
  }
  dev->physical = devs[best];
  return true;
}

static bool
has_device_extension (VkPhysicalDevice pd, const char *name)
{
  uint32_t n = 0;
  vkEnumerateDeviceExtensionProperties (pd, NULL, &n, NULL);
  g_autofree VkExtensionProperties *e = g_new0 (VkExtensionProperties, n ? n : 1);
  vkEnumerateDeviceExtensionProperties (pd, NULL, &n, e);
  for (uint32_t i = 0; i < n; i++)
    if (strcmp (e[i].extensionName, name) == 0)
      return true;
  return false;
}

/* AMD's own drivers (proprietary, AMDVLK) list KHR cooperative matrices on GPUs before RDNA3
 * too, where there are no matrix cores and the emulation is slower than our scalar kernels (the
 * same rule as ggml's). Vulkan does not name the GPU generation: RDNA3/3.5/4 are recognised by
 * their marketing names (RX 7xxx/9xxx, PRO W7xxx/W9xxx, Radeon 7x0M/8x0M/8x0S iGPUs). */
static bool
amd_rdna3_or_newer (const char *name)
{
  static const char *const pats[] = { "RX 7",        "RX 9",         "PRO W7",       "PRO W9",
                                      "Radeon 740M", "Radeon 760M",  "Radeon 780M",  "Radeon 880M",
                                      "Radeon 890M", "Radeon 8040S", "Radeon 8050S", "Radeon 8060S" };
  for (guint i = 0; i < G_N_ELEMENTS (pats); i++)
    if (strstr (name, pats[i]))
      return true;
  return false;
}

/* Decides whether the cooperative-matrix kernels may run and with which shape; fills the
 * coopmat_* fields of info. Returns true when the extension is to be enabled. */
static bool
probe_coopmat (VkcDevice *dev, bool v13)
{
  VkcDeviceInfo *info = &dev->info;
  bool forced = env_flag ("DEEPGEN_VK_FORCE_COOPMAT");
  info->coopmat_forced = forced;
#define WHY(...) g_snprintf (info->coopmat_why, sizeof info->coopmat_why, __VA_ARGS__)
  if (!has_device_extension (dev->physical, VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME)) {
    WHY ("the driver has no VK_KHR_cooperative_matrix");
    return false;
  }
  VkPhysicalDeviceCooperativeMatrixFeaturesKHR cf = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR
  };
  VkPhysicalDeviceFeatures2 f = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &cf };
  vkGetPhysicalDeviceFeatures2 (dev->physical, &f);
  VkPhysicalDeviceCooperativeMatrixPropertiesKHR cp = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_PROPERTIES_KHR
  };
  VkPhysicalDeviceProperties2 p2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &cp };
  vkGetPhysicalDeviceProperties2 (dev->physical, &p2);
  PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR get =
      (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR) vkGetInstanceProcAddr (
          dev->instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR");
  if (!cf.cooperativeMatrix || !get || !(cp.cooperativeMatrixSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT)) {
    WHY ("VK_KHR_cooperative_matrix is listed but not usable in compute shaders");
    return false;
  }
  uint32_t n = 0;
  get (dev->physical, &n, NULL);
  g_autofree VkCooperativeMatrixPropertiesKHR *props = g_new0 (VkCooperativeMatrixPropertiesKHR, n ? n : 1);
  for (uint32_t i = 0; i < n; i++) props[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR;
  get (dev->physical, &n, props);
  /* fp16 A and B, fp32 C and result, subgroup scope. Prefer 16×16×16 (what the tile shapes of
   * vkc_ops_linear.c are sized for), else the largest M·N listed. */
  GString *shapes = g_string_new (NULL);
  int best = -1;
  for (uint32_t i = 0; i < n; i++) {
    const VkCooperativeMatrixPropertiesKHR *c = &props[i];
    if (c->AType != VK_COMPONENT_TYPE_FLOAT16_KHR || c->BType != VK_COMPONENT_TYPE_FLOAT16_KHR ||
        c->CType != VK_COMPONENT_TYPE_FLOAT32_KHR || c->ResultType != VK_COMPONENT_TYPE_FLOAT32_KHR ||
        c->scope != VK_SCOPE_SUBGROUP_KHR)
      continue;
    g_string_append_printf (shapes, "%s%ux%ux%u", shapes->len ? " " : "", c->MSize, c->NSize, c->KSize);
    /* The kernels stage K in slices of 32 and rows of 16-byte multiples: K must divide 32. */
    if (c->KSize == 0 || 32 % c->KSize != 0 || c->MSize > 32 || c->NSize > 32 || c->MSize == 0 || c->NSize == 0)
      continue;
    bool is16 = c->MSize == 16 && c->NSize == 16 && c->KSize == 16;
    if (best < 0 || is16 ||
        (!(props[best].MSize == 16 && props[best].NSize == 16 && props[best].KSize == 16) &&
         c->MSize * c->NSize > props[best].MSize * props[best].NSize))
      best = (int) i;
  }
  g_strlcpy (info->coopmat_shapes, shapes->str, sizeof info->coopmat_shapes);
  g_string_free (shapes, TRUE);
  if (best < 0) {
    WHY ("no fp16×fp16→fp32 subgroup shape the kernels can use (listed: %s)",
         info->coopmat_shapes[0] ? info->coopmat_shapes : "none");
    return false;
  }
  if (!v13 || !info->fp16_arith) {
    WHY ("the coopmat kernels need Vulkan 1.3 and shaderFloat16");
    return false;
  }
  info->coopmat_m = props[best].MSize;
  info->coopmat_n = props[best].NSize;
  info->coopmat_k = props[best].KSize;
  if (env_flag ("DEEPGEN_VK_DISABLE_COOPMAT")) {
    WHY ("switched off by DEEPGEN_VK_DISABLE_COOPMAT");
    return false;
  }
  const char *rule = NULL;
  if (info->vendor_id == 0x8086 && info->min_subgroup_size != 16)
    /* Before Xe2 (Lunar Lake, Battlemage: subgroups of 16..32), Intel's matrix engines are not
     * reached through KHR cooperative matrices at a useful speed. */
    rule = "Intel GPUs before Xe2 (the vendor rule; DEEPGEN_VK_FORCE_COOPMAT=1 overrides)";
  else if (info->vendor_id == 0x1002 &&
           (info->driver_id == VK_DRIVER_ID_AMD_PROPRIETARY || info->driver_id == VK_DRIVER_ID_AMD_OPEN_SOURCE) &&
           !amd_rdna3_or_newer (info->name))
    rule = "AMD's own drivers before RDNA3 (the vendor rule; DEEPGEN_VK_FORCE_COOPMAT=1 overrides)";
  if (rule && !forced) {
    WHY ("off for %s", rule);
    return false;
  }
  WHY ("%ux%ux%u fp16×fp16→fp32, subgroup %u%s", info->coopmat_m, info->coopmat_n, info->coopmat_k, info->subgroup_size,
       forced ? ", forced by DEEPGEN_VK_FORCE_COOPMAT" : "");
#undef WHY
  return true;
}

static bool
create_logical (VkcDevice *dev, GError **error)
{
  VkcDeviceInfo *info = &dev->info;
  VkPhysicalDeviceDriverProperties driver = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES };
  VkPhysicalDeviceSubgroupSizeControlProperties sgc = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES, .pNext = &driver
  };
  VkPhysicalDeviceSubgroupProperties sg = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES,
                                            .pNext = &sgc };
  VkPhysicalDeviceProperties2 props = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sg };
  vkGetPhysicalDeviceProperties2 (dev->physical, &props);
  const VkPhysicalDeviceProperties *p = &props.properties;
  bool v13 = p->apiVersion >= VK_API_VERSION_1_3;

  g_strlcpy (info->name, p->deviceName, sizeof info->name);
  g_strlcpy (info->driver_name, driver.driverName, sizeof info->driver_name);
  g_strlcpy (info->driver_info, driver.driverInfo, sizeof info->driver_info);
  info->vendor_id = p->vendorID;
  info->device_id = p->deviceID;
  info->api_version = p->apiVersion;
  info->driver_version = p->driverVersion;
  info->driver_id = driver.driverID;
  info->type = p->deviceType;
  info->subgroup_size = sg.subgroupSize;
  info->subgroup_arith = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                         (sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
  info->subgroup_shuffle =
      (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) && (sg.supportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT);
  info->min_subgroup_size = v13 ? sgc.minSubgroupSize : sg.subgroupSize;
  info->max_subgroup_size = v13 ? sgc.maxSubgroupSize : sg.subgroupSize;
  info->max_shared_memory = p->limits.maxComputeSharedMemorySize;
  info->max_workgroup_invocations = p->limits.maxComputeWorkGroupInvocations;
  memcpy (info->max_workgroup_count, p->limits.maxComputeWorkGroupCount, sizeof info->max_workgroup_count);
  info->max_push_constants = p->limits.maxPushConstantsSize;
  info->max_storage_buffer_range = p->limits.maxStorageBufferRange;
  info->min_storage_offset_alignment = p->limits.minStorageBufferOffsetAlignment;
  info->timestamp_period_ns = p->limits.timestampPeriod;

  VkPhysicalDeviceMaintenance3Properties m3 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES };
  VkPhysicalDeviceProperties2 props2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &m3 };
  vkGetPhysicalDeviceProperties2 (dev->physical, &props2);
  info->max_memory_allocation_size = m3.maxMemoryAllocationSize;
  info->max_buffer_size = m3.maxMemoryAllocationSize; /* maxBufferSize needs maintenance4 */

  vkGetPhysicalDeviceMemoryProperties (dev->physical, &dev->memory);
  for (uint32_t h = 0; h < dev->memory.memoryHeapCount; h++)
    if ((dev->memory.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
        dev->memory.memoryHeaps[h].size > info->device_local_bytes)
      info->device_local_bytes = dev->memory.memoryHeaps[h].size;
  for (uint32_t t = 0; t < dev->memory.memoryTypeCount; t++) {
    VkMemoryPropertyFlags f = dev->memory.memoryTypes[t].propertyFlags;
    if ((f & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) && (f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) &&
        dev->memory.memoryHeaps[dev->memory.memoryTypes[t].heapIndex].size >= info->device_local_bytes)
      info->unified_memory = true;
  }
  /* A testing aid (vkc.h): pretend the device has less memory, for callers' memory checks. */
  const char *fake = g_getenv ("DEEPGEN_VK_FAKE_DEVICE_BYTES");
  if (fake && *fake) {
    guint64 bytes = g_ascii_strtoull (fake, NULL, 10);
    if (bytes > 0)
      info->device_local_bytes = bytes;
  }

  /* Supported features; we enable exactly those we may use. */
  VkPhysicalDeviceVulkan13Features f13 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES };
  VkPhysicalDeviceVulkan12Features f12 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
                                           .pNext = v13 ? &f13 : NULL };
  VkPhysicalDeviceVulkan11Features f11 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                           .pNext = &f12 };
  VkPhysicalDeviceFeatures2 f = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f11 };
  vkGetPhysicalDeviceFeatures2 (dev->physical, &f);

  VkPhysicalDeviceVulkan13Features e13 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES };
  VkPhysicalDeviceVulkan12Features e12 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
                                           .pNext = v13 ? &e13 : NULL };
  VkPhysicalDeviceVulkan11Features e11 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                           .pNext = &e12 };
  VkPhysicalDeviceFeatures2 e = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &e11 };
  e.features.shaderInt16 = f.features.shaderInt16;
  e.features.shaderInt64 = f.features.shaderInt64;
  e11.storageBuffer16BitAccess = f11.storageBuffer16BitAccess;
  e12.shaderFloat16 = f12.shaderFloat16;
  e12.shaderInt8 = f12.shaderInt8;
  e12.storageBuffer8BitAccess = f12.storageBuffer8BitAccess;
  e12.vulkanMemoryModel = f12.vulkanMemoryModel;
  /* glslang gives atomics on shared memory Device scope, which needs this too. */
  e12.vulkanMemoryModelDeviceScope = f12.vulkanMemoryModelDeviceScope;
  e12.hostQueryReset = f12.hostQueryReset;
  if (v13) {
    e13.subgroupSizeControl = f13.subgroupSizeControl;
    e13.computeFullSubgroups = f13.computeFullSubgroups;
    e13.shaderIntegerDotProduct = f13.shaderIntegerDotProduct;
    /* Vulkan 1.3 SPIR-V (the coopmat shaders) sizes workgroups with LocalSizeId. */
    e13.maintenance4 = f13.maintenance4;
  }
  info->fp16_arith = f12.shaderFloat16;
  info->int8_arith = f12.shaderInt8;
  info->storage16 = f11.storageBuffer16BitAccess;
  info->storage8 = f12.storageBuffer8BitAccess;
  info->int_dot_product = v13 && f13.shaderIntegerDotProduct;
  info->subgroup_size_control = v13 && f13.subgroupSizeControl && f13.computeFullSubgroups &&
                                (sgc.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT);
  info->cooperative_matrix = probe_coopmat (dev, v13);
  VkPhysicalDeviceCooperativeMatrixFeaturesKHR ecm = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR, .cooperativeMatrix = VK_TRUE
  };
  const char *dev_exts[1];
  uint32_t n_dev_exts = 0;
  if (info->cooperative_matrix) {
    dev_exts[n_dev_exts++] = VK_KHR_COOPERATIVE_MATRIX_EXTENSION_NAME;
    ecm.pNext = e.pNext;
    e.pNext = &ecm;
  } else if (info->coopmat_forced) {
    g_set_error (error, VKC_ERROR, VKC_ERROR_NO_DEVICE,
                 "DEEPGEN_VK_FORCE_COOPMAT is set but %s cannot run the cooperative-matrix kernels: %s", info->name,
                 info->coopmat_why);
    return false;
  }

  /* A queue family that can compute, preferring one with timestamps. */
  uint32_t nq = 0;
  vkGetPhysicalDeviceQueueFamilyProperties (dev->physical, &nq, NULL);
  g_autofree VkQueueFamilyProperties *qf = g_new0 (VkQueueFamilyProperties, nq ? nq : 1);
  vkGetPhysicalDeviceQueueFamilyProperties (dev->physical, &nq, qf);
  int family = -1;
  for (uint32_t i = 0; i < nq; i++) {
    if (!(qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT))
      continue;
    if (family < 0 || (qf[family].timestampValidBits == 0 && qf[i].timestampValidBits > 0))
      family = (int) i;
  }
  if (family < 0) {
    g_set_error (error, VKC_ERROR, VKC_ERROR_NO_DEVICE, "Vulkan device %s has no compute queue", info->name);
    return false;
  }
  dev->queue_family = (uint32_t) family;
  info->timestamps =
      qf[family].timestampValidBits > 0 && p->limits.timestampPeriod > 0 && !env_flag ("DEEPGEN_VK_DISABLE_TIMESTAMPS");

  float prio = 1.0f;
  VkDeviceQueueCreateInfo qci = {
    .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
    .queueFamilyIndex = dev->queue_family,
    .queueCount = 1,
    .pQueuePriorities = &prio,
  };
  VkDeviceCreateInfo dci = {
    .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
    .pNext = &e,
    .queueCreateInfoCount = 1,
    .pQueueCreateInfos = &qci,
    .enabledExtensionCount = n_dev_exts,
    .ppEnabledExtensionNames = n_dev_exts ? dev_exts : NULL,
  };
  if (!vkc_check (vkCreateDevice (dev->physical, &dci, NULL, &dev->device), "vkCreateDevice", error))
    return false;
  vkGetDeviceQueue (dev->device, dev->queue_family, 0, &dev->queue);

  VkCommandPoolCreateInfo pci = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
    .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
    .queueFamilyIndex = dev->queue_family,
  };
  if (!vkc_check (vkCreateCommandPool (dev->device, &pci, NULL, &dev->command_pool), "vkCreateCommandPool", error))
    return false;
  VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
  return vkc_check (vkCreateFence (dev->device, &fci, NULL, &dev->fence), "vkCreateFence", error);
}

VkcDevice *
vkc_device_new (const VkcDeviceOptions *options, GError **error)
{
  VkcDeviceOptions opt = VKC_DEVICE_OPTIONS_DEFAULT;
  if (options)
    opt = *options;
  bool validation = opt.validation < 0 ? env_flag ("DEEPGEN_VK_VALIDATION") : opt.validation != 0;
  const char *want = opt.device ? opt.device : g_getenv ("DEEPGEN_VK_DEVICE");

  VkcDevice *dev = g_new0 (VkcDevice, 1);
  dev->validation = validation;
  dev->pipelines = g_hash_table_new (g_str_hash, g_str_equal);
  dev->set_layouts = g_hash_table_new (g_direct_hash, g_direct_equal);
  dev->pipeline_layouts = g_hash_table_new (g_direct_hash, g_direct_equal);
  dev->spare_command_buffers = g_array_new (FALSE, FALSE, sizeof (VkCommandBuffer));
  dev->spare_query_pools = g_array_new (FALSE, FALSE, sizeof (VkQueryPool));
  if (!create_instance (dev, validation, error) || !pick_physical (dev, want, error) || !create_logical (dev, error)) {
    vkc_device_free (dev);
    return NULL;
  }
  if (!opt.no_pipeline_cache && !env_flag ("DEEPGEN_VK_NO_PIPELINE_CACHE"))
    vkc_pipeline_cache_open (dev);
  if (!dev->pipeline_cache) {
    VkPipelineCacheCreateInfo ci = { .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO };
    vkCreatePipelineCache (dev->device, &ci, NULL, &dev->pipeline_cache);
  }
  vkc_fault_read_env (dev);
  return dev;
}

void
vkc_device_free (VkcDevice *dev)
{
  if (!dev)
    return;
  if (dev->device) {
    vkDeviceWaitIdle (dev->device);
    vkc_pipelines_destroy (dev);
    if (dev->command_pool)
      vkc_spares_free (dev);
    if (dev->pipeline_cache) {
      vkc_pipeline_cache_save (dev);
      vkDestroyPipelineCache (dev->device, dev->pipeline_cache, NULL);
    }
    if (dev->staging)
      vkDestroyBuffer (dev->device, dev->staging, NULL);
    if (dev->staging_memory)
      vkFreeMemory (dev->device, dev->staging_memory, NULL);
    if (dev->fence)
      vkDestroyFence (dev->device, dev->fence, NULL);
    if (dev->command_pool)
      vkDestroyCommandPool (dev->device, dev->command_pool, NULL);
    vkDestroyDevice (dev->device, NULL);
  }
  if (dev->messenger) {
    PFN_vkDestroyDebugUtilsMessengerEXT destroy =
        (PFN_vkDestroyDebugUtilsMessengerEXT) vkGetInstanceProcAddr (dev->instance, "vkDestroyDebugUtilsMessengerEXT");
    if (destroy)
      destroy (dev->instance, dev->messenger, NULL);
  }
  if (dev->instance)
    vkDestroyInstance (dev->instance, NULL);
  g_hash_table_unref (dev->pipelines);
  g_hash_table_unref (dev->set_layouts);
  g_hash_table_unref (dev->pipeline_layouts);
  g_array_unref (dev->spare_command_buffers);
  g_array_unref (dev->spare_query_pools);
  g_free (dev->pipeline_cache_path);
  g_clear_error (&dev->pending_error);
  vkc_fastpaths_free (dev);
  g_free (dev);
}

const VkcDeviceInfo *
vkc_device_info (VkcDevice *dev)
{
  return &dev->info;
}
guint
vkc_device_validation_messages (VkcDevice *dev)
{
  return dev->validation_messages;
}
void
vkc_device_reset_validation_messages (VkcDevice *dev)
{
  dev->validation_messages = 0;
}
bool
vkc_device_validation_enabled (VkcDevice *dev)
{
  return dev->validation;
}
VkDevice
vkc_device_handle (VkcDevice *dev)
{
  return dev->device;
}
VkPhysicalDevice
vkc_device_physical (VkcDevice *dev)
{
  return dev->physical;
}

static const char *
type_name (VkPhysicalDeviceType t)
{
  switch (t) {
  case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
  case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
  case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
  case VK_PHYSICAL_DEVICE_TYPE_CPU: return "CPU";
  default: return "other";
  }
}

char *
vkc_device_describe (VkcDevice *dev)
{
  const VkcDeviceInfo *i = &dev->info;
  GString *s = g_string_new (NULL);
  g_string_append_printf (s, "device: %s (%s, vendor 0x%04x)\n", i->name, type_name (i->type), i->vendor_id);
  g_string_append_printf (s, "driver: %s %s, Vulkan %u.%u.%u\n", i->driver_name, i->driver_info,
                          VK_API_VERSION_MAJOR (i->api_version), VK_API_VERSION_MINOR (i->api_version),
                          VK_API_VERSION_PATCH (i->api_version));
  g_string_append_printf (s, "device-local memory: %.2f GiB%s\n", i->device_local_bytes / 1073741824.0,
                          i->unified_memory ? " (host-visible)" : "");
  g_string_append_printf (s, "fp16 arithmetic: %s, 16-bit storage: %s, 8-bit storage: %s, int8: %s\n",
                          i->fp16_arith ? "yes" : "no", i->storage16 ? "yes" : "no", i->storage8 ? "yes" : "no",
                          i->int8_arith ? "yes" : "no");
  g_string_append_printf (s, "integer dot product: %s, cooperative matrix: %s (%s; fp16→fp32 shapes: %s)\n",
                          i->int_dot_product ? "yes" : "no", i->cooperative_matrix ? "yes" : "no", i->coopmat_why,
                          i->coopmat_shapes[0] ? i->coopmat_shapes : "none");
  g_string_append_printf (s, "subgroup: size %u (%u..%u%s), arithmetic %s, shuffle %s\n", i->subgroup_size,
                          i->min_subgroup_size, i->max_subgroup_size, i->subgroup_size_control ? ", controllable" : "",
                          i->subgroup_arith ? "yes" : "no", i->subgroup_shuffle ? "yes" : "no");
  g_string_append_printf (s, "shared memory: %u KiB, workgroup invocations: %u\n", i->max_shared_memory / 1024,
                          i->max_workgroup_invocations);
  g_string_append_printf (s, "maxStorageBufferRange: %.0f MiB, maxMemoryAllocationSize: %.0f MiB\n",
                          i->max_storage_buffer_range / 1048576.0, i->max_memory_allocation_size / 1048576.0);
  g_string_append_printf (s, "timestamps: %s", i->timestamps ? "yes" : "no");
  return g_string_free (s, FALSE);
}

char **
vkc_list_devices (GError **error)
{
  VkInstance inst;
  VkApplicationInfo app = { .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .apiVersion = VK_API_VERSION_1_2 };
  VkInstanceCreateInfo ci = { .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app };
  if (!vkc_check (vkCreateInstance (&ci, NULL, &inst), "vkCreateInstance", error))
    return NULL;
  uint32_t n = 0;
  vkEnumeratePhysicalDevices (inst, &n, NULL);
  g_autofree VkPhysicalDevice *devs = g_new0 (VkPhysicalDevice, n ? n : 1);
  vkEnumeratePhysicalDevices (inst, &n, devs);
  char **names = g_new0 (char *, n + 1);
  for (uint32_t i = 0; i < n; i++) {
    VkPhysicalDeviceProperties p;
    vkGetPhysicalDeviceProperties (devs[i], &p);
    names[i] = g_strdup_printf ("%u: %s (%s)", i, p.deviceName, type_name (p.deviceType));
  }
  vkDestroyInstance (inst, NULL);
  return names;
}
