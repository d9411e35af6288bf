/* The synthetic DeepGen 1.0 (DESIGN.md §5): the released architecture with deterministic random
 * weights, made in memory — no files, no download — so that the real widths can be run, timed
 * and checked anywhere (`deepgen bench --synthetic`, tests/model/test_realwidth.c).
 *
 * It is a virtual model folder (vfolder.h) named by a path such as "synthetic:layers=1,seed=7":
 * dg_model_open and every loader read it through their ordinary code, so the loaders' shapes,
 * the memory plan and the pipeline are exactly those of the real model. Its configs are the
 * built-in ones (dg_plan_deepgen_1_0_config); its weights are the components' layout walks
 * (the lists the loaders upload from) with values drawn per tensor from the seed and the tensor's
 * name: Linear and convolution weights normal with std 1/sqrt(fan_in) (LeCun, about the 0.02 of
 * the transformers' initialisations at these widths), biases std 0.02, norm weights 1, embeddings
 * and meta queries std 0.02, the DiT's position table std sqrt(1/2) (that of its sin/cos values),
 * so that activations stay in a realistic range. The tokenizer is byte-level (one token a byte,
 * no merges) with Qwen2.5-VL's special tokens at their real ids.
 *
 * layers N > 0 keeps the real widths with N layers (blocks) per component: LLM max(N, 2) (its
 * connector reads the hidden states range(n − 1, 0, −6), none with one layer), ViT N (the last
 * with full attention), connector N, DiT N (dual attention where the real block 0… has it). The
 * VAE keeps its whole structure. layers 0 is the full depth. */
#pragma once

#include <glib.h>

#include "plan.h"

G_BEGIN_DECLS

#define DG_SYNTHETIC_PREFIX "synthetic:"

/* Makes synthetic paths readable (vfolder.h); idempotent, thread-safe. */
void dg_synthetic_register (void);

/* "synthetic:layers=N,seed=S" (newly allocated). */
char *dg_synthetic_path (guint layers, guint64 seed);

/* The architecture of the synthetic model with @layers (0 = full depth): what its configs say. */
void dg_synthetic_plan_model (guint layers, DgPlanModel *m);

G_END_DECLS
