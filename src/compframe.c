/* SPDX-License-Identifier: MIT */
#include "compframe.h"

#include <string.h>

#define NO_COMPRESS      0xFA
#define NO_COMPRESS_SWAP 0xFB
#define V2_INDICATOR     0x50

gsize shimmer_compframe_wrap(ShimmerCompFraming mode, const guint8 *in, gsize len, guint8 *out)
{
    switch (mode) {
    case SHIMMER_COMP_NONE:
        memcpy(out, in, len);
        return len;
    case SHIMMER_COMP_LZO_NO:
        out[0] = NO_COMPRESS;
        memcpy(out + 1, in, len);
        return len + 1;
    case SHIMMER_COMP_STUB:
        if (len == 0) {
            out[0] = NO_COMPRESS;
            return 1;
        }
        out[0] = NO_COMPRESS_SWAP;
        memcpy(out + 1, in + 1, len - 1);
        out[len] = in[0];
        return len + 1;
    case SHIMMER_COMP_STUB_V2:
        if (len > 0 && in[0] == V2_INDICATOR) {
            out[0] = V2_INDICATOR;
            out[1] = 0;
            memcpy(out + 2, in, len);
            return len + 2;
        }
        memcpy(out, in, len);
        return len;
    }
    return 0;
}

gboolean shimmer_compframe_unwrap(ShimmerCompFraming mode, guint8 *buf, gsize *len)
{
    gsize n = *len;
    if (mode == SHIMMER_COMP_NONE)
        return TRUE;
    if (mode == SHIMMER_COMP_STUB_V2) {
        if (n == 0 || buf[0] != V2_INDICATOR)
            return TRUE;
        if (n < 2 || buf[1] != 0)
            return FALSE; /* a compressed packet */
        memmove(buf, buf + 2, n - 2);
        *len = n - 2;
        return TRUE;
    }
    if (n == 0)
        return FALSE;
    if (buf[0] == NO_COMPRESS) {
        memmove(buf, buf + 1, n - 1);
        *len = n - 1;
        return TRUE;
    }
    if (buf[0] == NO_COMPRESS_SWAP && n >= 2) {
        /* The first byte travelled at the end. */
        buf[0] = buf[n - 1];
        *len = n - 1;
        return TRUE;
    }
    return FALSE;
}

void shimmer_compframe_wrap_in_place(ShimmerCompFraming mode, guint8 *buf, gsize *off, gsize *len)
{
    guint8 *p = buf + *off;
    gsize n = *len;
    switch (mode) {
    case SHIMMER_COMP_NONE:
        return;
    case SHIMMER_COMP_LZO_NO:
        p[-1] = NO_COMPRESS;
        *off -= 1;
        *len = n + 1;
        return;
    case SHIMMER_COMP_STUB:
        if (n == 0) {
            p[-1] = NO_COMPRESS;
            *off -= 1;
            *len = 1;
            return;
        }
        /* The first byte travels at the end, so the payload stays put. */
        p[n] = p[0];
        p[0] = NO_COMPRESS_SWAP;
        *len = n + 1;
        return;
    case SHIMMER_COMP_STUB_V2:
        if (n > 0 && p[0] == V2_INDICATOR) {
            p[-2] = V2_INDICATOR;
            p[-1] = 0;
            *off -= 2;
            *len = n + 2;
        }
        return;
    }
}

gboolean shimmer_compframe_unwrap_in_place(ShimmerCompFraming mode, guint8 *buf, gsize *off,
                                           gsize *len)
{
    guint8 *p = buf + *off;
    gsize n = *len;
    if (mode == SHIMMER_COMP_NONE)
        return TRUE;
    if (mode == SHIMMER_COMP_STUB_V2) {
        if (n == 0 || p[0] != V2_INDICATOR)
            return TRUE;
        if (n < 2 || p[1] != 0)
            return FALSE;
        *off += 2;
        *len = n - 2;
        return TRUE;
    }
    if (n == 0)
        return FALSE;
    if (p[0] == NO_COMPRESS) {
        *off += 1;
        *len = n - 1;
        return TRUE;
    }
    if (p[0] == NO_COMPRESS_SWAP && n >= 2) {
        p[0] = p[n - 1];
        *len = n - 1;
        return TRUE;
    }
    return FALSE;
}
