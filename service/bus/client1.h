/* SPDX-License-Identifier: MIT */
#pragma once

#include "context.h"

G_BEGIN_DECLS

/*
 * org.shimmervpn.Client1 at /org/shimmervpn/server/<id>/client/<client>:
 * the D-Bus face of one client connected to a server (ShimmerServedClient
 * of a ShimmerManagedServer). Owned by its server's ShimmerBusServer.
 */

typedef struct ShimmerBusClient ShimmerBusClient;

ShimmerBusClient *shimmer_bus_client_new(ShimmerBusContext *ctx, ShimmerManagedServer *server,
                                         const char *server_path, const ShimmerServedClient *c);
void shimmer_bus_client_free(ShimmerBusClient *bc);
GDBusObjectSkeleton *shimmer_bus_client_get_object(ShimmerBusClient *bc);
const char *shimmer_bus_client_get_path(ShimmerBusClient *bc);
/* Sets the counters from C. */
void shimmer_bus_client_update(ShimmerBusClient *bc, const ShimmerServedClient *c);

G_END_DECLS
