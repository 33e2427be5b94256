/* SPDX-License-Identifier: MIT */
#include "packet.h"

#include "bytes.h"
#include "secure.h"

#include <string.h>

const char *shimmer_packet_error_to_string(ShimmerPacketError err)
{
    switch (err) {
    case SHIMMER_PACKET_OK:
        return "ok";
    case SHIMMER_PACKET_ERR_TRUNCATED:
        return "packet truncated";
    case SHIMMER_PACKET_ERR_BAD_OPCODE:
        return "unknown or unsupported opcode";
    case SHIMMER_PACKET_ERR_NOT_CONTROL:
        return "data-channel opcode where a control packet was expected";
    case SHIMMER_PACKET_ERR_TOO_MANY_ACKS:
        return "too many acks";
    case SHIMMER_PACKET_ERR_TRAILING:
        return "trailing bytes after the packet";
    case SHIMMER_PACKET_ERR_NO_SPACE:
        return "output buffer too small";
    case SHIMMER_PACKET_ERR_BAD_LENGTH:
        return "packet length out of range";
    case SHIMMER_PACKET_ERR_INVALID:
        return "invalid packet description";
    }
    return "unknown error";
}

const char *shimmer_packet_opcode_name(guint opcode)
{
    switch (opcode) {
    case SHIMMER_OP_SOFT_RESET_V1:
        return "SOFT_RESET_V1";
    case SHIMMER_OP_CONTROL_V1:
        return "CONTROL_V1";
    case SHIMMER_OP_ACK_V1:
        return "ACK_V1";
    case SHIMMER_OP_DATA_V1:
        return "DATA_V1";
    case SHIMMER_OP_HARD_RESET_CLIENT_V2:
        return "HARD_RESET_CLIENT_V2";
    case SHIMMER_OP_HARD_RESET_SERVER_V2:
        return "HARD_RESET_SERVER_V2";
    case SHIMMER_OP_DATA_V2:
        return "DATA_V2";
    case SHIMMER_OP_HARD_RESET_CLIENT_V3:
        return "HARD_RESET_CLIENT_V3";
    case SHIMMER_OP_CONTROL_WKC_V1:
        return "CONTROL_WKC_V1";
    }
    return "UNKNOWN";
}

gboolean shimmer_packet_opcode_is_control(guint opcode)
{
    switch (opcode) {
    case SHIMMER_OP_SOFT_RESET_V1:
    case SHIMMER_OP_CONTROL_V1:
    case SHIMMER_OP_ACK_V1:
    case SHIMMER_OP_HARD_RESET_CLIENT_V2:
    case SHIMMER_OP_HARD_RESET_SERVER_V2:
    case SHIMMER_OP_HARD_RESET_CLIENT_V3:
    case SHIMMER_OP_CONTROL_WKC_V1:
        return TRUE;
    }
    return FALSE;
}

gboolean shimmer_packet_opcode_is_data(guint opcode)
{
    return opcode == SHIMMER_OP_DATA_V1 || opcode == SHIMMER_OP_DATA_V2;
}

ShimmerPacketKind shimmer_packet_classify(const guint8 *buf, gsize len)
{
    if (buf == NULL || len == 0)
        return SHIMMER_PACKET_KIND_INVALID;
    guint op = shimmer_packet_opcode(buf[0]);
    if (shimmer_packet_opcode_is_data(op))
        return SHIMMER_PACKET_KIND_DATA;
    if (shimmer_packet_opcode_is_control(op))
        return SHIMMER_PACKET_KIND_CONTROL;
    return SHIMMER_PACKET_KIND_INVALID;
}

static ShimmerPacketError check_control_opcode(guint op)
{
    if (shimmer_packet_opcode_is_data(op))
        return SHIMMER_PACKET_ERR_NOT_CONTROL;
    if (!shimmer_packet_opcode_is_control(op))
        return SHIMMER_PACKET_ERR_BAD_OPCODE;
    return SHIMMER_PACKET_OK;
}

