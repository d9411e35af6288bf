/* The test Hub as a program, for tests that drive another process (deepgen-studio):
 *   test-hub MODEL_DIR REPO [slow]
 * prints its endpoint ("http://127.0.0.1:PORT") on a line of its own and serves until its
 * standard input closes; "slow" makes bodies trickle (16 KiB every 20 ms). */
#include <stdio.h>
#include <string.h>

#include "hub_server.h"

int
main (int argc, char **argv)
{
  if (argc < 3) {
    fprintf (stderr, "usage: test-hub MODEL_DIR REPO [slow]\n");
    return 2;
  }
  HubServer *s = hub_server_new_repo (argv[1], argv[2]);
  if (argc > 3 && strcmp (argv[3], "slow") == 0) {
    hub_server_set_slow_chunk (s, 16384);
    hub_server_set_faults (s, HUB_SLOW, NULL, NULL);
  }
  printf ("%s\n", hub_server_endpoint (s));
  fflush (stdout);
  char buf[256];
  while (fgets (buf, sizeof buf, stdin) != NULL);
  hub_server_free (s);
  return 0;
}
