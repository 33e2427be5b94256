/* SPDX-License-Identifier: MIT */
#pragma once

#include "context.h"

G_BEGIN_DECLS

/*
 * org.shimmervpn.Server1 at /org/shimmervpn/server/<id>: the D-Bus face of
 * one ShimmerManagedServer, and the Client1 objects of its clients, which
 * it exports below its own path and withdraws. AuthRequested,
 * AuthRequestClosed and Log go only to the owner's bus names.
 */

typedef struct ShimmerBusServer ShimmerBusServer;

ShimmerBusServer *shimmer_bus_server_new(ShimmerBusContext *ctx, ShimmerManagedServer *s);
/* Withdraws the clients' objects still exported; the server's own object
 * is the caller's to withdraw. */
void shimmer_bus_server_free(ShimmerBusServer *bs);
GDBusObjectSkeleton *shimmer_bus_server_get_object(ShimmerBusServer *bs);
/* Sets the properties WHAT (ShimmerManagedServerChange flags) says changed. */
void shimmer_bus_server_update(ShimmerBusServer *bs, guint what);
void shimmer_bus_server_log(ShimmerBusServer *bs, ShimmerLogLevel level, const char *line);
void shimmer_bus_server_client_added(ShimmerBusServer *bs, const ShimmerServedClient *c);
void shimmer_bus_server_client_changed(ShimmerBusServer *bs, const ShimmerServedClient *c);
void shimmer_bus_server_client_removed(ShimmerBusServer *bs, const ShimmerServedClient *c);
void shimmer_bus_server_auth_requested(ShimmerBusServer *bs, const ShimmerServerAuthRequest *r);
void shimmer_bus_server_auth_closed(ShimmerBusServer *bs, guint64 request, const char *outcome);

G_END_DECLS