ShimmerPacketError shimmer_packet_parse_control(const guint8 *buf, gsize len,
                                                ShimmerControlPacket *out)
{
    ShimmerControlPacket p;
    ShimmerPacketError err;
    gsize pos = 0;

    memset(out, 0, sizeof(*out));
    memset(&p, 0, sizeof(p));

    if (buf == NULL || len < 1)
        return SHIMMER_PACKET_ERR_TRUNCATED;
    p.opcode = (guint8)shimmer_packet_opcode(buf[0]);
    p.key_id = (guint8)shimmer_packet_key_id(buf[0]);
    err = check_control_opcode(p.opcode);
    if (err != SHIMMER_PACKET_OK)
        return err;
    pos = 1;

    /* Each check compares against what is left rather than computing
     * pos + n, so no length we read can wrap the arithmetic. */
    if (len - pos < SHIMMER_SESSION_ID_LEN + 1)
        return SHIMMER_PACKET_ERR_TRUNCATED;
    memcpy(p.session_id, buf + pos, SHIMMER_SESSION_ID_LEN);
    pos += SHIMMER_SESSION_ID_LEN;

    p.n_acks = buf[pos++];
    if (p.n_acks > SHIMMER_PACKET_MAX_ACKS)
        return SHIMMER_PACKET_ERR_TOO_MANY_ACKS;
    if (len - pos < (gsize)p.n_acks * 4)
        return SHIMMER_PACKET_ERR_TRUNCATED;
    for (guint i = 0; i < p.n_acks; i++) {
        p.acks[i] = shimmer_read_be32(buf + pos);
        pos += 4;
    }
    if (p.n_acks > 0) {
        if (len - pos < SHIMMER_SESSION_ID_LEN)
            return SHIMMER_PACKET_ERR_TRUNCATED;
        memcpy(p.remote_session_id, buf + pos, SHIMMER_SESSION_ID_LEN);
        pos += SHIMMER_SESSION_ID_LEN;
    }

    if (p.opcode == SHIMMER_OP_ACK_V1) {
        /* An ACK carries nothing else; extra bytes mean the peer and we
         * disagree about the layout, so do not guess. */
        if (pos != len)
            return SHIMMER_PACKET_ERR_TRAILING;
    } else {
        if (len - pos < 4)
            return SHIMMER_PACKET_ERR_TRUNCATED;
        p.has_msg_pid = TRUE;
        p.msg_pid = shimmer_read_be32(buf + pos);
        pos += 4;
    }

    p.payload = buf + pos;
    p.payload_len = len - pos;
    *out = p;
    return SHIMMER_PACKET_OK;
}

gsize shimmer_packet_control_size(const ShimmerControlPacket *pkt)
{
    gsize n = 1 + SHIMMER_SESSION_ID_LEN + 1 + (gsize)pkt->n_acks * 4;
    if (pkt->n_acks > 0)
        n += SHIMMER_SESSION_ID_LEN;
    if (pkt->opcode != SHIMMER_OP_ACK_V1)
        n += 4 + pkt->payload_len;
    return n;
}

ShimmerPacketError shimmer_packet_build_control(const ShimmerControlPacket *pkt, guint8 *out,
                                                gsize out_size, gsize *out_len)
{
    ShimmerPacketError err = check_control_opcode(pkt->opcode);
    guint max_acks;
    gsize need, pos = 0;

    if (err != SHIMMER_PACKET_OK)
        return err;
    if (pkt->key_id > SHIMMER_KEY_ID_MAX)
        return SHIMMER_PACKET_ERR_INVALID;
    if (pkt->payload_len > 0 && pkt->payload == NULL)
        return SHIMMER_PACKET_ERR_INVALID;
    if (pkt->opcode == SHIMMER_OP_ACK_V1) {
        if (pkt->n_acks == 0 || pkt->payload_len > 0)
            return SHIMMER_PACKET_ERR_INVALID;
        max_acks = SHIMMER_PACKET_MAX_ACKS;
    } else {
        max_acks = SHIMMER_PACKET_MAX_ACKS_CONTROL;
    }
    if (pkt->n_acks > max_acks)
        return SHIMMER_PACKET_ERR_TOO_MANY_ACKS;

    need = shimmer_packet_control_size(pkt);
    if (out == NULL || out_size < need)
        return SHIMMER_PACKET_ERR_NO_SPACE;

    out[pos++] = shimmer_packet_op_byte(pkt->opcode, pkt->key_id);
    memcpy(out + pos, pkt->session_id, SHIMMER_SESSION_ID_LEN);
    pos += SHIMMER_SESSION_ID_LEN;
    out[pos++] = (guint8)pkt->n_acks;
    for (guint i = 0; i < pkt->n_acks; i++) {
        shimmer_write_be32(out + pos, pkt->acks[i]);
        pos += 4;
    }
    if (pkt->n_acks > 0) {
        memcpy(out + pos, pkt->remote_session_id, SHIMMER_SESSION_ID_LEN);
        pos += SHIMMER_SESSION_ID_LEN;
    }
    if (pkt->opcode != SHIMMER_OP_ACK_V1) {
        shimmer_write_be32(out + pos, pkt->msg_pid);
        pos += 4;
        if (pkt->payload_len > 0) {
            /* memmove: a caller may build in place over its own payload. */
            memmove(out + pos, pkt->payload, pkt->payload_len);
            pos += pkt->payload_len;
        }
    }
    *out_len = pos;
    return SHIMMER_PACKET_OK;
}

