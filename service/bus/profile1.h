/* SPDX-License-Identifier: MIT */
#pragma once

#include "context.h"

G_BEGIN_DECLS

/*
 * org.shimmervpn.Profile1 at /org/shimmervpn/profile/<id>: the D-Bus face
 * of one ShimmerProfile. Its properties follow the model
 * (shimmer_bus_profile_update()); its methods pass the gate (auth.h) and
 * call the manager.
 */

typedef struct ShimmerBusProfile ShimmerBusProfile;

ShimmerBusProfile *shimmer_bus_profile_new(ShimmerBusContext *ctx, ShimmerProfile *p);
void shimmer_bus_profile_free(ShimmerBusProfile *bp);
GDBusObjectSkeleton *shimmer_bus_profile_get_object(ShimmerBusProfile *bp);
/* Sets the properties that change: Name, LastUsed, ActiveSession. */
void shimmer_bus_profile_update(ShimmerBusProfile *bp);
/* Removes the (not persistent) profile, as Remove does, when the bus name
 * CALLER (a unique name) leaves the bus; a session of it is disconnected. */
void shimmer_bus_profile_bind_to_caller(ShimmerBusProfile *bp, const char *caller);

/* The daemon reconnected to its bus: renews what watched the old
 * connection. */
void shimmer_bus_profile_reconnected(ShimmerBusProfile *bp);

G_END_DECLS
