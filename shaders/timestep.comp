#version 450
// Sinusoidal timestep embedding, as diffusers' get_timestep_embedding (scale 1):
//   half = dim/2, f_k = exp(−ln(max_period)·k / (half − shift)), a = t·f_k (all fp32),
//   y[b] = [sin(a_0..), cos(a_0..)]   or   [cos(a_0..), sin(a_0..)] when flip_sin_to_cos,
//   zero in the last column when dim is odd.
// The fp32 steps follow the reference order so that a_k is the same fp32 number, and exp,
// sin and cos are computed here to ~1 ulp (exp below; sin/cos by Cephes' sincosf) rather than
// with GLSL's built-ins, whose precision the Vulkan spec leaves loose (sin/cos: 2⁻¹¹ absolute
// and only on [−π, π], while a_k reaches ~1000 rad): results do not depend on the vendor.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;

layout(set = 0, binding = 0) readonly buffer T { float t[]; };
layout(set = 0, binding = 1) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
  uint t_off, t_stride;
  uint y_off, y_stride;      // y row stride (elements); columns contiguous
  uint B, dim;
  uint flip;                 // 1: cos first
  float neg_log_period;      // fp32(−ln(max_period))
  float denom;               // fp32(half − downscale_freq_shift)
} p;

// x/d rounded correctly (one residual correction; GLSL's '/' may be 2.5 ulp off).
float div_rn(float x, float d)
{
  float q = x / d;
  float r = fma(-q, d, x);
  return fma(r, 1.0 / d, q);
}

// e^x for the exponents here (−10 < x ≤ 0) to within one ulp, correctly rounded in ~98% of
// cases: x = n·ln2 + r with r carried as r + r_lo (two-sum), e^r = 1 + r + r²·q(r) with the
// Taylor series to r⁸ (truncation < 1e-11 for |r| ≤ ln2/2) and 1 + r kept exact (fast
// two-sum), so that the only large rounding is the last addition. The ulp matters: an error
// of one ulp in f_k moves t·f_k by up to 3e-5 rad at t = 1000.
float exp_acc(float x)
{
  float n = floor(x * 1.44269504088896341 + 0.5);
  precise float a = x - n * 0.693359375;             // exact: 0.693359375 has 9 bits
  precise float b = n * 2.12194440e-4;               // 0.693359375 − ln2
  precise float r = a + b;
  precise float bb = r - a;
  precise float r_lo = (a - (r - bb)) + (b - bb);
  float z = r * r;
  float q = ((((((2.48015873e-5 * r + 1.98412698e-4) * r + 1.38888889e-3) * r
                + 8.33333333e-3) * r + 4.16666667e-2) * r + 1.66666667e-1) * r + 0.5);
  precise float hi = 1.0 + r;
  precise float lo = (1.0 - hi) + r;
  precise float e = hi + (lo + (r_lo + q * z));
  return ldexp(e, int(n));
}

// Cephes sincosf: reduce by π/4 with a three-part constant (exact for |x| < 8192), then
// minimax polynomials on [−π/4, π/4].
void sincos_acc(float x, out float s, out float c)
{
  float sign_s = x < 0.0 ? -1.0 : 1.0, sign_c = 1.0;
  float ax = abs(x);
  uint j = uint(ax * 1.27323954473516);
  j += j & 1u;
  float fj = float(j);
  j &= 7u;
  if (j > 3u) { j -= 4u; sign_s = -sign_s; sign_c = -sign_c; }
  if (j > 1u) sign_c = -sign_c;
  precise float r = ((ax - fj * 0.78515625) - fj * 2.4187564849853515625e-4)
                    - fj * 3.77489497744594108e-8;
  float z = r * r;
  float pc = ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2)
             * z * z - 0.5 * z + 1.0;
  float ps = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * r + r;
  bool swap = j == 1u || j == 2u;
  s = sign_s * (swap ? pc : ps);
  c = sign_c * (swap ? ps : pc);
}

void main()
{
  uint i = linear_id(256);
  if (i >= p.B * p.dim) return;
  uint col = i % p.dim, b = i / p.dim;
  uint half_dim = p.dim / 2u;
  float v = 0.0;                                     // the odd dim's padding column
  if (col < 2u * half_dim) {
    bool second = col >= half_dim;
    uint k = second ? col - half_dim : col;
    float e = div_rn(p.neg_log_period * float(k), p.denom);
    float a = t[p.t_off + b * p.t_stride] * exp_acc(e);
    float s, c;
    sincos_acc(a, s, c);
    v = (second != (p.flip != 0u)) ? c : s;
  }
  y[p.y_off + b * p.y_stride + col] = v;
}
