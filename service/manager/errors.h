/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * The errors shimmerd's manager reports to whoever drives it. The D-Bus
 * front gives each code a name under org.shimmervpn.Error (bus/errors.c);
 * shimmerctl maps the names to its exit codes.
 */
#define SHIMMER_SERVICE_ERROR (shimmer_service_error_quark())
GQuark shimmer_service_error_quark(void);

typedef enum {
    SHIMMER_SERVICE_ERROR_FAILED,         /* org.shimmervpn.Error.Failed */
    SHIMMER_SERVICE_ERROR_INVALID_ARGS,   /* org.shimmervpn.Error.InvalidArgs */
    SHIMMER_SERVICE_ERROR_INVALID_CONFIG, /* org.shimmervpn.Error.InvalidConfig */
    SHIMMER_SERVICE_ERROR_NOT_AUTHORIZED, /* org.shimmervpn.Error.NotAuthorized */
    SHIMMER_SERVICE_ERROR_EXISTS,         /* org.shimmervpn.Error.Exists */
    SHIMMER_SERVICE_ERROR_BUSY,           /* org.shimmervpn.Error.Busy */
    SHIMMER_SERVICE_ERROR_NOT_FOUND,      /* org.shimmervpn.Error.NotFound */
    SHIMMER_SERVICE_ERROR_LIMIT,          /* org.shimmervpn.Error.LimitReached */
} ShimmerServiceError;

#define SHIMMER_SERVICE_N_ERRORS (SHIMMER_SERVICE_ERROR_LIMIT + 1)

G_END_DECLS
