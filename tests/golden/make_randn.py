#!/usr/bin/env python3
"""Reference streams of torch's CPU random generator, and an independent re-implementation of it.

One command (from the repository root, in the golden venv, see requirements-tokenizer.txt):

    python tests/golden/make_randn.py tests/data/randn

Writes (deterministic: re-running gives byte-identical files):
  OUT_DIR/torch_randn.safetensors  one tensor per case, produced by torch 2.13.0 (CPU wheel, x86-64)
  OUT_DIR/torch_randn.json         sidecar: per key: fn (randn|rand), seed, shape, dtype, path, and for
                                   sequence cases the generator and call index
  OUT_DIR/README.md                the algorithm, step by step (text kept in README_MD below)

Every tensor is ALSO computed by the NumPy/pure-Python re-implementation in this file (section "spec"),
which follows tests/data/randn/README.md step by step and does not use torch; the script asserts that
both agree bit for bit before writing anything. That re-implementation is the specification the C code
follows. It reproduces torch's x86-64 AVX2 kernel (torch dispatches CPUs with AVX-512 to the same
kernel); torch on a CPU without AVX2 (ATEN_CPU_CAPABILITY=default) or on aarch64 gives different bits
for sizes >= 16, and the script refuses to run there.
"""
import json
import math
import os
import sys

import numpy as np

# =====================================================================================================
# spec: torch CPU generator re-implemented with NumPy and the Python math module only
# =====================================================================================================
F32 = np.float32
MASK32 = 0xFFFFFFFF


class MT19937:
    """at::mt19937: standard MT19937 (init_genrand seeding with the LOW 32 BITS of the seed)."""

    N, M = 624, 397

    def __init__(self, seed):
        s = np.zeros(self.N, np.uint32)
        x = seed & MASK32
        s[0] = x
        for j in range(1, self.N):
            x = (1812433253 * (x ^ (x >> 30)) + j) & MASK32
            s[j] = x
        self.state = s
        self.buf = np.zeros(0, np.uint32)   # tempered outputs not yet consumed

    def _twist(self):
        s = self.state.copy()
        up, lo, a = np.uint32(0x80000000), np.uint32(0x7FFFFFFF), np.uint32(0x9908B0DF)

        def tw(u, v):
            y = (u & up) | (v & lo)
            return (y >> np.uint32(1)) ^ np.where((v & np.uint32(1)) != 0, a, np.uint32(0))

        n, m = self.N, self.M
        s[0:n - m] = s[m:n] ^ tw(s[0:n - m], s[1:n - m + 1])
        k = n - m   # the rest depends on words updated n-m positions earlier: do it in chunks of n-m
        while k < n - 1:
            e = min(k + (n - m), n - 1)
            s[k:e] = s[k - (n - m):e - (n - m)] ^ tw(s[k:e], s[k + 1:e + 1])
            k = e
        s[n - 1] = s[m - 1] ^ tw(s[n - 1:n], s[0:1])[0]
        self.state = s

    @staticmethod
    def _temper(y):
        y = y ^ (y >> np.uint32(11))
        y = y ^ ((y << np.uint32(7)) & np.uint32(0x9D2C5680))
        y = y ^ ((y << np.uint32(15)) & np.uint32(0xEFC60000))
        return y ^ (y >> np.uint32(18))

    def u32(self, n):
        parts, have = [self.buf], len(self.buf)
        while have < n:
            self._twist()
            parts.append(self._temper(self.state))
            have += self.N
        allv = np.concatenate(parts)
        self.buf = allv[n:]
        return allv[:n]


def fma_f32(a, b, c):
    """Correctly rounded float32 fused multiply-add (C fmaf), emulated exactly in float64:
    a*b is exact in float64 (24+24 bits); a*b+c is rounded to float64 with round-to-odd (computed from
    the exact error of the float64 sum), and a round-to-odd float64 rounds to the correct float32."""
    a, b, c = (np.asarray(v, F32).astype(np.float64) for v in (a, b, c))
    p = a * b
    s = p + c
    bb = s - p
    err = (p - (s - bb)) + (c - bb)                       # exact: p + c == s + err
    even = (s.view(np.uint64) & np.uint64(1)) == 0
    fix = (err != 0) & even & np.isfinite(s)
    s = np.where(fix, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)
    return s.astype(F32)


