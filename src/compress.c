/* SPDX-License-Identifier: MIT */
#include "compress.h"

#include <lz4.h>
#include <lzo/lzo1x.h>
#include <string.h>

/* The header bytes (OpenVPN's comp.h has the same values: they are the
 * wire format). */
#define HDR_NONE      0xFA
#define HDR_NONE_SWAP 0xFB
#define HDR_LZO       0x66
#define HDR_LZ4_SWAP  0x69
#define V2_INDICATOR  0x50
#define V2_NONE       0x00
#define V2_LZ4        0x01

/* lzo_init() checks that the library matches its headers; once is enough. */
static bool lzo_ready(void)
{
    static gsize once = 0;
    static bool ok = false;
    if (g_once_init_enter(&once)) {
        ok = lzo_init() == LZO_E_OK;
        g_once_init_leave(&once, 1);
    }
    return ok;
}

/* Decodes IN[0..IN_LEN) into OUT (at most CAP bytes). */
static ShimmerDecompResult decode(ShimmerCompAlgorithm alg, const guint8 *in, gsize in_len,
                                  guint8 *out, gsize cap, gsize *out_len)
{
    if (in_len == 0)
        return SHIMMER_DECOMP_MALFORMED;
    if (alg == SHIMMER_COMP_ALG_LZ4) {
        if (in_len > G_MAXINT || cap > G_MAXINT)
            return SHIMMER_DECOMP_TOO_LARGE;
        /* The safe decoder never reads past IN_LEN nor writes past CAP; it
         * cannot tell a short buffer from bad data, both are negative. */
        int n = LZ4_decompress_safe((const char *)in, (char *)out, (int)in_len, (int)cap);
        if (n < 0)
            return SHIMMER_DECOMP_BAD_DATA;
        *out_len = (gsize)n;
        return SHIMMER_DECOMP_OK;
    }
    if (alg == SHIMMER_COMP_ALG_LZO) {
        if (!lzo_ready())
            return SHIMMER_DECOMP_BAD_DATA;
        lzo_uint n = cap;
        /* The _safe variant checks both buffers' bounds; it needs no work
         * memory. Trailing input is an error too (LZO_E_INPUT_NOT_CONSUMED). */
        int rc = lzo1x_decompress_safe(in, in_len, out, &n, NULL);
        if (rc == LZO_E_OUTPUT_OVERRUN)
            return SHIMMER_DECOMP_TOO_LARGE;
        if (rc != LZO_E_OK)
            return SHIMMER_DECOMP_BAD_DATA;
        *out_len = n;
        return SHIMMER_DECOMP_OK;
    }
    return SHIMMER_DECOMP_NOT_ALLOWED;
}

/* A compressed payload at BUF[OFF..*LEN): decode it into SCRATCH, then back. */
static ShimmerDecompResult inflate(ShimmerCompAlgorithm want, ShimmerCompAlgorithm alg, guint8 *buf,
                                   gsize off, gsize *len, gsize cap, guint8 *scratch,
                                   gsize scratch_cap)
{
    if (alg != want)
        return SHIMMER_DECOMP_NOT_ALLOWED;
    if (scratch == NULL)
        return SHIMMER_DECOMP_TOO_LARGE;
    gsize n = 0;
    ShimmerDecompResult r = decode(alg, buf + off, *len - off, scratch, MIN(cap, scratch_cap), &n);
    if (r != SHIMMER_DECOMP_OK)
        return r;
    memcpy(buf, scratch, n);
    *len = n;
    return SHIMMER_DECOMP_OK;
}

static ShimmerDecompResult unframe(ShimmerCompFraming framing, ShimmerCompAlgorithm alg,
                                   guint8 *buf, gsize *len, gsize cap, guint8 *scratch,
                                   gsize scratch_cap)
{
    gsize n = *len;
    switch (framing) {
    case SHIMMER_COMP_NONE:
        return SHIMMER_DECOMP_OK;
    case SHIMMER_COMP_LZO_NO:
        if (n == 0)
            return SHIMMER_DECOMP_MALFORMED;
        if (buf[0] == HDR_NONE) {
            memmove(buf, buf + 1, n - 1);
            *len = n - 1;
            return SHIMMER_DECOMP_OK;
        }
        if (buf[0] == HDR_LZO)
            return inflate(SHIMMER_COMP_ALG_LZO, alg, buf, 1, len, cap, scratch, scratch_cap);
        return SHIMMER_DECOMP_MALFORMED;
    case SHIMMER_COMP_STUB: {
        if (n < 2)
            return SHIMMER_DECOMP_MALFORMED;
        guint8 head = buf[0];
        if (head != HDR_NONE_SWAP && head != HDR_LZ4_SWAP)
            return SHIMMER_DECOMP_MALFORMED;
        if (head == HDR_LZ4_SWAP && alg != SHIMMER_COMP_ALG_LZ4)
            return SHIMMER_DECOMP_NOT_ALLOWED;
        /* The first byte travelled at the end. */
        buf[0] = buf[n - 1];
        *len = n - 1;
        if (head == HDR_NONE_SWAP)
            return SHIMMER_DECOMP_OK;
        return inflate(SHIMMER_COMP_ALG_LZ4, alg, buf, 0, len, cap, scratch, scratch_cap);
    }
    case SHIMMER_COMP_STUB_V2:
        if (n == 0 || buf[0] != V2_INDICATOR)
            return SHIMMER_DECOMP_OK;
        if (n < 2)
            return SHIMMER_DECOMP_MALFORMED;
        if (buf[1] == V2_NONE) {
            memmove(buf, buf + 2, n - 2);
            *len = n - 2;
            return SHIMMER_DECOMP_OK;
        }
        if (buf[1] == V2_LZ4)
            return inflate(SHIMMER_COMP_ALG_LZ4, alg, buf, 2, len, cap, scratch, scratch_cap);
        return SHIMMER_DECOMP_MALFORMED;
    }
    return SHIMMER_DECOMP_MALFORMED;
}

ShimmerDecompResult shimmer_decompress(ShimmerCompFraming framing, ShimmerCompAlgorithm alg,
                                       guint8 *buf, gsize *len, gsize cap, guint8 *scratch,
                                       gsize scratch_cap)
{
    if (*len > cap) {
        *len = 0;
        return SHIMMER_DECOMP_MALFORMED;
    }
    ShimmerDecompResult r = unframe(framing, alg, buf, len, cap, scratch, scratch_cap);
    if (r != SHIMMER_DECOMP_OK)
        *len = 0;
    return r;
}

const char *shimmer_decompress_result_string(ShimmerDecompResult r)
{
    switch (r) {
    case SHIMMER_DECOMP_OK:
        return "ok";
    case SHIMMER_DECOMP_MALFORMED:
        return "malformed compression header";
    case SHIMMER_DECOMP_NOT_ALLOWED:
        return "compressed with an algorithm the profile does not allow";
    case SHIMMER_DECOMP_BAD_DATA:
        return "compressed data that does not decode";
    case SHIMMER_DECOMP_TOO_LARGE:
        return "compressed data that decodes to more than a packet";
    }
    return "?";
}
