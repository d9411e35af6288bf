/* `deepgen-bench ops`: throughput of each op at DeepGen's real shapes on the current device.
 *
 * Each case records `reps` identical dispatches into one command buffer after one warm-up
 * submission (pipeline creation, first-touch), and reports the GPU time per dispatch from the
 * timestamps (wall-clock time where the device has none). These are figures for docs/PERF.md,
 * not pass/fail tests. */
#include "bench_ops.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vkc.h"
#include "vkc_half.h"
#include "vkc_quant.h"
#include "vkc_ops_attention.h"
#include "vkc_ops_conv.h"
#include "vkc_ops_eltwise.h"
#include "vkc_ops_linear.h"
#include "vkc_ops_norm.h"

typedef struct {
  VkcDevice *dev;
  VkcPool *pool;
  int reps;
  bool quick;
  /* Measured peaks in GFLOP/s (0 = not measured): scalar fp32 FMA, fp16 FMA, coopmat MMA. */
  double peak_f32, peak_f16, peak_mma;
} Bench;

typedef void (*RecordFunc) (VkcCmd *cmd, void *state);

static bool
tensor (Bench *b, VkcTensor *t, VkcDType dtype, int ndim, const int64_t *shape, GError **error)
{
  if (!vkc_tensor_alloc (t, b->pool, true, dtype, ndim, shape, error))
    return false;
  /* Small random-ish values so nothing overflows or hits denormal slow paths. */
  size_t n = (size_t) vkc_tensor_numel (t);
  g_autofree guint8 *h = g_malloc (vkc_dtype_bytes (dtype, (int64_t) n) + 4);
  bool blocks = vkc_dtype_block (dtype) > 1;
  g_autofree float *qsrc = blocks ? g_new (float, n + 1) : NULL; /* quantized below */
  guint32 s = 12345;
  for (size_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    float v = ((float) (s >> 8) / 16777216.0f - 0.5f) * 0.1f;
    if (blocks)
      qsrc[i] = v;
    else if (dtype == VKC_F32)
      memcpy (h + 4 * i, &v, 4);
    else if (dtype == VKC_U32) {
      guint32 one = 1;
      memcpy (h + 4 * i, &one, 4);
    } else {
      guint16 x = dtype == VKC_BF16 ? vkc_f32_to_bf16 (v) : vkc_f32_to_f16 (v);
      memcpy (h + 2 * i, &x, 2);
    }
  }
  if (blocks)
    vkc_quantize (dtype, qsrc, (int64_t) n, (uint32_t *) (void *) h);
  return vkc_tensor_upload (b->dev, t, h, error);
}

/* Runs the case; returns milliseconds per repetition, or < 0 on error. */
static double
run_case (Bench *b, RecordFunc record, void *state, GError **error)
{
  for (int round = 0; round < 2; round++) {
    int reps = round == 0 ? 1 : b->reps;
    g_autoptr (VkcCmd) cmd = vkc_cmd_begin (b->dev, error);
    if (!cmd)
      return -1;
    for (int i = 0; i < reps; i++) record (cmd, state);
    gint64 t0 = g_get_monotonic_time ();
    if (!vkc_cmd_submit_wait (cmd, error))
      return -1;
    gint64 t1 = g_get_monotonic_time ();
    if (round == 1) {
      double ms = vkc_device_info (b->dev)->timestamps ? vkc_cmd_gpu_ms (cmd) : (t1 - t0) / 1000.0;
      return ms / reps;
    }
  }
  return -1;
}

/* ---- cases ------------------------------------------------------------------------- */

typedef struct {
  VkcTensor y, x, w, bias;
  VkcLinearKernel kernel;
} LinearState;
static void
rec_linear (VkcCmd *cmd, void *s)
{
  LinearState *l = s;
  VkcLinearOptions o = VKC_LINEAR_OPTIONS_DEFAULT;
  o.kernel = l->kernel;
  vkc_op_linear_ex (cmd, &l->y, &l->x, &l->w, &l->bias, &o);
}

/* ---- peaks ------------------------------------------------------------------------- */

