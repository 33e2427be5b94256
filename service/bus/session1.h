/* SPDX-License-Identifier: MIT */
#pragma once

#include "context.h"

G_BEGIN_DECLS

/*
 * org.shimmervpn.Session1 at /org/shimmervpn/session/<id>: the D-Bus face
 * of one ShimmerSession. Properties follow the model; CredentialsRequested
 * and Log go only to the owner's bus names.
 */

typedef struct ShimmerBusSession ShimmerBusSession;

ShimmerBusSession *shimmer_bus_session_new(ShimmerBusContext *ctx, ShimmerSession *s);
void shimmer_bus_session_free(ShimmerBusSession *bs);
GDBusObjectSkeleton *shimmer_bus_session_get_object(ShimmerBusSession *bs);
/* Sets the properties WHAT (ShimmerSessionChange flags) says changed. */
void shimmer_bus_session_update(ShimmerBusSession *bs, guint what);
void shimmer_bus_session_log(ShimmerBusSession *bs, ShimmerLogLevel level, const char *line);
void shimmer_bus_session_request_credentials(ShimmerBusSession *bs,
                                             const ShimmerCredentialsRequest *request);
/* Ends the session when the bus name CALLER leaves the bus. */
void shimmer_bus_session_bind_to_caller(ShimmerBusSession *bs, const char *caller);

/* The daemon reconnected to its bus: renews what watched the old
 * connection. */
void shimmer_bus_session_reconnected(ShimmerBusSession *bs);

G_END_DECLS
