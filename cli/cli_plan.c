/* Plan and FLOP tables (cli_plan.h). */
#include "cli_plan.h"

#include "cli_i18n.h"

#define GIB 1073741824.0

static const char *
job_name (DgJob job)
{
  switch (job) {
  case DG_JOB_GENERATE: return "generate";
  case DG_JOB_EDIT: return "edit";
  case DG_JOB_INPAINT: return "inpaint";
  }
  return "?";
}

static void
request_for (DgPlanRequest *r, DgJob job, int width, int height, DgPrecision precision, DgWeightFormat weights,
             guint text_tokens)
{
  *r = (DgPlanRequest) DG_PLAN_REQUEST_INIT;
  r->weights = weights;
  r->job = job;
  r->width = width;
  r->height = height;
  r->precision = precision;
  r->text_tokens = text_tokens;
  r->n_refs = job == DG_JOB_GENERATE ? 0 : 1;
}

static void
gib (GString *s, guint64 bytes)
{
  if (bytes == 0)
    g_string_append_printf (s, " %7s", "-");
  else
    g_string_append_printf (s, " %7.2f", bytes / GIB);
}

/* The "fits" column: yes, no, or — for released weights that do not fit — the smaller format
 * that --weights auto would take (*smaller then set). */
static const char *
fits_text (const DgPlanModel *m, const DgPlanRequest *r, const DgPlan *p, guint64 device_bytes, gboolean *smaller)
{
  if (p->required <= device_bytes)
    return _ ("yes");
  guint n;
  const DgWeightFormat *formats = dg_plan_auto_fallbacks (&n);
  for (guint i = 0; r->weights == DG_WEIGHTS_RELEASED && i < n; i++) {
    DgPlanRequest q = *r;
    DgPlan pq;
    q.weights = formats[i];
    if (dg_plan_compute (m, &q, &pq, NULL) && pq.required <= device_bytes) {
      *smaller = TRUE;
      return formats[i] == DG_WEIGHTS_Q8_0 ? "q8_0" : "q4_0";
    }
  }
  return _ ("no");
}

/* The components by the stage that loads each (deepgen.h DgResidentHeld): identifiers, not
 * translated, like the stage names. */
static const char *const component_names[DG_PLAN_N_STAGES] = { "vlm", "connector", "vae-encoder", "dit",
                                                               "vae-decoder" };

/* One line of the resident-set section: what the service keeps between jobs like @row on a device
 * of @device_bytes (dg_plan_resident_set, nothing kept before), with the weights the run would take
 * (released tables: --weights auto's choice). */
static gboolean
append_resident_line (GString *s, const DgPlanModel *m, const CliPlanRow *row, DgPrecision precision,
                      DgWeightFormat weights, guint text_tokens, guint64 device_bytes, const char *label,
                      GError **error)
{
  DgPlanRequest r;
  DgPlan p;
  gboolean fits;
  request_for (&r, row->job, row->width, row->height, precision, weights, text_tokens);
  if (weights == DG_WEIGHTS_RELEASED ? !dg_plan_auto (m, &r, device_bytes, &p, &fits, error)
                                     : !dg_plan_compute (m, &r, &p, error))
    return FALSE;
  if (weights != DG_WEIGHTS_RELEASED)
    fits = dg_plan_check (&p, device_bytes, NULL);
  g_string_append_printf (s, "  %9s  ", label);
  if (!fits) {
    g_string_append_printf (s, "%s\n", _ ("does not fit"));
    return TRUE;
  }
  if (r.weights != weights)
    g_string_append_printf (s, "%s: ", r.weights == DG_WEIGHTS_Q8_0 ? "q8_0" : "q4_0");
  const guint set = dg_plan_resident_set (&p, device_bytes, NULL);
  guint all = 0;
  for (int k = 0; k < DG_PLAN_N_STAGES; k++)
    if (p.stage[k].weights)
      all |= 1u << k;
  if (set == all) {
    g_string_append_printf (s, "%s\n", _ ("all components"));
    return TRUE;
  }
  if (set == 0) {
    g_string_append_printf (s, "%s\n", _ ("none: each job loads all its components"));
    return TRUE;
  }
  /* The kept ones, most reload cost (weight bytes) first, as they were chosen. */
  guint left = set;
  for (gboolean first = TRUE; left; first = FALSE) {
    int best = -1;
    for (int k = 0; k < DG_PLAN_N_STAGES; k++)
      if ((left & (1u << k)) && (best < 0 || p.stage[k].weights > p.stage[best].weights))
        best = k;
    left &= ~(1u << best);
    g_string_append_printf (s, "%s%s", first ? "" : ", ", component_names[best]);
  }
  g_string_append_c (s, '\n');
  return TRUE;
}

