/* Model folders that are not on disk (DESIGN.md §5, "synthetic model"): a path that starts with
 * a registered prefix ("synthetic:") names a folder whose text files (configs, tokenizer) and
 * weight sets a provider makes in memory. The readers check here first — dg_json_load_object,
 * dg_safetensors_open, dg_tokenizer_load — so every loader reads such a folder through the same
 * code as a real one, with no change of its own.
 *
 * One provider at a time (there is one: model/nn/synthetic.c); registering is idempotent and
 * thread-safe. Paths are plain strings: "synthetic:layers=1,seed=0/transformer/config.json". */
#pragma once

#include <glib.h>

#include "safetensors.h"

G_BEGIN_DECLS

typedef struct {
  const char *prefix; /* "synthetic:" */
  /* The text of the file at @path (a config, the tokenizer), or NULL with DG_ERROR_MISSING. A
   * component folder's path stands for its config file, as it does for the config loaders. */
  char *(*read_text) (const char *path, GError **error);
  /* The weight set of the component folder at @path, or NULL with an error. */
  DgSafetensors *(*open_weights) (const char *path, GError **error);
} DgVirtualFolders;

/* Registers @provider (static storage). A second call with the same provider does nothing. */
void dg_vfolder_register (const DgVirtualFolders *provider);

/* Whether @path is inside a registered virtual folder. */
gboolean dg_vfolder_is_virtual (const char *path);

/* The provider's read_text / open_weights for a virtual @path (dg_vfolder_is_virtual). */
char *dg_vfolder_read_text (const char *path, GError **error);
DgSafetensors *dg_vfolder_open_weights (const char *path, GError **error);

G_END_DECLS
