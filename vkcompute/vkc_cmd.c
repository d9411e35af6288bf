/* Recording dispatches into one command buffer with exactly the barriers they need.
 *
 * Hazard tracking is by buffer range: we remember what was written and read since the last
 * barrier; a new command that reads or writes something written since then (RAW, WAW), or
 * writes something read since then (WAR), gets one global memory barrier first. Independent
 * dispatches (the q, k and v projections of one input, say) therefore run without barriers
 * between them. */
#include "vkc_internal.h"
#include <string.h>

#define SETS_PER_POOL 512
#define MAX_TIMESTAMPS VKC_TIMESTAMP_QUERIES

typedef struct {
  VkBuffer buffer;
  VkDeviceSize begin, end;
} Span;

struct VkcCmd {
  VkcDevice *dev;
  VkCommandBuffer cb;
  bool ended;
  GPtrArray *descriptor_pools; /* VkDescriptorPool */
  GArray *written, *read;      /* Span, since the last barrier */
  VkPipeline bound;
  guint n_dispatches, n_barriers;
  VkQueryPool queries;
  guint n_queries;
  GPtrArray *labels; /* const char * per timed dispatch */
  double gpu_ms;
  GHashTable *profile;
  /* The first failure while recording (a pipeline or descriptor pool that could not be made):
   * recording goes on as no-ops and the submission reports it. */
  GError *error;
};

/* Records why this command buffer cannot run; only the first reason is kept. */
static void
cmd_fail (VkcCmd *cmd, GError *reason)
{
  if (!cmd->error)
    cmd->error = reason;
  else
    g_error_free (reason);
}

static void
full_barrier (VkcCmd *cmd)
{
  VkMemoryBarrier mb = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
    .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
    .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                     VK_ACCESS_TRANSFER_WRITE_BIT,
  };
  VkPipelineStageFlags stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
  vkCmdPipelineBarrier (cmd->cb, stages, stages, 0, 1, &mb, 0, NULL, 0, NULL);
  g_array_set_size (cmd->written, 0);
  g_array_set_size (cmd->read, 0);
}

static bool
overlaps (GArray *spans, VkBuffer buffer, VkDeviceSize begin, VkDeviceSize end)
{
  for (guint i = 0; i < spans->len; i++) {
    const Span *s = &g_array_index (spans, Span, i);
    if (s->buffer == buffer && s->begin < end && begin < s->end)
      return true;
  }
  return false;
}

static void
track (VkcCmd *cmd, VkBuffer buffer, VkDeviceSize offset, VkDeviceSize size, bool write)
{
  Span s = { buffer, offset, offset + size };
  g_array_append_val (write ? cmd->written : cmd->read, s);
}

static bool
hazard (VkcCmd *cmd, VkBuffer buffer, VkDeviceSize offset, VkDeviceSize size, bool write)
{
  VkDeviceSize end = offset + size;
  return overlaps (cmd->written, buffer, offset, end) || (write && overlaps (cmd->read, buffer, offset, end));
}

VkcCmd *
vkc_cmd_begin (VkcDevice *dev, GError **error)
{
  VkcCmd *cmd = g_new0 (VkcCmd, 1);
  cmd->dev = dev;
  cmd->descriptor_pools = g_ptr_array_new ();
  cmd->written = g_array_new (FALSE, FALSE, sizeof (Span));
  cmd->read = g_array_new (FALSE, FALSE, sizeof (Span));
  cmd->labels = g_ptr_array_new ();
  if (!vkc_command_buffer_take (dev, &cmd->cb, error)) {
    vkc_cmd_free (cmd);
    return NULL;
  }
  if (dev->info.timestamps)
    cmd->queries = vkc_query_pool_take (dev);
  VkCommandBufferBeginInfo bi = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO };
  vkBeginCommandBuffer (cmd->cb, &bi);
  if (cmd->queries) {
    vkCmdResetQueryPool (cmd->cb, cmd->queries, 0, MAX_TIMESTAMPS);
    vkCmdWriteTimestamp (cmd->cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, cmd->queries, cmd->n_queries++);
  }
  /* Order this command buffer after everything submitted before it (earlier command
   * buffers' writes are not otherwise made visible to it). */
  full_barrier (cmd);
  return cmd;
}

VkcDevice *
vkc_cmd_device (VkcCmd *cmd)
{
  return cmd->dev;
}
guint
vkc_cmd_n_dispatches (VkcCmd *cmd)
{
  return cmd->n_dispatches;
}
guint
vkc_cmd_n_barriers (VkcCmd *cmd)
{
  return cmd->n_barriers;
}