def _m(a, b):
    return (np.asarray(a, F32) * np.asarray(b, F32)).astype(F32)


def _a(a, b):
    return (np.asarray(a, F32) + np.asarray(b, F32)).astype(F32)


def _s(a, b):
    return (np.asarray(a, F32) - np.asarray(b, F32)).astype(F32)


LOG_P = [F32(v) for v in (7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1,
                          1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1,
                          3.3333331174e-1)]
LOG_Q1, LOG_Q2, SQRTHF = F32(-2.12194440e-4), F32(0.693359375), F32(0.707106781186547524)
DP1, DP2, DP3 = F32(-0.78515625), F32(-2.4187564849853515625e-4), F32(-3.77489497744594108e-8)
SIN_P = [F32(-1.9515295891e-4), F32(8.3321608736e-3), F32(-1.6666654611e-1)]
COS_P = [F32(2.443315711809948e-5), F32(-1.388731625493765e-3), F32(4.166664568298827e-2)]
FOPI = F32(1.27323954473516)
TWO_PI_F32 = F32(2.0 * math.pi)


def cephes_log_f32(x):
    """log256_ps (Cephes logf polynomial) for x in (0, 1], with the FMA contractions of torch's build."""
    x = np.maximum(np.asarray(x, F32), np.array(0x00800000, np.int32).view(F32))
    bits = x.view(np.int32)
    e = _a(((bits >> 23) - 0x7F).astype(F32), F32(1))
    x = ((bits & ~0x7F800000) | np.array(0.5, F32).view(np.int32)).view(F32)     # mantissa in [0.5, 1)
    small = x < SQRTHF
    tmp = np.where(small, x, F32(0))
    x = _s(x, F32(1))
    e = _s(e, np.where(small, F32(1), F32(0)))
    x = _a(x, tmp)
    z = _m(x, x)
    y = fma_f32(LOG_P[0], x, LOG_P[1])
    for p in LOG_P[2:]:
        y = fma_f32(y, x, p)
    y = _m(y, x)
    y = fma_f32(y, z, _m(e, LOG_Q1))       # (y*x)*z + e*q1: the y*z product is fused, e*q1 is rounded
    y = _s(y, _m(z, F32(0.5)))             # z*0.5 is exact: fused or not, same result
    x = _a(x, y)
    return _a(x, _m(e, LOG_Q2))            # e*q2 is exact


def cephes_sincos_f32(x):
    """sincos256_ps (Cephes sinf/cosf) for x >= 0, with the FMA contractions of torch's build."""
    x = np.abs(np.asarray(x, F32))
    j = _m(x, FOPI).astype(np.int32)       # truncation
    j = (j + 1) & ~1
    y = j.astype(F32)
    sin_sign = ((j & 4) << 29).astype(np.uint32)
    cos_sign = ((~(j - 2) & 4) << 29).astype(np.uint32)
    use_sin_poly = (j & 2) == 0
    x = fma_f32(y, DP1, x)
    x = fma_f32(y, DP2, x)
    x = fma_f32(y, DP3, x)
    z = _m(x, x)
    c = fma_f32(COS_P[0], z, COS_P[1])
    c = fma_f32(c, z, COS_P[2])
    c = _m(c, z)
    c = fma_f32(c, z, -_m(z, F32(0.5)))    # c*z - 0.5*z with the c*z product fused
    c = _a(c, F32(1))
    s = fma_f32(SIN_P[0], z, SIN_P[1])
    s = fma_f32(s, z, SIN_P[2])
    s = _m(s, z)
    s = fma_f32(s, x, x)
    zero = F32(0)
    s_part, c_part = np.where(use_sin_poly, s, zero), np.where(use_sin_poly, zero, c)   # and / andnot
    sin_v = _a(c_part, s_part)
    cos_v = _a(_s(c, c_part), _s(s, s_part))
    sin_v = (sin_v.view(np.uint32) ^ sin_sign).view(F32)
    cos_v = (cos_v.view(np.uint32) ^ cos_sign).view(F32)
    return sin_v, cos_v


