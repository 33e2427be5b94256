/* SPDX-License-Identifier: MIT */
/*
 * bench-datachan [SECONDS] [--aes-256-gcm]: seals and opens 1400-byte
 * DATA_V2 packets with every cipher and both backends for SECONDS each
 * (default 1) on one core, and prints the payload throughput of seal + open
 * in Mbit/s and the ratio Nettle/GnuTLS, then the same for AES-256-GCM with
 * the default backend in place (the packet sealed and opened where it lies,
 * as the data path does). The figures behind
 * SHIMMER_DATACHAN_BACKEND_DEFAULT come from here. --aes-256-gcm prints only
 * the in-place line (scripts/bench.sh shows it as the crypto limit). Not a
 * test: the numbers depend on the machine.
 *
 * Throughput is per second of this thread's CPU time, not of wall time, so
 * that other processes competing for the CPU (a parallel build) distort the
 * comparison less; the wall time still bounds each run.
 */
#include "datachan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>

#define PAYLOAD 1400
/* Iterations between clock reads, so the clock does not show in the
 * figures. */
#define BATCH 256

static const ShimmerDatachanCipher ciphers[] = {
    SHIMMER_DATACHAN_AES_128_GCM,
    SHIMMER_DATACHAN_AES_192_GCM,
    SHIMMER_DATACHAN_AES_256_GCM,
    SHIMMER_DATACHAN_CHACHA20_POLY1305,
};

static gint64 thread_cpu_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (gint64)ts.tv_sec * G_USEC_PER_SEC + ts.tv_nsec / 1000;
}

static ShimmerDatachanKey *new_key(ShimmerDatachanCipher cipher, ShimmerDatachanBackend backend,
                                   ShimmerDatachanDirection dir)
{
    guint8 key[SHIMMER_DATACHAN_MAX_KEY_LEN];
    guint8 iv[SHIMMER_DATACHAN_IMPLICIT_IV_LEN];
    g_autoptr(GError) error = NULL;
    ShimmerDatachanKey *k;

    for (gsize i = 0; i < sizeof(key); i++)
        key[i] = (guint8)(i * 13 + 1);
    for (gsize i = 0; i < sizeof(iv); i++)
        iv[i] = (guint8)(i * 7 + 3);
    k = shimmer_datachan_key_new(cipher, backend, dir, key, shimmer_datachan_cipher_key_len(cipher),
                                 iv, &error);
    if (k == NULL) {
        fprintf(stderr, "bench-datachan: %s\n", error->message);
        exit(1);
    }
    return k;
}

static void one_packet(ShimmerDatachanKey *enc, ShimmerDatachanKey *dec, const guint8 *plain,
                       guint8 *pkt, guint8 *out)
{
    gsize pkt_len, out_len;
    ShimmerDatachanResult r;

    r = shimmer_datachan_seal_v2(enc, 0, 1, plain, PAYLOAD, pkt,
                                 PAYLOAD + SHIMMER_DATACHAN_V2_OVERHEAD, &pkt_len, NULL);
    if (r == SHIMMER_DATACHAN_OK)
        r = shimmer_datachan_open_v2(dec, pkt, pkt_len, out, PAYLOAD, &out_len, NULL);
    if (r != SHIMMER_DATACHAN_OK || out_len != PAYLOAD) {
        fprintf(stderr, "bench-datachan: %s\n", shimmer_datachan_result_to_string(r));
        exit(1);
    }
}

/* In place: the plaintext sealed where it lies behind room for the header,
 * the packet opened where it lies. */
static void one_packet_in_place(ShimmerDatachanKey *enc, ShimmerDatachanKey *dec, guint8 *pkt)
{
    gsize pkt_len, out_len;
    ShimmerDatachanResult r;

    r = shimmer_datachan_seal_v2(enc, 0, 1, pkt + SHIMMER_DATACHAN_V2_OVERHEAD, PAYLOAD, pkt,
                                 PAYLOAD + SHIMMER_DATACHAN_V2_OVERHEAD, &pkt_len, NULL);
    if (r == SHIMMER_DATACHAN_OK)
        r = shimmer_datachan_open_v2(dec, pkt, pkt_len, pkt + SHIMMER_DATACHAN_V2_OVERHEAD, PAYLOAD,
                                     &out_len, NULL);
    if (r != SHIMMER_DATACHAN_OK || out_len != PAYLOAD) {
        fprintf(stderr, "bench-datachan: %s\n", shimmer_datachan_result_to_string(r));
        exit(1);
    }
}

