// Shared by linear_tiled.comp and linear_gemv.comp: y[M, N] (+)= x[M, K] · W[N, K]ᵀ + b[N].
//
// Bindings: 0 x float[], 1 W (float[], or uint[] with two f16/bf16 per word, low half first,
// or uint[] of 9-word q8_0 / 5-word q4_0 blocks), 2 bias float[] (bound to something valid
// even without bias), 3 y float[].
// All offsets and leading dimensions are in elements of the bound ranges, except w_off for
// the block types, which counts words (a block need not start a whole number of blocks after
// the binding's aligned start); the last dimension of x, W and y is contiguous. For the block
// types (W_BLOCKS), K and ldw are multiples of 32, so every W row starts on a block.

#define LINEAR_BIAS 1u        // add b[n]
#define LINEAR_ACCUMULATE 2u  // y += … instead of y = …
#define LINEAR_W_PAIRS 4u     // 16-bit W: w_off and ldw are even, so (k even) pairs share a word
// linear_blocked.comp's 16-byte loads: x_off, ldx and K (LINEAR_X_VEC4), or w_off, ldw and K
// for f32 / f16 / bf16 W (LINEAR_W_VEC4), are multiples of 4 elements.
#define LINEAR_X_VEC4 8u
#define LINEAR_W_VEC4 16u

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
#elif W_T == DTYPE_Q8_0 || W_T == DTYPE_Q4_0
// Block-quantized W: the kernels read 4 consecutive weights of a row at a time (wb_quad), so
// the two types differ only in the block size and in how a quad is decoded.
#define W_BLOCKS 1
layout(set = 0, binding = 1) readonly buffer Wbuf { uint wbuf[]; };
#if W_T == DTYPE_Q8_0
const uint WB_WORDS = 9u;
#else
const uint WB_WORDS = 5u;
#endif
// First word of the block that holds W[n, k]: a row is ldw/32 blocks of WB_WORDS words.
uint wb_block(uint n, uint k) { return p.w_off + (n * (p.ldw >> 5u) + (k >> 5u)) * WB_WORDS; }
float wb_scale(uint blk) { return unpackHalf2x16(wbuf[blk]).x; }
#if W_T == DTYPE_Q8_0
// W[n, k..k+3] for k % 4 == 0 from the block at word blk with scale d: one quant word, its
// bytes sign-extended by bitfieldExtract on an int. d·q is exact in fp32.
vec4 wb_quad(uint blk, uint k, float d)
{
  int w = int(wbuf[blk + 1u + ((k & 31u) >> 2u)]);
  return d * vec4(bitfieldExtract(w, 0, 8), bitfieldExtract(w, 8, 8), bitfieldExtract(w, 16, 8),
                  bitfieldExtract(w, 24, 8));
}
#else
// q4_0: W[n, k..k+3] for k % 4 == 0 are nibbles of one quant word, 1 + (k % 16)/4: the low
// nibbles of its 4 bytes for k % 32 < 16, the high ones for the second half of the block.
// (q − 8)·d is exact in fp32 (a 4-bit integer times a half).
vec4 wb_quad(uint blk, uint k, float d)
{
  uint w = wbuf[blk + 1u + ((k & 15u) >> 2u)];
  int s = int((k & 16u) >> 2u);
  return d * (vec4(bitfieldExtract(w, s, 4), bitfieldExtract(w, s + 8, 4), bitfieldExtract(w, s + 16, 4),
                   bitfieldExtract(w, s + 24, 4)) - 8.0);
}
#endif
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