def box_muller16(u):
    """normal_fill_16_AVX2 on blocks [..., 16] of float32 uniforms (mean 0, std 1)."""
    u1 = _s(F32(1), u[..., :8])
    u2 = u[..., 8:]
    radius = np.sqrt(_m(F32(-2), cephes_log_f32(u1))).astype(F32)
    sin_t, cos_t = cephes_sincos_f32(_m(TWO_PI_F32, u2))
    n1 = fma_f32(_m(radius, cos_t), F32(1), F32(0))   # x*std + mean, std=1, mean=0
    n2 = fma_f32(_m(radius, sin_t), F32(1), F32(0))
    return np.concatenate([n1, n2], axis=-1)


def f32_to_bf16(x):
    """float32 -> bfloat16, round to nearest even (returned as float32 values)."""
    b = np.asarray(x, F32).view(np.uint32).astype(np.uint64)
    return (((b + 0x7FFF + ((b >> 16) & 1)) >> 16) << 16).astype(np.uint32).view(F32)


class Generator:
    """torch.Generator('cpu'): an MT19937 plus a cached double normal sample."""

    def __init__(self, seed):
        self.mt = MT19937(seed)
        self.cached_normal = None          # next_double_normal_sample_

    def uniform_f32(self, n):              # (u32 & (2^24-1)) * 2^-24
        return ((self.mt.u32(n) & np.uint32(0xFFFFFF)).astype(F32) * F32(2.0 ** -24)).astype(F32)

    def uniform_f64(self, n):              # ((hi << 32 | lo) & (2^53-1)) * 2^-53, hi drawn first
        u = self.mt.u32(2 * n).astype(np.uint64)
        v = ((u[0::2] << np.uint64(32)) | u[1::2]) & np.uint64((1 << 53) - 1)
        return v.astype(np.float64) * 2.0 ** -53

    def normal_double(self):               # at::normal_distribution<double>, mean 0, std 1
        if self.cached_normal is not None:
            v, self.cached_normal = self.cached_normal, None
            return v
        u1 = float(self.uniform_f64(1)[0])
        u2 = float(self.uniform_f64(1)[0])
        r = math.sqrt(-2.0 * math.log1p(-u2))
        theta = 2.0 * math.pi * u1
        self.cached_normal = r * math.sin(theta)
        return r * math.cos(theta)

    def randn(self, shape, dtype):
        n = int(np.prod(shape))
        if n < 16:                          # scalar path: double Box-Muller with cache, then cast
            vals = np.array([self.normal_double() for _ in range(n)], np.float64)
            out = {"float32": lambda v: v.astype(F32), "bfloat16": lambda v: f32_to_bf16(v.astype(F32)),
                   "float64": lambda v: v}[dtype](vals)
        elif dtype == "float32":            # draw all uniforms, transform in blocks, redo the tail
            d = self.uniform_f32(n)
            nb = n // 16
            out = d.copy()
            out[:nb * 16] = box_muller16(d[:nb * 16].reshape(nb, 16)).reshape(-1)
            if n % 16:
                out[n - 16:] = box_muller16(self.uniform_f32(16))
        elif dtype == "bfloat16":           # uniforms per block (full blocks, then the tail), float math
            nb = n // 16
            out = np.zeros(n, F32)
            out[:nb * 16] = box_muller16(self.uniform_f32(nb * 16).reshape(nb, 16)).reshape(-1)
            if n % 16:
                out[n - 16:] = box_muller16(self.uniform_f32(16))
            out = f32_to_bf16(out)
        elif dtype == "float64":            # scalar template in double with libm log/cos/sin
            d = self.uniform_f64(n)
            out = d.copy()

            def blk(v):
                r = [0.0] * 16
                for j in range(8):
                    rad = math.sqrt(-2.0 * math.log(1.0 - v[j]))
                    th = 2.0 * math.pi * v[j + 8]
                    r[j], r[j + 8] = rad * math.cos(th), rad * math.sin(th)
                return r
            for i in range(0, n - 15, 16):
                out[i:i + 16] = blk(d[i:i + 16])
            if n % 16:
                out[n - 16:] = blk(self.uniform_f64(16))
        else:
            raise ValueError(dtype)
        return np.asarray(out).reshape(shape)

    def rand(self, shape, dtype):
        n = int(np.prod(shape))
        if dtype == "float32":
            out = self.uniform_f32(n)
        elif dtype == "bfloat16":
            out = f32_to_bf16(self.uniform_f32(n))
        elif dtype == "float64":
            out = self.uniform_f64(n)
        else:
            raise ValueError(dtype)
        return out.reshape(shape)