typedef struct {
  VkcPipeline *pipe;
  VkcTensor out;
  uint32_t groups;
  uint32_t iters;
} PeakState;
static void
rec_peak (VkcCmd *cmd, void *s)
{
  PeakState *p = s;
  uint32_t off;
  VkcBinding bind = vkc_tensor_binding (vkc_cmd_device (cmd), &p->out, true, &off);
  struct {
    uint32_t iters;
    float seed;
  } pc = { p->iters, 0.37f };
  vkc_cmd_dispatch (cmd, p->pipe, &bind, 1, &pc, sizeof pc, p->groups, 1, 1);
}

/* GFLOP/s of one peak kernel; flop_per_iter_group: FLOP per loop iteration per workgroup. */
static double
peak (Bench *b, VkcPipeline *pipe, double flop_per_iter_group, GError **error)
{
  PeakState s = { .pipe = pipe, .groups = b->quick ? 32 : 512, .iters = b->quick ? 512 : 4096 };
  if (!tensor (b, &s.out, VKC_F32, 1, (int64_t[]) { 65536 }, error))
    return -1;
  double ms = run_case (b, rec_peak, &s, error);
  vkc_pool_arena_reset (b->pool);
  if (ms <= 0)
    return -1;
  return flop_per_iter_group * s.iters * s.groups / (ms * 1e6);
}

static bool
bench_peaks (Bench *b, GError **error)
{
  const VkcDeviceInfo *i = vkc_device_info (b->dev);
  b->peak_f32 = peak (b, vkc_pipeline_get (b->dev, VKC_SHADER_PEAK_FMA_F32, NULL, 0, 1), 256.0 * 64, error);
  if (b->peak_f32 < 0)
    return false;
  if (i->fp16_arith) {
    b->peak_f16 = peak (b, vkc_pipeline_get (b->dev, VKC_SHADER_PEAK_FMA_F16, NULL, 0, 1), 256.0 * 64, error);
    if (b->peak_f16 < 0)
      return false;
  }
  if (i->cooperative_matrix && vkc_shader_exists (VKC_SHADER_PEAK_COOPMAT)) {
    const uint32_t sg = 4; /* subgroups per workgroup */
    const uint32_t spec[4] = { sg * i->subgroup_size, i->coopmat_m, i->coopmat_n, i->coopmat_k };
    VkcPipeline *p = vkc_pipeline_get_sg (b->dev, VKC_SHADER_PEAK_COOPMAT, spec, 4, 1, i->subgroup_size);
    b->peak_mma = peak (b, p, 4.0 * 2 * i->coopmat_m * i->coopmat_n * i->coopmat_k * sg, error);
    if (b->peak_mma < 0)
      return false;
  }
  g_autofree char *f16 = b->peak_f16 > 0 ? g_strdup_printf ("%.1f GFLOP/s", b->peak_f16) : g_strdup ("-");
  g_autofree char *mma = b->peak_mma > 0 ? g_strdup_printf ("%.1f GFLOP/s (%ux%ux%u)", b->peak_mma, i->coopmat_m,
                                                            i->coopmat_n, i->coopmat_k)
                                         : g_strdup_printf ("- (%s)", i->coopmat_why);
  printf ("peaks: fp32 FMA %.1f GFLOP/s, fp16 FMA %s, coopmat MMA %s\n\n", b->peak_f32, f16, mma);
  return true;
}

typedef struct {
  VkcTensor o, q, k, v, valid;
  VkcAttnParams p;
} AttnState;
static void
rec_attn (VkcCmd *cmd, void *s)
{
  AttnState *a = s;
  vkc_op_attention (cmd, &a->o, &a->q, &a->k, &a->v, &a->p);
}

typedef struct {
  VkcTensor y, x, w, bias;
} ConvState;
static void
rec_conv3 (VkcCmd *cmd, void *s)
{
  ConvState *c = s;
  vkc_op_conv2d_3x3 (cmd, &c->y, &c->x, &c->w, &c->bias);
}

typedef struct {
  VkcTensor y, x, w, bias, scratch;
  int groups;
} NormState;
static void
rec_ln (VkcCmd *cmd, void *s)
{
  NormState *n = s;
  vkc_op_layer_norm (cmd, &n->y, &n->x, NULL, NULL, 1e-6f, 0);
}
static void
rec_rms (VkcCmd *cmd, void *s)
{
  NormState *n = s;
  vkc_op_rms_norm (cmd, &n->y, &n->x, &n->w, 1e-6f, 0);
}
static void
rec_gn (VkcCmd *cmd, void *s)
{
  NormState *n = s;
  vkc_op_group_norm (cmd, &n->y, &n->x, &n->w, &n->bias, n->groups, 1e-6f, VKC_NORM_SILU, &n->scratch);
}

