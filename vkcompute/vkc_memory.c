/* GPU memory: pools of large blocks with sub-allocation, arenas, and host transfers.
 *
 * Why blocks: drivers limit the number of VkDeviceMemory objects (often 4096) and make each
 * allocation slow, and a model has ~2000 tensors. Each block is one VkDeviceMemory covered by
 * one VkBuffer, so a tensor is (block buffer, offset) and binding it needs no extra object. */
#include "vkc_internal.h"
#include <string.h>

/* Offsets are aligned to this so that any tensor can be bound directly (drivers require
 * minStorageBufferOffsetAlignment, at most 256 in practice) and rows stay vector-aligned. */
#define VKC_ALLOC_ALIGN 256
#define VKC_DEFAULT_BLOCK (256ull << 20)
#define VKC_STAGING_SIZE (64ull << 20)

typedef struct {
  VkDeviceSize offset, size;
} Range;

typedef struct {
  VkDeviceMemory memory;
  VkBuffer buffer;
  VkDeviceSize size;
  void *map;
  GArray *free;           /* Range, sorted by offset (free-list mode) */
  VkDeviceSize arena_top; /* bump pointer (arena mode) */
  bool arena;
} Block;

struct VkcPool {
  VkcDevice *dev;
  VkcPoolKind kind;
  VkDeviceSize block_size;
  char *label;
  GPtrArray *blocks; /* Block* */
  VkDeviceSize used;
  VkDeviceSize expect_end; /* vkc_pool_expect: new blocks cover up to this use */
};

int
vkc_find_memory_type (VkcDevice *dev, uint32_t type_bits, VkMemoryPropertyFlags required,
                      VkMemoryPropertyFlags preferred)
{
  int fallback = -1;
  for (uint32_t i = 0; i < dev->memory.memoryTypeCount; i++) {
    if (!(type_bits & (1u << i)))
      continue;
    VkMemoryPropertyFlags f = dev->memory.memoryTypes[i].propertyFlags;
    if ((f & required) != required)
      continue;
    if ((f & preferred) == preferred)
      return (int) i;
    if (fallback < 0)
      fallback = (int) i;
  }
  return fallback;
}

static VkDeviceSize
align_up (VkDeviceSize x, VkDeviceSize a)
{
  return (x + a - 1) / a * a;
}

static bool
create_buffer_memory (VkcDevice *dev, VkDeviceSize size, VkMemoryPropertyFlags required,
                      VkMemoryPropertyFlags preferred, VkBuffer *buffer, VkDeviceMemory *memory, void **map,
                      const char *label, GError **error)
{
  VkBufferCreateInfo bci = {
    .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
    .size = size,
    .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
    .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
  };
  VkResult created = vkc_fault_alloc (dev);
  if (created == VK_SUCCESS)
    created = vkCreateBuffer (dev->device, &bci, NULL, buffer);
  if (!vkc_check (created, "vkCreateBuffer", error))
    return false;
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements (dev->device, *buffer, &req);
  int type = vkc_find_memory_type (dev, req.memoryTypeBits, required, preferred);
  if (type < 0) {
    g_set_error (error, VKC_ERROR, VKC_ERROR_OUT_OF_MEMORY, "%s: the Vulkan device offers no suitable memory type",
                 label);
    vkDestroyBuffer (dev->device, *buffer, NULL);
    *buffer = VK_NULL_HANDLE;
    return false;
  }
  VkMemoryAllocateInfo ai = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
    .allocationSize = req.size,
    .memoryTypeIndex = (uint32_t) type,
  };
  VkResult r = vkc_fault_alloc (dev);
  if (r == VK_SUCCESS)
    r = vkAllocateMemory (dev->device, &ai, NULL, memory);
  if (r != VK_SUCCESS) {
    g_autoptr (GError) e = NULL;
    vkc_check (r, "vkAllocateMemory", &e);
    g_set_error (error, VKC_ERROR, e->code, "%s: allocating %.1f MiB of GPU memory: %s", label, size / 1048576.0,
                 e->message);
    vkDestroyBuffer (dev->device, *buffer, NULL);
    *buffer = VK_NULL_HANDLE;
    *memory = VK_NULL_HANDLE;
    return false;
  }
  vkBindBufferMemory (dev->device, *buffer, *memory, 0);
  *map = NULL;
  VkMemoryPropertyFlags f = dev->memory.memoryTypes[type].propertyFlags;
  if ((f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) && (f & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT))
    vkMapMemory (dev->device, *memory, 0, VK_WHOLE_SIZE, 0, map);
  return true;
}

