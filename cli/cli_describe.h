/* `deepgen describe IMAGE` (cli_describe.c): a caption of an image from DeepGen's VLM. */
#pragma once

/* argv[0] is "deepgen describe"; returns the exit status (CLI_EXIT_*). */
int cli_cmd_describe (int argc, char **argv);