/* Mbit/s of payload through seal + open. */
static double measure(ShimmerDatachanCipher cipher, ShimmerDatachanBackend backend, double seconds,
                      gboolean in_place)
{
    g_autoptr(ShimmerDatachanKey) enc = new_key(cipher, backend, SHIMMER_DATACHAN_ENCRYPT);
    g_autoptr(ShimmerDatachanKey) dec = new_key(cipher, backend, SHIMMER_DATACHAN_DECRYPT);
    static guint8 plain[PAYLOAD], pkt[PAYLOAD + SHIMMER_DATACHAN_V2_OVERHEAD], out[PAYLOAD];
    gint64 start, now, deadline, cpu_start;
    guint64 packets = 0;

    for (gsize i = 0; i < sizeof(plain); i++)
        plain[i] = (guint8)i;
    memcpy(pkt + SHIMMER_DATACHAN_V2_OVERHEAD, plain, PAYLOAD);
    /* Warm caches and let the CPU leave its idle clock. */
    for (int i = 0; i < 2000; i++) {
        if (in_place)
            one_packet_in_place(enc, dec, pkt);
        else
            one_packet(enc, dec, plain, pkt, out);
    }

    cpu_start = thread_cpu_us();
    start = g_get_monotonic_time();
    deadline = start + (gint64)(seconds * G_USEC_PER_SEC);
    do {
        for (int i = 0; i < BATCH; i++) {
            if (in_place)
                one_packet_in_place(enc, dec, pkt);
            else
                one_packet(enc, dec, plain, pkt, out);
        }
        packets += BATCH;
        now = g_get_monotonic_time();
    } while (now < deadline);

    if (memcmp(in_place ? pkt + SHIMMER_DATACHAN_V2_OVERHEAD : out, plain, PAYLOAD) != 0) {
        fprintf(stderr, "bench-datachan: round trip mismatch\n");
        exit(1);
    }
    /* bits per microsecond = Mbit/s */
    return (double)packets * PAYLOAD * 8.0 / (double)(thread_cpu_us() - cpu_start);
}

int main(int argc, char **argv)
{
    double seconds = 1.0;
    gboolean only = FALSE;

    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--aes-256-gcm") == 0) {
            only = TRUE;
            continue;
        }
        seconds = g_ascii_strtod(argv[a], NULL);
        if (!(seconds > 0.0 && seconds <= 60.0)) {
            fprintf(stderr, "usage: %s [SECONDS] [--aes-256-gcm]  (0 < SECONDS <= 60)\n", argv[0]);
            return 2;
        }
    }
    if (only) {
        printf(
            "AES-256-GCM in place (%s): %.0f Mbit/s\n",
            shimmer_datachan_backend_name(SHIMMER_DATACHAN_BACKEND_DEFAULT),
            measure(SHIMMER_DATACHAN_AES_256_GCM, SHIMMER_DATACHAN_BACKEND_DEFAULT, seconds, TRUE));
        return 0;
    }

    printf(
        "DATA_V2, %d-byte payload, seal + open, %.1f s per run, Mbit/s of payload per CPU second\n",
        PAYLOAD, seconds);
    printf("%-20s %10s %10s %14s\n", "cipher", "nettle", "gnutls", "nettle/gnutls");
    for (gsize c = 0; c < G_N_ELEMENTS(ciphers); c++) {
        double nettle = measure(ciphers[c], SHIMMER_DATACHAN_BACKEND_NETTLE, seconds, FALSE);
        double gnutls = measure(ciphers[c], SHIMMER_DATACHAN_BACKEND_GNUTLS, seconds, FALSE);

        printf("%-20s %10.0f %10.0f %14.2f\n", shimmer_datachan_cipher_name(ciphers[c]), nettle,
               gnutls, nettle / gnutls);
        fflush(stdout);
    }
    printf("default backend: %s\n",
           shimmer_datachan_backend_name(SHIMMER_DATACHAN_BACKEND_DEFAULT));
    printf("AES-256-GCM in place (%s): %.0f Mbit/s\n",
           shimmer_datachan_backend_name(SHIMMER_DATACHAN_BACKEND_DEFAULT),
           measure(SHIMMER_DATACHAN_AES_256_GCM, SHIMMER_DATACHAN_BACKEND_DEFAULT, seconds, TRUE));
    return 0;
}