# =====================================================================================================
# cases, torch reference, comparison, output
# =====================================================================================================
SEEDS = [0, 1, 42, 123456789, 2 ** 32 + 5]
F32_SHAPES = [[1], [7], [15], [16], [17], [31], [64], [1000], [1, 16, 16, 16], [2, 16, 20, 24]]
CASES = []   # (key, fn, seed, shape, dtype)
for seed in SEEDS:
    for shape in F32_SHAPES:
        CASES.append((f"randn_f32_s{seed}_{'x'.join(map(str, shape))}", "randn", seed, shape, "float32"))
for seed in [0, 42]:
    for shape in [[7], [16], [17], [1, 16, 16, 16]]:
        CASES.append((f"randn_bf16_s{seed}_{'x'.join(map(str, shape))}", "randn", seed, shape, "bfloat16"))
CASES.append(("randn_f64_s42_20", "randn", 42, [20], "float64"))
for seed, shape, dtype in [(0, [7], "float32"), (42, [1000], "float32"), (42, [33], "bfloat16"),
                           (1, [5], "float64")]:
    tag = {"float32": "f32", "bfloat16": "bf16", "float64": "f64"}[dtype]
    CASES.append((f"rand_{tag}_s{seed}_{'x'.join(map(str, shape))}", "rand", seed, shape, dtype))
# one generator, several calls: the cached double normal survives calls and is ignored by sizes >= 16
SEQUENCE = (42, [("randn", [7], "float32"), ("randn", [16], "float32"), ("randn", [3], "float32"),
                 ("rand", [2], "float32"), ("randn", [1], "float32")])


def path_of(fn, n, dtype):
    if fn == "rand":
        return "uniform"
    if n < 16:
        return "scalar_double_box_muller"
    return {"float32": "avx2_box_muller_16", "bfloat16": "avx2_box_muller_16_per_block_bf16",
            "float64": "scalar_box_muller_16_double"}[dtype]



