/* Sinusoidal timestep embedding (diffusers get_timestep_embedding; MODEL.md §5.2). */
#pragma once
#include "vkc.h"

G_BEGIN_DECLS

/* y [B, dim] f32 (rows may be strided, columns contiguous) from t [B] f32:
 *   f_k = exp(−ln(max_period)·k / (dim/2 − downscale_freq_shift)),  k < dim/2,
 *   y[b] = [sin(t_b·f_k)…, cos(t_b·f_k)…], or cos first when flip_sin_to_cos,
 * computed in fp32 in the same order as diffusers (so t·f_k is the same fp32 number), with a
 * zero last column when dim is odd. The DiT uses dim 256, flip true, shift 0, period 10000. */
void vkc_op_timestep_embedding (VkcCmd *cmd, const VkcTensor *y, const VkcTensor *t, int dim, bool flip_sin_to_cos,
                                double downscale_freq_shift, double max_period);

G_END_DECLS