static VkDescriptorSet
alloc_set (VkcCmd *cmd, VkDescriptorSetLayout layout)
{
  VkcDevice *dev = cmd->dev;
  VkDescriptorSet set = VK_NULL_HANDLE;
  if (cmd->descriptor_pools->len > 0) {
    VkDescriptorSetAllocateInfo ai = {
      .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
      .descriptorPool = g_ptr_array_index (cmd->descriptor_pools, cmd->descriptor_pools->len - 1),
      .descriptorSetCount = 1,
      .pSetLayouts = &layout,
    };
    if (vkAllocateDescriptorSets (dev->device, &ai, &set) == VK_SUCCESS)
      return set;
  }
  VkDescriptorPoolSize size = { VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, SETS_PER_POOL * 16 };
  VkDescriptorPoolCreateInfo pi = {
    .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
    .maxSets = SETS_PER_POOL,
    .poolSizeCount = 1,
    .pPoolSizes = &size,
  };
  VkDescriptorPool pool;
  VkResult r = vkc_fault_alloc (dev);
  if (r == VK_SUCCESS)
    r = vkCreateDescriptorPool (dev->device, &pi, NULL, &pool);
  if (r != VK_SUCCESS) {
    GError *e = NULL;
    vkc_check (r, "vkCreateDescriptorPool", &e);
    cmd_fail (cmd, e);
    return VK_NULL_HANDLE;
  }
  g_ptr_array_add (cmd->descriptor_pools, pool);
  VkDescriptorSetAllocateInfo ai = {
    .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
    .descriptorPool = pool,
    .descriptorSetCount = 1,
    .pSetLayouts = &layout,
  };
  r = vkAllocateDescriptorSets (dev->device, &ai, &set);
  if (r != VK_SUCCESS) {
    GError *e = NULL;
    vkc_check (r, "vkAllocateDescriptorSets", &e);
    cmd_fail (cmd, e);
    return VK_NULL_HANDLE;
  }
  return set;
}

static void
timestamp_after (VkcCmd *cmd, const char *label)
{
  if (!cmd->queries || cmd->n_queries >= MAX_TIMESTAMPS)
    return;
  vkCmdWriteTimestamp (cmd->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, cmd->queries, cmd->n_queries++);
  g_ptr_array_add (cmd->labels, (gpointer) label);
}

void
vkc_cmd_dispatch (VkcCmd *cmd, VkcPipeline *p, const VkcBinding *bindings, guint n_bindings, const void *push,
                  size_t push_size, uint32_t gx, uint32_t gy, uint32_t gz)
{
  g_assert (!cmd->ended);
  if (!p) {
    /* vkc_pipeline_get failed and kept the reason in the device */
    GError *e = cmd->dev->pending_error;
    cmd->dev->pending_error = NULL;
    cmd_fail (cmd, e ? e : g_error_new (VKC_ERROR, VKC_ERROR_FAILED, "a compute pipeline could not be created"));
  }
  if (cmd->error)
    return;
  g_assert (n_bindings == p->n_bindings);
  g_assert (push_size <= VKC_PUSH_CONSTANT_BYTES);
  const VkcDeviceInfo *info = &cmd->dev->info;
  g_assert (gx >= 1 && gy >= 1 && gz >= 1);
  g_assert (gx <= info->max_workgroup_count[0] && gy <= info->max_workgroup_count[1] &&
            gz <= info->max_workgroup_count[2]);

  bool need_barrier = false;
  for (guint i = 0; i < n_bindings && !need_barrier; i++)
    need_barrier = hazard (cmd, bindings[i].buffer, bindings[i].offset, bindings[i].range, bindings[i].write);
  if (need_barrier) {
    full_barrier (cmd);
    cmd->n_barriers++;
  }
  for (guint i = 0; i < n_bindings; i++)
    track (cmd, bindings[i].buffer, bindings[i].offset, bindings[i].range, bindings[i].write);

  VkDescriptorSet set = alloc_set (cmd, p->set_layout);
  if (!set)
    return;
  VkDescriptorBufferInfo bi[16];
  VkWriteDescriptorSet w[16];
  g_assert (n_bindings <= G_N_ELEMENTS (bi));
  for (guint i = 0; i < n_bindings; i++) {
    g_assert (bindings[i].range > 0 && bindings[i].range <= info->max_storage_buffer_range);
    bi[i] = (VkDescriptorBufferInfo) { bindings[i].buffer, bindings[i].offset, bindings[i].range };
    w[i] = (VkWriteDescriptorSet) {
      .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
      .dstSet = set,
      .dstBinding = i,
      .descriptorCount = 1,
      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
      .pBufferInfo = &bi[i],
    };
  }
  vkUpdateDescriptorSets (cmd->dev->device, n_bindings, w, 0, NULL);

  if (cmd->bound != p->pipeline) {
    vkCmdBindPipeline (cmd->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipeline);
    cmd->bound = p->pipeline;
  }
  vkCmdBindDescriptorSets (cmd->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1, &set, 0, NULL);
  if (push_size > 0) {
    /* Push constants are sized in multiples of 4 bytes. */
    uint8_t buf[VKC_PUSH_CONSTANT_BYTES] = { 0 };
    memcpy (buf, push, push_size);
    vkCmdPushConstants (cmd->cb, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, (uint32_t) ((push_size + 3) & ~3u), buf);
  }
  vkCmdDispatch (cmd->cb, gx, gy, gz);
  cmd->n_dispatches++;
  timestamp_after (cmd, p->shader);
}

