/* Flow-matching Euler schedule, guidance and update (scheduler.h). Every expression follows the
 * dtype of the matching diffusers/numpy/torch expression (noted per line), because the tests
 * demand equal float32 bits. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "scheduler.h"

#include <math.h>

#include "dg_i18n.h"
#include "vkc_half.h"

/* σ of the training table at index k (k = num_train..1), as FlowMatchEulerDiscreteScheduler.
 * __init__ computes it in float32 torch: s = k / N; σ = shift·s / (1 + (shift − 1)·s), the
 * Python scalars shift and shift − 1 entering as float32. With dynamic shifting the table stays
 * unshifted. */
static float
train_sigma (const DgSchedulerConfig *c, guint k)
{
  float s = (float) k / (float) c->num_train_timesteps;
  if (c->use_dynamic_shifting)
    return s;
  return (float) c->shift * s / (1.0f + (float) (c->shift - 1.0) * s);
}

double
dg_schedule_mu (const DgSchedulerConfig *c, guint image_seq_len)
{
  double m = (c->max_shift - c->base_shift) / ((double) c->max_image_seq_len - c->base_image_seq_len);
  double b = c->base_shift - m * c->base_image_seq_len;
  return image_seq_len * m + b;
}

/* set_timesteps' float64 shift of one (unshifted) s = t/1000. */
static double
shift_sigma (const DgSchedulerConfig *c, double s, double mu)
{
  if (!c->use_dynamic_shifting)
    return c->shift * s / (1 + (c->shift - 1) * s);
  /* time_shift(mu, 1.0, s): the exponent 1.0 makes numpy's power the identity. */
  if (c->time_shift_type == DG_TIME_SHIFT_EXPONENTIAL)
    return exp (mu) / (exp (mu) + (1 / s - 1));
  return mu / (mu + (1 / s - 1));
}

DgSchedule *
dg_schedule_new (const DgSchedulerConfig *c, guint n_steps, guint image_seq_len, GError **error)
{
  if (n_steps == 0) {
    g_set_error (error, DG_ERROR, DG_ERROR_INVALID_ARGUMENT, _ ("the number of steps must be at least 1"));
    return NULL;
  }
  const double T = c->num_train_timesteps;
  /* sigma_max / sigma_min are Python floats (.item()) of the float32 table ends. */
  double t_start = (double) train_sigma (c, c->num_train_timesteps) * T;
  double t_stop = (double) train_sigma (c, 1) * T;
  double mu = c->use_dynamic_shifting ? dg_schedule_mu (c, image_seq_len) : 0.0;

  DgSchedule *s = g_new0 (DgSchedule, 1);
  s->n_steps = n_steps;
  s->sigmas = g_new (float, n_steps + 1);
  s->timesteps = g_new (float, n_steps);
  /* numpy.linspace(t_start, t_stop, n): i·step + start, the last value set to stop exactly
   * (and only start for n = 1). */
  double step = n_steps > 1 ? (t_stop - t_start) / (n_steps - 1) : 0.0;
  for (guint i = 0; i < n_steps; i++) {
    double t = (n_steps > 1 && i == n_steps - 1) ? t_stop : i * step + t_start;
    float sigma = (float) shift_sigma (c, t / T, mu);
    s->sigmas[i] = sigma;
    s->timesteps[i] = sigma * (float) T; /* float32 tensor · int */
  }
  s->sigmas[n_steps] = 0.0f;
  return s;
}

void
dg_schedule_free (DgSchedule *s)
{
  if (!s)
    return;
  g_free (s->sigmas);
  g_free (s->timesteps);
  g_free (s);
}

static inline float
bf (float x)
{
  return vkc_round_bf16 (x);
}

void
dg_cfg_combine (float *out, const float *vu, const float *vc, gsize n, double guidance, DgPrecision precision)
{
  /* `g * t` with a Python float: torch keeps the scalar at float32 (opmath) for both dtypes. */
  const float g = (float) guidance;
  if (precision == DG_PRECISION_BF16) {
    for (gsize i = 0; i < n; i++) out[i] = bf (vu[i] + bf (g * bf (vc[i] - vu[i])));
  } else {
    for (gsize i = 0; i < n; i++) out[i] = vu[i] + g * (vc[i] - vu[i]);
  }
}

void
dg_euler_step (const DgSchedule *s, guint step, float *x, const float *v, gsize n, DgPrecision precision)
{
  g_return_if_fail (step < s->n_steps);
  float dt = s->sigmas[step + 1] - s->sigmas[step]; /* 0-dim float32 tensors */
  if (precision == DG_PRECISION_BF16) {
    const float dtb = bf (dt);
    for (gsize i = 0; i < n; i++) x[i] = bf (x[i] + bf (dtb * v[i]));
  } else {
    for (gsize i = 0; i < n; i++) x[i] = x[i] + dt * v[i];
  }
}

guint
dg_schedule_first_step (guint n_steps, double strength)
{
  /* Python: init_timestep = min(num_inference_steps * strength, num_inference_steps) (a float),
   * t_start = int(max(num_inference_steps - init_timestep, 0)) (truncation); order is 1. */
  double init = MIN ((double) n_steps * strength, (double) n_steps);
  double rest = MAX ((double) n_steps - init, 0.0);
  return (guint) MIN (rest, (double) n_steps);
}

void
dg_scale_noise (const DgSchedule *s, guint step, float *x, const float *noise, gsize n, DgPrecision precision)
{
  g_return_if_fail (step < s->n_steps);
  /* sigmas.to(dtype=sample.dtype); `sigma * noise + (1.0 - sigma) * sample` */
  if (precision == DG_PRECISION_BF16) {
    const float sg = bf (s->sigmas[step]), keep = bf (1.0f - sg);
    for (gsize i = 0; i < n; i++) x[i] = bf (bf (sg * noise[i]) + bf (keep * x[i]));
  } else {
    const float sg = s->sigmas[step], keep = 1.0f - sg;
    for (gsize i = 0; i < n; i++) x[i] = sg * noise[i] + keep * x[i];
  }
}
