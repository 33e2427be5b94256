/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * The reliable layer of the OpenVPN control channel: it carries the TLS byte
 * stream (and the reset messages) of one key state over a transport that
 * loses, duplicates and reorders packets.
 *
 * One ShimmerReliable per key state. It knows message ids (msg_pid), payload
 * bytes and ack lists; it knows nothing of opcodes, session ids or the wire
 * format, and it does no I/O and reads no clock: the caller passes the time
 * (NOW, microseconds on a monotonic clock, never negative, e.g.
 * g_get_monotonic_time()) to every function that depends on it. The engine
 * drives it like this:
 *
 *   send side:    shimmer_reliable_writable() / shimmer_reliable_queue()
 *                 (TLS output), shimmer_reliable_queue_message() (a reset);
 *                 then, while shimmer_reliable_next_to_send() returns TRUE,
 *                 put that message on the wire with up to
 *                 SHIMMER_RELIABLE_MAX_ACKS_CONTROL acks taken by
 *                 shimmer_reliable_take_acks(); if acks are still pending, send
 *                 them in ACK_V1 packets (SHIMMER_RELIABLE_MAX_ACKS_ACK_V1 each).
 *   receive side: for each incoming packet, shimmer_reliable_ack_received() for
 *                 each pid in its ack list and shimmer_reliable_incoming() for
 *                 its message; shimmer_reliable_read() hands the in-order
 *                 bytes to TLS.
 *   timer:        wake up at shimmer_reliable_next_deadline() and do the send
 *                 side again.
 *
 * Protocol facts this follows (OpenVPN 2.6): msg_pid starts at 0 per key state
 * and a retransmission reuses its pid; the receiver acks every pid it accepts
 * or already has; 6 messages may be unacked at once, the receiver buffers 12;
 * a message's retransmit timeout starts at 2 s and doubles at each
 * retransmission; a message is resent early once 3 messages sent after it were
 * acked.
 *
 * Memory is bounded: at most 6 send buffers of max_payload bytes, 12 receive
 * buffers of at most max_recv_payload bytes and a fixed-size list of pending
 * acks. A buffer exists only while its message does (queued until acked,
 * received until read), so an idle layer holds none: a server keeps one
 * layer per key state of every client.
 *
 * Pids do not wrap: after pid 0xffffffff a key state can queue nothing more
 * (renegotiation replaces it long before that).
 */

/* Unacked messages a sender may have at once. */
#define SHIMMER_RELIABLE_SEND_WINDOW 6
/* Messages a receiver buffers: pids next..next+11, where next is the oldest
 * pid not yet fully read by the upper layer. */
#define SHIMMER_RELIABLE_RECV_WINDOW 12
/* Acks that ride on one CONTROL packet, and on one ACK_V1 packet. */
#define SHIMMER_RELIABLE_MAX_ACKS_CONTROL 4
#define SHIMMER_RELIABLE_MAX_ACKS_ACK_V1  8
/* Pids waiting to be acked; beyond this an ack is dropped (and counted): the
 * peer retransmits and the pid is acked again then. */
#define SHIMMER_RELIABLE_MAX_PENDING_ACKS (2 * SHIMMER_RELIABLE_RECV_WINDOW)
/* A message is resent early once this many messages sent after it were acked. */
#define SHIMMER_RELIABLE_FAST_RETRANSMIT_ACKS 3

/* Defaults for ShimmerReliableConfig fields left 0. */
#define SHIMMER_RELIABLE_DEFAULT_MAX_PAYLOAD      1250
#define SHIMMER_RELIABLE_DEFAULT_MAX_RECV_PAYLOAD 2048
#define SHIMMER_RELIABLE_DEFAULT_INITIAL_TIMEOUT  (2 * G_USEC_PER_SEC)
#define SHIMMER_RELIABLE_DEFAULT_MAX_TIMEOUT      (60 * G_USEC_PER_SEC)
/* Upper bound for max_payload and max_recv_payload (a control packet never
 * comes close: it must fit a datagram). */
#define SHIMMER_RELIABLE_PAYLOAD_LIMIT 65535

/* shimmer_reliable_next_deadline(): nothing to do until something happens. */
#define SHIMMER_RELIABLE_NO_DEADLINE G_MAXINT64
/* shimmer_reliable_next_deadline(): there is work to do right now (a new
 * message to send, or acks to send). Any value <= NOW means the same. */
#define SHIMMER_RELIABLE_DUE_NOW 0

