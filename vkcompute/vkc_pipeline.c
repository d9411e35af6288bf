/* Compute pipelines built from the SPIR-V embedded at build time, and the on-disk
 * VkPipelineCache that makes the second start fast. */
#include "vkc_internal.h"
#include "vkc_shader_registry.h"
#include <string.h>

static const VkcShaderBlob *
blob_of (VkcShader shader)
{
  g_assert ((unsigned) shader < VKC_N_SHADERS);
  return &vkc_shader_blobs[shader];
}

bool
vkc_shader_exists (VkcShader shader)
{
  return blob_of (shader)->code != NULL;
}

const char *
vkc_shader_name (VkcShader shader)
{
  return blob_of (shader)->name;
}

static VkDescriptorSetLayout
set_layout (VkcDevice *dev, guint n_bindings)
{
  gpointer key = GUINT_TO_POINTER (n_bindings + 1);
  VkDescriptorSetLayout l = g_hash_table_lookup (dev->set_layouts, key);
  if (l)
    return l;
  VkDescriptorSetLayoutBinding b[16];
  g_assert (n_bindings <= G_N_ELEMENTS (b));
  for (guint i = 0; i < n_bindings; i++)
    b[i] = (VkDescriptorSetLayoutBinding) {
      .binding = i,
      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
      .descriptorCount = 1,
      .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
    };
  VkDescriptorSetLayoutCreateInfo ci = {
    .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
    .bindingCount = n_bindings,
    .pBindings = b,
  };
  if (vkCreateDescriptorSetLayout (dev->device, &ci, NULL, &l) != VK_SUCCESS)
    g_error ("vkc: vkCreateDescriptorSetLayout failed");
  g_hash_table_insert (dev->set_layouts, key, l);
  return l;
}

static VkPipelineLayout
pipeline_layout (VkcDevice *dev, guint n_bindings)
{
  gpointer key = GUINT_TO_POINTER (n_bindings + 1);
  VkPipelineLayout l = g_hash_table_lookup (dev->pipeline_layouts, key);
  if (l)
    return l;
  VkDescriptorSetLayout sl = set_layout (dev, n_bindings);
  VkPushConstantRange pc = { VK_SHADER_STAGE_COMPUTE_BIT, 0, VKC_PUSH_CONSTANT_BYTES };
  VkPipelineLayoutCreateInfo ci = {
    .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
    .setLayoutCount = 1,
    .pSetLayouts = &sl,
    .pushConstantRangeCount = 1,
    .pPushConstantRanges = &pc,
  };
  if (vkCreatePipelineLayout (dev->device, &ci, NULL, &l) != VK_SUCCESS)
    g_error ("vkc: vkCreatePipelineLayout failed");
  g_hash_table_insert (dev->pipeline_layouts, key, l);
  return l;
}

VkcPipeline *
vkc_pipeline_get (VkcDevice *dev, VkcShader shader, const uint32_t *spec, guint n_spec, guint n_bindings)
{
  return vkc_pipeline_get_sg (dev, shader, spec, n_spec, n_bindings, 0);
}

VkcPipeline *
vkc_pipeline_get_sg (VkcDevice *dev, VkcShader shader, const uint32_t *spec, guint n_spec, guint n_bindings,
                     uint32_t subgroup_size)
{
  const VkcShaderBlob *blob = blob_of (shader);
  if (shader == VKC_SHADER_NONE)
    g_error ("vkc: no shader variant for these parameters (an empty place of a lookup table of shaders/*.cmake)");
  if (!blob->code)
    g_error ("vkc: shader variant '%s' was not built (a coopmat variant without a coopmat glslc: check "
             "vkc_shader_exists first)",
             blob->name);
  GString *key = g_string_new (blob->name);
  g_string_append_printf (key, "/%u", n_bindings);
  if (subgroup_size)
    g_string_append_printf (key, "/sg%u", subgroup_size);
  for (guint i = 0; i < n_spec; i++) g_string_append_printf (key, ":%u", spec[i]);
  VkcPipeline *p = g_hash_table_lookup (dev->pipelines, key->str);
  if (p) {
    g_string_free (key, TRUE);
    return p;
  }

  p = g_new0 (VkcPipeline, 1);
  p->key = g_string_free (key, FALSE);
  p->shader = blob->name;
  p->n_bindings = n_bindings;
  p->set_layout = set_layout (dev, n_bindings);
  p->layout = pipeline_layout (dev, n_bindings);

  VkShaderModuleCreateInfo mci = {
    .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
    .codeSize = blob->size,
    .pCode = blob->code,
  };
  VkShaderModule module;
  if (vkCreateShaderModule (dev->device, &mci, NULL, &module) != VK_SUCCESS)
    g_error ("vkc: vkCreateShaderModule failed for %s", blob->name);

  VkSpecializationMapEntry entries[32];
  g_assert (n_spec <= G_N_ELEMENTS (entries));
  for (guint i = 0; i < n_spec; i++) entries[i] = (VkSpecializationMapEntry) { i, i * 4, 4 };
  VkSpecializationInfo si = { n_spec, entries, n_spec * 4, spec };
  VkPipelineShaderStageRequiredSubgroupSizeCreateInfo rss = {
    .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO,
    .requiredSubgroupSize = subgroup_size,
  };
  bool control = subgroup_size && dev->info.subgroup_size_control && subgroup_size >= dev->info.min_subgroup_size &&
                 subgroup_size <= dev->info.max_subgroup_size;
  if (subgroup_size && !control)
    g_assert_cmpuint (subgroup_size, ==, dev->info.subgroup_size);
  VkComputePipelineCreateInfo ci = {
    .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
    .stage = {
      .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
      .pNext = control ? &rss : NULL,
      .flags = control ? VK_PIPELINE_SHADER_STAGE_CREATE_REQUIRE_FULL_SUBGROUPS_BIT : 0,
      .stage = VK_SHADER_STAGE_COMPUTE_BIT,
      .module = module,
      .pName = "main",
      .pSpecializationInfo = n_spec ? &si : NULL,
    },
    .layout = p->layout,
  };
  VkResult r = vkc_fault_alloc (dev);
  if (r == VK_SUCCESS)
    r = vkCreateComputePipelines (dev->device, dev->pipeline_cache, 1, &ci, NULL, &p->pipeline);
  vkDestroyShaderModule (dev->device, module, NULL);
  if (r != VK_SUCCESS) {
    /* Out of memory in the driver's compiler: the command buffer being recorded fails with this
     * (vkc_cmd_dispatch takes it over), nothing is cached, a later call tries again. */
    GError *e = NULL;
    g_autofree char *what = g_strdup_printf ("vkCreateComputePipelines (%s)", p->key);
    vkc_check (r, what, &e);
    if (dev->pending_error)
      g_error_free (e);
    else
      dev->pending_error = e;
    g_free (p->key);
    g_free (p);
    return NULL;
  }
  g_hash_table_insert (dev->pipelines, p->key, p);
  return p;
}