VkcPool *
vkc_pool_new (VkcDevice *dev, VkcPoolKind kind, VkDeviceSize block_size, const char *label)
{
  VkcPool *pool = g_new0 (VkcPool, 1);
  pool->dev = dev;
  pool->kind = kind;
  VkDeviceSize cap = MIN (dev->info.max_memory_allocation_size, dev->info.max_buffer_size);
  pool->block_size = MIN (block_size ? block_size : VKC_DEFAULT_BLOCK, cap);
  pool->label = g_strdup (label ? label : "pool");
  pool->blocks = g_ptr_array_new ();
  return pool;
}

static void
block_destroy (VkcDevice *dev, Block *b)
{
  dev->reserved -= b->size;
  if (b->map)
    vkUnmapMemory (dev->device, b->memory);
  vkDestroyBuffer (dev->device, b->buffer, NULL);
  vkFreeMemory (dev->device, b->memory, NULL);
  if (b->free)
    g_array_unref (b->free);
  g_free (b);
}

void
vkc_pool_free (VkcPool *pool)
{
  if (!pool)
    return;
  vkDeviceWaitIdle (pool->dev->device);
  for (guint i = 0; i < pool->blocks->len; i++) block_destroy (pool->dev, g_ptr_array_index (pool->blocks, i));
  g_ptr_array_unref (pool->blocks);
  g_free (pool->label);
  g_free (pool);
}

VkDeviceSize
vkc_pool_piece_size (VkDeviceSize size)
{
  return align_up (MAX (size, 1), VKC_ALLOC_ALIGN);
}

void
vkc_pool_expect (VkcPool *pool, VkDeviceSize bytes)
{
  pool->expect_end = pool->used + bytes;
}

static Block *
add_block (VkcPool *pool, VkDeviceSize min_size, bool arena, GError **error)
{
  VkcDevice *dev = pool->dev;
  VkDeviceSize cap = MIN (dev->info.max_memory_allocation_size, dev->info.max_buffer_size);
  VkDeviceSize want = align_up (min_size, VKC_ALLOC_ALIGN), size;
  if (pool->expect_end > pool->used) /* what is still expected, in blocks the device allows */
    size = MAX (want, MIN (pool->expect_end - pool->used, cap));
  else
    size = MAX (pool->block_size, want);
  if (size > cap) {
    g_set_error (error, VKC_ERROR, VKC_ERROR_TOO_LARGE,
                 "%s: a single %.1f MiB allocation exceeds this GPU's limit of %.1f MiB "
                 "(maxMemoryAllocationSize); try a smaller image size",
                 pool->label, min_size / 1048576.0, cap / 1048576.0);
    return NULL;
  }
  Block *b = g_new0 (Block, 1);
  b->size = size;
  b->arena = arena;
  VkMemoryPropertyFlags required, preferred;
  if (pool->kind == VKC_POOL_HOST) {
    required = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    preferred = required | VK_MEMORY_PROPERTY_HOST_CACHED_BIT;
  } else {
    required = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
    preferred = required;
    if (vkc_find_memory_type (dev, ~0u, required, required) < 0)
      required = 0; /* no device-local type at all: take what exists */
  }
  if (!create_buffer_memory (dev, size, required, preferred, &b->buffer, &b->memory, &b->map, pool->label, error)) {
    g_free (b);
    return NULL;
  }
  if (!arena) {
    b->free = g_array_new (FALSE, FALSE, sizeof (Range));
    Range all = { 0, size };
    g_array_append_val (b->free, all);
  }
  g_ptr_array_add (pool->blocks, b);
  dev->reserved += size;
  dev->reserved_peak = MAX (dev->reserved_peak, dev->reserved);
  return b;
}