/* What the resident service keeps between jobs like the last row, per device size. */
static gboolean
append_resident_sets (GString *s, const DgPlanModel *m, const CliPlanRow *row, DgPrecision precision,
                      DgWeightFormat weights, guint text_tokens, guint64 device_bytes, GError **error)
{
  g_autofree char *size = g_strdup_printf ("%d×%d", row->width, row->height);
  g_string_append_printf (s,
                          _ ("\nKept on the device between jobs of the service (deepgen serve), for %s %s, by "
                             "device size; the other components are loaded again for each job:\n"),
                          job_name (row->job), size);
  static const guint sizes_gib[] = { 4, 6, 8, 12, 16, 24 };
  for (guint i = 0; i < G_N_ELEMENTS (sizes_gib); i++) {
    g_autofree char *label = g_strdup_printf ("%u GiB", sizes_gib[i]);
    if (!append_resident_line (s, m, row, precision, weights, text_tokens, (guint64) sizes_gib[i] << 30, label, error))
      return FALSE;
  }
  if (device_bytes) {
    /* TRANSLATORS: the row of the resident-set list for the GPU of this computer (9 columns). */
    g_autofree char *label = g_strdup_printf (_ ("%.1f GiB, this device"), device_bytes / GIB);
    if (!append_resident_line (s, m, row, precision, weights, text_tokens, device_bytes, label, error))
      return FALSE;
  }
  return TRUE;
}

