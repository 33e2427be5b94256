/* SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

#include "manager/errors.h"

G_BEGIN_DECLS

/*
 * org.shimmervpn.Error.*: the D-Bus names of SHIMMER_SERVICE_ERROR's codes
 * (manager/errors.h), in one table. Once shimmer_bus_errors_register() ran,
 * a SHIMMER_SERVICE_ERROR returned on an invocation goes out under its
 * name, and a client's GError from such a reply comes back as the same
 * domain and code.
 */

void shimmer_bus_errors_register(void);
/* The D-Bus name of CODE ("org.shimmervpn.Error.Failed" for unknown ones). */
const char *shimmer_bus_error_name(ShimmerServiceError code);

/* Returns ERROR on INVOCATION: SHIMMER_SERVICE_ERROR as it is, errors of
 * other domains as org.shimmervpn.Error.Failed with their message. */
void shimmer_bus_return_error(GDBusMethodInvocation *invocation, const GError *error);
void shimmer_bus_return_new(GDBusMethodInvocation *invocation, ShimmerServiceError code,
                            const char *format, ...) G_GNUC_PRINTF(3, 4);

G_END_DECLS
