/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the protocol engine, on the harness of
 * tests/test-engine.c (included below: the TestServer, the Net link and the
 * injected clock).
 *
 * Input: a mode byte, then records.
 *   mode bits 0-1: control-channel wrapping (none, tls-auth, tls-crypt,
 *   tls-crypt-v2); bit 7: connected mode.
 * Fresh mode: the engine is started and has sent its reset to a server that
 *   never answers; each record is a datagram, u16 BE length then bytes, fed
 *   to shimmer_engine_recv() 1 ms apart with every timer served. A length
 *   with the top bit set is no datagram but a pause of (length & 0x7fff) x
 *   10 ms. The engine's randomness is the harness's seeded generator, so
 *   packets captured from a test session (tests/fuzz/seeds/engine/) carry the
 *   session ids this engine uses and get past the first checks.
 * Connected mode: the engine first completes a real handshake with the
 *   TestServer (fresh TLS each run, so not bit-for-bit reproducible past
 *   that point); then each record is op (u8), length (u16 BE), bytes:
 *     0 raw datagram to the engine        4 bytes from the tun (encrypt)
 *     1 bytes into the server's TLS       5 server starts a renegotiation
 *       stream (control messages)         6 bytes injected raw into the
 *     2 bytes as a server data packet       server's reliable stream (bad TLS)
 *     3 pause of length x 10 ms           7 the last server packet, XORed
 *   with the two sides exchanging packets after each op.
 *
 * The keys and certificates are the throwaway fixtures of tests/data,
 * embedded so that the target needs no files.
 */
#define SHIMMER_TEST_ENGINE_HARNESS_ONLY 1
#pragma GCC diagnostic ignored "-Wunused-function"
#include "../test-engine.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fz_ca[] = "-----BEGIN CERTIFICATE-----\n"
                            "MIIByjCCAW+gAwIBAgIUbr4Mcj5TgBwBON90CjdVpxPmsiYwCgYIKoZIzj0EAwIw\n"
                            "MTEVMBMGA1UECgwMU2hpbW1lciBUZXN0MRgwFgYDVQQDDA9TaGltbWVyIFRlc3Qg\n"
                            "Q0EwIBcNMjYxMTI1MjE0MDU0WhgPMjEyNjExMDEyMTQwNTRaMDExFTATBgNVBAoM\n"
                            "DFNoaW1tZXIgVGVzdDEYMBYGA1UEAwwPU2hpbW1lciBUZXN0IENBMFkwEwYHKoZI\n"
                            "zj0CAQYIKoZIzj0DAQcDQgAE8zZRtqV7ABzxLkFPpcWg+TynaYjsVOqgl1dfTrxE\n"
                            "L7S2Gwu00Yy0YBvSGVUP5OzyGueclAXk0rUCK7tNld/MZ6NjMGEwHQYDVR0OBBYE\n"
                            "FKSonDjyMukeDndOhufcGDK449rTMB8GA1UdIwQYMBaAFKSonDjyMukeDndOhufc\n"
                            "GDK449rTMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMAoGCCqGSM49\n"
                            "BAMCA0kAMEYCIQDNVhFhZR5YItHKX2kOR7ngDhIrg8mLr82sKPz28PRn6QIhAL1c\n"
                            "FXjK60AvNRWdMFeadKQUumN2rnAGIa4RkvA0xeta\n"
                            "-----END CERTIFICATE-----\n";