# README.md written beside the data (kept here so that one command regenerates the whole folder)
README_MD = r"""# torch's CPU random generator: reference streams and the exact algorithm

Files (made by `python tests/golden/make_randn.py tests/data/randn`, torch 2.13.0+cpu on x86-64):

- `torch_randn.safetensors` — 68 tensors: `torch.randn` (float32, bfloat16, float64) and `torch.rand`
  (float32, bfloat16, float64) for several seeds and shapes, plus one sequence of calls on one
  generator (`seq_s42_*`). bfloat16 tensors are stored as `BF16`.
- `torch_randn.json` — per key: `fn`, `seed`, `shape`, `dtype`, `path` (which branch below produced it),
  and for the sequence cases `sequence` / `call` (call order on the same generator).

Each tensor was produced with `g = torch.Generator('cpu').manual_seed(seed); torch.<fn>(*shape,
dtype=dtype, generator=g)` (the global `torch.manual_seed(seed)` generator gives the same values). The
algorithm below is re-implemented in `make_randn.py` with NumPy and Python's `math` only (no torch); the
script asserts that the re-implementation reproduces every dumped tensor **bit for bit** before writing
(`--extensive` also compares ~10.5 M more values: 5 more seeds, sizes up to 2^20, float32 and bfloat16).
That re-implementation is the specification; this text describes it.

The shape never matters, only the element count `n` (tensors are filled in row-major order).

**Scope.** This is what the x86-64 wheel of torch 2.13.0 does on a CPU with AVX2 (a CPU with AVX-512 uses
the same AVX2 kernel for `normal_`: the AVX-512 dispatch of `normal_stub` is deliberately disabled). On
x86 without AVX2 (or with `ATEN_CPU_CAPABILITY=default`), on aarch64, or on CUDA (Philox, a different
generator altogether — the DeepGen reference samples its noise on CUDA), torch produces different values
for `n >= 16`. Parts marked *(observed)* were established by bit-exact comparison with torch 2.13.0 rather
than read in the source (the source available to us was older for those parts).

## 1. The engine: MT19937 (`at::mt19937`)

Standard 32-bit Mersenne Twister (N = 624, M = 397, matrix 0x9908B0DF, upper mask 0x80000000, lower mask
0x7FFFFFFF), the same outputs as the reference `mt19937ar.c` seeded with `init_genrand`:

- **Seeding** with a 64-bit seed `s`: only the low 32 bits are used. `state[0] = s & 0xFFFFFFFF`,
  `state[j] = (1812433253 · (state[j−1] ^ (state[j−1] >> 30)) + j) mod 2^32` for j = 1..623. (So seeds
  `5` and `2^32 + 5` give the same stream; `torch.initial_seed()` still reports the full 64-bit value.)
- **Twist** before the first output and after every 624 outputs:
  `y = (state[k] & 0x80000000) | (state[k+1 mod 624] & 0x7FFFFFFF)`,
  `state[k] = state[k+397 mod 624] ^ (y >> 1) ^ (y & 1 ? 0x9908B0DF : 0)` for k = 0..623 in order
  (in-place: indices that wrap around read already-updated words).
- **Output** `y = state[i++]`, tempered: `y ^= y >> 11; y ^= (y << 7) & 0x9D2C5680;
  y ^= (y << 15) & 0xEFC60000; y ^= y >> 18`.

Call these outputs `u32()`. `torch.manual_seed` / `Generator.manual_seed` re-seeds the engine **and
clears the cached normal sample** (§4.1).

## 2. Uniform numbers

- `U24()` (float32): `(u32() & 0xFFFFFF) · 2^−24` — one engine output, exact in float32, in [0, 1 − 2^−24].
- `U53()` (float64): two outputs, the **first is the high half**: `v = (hi << 32) | lo`,
  `(v & (2^53 − 1)) · 2^−53`. (Equivalently `((hi & 0x1FFFFF) · 2^32 + lo) · 2^−53`.)

## 3. `torch.rand`

One uniform per element, in order. float32: `U24()`. float64: `U53()`. bfloat16 *(observed)*: `U24()`
rounded to bfloat16 (round to nearest, ties to even) — so it can return exactly 1.0.

## 4. `torch.randn` (mean 0, std 1)

Which branch runs depends only on `n` and the dtype (torch's `normal_kernel`; `randn` tensors are
contiguous — a non-contiguous `normal_()` target always takes §4.1):

| case | branch |
|---|---|
| `n < 16`, any dtype | §4.1 scalar double Box–Muller with a cache |
| `n >= 16`, float32 | §4.2 fill all uniforms, then 16-wide AVX2 Box–Muller, tail recomputed |
| `n >= 16`, bfloat16 | §4.3 the same float32 math, uniforms per block *(observed)*, rounded |
| `n >= 16`, float64 | §4.4 the same block structure in double with libm |

### 4.1 `n < 16`: scalar Box–Muller in double (`at::normal_distribution<double>`)

For each element in order:
1. If the generator holds a cached sample `c`: the element is `c`; clear the cache.
2. Otherwise draw `u1 = U53()`, then `u2 = U53()` (4 engine outputs, in this order), compute in double
   with the C library (glibc) functions: `r = sqrt(−2.0 · log1p(−u2))`, `θ = (2.0 · π) · u1`
   (π = the double nearest to pi); cache `r · sin(θ)` and use `r · cos(θ)`.
3. Convert the double to the tensor dtype: float32 round-to-nearest; bfloat16: first to float32
   (round to nearest), then to bfloat16 (round to nearest even) — a double rounding.

The cache lives in the generator: it survives the call (e.g. `randn(7)` consumes 4 pairs and leaves the
8th value cached; a following `randn(3)` on the same generator starts with it — see `seq_s42_*`). It is
cleared by `manual_seed`; the `n >= 16` branches neither read nor clear it. (`mean`/`std` are applied as
`v·std + mean`; with 0/1 this is the identity.)

### 4.2 float32, `n >= 16`: `normal_fill_AVX2`

1. Draw `n` uniforms `d[0..n−1] = U24()` in order.
2. For each full block `b = 0 .. ⌊n/16⌋−1`: replace `d[16b .. 16b+15]` by `BM16(d[16b .. 16b+15])`.
3. If `n % 16 != 0`: draw 16 **new** uniforms `t[0..15] = U24()` and write `BM16(t)` to `d[n−16 .. n−1]`
   (this overwrites the last `16 − n%16` results of the last full block; the leftover uniforms
   `d[16⌊n/16⌋ .. n−1]` from step 1 are simply discarded). The engine has consumed `n + 16` outputs.

### 4.3 bfloat16, `n >= 16` *(observed)*

The same float32 `BM16`, but the uniforms are drawn block by block: for each full block draw 16 `U24()`
and transform them; then, if `n % 16 != 0`, draw 16 more and write their transform to the last 16
positions. Every float32 result is rounded to bfloat16 (nearest even). (float16 behaves the same way
with float16 rounding — checked once by hand, not part of the dumped data.) Compared with §4.2 the only
difference besides the rounding is which uniforms the tail uses: positions `16⌊n/16⌋ ..` of the stream
instead of `n ..` (no uniforms are drawn for the leftover elements). When `n % 16 == 0`, the result equals
`torch.randn(n).to(torch.bfloat16)` with the same seed. Engine outputs consumed: `16⌊n/16⌋ (+16)`.

### 4.4 float64, `n >= 16` (`normal_fill<double>`)

As §4.2 with `U53()` uniforms (tail: 16 new `U53()`), and per block, for j = 0..7, in double with libm:
`radius = sqrt(−2 · log(1 − d[j]))`, `θ = (2π) · d[j+8]`, `d[j] = radius · cos θ`, `d[j+8] = radius · sin θ`.

## 5. `BM16`: the 16-wide Box–Muller of the AVX2 kernel (all float32)

Input 16 uniforms `d[0..15]`. For the 8 lanes j = 0..7 independently:
```
u1     = 1 − d[j]                      // exact; in [2^-24, 1]
u2     = d[j+8]
radius = sqrtf(−2 · LOG(u1))           // IEEE sqrt, correctly rounded; −2·x is exact
θ      = TWO_PI · u2                   // one float multiply, TWO_PI = float(2π) = 0x40C90FDB
(s, c) = SINCOS(θ)
out[j]   = fma(radius · c, 1, 0)       // x·std + mean with std 1, mean 0: radius·c rounded once
out[j+8] = fma(radius · s, 1, 0)
```
(With std 1 / mean 0 the final fma only turns a −0 into +0.)

`LOG` and `SINCOS` are the Cephes single-precision polynomials of `avx_mathfun.h` (log256_ps,
sincos256_ps), **not** libm. Every operation below is one IEEE float32 operation rounded to nearest;
`fma(a,b,c)` is a fused multiply-add rounded once (C `fmaf`). Where the wheel's compiler fused a multiply
into the following add or subtract (GCC, `-mfma`, `-ffp-contract=fast`: a product whose only use is an
add/sub becomes an FMA; when both operands of the add are products, the one computed first is fused),
the spec says `fma`; everything else is unfused. Using libm `logf`/`cosf`/`sinf` instead changes
roughly 40% of the values by one ulp; fusing differently changes about 2 values in 10,000.

Constants (float32; hex = bit pattern):

| name | value | hex |
|---|---|---|
| SQRTHF | 0.70710677 | 0x3F3504F3 |
| P0..P8 | 7.0376836e-2, −1.1514610e-1, 1.1676998e-1, −1.2420141e-1, 1.4249323e-1, −1.6668057e-1, 2.0000714e-1, −2.4999994e-1, 3.3333331e-1 | 0x3D9021BB, 0xBDEBD1B8, 0x3DEF251A, 0xBDFE5D4F, 0x3E11E9BF, 0xBE2AAE50, 0x3E4CCEAC, 0xBE7FFFFC, 0x3EAAAAAA |
| Q1, Q2 | −2.1219444e-4, 0.693359375 | 0xB95E8083, 0x3F318000 |
| FOPI (4/π) | 1.2732395 | 0x3FA2F983 |
| DP1, DP2, DP3 | −0.78515625, −2.4187565e-4, −3.7748951e-8 | 0xBF490000, 0xB97DA000, 0xB3222169 |
| S0, S1, S2 | −1.9515296e-4, 8.3321612e-3, −1.6666655e-1 | 0xB94CA1F9, 0x3C08839E, 0xBE2AAAA3 |
| C0, C1, C2 | 2.4433157e-5, −1.3887316e-3, 4.1666646e-2 | 0x37CCF5CE, 0xBAB6061A, 0x3D2AAAA5 |

`LOG(x)` for x in (0, 1] (bit operations on the float32 representation):
```
x    = max(x, 2^-126)                         // min normal, bit pattern 0x00800000
e    = float((bits(x) >> 23) − 127) + 1
x    = from_bits((bits(x) & ~0x7F800000) | 0x3F000000)        // mantissa as a value in [0.5, 1)
if x < SQRTHF:  e = e − 1;  x = (x − 1) + x   // computed as: t = x; x = x − 1; x = x + t
else:           x = x − 1                     // (e − 0 and x + 0: no change)
z = x · x
y = fma(P0, x, P1)
y = fma(y, x, P2);  y = fma(y, x, P3);  y = fma(y, x, P4);  y = fma(y, x, P5)
y = fma(y, x, P6);  y = fma(y, x, P7);  y = fma(y, x, P8)
y = y · x
y = fma(y, z, e · Q1)                         // e·Q1 rounded first, then fused with y·z
y = y − z · 0.5                               // z·0.5 is exact
x = x + y
return x + e · Q2                             // e·Q2 is exact
```

`SINCOS(θ)` for θ >= 0 (here θ ∈ [0, 2π)):
```
x  = |θ|
j  = int_truncate(x · FOPI);  j = (j + 1) & ~1;  y = float(j)
sin_sign = (j & 4) != 0                       // flip the sign of the sine
cos_sign = ((j − 2) & 4) == 0                 // flip the sign of the cosine
use_sin_poly = (j & 2) == 0                   // sine from the sine polynomial, cosine from the cosine one
x  = fma(y, DP1, x);  x = fma(y, DP2, x);  x = fma(y, DP3, x)
z  = x · x
c  = fma(C0, z, C1);  c = fma(c, z, C2);  c = c · z
c  = fma(c, z, −(z · 0.5))                    // c·z fused, z·0.5 exact
c  = c + 1
s  = fma(S0, z, S1);  s = fma(s, z, S2);  s = s · z
s  = fma(s, x, x)
sine   = use_sin_poly ? s : c;   cosine = use_sin_poly ? c : s
apply the sign flips (xor of the sign bit) → (sine, cosine)
```
(The kernel forms the selections as `a&mask + b&~mask`; adding the +0.0 of the masked-out half never
changes a value here.)

## 6. Implementing it in C

- float32 arithmetic must be plain IEEE single precision (x86-64 SSE does this; FLT_EVAL_METHOD 0) and the
  compiler must not fuse anything on its own: compile this file with `-ffp-contract=off` and write every
  fusion explicitly as `fmaf()` (correctly rounded in glibc, also without hardware FMA). No `-ffast-math`.
- `int_truncate` is C's float→int conversion; `float(j)` is exact here.
- §4.1 and §4.4 use the double `log1p`, `log`, `sin`, `cos`, `sqrt` of the C library. The goldens were made
  with glibc 2.36 (Debian 12); Python's `math` calls the same functions, which is how `make_randn.py`
  checks them. Another libm could differ by an ulp in double, which would almost never change the float32
  or bfloat16 result (float64 outputs would differ).
- bfloat16 rounding: `bits = f32_bits; bits += 0x7FFF + ((bits >> 16) & 1); bf16 = bits >> 16` (no NaNs occur).
- Generator state to keep: the MT19937 state and position, and the optional cached double normal.
"""