typedef struct {
    /* Largest payload of a message this side sends (TLS data is split into
     * messages of at most this size); 0: SHIMMER_RELIABLE_DEFAULT_MAX_PAYLOAD. */
    gsize max_payload;
    /* Largest payload accepted from the peer; bigger messages are dropped
     * without ack. 0: SHIMMER_RELIABLE_DEFAULT_MAX_RECV_PAYLOAD. */
    gsize max_recv_payload;
    /* Retransmit timeout of a first transmission (tls-timeout) and the cap of
     * its doubling, in microseconds. 0: the defaults above (max_timeout:
     * the default or initial_timeout, whichever is larger). */
    gint64 initial_timeout;
    gint64 max_timeout;
} ShimmerReliableConfig;

typedef struct ShimmerReliable ShimmerReliable;

/* Creates the reliable state of a new key state (next pid to send 0, next pid
 * expected 0). CONFIG may be NULL (all defaults). Returns NULL (with a
 * critical warning) if a field is out of range: a payload size above
 * SHIMMER_RELIABLE_PAYLOAD_LIMIT, a negative timeout, or max_timeout below
 * initial_timeout. */
ShimmerReliable *shimmer_reliable_new(const ShimmerReliableConfig *config);

/* NULL is fine. */
void shimmer_reliable_free(ShimmerReliable *r);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ShimmerReliable, shimmer_reliable_free)

/* ---- Send side ---- */

/* How many bytes shimmer_reliable_queue() accepts right now: the free space of
 * the newest message if it was queued by shimmer_reliable_queue() and has not
 * been sent yet, plus max_payload for every new message the send window
 * allows. 0 means backpressure: wait for acks. */
gsize shimmer_reliable_writable(const ShimmerReliable *r);

/* Copies up to LEN bytes of the stream DATA into messages of KIND (opaque
 * here and returned by shimmer_reliable_next_to_send(); the engine stores the
 * opcode). Appends to the newest message first if it came from this function,
 * has the same KIND and was not sent yet; otherwise starts new messages of at
 * most max_payload bytes with the next pids. Returns the number of bytes
 * accepted, from 0 (send window full, or pids exhausted) to LEN; the caller
 * keeps the rest and offers it again after acks arrived. LEN 0 queues
 * nothing and returns 0. */
gsize shimmer_reliable_queue(ShimmerReliable *r, guint8 kind, const void *data, gsize len);

/* Queues exactly one message of KIND with LEN (may be 0) bytes of DATA, never
 * merged with other data: for the HARD_RESET / SOFT_RESET messages, which
 * carry pid 0 and no payload, and for a CONTROL_WKC_V1 message. Sets *PID (may
 * be NULL) to its pid. Errors (domain SHIMMER_RELIABLE_ERROR):
 * SHIMMER_RELIABLE_ERROR_TOO_LARGE if LEN > max_payload,
 * SHIMMER_RELIABLE_ERROR_WINDOW_FULL if the send window has no room,
 * SHIMMER_RELIABLE_ERROR_PID_EXHAUSTED after pid 0xffffffff. */
gboolean shimmer_reliable_queue_message(ShimmerReliable *r, guint8 kind, const void *data,
                                        gsize len, guint32 *pid, GError **error);

typedef struct {
    guint32 pid;
    guint8 kind;
    /* Points into R: valid until the next call that changes R, except
     * shimmer_reliable_take_acks(), which leaves it in place (so a packet
     * can carry the message and the acks taken for it). */
    const guint8 *payload;
    gsize len;
    /* FALSE for the first transmission. */
    gboolean retransmit;
} ShimmerReliableMessage;

/* The next message due at NOW, lowest pid first: a message never sent, one
 * whose retransmit timer expired, or one that is due for fast retransmit. Fills
 * *OUT and returns TRUE, counting the message as sent at NOW: the first
 * transmission arms its timer at NOW + initial_timeout; a retransmission on
 * timeout doubles the timeout (up to max_timeout) and arms it at NOW + the
 * doubled value; a fast retransmission arms it at NOW + the current timeout
 * without doubling (the acks showed the peer is alive, the message was just
 * lost). Returns FALSE if nothing is due; call again until it does, then wait
 * for shimmer_reliable_next_deadline(). */
gboolean shimmer_reliable_next_to_send(ShimmerReliable *r, gint64 now, ShimmerReliableMessage *out);

/* The peer acked PID. Returns TRUE if that released a message in flight, FALSE
 * if PID is unknown (never sent, already acked, or from a stale packet):
 * such an ack is ignored and counted. Each ack of a message sent after another
 * unacked message counts towards the latter's fast retransmit. */