char *
cli_plan_table (const DgPlanModel *m, const char *source, DgPrecision precision, DgWeightFormat weights,
                const CliPlanRow *rows, guint n_rows, guint text_tokens, guint64 device_bytes, const char *device_name,
                GError **error)
{
  GString *s = g_string_new (NULL);
  if (weights == DG_WEIGHTS_Q4_0)
    g_string_append_printf (s,
                            _ ("Memory plan of %s, %s weights with a 4-bit (q4_0) language model and 8-bit (q8_0) "
                               "connector and DiT, in GiB (2^30 bytes).\n"),
                            source, precision == DG_PRECISION_BF16 ? "bf16" : "f32");
  else if (weights == DG_WEIGHTS_Q8_0)
    g_string_append_printf (s,
                            _ ("Memory plan of %s, %s weights with 8-bit (q8_0) Linear layers, in GiB (2^30 "
                               "bytes).\n"),
                            source, precision == DG_PRECISION_BF16 ? "bf16" : "f32");
  else
    g_string_append_printf (s, _ ("Memory plan of %s, %s weights, in GiB (2^30 bytes).\n"), source,
                            precision == DG_PRECISION_BF16 ? "bf16" : "f32");
  g_string_append (s, _ ("One component is resident at a time (VLM, connector, VAE encoder, DiT, VAE decoder);\n"
                         "each column is what that stage holds, the peak is the largest.\n\n"));
  /* TRANSLATORS: column headings of the memory plan; keep peak, margin and needs within 7 columns.
     encode … decode are stage names and stay as they are. */
  cli_append_padded (s, _ ("job"), 9);
  g_string_append_c (s, ' ');
  cli_append_padded (s, _ ("size"), 10);
  const char *const stages[] = { "encode", "bridge", "vae-enc", "denoise", "decode" };
  for (guint k = 0; k < G_N_ELEMENTS (stages); k++) cli_append_right (s, stages[k], 8);
  cli_append_right (s, _ ("peak"), 8);
  cli_append_right (s, _ ("margin"), 8);
  cli_append_right (s, _ ("needs"), 8);
  if (device_bytes)
    g_string_append_printf (s, "  %s", _ ("fits"));
  g_string_append_c (s, '\n');
  gboolean any_tiled = FALSE, any_smaller = FALSE;
  guint tokens = 0;
  for (guint i = 0; i < n_rows; i++) {
    DgPlanRequest r;
    DgPlan p;
    request_for (&r, rows[i].job, rows[i].width, rows[i].height, precision, weights, text_tokens);
    if (!dg_plan_compute (m, &r, &p, error)) {
      g_string_free (s, TRUE);
      return NULL;
    }
    tokens = p.text_tokens;
    g_autofree char *size = g_strdup_printf ("%d×%d", p.width, p.height);
    cli_append_padded (s, job_name (p.job), 9);
    g_string_append_c (s, ' ');
    cli_append_padded (s, size, 10);
    for (int k = 0; k < DG_PLAN_N_STAGES; k++) gib (s, p.stage[k].total);
    gib (s, p.peak);
    gib (s, p.margin);
    gib (s, p.required);
    if (device_bytes)
      g_string_append_printf (s, "  %s", fits_text (m, &r, &p, device_bytes, &any_smaller));
    if (p.vae_decode_tiled || p.vae_encode_tiled) {
      g_string_append (s, "  *");
      any_tiled = TRUE;
    }
    g_string_append_c (s, '\n');
  }
  g_string_append_printf (s,
                          _ ("\nAssumed: prompt rows of %u text tokens (+ image tokens, + %u meta queries), "
                             "classifier-free guidance on, edit with one reference of the output size.\n"),
                          tokens, dg_plan_model_n_queries (m));
  g_string_append_printf (s, _ ("Margin: %llu MiB + %d %% for the driver, staging and what the plan cannot see.\n"),
                          (unsigned long long) (DG_PLAN_MARGIN_FIXED >> 20), DG_PLAN_MARGIN_PERCENT);
  if (any_tiled)
    g_string_append_printf (s,
                            _ ("*: the VAE works in tiles of %u latents (%u px) overlapping by %u, so that "
                               "it does not raise the peak.\n"),
                            DG_PLAN_VAE_TILE, DG_PLAN_VAE_TILE * 8, DG_PLAN_VAE_OVERLAP);
  if (any_smaller)
    g_string_append (s, _ ("fits q8_0 / q4_0: only with 8-bit weights / the 4-bit language model, which --weights "
                           "auto (the default) then uses.\n"));
  if (device_bytes)
    g_string_append_printf (s, _ ("Device: %s, %.2f GiB.\n"), device_name ? device_name : "?", device_bytes / GIB);
  if (n_rows > 0 &&
      !append_resident_sets (s, m, &rows[n_rows - 1], precision, weights, text_tokens, device_bytes, error)) {
    g_string_free (s, TRUE);
    return NULL;
  }
  return g_string_free (s, FALSE);
}

char *
cli_plan_detail (const DgPlanModel *m, const DgPlanRequest *r, GError **error)
{
  DgPlan p;
  if (!dg_plan_compute (m, r, &p, error))
    return NULL;
  GString *s = g_string_new (NULL);
  g_string_append_printf (s,
                          _ ("%s %d×%d: %u prompt rows of %u tokens (%u text), DiT %u rows × (%u image + %u "
                             "reference tokens), %u steps\n"),
                          job_name (p.job), p.width, p.height, p.vlm_rows, p.seq_len, p.text_tokens, p.dit_rows,
                          p.image_tokens, p.ref_tokens, p.steps);
  cli_append_padded (s, _ ("stage"), 11);
  cli_append_right (s, _ ("weights"), 10);
  cli_append_right (s, _ ("activations"), 13);
  cli_append_right (s, _ ("inputs"), 10);
  cli_append_right (s, _ ("total"), 10);
  cli_append_right (s, "TFLOP", 11);
  g_string_append_c (s, '\n');
  for (int k = 0; k < DG_PLAN_N_STAGES; k++) {
    const DgPlanStageBytes *b = &p.stage[k];
    if (b->total == 0)
      continue;
    g_string_append_printf (s, "%-11s %9.2f %12.2f %9.2f %9.2f %10.2f\n", dg_plan_stage_name ((DgPlanStage) k),
                            b->weights / GIB, b->activations / GIB, b->carried / GIB, b->total / GIB, b->flop / 1e12);
  }
  g_string_append_printf (s, _ ("peak %.2f GiB (%s) + margin %.2f GiB = %.2f GiB; VAE encode %s, decode %s\n"),
                          p.peak / GIB, dg_plan_stage_name (p.peak_stage), p.margin / GIB, p.required / GIB,
                          p.vae_encode_tiled ? _ ("tiled") : _ ("whole"),
                          p.vae_decode_tiled ? _ ("tiled") : _ ("whole"));
  return g_string_free (s, FALSE);
}

