/* `deepgen download` (issue #12): the model folder from the Hugging Face Hub, verified, then
 * checked as dg_model_open checks it; --weights q8 converts it. Built only when model/download
 * is (libsoup 3); deepgen.c calls it when DEEPGEN_HAVE_DOWNLOAD is defined. */
#pragma once

/* argv[0] is "deepgen download"; returns the exit status (CLI_EXIT_*). */
int cli_cmd_download (int argc, char **argv);