/* ---- TCP framing ---- */

ShimmerPacketError shimmer_tcp_write_prefix(gsize len, guint8 out[SHIMMER_TCP_PREFIX_LEN])
{
    if (len == 0 || len > SHIMMER_TCP_MAX_PACKET)
        return SHIMMER_PACKET_ERR_BAD_LENGTH;
    shimmer_write_be16(out, (guint16)len);
    return SHIMMER_PACKET_OK;
}

struct ShimmerTcpSplitter {
    gsize max_packet;
    guint8 prefix[SHIMMER_TCP_PREFIX_LEN];
    guint prefix_have;
    /* Length of the packet being collected; 0 while the prefix is incomplete. */
    gsize body_len;
    /* Bytes of the body already copied into buf. */
    gsize body_have;
    gboolean failed;
    guint8 *buf;
};

ShimmerTcpSplitter *shimmer_tcp_splitter_new(gsize max_packet)
{
    ShimmerTcpSplitter *s = g_new0(ShimmerTcpSplitter, 1);
    s->max_packet = CLAMP(max_packet, 1, SHIMMER_TCP_MAX_PACKET);
    s->buf = g_malloc(s->max_packet);
    return s;
}

void shimmer_tcp_splitter_free(ShimmerTcpSplitter *s)
{
    if (s == NULL)
        return;
    /* Control packets that pass through here can be key material in flight
     * (tls-crypt-v2 WKc, TLS records): do not leave them in freed memory. */
    shimmer_wipe(s->buf, s->max_packet);
    g_free(s->buf);
    g_free(s);
}

gsize shimmer_tcp_splitter_pending(const ShimmerTcpSplitter *s)
{
    return s->prefix_have + s->body_have;
}

static void splitter_reset(ShimmerTcpSplitter *s)
{
    s->prefix_have = 0;
    s->body_len = 0;
    s->body_have = 0;
}

ShimmerPacketError shimmer_tcp_splitter_feed(ShimmerTcpSplitter *s, const guint8 *data, gsize len,
                                             gsize *consumed, const guint8 **pkt, gsize *pkt_len)
{
    gsize pos = 0;

    *consumed = 0;
    *pkt = NULL;
    *pkt_len = 0;
    if (s->failed)
        return SHIMMER_PACKET_ERR_BAD_LENGTH;
    if (data == NULL)
        len = 0;

    if (s->body_len == 0) {
        while (s->prefix_have < SHIMMER_TCP_PREFIX_LEN && pos < len)
            s->prefix[s->prefix_have++] = data[pos++];
        *consumed = pos;
        if (s->prefix_have < SHIMMER_TCP_PREFIX_LEN)
            return SHIMMER_PACKET_OK;
        s->body_len = shimmer_read_be16(s->prefix);
        if (s->body_len == 0 || s->body_len > s->max_packet) {
            /* A framing error desynchronises the stream for good: there is
             * no marker to find the next packet by. */
            s->failed = TRUE;
            return SHIMMER_PACKET_ERR_BAD_LENGTH;
        }
    }

    gsize avail = len - pos;
    if (s->body_have == 0 && avail >= s->body_len) {
        /* The whole body is in this chunk: hand out a view, copy nothing. */
        *pkt = data + pos;
        *pkt_len = s->body_len;
        pos += s->body_len;
        splitter_reset(s);
    } else {
        gsize take = MIN(avail, s->body_len - s->body_have);
        if (take > 0)
            memcpy(s->buf + s->body_have, data + pos, take);
        s->body_have += take;
        pos += take;
        if (s->body_have == s->body_len) {
            *pkt = s->buf;
            *pkt_len = s->body_len;
            splitter_reset(s);
        }
    }
    *consumed = pos;
    return SHIMMER_PACKET_OK;
}