static bool
block_take (Block *b, VkDeviceSize size, VkDeviceSize *offset)
{
  for (guint i = 0; i < b->free->len; i++) {
    Range *r = &g_array_index (b->free, Range, i);
    if (r->size >= size) {
      *offset = r->offset;
      r->offset += size;
      r->size -= size;
      if (r->size == 0)
        g_array_remove_index (b->free, i);
      return true;
    }
  }
  return false;
}

static void
fill_alloc (VkcPool *pool, guint bi, Block *b, VkDeviceSize offset, VkDeviceSize size, VkcAlloc *out)
{
  out->buffer = b->buffer;
  out->offset = offset;
  out->size = size;
  out->host = b->map ? (char *) b->map + offset : NULL;
  out->pool = pool;
  out->block = bi;
}

bool
vkc_pool_alloc (VkcPool *pool, VkDeviceSize size, VkcAlloc *out, GError **error)
{
  VkDeviceSize want = align_up (MAX (size, 1), VKC_ALLOC_ALIGN);
  for (guint i = 0; i < pool->blocks->len; i++) {
    Block *b = g_ptr_array_index (pool->blocks, i);
    VkDeviceSize off;
    if (!b->arena && block_take (b, want, &off)) {
      fill_alloc (pool, i, b, off, want, out);
      pool->used += want;
      return true;
    }
  }
  Block *b = add_block (pool, want, false, error);
  if (!b)
    return false;
  VkDeviceSize off;
  block_take (b, want, &off);
  fill_alloc (pool, pool->blocks->len - 1, b, off, want, out);
  pool->used += want;
  return true;
}

void
vkc_pool_release (VkcAlloc *alloc)
{
  VkcPool *pool = alloc->pool;
  if (!pool)
    return;
  Block *b = g_ptr_array_index (pool->blocks, alloc->block);
  if (b->arena) { /* arena memory is released by vkc_pool_arena_reset */
    memset (alloc, 0, sizeof *alloc);
    return;
  }
  Range r = { alloc->offset, alloc->size };
  guint i = 0;
  while (i < b->free->len && g_array_index (b->free, Range, i).offset < r.offset) i++;
  g_array_insert_val (b->free, i, r);
  /* Merge with the neighbours so that large tensors fit again after churn. */
  if (i + 1 < b->free->len) {
    Range *cur = &g_array_index (b->free, Range, i), *next = &g_array_index (b->free, Range, i + 1);
    if (cur->offset + cur->size == next->offset) {
      cur->size += next->size;
      g_array_remove_index (b->free, i + 1);
    }
  }
  if (i > 0) {
    Range *prev = &g_array_index (b->free, Range, i - 1), *cur = &g_array_index (b->free, Range, i);
    if (prev->offset + prev->size == cur->offset) {
      prev->size += cur->size;
      g_array_remove_index (b->free, i);
    }
  }
  pool->used -= alloc->size;
  memset (alloc, 0, sizeof *alloc);
}

bool
vkc_pool_arena_alloc (VkcPool *pool, VkDeviceSize size, VkcAlloc *out, GError **error)
{
  VkDeviceSize want = align_up (MAX (size, 1), VKC_ALLOC_ALIGN);
  for (guint i = 0; i < pool->blocks->len; i++) {
    Block *b = g_ptr_array_index (pool->blocks, i);
    if (b->arena && b->size - b->arena_top >= want) {
      fill_alloc (pool, i, b, b->arena_top, want, out);
      b->arena_top += want;
      pool->used += want;
      return true;
    }
  }
  Block *b = add_block (pool, want, true, error);
  if (!b)
    return false;
  fill_alloc (pool, pool->blocks->len - 1, b, 0, want, out);
  b->arena_top = want;
  pool->used += want;
  return true;
}

