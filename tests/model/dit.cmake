# DiT, sampler and noise generators (model/dit/dit.c, model/sampling/scheduler.c, model/sampling/rng.c)
deepgen_model_test(rng test_rng.c)
deepgen_model_test(scheduler test_scheduler.c)
deepgen_model_test(dit test_dit.c)
