/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the server's dispatcher: arbitrary datagrams from
 * arbitrary addresses, tun packets, timers, closing connections and late
 * answers, on the simulated network of tests/server-net.c.
 *
 * Input: a mode byte, then records.
 *   mode bits 0-1: control-channel wrapping (none, tls-auth, tls-crypt,
 *   tls-crypt-v2); bit 2: TCP; bit 3: a real client engine connects first
 *   (so records can hit a live session); bit 4: credentials are checked
 *   (AUTH_REQUEST events, held for op 6).
 * Each record is op (u8), address (u8), length (u16 BE), bytes:
 *   0 datagram from address (address & 7; 7 is the real client's)
 *   1 the bytes as a packet from the tun
 *   2 pause of length x 10 ms, timers served
 *   3 the real client sends length bytes of data
 *   4 the transport of address closed (TCP)
 *   5 kick the client whose id is the first byte
 *   6 answer the held request (accept, deny or pending by address % 3)
 *   7 the server stops
 * After each record the network settles (packets move, events are taken).
 * The server's randomness is seeded, so cookies are reproducible and the
 * fuzzer can find valid third packets.
 */
#include <stdlib.h>
#include <string.h>

#include "../server-net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static const char *const wraps[] = {
    "",
    "tls-auth ta.key 0\n",
    "tls-crypt tc.key\n",
    "tls-crypt-v2 tc-v2-server.key\n",
};
static const char *const client_wraps[] = {
    "",
    "tls-auth ta.key 1\n",
    "tls-crypt tc.key\n",
    "tls-crypt-v2 tc-v2-client.key\n",
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* server-net.c reads the fixtures from $SHIMMER_TEST_SRCDIR/data. */
    setenv("SHIMMER_TEST_SRCDIR", FUZZ_TESTS_DIR, 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    guint8 mode = data[0];
    data++;
    size--;
    guint wrap = mode & 3;
    gboolean tcp = (mode & 4) != 0;
    g_autofree char *sx = g_strdup_printf("%s%sreneg-sec 20\nduplicate-cn\nclient-to-client\n",
                                          wraps[wrap], tcp ? "proto tcp-server\n" : "");
    SrvNet *n = srvnet_new(sx);
    if (mode & 16) {
        shimmer_dispatch_set_check_credentials(n->d, TRUE);
        n->auth = SRVNET_AUTH_HOLD;
    }
    SrvCli *c = NULL;
    if (mode & 8) {
        g_autofree char *cx = g_strdup_printf("%s%s<auth-user-pass>\nu\np\n</auth-user-pass>\n",
                                              client_wraps[wrap], tcp ? "proto tcp-client\n" : "");
        c = srvnet_add_client(n, cx);
        srvnet_connect_all(n, 5 * G_USEC_PER_SEC);
    }
    guint8 out[SHIMMER_ENGINE_MAX_PACKET + 64];
    for (guint records = 0; size >= 4 && records < 256; records++) {
        guint op = data[0] & 7;
        guint who = data[1];
        gsize len = (gsize)data[2] << 8 | data[3];
        data += 4;
        size -= 4;
        len = MIN(len, size);
        const guint8 *bytes = data;
        ShimmerLinkAddr from, to;
        if ((who & 7) == 7 && c != NULL) {
            from = c->addr;
        } else {
            g_autofree char *ip = (who & 8) ? g_strdup_printf("fd00:77::%u", 1 + (who & 7))
                                            : g_strdup_printf("198.51.100.%u", 1 + (who & 7));
            srvnet_addr(&from, ip, (guint16)(1000 + (who >> 4)));
        }
        gsize out_len = 0;
        switch (op) {
        case 0:
            if (len > 0)
                srvnet_inject(n, &from, bytes, len, out, &out_len, &to);
            data += len;
            size -= len;
            break;
        case 1:
            shimmer_dispatch_encrypt(n->d, bytes, len, n->now, out, sizeof(out), &out_len, &to);
            data += len;
            size -= len;
            break;
        case 2:
            srvnet_run(n, n->now + (gint64)len * 10000, NULL, NULL);
            break;
        case 3:
            if (c != NULL && srvnet_client_ip(c) != NULL)
                srvnet_client_send(c, NULL, "10.8.0.1", 20 + len % 1400, (guint8)who);
            break;
        case 4:
            shimmer_dispatch_link_closed(n->d, &from, n->now);
            break;
        case 5:
            shimmer_dispatch_kick(n->d, who, (who & 1) ? "HALT" : NULL, n->now);
            break;
        case 6:
            for (guint i = 0; i < n->srv_events->len; i++) {
                SrvEvent *ev = g_ptr_array_index(n->srv_events, i);
                if (ev->type == SHIMMER_DISPATCH_EVENT_AUTH_REQUEST)
                    shimmer_dispatch_auth_reply(n->d, ev->id, (ShimmerAuthDecision)(who % 3),
                                                "fuzz", n->now);
            }
            break;
        case 7:
            shimmer_dispatch_stop(n->d, n->now);
            break;
        }
        srvnet_pump(n);
    }
    srvnet_free(n);
    return 0;
}
