/* The generated shader registry (shaders/CMakeLists.txt): the enum VkcShader, the blob table and
 * the lookup tables the op launchers index by parameters. Before the tables, the launchers
 * formatted each variant's name from its parameters; the formulas below are those launchers'
 * (copied from them as they were), and every place of every table must hold exactly the variant
 * that formula names, or VKC_SHADER_NONE where the formula named no declared variant (where the old
 * lookup aborted). No device is needed. */
#include "vkc.h"
#include "vkc_shader_tables.h"
#include <string.h>

/* The variant declared under that name, or VKC_SHADER_NONE. */
static VkcShader
declared (const char *name)
{
  for (int s = VKC_SHADER_NONE + 1; s < VKC_N_SHADERS; s++)
    if (strcmp (vkc_shader_name ((VkcShader) s), name) == 0)
      return (VkcShader) s;
  return VKC_SHADER_NONE;
}

static int n_places;

/* One place of a table: it holds the variant named `want` (formatted as the old launcher did). */
static void
check_place (const char *table, VkcShader got, const char *want)
{
  n_places++;
  VkcShader expect = declared (want);
  if (got != expect)
    g_error ("vkc_shaders_%s: the place of %s holds %s, expected %s", table, want, vkc_shader_name (got),
             vkc_shader_name (expect));
}

static void
test_enum_and_blobs (void)
{
  g_assert_false (vkc_shader_exists (VKC_SHADER_NONE));
  /* Generated from a sorted list: names strictly increasing, so each one is declared once. */
  for (int s = VKC_SHADER_NONE + 2; s < VKC_N_SHADERS; s++)
    g_assert_cmpint (strcmp (vkc_shader_name ((VkcShader) (s - 1)), vkc_shader_name ((VkcShader) s)), <, 0);
  /* Every variant is built, but for the coopmat ones in a build whose glslc lacks the extension. */
  int n_coopmat = 0;
  for (int s = VKC_SHADER_NONE + 1; s < VKC_N_SHADERS; s++) {
    const char *name = vkc_shader_name ((VkcShader) s);
    bool coopmat = strstr (name, "coopmat") != NULL;
    n_coopmat += coopmat;
    if (vkc_shader_exists ((VkcShader) s) != (!coopmat || DEEPGEN_TEST_COOPMAT_SHADERS))
      g_error ("%s: built %d, expected %d", name, vkc_shader_exists ((VkcShader) s),
               !coopmat || DEEPGEN_TEST_COOPMAT_SHADERS);
  }
  /* attention, peak, conv2d ×3, linear ×5 and aligned ×5, the broken f16 one */
  g_assert_cmpint (n_coopmat, ==, 16);
  /* An identifier and its declared name. */
  g_assert_cmpstr (vkc_shader_name (VKC_SHADER_LINEAR_GEMV_SG_Q8_0), ==, "linear_gemv_sg_q8_0");
  g_assert_cmpstr (vkc_shader_name (VKC_SHADER_CONV2D_COOPMAT_BF16), ==, "conv2d_coopmat_bf16");
}

static void
test_tables_name_what_the_launchers_formatted (void)
{
  static const char *const eltwise_ops[] = {
    "copy", "silu", "gelu_erf", "gelu_tanh", "erf", "scale", "add", "mul", "swiglu", "modulate", "gated_add",
  };
  g_assert_cmpuint (G_N_ELEMENTS (vkc_shaders_eltwise), ==, G_N_ELEMENTS (eltwise_ops));
  char n[64];
  for (int a = 0; a < 2; a++) {
    for (int b = 0; b < 2; b++) {
      g_snprintf (n, sizeof n, "adaln_%s%s", a == 0 ? "modulate" : "gated_add", b ? "_bf16" : "");
      check_place ("adaln", vkc_shaders_adaln[a][b], n);
    }
    for (guint op = 0; op < G_N_ELEMENTS (eltwise_ops); op++) {
      g_snprintf (n, sizeof n, "eltwise_%s%s", eltwise_ops[op], a ? "_vec4" : "");
      check_place ("eltwise", vkc_shaders_eltwise[op][a], n);
    }
    check_place ("norm_group_stats", vkc_shaders_norm_group_stats[a], a ? "norm_group_stats_vec4" : "norm_group_stats");
  }
  for (int d = 0; d < VKC_N_DTYPES; d++) {
    const char *dt = vkc_dtype_name ((VkcDType) d);
    g_assert_cmpstr (dt, !=, "?");
    g_snprintf (n, sizeof n, "conv2d_coopmat_%s", dt);
    check_place ("conv2d_coopmat", vkc_shaders_conv2d_coopmat[d], n);
    g_snprintf (n, sizeof n, "linear_tiled_%s", dt);
    check_place ("linear_tiled", vkc_shaders_linear_tiled[d], n);
    g_snprintf (n, sizeof n, "linear_cpu_%s", dt);
    check_place ("linear_cpu", vkc_shaders_linear_cpu[d], n);
    for (int e = 0; e < VKC_N_DTYPES; e++) {
      g_snprintf (n, sizeof n, "convert_%s_%s", dt, vkc_dtype_name ((VkcDType) e));
      check_place ("convert", vkc_shaders_convert[d][e], n);
    }
    for (int a = 0; a < 2; a++) {
      g_snprintf (n, sizeof n, "conv2d_%s%s", a ? "thin_" : "", dt);
      check_place ("conv2d", vkc_shaders_conv2d[a][d], n);
      g_snprintf (n, sizeof n, "embedding_%s_%s", dt, a ? "i32" : "u32");
      check_place ("embedding", vkc_shaders_embedding[d][a], n);
      g_snprintf (n, sizeof n, a ? "linear_gemv_sg_%s" : "linear_gemv_%s", dt);
      check_place ("linear_gemv", vkc_shaders_linear_gemv[a][d], n);
      g_snprintf (n, sizeof n, a ? "linear_blocked_half_%s" : "linear_blocked_%s", dt);
      check_place ("linear_blocked", vkc_shaders_linear_blocked[a][d], n);
      g_snprintf (n, sizeof n, a ? "linear_coopmat_aligned_%s" : "linear_coopmat_%s", dt);
      check_place ("linear_coopmat", vkc_shaders_linear_coopmat[a][d], n);
      g_snprintf (n, sizeof n, "norm_group_apply_%s%s", dt, a ? "_vec4" : "");
      check_place ("norm_group_apply", vkc_shaders_norm_group_apply[d][a], n);
      for (int kind = 0; kind < 2; kind++)
        for (int sg = 0; sg < 2; sg++) {
          g_snprintf (n, sizeof n, "norm_%s_%s%s%s", kind ? "rms" : "layer", sg ? "sg_" : "", dt, a ? "_vec4" : "");
          check_place ("norm_row", vkc_shaders_norm_row[kind][sg][d][a], n);
        }
    }
  }
  g_test_message ("%d places checked", n_places);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/shader_registry/enum_and_blobs", test_enum_and_blobs);
  g_test_add_func ("/shader_registry/tables", test_tables_name_what_the_launchers_formatted);
  return g_test_run ();
}
