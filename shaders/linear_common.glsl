// Shared by linear_tiled.comp and linear_gemv.comp: y[M, N] (+)= x[M, K] · W[N, K]ᵀ + b[N].
//
// Bindings: 0 x float[], 1 W (float[], or uint[] with two f16/bf16 per word, low half first),
// 2 bias float[] (bound to something valid even without bias), 3 y float[].
// All offsets and leading dimensions are in elements of the bound ranges; the last dimension
// of x, W and y is contiguous.

#define LINEAR_BIAS 1u        // add b[n]
#define LINEAR_ACCUMULATE 2u  // y += … instead of y = …
#define LINEAR_W_PAIRS 4u     // 16-bit W: w_off and ldw are even, so (k even) pairs share a word

layout(push_constant) uniform Push {
  uint M, N, K;
  uint ldx, ldy, ldw;
  uint x_off, y_off, w_off, b_off;
  uint flags;
} p;

layout(set = 0, binding = 0) readonly buffer Xbuf { float xbuf[]; };
layout(set = 0, binding = 2) readonly buffer Bbuf { float bbuf[]; };
layout(set = 0, binding = 3) buffer Ybuf { float ybuf[]; };

#if W_T == DTYPE_F32
layout(set = 0, binding = 1) readonly buffer Wbuf { float wbuf[]; };
float load_w(uint e) { return wbuf[e]; }
#else
layout(set = 0, binding = 1) readonly buffer Wbuf { uint wbuf[]; };
vec2 unpack_w2(uint word)
{
#if W_T == DTYPE_BF16
  return vec2(bf16_lo(word), bf16_hi(word));
#else
  return unpackHalf2x16(word);
#endif
}
float load_w(uint e)
{
  uint word = wbuf[e >> 1];
#if W_T == DTYPE_BF16
  return (e & 1u) != 0u ? bf16_hi(word) : bf16_lo(word);
#else
  return unpackHalf2x16(word)[e & 1u];
#endif
}
// Elements e and e+1 for an even e: one word load.
vec2 load_w2(uint e) { return unpack_w2(wbuf[e >> 1]); }
#endif

// The epilogue shared by both kernels: bias, accumulate, store.
void store_y(uint m, uint n, float v)
{
  if ((p.flags & LINEAR_BIAS) != 0u) v += bbuf[p.b_off + n];
  uint i = p.y_off + m * p.ldy + n;
  if ((p.flags & LINEAR_ACCUMULATE) != 0u) v += ybuf[i];
  ybuf[i] = v;
}
