/* SPDX-License-Identifier: MIT */
/*
 * The server's address pools. See ippool.h.
 */
#include "ippool.h"

#include <arpa/inet.h>
#include <string.h>

/* Names remembered for "the same slot again": at most this many. */
#define MAX_REMEMBERED 4096

struct ShimmerIpPool {
    guint size;
    guint used;
    bool has_v4, has_v6;
    guint32 v4_start; /* host order */
    guint8 v6_start[16];
    guint v6_bits;
    guint8 *bitmap;
    GHashTable *previous; /* name -> slot + 1 */
};

ShimmerIpPool *shimmer_ip_pool_new(const ShimmerServerPlan *plan)
{
    if (plan == NULL || plan->pool_size == 0)
        return NULL;
    ShimmerIpPool *p = g_new0(ShimmerIpPool, 1);
    p->size = plan->pool_size;
    struct in_addr a;
    if (plan->pool_start != NULL && inet_pton(AF_INET, plan->pool_start, &a) == 1) {
        p->has_v4 = true;
        p->v4_start = g_ntohl(a.s_addr);
    }
    if (plan->pool6_start != NULL && inet_pton(AF_INET6, plan->pool6_start, p->v6_start) == 1) {
        p->has_v6 = true;
        p->v6_bits = plan->pool6_bits;
    }
    if (!p->has_v4 && !p->has_v6) {
        g_free(p);
        return NULL;
    }
    p->bitmap = g_new0(guint8, (p->size + 7) / 8);
    p->previous = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    return p;
}

void shimmer_ip_pool_free(ShimmerIpPool *p)
{
    if (p == NULL)
        return;
    g_free(p->bitmap);
    g_hash_table_unref(p->previous);
    g_free(p);
}

static bool used(const ShimmerIpPool *p, guint slot)
{
    return (p->bitmap[slot / 8] >> (slot % 8)) & 1;
}

void shimmer_ip_pool_address4(const ShimmerIpPool *p, guint slot, guint8 v4[4])
{
    guint32 v = p->v4_start + slot;
    v4[0] = (guint8)(v >> 24);
    v4[1] = (guint8)(v >> 16);
    v4[2] = (guint8)(v >> 8);
    v4[3] = (guint8)v;
}

gboolean shimmer_ip_pool_address6(const ShimmerIpPool *p, guint slot, guint8 v6[16])
{
    if (!p->has_v6)
        return FALSE;
    memcpy(v6, p->v6_start, 16);
    guint64 carry = slot;
    for (int i = 15; i >= 0 && carry; i--) {
        carry += v6[i];
        v6[i] = (guint8)carry;
        carry >>= 8;
    }
    return TRUE;
}

static bool slot_taken(const ShimmerIpPool *p, guint slot, ShimmerIpPoolTaken taken, gpointer user)
{
    if (used(p, slot))
        return true;
    if (taken == NULL)
        return false;
    guint8 v4[4] = {0}, v6[16];
    shimmer_ip_pool_address4(p, slot, v4);
    bool have6 = shimmer_ip_pool_address6(p, slot, v6);
    return taken(user, v4, have6 ? v6 : NULL);
}

gboolean shimmer_ip_pool_alloc(ShimmerIpPool *p, const char *name, ShimmerIpPoolTaken taken,
                               gpointer user, guint *slot)
{
    if (p == NULL || p->used >= p->size)
        return FALSE;
    guint pick = G_MAXUINT;
    gpointer prev = name != NULL ? g_hash_table_lookup(p->previous, name) : NULL;
    if (prev != NULL) {
        guint s = GPOINTER_TO_UINT(prev) - 1;
        if (s < p->size && !slot_taken(p, s, taken, user))
            pick = s;
    }
    for (guint s = 0; pick == G_MAXUINT && s < p->size; s++) {
        if (p->bitmap[s / 8] == 0xff) {
            s += 7 - s % 8;
            continue;
        }
        if (!slot_taken(p, s, taken, user))
            pick = s;
    }
    if (pick == G_MAXUINT)
        return FALSE;
    p->bitmap[pick / 8] |= (guint8)(1u << (pick % 8));
    p->used++;
    if (name != NULL && (prev != NULL || g_hash_table_size(p->previous) < MAX_REMEMBERED))
        g_hash_table_insert(p->previous, g_strdup(name), GUINT_TO_POINTER(pick + 1));
    *slot = pick;
    return TRUE;
}

void shimmer_ip_pool_release(ShimmerIpPool *p, guint slot)
{
    if (p == NULL || slot >= p->size || !used(p, slot))
        return;
    p->bitmap[slot / 8] &= (guint8) ~(1u << (slot % 8));
    p->used--;
}

gboolean shimmer_ip_pool_has_ipv4(const ShimmerIpPool *p)
{
    return p != NULL && p->has_v4;
}

guint shimmer_ip_pool_ipv6_bits(const ShimmerIpPool *p)
{
    return p != NULL ? p->v6_bits : 0;
}

guint shimmer_ip_pool_size(const ShimmerIpPool *p)
{
    return p != NULL ? p->size : 0;
}

guint shimmer_ip_pool_used(const ShimmerIpPool *p)
{
    return p != NULL ? p->used : 0;
}