void
vkc_pool_arena_reset (VkcPool *pool)
{
  for (guint i = 0; i < pool->blocks->len; i++) {
    Block *b = g_ptr_array_index (pool->blocks, i);
    if (b->arena) {
      pool->used -= b->arena_top;
      b->arena_top = 0;
    }
  }
}

VkDeviceSize
vkc_pool_used (VkcPool *pool)
{
  return pool->used;
}

VkDeviceSize
vkc_device_reserved (VkcDevice *dev, VkDeviceSize *peak)
{
  if (peak)
    *peak = dev->reserved_peak;
  return dev->reserved;
}

void
vkc_device_reset_peak (VkcDevice *dev)
{
  dev->reserved_peak = dev->reserved;
}

VkDeviceSize
vkc_pool_reserved (VkcPool *pool)
{
  VkDeviceSize s = 0;
  for (guint i = 0; i < pool->blocks->len; i++) s += ((Block *) g_ptr_array_index (pool->blocks, i))->size;
  return s;
}

/* ---- transfers ---------------------------------------------------------------------- */

bool
vkc_command_buffer_take (VkcDevice *dev, VkCommandBuffer *out, GError **error)
{
  if (dev->spare_command_buffers->len > 0) {
    guint last = dev->spare_command_buffers->len - 1;
    *out = g_array_index (dev->spare_command_buffers, VkCommandBuffer, last);
    g_array_remove_index (dev->spare_command_buffers, last);
    return true; /* reset when it was given back */
  }
  VkCommandBufferAllocateInfo ai = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
    .commandPool = dev->command_pool,
    .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
    .commandBufferCount = 1,
  };
  VkResult r = vkc_fault_alloc (dev);
  if (r == VK_SUCCESS)
    r = vkAllocateCommandBuffers (dev->device, &ai, out);
  return vkc_check (r, "vkAllocateCommandBuffers", error);
}

void
vkc_command_buffer_give (VkcDevice *dev, VkCommandBuffer cb)
{
  /* On a lost device a submitted command buffer may never leave the pending state: not reusable. */
  if (dev->lost) {
    vkFreeCommandBuffers (dev->device, dev->command_pool, 1, &cb);
    return;
  }
  /* One whose recording failed half-way is still recording, which vkBeginCommandBuffer refuses
   * (its implicit reset covers only the executable and invalid states): reset it here. */
  vkResetCommandBuffer (cb, 0);
  g_array_append_val (dev->spare_command_buffers, cb);
}

VkQueryPool
vkc_query_pool_take (VkcDevice *dev)
{
  VkQueryPool pool = VK_NULL_HANDLE;
  if (dev->spare_query_pools->len > 0) {
    guint last = dev->spare_query_pools->len - 1;
    pool = g_array_index (dev->spare_query_pools, VkQueryPool, last);
    g_array_remove_index (dev->spare_query_pools, last);
    return pool;
  }
  VkQueryPoolCreateInfo qi = {
    .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
    .queryType = VK_QUERY_TYPE_TIMESTAMP,
    .queryCount = VKC_TIMESTAMP_QUERIES,
  };
  if (vkCreateQueryPool (dev->device, &qi, NULL, &pool) != VK_SUCCESS)
    return VK_NULL_HANDLE;
  return pool;
}

void
vkc_query_pool_give (VkcDevice *dev, VkQueryPool pool)
{
  if (dev->lost)
    vkDestroyQueryPool (dev->device, pool, NULL);
  else
    g_array_append_val (dev->spare_query_pools, pool);
}

