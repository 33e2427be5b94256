/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "config.h"

G_BEGIN_DECLS

/*
 * The addresses a server hands out from its pools (ShimmerServerPlan): slot
 * I is the IPv4 address pool_start + I and, with an IPv6 pool, the IPv6
 * address pool6_start + I, as OpenVPN pairs them. A client that comes back
 * under the same name gets its previous slot again when it is free (what
 * ifconfig-pool-persist keeps across runs, kept here for the run).
 */

typedef struct ShimmerIpPool ShimmerIpPool;

/* NULL (no error) when PLAN has no pool: clients then need ccd addresses. */
ShimmerIpPool *shimmer_ip_pool_new(const ShimmerServerPlan *plan);
void shimmer_ip_pool_free(ShimmerIpPool *pool);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerIpPool, shimmer_ip_pool_free)

/* Whether the caller already uses an address of slot I (a static one from a
 * ccd file that lies in the pool): such slots are skipped. */
typedef gboolean (*ShimmerIpPoolTaken)(gpointer user, const guint8 v4[4], const guint8 *v6);

/* Takes a free slot for NAME (may be NULL): its previous one if free,
 * else the lowest free one not TAKEN (TAKEN may be NULL). FALSE when the
 * pool is exhausted. */
gboolean shimmer_ip_pool_alloc(ShimmerIpPool *pool, const char *name, ShimmerIpPoolTaken taken,
                               gpointer user, guint *slot);
void shimmer_ip_pool_release(ShimmerIpPool *pool, guint slot);
/* The addresses of SLOT: V4 (4 bytes), V6 (16 bytes; FALSE without an
 * IPv6 pool). */
void shimmer_ip_pool_address4(const ShimmerIpPool *pool, guint slot, guint8 v4[4]);
gboolean shimmer_ip_pool_address6(const ShimmerIpPool *pool, guint slot, guint8 v6[16]);
gboolean shimmer_ip_pool_has_ipv4(const ShimmerIpPool *pool);
/* The prefix length pushed with pool IPv6 addresses. */
guint shimmer_ip_pool_ipv6_bits(const ShimmerIpPool *pool);
guint shimmer_ip_pool_size(const ShimmerIpPool *pool);
guint shimmer_ip_pool_used(const ShimmerIpPool *pool);

G_END_DECLS
