// Accurate fp32 transcendentals for the element-wise ops (exp, erf, SiLU, GELU).
//
// GLSL's exp() only promises (3 + 2|x|) ulp and drivers implement it as exp2(x·log2 e), whose
// error grows with |x|; GLSL has no erf at all. The activations are compared against double
// references at ~1e-7 relative, so these are written out with explicit range reduction.
// Coefficients were fitted (weighted least squares on the relative error, then rounded to
// fp32) against mpmath; the max errors quoted were measured by evaluating the fp32 Horner
// schemes below in numpy float32.

// exp(a + b) for |b| << 1 (b extends a's precision), ~1 ulp. Cody–Waite reduction
// a = k·ln2 + r with ln2 split in two (the high part has 15 significant bits, so k·LN2_HI is
// exact for |k| < 512), then a degree-7 Taylor polynomial on |r| <= ln2/2 (truncation
// 0.347^8/8! = 5e-9 relative). Saturates to 0 below -103 and to +inf above 88.72.
// k comes from floor(), not roundEven(): with roundEven, lavapipe's results were off by up
// to 4e-7 relative for |a| ~ 10 (the float k and its int disagreed somewhere); `precise`
// keeps drivers from reassociating the reduction.
float exp2_parts(float a, float b)
{
  const float LOG2E = 1.44269504f;
  const float LN2_HI = 0.693145751953125f;
  const float LN2_LO = 1.42860677e-06f;
  if (a < -103.0f) return 0.0f;
  if (a > 88.72f) return uintBitsToFloat(0x7f800000u);
  int ki = int(floor(fma(a, LOG2E, 0.5f)));
  float k = float(ki);
  precise float r = (a - k * LN2_HI) - k * LN2_LO;
  r += b;
  float p = 1.0f / 5040.0f;
  p = fma(p, r, 1.0f / 720.0f);
  p = fma(p, r, 1.0f / 120.0f);
  p = fma(p, r, 1.0f / 24.0f);
  p = fma(p, r, 1.0f / 6.0f);
  p = fma(p, r, 0.5f);
  p = fma(p, r, 1.0f);
  p = fma(p, r, 1.0f);
  // Two steps so that 2^k never overflows/underflows on its own (k in [-150, 128]).
  int k1 = ki / 2;
  return ldexp(ldexp(p, k1), ki - k1);
}

float exp_acc(float a) { return exp2_parts(a, 0.0f); }

// exp(-s·x²) computed without the rounding error of x² itself: x = xh + xl where xh keeps
// 12 significant bits, so xh² is exact in fp32 and x² = xh² + (x − xh)(x + xh). Needed where
// the result is relatively sensitive to the argument (erfc tails: d ln/dx ≈ −2sx).
// s is 1 or 0.5 (exact scalings).
float exp_neg_sq(float x, float s)
{
  float xh = uintBitsToFloat(floatBitsToUint(x) & 0xfffff000u);
  precise float hi = -s * (xh * xh);
  precise float lo = -s * ((x - xh) * (x + xh));
  return exp2_parts(hi, lo);
}

// erf(z) = z + z·R(z²) on |z| < 1; R = erf(z)/z − 1 fitted to 1.4e-9; measured max error
// 1.1 ulp.
float erf_small(float z)
{
  float u = z * z;
  float r = 7.898097829e-05f;
  r = fma(r, u, -8.024320705e-04f);
  r = fma(r, u, 5.190049764e-03f);
  r = fma(r, u, -2.685480565e-02f);
  r = fma(r, u, 1.128361225e-01f);
  r = fma(r, u, -3.761262894e-01f);
  r = fma(r, u, 1.283791661e-01f);
  return fma(z, r, z);
}

// Q(z) = erfc(z)·exp(z²) for z >= 1, as a degree-10 polynomial in t = 1/(1 + z/2); fitted on
// [1, 10] to 5e-10, measured max error 4.5 ulp in fp32 (Horner rounding). Slowly varying, so
// the rounding of z itself does not matter.
float erfc_scaled(float z)
{
  float t = 1.0f / (1.0f + 0.5f * z);
  float q = -5.883061513e-02f;
  q = fma(q, t, 1.726087332e-01f);
  q = fma(q, t, -1.052780077e-01f);
  q = fma(q, t, -1.227496788e-01f);
  q = fma(q, t, 7.235020399e-02f);
  q = fma(q, t, 4.439531639e-02f);
  q = fma(q, t, 1.884323210e-01f);
  q = fma(q, t, 2.444563359e-01f);
  q = fma(q, t, 2.823860645e-01f);
  q = fma(q, t, 2.820743918e-01f);
  q = fma(q, t, 6.238612400e-07f);
  return q;
}

// erf(x) with max relative error ~3e-7 (a few ulp) on all of fp32.
float erf_acc(float x)
{
  float z = abs(x);
  if (z < 1.0f) return erf_small(x);
  if (z >= 10.0f) return sign(x);
  float c = exp_neg_sq(z, 1.0f) * erfc_scaled(z);   // erfc(z)
  return sign(x) * (1.0f - c);
}

// silu(x) = x·σ(x) = x / (1 + e^−x); inf/0 saturation gives the right limits.
float silu_f(float x) { return x / (1.0f + exp_acc(-x)); }

// Exact GELU 0.5·x·(1 + erf(x/√2)) = 0.5·x·erfc(−x/√2). The erfc form keeps the relative
// accuracy for negative x, where 1 + erf cancels; the tail uses exp(−x²/2) from x itself.
float gelu_erf_f(float x)
{
  const float RSQRT2 = 0.707106781f;
  float z = x * RSQRT2;
  float az = abs(z);
  if (az < 1.0f) return 0.5f * x * (1.0f + erf_small(z));
  if (az >= 10.0f) return x > 0.0f ? x : -0.0f;
  float c = exp_neg_sq(x, 0.5f) * erfc_scaled(az);  // erfc(|z|)
  return x > 0.0f ? x - 0.5f * x * c : 0.5f * x * c;
}

// gelu_pytorch_tanh: 0.5·x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³), written as
// x·σ(2u) = x / (1 + e^{−2u}), which has no cancellation and no inf/inf.
float gelu_tanh_f(float x)
{
  const float K2 = 1.595769122f;   // 2·√(2/π)
  float v = K2 * fma(0.044715f * x, x * x, x);
  return x / (1.0f + exp_acc(-v));
}
