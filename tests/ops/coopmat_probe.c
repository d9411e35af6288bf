/* Exit 0 when this device runs the cooperative-matrix kernels (and this build has them), 77
 * (ctest: skipped) otherwise, saying why. tests/ops/run-in-root.sh asks it before running a
 * coopmat test with DEEPGEN_VK_FORCE_COOPMAT (which would fail loudly instead). */
#include "vkc.h"
#include <stdio.h>

int
main (void)
{
  g_unsetenv ("DEEPGEN_VK_FORCE_COOPMAT");
  g_autoptr (GError) error = NULL;
  VkcDeviceOptions opt = VKC_DEVICE_OPTIONS_DEFAULT;
  opt.validation = 0;
  opt.no_pipeline_cache = true;
  VkcDevice *dev = vkc_device_new (&opt, &error);
  if (!dev) {
    printf ("SKIP: no Vulkan device: %s\n", error->message);
    return 77;
  }
  const VkcDeviceInfo *i = vkc_device_info (dev);
  int rc = 0;
  if (!i->cooperative_matrix) {
    printf ("SKIP: %s: no cooperative matrices: %s\n", i->name, i->coopmat_why);
    rc = 77;
  } else if (!vkc_shader_exists (VKC_SHADER_LINEAR_COOPMAT_F16)) {
    printf ("SKIP: this build has no coopmat shaders (its glslc lacks GL_KHR_cooperative_matrix)\n");
    rc = 77;
  } else {
    printf ("%s (%s %s): cooperative matrix %s\n", i->name, i->driver_name, i->driver_info, i->coopmat_why);
  }
  vkc_device_free (dev);
  return rc;
}