gboolean shimmer_reliable_ack_received(ShimmerReliable *r, guint32 pid);

/* Messages queued and not yet acked (sent or not). 0 means everything this
 * side queued was delivered. */
guint shimmer_reliable_unacked(const ShimmerReliable *r);

/* ---- Receive side ---- */

typedef enum {
    /* A pid not seen before: buffered, its ack queued. */
    SHIMMER_RELIABLE_RX_NEW,
    /* A pid already received (our ack may have been lost): ack queued again,
     * payload ignored. */
    SHIMMER_RELIABLE_RX_DUPLICATE,
    /* Beyond the receive window, or a payload larger than max_recv_payload:
     * dropped without ack, so the peer sends it again later. */
    SHIMMER_RELIABLE_RX_DROPPED,
} ShimmerReliableRx;

/* A message PID with LEN bytes of PAYLOAD arrived from the peer. Never fails;
 * the result says what happened. The payload is copied. */
ShimmerReliableRx shimmer_reliable_incoming(ShimmerReliable *r, guint32 pid, const void *payload,
                                            gsize len);

/* Bytes shimmer_reliable_read() can hand out now (in pid order, no gaps). */
gsize shimmer_reliable_readable(const ShimmerReliable *r);

/* Copies up to LEN in-order payload bytes to BUF, across message boundaries,
 * and releases the receive buffers that were read completely (which moves the
 * receive window). Returns the number of bytes copied; 0 if none is ready. */
gsize shimmer_reliable_read(ShimmerReliable *r, void *buf, gsize len);

/* Whether any pid waits to be acked. */
gboolean shimmer_reliable_has_pending_acks(const ShimmerReliable *r);

/* Moves up to MAX pending pids (oldest first) to OUT and returns how many.
 * Each pid is listed once even if it arrived several times since the last
 * call. The caller must send them: they are forgotten here. */
gsize shimmer_reliable_take_acks(ShimmerReliable *r, guint32 *out, gsize max);

/* How many pids, most recently acked first, shimmer_reliable_add_recent_acks()
 * remembers. */
#define SHIMMER_RELIABLE_RECENT_ACKS 4

/* Fills OUT[N..MAX) with pids acked lately (taken by
 * shimmer_reliable_take_acks()) that OUT[0..N) does not list, most recent
 * first; returns the new count. Acking again in room a packet has anyway
 * costs 4 bytes a pid and gets an ack through whose packet was lost: a 2.6
 * server that answered statelessly learns the client is real only from a
 * packet that acks its reset (it reads its cookie back from the ack's
 * remote session id), so every early packet must carry that ack, the
 * retransmitted ones too. */
gsize shimmer_reliable_add_recent_acks(const ShimmerReliable *r, guint32 *out, gsize n, gsize max);

/* ---- Timer ---- */

/* The earliest time the caller must call shimmer_reliable_next_to_send() (and
 * send pending acks): SHIMMER_RELIABLE_DUE_NOW if a message was never sent or
 * acks are pending, the earliest retransmit time otherwise,
 * SHIMMER_RELIABLE_NO_DEADLINE if nothing is in flight. */
gint64 shimmer_reliable_next_deadline(const ShimmerReliable *r);

/* ---- Statistics ---- */

typedef struct {
    guint64 messages_queued;       /* messages given a pid */
    guint64 messages_sent;         /* first transmissions */
    guint64 retransmits;           /* all retransmissions (timeout and fast) */
    guint64 fast_retransmits;      /* retransmissions triggered by later acks */
    guint64 acks_received;         /* acks that released a message */
    guint64 acks_ignored;          /* acks of unknown or already acked pids */
    guint64 messages_received;     /* new pids buffered */
    guint64 duplicates;            /* pids received again */
    guint64 dropped_out_of_window; /* pids beyond the receive window */
    guint64 dropped_oversized;     /* payloads above max_recv_payload */
    guint64 acks_dropped;          /* pending ack list was full */
} ShimmerReliableStats;

void shimmer_reliable_get_stats(const ShimmerReliable *r, ShimmerReliableStats *out);

typedef enum {
    SHIMMER_RELIABLE_ERROR_TOO_LARGE,
    SHIMMER_RELIABLE_ERROR_WINDOW_FULL,
    SHIMMER_RELIABLE_ERROR_PID_EXHAUSTED,
} ShimmerReliableError;

#define SHIMMER_RELIABLE_ERROR (shimmer_reliable_error_quark())
GQuark shimmer_reliable_error_quark(void);

G_END_DECLS
