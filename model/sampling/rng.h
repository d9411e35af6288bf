/* Gaussian noise for the initial latents (MODEL.md §1.9), from two generators:
 *
 *  - DG_RNG_PHILOX (default): a counter-based generator that gives the same numbers on every
 *    machine and for every tensor layout question we may ask later (element i is a pure
 *    function of (seed, i)). Philox4x32-10 (Salmon et al., SC'11; the Random123 reference,
 *    checked against its known-answer vectors) + Box–Muller in IEEE float32, with explicit
 *    fused multiply-adds and no library transcendental, so no libm difference can change a bit:
 *      block k = i / 4:  (x0, x1, x2, x3) = philox4x32_10 (counter = (k mod 2^32, k / 2^32, 0, 0),
 *                                                          key = (seed mod 2^32, seed / 2^32))
 *      for the pairs (a, b) = (x0, x1) → elements 4k, 4k+1 and (x2, x3) → 4k+2, 4k+3:
 *        u1 = 1 − (a >> 8)·2^−24  ∈ (0, 1],   u2 = (b >> 8)·2^−24  ∈ [0, 1)
 *        r  = sqrtf (−2 · LOG (u1)),           θ  = float(2π) · u2
 *        (first, second) = (r · cos θ, r · sin θ)
 *    where LOG and SINCOS are the Cephes float32 polynomials below (the ones torch's AVX2
 *    kernel uses, ~1 ulp).
 *  - DG_RNG_TORCH_CPU: torch.randn on torch's CPU generator (torch.Generator('cpu').manual_seed),
 *    bit-exact with the x86-64 AVX2 kernel of torch 2.x — the algorithm is documented in
 *    tests/data/randn/README.md (MT19937, the scalar double Box–Muller below 16 elements with its
 *    cached sample, the 16-wide float32 Box–Muller from 16 elements on). It lets users reproduce
 *    seeds of PyTorch CPU runs; the DeepGen reference itself samples on CUDA (a different
 *    generator), which nobody can reproduce outside torch (MODEL.md §10 item 20).
 *
 * A dtype is part of the request because torch draws a bf16 tensor differently from an f32
 * tensor rounded to bf16 (README §4.3); DG_DTYPE_BF16 results are returned as floats holding
 * bf16 values. Fills are in row-major order of the torch tensor (NCHW for latents). */
#pragma once

#include <glib.h>

#include "deepgen.h"
#include "dtype.h"

G_BEGIN_DECLS

/* n normals for (kind, seed, dtype) — a fresh generator per call, as `torch.randn(..., generator=
 * torch.Generator().manual_seed(seed))` does. dtype is DG_DTYPE_F32 or DG_DTYPE_BF16. */
void dg_randn (DgRng kind, guint64 seed, DgDType dtype, float *out, gsize n);

/* ---- Philox ---------------------------------------------------------------------------- */

/* One Philox4x32-10 block (exposed for the known-answer test). */
void dg_philox4x32_10 (const guint32 counter[4], const guint32 key[2], guint32 out[4]);
/* Normals number offset .. offset+n−1 of the Philox stream of @seed, as f32 (see above). */
void dg_philox_randn (guint64 seed, guint64 offset, float *out, gsize n);

/* ---- torch's CPU generator ------------------------------------------------------------- */

/* A torch.Generator('cpu') after manual_seed(seed): the MT19937 state and the cached double
 * normal, so that a sequence of calls continues like it does in torch. */
typedef struct _DgTorchGenerator DgTorchGenerator;

DgTorchGenerator *dg_torch_generator_new (guint64 seed);
void dg_torch_generator_free (DgTorchGenerator *g);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (DgTorchGenerator, dg_torch_generator_free)

/* torch.randn(n, dtype) / torch.rand(n, dtype) for dtype DG_DTYPE_F32 or DG_DTYPE_BF16. */
void dg_torch_randn (DgTorchGenerator *g, DgDType dtype, float *out, gsize n);
void dg_torch_rand (DgTorchGenerator *g, DgDType dtype, float *out, gsize n);
/* The float64 versions. */
void dg_torch_randn_f64 (DgTorchGenerator *g, double *out, gsize n);
void dg_torch_rand_f64 (DgTorchGenerator *g, double *out, gsize n);

G_END_DECLS
