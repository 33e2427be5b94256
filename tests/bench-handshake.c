/* SPDX-License-Identifier: MIT */
/*
 * bench-handshake: the CPU a new client's handshake costs, server side and
 * client side, with no network and nothing else on the clock: N client
 * engines connect to one dispatcher over the simulated network of the
 * server tests (server-net.h), all at once, tls-crypt, the fixture PKI
 * (ECDSA P-256). Run from the build directory:
 *
 *   SHIMMER_TEST_SRCDIR=../../tests tests/bench-handshake [N] [ROUNDS] [tls-groups]
 *
 * Prints, per round, microseconds of CPU per handshake inside the
 * dispatcher (the server's half) and outside it (the clients' half and
 * the simulated network). A figure to compare changes with, not a test:
 * the benchmark against OpenVPN is tests/lab/bench_server.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "server-net.h"

static gint64 process_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (gint64)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    guint n = argc > 1 ? (guint)atoi(argv[1]) : 200;
    guint rounds = argc > 2 ? (guint)atoi(argv[2]) : 3;
    const char *groups = argc > 3 ? argv[3] : NULL;
    if (n == 0 || rounds == 0) {
        fprintf(stderr, "usage: bench-handshake [N] [ROUNDS] [tls-groups]\n");
        return 2;
    }
    g_autofree char *extra =
        g_strdup_printf("tls-crypt tc.key\n%s%s%s", groups ? "tls-groups " : "",
                        groups ? groups : "", groups ? "\n" : "");
    g_autofree char *sextra = g_strdup_printf("%sduplicate-cn\nmax-clients %u\n", extra, n + 10);
    for (guint r = 0; r < rounds; r++) {
        SrvNet *net = srvnet_new(sextra);
        for (guint i = 0; i < n; i++)
            srvnet_add_client(net, extra);
        gint64 t0 = process_ns();
        net->srv_cpu_ns = 0;
        if (!srvnet_connect_all(net, 120 * G_USEC_PER_SEC)) {
            fprintf(stderr, "bench-handshake: not every client connected\n");
            return 1;
        }
        gint64 total = process_ns() - t0;
        printf("%u handshakes: server %.0f us, clients and network %.0f us per handshake\n", n,
               (double)net->srv_cpu_ns / n / 1000, (double)(total - net->srv_cpu_ns) / n / 1000);
        srvnet_free(net);
    }
    return 0;
}
