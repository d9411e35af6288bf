/* Fault injection for the reliability tests: the N-th device allocation (buffer, memory block,
 * pipeline, descriptor pool, command buffer) fails as a driver out of memory does, or the device
 * is lost at the N-th queue submission or fence wait. Nothing is injected unless asked for, by
 * vkc_device_set_faults or at device creation by DEEPGEN_VK_FAIL_ALLOC_AT=N and
 * DEEPGEN_VK_FAIL_DEVICE_LOST_AT=submit:N | wait:N. A lost device stays lost, as a real one
 * does: every later submission fails until the device is created anew. */
#include "vkc_internal.h"

#include <stdlib.h>
#include <string.h>

void
vkc_device_set_faults (VkcDevice *dev, const VkcFaults *faults)
{
  dev->faults = faults ? *faults : (VkcFaults) { 0 };
  dev->fault_counts = (VkcFaultCounts) { 0 };
}

void
vkc_device_fault_counts (VkcDevice *dev, VkcFaultCounts *counts)
{
  *counts = dev->fault_counts;
}

bool
vkc_device_lost (VkcDevice *dev)
{
  return dev->lost;
}

void
vkc_device_drop_pipelines (VkcDevice *dev)
{
  vkDeviceWaitIdle (dev->device);
  vkc_pipelines_destroy (dev);
  vkc_spares_free (dev);
}

void
vkc_fault_read_env (VkcDevice *dev)
{
  VkcFaults f = { 0 };
  const char *alloc = g_getenv ("DEEPGEN_VK_FAIL_ALLOC_AT");
  if (alloc)
    f.fail_alloc_at = g_ascii_strtoull (alloc, NULL, 10);
  const char *lost = g_getenv ("DEEPGEN_VK_FAIL_DEVICE_LOST_AT");
  if (lost && g_str_has_prefix (lost, "submit:"))
    f.lose_at_submit = g_ascii_strtoull (lost + 7, NULL, 10);
  else if (lost && g_str_has_prefix (lost, "wait:"))
    f.lose_at_wait = g_ascii_strtoull (lost + 5, NULL, 10);
  if (f.fail_alloc_at || f.lose_at_submit || f.lose_at_wait) {
    g_message ("vkc: fault injection on (%s%s%s)", alloc ? "DEEPGEN_VK_FAIL_ALLOC_AT=" : "", alloc ? alloc : "",
               lost ? " DEEPGEN_VK_FAIL_DEVICE_LOST_AT" : "");
    vkc_device_set_faults (dev, &f);
  }
}

VkResult
vkc_fault_alloc (VkcDevice *dev)
{
  guint64 n = ++dev->fault_counts.allocs;
  return dev->faults.fail_alloc_at && n == dev->faults.fail_alloc_at ? VK_ERROR_OUT_OF_DEVICE_MEMORY : VK_SUCCESS;
}

bool
vkc_submit_wait (VkcDevice *dev, VkCommandBuffer cb, GError **error)
{
  if (dev->lost)
    return vkc_check (VK_ERROR_DEVICE_LOST, "vkQueueSubmit", error);
  guint64 submit = ++dev->fault_counts.submits;
  if (dev->faults.lose_at_submit && submit == dev->faults.lose_at_submit) {
    dev->lost = true;
    return vkc_check (VK_ERROR_DEVICE_LOST, "vkQueueSubmit", error);
  }
  VkSubmitInfo si = { .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cb };
  VkResult r = vkQueueSubmit (dev->queue, 1, &si, dev->fence);
  if (r == VK_SUCCESS) {
    r = vkWaitForFences (dev->device, 1, &dev->fence, VK_TRUE, UINT64_MAX);
    vkResetFences (dev->device, 1, &dev->fence);
    guint64 wait = ++dev->fault_counts.waits;
    /* The work really finished (so nothing is freed under the GPU); only the report is lost. */
    if (r == VK_SUCCESS && dev->faults.lose_at_wait && wait == dev->faults.lose_at_wait)
      r = VK_ERROR_DEVICE_LOST;
    if (r != VK_SUCCESS)
      return dev->lost = r == VK_ERROR_DEVICE_LOST, vkc_check (r, "vkWaitForFences", error);
    return true;
  }
  dev->lost = r == VK_ERROR_DEVICE_LOST;
  return vkc_check (r, "vkQueueSubmit", error);
}
