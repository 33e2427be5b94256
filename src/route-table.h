/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * A longest-prefix-match table of IPv4 and IPv6 prefixes, each mapping to
 * one value: where a server sends a tunnel packet by its destination (a
 * client's own addresses as /32 and /128, the networks behind it from
 * iroute as shorter prefixes).
 *
 * One hash table per prefix length in use, searched from the longest
 * length down: a lookup costs one hash probe per distinct length present
 * (a server with only client addresses probes once). Lookups allocate
 * nothing. Addresses are bytes in network order: 4 for IPv4, 16 for IPv6.
 */

typedef struct ShimmerRouteTable ShimmerRouteTable;

ShimmerRouteTable *shimmer_route_table_new(void);
void shimmer_route_table_free(ShimmerRouteTable *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerRouteTable, shimmer_route_table_free)

/* Adds ADDR/BITS (FAMILY 4 or 6; host bits beyond BITS are ignored) for
 * VALUE (not NULL). FALSE when that prefix is there already (its value
 * stays) or the arguments are out of range. */
gboolean shimmer_route_table_add(ShimmerRouteTable *t, int family, const guint8 *addr, guint bits,
                                 gpointer value);
/* Removes ADDR/BITS if it maps to VALUE (NULL: whatever it maps to).
 * TRUE if it was removed. */
gboolean shimmer_route_table_remove(ShimmerRouteTable *t, int family, const guint8 *addr,
                                    guint bits, gpointer value);
/* The value of exactly ADDR/BITS, or NULL. */
gpointer shimmer_route_table_get(const ShimmerRouteTable *t, int family, const guint8 *addr,
                                 guint bits);
/* The value of the longest prefix holding ADDR, or NULL. */
gpointer shimmer_route_table_lookup(const ShimmerRouteTable *t, int family, const guint8 *addr);
/* Prefixes in the table. */
guint shimmer_route_table_size(const ShimmerRouteTable *t);

/* "10.0.0.0/8" or "2001:db8::/32" into FAMILY, ADDR (16 bytes of room)
 * and BITS; a bare address is a host (/32, /128). FALSE when it does not
 * parse. */
gboolean shimmer_route_parse_prefix(const char *text, int *family, guint8 addr[16], guint *bits);
/* The prefix length of a dotted netmask ("255.255.255.0": 24); -1 when it
 * is not a contiguous mask. */
gint shimmer_route_netmask_bits(const char *netmask);

G_END_DECLS