static void
transfer_hazards (VkcCmd *cmd, VkBuffer src, VkDeviceSize src_off, VkBuffer dst, VkDeviceSize dst_off,
                  VkDeviceSize size)
{
  if ((src && hazard (cmd, src, src_off, size, false)) || hazard (cmd, dst, dst_off, size, true)) {
    full_barrier (cmd);
    cmd->n_barriers++;
  }
  if (src)
    track (cmd, src, src_off, size, false);
  track (cmd, dst, dst_off, size, true);
}

void
vkc_cmd_fill (VkcCmd *cmd, VkBuffer buffer, VkDeviceSize offset, VkDeviceSize size, uint32_t value)
{
  g_assert (!cmd->ended && offset % 4 == 0 && size % 4 == 0);
  if (cmd->error)
    return;
  transfer_hazards (cmd, VK_NULL_HANDLE, 0, buffer, offset, size);
  vkCmdFillBuffer (cmd->cb, buffer, offset, size, value);
  timestamp_after (cmd, "fill");
}

void
vkc_cmd_copy (VkcCmd *cmd, VkBuffer src, VkDeviceSize src_offset, VkBuffer dst, VkDeviceSize dst_offset,
              VkDeviceSize size)
{
  g_assert (!cmd->ended);
  if (size == 0 || cmd->error)
    return;
  transfer_hazards (cmd, src, src_offset, dst, dst_offset, size);
  VkBufferCopy region = { src_offset, dst_offset, size };
  vkCmdCopyBuffer (cmd->cb, src, dst, 1, &region);
  timestamp_after (cmd, "copy");
}

bool
vkc_cmd_submit_wait (VkcCmd *cmd, GError **error)
{
  VkcDevice *dev = cmd->dev;
  if (!cmd->ended) {
    /* Make this command buffer's writes available to whatever runs after it. */
    full_barrier (cmd);
    vkEndCommandBuffer (cmd->cb);
    cmd->ended = true;
  }
  if (cmd->error) {
    g_propagate_error (error, g_error_copy (cmd->error));
    return false;
  }
  bool ok = vkc_submit_wait (dev, cmd->cb, error);
  if (!ok || !cmd->queries || cmd->n_queries < 2)
    return ok;

  g_autofree uint64_t *ts = g_new0 (uint64_t, cmd->n_queries);
  if (vkGetQueryPoolResults (dev->device, cmd->queries, 0, cmd->n_queries, cmd->n_queries * sizeof (uint64_t), ts,
                             sizeof (uint64_t), VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT) != VK_SUCCESS)
    return ok;
  if (cmd->profile)
    g_hash_table_unref (cmd->profile);
  cmd->profile = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  double period_ms = dev->info.timestamp_period_ns * 1e-6;
  for (guint i = 1; i < cmd->n_queries; i++) {
    const char *label = g_ptr_array_index (cmd->labels, i - 1);
    double ms = (double) (ts[i] - ts[i - 1]) * period_ms;
    double *acc = g_hash_table_lookup (cmd->profile, label);
    if (!acc) {
      acc = g_new0 (double, 1);
      g_hash_table_insert (cmd->profile, (gpointer) label, acc);
    }
    *acc += ms;
  }
  cmd->gpu_ms = (double) (ts[cmd->n_queries - 1] - ts[0]) * period_ms;
  return ok;
}

GHashTable *
vkc_cmd_profile (VkcCmd *cmd)
{
  return cmd->profile ? g_hash_table_ref (cmd->profile) : NULL;
}

double
vkc_cmd_gpu_ms (VkcCmd *cmd)
{
  return cmd->gpu_ms;
}

void
vkc_cmd_free (VkcCmd *cmd)
{
  if (!cmd)
    return;
  VkcDevice *dev = cmd->dev;
  if (cmd->cb)
    vkc_command_buffer_give (dev, cmd->cb);
  for (guint i = 0; i < cmd->descriptor_pools->len; i++)
    vkDestroyDescriptorPool (dev->device, g_ptr_array_index (cmd->descriptor_pools, i), NULL);
  g_ptr_array_unref (cmd->descriptor_pools);
  if (cmd->queries)
    vkc_query_pool_give (dev, cmd->queries);
  g_array_unref (cmd->written);
  g_array_unref (cmd->read);
  g_ptr_array_unref (cmd->labels);
  if (cmd->profile)
    g_hash_table_unref (cmd->profile);
  g_clear_error (&cmd->error);
  g_free (cmd);
}