typedef struct {
  VkcTensor y, x;
} UnaryState;
static void
rec_gelu (VkcCmd *cmd, void *s)
{
  UnaryState *u = s;
  vkc_op_unary (cmd, &u->y, &u->x, VKC_UNARY_GELU_TANH);
}

/* One line; `peak` (GFLOP/s, 0 = none) adds the fraction of the relevant peak the op reached. */
static void
report_peak (const char *name, const char *shape, double ms, double flops, double bytes, const char *path,
             double peak_gflops)
{
  if (ms < 0)
    return;
  if (flops > 0) {
    double g = flops / (ms * 1e6);
    printf ("%-26s %-40s %10.3f ms %10.1f GFLOP/s", name, shape, ms, g);
    if (path && peak_gflops > 0)
      printf ("  %-8s %5.1f%% of peak", path, 100.0 * g / peak_gflops);
    printf ("\n");
  } else {
    printf ("%-26s %-40s %10.3f ms %10.1f GB/s\n", name, shape, ms, bytes / (ms * 1e6));
  }
  fflush (stdout);
}

static void
report (const char *name, const char *shape, double ms, double flops, double bytes)
{
  report_peak (name, shape, ms, flops, bytes, NULL, 0);
}

/* A case runs when its name contains the filter; a filter ending in '$' must end the name
 * ("dit_ff_up$": the bf16 DiT FF and the host GEMM, not the q8_0 / q4_0 / f32 variants). */
static bool
wanted (const char *filter, const char *name)
{
  if (!filter)
    return true;
  size_t n = strlen (filter);
  if (n > 0 && filter[n - 1] == '$') {
    size_t l = strlen (name);
    return l >= n - 1 && strncmp (name + l - (n - 1), filter, n - 1) == 0;
  }
  return strstr (name, filter) != NULL;
}

static bool
bench_linear (Bench *b, const char *filter, const char *name, int64_t m, int64_t k, int64_t n, VkcDType wt,
              GError **error)
{
  if (!wanted (filter, name))
    return true;
  LinearState s;
  if (!tensor (b, &s.x, VKC_F32, 2, (int64_t[]) { m, k }, error) ||
      !tensor (b, &s.w, wt, 2, (int64_t[]) { n, k }, error) ||
      !tensor (b, &s.bias, VKC_F32, 1, (int64_t[]) { n }, error) ||
      !tensor (b, &s.y, VKC_F32, 2, (int64_t[]) { m, n }, error))
    return false;
  g_autofree char *shape = g_strdup_printf ("M=%" G_GINT64_FORMAT " K=%" G_GINT64_FORMAT " N=%" G_GINT64_FORMAT " %s",
                                            m, k, n, vkc_dtype_name (wt));
  double ms;
  /* One row is bandwidth-bound: report the weight bytes it streams instead of FLOP/s. */
  if (m <= 8) {
    s.kernel = VKC_LINEAR_AUTO;
    ms = run_case (b, rec_linear, &s, error);
    report (name, shape, ms, 0, (double) vkc_dtype_bytes (wt, n * k));
  } else {
    /* Both paths: the scalar tiled kernel against the fp32 FMA peak, the coopmat kernel (where
     * the device has it) against the MMA peak. */
    s.kernel = VKC_LINEAR_TILED;
    ms = run_case (b, rec_linear, &s, error);
    report_peak (name, shape, ms, 2.0 * m * k * n, 0, "scalar", b->peak_f32);
    /* The register-blocked scalar kernel, fp32 tiles, and fp16 tiles where the device has them. */
    if (ms >= 0) {
      s.kernel = VKC_LINEAR_BLOCKED;
      ms = run_case (b, rec_linear, &s, error);
      report_peak (name, shape, ms, 2.0 * m * k * n, 0, "blocked", b->peak_f32);
    }
    /* The GEMM shaped for CPU Vulkan devices (what AUTO takes on them). */
    if (ms >= 0 && vkc_device_info (b->dev)->type == VK_PHYSICAL_DEVICE_TYPE_CPU) {
      s.kernel = VKC_LINEAR_CPU;
      ms = run_case (b, rec_linear, &s, error);
      report_peak (name, shape, ms, 2.0 * m * k * n, 0, "cpu-gemm", b->peak_f32);
    }
    if (ms >= 0 && vkc_device_info (b->dev)->fp16_arith && wt != VKC_F32) {
      s.kernel = VKC_LINEAR_BLOCKED_HALF;
      ms = run_case (b, rec_linear, &s, error);
      report_peak (name, shape, ms, 2.0 * m * k * n, 0, "blk-fp16", b->peak_f32);
    }
    if (ms >= 0 && b->peak_mma > 0) {
      s.kernel = VKC_LINEAR_COOPMAT;
      ms = run_case (b, rec_linear, &s, error);
      report_peak (name, shape, ms, 2.0 * m * k * n, 0, "coopmat", b->peak_mma);
    }
  }
  vkc_pool_arena_reset (b->pool);
  return ms >= 0;
}

