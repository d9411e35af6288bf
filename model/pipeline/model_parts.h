/* What the other public entry points of DgModel (describe_api.c) need of the model that
 * pipeline.c owns: its device, folder, tokenizer, options, architecture and run lock. */
#pragma once

#include "deepgen.h"
#include "plan.h"
#include "tokenizer.h"
#include "vkc.h"

G_BEGIN_DECLS

typedef struct {
  VkcDevice *dev;
  const char *path;
  DgTokenizer *tok;
  DgPrecision precision;
  DgWeightFormat weights; /* as opened (AUTO: decided per run) */
  const DgPlanModel *plan_model;
  GMutex *lock; /* one run at a time per model */
} DgModelParts;

void dg_model_parts (DgModel *model, DgModelParts *parts);

G_END_DECLS
