/* What a resident model keeps on the device between jobs (deepgen.h dg_plan_resident_set,
 * DESIGN.md §9): host arithmetic on a job's memory plan, the one place of the rule. */
#include "plan.h"

/* What the plan's check asks of one stage that has @resident bytes of other components' weights
 * beside it: its own total, those weights, and the margin on both (dg_plan_check's rule). */
static gboolean
stage_fits (const DgPlanStageBytes *stage, guint64 resident, guint64 device_bytes)
{
  const guint64 held = stage->total + resident;
  return held + DG_PLAN_MARGIN_FIXED + held / 100 * DG_PLAN_MARGIN_PERCENT <= device_bytes;
}

/* Whether every stage of @plan fits with the components in @set (bit per DgPlanStage, each of
 * @bytes) on the device beside it; a stage's own component counts once, in its total. */
static gboolean
set_fits (const DgPlan *plan, const guint64 *bytes, guint set, guint64 device_bytes)
{
  for (int s = 0; s < DG_PLAN_N_STAGES; s++) {
    if (plan->stage[s].total == 0)
      continue; /* a stage this job does not have */
    guint64 others = 0;
    for (int c = 0; c < DG_PLAN_N_STAGES; c++)
      if (c != s && (set & (1u << c)))
        others += bytes[c];
    if (!stage_fits (&plan->stage[s], others, device_bytes))
      return FALSE;
  }
  return TRUE;
}

guint
dg_plan_resident_set (const DgPlan *plan, guint64 device_bytes, const DgResidentHeld *held)
{
  g_return_val_if_fail (plan, 0);
  if (device_bytes == 0)
    return 0; /* unknown: keep nothing, as a run that cannot check keeps nothing */
  /* The candidates: what this job loads (its plan's weights), and what earlier jobs left that it
   * does not load (their recorded weights). */
  guint64 bytes[DG_PLAN_N_STAGES] = { 0 };
  guint all = 0, used = 0;
  for (int s = 0; s < DG_PLAN_N_STAGES; s++) {
    if (plan->stage[s].weights) {
      bytes[s] = plan->stage[s].weights;
      used |= 1u << s;
    } else if (held && held->weights[s]) {
      bytes[s] = held->weights[s];
    }
    if (bytes[s])
      all |= 1u << s;
  }
  if (set_fits (plan, bytes, all, device_bytes))
    return all;
  /* Else greedily, in order of reload cost: first what this job loads, the most weight bytes first
   * (reloading a component means reading and uploading its weights, so its bytes are its cost);
   * then what only earlier jobs used, the most recently used first, so that the least recently
   * used is the first to go. A candidate stays when every stage still fits beside it. */
  int order[DG_PLAN_N_STAGES], n = 0;
  for (int s = 0; s < DG_PLAN_N_STAGES; s++)
    if (all & (1u << s))
      order[n++] = s;
  for (int i = 1; i < n; i++) /* insertion sort: five components */
    for (int j = i; j > 0; j--) {
      const int a = order[j - 1], b = order[j];
      const gboolean a_used = (used >> a) & 1, b_used = (used >> b) & 1;
      gboolean swap;
      if (a_used != b_used)
        swap = b_used;
      else if (a_used)
        swap = bytes[b] > bytes[a];
      else
        swap = held->last_used[b] > held->last_used[a];
      if (!swap)
        break;
      order[j - 1] = b;
      order[j] = a;
    }
  guint set = 0;
  for (int i = 0; i < n; i++)
    if (set_fits (plan, bytes, set | (1u << order[i]), device_bytes))
      set |= 1u << order[i];
  return set;
}
