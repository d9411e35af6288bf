#version 450
// y = ((mean + exp(½·clamp(logvar, lo, hi))·ε) − shift)·scale over NHWC latents, one invocation
// per output element: the diagonal-Gaussian posterior of a VAE encoder (diffusers
// DiagonalGaussianDistribution) sampled with a given ε, or its mean, mapped into the latent
// space of the diffusion model. moments holds mean and logvar side by side in the channels.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;

layout(set = 0, binding = 0) readonly buffer M { float mom[]; };
layout(set = 0, binding = 1) readonly buffer E { float eps[]; };
layout(set = 0, binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
  uint n;              // output elements (pixels · C)
  uint C;
  uint m_off, e_off, y_off;
  uint has_eps;
  uint round_bf16;
  float lo, hi, shift, scale;
} p;

float rnd(float v) { return p.round_bf16 != 0u ? round_bf16(v) : v; }

void main()
{
  uint i = linear_id(256);
  if (i >= p.n) return;
  uint c = i % p.C, px = i / p.C;
  uint m = p.m_off + px * 2u * p.C + c;
  float z = mom[m];
  if (p.has_eps != 0u) {
    float lv = clamp(mom[m + p.C], p.lo, p.hi);
    float sd = rnd(exp(rnd(0.5 * lv)));
    z = rnd(z + rnd(sd * eps[p.e_off + i]));
  }
  y[p.y_off + i] = rnd(rnd(z - p.shift) * p.scale);
}