def main():
    import torch
    from safetensors.torch import save_file

    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--extensive", action="store_true",
                    help="also compare ~10.5 M further values (5 seeds, sizes up to 2^20, f32 and bf16); "
                         "writes nothing more")
    args = ap.parse_args()
    out_dir = args.out_dir
    if torch.__version__.split("+")[0] != "2.13.0":
        sys.exit(f"torch {torch.__version__}: the reference is torch 2.13.0")
    cap = torch.backends.cpu.get_cpu_capability()
    if cap not in ("AVX2", "AVX512"):
        sys.exit(f"CPU capability {cap}: the reference kernel is x86-64 AVX2 (see README.md)")

    tdt = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float64": torch.float64}
    tensors, meta = {}, {}

    def check(key, t, spec):
        ref = t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()
        spec = np.asarray(spec, ref.dtype).reshape(ref.shape)
        assert ref.tobytes() == spec.tobytes(), (key, int((ref != spec).sum()))
        tensors[key] = t.contiguous()

    for key, fn, seed, shape, dtype in CASES:
        g = torch.Generator().manual_seed(seed)
        t = getattr(torch, fn)(*shape, dtype=tdt[dtype], generator=g)
        check(key, t, getattr(Generator(seed), fn)(shape, dtype))
        meta[key] = {"fn": fn, "seed": seed, "shape": shape, "dtype": dtype,
                     "path": path_of(fn, int(np.prod(shape)), dtype)}
    seed, calls = SEQUENCE
    g, sg = torch.Generator().manual_seed(seed), Generator(seed)
    for i, (fn, shape, dtype) in enumerate(calls):
        key = f"seq_s{seed}_{i}_{fn}_{'x'.join(map(str, shape))}"
        check(key, getattr(torch, fn)(*shape, dtype=tdt[dtype], generator=g), getattr(sg, fn)(shape, dtype))
        meta[key] = {"fn": fn, "seed": seed, "shape": shape, "dtype": dtype,
                     "path": path_of(fn, int(np.prod(shape)), dtype), "sequence": f"s{seed}", "call": i}

    # the global generator behaves the same as a fresh torch.Generator
    torch.manual_seed(42)
    assert torch.equal(torch.randn(1, 16, 16, 16), tensors["randn_f32_s42_1x16x16x16"])
    # seeds are truncated to their low 32 bits
    assert torch.equal(tensors[f"randn_f32_s{2**32+5}_64"],
                       torch.randn(64, generator=torch.Generator().manual_seed(5)))

    if args.extensive:
        n_checked = 0
        for seed in [7, 99, 2 ** 31 - 1, 2 ** 63 + 12345, 31337]:
            for n in [1, 2, 5, 9, 15, 16, 33, 255, 4097, 1 << 20]:
                for dtype in ["float32", "bfloat16"]:
                    t = torch.randn(n, dtype=tdt[dtype], generator=torch.Generator().manual_seed(seed))
                    ref = t.float().numpy()
                    spec = np.asarray(Generator(seed).randn([n], dtype), F32)
                    assert ref.tobytes() == spec.tobytes(), ("extensive", seed, n, dtype)
                    n_checked += n
        print(f"extensive check: {n_checked} further values bit-exact")

    os.makedirs(out_dir, exist_ok=True)
    kernel = "x86-64 AVX2 (AVX-512 CPUs use the same kernel for normal_)"
    # one metadata entry only: safetensors writes several in no fixed order
    save_file(tensors, os.path.join(out_dir, "torch_randn.safetensors"),
              metadata={"source": f"torch {torch.__version__}, {kernel}; see torch_randn.json"})
    head = {"torch": torch.__version__, "kernel": kernel,
            "generator": "g = torch.Generator('cpu').manual_seed(seed); torch.<fn>(*shape, dtype=dtype, generator=g)",
            "note": "bfloat16 tensors are stored as bfloat16; the seq_* cases share one generator, in call order; "
                    "the algorithm is in README.md"}
    with open(os.path.join(out_dir, "torch_randn.json"), "w", encoding="utf-8", newline="\n") as f:
        f.write("{\n" + "".join(f"{json.dumps(k)}: {json.dumps(v)},\n" for k, v in head.items()))
        f.write('"tensors": {\n' + ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in meta.items())
                + "\n}\n}\n")
    with open(os.path.join(out_dir, "README.md"), "w", encoding="utf-8", newline="\n") as f:
        f.write(README_MD)
    print(f"{len(tensors)} tensors, all reproduced bit-exactly by the NumPy specification -> {out_dir}")


if __name__ == "__main__":
    main()
