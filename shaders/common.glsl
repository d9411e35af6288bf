// Shared helpers for all compute shaders.
//
// Storage conventions:
//  - activations are f32 (`float[]`);
//  - 16-bit weights are read through `uint[]` views and unpacked here, so shaders do not
//    need 16-bit storage support: element i of a bf16/f16 array lives in word i/2, low half
//    first (little-endian);
//  - q8_0 weights (DTYPE_Q8_0, vkcompute/vkc_quant.h) are read the same way, 9 words per
//    block of 32: the f16 scale in the low half of word 0, then 4 int8 quants per word, and
//    decoded with unpackHalf2x16 / bitfieldExtract (no 8-bit storage needed);
//  - q4_0 weights (DTYPE_Q4_0) likewise, 5 words per block of 32: the f16 scale, then 8
//    4-bit quants per word (ggml's byte order: byte i holds values i and i + 16);
//  - every kernel that is given a 1-D problem gets a 2-D grid (see vkc_grid_1d) and
//    rebuilds the linear index with linear_id().

#extension GL_GOOGLE_include_directive : require

#define DTYPE_F32 0
#define DTYPE_F16 1
#define DTYPE_BF16 2
#define DTYPE_Q8_0 5   // = VKC_Q8_0
#define DTYPE_Q4_0 6   // = VKC_Q4_0

float bf16_lo(uint w) { return uintBitsToFloat(w << 16); }
float bf16_hi(uint w) { return uintBitsToFloat(w & 0xffff0000u); }

// f32 → bf16 bits, round to nearest even (NaN kept quiet), same as vkc_f32_to_bf16.
uint f32_to_bf16_bits(float f)
{
  uint u = floatBitsToUint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40u;
  u += 0x7fffu + ((u >> 16) & 1u);
  return u >> 16;
}

float round_bf16(float f) { return uintBitsToFloat(f32_to_bf16_bits(f) << 16); }

uint linear_id(uint local_size)
{
  return (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * local_size
       + gl_LocalInvocationID.x;
}