/* ---- the host's own GEMM, the CPU proxy's yardstick (issue #9) -------------------------------
 * A plain blocked C GEMM on the host's cores, so that a CPU Vulkan device (lavapipe) can be put
 * against what the same cores do without it: W is packed into panels of 16 columns stored k-major
 * (contiguous, so a 256-deep slice of a panel, 16 KiB, stays in L1), each thread takes a share of
 * the rows, and a 4-row × 16-column register block (GCC vector extensions; AVX2 + FMA where the
 * host has them, chosen at run time) walks the slice. */

typedef float HostV8 __attribute__ ((vector_size (32)));
enum { HOST_MR = 4, HOST_NR = 16, HOST_KC = 256 };

typedef struct {
  const float *x, *wp; /* x [M, K], wp [N/16][K][16]: W packed in 16-column panels */
  float *y;
  int64_t m0, m1, K, N;
} HostGemm;

static inline __attribute__ ((always_inline)) void
host_gemm_rows_body (const HostGemm *g)
{
  const int64_t K = g->K, N = g->N;
  for (int64_t k0 = 0; k0 < K; k0 += HOST_KC) {
    int64_t kc = MIN (HOST_KC, K - k0);
    for (int64_t n0 = 0; n0 + HOST_NR <= N; n0 += HOST_NR) {
      for (int64_t m0 = g->m0; m0 + HOST_MR <= g->m1; m0 += HOST_MR) {
        HostV8 acc[HOST_MR][2];
#pragma GCC unroll 4
        for (int r = 0; r < HOST_MR; r++) {
          memcpy (&acc[r][0], g->y + (m0 + r) * N + n0, 32);
          memcpy (&acc[r][1], g->y + (m0 + r) * N + n0 + 8, 32);
        }
        for (int64_t k = k0; k < k0 + kc; k++) {
          HostV8 w0, w1;
          const float *wk = g->wp + n0 * K + k * HOST_NR;
          memcpy (&w0, wk, 32);
          memcpy (&w1, wk + 8, 32);
#pragma GCC unroll 4
          for (int r = 0; r < HOST_MR; r++) {
            float xv = g->x[(m0 + r) * K + k];
            acc[r][0] += xv * w0;
            acc[r][1] += xv * w1;
          }
        }
#pragma GCC unroll 4
        for (int r = 0; r < HOST_MR; r++) {
          memcpy (g->y + (m0 + r) * N + n0, &acc[r][0], 32);
          memcpy (g->y + (m0 + r) * N + n0 + 8, &acc[r][1], 32);
        }
      }
    }
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__ ((target ("avx2,fma"))) static void
host_gemm_rows_avx2 (const HostGemm *g)
{
  host_gemm_rows_body (g);
}
#endif

static void
host_gemm_rows (const HostGemm *g)
{
  host_gemm_rows_body (g);
}

static gpointer
host_gemm_thread (gpointer data)
{
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports ("avx2") && __builtin_cpu_supports ("fma")) {
    host_gemm_rows_avx2 (data);
    return NULL;
  }
#endif
  host_gemm_rows (data);
  return NULL;
}

/* y = x·Wᵀ for M % (4·threads) == 0 and N % 16 == 0 (DeepGen's shapes); returns milliseconds of
 * the fastest of `reps` runs after one warm-up, packing included. */
static double
host_gemm_ms (int64_t M, int64_t K, int64_t N, int reps)
{
  guint threads = MAX (1u, g_get_num_processors ());
  g_assert (M % (HOST_MR * threads) == 0 && N % HOST_NR == 0);
  g_autofree float *x = g_new (float, (size_t) (M * K));
  g_autofree float *w = g_new (float, (size_t) (N * K));
  g_autofree float *wt = g_new (float, (size_t) (N * K));
  g_autofree float *y = g_new (float, (size_t) (M * N));
  for (int64_t i = 0; i < M * K; i++) x[i] = (float) ((i * 7919) % 1000) * 1e-4f;
  for (int64_t i = 0; i < N * K; i++) w[i] = (float) ((i * 104729) % 1000) * 1e-4f;
  double best = -1;
  for (int rep = 0; rep <= reps; rep++) {
    gint64 t0 = g_get_monotonic_time ();
    for (int64_t n = 0; n < N; n++)
      for (int64_t k = 0; k < K; k++) wt[(n / HOST_NR) * HOST_NR * K + k * HOST_NR + n % HOST_NR] = w[n * K + k];
    memset (y, 0, sizeof (float) * (size_t) (M * N));
    HostGemm part[64];
    GThread *th[64];
    threads = MIN (threads, 64u);
    for (guint t = 0; t < threads; t++) {
      part[t] = (HostGemm) { x, wt, y, M * t / threads, M * (t + 1) / threads, K, N };
      th[t] = g_thread_new ("host-gemm", host_gemm_thread, &part[t]);
    }
    for (guint t = 0; t < threads; t++) g_thread_join (th[t]);
    double ms = (g_get_monotonic_time () - t0) / 1000.0;
    if (rep > 0 && (best < 0 || ms < best))
      best = ms;
  }
  return best;
}

static void
bench_host_gemm (Bench *b, const char *filter, const char *name, int64_t m, int64_t k, int64_t n)
{
  if (!wanted (filter, name))
    return;
  g_autofree char *shape =
      g_strdup_printf ("M=%" G_GINT64_FORMAT " K=%" G_GINT64_FORMAT " N=%" G_GINT64_FORMAT " f32, %u threads", m, k, n,
                       g_get_num_processors ());
  report_peak (name, shape, host_gemm_ms (m, k, n, b->reps), 2.0 * m * k * n, 0, NULL, 0);
}

static bool
bench_attention (Bench *b, const char *filter, const char *name, int64_t batch, int64_t nq, int64_t nk, int hq, int hkv,
                 int d, bool causal, GError **error)
{
  if (!wanted (filter, name))
    return true;
  AttnState s = { 0 };
  if (!tensor (b, &s.q, VKC_F32, 3, (int64_t[]) { batch, nq, hq * d }, error) ||
      !tensor (b, &s.k, VKC_F32, 3, (int64_t[]) { batch, nk, hkv * d }, error) ||
      !tensor (b, &s.v, VKC_F32, 3, (int64_t[]) { batch, nk, hkv * d }, error) ||
      !tensor (b, &s.o, VKC_F32, 3, (int64_t[]) { batch, nq, hq * d }, error))
    return false;
  s.p = (VkcAttnParams) {
    .heads_q = hq, .heads_kv = hkv, .head_dim = d, .scale = 1.0f / sqrtf ((float) d), .causal = causal
  };
  /* Both paths, as for linear: scalar against the fp32 FMA peak, coopmat against the MMA peak. */
  VkcAttnTuning tu = VKC_ATTN_TUNING_DEFAULT;
  tu.path = 1;
  vkc_attention_set_tuning (&tu);
  double ms = run_case (b, rec_attn, &s, error);
  g_autofree char *shape = g_strdup_printf ("B=%" G_GINT64_FORMAT " N=%" G_GINT64_FORMAT " H=%d/%d D=%d%s", batch, nq,
                                            hq, hkv, d, causal ? " causal" : "");
  double flops = 4.0 * batch * hq * nq * nk * d * (causal ? 0.5 : 1.0);
  report_peak (name, shape, ms, flops, 0, "scalar", b->peak_f32);
  tu.path = 2;
  vkc_attention_set_tuning (&tu);
  g_autofree char *path = vkc_attention_describe (b->dev, d);
  if (ms >= 0 && b->peak_mma > 0 && g_str_has_prefix (path, "coopmat")) {
    ms = run_case (b, rec_attn, &s, error);
    report_peak (name, shape, ms, flops, 0, "coopmat", b->peak_mma);
  }
  vkc_attention_set_tuning (NULL);
  vkc_pool_arena_reset (b->pool);
  return ms >= 0;
}

static bool
bench_conv (Bench *b, const char *filter, const char *name, int64_t h, int64_t w, int64_t cin, int64_t cout,
            GError **error)
{
  if (!wanted (filter, name))
    return true;
  ConvState s;
  if (!tensor (b, &s.x, VKC_F32, 4, (int64_t[]) { 1, h, w, cin }, error) ||
      !tensor (b, &s.w, VKC_BF16, 4, (int64_t[]) { cout, 3, 3, cin }, error) ||
      !tensor (b, &s.bias, VKC_F32, 1, (int64_t[]) { cout }, error) ||
      !tensor (b, &s.y, VKC_F32, 4, (int64_t[]) { 1, h, w, cout }, error))
    return false;
  vkc_conv_set_path (1);
  double ms = run_case (b, rec_conv3, &s, error);
  g_autofree char *shape = g_strdup_printf (
      "%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " %" G_GINT64_FORMAT "->%" G_GINT64_FORMAT " 3x3 bf16", h, w, cin, cout);
  report_peak (name, shape, ms, 2.0 * h * w * cin * cout * 9, 0, "scalar", b->peak_f32);
  /* The register-blocked scalar implicit GEMM (fp32 tiles), where it passed its self-check. */
  vkc_conv_set_path (3);
  g_autofree char *blocked = vkc_conv_describe (b->dev, VKC_BF16);
  if (ms >= 0 && g_str_has_prefix (blocked, "scalar blocked")) {
    ms = run_case (b, rec_conv3, &s, error);
    report_peak (name, shape, ms, 2.0 * h * w * cin * cout * 9, 0, "blocked", b->peak_f32);
  }
  vkc_conv_set_path (2);
  g_autofree char *path = vkc_conv_describe (b->dev, VKC_BF16);
  if (ms >= 0 && b->peak_mma > 0 && g_str_has_prefix (path, "coopmat")) {
    ms = run_case (b, rec_conv3, &s, error);
    report_peak (name, shape, ms, 2.0 * h * w * cin * cout * 9, 0, "coopmat", b->peak_mma);
  }
  vkc_conv_set_path (0);
  vkc_pool_arena_reset (b->pool);
  return ms >= 0;
}

static bool
bench_norms (Bench *b, const char *filter, GError **error)
{
  NormState s = { 0 };
  int64_t rows = 1324, c = 1536;
  if (wanted (filter, "layer_norm") || wanted (filter, "rms_norm")) {
    if (!tensor (b, &s.x, VKC_F32, 2, (int64_t[]) { rows, c }, error) ||
        !tensor (b, &s.w, VKC_F32, 1, (int64_t[]) { c }, error) ||
        !tensor (b, &s.y, VKC_F32, 2, (int64_t[]) { rows, c }, error))
      return false;
    double bytes = 2.0 * rows * c * 4;
    if (wanted (filter, "layer_norm"))
      report ("layer_norm", "1324x1536 (DiT tokens)", run_case (b, rec_ln, &s, error), 0, bytes);
    if (wanted (filter, "rms_norm"))
      report ("rms_norm", "1324x1536", run_case (b, rec_rms, &s, error), 0, bytes);
    vkc_pool_arena_reset (b->pool);
  }
  if (wanted (filter, "group_norm")) {
    int64_t h = 128, w = 128, ch = 512;
    s.groups = 32;
    if (!tensor (b, &s.x, VKC_F32, 4, (int64_t[]) { 1, h, w, ch }, error) ||
        !tensor (b, &s.w, VKC_F32, 1, (int64_t[]) { ch }, error) ||
        !tensor (b, &s.bias, VKC_F32, 1, (int64_t[]) { ch }, error) ||
        !tensor (b, &s.y, VKC_F32, 4, (int64_t[]) { 1, h, w, ch }, error))
      return false;
    int64_t scratch = vkc_group_norm_scratch_elems (b->dev, &s.y, &s.x, s.groups);
    if (!tensor (b, &s.scratch, VKC_F32, 1, &scratch, error))
      return false;
    report ("group_norm_silu", "128x128x512, 32 groups (VAE)", run_case (b, rec_gn, &s, error), 0,
            2.0 * h * w * ch * 4);
    vkc_pool_arena_reset (b->pool);
  }
  if (wanted (filter, "gelu_tanh")) {
    UnaryState u;
    if (!tensor (b, &u.x, VKC_F32, 2, (int64_t[]) { 1024, 6144 }, error) ||
        !tensor (b, &u.y, VKC_F32, 2, (int64_t[]) { 1024, 6144 }, error))
      return false;
    report ("gelu_tanh", "1024x6144 (DiT FF)", run_case (b, rec_gelu, &u, error), 0, 2.0 * 1024 * 6144 * 4);
    vkc_pool_arena_reset (b->pool);
  }
  return true;
}

bool
deepgen_bench_ops (const char *filter, int reps, bool quick, GError **error)
{
  Bench b = { 0 };
  b.reps = MAX (reps, 1);
  b.quick = quick;
  b.dev = vkc_device_new (NULL, error);
  if (!b.dev)
    return false;
  b.pool = vkc_pool_new (b.dev, VKC_POOL_DEVICE, 0, "bench");
  g_autofree char *desc = vkc_device_describe (b.dev);
  printf ("%s\n\n", desc);
  if (!bench_peaks (&b, error)) {
    vkc_pool_free (b.pool);
    vkc_device_free (b.dev);
    return false;
  }
  printf ("%-26s %-40s %13s %17s\n", "op", "shape", "time/op", "throughput");
  /* `quick` shrinks token counts 4× so that a CPU device finishes in seconds. */
  int64_t q = quick ? 4 : 1;
  /* The host's C GEMM at the DiT FF shape: what a CPU device's kernels are held against. */
  bench_host_gemm (&b, filter, "host C gemm dit_ff_up", 1024 / q, 1536, 6144);
  bool ok = bench_linear (&b, filter, "linear dit_ff_up", 1024 / q, 1536, 6144, VKC_BF16, error) &&
            bench_linear (&b, filter, "linear dit_ff_up_q8_0", 1024 / q, 1536, 6144, VKC_Q8_0, error) &&
            bench_linear (&b, filter, "linear dit_ff_up_q4_0", 1024 / q, 1536, 6144, VKC_Q4_0, error) &&
            bench_linear (&b, filter, "linear dit_qkv", 1324 / q, 1536, 1536, VKC_BF16, error) &&
            bench_linear (&b, filter, "linear connector_fc1", 424 / q, 2048, 11946, VKC_BF16, error) &&
            bench_linear (&b, filter, "linear vit_patch", 1024 / q, 1176, 1280, VKC_BF16, error) &&
            bench_linear (&b, filter, "linear llm_mlp_gemv", 1, 2048, 11008, VKC_BF16, error) &&
            bench_linear (&b, filter, "linear llm_mlp_gemv_q8_0", 1, 2048, 11008, VKC_Q8_0, error) &&
            bench_linear (&b, filter, "linear llm_mlp_gemv_q4_0", 1, 2048, 11008, VKC_Q4_0, error) &&
            bench_linear (&b, filter, "linear dit_ff_up_f32", 1024 / q, 1536, 6144, VKC_F32, error) &&
            bench_attention (&b, filter, "attention dit_joint", 1, 1324 / q, 1324 / q, 24, 24, 64, false, error) &&
            bench_attention (&b, filter, "attention llm", 1, 450 / q, 450 / q, 16, 2, 128, true, error) &&
            bench_attention (&b, filter, "attention vit_full", 1, 1024 / q, 1024 / q, 16, 16, 80, false, error) &&
            bench_conv (&b, filter, "conv3x3 vae_512", 64 / q, 64 / q, 512, 512, error) &&
            bench_conv (&b, filter, "conv3x3 vae_128", 256 / q, 256 / q, 128, 128, error) &&
            bench_norms (&b, filter, error);
  guint messages = vkc_device_validation_messages (b.dev);
  vkc_pool_free (b.pool);
  vkc_device_free (b.dev);
  if (ok && messages) {
    g_set_error (error, VKC_ERROR, VKC_ERROR_FAILED, "%u validation messages", messages);
    return false;
  }
  return ok;
}
