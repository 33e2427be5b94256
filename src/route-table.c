/* SPDX-License-Identifier: MIT */
/*
 * Longest-prefix match by one hash table per prefix length. See
 * route-table.h.
 */
#include "route-table.h"

#include <arpa/inet.h>
#include <string.h>

typedef struct {
    guint8 addr[16];
} Key;

typedef struct {
    GHashTable *by_bits[129]; /* Key* -> value, created on first use */
    guint8 lengths[129];      /* the lengths in use, longest first */
    guint n_lengths;
    guint len; /* address bytes: 4 or 16 */
} Family;

struct ShimmerRouteTable {
    Family f4, f6;
    guint size;
};

static guint key_hash(gconstpointer k)
{
    const guint8 *a = ((const Key *)k)->addr;
    /* FNV-1a over the 16 bytes: cheap and spreads host parts well. */
    guint32 h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ a[i]) * 16777619u;
    return h;
}

static gboolean key_equal(gconstpointer a, gconstpointer b)
{
    return memcmp(a, b, sizeof(Key)) == 0;
}

ShimmerRouteTable *shimmer_route_table_new(void)
{
    ShimmerRouteTable *t = g_new0(ShimmerRouteTable, 1);
    t->f4.len = 4;
    t->f6.len = 16;
    return t;
}

void shimmer_route_table_free(ShimmerRouteTable *t)
{
    if (t == NULL)
        return;
    for (guint b = 0; b <= 128; b++) {
        if (t->f4.by_bits[b] != NULL)
            g_hash_table_unref(t->f4.by_bits[b]);
        if (t->f6.by_bits[b] != NULL)
            g_hash_table_unref(t->f6.by_bits[b]);
    }
    g_free(t);
}

static Family *family_of(const ShimmerRouteTable *t, int family, guint bits)
{
    const Family *f = family == 4 ? &t->f4 : family == 6 ? &t->f6 : NULL;
    if (f == NULL || bits > f->len * 8)
        return NULL;
    return (Family *)f;
}

static void make_key(const Family *f, const guint8 *addr, guint bits, Key *k)
{
    memset(k, 0, sizeof(*k));
    memcpy(k->addr, addr, f->len);
    for (guint i = 0; i < f->len; i++) {
        guint keep = bits >= (i + 1) * 8 ? 8 : bits > i * 8 ? bits - i * 8 : 0;
        k->addr[i] &= keep == 0 ? 0 : (guint8)(0xff << (8 - keep));
    }
}

static void refresh_lengths(Family *f)
{
    f->n_lengths = 0;
    for (gint b = (gint)f->len * 8; b >= 0; b--) {
        if (f->by_bits[b] != NULL && g_hash_table_size(f->by_bits[b]) > 0)
            f->lengths[f->n_lengths++] = (guint8)b;
    }
}

gboolean shimmer_route_table_add(ShimmerRouteTable *t, int family, const guint8 *addr, guint bits,
                                 gpointer value)
{
    Family *f = family_of(t, family, bits);
    if (f == NULL || addr == NULL || value == NULL)
        return FALSE;
    Key k;
    make_key(f, addr, bits, &k);
    if (f->by_bits[bits] == NULL)
        f->by_bits[bits] = g_hash_table_new_full(key_hash, key_equal, g_free, NULL);
    if (g_hash_table_contains(f->by_bits[bits], &k))
        return FALSE;
    g_hash_table_insert(f->by_bits[bits], g_memdup2(&k, sizeof(k)), value);
    if (g_hash_table_size(f->by_bits[bits]) == 1)
        refresh_lengths(f);
    t->size++;
    return TRUE;
}

gboolean shimmer_route_table_remove(ShimmerRouteTable *t, int family, const guint8 *addr,
                                    guint bits, gpointer value)
{
    Family *f = family_of(t, family, bits);
    if (f == NULL || addr == NULL || f->by_bits[bits] == NULL)
        return FALSE;
    Key k;
    make_key(f, addr, bits, &k);
    gpointer have = g_hash_table_lookup(f->by_bits[bits], &k);
    if (have == NULL || (value != NULL && have != value))
        return FALSE;
    g_hash_table_remove(f->by_bits[bits], &k);
    if (g_hash_table_size(f->by_bits[bits]) == 0)
        refresh_lengths(f);
    t->size--;
    return TRUE;
}

gpointer shimmer_route_table_get(const ShimmerRouteTable *t, int family, const guint8 *addr,
                                 guint bits)
{
    Family *f = family_of(t, family, bits);
    if (f == NULL || addr == NULL || f->by_bits[bits] == NULL)
        return NULL;
    Key k;
    make_key(f, addr, bits, &k);
    return g_hash_table_lookup(f->by_bits[bits], &k);
}

gpointer shimmer_route_table_lookup(const ShimmerRouteTable *t, int family, const guint8 *addr)
{
    Family *f = family_of(t, family, 0);
    if (f == NULL || addr == NULL)
        return NULL;
    for (guint i = 0; i < f->n_lengths; i++) {
        guint bits = f->lengths[i];
        Key k;
        make_key(f, addr, bits, &k);
        gpointer v = g_hash_table_lookup(f->by_bits[bits], &k);
        if (v != NULL)
            return v;
    }
    return NULL;
}

guint shimmer_route_table_size(const ShimmerRouteTable *t)
{
    return t->size;
}

gboolean shimmer_route_parse_prefix(const char *text, int *family, guint8 addr[16], guint *bits)
{
    if (text == NULL)
        return FALSE;
    const char *slash = strchr(text, '/');
    g_autofree char *a = slash ? g_strndup(text, (gsize)(slash - text)) : g_strdup(text);
    memset(addr, 0, 16);
    int fam = strchr(a, ':') != NULL ? 6 : 4;
    if (inet_pton(fam == 6 ? AF_INET6 : AF_INET, a, addr) != 1)
        return FALSE;
    guint max = fam == 6 ? 128 : 32;
    guint b = max;
    if (slash != NULL) {
        char *end = NULL;
        guint64 v = g_ascii_strtoull(slash + 1, &end, 10);
        if (end == slash + 1 || *end != '\0' || v > max)
            return FALSE;
        b = (guint)v;
    }
    *family = fam;
    *bits = b;
    return TRUE;
}

gint shimmer_route_netmask_bits(const char *netmask)
{
    struct in_addr a;
    if (netmask == NULL || inet_pton(AF_INET, netmask, &a) != 1)
        return -1;
    guint32 m = g_ntohl(a.s_addr);
    gint n = 0;
    while (n < 32 && (m & (0x80000000u >> n)))
        n++;
    if (n < 32 && (m << n) != 0)
        return -1;
    return n;
}
