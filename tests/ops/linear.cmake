deepgen_op_test(linear test_linear.c)
deepgen_op_test(linear_q8 test_linear_q8.c)
# The double-precision reference loops are heavy (real DeepGen shapes): optimise them even in
# unoptimised builds so the test stays well inside its time budget.
set_source_files_properties(test_linear.c test_linear_q8.c PROPERTIES COMPILE_OPTIONS -O2)
