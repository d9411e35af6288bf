/* The flow-matching Euler sampler (MODEL.md §7, §1.9): diffusers' FlowMatchEulerDiscreteScheduler
 * reproduced to the float32 bit, classifier-free guidance and the Euler update.
 *
 * The latents are small (16 × H/8 × W/8 per row), so guidance and the update run on the host,
 * where torch's exact rounding sequence is easy to follow; they are element-wise, so the
 * latent layout (NCHW or NHWC) does not matter. */
#pragma once

#include <glib.h>

#include "config.h"
#include "deepgen.h"

G_BEGIN_DECLS

typedef struct {
  guint n_steps;
  float *sigmas;    /* n_steps + 1 values, 1.0 first (without dynamic shift), 0 last */
  float *timesteps; /* n_steps values, 1000·σ in float32: what the DiT's timestep embedding gets */
} DgSchedule;

/* set_timesteps(n_steps): linspace between the (already shifted) σ_max and σ_min of the training
 * table, shifted again (the double shift of σ_min is the reference's), σ and t in float32, a
 * final σ = 0. With use_dynamic_shifting the shift comes from the image instead:
 * μ = dg_schedule_mu (config, image_seq_len) and σ = e^μ/(e^μ + 1/s − 1) (or the linear form);
 * image_seq_len (= (H/16)·(W/16), the DiT's target tokens) is ignored otherwise.
 * Errors: n_steps == 0 (DG_ERROR_INVALID_ARGUMENT). */
DgSchedule *dg_schedule_new (const DgSchedulerConfig *config, guint n_steps, guint image_seq_len, GError **error);
void dg_schedule_free (DgSchedule *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgSchedule, dg_schedule_free)

/* The SD3 pipeline's calculate_shift: μ on the line through (base_image_seq_len, base_shift)
 * and (max_image_seq_len, max_shift), evaluated at image_seq_len. */
double dg_schedule_mu (const DgSchedulerConfig *config, guint image_seq_len);

/* Change strength (image-to-image), as diffusers' StableDiffusion3Img2ImgPipeline.get_timesteps
 * (pipeline_stable_diffusion_3_img2img.py) computes it in Python floats: init = min(n·strength, n),
 * t_start = int(max(n − init, 0)); the run keeps steps t_start … n − 1 of the full n-step schedule
 * (set_begin_index(t_start)). Returns t_start; n when no step is left (strength 0, or so small
 * that n − n·strength rounds to n). */
guint dg_schedule_first_step (guint n_steps, double strength);

/* FlowMatchEulerDiscreteScheduler.scale_noise at the begin index @step: x ← σ·noise + (1 − σ)·x
 * over n values, σ = s->sigmas[step]. DG_PRECISION_BF16 rounds like torch on bf16 tensors (σ cast
 * to bf16, every product and the sum rounded to bf16); DG_PRECISION_F32 computes in float32. */
void dg_scale_noise (const DgSchedule *s, guint step, float *x, const float *noise, gsize n, DgPrecision precision);

/* Classifier-free guidance v = v_u + g·(v_c − v_u) over n values; out may alias either input.
 * DG_PRECISION_BF16 rounds like the reference's bf16 tensors: bf16(v_u + bf16(g·bf16(v_c − v_u)))
 * with g as float32; DG_PRECISION_F32 computes in float32. */
void dg_cfg_combine (float *out, const float *v_uncond, const float *v_cond, gsize n, double guidance,
                     DgPrecision precision);

/* Euler step i: x ← x + (σ_{i+1} − σ_i)·v in place over n values.
 * DG_PRECISION_F32: float32 throughout. DG_PRECISION_BF16 follows diffusers' step() on bf16
 * tensors: the 0-dim float32 dt meets the bf16 velocity first, so torch rounds dt to bf16 and
 * the product to bf16; only the sum with the float32 copy of x is float32, then x is rounded
 * back to bf16 (MODEL.md says "fp32 update" — the code rounds dt and the product as well; this
 * reproduces the golden latents bit for bit). */
void dg_euler_step (const DgSchedule *s, guint step, float *latents, const float *v, gsize n, DgPrecision precision);

G_END_DECLS
