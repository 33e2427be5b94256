/* SPDX-License-Identifier: MIT */
#include "mss.h"

#include "bytes.h"

/* RFC 1624 incremental update of a one's complement checksum for one 16-bit
 * word changing from OLD to NEW. */
static guint16 csum_update(guint16 csum, guint16 old, guint16 new_)
{
    guint32 sum = (guint16)~csum + (guint16)~old + (guint32)new_;
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return (guint16)~sum;
}

static gboolean clamp_tcp(guint8 *tcp, gsize len, guint mss)
{
    if (mss == 0 || len < 20)
        return FALSE;
    guint flags = tcp[13];
    if (!(flags & 0x02)) /* SYN */
        return FALSE;
    gsize hlen = (gsize)(tcp[12] >> 4) * 4;
    if (hlen < 20 || hlen > len)
        return FALSE;
    for (gsize i = 20; i < hlen;) {
        guint kind = tcp[i];
        if (kind == 0)
            break;
        if (kind == 1) {
            i++;
            continue;
        }
        if (i + 1 >= hlen)
            break;
        gsize olen = tcp[i + 1];
        if (olen < 2 || i + olen > hlen)
            break;
        if (kind == 2 && olen == 4) {
            guint16 cur = shimmer_read_be16(tcp + i + 2);
            if (cur <= mss)
                return FALSE;
            guint16 csum = shimmer_read_be16(tcp + 16);
            /* Options need not be aligned: at an odd offset the value's two
             * bytes sit in two checksum words, which the one's complement
             * sum sees as the byte-swapped value (RFC 1071). */
            if ((i + 2) & 1)
                csum = csum_update(csum, GUINT16_SWAP_LE_BE(cur), GUINT16_SWAP_LE_BE((guint16)mss));
            else
                csum = csum_update(csum, cur, (guint16)mss);
            shimmer_write_be16(tcp + i + 2, (guint16)mss);
            shimmer_write_be16(tcp + 16, csum);
            return TRUE;
        }
        i += olen;
    }
    return FALSE;
}

gboolean shimmer_mss_clamp(guint8 *pkt, gsize len, guint mss4, guint mss6)
{
    if (len < 20)
        return FALSE;
    guint version = pkt[0] >> 4;
    if (version == 4) {
        gsize ihl = (gsize)(pkt[0] & 0x0f) * 4;
        if (ihl < 20 || ihl > len || pkt[9] != 6)
            return FALSE;
        /* Only the first fragment carries the TCP header; skip all fragments. */
        guint frag = shimmer_read_be16(pkt + 6) & 0x1fff;
        if (frag != 0 || (pkt[6] & 0x20))
            return FALSE;
        gsize total = shimmer_read_be16(pkt + 2);
        if (total > len || total < ihl)
            return FALSE;
        return clamp_tcp(pkt + ihl, total - ihl, mss4);
    }
    if (version == 6) {
        /* Extension headers are rare on SYNs; only the plain case is handled. */
        if (len < 40 || pkt[6] != 6)
            return FALSE;
        gsize plen = shimmer_read_be16(pkt + 4);
        if (plen + 40 > len)
            return FALSE;
        return clamp_tcp(pkt + 40, plen, mss6);
    }
    return FALSE;
}
