# Reliability (docs/RELIABILITY.md). model_faults: injected faults (vkc_device_set_faults) —
# device allocations failing in turn, the device lost at a submission and a wait, cancel from
# every progress call — for generate, edit and inpaint. The default run tries every 3rd
# allocation (all kinds of allocation site, a few minutes); model_faults_every_allocation
# (label slow) tries each one. model_soak (slow): 200 jobs in one process, memory flat.
deepgen_model_test(faults test_faults.c)
target_sources(model_faults PRIVATE tiny_jobs.c)
set_tests_properties(model_faults PROPERTIES LABELS "model;vulkan;reliability" TIMEOUT 1800)
add_test(NAME model_faults_every_allocation COMMAND model_faults -p /faults/alloc)
set_tests_properties(model_faults_every_allocation PROPERTIES LABELS "slow;reliability;vulkan" TIMEOUT 7200
                     ENVIRONMENT "${DEEPGEN_TEST_ENV};DEEPGEN_FAULT_STRIDE=1")
deepgen_model_test(soak test_soak.c)
target_sources(model_soak PRIVATE tiny_jobs.c)
set_tests_properties(model_soak PROPERTIES LABELS "slow;reliability;vulkan" TIMEOUT 3600)
# model_files_changed: a weight file rewritten in place (same size), replaced or removed while a
# model is open, between runs and during one: DG_ERROR_IO naming it, no image; reopened, it runs.
deepgen_model_test(files_changed test_files_changed.c)
target_sources(model_files_changed PRIVATE tiny_jobs.c)
set_tests_properties(model_files_changed PROPERTIES LABELS "model;vulkan;reliability" TIMEOUT 600)
