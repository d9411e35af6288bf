/* Error domain of the DeepGen model layer.
 *
 * Every public entry point of model/ reports failures as a GError in DG_ERROR. The codes are
 * chosen so that a caller (plug-in, app, CLI) can decide what to tell the user without parsing
 * the message: a missing file asks for a re-download, a device error for a driver check, and
 * so on. The message itself always names the file or setting and says what to do. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define DG_ERROR (dg_error_quark ())

typedef enum {
  DG_ERROR_FAILED,           /* none of the codes below fits */
  DG_ERROR_IO,               /* a file exists but could not be read or written */
  DG_ERROR_MISSING,          /* a required file, tensor or config key is absent */
  DG_ERROR_FORMAT,           /* a file is malformed: truncated, bad header, invalid JSON */
  DG_ERROR_CONFIG,           /* a config value has the wrong type or makes no sense */
  DG_ERROR_SHAPE,            /* a tensor's shape or dtype does not match the config */
  DG_ERROR_UNSUPPORTED,      /* well-formed, but a feature or variant we do not implement */
  DG_ERROR_INVALID_ARGUMENT, /* a request parameter is out of range (size, steps, ...) */
  DG_ERROR_OOM,              /* not enough host or device memory */
  DG_ERROR_DEVICE,           /* the Vulkan device failed or was lost */
  DG_ERROR_CANCELLED,        /* the caller cancelled the operation */
} DgError;

GQuark dg_error_quark (void);

G_END_DECLS
