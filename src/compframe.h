/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

#include "config.h"

G_BEGIN_DECLS

/*
 * Compression framing without compression, for what Shimmer sends. Shimmer
 * never compresses, but a server configured with comp-lzo or compress
 * expects the framing (compress.h is the receive side):
 *   comp-lzo no      one 0xFA byte ("not compressed") in front;
 *   compress [stub]  0xFB in front, and the packet's first byte moved to the
 *                    end (the "swap" form, which keeps the payload aligned);
 *   compress stub-v2 nothing, unless the packet starts with 0x50, which then
 *                    gets the escape 0x50 0x00 in front.
 */

/* The most bytes shimmer_compframe_wrap() adds. */
#define SHIMMER_COMPFRAME_MAX_OVERHEAD 2

/* Writes the framed form of IN[0..LEN) to OUT (room for LEN + max overhead;
 * OUT must not overlap IN). Returns the framed length. */
gsize shimmer_compframe_wrap(ShimmerCompFraming mode, const guint8 *in, gsize len, guint8 *out);

/* In place: frames the packet at BUF[*OFF..*OFF+*LEN) where it lies,
 * moving *OFF back by the bytes put in front (at most
 * SHIMMER_COMPFRAME_MAX_OVERHEAD, so *OFF must be at least that) and
 * growing *LEN; the swap form also writes one byte past the packet's end
 * (the caller leaves SHIMMER_COMPFRAME_TAILROOM there). */
#define SHIMMER_COMPFRAME_TAILROOM 1
void shimmer_compframe_wrap_in_place(ShimmerCompFraming mode, guint8 *buf, gsize *off, gsize *len);

/* In place: removes the framing from BUF[*OFF..*OFF+*LEN) by moving *OFF
 * forward and shrinking *LEN, so no byte of the packet is moved (the swap
 * form puts its first byte back). FALSE as shimmer_compframe_unwrap(). */
gboolean shimmer_compframe_unwrap_in_place(ShimmerCompFraming mode, guint8 *buf, gsize *off,
                                           gsize *len);

/* Removes the framing in place from BUF[0..*LEN). FALSE if the packet is
 * compressed or malformed. The receive path should call shimmer_decompress()
 * (compress.h) instead, which also decompresses what a server that compresses
 * sends; this stays for callers that only ever expect stubs. */
gboolean shimmer_compframe_unwrap(ShimmerCompFraming mode, guint8 *buf, gsize *len);

G_END_DECLS
