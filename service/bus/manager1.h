/* SPDX-License-Identifier: MIT */
#pragma once

#include "context.h"

G_BEGIN_DECLS

/*
 * org.shimmervpn.Manager1 at /org/shimmervpn: importing, checking and
 * listing. Every method passes the gate (auth.h).
 */

typedef struct ShimmerBusManager ShimmerBusManager;

/* DNS_BACKEND: shown as the DnsBackend property. */
ShimmerBusManager *shimmer_bus_manager_new(ShimmerBusContext *ctx, const char *dns_backend);
void shimmer_bus_manager_free(ShimmerBusManager *bm);
GDBusInterfaceSkeleton *shimmer_bus_manager_get_interface(ShimmerBusManager *bm);

G_END_DECLS