void
vkc_spares_free (VkcDevice *dev)
{
  if (dev->spare_command_buffers->len > 0)
    vkFreeCommandBuffers (dev->device, dev->command_pool, dev->spare_command_buffers->len,
                          (VkCommandBuffer *) (void *) dev->spare_command_buffers->data);
  g_array_set_size (dev->spare_command_buffers, 0);
  for (guint i = 0; i < dev->spare_query_pools->len; i++)
    vkDestroyQueryPool (dev->device, g_array_index (dev->spare_query_pools, VkQueryPool, i), NULL);
  g_array_set_size (dev->spare_query_pools, 0);
}

bool
vkc_one_shot_begin (VkcDevice *dev, VkCommandBuffer *out, GError **error)
{
  if (!vkc_command_buffer_take (dev, out, error))
    return false;
  VkCommandBufferBeginInfo bi = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
    .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
  };
  vkBeginCommandBuffer (*out, &bi);
  return true;
}

bool
vkc_one_shot_submit (VkcDevice *dev, VkCommandBuffer cb, GError **error)
{
  vkEndCommandBuffer (cb);
  bool ok = vkc_submit_wait (dev, cb, error);
  vkc_command_buffer_give (dev, cb);
  return ok;
}

static bool
ensure_staging (VkcDevice *dev, GError **error)
{
  if (dev->staging)
    return true;
  dev->staging_size = MIN (VKC_STAGING_SIZE, dev->info.max_memory_allocation_size);
  VkMemoryPropertyFlags req = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  return create_buffer_memory (dev, dev->staging_size, req, req | VK_MEMORY_PROPERTY_HOST_CACHED_BIT, &dev->staging,
                               &dev->staging_memory, &dev->staging_map, "staging buffer", error);
}

/* A barrier that orders earlier transfers/dispatches against this transfer and it against
 * later ones; uploads and downloads are rare enough that a full barrier costs nothing. */
static void
transfer_barrier (VkCommandBuffer cb)
{
  VkMemoryBarrier mb = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
    .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_HOST_WRITE_BIT,
    .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                     VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_HOST_READ_BIT,
  };
  vkCmdPipelineBarrier (cb, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT | VK_PIPELINE_STAGE_HOST_BIT,
                        VK_PIPELINE_STAGE_ALL_COMMANDS_BIT | VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
}

bool
vkc_upload (VkcDevice *dev, VkBuffer dst, VkDeviceSize dst_offset, const void *src, VkDeviceSize size, GError **error)
{
  if (size == 0)
    return true;
  if (!ensure_staging (dev, error))
    return false;
  const char *p = src;
  for (VkDeviceSize done = 0; done < size;) {
    VkDeviceSize n = MIN (size - done, dev->staging_size);
    memcpy (dev->staging_map, p + done, n);
    VkCommandBuffer cb;
    if (!vkc_one_shot_begin (dev, &cb, error))
      return false;
    transfer_barrier (cb);
    VkBufferCopy region = { 0, dst_offset + done, n };
    vkCmdCopyBuffer (cb, dev->staging, dst, 1, &region);
    transfer_barrier (cb);
    if (!vkc_one_shot_submit (dev, cb, error))
      return false;
    done += n;
  }
  return true;
}

bool
vkc_download (VkcDevice *dev, void *dst, VkBuffer src, VkDeviceSize src_offset, VkDeviceSize size, GError **error)
{
  if (size == 0)
    return true;
  if (!ensure_staging (dev, error))
    return false;
  char *p = dst;
  for (VkDeviceSize done = 0; done < size;) {
    VkDeviceSize n = MIN (size - done, dev->staging_size);
    VkCommandBuffer cb;
    if (!vkc_one_shot_begin (dev, &cb, error))
      return false;
    transfer_barrier (cb);
    VkBufferCopy region = { src_offset + done, 0, n };
    vkCmdCopyBuffer (cb, src, dev->staging, 1, &region);
    transfer_barrier (cb);
    if (!vkc_one_shot_submit (dev, cb, error))
      return false;
    memcpy (p + done, dev->staging_map, n);
    done += n;
  }
  return true;
}
