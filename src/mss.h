/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Lowers the MSS option of a TCP SYN (or SYN-ACK) in the IPv4 or IPv6 packet
 * PKT[0..LEN) to at most MSS4 (IPv4) or MSS6 (IPv6), fixing the TCP checksum
 * incrementally. Anything else (not TCP, not SYN, fragments, options that do
 * not parse, an MSS already small enough, 0 = no clamping) is left alone.
 * Returns TRUE if the packet was changed. Never reads outside PKT. */
gboolean shimmer_mss_clamp(guint8 *pkt, gsize len, guint mss4, guint mss6);

G_END_DECLS