/* One row: the label padded to 34 columns (translations can be longer, multi-byte or wide). */
static void
row (GString *s, const char *label, double a, double b)
{
  cli_append_padded (s, label, 34);
  g_string_append_printf (s, " %10.3f %10.3f\n", a, b);
}

char *
cli_flops_table (const DgPlanModel *m, int width, int height, guint text_tokens, guint steps)
{
  DgPlanRequest rg, re;
  DgPlan pg, pe;
  request_for (&rg, DG_JOB_GENERATE, width, height, DG_PRECISION_BF16, DG_WEIGHTS_RELEASED, text_tokens);
  request_for (&re, DG_JOB_EDIT, width, height, DG_PRECISION_BF16, DG_WEIGHTS_RELEASED, text_tokens);
  rg.steps = re.steps = steps;
  if (!dg_plan_compute (m, &rg, &pg, NULL) || !dg_plan_compute (m, &re, &pe, NULL))
    return g_strdup (_ ("(no FLOP counts for this size)\n"));
  const guint n = pg.steps;
  const double dit_g = dg_plan_flops_dit (m, pg.image_tokens, pg.seq_len);
  const double dit_e = dg_plan_flops_dit (m, pe.image_tokens + pe.ref_tokens, pe.seq_len);
  GString *s = g_string_new (NULL);
  g_string_append_printf (s,
                          _ ("FLOPs at %d×%d in TFLOP (multiply-add = 2), generate: %u context tokens; "
                             "edit: %u (one %d×%d reference)\n"),
                          width, height, pg.seq_len, pe.seq_len, width, height);
  cli_append_padded (s, _ ("stage"), 34);
  g_string_append_printf (s, " %10s %10s\n", "generate", "edit");
#define ROW(name, g, e) row (s, name, (g) / 1e12, (e) / 1e12)
  ROW (_ ("LLM, one row"), dg_plan_flops_llm (m, pg.seq_len), dg_plan_flops_llm (m, pe.seq_len));
  ROW (_ ("ViT, one reference"), 0.0, dg_plan_flops_vit (m, width, height));
  ROW (_ ("encode stage (2 rows + ViT)"), pg.stage[DG_PLAN_ENCODE].flop, pe.stage[DG_PLAN_ENCODE].flop);
  ROW (_ ("connector, one row"), dg_flops_connector (m, pg.seq_len), dg_flops_connector (m, pe.seq_len));
  ROW (_ ("VAE encode, one reference"), 0.0, pe.stage[DG_PLAN_VAE_ENCODE].flop);
  ROW (_ ("DiT forward, one row"), dit_g, dit_e);
  ROW (_ ("DiT step (CFG: 2 rows)"), 2 * dit_g, 2 * dit_e);
  g_autofree char *all = g_strdup_printf (_ ("DiT, %u steps"), n);
  ROW (all, pg.stage[DG_PLAN_DENOISE].flop, pe.stage[DG_PLAN_DENOISE].flop);
  ROW (pg.vae_decode_tiled ? _ ("VAE decode (tiled)") : _ ("VAE decode"), pg.stage[DG_PLAN_DECODE].flop,
       pe.stage[DG_PLAN_DECODE].flop);
  double tg = 0, te = 0;
  for (int k = 0; k < DG_PLAN_N_STAGES; k++) {
    tg += pg.stage[k].flop;
    te += pe.stage[k].flop;
  }
  ROW (_ ("total"), tg, te);
#undef ROW
  g_string_append_printf (s, _ ("LLM per token: %.2f GFLOP (linear layers)\n"), dg_plan_flops_llm_per_token (m) / 1e9);
  return g_string_free (s, FALSE);
}
