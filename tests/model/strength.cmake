# The change strength (DgRequest.strength, issue 13) through dg_run on the tiny model: strength
# near 1 equals strength 1 byte for byte, strength 0.5 runs half the steps, bad values refused.
# The schedule arithmetic against diffusers is in model_scheduler (tests/data/strength).
deepgen_model_test(strength test_strength.c)
target_sources(model_strength PRIVATE tiny_jobs.c)