static const char fz_client_crt[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIB/jCCAaSgAwIBAgIUO4GyywV2VAJ3hdsGF1a78AAah2kwCgYIKoZIzj0EAwIw\n"
    "MTEVMBMGA1UECgwMU2hpbW1lciBUZXN0MRgwFgYDVQQDDA9TaGltbWVyIFRlc3Qg\n"
    "Q0EwIBcNMjYxMTI1MjE0MDU0WhgPMjEyNjExMDEyMTQwNTRaMDUxFTATBgNVBAoM\n"
    "DFNoaW1tZXIgVGVzdDEcMBoGA1UEAwwTY2xpZW50LnNoaW1tZXIudGVzdDBZMBMG\n"
    "ByqGSM49AgEGCCqGSM49AwEHA0IABElkdxBmE++/4D9ukIN15teV57oJFa+AdYUn\n"
    "slPgi9zXzeATSLtrf3+XNpHW7SfMcHP4wVPK+6dLhjqf+H75KFajgZMwgZAwCQYD\n"
    "VR0TBAIwADAOBgNVHQ8BAf8EBAMCA4gwEwYDVR0lBAwwCgYIKwYBBQUHAwIwHgYD\n"
    "VR0RBBcwFYITY2xpZW50LnNoaW1tZXIudGVzdDAdBgNVHQ4EFgQUFMSysg3V8Nk0\n"
    "ILjVB2BmMqMdiYowHwYDVR0jBBgwFoAUpKicOPIy6R4Od06G59wYMrjj2tMwCgYI\n"
    "KoZIzj0EAwIDSAAwRQIhAKwcSY9vP+NNW3fV2aLeNgO4ywot64toFDerCyuMBz7G\n"
    "AiAdH5AgyULTae/LE2iFRhOM9gDhXz5OapY9KsK/pXRabA==\n"
    "-----END CERTIFICATE-----\n";

static const char fz_client_key[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg+OAHtD/XMILYaGIf\n"
    "En1IdYYEc5A4cNaidxkObyycUn2hRANCAARJZHcQZhPvv+A/bpCDdebXlee6CRWv\n"
    "gHWFJ7JT4Ivc183gE0i7a39/lzaR1u0nzHBz+MFTyvunS4Y6n/h++ShW\n"
    "-----END PRIVATE KEY-----\n";

static const char fz_server_crt[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIB/TCCAaSgAwIBAgIUO4GyywV2VAJ3hdsGF1a78AAah2gwCgYIKoZIzj0EAwIw\n"
    "MTEVMBMGA1UECgwMU2hpbW1lciBUZXN0MRgwFgYDVQQDDA9TaGltbWVyIFRlc3Qg\n"
    "Q0EwIBcNMjYxMTI1MjE0MDU0WhgPMjEyNjExMDEyMTQwNTRaMDUxFTATBgNVBAoM\n"
    "DFNoaW1tZXIgVGVzdDEcMBoGA1UEAwwTc2VydmVyLnNoaW1tZXIudGVzdDBZMBMG\n"
    "ByqGSM49AgEGCCqGSM49AwEHA0IABH9n93iiZ0li1S/7o1RfvEs/Tc/S0eeK6UhU\n"
    "8Fs/ql6eeQDYQnhahi2EE/1CkLSU3rQW7c12zaWL8a3avaQVZp6jgZMwgZAwCQYD\n"
    "VR0TBAIwADAOBgNVHQ8BAf8EBAMCA4gwEwYDVR0lBAwwCgYIKwYBBQUHAwEwHgYD\n"
    "VR0RBBcwFYITc2VydmVyLnNoaW1tZXIudGVzdDAdBgNVHQ4EFgQU53NxxtbOeFD6\n"
    "1XS2bFAgxUDuSR8wHwYDVR0jBBgwFoAUpKicOPIy6R4Od06G59wYMrjj2tMwCgYI\n"
    "KoZIzj0EAwIDRwAwRAIgH52zzJ2zNEUZoh1bYLrUfINWuJiLnHfBj9AaHX9zvWEC\n"
    "IHUL5PlTRYTUxPGxyiyRxiXKv5l6twIw60fq2dbpvvAC\n"
    "-----END CERTIFICATE-----\n";

static const char fz_server_key[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg8/uIw2/uIQnHGK9b\n"
    "XR9I513D8CwhiQoV/hzDagXT/bKhRANCAAR/Z/d4omdJYtUv+6NUX7xLP03P0tHn\n"
    "iulIVPBbP6pennkA2EJ4WoYthBP9QpC0lN60Fu3Nds2li/Gt2r2kFWae\n"
    "-----END PRIVATE KEY-----\n";

static const char fz_ta_key[] = "#\n"
                                "# 2048 bit OpenVPN static key\n"
                                "#\n"
                                "-----BEGIN OpenVPN Static key V1-----\n"
                                "a64fd58ebe8f66f8d3cbdebc0d96f610\n"
                                "78996918ccdd6a7e23927796d99cee07\n"
                                "00cfa56d67fdf53c2d62f768dc959337\n"
                                "3db700e456d694e9d4507e3fa1dcb1cf\n"
                                "b260c04c82b1a19865c78d2edc424a3f\n"
                                "0955d52fd9d96540dc2983b74831acb6\n"
                                "f7a49bf92b1799cac88e4ab6df864b46\n"
                                "6477ef7e03453443e9ec41a516812a6e\n"
                                "3f8c100b928f59d234b063710d9f7125\n"
                                "e072b0f69428b7440bd192eb35d7e163\n"
                                "bcbf289c7a7c24e2c2edc92d6e5b2479\n"
                                "4bb0208fd5f772e5204be085600a4917\n"
                                "599f1a84ea2e13233384d9295861220f\n"
                                "3651d82f872be62a76c53557756ab12a\n"
                                "10e26a54fc291ab701c793cc2abeb8ab\n"
                                "155fe227709349982a75b265ab7ff232\n"
                                "-----END OpenVPN Static key V1-----\n";

static const char fz_tc_key[] = "#\n"
                                "# 2048 bit OpenVPN static key\n"
                                "#\n"
                                "-----BEGIN OpenVPN Static key V1-----\n"
                                "3b7ed77b26e6f21429530851cfe0d126\n"
                                "982da6cb3809d5ece5896ced040db8fb\n"
                                "464f30655fa0d13b8576f173572d8dc9\n"
                                "09e90bc3a8d6622740a4c115ce172aab\n"
                                "3279be20c57c02c6ec03be897cd6192a\n"
                                "d9defd201d53b59b696404995b0485c9\n"
                                "991605c1602e50d1276e5eb202ac9b3f\n"
                                "41267fb1d1351ec0c359a2abbd955530\n"
                                "0bf3c9484f880386d60e440c8800ecec\n"
                                "f3a66800c99c5875212d11be1e194d62\n"
                                "eb01370ffc46177b6cbc5d0ac0353e9a\n"
                                "f6fd3e8e710ee7d51b0f95602897487a\n"
                                "1315edd1d96a5e416cf77f9f98206d21\n"
                                "4797660a9e19fd6f4ee35875692885d4\n"
                                "08696e6866052f846ff89b4710dd4bf3\n"
                                "616d7b5b35719417f722cb278977b2a6\n"
                                "-----END OpenVPN Static key V1-----\n";

static const char fz_tc_v2_client[] =
    "-----BEGIN OpenVPN tls-crypt-v2 client key-----\n"
    "oyXHpg3OR5Wp7EnMt8YtbjWVOGFgw/+yPpuVQ/gLdqFJ9dt3nhxxOD0sX/rihuLt\n"
    "JA+d/GdsSCnf9QHgkJDH3iVuwltHtaVqDiGjcvUtlqAF0jeztOVMzpBRvVvBcO2m\n"
    "GEJTsriUTO2X8MncvYnUg06jRor8zOXtIjL7zNhCOuvLkH0Gns3l0i8JYr5dw6uz\n"
    "YpxhZaSt6gYfKwI0fsLrdKM7pZHg9Z8nTeCjLDc/JOlZaHfqi4v5mtsXuxSnqtDG\n"
    "Rfp/a+mH3/3EWOJqGA+pijy9Y6C5ONqhTYCT48hEPjVrGtCslJS2p3fnVhLT88zc\n"
    "h+C47mX75NVARCQvtYWSCu55F1dHglhaqFJQ/8fF0Z9HxfX0NlDAHfLxmQDX0poD\n"
    "9BdHuPFRMnJ6KpZYz/3sihPrAqMaGTNXB+S7ujmBe7k9SzDi1h9YyWWGW8y10de0\n"
    "H/4oD0iVMrWBkBhVHJQgMb0+bUvOM2sdYfI67h6Cr6/LTGOXjtgMwUxCPm5C88K5\n"
    "EZS9LoU4j7F/QdUgYJeWh3gsIuCnKSjcs5XgZ9d5OAveOAan/0p687GZRVQcfxpy\n"
    "mM5mXwcO0tkyuZC14IIqxppxV74NCuMjWFO85ygoXppgBEgbw5vue/No7HIKvb/w\n"
    "pO4hOjrEk5XGrBZ4Kl70KBwGgsb6c+m4N5aG4z38xqn4O0GXQqKcdHTVTb6rJhz/\n"
    "vVsR9k9O+syuuZTTxQ9OSS48Ny65XQFcwgEr\n"
    "-----END OpenVPN tls-crypt-v2 client key-----\n";

static const char fz_tc_v2_server[] =
    "-----BEGIN OpenVPN tls-crypt-v2 server key-----\n"
    "YH7+A7blsbTpO60Vj9Zbd4ME4wVM1uHk95f1mE1EkZUBI4IqNV72iNiWzNEVVWjM\n"
    "fB724tThelL5Jf2+xO3bHVRdiFgndMZG38HExB1lyPmFjlgM2C/c1ffFlsvGPXuZ\n"
    "iBBozROiDxEptIqslxXhdilg71mGCCLJc440mUgY/tA=\n"
    "-----END OpenVPN tls-crypt-v2 server key-----\n";

static ShimmerConfig *configs[4];
static TsSetup setups[4];

static GBytes *static_bytes(const char *s)
{
    return g_bytes_new_static(s, strlen(s));
}

static void init_once(void)
{
    static gboolean done;
    if (done)
        return;
    done = TRUE;
    static const ShimmerWrapMode modes[4] = {SHIMMER_WRAP_NONE, SHIMMER_WRAP_TLS_AUTH,
                                             SHIMMER_WRAP_TLS_CRYPT, SHIMMER_WRAP_TLS_CRYPT_V2};
    for (guint i = 0; i < 4; i++) {
        GString *t = g_string_new(NULL);
        /* Same directives, in the same order, as test-engine.c's client
         * configuration, so captured seeds match this engine. */
        g_string_append_printf(t,
                               "client\ndev tun\nremote 192.0.2.1 1194\n"
                               "remote-cert-tls server\n"
                               "verify-x509-name server.shimmer.test name\n"
                               "<ca>\n%s</ca>\n<cert>\n%s</cert>\n<key>\n%s</key>\n",
                               fz_ca, fz_client_crt, fz_client_key);
        if (modes[i] == SHIMMER_WRAP_TLS_AUTH)
            g_string_append_printf(t, "key-direction 1\n<tls-auth>\n%s</tls-auth>\nauth SHA256\n",
                                   fz_ta_key);
        else if (modes[i] == SHIMMER_WRAP_TLS_CRYPT)
            g_string_append_printf(t, "<tls-crypt>\n%s</tls-crypt>\n", fz_tc_key);
        else if (modes[i] == SHIMMER_WRAP_TLS_CRYPT_V2)
            g_string_append_printf(t, "<tls-crypt-v2>\n%s</tls-crypt-v2>\n", fz_tc_v2_client);
        g_string_append(t, "proto udp\nconnect-retry 1\n");
        configs[i] = shimmer_config_parse("fuzz.ovpn", NULL, t->str, t->len, NULL, NULL);
        if (shimmer_config_has_errors(configs[i])) {
            GString *d = g_string_new(NULL);
            shimmer_config_format_diagnostics(configs[i], d);
            g_error("fuzz configuration:\n%s", d->str);
        }
        g_string_free(t, TRUE);

        TsSetup *su = &setups[i];
        su->ca = static_bytes(fz_ca);
        su->cert = static_bytes(fz_server_crt);
        su->key = static_bytes(fz_server_key);
        su->wrap = modes[i];
        su->digest = SHIMMER_CTLWRAP_DIGEST_SHA256;
        const char *sk = modes[i] == SHIMMER_WRAP_TLS_AUTH ? fz_ta_key : fz_tc_key;
        if (!shimmer_keys_parse_static(sk, strlen(sk), su->static_key, NULL) ||
            !shimmer_keys_parse_tls_crypt_v2_server(fz_tc_v2_server, strlen(fz_tc_v2_server),
                                                    su->v2_key, NULL))
            g_error("fuzz keys do not parse");
    }
}

typedef struct {
    const guint8 *p;
    gsize left;
} Reader;

static gboolean read_u8(Reader *r, guint *v)
{
    if (r->left < 1)
        return FALSE;
    *v = r->p[0];
    r->p++;
    r->left--;
    return TRUE;
}

static gboolean read_u16(Reader *r, guint *v)
{
    if (r->left < 2)
        return FALSE;
    *v = (guint)r->p[0] << 8 | r->p[1];
    r->p += 2;
    r->left -= 2;
    return TRUE;
}

/* Up to LEN bytes (fewer at the end of the input), in an exact-size copy
 * so that ASan sees reads past the end. */
static guint8 *read_bytes(Reader *r, gsize len, gsize *got)
{
    *got = MIN(len, r->left);
    guint8 *b = *got ? g_memdup2(r->p, *got) : g_malloc(1);
    r->p += *got;
    r->left -= *got;
    return b;
}

static void fuzz_free_net(Net *n)
{
    n->cfg = NULL; /* shared across runs */
    net_free(n);
}

static void run_fresh(Net *n, Reader *r)
{
    n->srv->silent = TRUE;
    shimmer_engine_start(n->e, n->now);
    net_pump(n);
    guint len;
    while (read_u16(r, &len)) {
        if (len & 0x8000) {
            g_assert_true(net_run(n, n->now + (gint64)(len & 0x7fff) * 10 * MS, NULL, NULL));
            continue;
        }
        gsize got;
        guint8 *pkt = read_bytes(r, len, &got);
        net_to_engine(n, pkt, got);
        g_free(pkt);
        g_assert_true(net_run(n, n->now + MS, NULL, NULL));
    }
}

static void run_connected(Net *n, Reader *r)
{
    TestServer *s = n->srv;
    s->ping_every = 10 * US;
    shimmer_engine_start(n->e, n->now);
    if (!net_run(n, n->now + 10 * US, done_state, GINT_TO_POINTER(SHIMMER_STATE_CONNECTED)))
        g_error("fuzz-engine: the handshake did not complete");
    guint op, len;
    while (read_u8(r, &op) && read_u16(r, &len)) {
        gsize got;
        guint8 *b = read_bytes(r, MIN(len, 4096u), &got);
        gint key = s->primary >= 0 ? s->primary : 0;
        TsKey *k = &s->keys[key];
        guint8 pkt[4096 + 128];
        gsize plen;
        switch (op % 8) {
        case 0:
            net_to_engine(n, b, got);
            break;
        case 1:
            if (k->used && k->handshake_done) {
                ts_tls_send(k, b, got);
                ts_flush(s, k);
            }
            break;
        case 2:
            plen = ts_seal(s, (guint)key, b, got, pkt, sizeof(pkt));
            if (plen > 0)
                net_to_engine(n, pkt, plen);
            break;
        case 3:
            g_assert_true(net_run(n, n->now + (gint64)len * 10 * MS, NULL, NULL));
            break;
        case 4:
            if (shimmer_engine_encrypt(n->e, b, got, pkt, sizeof(pkt), n->now, &plen) ==
                SHIMMER_ENCRYPT_OK)
                net_to_server(n, pkt, plen);
            break;
        case 5:
            if (k->used && k->handshake_done && k->enc != NULL) {
                s->now = n->now;
                ts_start_soft_reset(s, key == 7 ? 1 : (guint)key + 1);
            }
            break;
        case 6:
            if (k->used) {
                g_byte_array_append(k->tls_out, b, (guint)got);
                ts_flush(s, k);
            }
            break;
        case 7:
            if (n->s2c_log->len > 0) {
                gsize l;
                const guint8 *last =
                    g_bytes_get_data(g_ptr_array_index(n->s2c_log, n->s2c_log->len - 1), &l);
                guint8 *x = g_memdup2(last, l ? l : 1);
                for (gsize i = 0; i < got && l > 0; i++)
                    x[(i * 131 + b[i]) % l] ^= b[i];
                net_to_engine(n, x, l);
                g_free(x);
            }
            break;
        }
        g_free(b);
        net_pump(n);
    }
    /* Let every timer the input left behind play out. */
    g_assert_true(net_run(n, n->now + 70 * US, NULL, NULL));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    if (size < 1)
        return 0;
    guint mode = data[0];
    Net *n = net_new(configs[mode & 3], &setups[mode & 3], 1);
    Reader r = {data + 1, size - 1};
    if (mode & 0x80)
        run_connected(n, &r);
    else
        run_fresh(n, &r);
    fuzz_free_net(n);
    return 0;
}