const char *
vkc_pipeline_name (VkcPipeline *p)
{
  return p->shader;
}

void
vkc_pipelines_destroy (VkcDevice *dev)
{
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, dev->pipelines);
  while (g_hash_table_iter_next (&it, &k, &v)) {
    VkcPipeline *p = v;
    vkDestroyPipeline (dev->device, p->pipeline, NULL);
    g_free (p->key);
    g_free (p);
  }
  g_hash_table_remove_all (dev->pipelines);
  g_hash_table_iter_init (&it, dev->pipeline_layouts);
  while (g_hash_table_iter_next (&it, &k, &v)) vkDestroyPipelineLayout (dev->device, v, NULL);
  g_hash_table_remove_all (dev->pipeline_layouts);
  g_hash_table_iter_init (&it, dev->set_layouts);
  while (g_hash_table_iter_next (&it, &k, &v)) vkDestroyDescriptorSetLayout (dev->device, v, NULL);
  g_hash_table_remove_all (dev->set_layouts);
}

/* ---- pipeline cache on disk -------------------------------------------------------- */

/* The cache file is per device and driver version; the driver also validates the header,
 * but we check vendor/device/UUID ourselves too because some drivers crash on stale data. */
bool
vkc_pipeline_cache_open (VkcDevice *dev)
{
  VkPhysicalDeviceProperties p;
  vkGetPhysicalDeviceProperties (dev->physical, &p);
  g_autofree char *dir = g_build_filename (g_get_user_cache_dir (), "deepgen", NULL);
  g_autofree char *name = g_strdup_printf ("pipelines-%04x-%04x-%08x.bin", p.vendorID, p.deviceID, p.driverVersion);
  dev->pipeline_cache_path = g_build_filename (dir, name, NULL);

  g_autofree char *data = NULL;
  gsize len = 0;
  bool usable = false;
  if (g_file_get_contents (dev->pipeline_cache_path, &data, &len, NULL) && len >= 16 + VK_UUID_SIZE) {
    uint32_t hdr[4];
    memcpy (hdr, data, 16);
    usable = hdr[0] >= 16 + VK_UUID_SIZE && hdr[0] <= len && hdr[1] == VK_PIPELINE_CACHE_HEADER_VERSION_ONE &&
             hdr[2] == p.vendorID && hdr[3] == p.deviceID && memcmp (data + 16, p.pipelineCacheUUID, VK_UUID_SIZE) == 0;
  }
  VkPipelineCacheCreateInfo ci = {
    .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
    .initialDataSize = usable ? len : 0,
    .pInitialData = usable ? data : NULL,
  };
  return vkCreatePipelineCache (dev->device, &ci, NULL, &dev->pipeline_cache) == VK_SUCCESS;
}

void
vkc_pipeline_cache_save (VkcDevice *dev)
{
  if (!dev->pipeline_cache_path)
    return;
  size_t len = 0;
  if (vkGetPipelineCacheData (dev->device, dev->pipeline_cache, &len, NULL) != VK_SUCCESS || len == 0)
    return;
  g_autofree char *data = g_malloc (len);
  if (vkGetPipelineCacheData (dev->device, dev->pipeline_cache, &len, data) != VK_SUCCESS)
    return;
  g_autofree char *dir = g_path_get_dirname (dev->pipeline_cache_path);
  g_mkdir_with_parents (dir, 0700);
  /* g_file_set_contents writes a temporary file and renames it: a crash never leaves a
   * half-written cache behind. Failing to save only costs time at the next start. */
  g_file_set_contents (dev->pipeline_cache_path, data, (gssize) len, NULL);
}
