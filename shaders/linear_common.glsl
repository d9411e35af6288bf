// Shared by linear_tiled.comp and linear_gemv.comp: y[M, N] (+)= x[M, K] · W[N, K]ᵀ + b[N].
//
// Bindings: 0 x float[], 1 W (float[], or uint[] with two f16/bf16 per word, low half first,
// or uint[] of 9-word q8_0 blocks), 2 bias float[] (bound to something valid even without
// bias), 3 y float[].
// All offsets and leading dimensions are in elements of the bound ranges, except w_off for
// q8_0, which counts words (a block need not start a whole number of blocks after the
// binding's aligned start); the last dimension of x, W and y is contiguous. For q8_0, K and
// ldw are multiples of 32, so every W row starts on a block.

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
#elif W_T == DTYPE_Q8_0
layout(set = 0, binding = 1) readonly buffer Wbuf { uint wbuf[]; };
// First word of the block that holds W[n, k]: a row is ldw/32 blocks of 9 words.
uint q8_block(uint n, uint k) { return p.w_off + (n * (p.ldw >> 5u) + (k >> 5u)) * 9u; }
float q8_scale(uint blk) { return unpackHalf2x16(wbuf[blk]).x; }
// W[n, k..k+3] for k % 4 == 0 from the block at word blk with scale d: one quant word, its
// bytes sign-extended by bitfieldExtract on an int. d·q is exact in fp32.
vec4 q8_quad(uint blk, uint k, float d)
{
  int w = int(wbuf[blk + 1u + ((k & 31u) >> 2u)]);
  return d * vec4(bitfieldExtract(w, 0, 8), bitfieldExtract(w, 8, 8), bitfieldExtract(w, 16, 8),
                  bitfieldExtract(w, 24, 8));
}
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
