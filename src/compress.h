/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "config.h"

G_BEGIN_DECLS

/*
 * The receive side of OpenVPN's compression, as OpenVPN 2.6 does it by
 * default ("allow-compression asym"): what the server sends may be
 * compressed and is decompressed here; what Shimmer sends is never
 * compressed (compframe.h writes the framing of an uncompressed packet).
 *
 * The framings, by the first byte(s) of the decrypted payload:
 *   SHIMMER_COMP_LZO_NO (comp-lzo in any form, compress lzo):
 *       0xFA  not compressed, the packet follows;
 *       0x66  LZO1X compressed, the compressed data follows.
 *   SHIMMER_COMP_STUB (compress, compress stub, compress lz4):
 *       0xFB  not compressed; the packet's first byte travels last;
 *       0x69  LZ4 compressed; the compressed data's first byte travels last.
 *   SHIMMER_COMP_STUB_V2 (compress stub-v2, compress lz4-v2):
 *       anything but 0x50: the packet itself, no header;
 *       0x50 0x00  not compressed (the escape for a packet starting 0x50);
 *       0x50 0x01  LZ4 compressed, the compressed data follows.
 * Any other header byte is refused, as OpenVPN refuses it.
 *
 * ALG says what the profile (or the push) lets the server compress with:
 * SHIMMER_COMP_ALG_NONE accepts only the uncompressed forms (a stub),
 * LZO the 0x66 form, LZ4 the 0x69 and 0x50 0x01 forms. A compressed packet
 * of another algorithm is refused (SHIMMER_DECOMP_NOT_ALLOWED).
 *
 * No I/O, no allocation: the decompressors work on caller buffers.
 */

typedef enum {
    SHIMMER_DECOMP_OK,
    SHIMMER_DECOMP_MALFORMED,   /* empty, truncated, or an unknown header byte */
    SHIMMER_DECOMP_NOT_ALLOWED, /* compressed, with an algorithm not configured */
    SHIMMER_DECOMP_BAD_DATA,    /* the compressed data does not decode */
    SHIMMER_DECOMP_TOO_LARGE,   /* it would decode to more than the bound */
} ShimmerDecompResult;

/* Removes the framing of BUF[0..*LEN) and decompresses a compressed packet,
 * leaving the packet in BUF[0..*LEN). BUF has room for CAP bytes. A
 * compressed packet is decoded into SCRATCH (SCRATCH_CAP bytes, not
 * overlapping BUF) and copied back; it may decode to at most
 * MIN(CAP, SCRATCH_CAP) bytes, never more (hostile input cannot make it
 * write past either buffer). An uncompressed packet is unframed in place
 * and SCRATCH is not touched (it may then be NULL).
 * On anything but SHIMMER_DECOMP_OK, *LEN is set to 0 and the packet must
 * be dropped. */
ShimmerDecompResult shimmer_decompress(ShimmerCompFraming framing, ShimmerCompAlgorithm alg,
                                       guint8 *buf, gsize *len, gsize cap, guint8 *scratch,
                                       gsize scratch_cap);

/* A short English description of R, for logs and counters. */
const char *shimmer_decompress_result_string(ShimmerDecompResult r);

G_END_DECLS
