/* SPDX-License-Identifier: MIT */
#include "datachan.h"
#include "replay.h"

#include <string.h>

#include <glib.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <nettle/chacha-poly1305.h>
#include <nettle/gcm.h>
#include <nettle/nettle-meta.h>

#define BUF 4096

static const ShimmerDatachanCipher all_ciphers[] = {
    SHIMMER_DATACHAN_AES_128_GCM,
    SHIMMER_DATACHAN_AES_192_GCM,
    SHIMMER_DATACHAN_AES_256_GCM,
    SHIMMER_DATACHAN_CHACHA20_POLY1305,
};

static const ShimmerDatachanBackend all_backends[] = {
    SHIMMER_DATACHAN_BACKEND_NETTLE,
    SHIMMER_DATACHAN_BACKEND_GNUTLS,
};

/* Plaintext sizes around the AES block (16) and ChaCha block (64) edges, a
 * typical tun MTU payload and a jumbo one. */
static const gsize sizes[] = {0, 1, 15, 16, 17, 63, 64, 65, 100, 1400, 1500, 2000};

static gsize hex_decode(const char *hex, guint8 *out, gsize out_size)
{
    gsize n = 0;

    for (const char *p = hex; *p != '\0';) {
        int hi, lo;

        if (g_ascii_isspace(*p)) {
            p++;
            continue;
        }
        hi = g_ascii_xdigit_value(p[0]);
        lo = g_ascii_xdigit_value(p[1]);
        g_assert_cmpint(hi, >=, 0);
        g_assert_cmpint(lo, >=, 0);
        g_assert_cmpuint(n, <, out_size);
        out[n++] = (guint8)(hi << 4 | lo);
        p += 2;
    }
    return n;
}

static void fill_pattern(guint8 *p, gsize len, guint8 seed)
{
    for (gsize i = 0; i < len; i++)
        p[i] = (guint8)(seed + i * 31 + (i >> 8));
}

static void test_key_bytes(ShimmerDatachanCipher cipher, guint8 seed, guint8 key[32],
                           guint8 iv[SHIMMER_DATACHAN_IMPLICIT_IV_LEN])
{
    fill_pattern(key, 32, seed);
    fill_pattern(iv, SHIMMER_DATACHAN_IMPLICIT_IV_LEN, (guint8)(seed ^ 0x5a));
}

static ShimmerDatachanKey *make_key(ShimmerDatachanCipher cipher, ShimmerDatachanBackend backend,
                                    ShimmerDatachanDirection dir, guint8 seed)
{
    g_autoptr(GError) error = NULL;
    guint8 key[32], iv[SHIMMER_DATACHAN_IMPLICIT_IV_LEN];
    ShimmerDatachanKey *k;

    test_key_bytes(cipher, seed, key, iv);
    k = shimmer_datachan_key_new(cipher, backend, dir, key, shimmer_datachan_cipher_key_len(cipher),
                                 iv, &error);
    g_assert_no_error(error);
    g_assert_nonnull(k);
    return k;
}

static ShimmerDatachanResult do_seal(ShimmerDatachanKey *k, gboolean v2, guint8 key_id,
                                     guint32 peer_id, const guint8 *plain, gsize len, guint8 *out,
                                     gsize out_size, gsize *out_len, guint32 *pid)
{
    if (v2)
        return shimmer_datachan_seal_v2(k, key_id, peer_id, plain, len, out, out_size, out_len,
                                        pid);
    return shimmer_datachan_seal_v1(k, key_id, plain, len, out, out_size, out_len, pid);
}

static ShimmerDatachanResult do_open(ShimmerDatachanKey *k, gboolean v2, const guint8 *pkt,
                                     gsize len, guint8 *out, gsize out_size, gsize *out_len,
                                     guint32 *pid)
{
    if (v2)
        return shimmer_datachan_open_v2(k, pkt, len, out, out_size, out_len, pid);
    return shimmer_datachan_open_v1(k, pkt, len, out, out_size, out_len, pid);
}

static gsize overhead(gboolean v2)
{
    return v2 ? SHIMMER_DATACHAN_V2_OVERHEAD : SHIMMER_DATACHAN_V1_OVERHEAD;
}

/* ---- Names and construction ------------------------------------------- */

static void test_names(void)
{
    ShimmerDatachanCipher c;

    g_assert_cmpuint(shimmer_datachan_cipher_key_len(SHIMMER_DATACHAN_AES_128_GCM), ==, 16);
    g_assert_cmpuint(shimmer_datachan_cipher_key_len(SHIMMER_DATACHAN_AES_256_GCM), ==, 32);
    g_assert_cmpuint(shimmer_datachan_cipher_key_len(SHIMMER_DATACHAN_CHACHA20_POLY1305), ==, 32);
    for (gsize i = 0; i < G_N_ELEMENTS(all_ciphers); i++) {
        g_assert_true(
            shimmer_datachan_cipher_from_name(shimmer_datachan_cipher_name(all_ciphers[i]), &c));
        g_assert_cmpint(c, ==, all_ciphers[i]);
    }
    g_assert_true(shimmer_datachan_cipher_from_name("aes-256-gcm", &c));
    g_assert_cmpint(c, ==, SHIMMER_DATACHAN_AES_256_GCM);
    g_assert_true(shimmer_datachan_cipher_from_name("ChaCha20-Poly1305", &c));
    g_assert_cmpint(c, ==, SHIMMER_DATACHAN_CHACHA20_POLY1305);
    g_assert_false(shimmer_datachan_cipher_from_name("BF-CBC", &c));
    g_assert_false(shimmer_datachan_cipher_from_name("AES-256-CBC", &c));
    g_assert_true(shimmer_datachan_cipher_from_name("AES-192-GCM", &c));
    g_assert_cmpint(c, ==, SHIMMER_DATACHAN_AES_192_GCM);
    g_assert_false(shimmer_datachan_cipher_from_name("AES-192-CBC", &c));
    g_assert_false(shimmer_datachan_cipher_from_name("", &c));
    g_assert_false(shimmer_datachan_cipher_from_name(NULL, &c));
    g_assert_cmpstr(shimmer_datachan_backend_name(SHIMMER_DATACHAN_BACKEND_NETTLE), ==, "nettle");
    g_assert_cmpstr(shimmer_datachan_backend_name(SHIMMER_DATACHAN_BACKEND_GNUTLS), ==, "gnutls");
    for (int r = SHIMMER_DATACHAN_OK; r <= SHIMMER_DATACHAN_ERR_CRYPTO; r++)
        g_assert_cmpstr(shimmer_datachan_result_to_string(r), !=, "unknown");
    g_assert_cmpuint(SHIMMER_DATACHAN_V1_OVERHEAD, ==, 21);
    g_assert_cmpuint(SHIMMER_DATACHAN_V2_OVERHEAD, ==, 24);
}

static void test_key_new_errors(void)
{
    guint8 key[64] = {0}, iv[SHIMMER_DATACHAN_IMPLICIT_IV_LEN] = {0};

    for (gsize c = 0; c < G_N_ELEMENTS(all_ciphers); c++) {
        for (gsize b = 0; b < G_N_ELEMENTS(all_backends); b++) {
            gsize good = shimmer_datachan_cipher_key_len(all_ciphers[c]);
            gsize bad[] = {0, good - 1, good + 1, 64};

            for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_autoptr(GError) error = NULL;
                ShimmerDatachanKey *k =
                    shimmer_datachan_key_new(all_ciphers[c], all_backends[b],
                                             SHIMMER_DATACHAN_ENCRYPT, key, bad[i], iv, &error);

                g_assert_null(k);
                g_assert_error(error, SHIMMER_DATACHAN_ERROR,
                               SHIMMER_DATACHAN_ERROR_INVALID_ARGUMENT);
            }
        }
    }
    {
        g_autoptr(GError) error = NULL;
        g_assert_null(shimmer_datachan_key_new((ShimmerDatachanCipher)42,
                                               SHIMMER_DATACHAN_BACKEND_NETTLE,
                                               SHIMMER_DATACHAN_ENCRYPT, key, 32, iv, &error));
        g_assert_error(error, SHIMMER_DATACHAN_ERROR, SHIMMER_DATACHAN_ERROR_INVALID_ARGUMENT);
    }
    {
        g_autoptr(GError) error = NULL;
        g_assert_null(shimmer_datachan_key_new(SHIMMER_DATACHAN_AES_256_GCM,
                                               (ShimmerDatachanBackend)42, SHIMMER_DATACHAN_ENCRYPT,
                                               key, 32, iv, &error));
        g_assert_error(error, SHIMMER_DATACHAN_ERROR, SHIMMER_DATACHAN_ERROR_INVALID_ARGUMENT);
    }
    {
        g_autoptr(GError) error = NULL;
        g_assert_null(shimmer_datachan_key_new(SHIMMER_DATACHAN_AES_256_GCM,
                                               SHIMMER_DATACHAN_BACKEND_NETTLE,
                                               SHIMMER_DATACHAN_ENCRYPT, key, 32, NULL, &error));
        g_assert_error(error, SHIMMER_DATACHAN_ERROR, SHIMMER_DATACHAN_ERROR_INVALID_ARGUMENT);
    }
    /* Freeing NULL is fine. */
    shimmer_datachan_key_free(NULL);
}

static void test_key_accessors(void)
{
    for (gsize b = 0; b < G_N_ELEMENTS(all_backends); b++) {
        g_autoptr(ShimmerDatachanKey) enc = make_key(SHIMMER_DATACHAN_CHACHA20_POLY1305,
                                                     all_backends[b], SHIMMER_DATACHAN_ENCRYPT, 1);
        g_autoptr(ShimmerDatachanKey) dec = make_key(SHIMMER_DATACHAN_CHACHA20_POLY1305,
                                                     all_backends[b], SHIMMER_DATACHAN_DECRYPT, 1);

        g_assert_cmpint(shimmer_datachan_key_get_cipher(enc), ==,
                        SHIMMER_DATACHAN_CHACHA20_POLY1305);
        g_assert_cmpint(shimmer_datachan_key_get_backend(enc), ==, all_backends[b]);
        g_assert_cmpint(shimmer_datachan_key_get_direction(enc), ==, SHIMMER_DATACHAN_ENCRYPT);
        g_assert_cmpint(shimmer_datachan_key_get_direction(dec), ==, SHIMMER_DATACHAN_DECRYPT);
        g_assert_cmpuint(shimmer_datachan_key_next_packet_id(enc), ==, 1);
        g_assert_cmpuint(shimmer_datachan_key_next_packet_id(dec), ==, 0);
        g_assert_false(shimmer_datachan_key_needs_rekey(enc));
        g_assert_false(shimmer_datachan_key_needs_rekey(dec));
    }
}

/* ---- The raw primitive against published vectors ---------------------- */

typedef struct {
    const char *name;
    ShimmerDatachanCipher cipher;
    const char *key, *nonce, *aad, *plain, *cipher_text, *tag;
} Vector;

static const Vector vectors[] = {
    /* The GCM specification (McGrew and Viega), test case 4: AES-128 with
     * AAD and a plaintext that is not a whole number of blocks. */
    {"gcm-spec-4", SHIMMER_DATACHAN_AES_128_GCM, "feffe9928665731c6d6a8f9467308308",
     "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
     "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
     "5bc94fbc3221a5db94fae95ae7121a47"},
    /* Test case 16: the same with AES-256. */
    {"gcm-spec-16", SHIMMER_DATACHAN_AES_256_GCM,
     "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
    /* Test case 10: the same with AES-192. */
    {"gcm-spec-10", SHIMMER_DATACHAN_AES_192_GCM,
     "feffe9928665731c6d6a8f9467308308feffe9928665731c", "cafebabefacedbaddecaf888",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "3980ca0b3c00e841eb06fac4872a2757859e1ceaa6efd984628593b40ca1e19c"
     "7d773d00c144c525ac619d18c84a3f4718e2448b2fe324d9ccda2710",
     "2519498e80f1478f37ba55bd6d27618c"},
    /* Test case 8: AES-192, zero key, one zero block, no AAD. */
    {"gcm-spec-8", SHIMMER_DATACHAN_AES_192_GCM, "000000000000000000000000000000000000000000000000",
     "000000000000000000000000", "", "00000000000000000000000000000000",
     "98e7247c07f0fe411c267e4384b0f600", "2ff58d80033927ab8ef4d4587514f0fb"},
    /* Test case 2: AES-128, zero key, one zero block, no AAD. */
    {"gcm-spec-2", SHIMMER_DATACHAN_AES_128_GCM, "00000000000000000000000000000000",
     "000000000000000000000000", "", "00000000000000000000000000000000",
     "0388dace60b6a392f328c2b971b2fe78", "ab6e47d42cec13bdf53a67b21257bddf"},
    /* RFC 8439 section 2.8.2. */
    {"rfc8439-2.8.2", SHIMMER_DATACHAN_CHACHA20_POLY1305,
     "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f", "070000004041424344454647",
     "50515253c0c1c2c3c4c5c6c7",
     /* "Ladies and Gentlemen of the class of '99: If I could offer you only
      * one tip for the future, sunscreen would be it." */
     "4c616469657320616e642047656e746c656d656e206f662074686520636c6173"
     "73206f66202739393a204966204920636f756c64206f6666657220796f75206f"
     "6e6c79206f6e652074697020666f7220746865206675747572652c2073756e73"
     "637265656e20776f756c642062652069742e",
     "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
     "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
     "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
     "3ff4def08e4b7a9de576d26586cec64b6116",
     "1ae10b594f09e26a7e902ecbd0600691"},
};

static void test_raw_vectors(void)
{
    for (gsize v = 0; v < G_N_ELEMENTS(vectors); v++) {
        const Vector *vec = &vectors[v];

        for (gsize b = 0; b < G_N_ELEMENTS(all_backends); b++) {
            guint8 key[32], nonce[12], aad[64], plain[256], ct[256], tag[16];
            guint8 out[256], got_tag[16];
            gsize key_len, aad_len, len;
            g_autoptr(GError) error = NULL;
            g_autoptr(ShimmerDatachanKey) enc = NULL;
            g_autoptr(ShimmerDatachanKey) dec = NULL;

            g_test_message("%s, %s", vec->name, shimmer_datachan_backend_name(all_backends[b]));
            key_len = hex_decode(vec->key, key, sizeof(key));
            g_assert_cmpuint(hex_decode(vec->nonce, nonce, sizeof(nonce)), ==, 12);
            aad_len = hex_decode(vec->aad, aad, sizeof(aad));
            len = hex_decode(vec->plain, plain, sizeof(plain));
            g_assert_cmpuint(hex_decode(vec->cipher_text, ct, sizeof(ct)), ==, len);
            g_assert_cmpuint(hex_decode(vec->tag, tag, sizeof(tag)), ==, 16);

            /* The implicit IV does not matter to the raw functions. */
            enc = shimmer_datachan_key_new(vec->cipher, all_backends[b], SHIMMER_DATACHAN_ENCRYPT,
                                           key, key_len, nonce + 4, &error);
            g_assert_no_error(error);
            dec = shimmer_datachan_key_new(vec->cipher, all_backends[b], SHIMMER_DATACHAN_DECRYPT,
                                           key, key_len, nonce + 4, &error);
            g_assert_no_error(error);

            g_assert_cmpint(
                shimmer_datachan_raw_seal(enc, nonce, aad, aad_len, plain, len, out, got_tag), ==,
                SHIMMER_DATACHAN_OK);
            g_assert_cmpmem(out, len, ct, len);
            g_assert_cmpmem(got_tag, 16, tag, 16);

            /* In place. */
            memcpy(out, plain, len);
            g_assert_cmpint(
                shimmer_datachan_raw_seal(enc, nonce, aad, aad_len, out, len, out, got_tag), ==,
                SHIMMER_DATACHAN_OK);
            g_assert_cmpmem(out, len, ct, len);
            g_assert_cmpmem(got_tag, 16, tag, 16);

            g_assert_cmpint(shimmer_datachan_raw_open(dec, nonce, aad, aad_len, ct, len, out, tag),
                            ==, SHIMMER_DATACHAN_OK);
            g_assert_cmpmem(out, len, plain, len);

            /* A wrong tag is refused and leaves no plaintext behind. */
            tag[15] ^= 0x80;
            memset(out, 0xAA, sizeof(out));
            g_assert_cmpint(shimmer_datachan_raw_open(dec, nonce, aad, aad_len, ct, len, out, tag),
                            ==, SHIMMER_DATACHAN_ERR_AUTH);
            for (gsize i = 0; i < len; i++)
                g_assert_cmpuint(out[i], ==, 0);
            tag[15] ^= 0x80;

            /* Direction is enforced. */
            g_assert_cmpint(
                shimmer_datachan_raw_seal(dec, nonce, aad, aad_len, plain, len, out, got_tag), ==,
                SHIMMER_DATACHAN_ERR_INVALID);
            g_assert_cmpint(shimmer_datachan_raw_open(enc, nonce, aad, aad_len, ct, len, out, tag),
                            ==, SHIMMER_DATACHAN_ERR_INVALID);
        }
    }
}

/* The RFC 8439 nonce is 07000000 | 4041424344454647, which is what the data
 * channel builds for packet id 0x07000000 and implicit IV 4041424344454647 if
 * the packet id comes first. The keystream depends only on key and nonce, so
 * the ciphertext of a sealed packet must be the RFC's (the tag differs: the
 * AAD is the packet header). */
static void test_nonce_layout(void)
{
    const Vector *vec = NULL;
    for (gsize i = 0; i < G_N_ELEMENTS(vectors); i++)
        if (strcmp(vectors[i].name, "rfc8439-2.8.2") == 0)
            vec = &vectors[i];
    g_assert_nonnull(vec);

    for (gsize b = 0; b < G_N_ELEMENTS(all_backends); b++) {
        for (int v2 = 0; v2 <= 1; v2++) {
            guint8 key[32], iv[8], plain[256], ct[256], pkt[BUF];
            gsize len, pkt_len;
            guint32 pid;
            g_autoptr(GError) error = NULL;
            g_autoptr(ShimmerDatachanKey) enc = NULL;

            hex_decode(vec->key, key, sizeof(key));
            hex_decode("4041424344454647", iv, sizeof(iv));
            len = hex_decode(vec->plain, plain, sizeof(plain));
            hex_decode(vec->cipher_text, ct, sizeof(ct));
            enc = shimmer_datachan_key_new(SHIMMER_DATACHAN_CHACHA20_POLY1305, all_backends[b],
                                           SHIMMER_DATACHAN_ENCRYPT, key, 32, iv, &error);
            g_assert_no_error(error);
            g_assert_true(shimmer_datachan_key_skip_to(enc, 0x07000000));
            g_assert_cmpint(do_seal(enc, v2, 0, 0, plain, len, pkt, sizeof(pkt), &pkt_len, &pid),
                            ==, SHIMMER_DATACHAN_OK);
            g_assert_cmpuint(pid, ==, 0x07000000);
            g_assert_cmpmem(pkt + overhead(v2), pkt_len - overhead(v2), ct, len);
        }
    }
}

/* ---- Reference implementations for known answers ---------------------- */

/* Seals with GnuTLS's one-shot API, which appends the tag. */
static void ref_seal_gnutls(ShimmerDatachanCipher cipher, const guint8 *key, const guint8 *nonce,
                            const guint8 *aad, gsize aad_len, const guint8 *plain, gsize len,
                            guint8 *ct, guint8 *tag)
{
    gnutls_cipher_algorithm_t algo =
        cipher == SHIMMER_DATACHAN_AES_128_GCM   ? GNUTLS_CIPHER_AES_128_GCM
        : cipher == SHIMMER_DATACHAN_AES_192_GCM ? GNUTLS_CIPHER_AES_192_GCM
        : cipher == SHIMMER_DATACHAN_AES_256_GCM ? GNUTLS_CIPHER_AES_256_GCM
                                                 : GNUTLS_CIPHER_CHACHA20_POLY1305;
    gnutls_datum_t k = {(unsigned char *)key, (unsigned)shimmer_datachan_cipher_key_len(cipher)};
    gnutls_aead_cipher_hd_t h;
    guint8 buf[BUF + 16];
    size_t buf_len = sizeof(buf);

    g_assert_cmpint(gnutls_aead_cipher_init(&h, algo, &k), ==, 0);
    g_assert_cmpint(
        gnutls_aead_cipher_encrypt(h, nonce, 12, aad, aad_len, 16, plain, len, buf, &buf_len), ==,
        0);
    gnutls_aead_cipher_deinit(h);
    g_assert_cmpuint(buf_len, ==, len + 16);
    memcpy(ct, buf, len);
    memcpy(tag, buf + len, 16);
}

/* Seals with Nettle through its generic AEAD descriptors (nettle-meta.h),
 * not the typed functions the data channel calls. */
static void ref_seal_nettle(ShimmerDatachanCipher cipher, const guint8 *key, const guint8 *nonce,
                            const guint8 *aad, gsize aad_len, const guint8 *plain, gsize len,
                            guint8 *ct, guint8 *tag)
{
    const struct nettle_aead *a = cipher == SHIMMER_DATACHAN_AES_128_GCM   ? &nettle_gcm_aes128
                                  : cipher == SHIMMER_DATACHAN_AES_192_GCM ? &nettle_gcm_aes192
                                  : cipher == SHIMMER_DATACHAN_AES_256_GCM
                                      ? &nettle_gcm_aes256
                                      : &nettle_chacha_poly1305;
    g_autofree void *c = g_malloc0(a->context_size);

    g_assert_cmpuint(a->key_size, ==, shimmer_datachan_cipher_key_len(cipher));
    g_assert_cmpuint(a->nonce_size, ==, 12);
    a->set_encrypt_key(c, key);
    a->set_nonce(c, nonce);
    a->update(c, aad_len, aad);
    a->encrypt(c, len, ct, plain);
    a->digest(c, 16, tag);
}

/* Builds the expected packet from the wire facts alone, with the library the
 * backend under test does not use. */
static gsize expected_packet(ShimmerDatachanCipher cipher, ShimmerDatachanBackend under_test,
                             gboolean v2, guint8 key_id, guint32 peer_id, guint32 pid,
                             const guint8 *key, const guint8 *iv, const guint8 *plain, gsize len,
                             guint8 *pkt)
{
    guint8 nonce[12];
    gsize hdr = v2 ? 8 : 5;
    const guint8 *aad;
    gsize aad_len;

    pkt[0] = (guint8)((v2 ? 9 : 6) << 3 | key_id);
    if (v2) {
        pkt[1] = (guint8)(peer_id >> 16);
        pkt[2] = (guint8)(peer_id >> 8);
        pkt[3] = (guint8)peer_id;
    }
    pkt[hdr - 4] = (guint8)(pid >> 24);
    pkt[hdr - 3] = (guint8)(pid >> 16);
    pkt[hdr - 2] = (guint8)(pid >> 8);
    pkt[hdr - 1] = (guint8)pid;

    memcpy(nonce, pkt + hdr - 4, 4);
    memcpy(nonce + 4, iv, 8);
    aad = v2 ? pkt : pkt + 1;
    aad_len = v2 ? 8 : 4;

    if (under_test == SHIMMER_DATACHAN_BACKEND_NETTLE)
        ref_seal_gnutls(cipher, key, nonce, aad, aad_len, plain, len, pkt + hdr + 16, pkt + hdr);
    else
        ref_seal_nettle(cipher, key, nonce, aad, aad_len, plain, len, pkt + hdr + 16, pkt + hdr);
    return hdr + 16 + len;
}

static void test_known_answers(void)
{
    static const guint32 pids[] = {1, 2, 0x01020304, 0xFEFFFFFF};

    for (gsize c = 0; c < G_N_ELEMENTS(all_ciphers); c++) {
        for (gsize b = 0; b < G_N_ELEMENTS(all_backends); b++) {
            for (int v2 = 0; v2 <= 1; v2++) {
                for (gsize p = 0; p < G_N_ELEMENTS(pids); p++) {
                    for (gsize s = 0; s < G_N_ELEMENTS(sizes); s++) {
                        guint8 key[32], iv[8], plain[BUF], got[BUF], want[BUF];
                        gsize got_len, want_len, len = sizes[s];
                        guint32 pid;
                        g_autoptr(ShimmerDatachanKey) enc =
                            make_key(all_ciphers[c], all_backends[b], SHIMMER_DATACHAN_ENCRYPT, 7);

                        test_key_bytes(all_ciphers[c], 7, key, iv);
                        fill_pattern(plain, len, (guint8)(len + p));
                        g_assert_true(shimmer_datachan_key_skip_to(enc, pids[p]));
                        g_assert_cmpint(do_seal(enc, v2, 5, 0xABCDEF, plain, len, got, sizeof(got),
                                                &got_len, &pid),
                                        ==, SHIMMER_DATACHAN_OK);
                        g_assert_cmpuint(pid, ==, pids[p]);
                        want_len = expected_packet(all_ciphers[c], all_backends[b], v2, 5, 0xABCDEF,
                                                   pids[p], key, iv, plain, len, want);
                        g_assert_cmpmem(got, got_len, want, want_len);
                    }
                }
            }
        }
    }
}

/* ---- Round trips -------------------------------------------------------- */

static void round_trip(ShimmerDatachanCipher cipher, ShimmerDatachanBackend seal_backend,
                       ShimmerDatachanBackend open_backend, gboolean v2)
{
    g_autoptr(ShimmerDatachanKey) enc = make_key(cipher, seal_backend, SHIMMER_DATACHAN_ENCRYPT, 3);
    g_autoptr(ShimmerDatachanKey) dec = make_key(cipher, open_backend, SHIMMER_DATACHAN_DECRYPT, 3);
    guint32 expect_pid = 1;

    for (gsize s = 0; s < G_N_ELEMENTS(sizes); s++) {
        gsize len = sizes[s];
        gsize ov = overhead(v2);
        guint8 plain[BUF], pkt[BUF], out[BUF], inplace[BUF];
        gsize pkt_len = 0, out_len = 0;
        guint32 pid = 0, got_pid = 0;
        guint8 key_id = (guint8)(s % 8);
        guint32 peer_id = s == 0 ? SHIMMER_DATACHAN_PEER_ID_NONE : (guint32)(s * 0x10101);

        fill_pattern(plain, len, (guint8)s);

        /* Separate buffers. */
        g_assert_cmpint(
            do_seal(enc, v2, key_id, peer_id, plain, len, pkt, sizeof(pkt), &pkt_len, &pid), ==,
            SHIMMER_DATACHAN_OK);
        g_assert_cmpuint(pid, ==, expect_pid++);
        g_assert_cmpuint(pkt_len, ==, len + ov);
        g_assert_cmpuint(pkt[0], ==, (v2 ? 9 : 6) << 3 | key_id);
        if (v2) {
            g_assert_cmpuint(pkt[1], ==, (peer_id >> 16) & 0xFF);
            g_assert_cmpuint(pkt[2], ==, (peer_id >> 8) & 0xFF);
            g_assert_cmpuint(pkt[3], ==, peer_id & 0xFF);
        }
        {
            guint32 peeked = 0;
            g_assert_true(shimmer_datachan_peek_packet_id(v2, pkt, pkt_len, &peeked));
            g_assert_cmpuint(peeked, ==, pid);
        }
        /* The ciphertext is not the plaintext. */
        if (len >= 16)
            g_assert_true(memcmp(pkt + ov, plain, len) != 0);

        memset(out, 0xEE, sizeof(out));
        g_assert_cmpint(do_open(dec, v2, pkt, pkt_len, out, len, &out_len, &got_pid), ==,
                        SHIMMER_DATACHAN_OK);
        g_assert_cmpuint(got_pid, ==, pid);
        g_assert_cmpmem(out, out_len, plain, len);
        /* Nothing written past the plaintext. */
        g_assert_cmpuint(out[len], ==, 0xEE);

        /* In place both ways: the payload is built behind the header room,
         * sealed where it lies, and opened where it lies. */
        memcpy(inplace + ov, plain, len);
        g_assert_cmpint(
            do_seal(enc, v2, key_id, peer_id, inplace + ov, len, inplace, len + ov, &pkt_len, &pid),
            ==, SHIMMER_DATACHAN_OK);
        g_assert_cmpuint(pid, ==, expect_pid++);
        g_assert_cmpuint(pkt_len, ==, len + ov);
        g_assert_cmpint(do_open(dec, v2, inplace, pkt_len, inplace + ov, len, &out_len, &got_pid),
                        ==, SHIMMER_DATACHAN_OK);
        g_assert_cmpuint(got_pid, ==, pid);
        g_assert_cmpmem(inplace + ov, out_len, plain, len);

        /* A V1 packet is not a V2 packet and vice versa. */
        g_assert_cmpint(
            do_seal(enc, v2, key_id, peer_id, plain, len, pkt, sizeof(pkt), &pkt_len, &pid), ==,
            SHIMMER_DATACHAN_OK);
        expect_pid++;
        g_assert_cmpint(do_open(dec, !v2, pkt, pkt_len, out, sizeof(out), &out_len, &got_pid), ==,
                        pkt_len < overhead(!v2) ? SHIMMER_DATACHAN_ERR_SHORT
                                                : SHIMMER_DATACHAN_ERR_OPCODE);
    }
    g_assert_cmpuint(shimmer_datachan_key_next_packet_id(enc), ==, expect_pid);
}

static void test_round_trip(void)
{
    for (gsize c = 0; c < G_N_ELEMENTS(all_ciphers); c++)
        for (gsize b = 0; b < G_N_ELEMENTS(all_backends); b++)
            for (int v2 = 0; v2 <= 1; v2++)
                round_trip(all_ciphers[c], all_backends[b], all_backends[b], v2);
}

static void test_cross_backend(void)
{
    for (gsize c = 0; c < G_N_ELEMENTS(all_ciphers); c++) {
        for (int v2 = 0; v2 <= 1; v2++) {
            round_trip(all_ciphers[c], SHIMMER_DATACHAN_BACKEND_NETTLE,
                       SHIMMER_DATACHAN_BACKEND_GNUTLS, v2);
            round_trip(all_ciphers[c], SHIMMER_DATACHAN_BACKEND_GNUTLS,
                       SHIMMER_DATACHAN_BACKEND_NETTLE, v2);
        }
    }
}

/* ---- Rejection ---------------------------------------------------------- */

typedef void (*PerCombination)(ShimmerDatachanCipher cipher, ShimmerDatachanBackend backend,
                               gboolean v2);

static void for_each_combination(PerCombination fn)
{
    for (gsize c = 0; c < G_N_ELEMENTS(all_ciphers); c++)
        for (gsize b = 0; b < G_N_ELEMENTS(all_backends); b++)
            for (int v2 = 0; v2 <= 1; v2++)
                fn(all_ciphers[c], all_backends[b], v2);
}

static gboolean all_zero(const guint8 *p, gsize len)
{
    for (gsize i = 0; i < len; i++)
        if (p[i] != 0)
            return FALSE;
    return TRUE;
}

/* Flip every bit of the packet, one at a time. */
static void tamper_one(ShimmerDatachanCipher cipher, ShimmerDatachanBackend backend, gboolean v2)
{
    g_autoptr(ShimmerDatachanKey) enc = make_key(cipher, backend, SHIMMER_DATACHAN_ENCRYPT, 9);
    g_autoptr(ShimmerDatachanKey) dec = make_key(cipher, backend, SHIMMER_DATACHAN_DECRYPT, 9);
    guint8 plain[100], pkt[BUF], out[BUF];
    gsize pkt_len, out_len;
    guint32 pid;
    gsize hdr = v2 ? 8 : 5;

    fill_pattern(plain, sizeof(plain), 1);
    g_assert_cmpint(
        do_seal(enc, v2, 2, 0x123456, plain, sizeof(plain), pkt, sizeof(pkt), &pkt_len, &pid), ==,
        SHIMMER_DATACHAN_OK);

    for (gsize i = 0; i < pkt_len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            ShimmerDatachanResult want;
            ShimmerDatachanResult got;

            pkt[i] ^= (guint8)(1u << bit);
            memset(out, 0xAA, sizeof(out));
            out_len = 12345;
            got = do_open(dec, v2, pkt, pkt_len, out, sizeof(out), &out_len, &pid);

            if (i == 0 && bit >= 3)
                want = SHIMMER_DATACHAN_ERR_OPCODE;
            else if (i == 0 && !v2)
                /* The V1 key id is outside the AAD: OpenVPN does not
                 * authenticate it either, and the key it selects must
                 * decrypt the packet anyway. */
                want = SHIMMER_DATACHAN_OK;
            else
                want = SHIMMER_DATACHAN_ERR_AUTH;
            g_assert_cmpint(got, ==, want);
            if (want == SHIMMER_DATACHAN_ERR_AUTH) {
                /* No unauthenticated plaintext is left, and nothing is
                 * reported. */
                g_assert_true(all_zero(out, sizeof(plain)));
                g_assert_cmpuint(out[sizeof(plain)], ==, 0xAA);
                g_assert_cmpuint(out_len, ==, 12345);
            }
            pkt[i] ^= (guint8)(1u << bit);
        }
    }
    /* Named cases, for the record: the tag, the peer id (V2 AAD), the
     * packet id (AAD of both). */
    pkt[hdr] ^= 1;
    g_assert_cmpint(do_open(dec, v2, pkt, pkt_len, out, sizeof(out), &out_len, &pid), ==,
                    SHIMMER_DATACHAN_ERR_AUTH);
    pkt[hdr] ^= 1;
    if (v2) {
        pkt[2] ^= 0x40;
        g_assert_cmpint(do_open(dec, v2, pkt, pkt_len, out, sizeof(out), &out_len, &pid), ==,
                        SHIMMER_DATACHAN_ERR_AUTH);
        pkt[2] ^= 0x40;
    }
    pkt[hdr - 1] ^= 1;
    g_assert_cmpint(do_open(dec, v2, pkt, pkt_len, out, sizeof(out), &out_len, &pid), ==,
                    SHIMMER_DATACHAN_ERR_AUTH);
    pkt[hdr - 1] ^= 1;
    /* Untouched, it still opens. */
    g_assert_cmpint(do_open(dec, v2, pkt, pkt_len, out, sizeof(out), &out_len, &pid), ==,
                    SHIMMER_DATACHAN_OK);
    g_assert_cmpmem(out, out_len, plain, sizeof(plain));

    /* In place, a failure wipes the ciphertext it decrypted over. */
    pkt[pkt_len - 1] ^= 1;
    g_assert_cmpint(
        do_open(dec, v2, pkt, pkt_len, pkt + overhead(v2), sizeof(plain), &out_len, &pid), ==,
        SHIMMER_DATACHAN_ERR_AUTH);
    g_assert_true(all_zero(pkt + overhead(v2), sizeof(plain)));
}

static void test_tamper(void)
{
    for_each_combination(tamper_one);
}

static void truncate_one(ShimmerDatachanCipher cipher, ShimmerDatachanBackend backend, gboolean v2)
{
    g_autoptr(ShimmerDatachanKey) enc = make_key(cipher, backend, SHIMMER_DATACHAN_ENCRYPT, 4);
    g_autoptr(ShimmerDatachanKey) dec = make_key(cipher, backend, SHIMMER_DATACHAN_DECRYPT, 4);
    guint8 plain[40], pkt[BUF], copy[BUF], out[BUF];
    gsize pkt_len, out_len;
    guint32 pid;
    gsize ov = overhead(v2);

    fill_pattern(plain, sizeof(plain), 2);
    g_assert_cmpint(do_seal(enc, v2, 0, 7, plain, sizeof(plain), pkt, sizeof(pkt), &pkt_len, &pid),
                    ==, SHIMMER_DATACHAN_OK);

    /* Every length from 0 up to header + tag: too short to hold a tag. A
     * copy of exactly the length, so ASan sees any read past it. */
    for (gsize len = 0; len < ov; len++) {
        guint8 *exact = g_memdup2(pkt, len);
        g_assert_cmpint(do_open(dec, v2, exact, len, out, sizeof(out), &out_len, &pid), ==,
                        SHIMMER_DATACHAN_ERR_SHORT);
        g_assert_false(shimmer_datachan_peek_packet_id(v2, exact, len, &pid));
        g_free(exact);
    }
    /* From header + tag (an empty ciphertext) to one byte short: long
     * enough to parse, but the tag no longer matches. */
    for (gsize len = ov; len < pkt_len; len++) {
        guint8 *exact = g_memdup2(pkt, len);
        g_assert_cmpint(do_open(dec, v2, exact, len, out, sizeof(out), &out_len, &pid), ==,
                        SHIMMER_DATACHAN_ERR_AUTH);
        g_free(exact);
    }
    /* One byte too many. */
    memcpy(copy, pkt, pkt_len);
    copy[pkt_len] = 0;
    g_assert_cmpint(do_open(dec, v2, copy, pkt_len + 1, out, sizeof(out), &out_len, &pid), ==,
                    SHIMMER_DATACHAN_ERR_AUTH);
    /* NULL with length 0 is just short. */
    g_assert_cmpint(do_open(dec, v2, NULL, 0, out, sizeof(out), &out_len, &pid), ==,
                    SHIMMER_DATACHAN_ERR_SHORT);
}

static void test_truncated(void)
{
    for_each_combination(truncate_one);
}

/* An empty plaintext is a valid packet of exactly header + tag. */
static void empty_one(ShimmerDatachanCipher cipher, ShimmerDatachanBackend backend, gboolean v2)
{
    g_autoptr(ShimmerDatachanKey) enc = make_key(cipher, backend, SHIMMER_DATACHAN_ENCRYPT, 4);
    g_autoptr(ShimmerDatachanKey) dec = make_key(cipher, backend, SHIMMER_DATACHAN_DECRYPT, 4);
    guint8 pkt[SHIMMER_DATACHAN_V2_OVERHEAD];
    gsize pkt_len, out_len = 99;
    guint32 pid;

    g_assert_cmpint(do_seal(enc, v2, 1, 1, NULL, 0, pkt, overhead(v2), &pkt_len, &pid), ==,
                    SHIMMER_DATACHAN_OK);
    g_assert_cmpuint(pkt_len, ==, overhead(v2));
    g_assert_cmpint(do_open(dec, v2, pkt, pkt_len, NULL, 0, &out_len, &pid), ==,
                    SHIMMER_DATACHAN_OK);
    g_assert_cmpuint(out_len, ==, 0);
    g_assert_cmpuint(pid, ==, 1);
    pkt[pkt_len - 1] ^= 1;
    g_assert_cmpint(do_open(dec, v2, pkt, pkt_len, NULL, 0, &out_len, &pid), ==,
                    SHIMMER_DATACHAN_ERR_AUTH);
}

static void test_empty(void)
{
    for_each_combination(empty_one);
}

/* Another key, or the right key with another implicit IV, fails. */
static void wrong_key_one(ShimmerDatachanCipher cipher, ShimmerDatachanBackend backend, gboolean v2)
{
    g_autoptr(ShimmerDatachanKey) enc = make_key(cipher, backend, SHIMMER_DATACHAN_ENCRYPT, 4);
    g_autoptr(ShimmerDatachanKey) other = make_key(cipher, backend, SHIMMER_DATACHAN_DECRYPT, 5);
    g_autoptr(ShimmerDatachanKey) other_iv = NULL;
    g_autoptr(GError) error = NULL;
    guint8 key[32], iv[8], plain[50], pkt[BUF], out[BUF];
    gsize pkt_len, out_len;
    guint32 pid;

    test_key_bytes(cipher, 4, key, iv);
    iv[7] ^= 1;
    other_iv = shimmer_datachan_key_new(cipher, backend, SHIMMER_DATACHAN_DECRYPT, key,
                                        shimmer_datachan_cipher_key_len(cipher), iv, &error);
    g_assert_no_error(error);

    fill_pattern(plain, sizeof(plain), 3);
    g_assert_cmpint(do_seal(enc, v2, 0, 0, plain, sizeof(plain), pkt, sizeof(pkt), &pkt_len, &pid),
                    ==, SHIMMER_DATACHAN_OK);
    g_assert_cmpint(do_open(other, v2, pkt, pkt_len, out, sizeof(out), &out_len, &pid), ==,
                    SHIMMER_DATACHAN_ERR_AUTH);
    g_assert_cmpint(do_open(other_iv, v2, pkt, pkt_len, out, sizeof(out), &out_len, &pid), ==,
                    SHIMMER_DATACHAN_ERR_AUTH);
}

static void test_wrong_key(void)
{
    for_each_combination(wrong_key_one);
}

static void exhaust_one(ShimmerDatachanCipher cipher, ShimmerDatachanBackend backend, gboolean v2)
{
    g_autoptr(ShimmerDatachanKey) enc = make_key(cipher, backend, SHIMMER_DATACHAN_ENCRYPT, 6);
    g_autoptr(ShimmerDatachanKey) dec = make_key(cipher, backend, SHIMMER_DATACHAN_DECRYPT, 6);
    guint8 plain[32], pkt[BUF], out[BUF], before[BUF];
    gsize pkt_len = 0, out_len;
    guint32 pid = 0;

    fill_pattern(plain, sizeof(plain), 4);

    /* The rekey signal comes before the hard limit. */
    g_assert_true(shimmer_datachan_key_skip_to(enc, SHIMMER_DATACHAN_PACKET_ID_REKEY - 1));
    g_assert_false(shimmer_datachan_key_needs_rekey(enc));
    g_assert_cmpint(do_seal(enc, v2, 0, 0, plain, sizeof(plain), pkt, sizeof(pkt), &pkt_len, &pid),
                    ==, SHIMMER_DATACHAN_OK);
    g_assert_cmpuint(pid, ==, SHIMMER_DATACHAN_PACKET_ID_REKEY - 1);
    g_assert_true(shimmer_datachan_key_needs_rekey(enc));

    /* The last two ids below the limit still go out. */
    g_assert_true(shimmer_datachan_key_skip_to(enc, SHIMMER_DATACHAN_PACKET_ID_LIMIT - 2));
    for (guint32 i = 0; i < 2; i++) {
        g_assert_cmpint(
            do_seal(enc, v2, 0, 0, plain, sizeof(plain), pkt, sizeof(pkt), &pkt_len, &pid), ==,
            SHIMMER_DATACHAN_OK);
        g_assert_cmpuint(pid, ==, SHIMMER_DATACHAN_PACKET_ID_LIMIT - 2 + i);
        g_assert_cmpint(do_open(dec, v2, pkt, pkt_len, out, sizeof(out), &out_len, &pid), ==,
                        SHIMMER_DATACHAN_OK);
    }
    g_assert_cmpuint(pid, ==, 0xFEFFFFFF);
    g_assert_cmpuint(shimmer_datachan_key_next_packet_id(enc), ==,
                     SHIMMER_DATACHAN_PACKET_ID_LIMIT);
    g_assert_true(shimmer_datachan_key_needs_rekey(enc));

    /* At the limit: refused, nothing written, counter unchanged, and it stays
     * refused. */
    memset(pkt, 0x77, sizeof(pkt));
    memcpy(before, pkt, sizeof(pkt));
    for (int i = 0; i < 3; i++) {
        pid = 42;
        pkt_len = 42;
        g_assert_cmpint(
            do_seal(enc, v2, 0, 0, plain, sizeof(plain), pkt, sizeof(pkt), &pkt_len, &pid), ==,
            SHIMMER_DATACHAN_ERR_EXHAUSTED);
        g_assert_cmpuint(pid, ==, 42);
        g_assert_cmpuint(pkt_len, ==, 42);
        g_assert_cmpmem(pkt, sizeof(pkt), before, sizeof(before));
    }
    g_assert_cmpuint(shimmer_datachan_key_next_packet_id(enc), ==,
                     SHIMMER_DATACHAN_PACKET_ID_LIMIT);

    /* The counter never goes back (that would reuse nonces) ... */
    g_assert_false(shimmer_datachan_key_skip_to(enc, 1));
    g_assert_false(shimmer_datachan_key_skip_to(enc, SHIMMER_DATACHAN_PACKET_ID_LIMIT - 1));
    /* ... and moving it further is allowed but still refused. */
    g_assert_true(shimmer_datachan_key_skip_to(enc, 0xFFFFFFFF));
    g_assert_cmpint(do_seal(enc, v2, 0, 0, plain, sizeof(plain), pkt, sizeof(pkt), &pkt_len, &pid),
                    ==, SHIMMER_DATACHAN_ERR_EXHAUSTED);
    /* Decrypt keys have no counter. */
    g_assert_false(shimmer_datachan_key_skip_to(dec, 100));
    g_assert_false(shimmer_datachan_key_needs_rekey(dec));
}

static void test_exhaustion(void)
{
    for_each_combination(exhaust_one);
}

static void misuse_one(ShimmerDatachanCipher cipher, ShimmerDatachanBackend backend, gboolean v2)
{
    g_autoptr(ShimmerDatachanKey) enc = make_key(cipher, backend, SHIMMER_DATACHAN_ENCRYPT, 8);
    g_autoptr(ShimmerDatachanKey) dec = make_key(cipher, backend, SHIMMER_DATACHAN_DECRYPT, 8);
    guint8 plain[64], pkt[BUF], out[BUF];
    gsize pkt_len = 0, out_len = 0;
    guint32 pid;
    gsize ov = overhead(v2);

    fill_pattern(plain, sizeof(plain), 5);

    /* Wrong direction. */
    g_assert_cmpint(do_seal(dec, v2, 0, 0, plain, sizeof(plain), pkt, sizeof(pkt), &pkt_len, &pid),
                    ==, SHIMMER_DATACHAN_ERR_INVALID);
    /* Key id and peer id out of range (V1 has no peer id). */
    g_assert_cmpint(do_seal(enc, v2, 8, 0, plain, sizeof(plain), pkt, sizeof(pkt), &pkt_len, &pid),
                    ==, SHIMMER_DATACHAN_ERR_INVALID);
    if (v2)
        g_assert_cmpint(shimmer_datachan_seal_v2(enc, 0, 0x1000000, plain, sizeof(plain), pkt,
                                                 sizeof(pkt), &pkt_len, &pid),
                        ==, SHIMMER_DATACHAN_ERR_INVALID);
    /* One byte short of room. */
    g_assert_cmpint(
        do_seal(enc, v2, 0, 0, plain, sizeof(plain), pkt, sizeof(plain) + ov - 1, &pkt_len, &pid),
        ==, SHIMMER_DATACHAN_ERR_BUFFER);
    /* Overlap other than the in-place layout. */
    memcpy(pkt + ov - 1, plain, sizeof(plain));
    g_assert_cmpint(
        do_seal(enc, v2, 0, 0, pkt + ov - 1, sizeof(plain), pkt, sizeof(pkt), &pkt_len, &pid), ==,
        SHIMMER_DATACHAN_ERR_INVALID);
    g_assert_cmpint(
        do_seal(enc, v2, 0, 0, pkt + ov + 1, sizeof(plain), pkt, sizeof(pkt), &pkt_len, &pid), ==,
        SHIMMER_DATACHAN_ERR_INVALID);
    g_assert_cmpint(do_seal(enc, v2, 0, 0, pkt, sizeof(plain), pkt, sizeof(pkt), &pkt_len, &pid),
                    ==, SHIMMER_DATACHAN_ERR_INVALID);
    /* None of the refusals used up a packet id. */
    g_assert_cmpuint(shimmer_datachan_key_next_packet_id(enc), ==, 1);

    g_assert_cmpint(do_seal(enc, v2, 7, v2 ? 0xFFFFFF : 0, plain, sizeof(plain), pkt, sizeof(pkt),
                            &pkt_len, &pid),
                    ==, SHIMMER_DATACHAN_OK);
    g_assert_cmpuint(pid, ==, 1);
    g_assert_cmpuint(pkt[0] & 7, ==, 7);

    g_assert_cmpint(do_open(enc, v2, pkt, pkt_len, out, sizeof(out), &out_len, &pid), ==,
                    SHIMMER_DATACHAN_ERR_INVALID);
    g_assert_cmpint(do_open(dec, v2, pkt, pkt_len, out, sizeof(plain) - 1, &out_len, &pid), ==,
                    SHIMMER_DATACHAN_ERR_BUFFER);
    g_assert_cmpint(do_open(dec, v2, pkt, pkt_len, pkt + ov - 1, sizeof(out), &out_len, &pid), ==,
                    SHIMMER_DATACHAN_ERR_INVALID);
    g_assert_cmpint(do_open(dec, v2, pkt, pkt_len, pkt + 1, sizeof(out), &out_len, &pid), ==,
                    SHIMMER_DATACHAN_ERR_INVALID);
    /* The refusals did not disturb the packet. */
    g_assert_cmpint(do_open(dec, v2, pkt, pkt_len, out, sizeof(out), &out_len, &pid), ==,
                    SHIMMER_DATACHAN_OK);
    g_assert_cmpmem(out, out_len, plain, sizeof(plain));

    /* Other opcodes. */
    for (guint op = 0; op < 32; op++) {
        guint8 saved = pkt[0];

        if (op == (v2 ? SHIMMER_DATACHAN_OP_DATA_V2 : SHIMMER_DATACHAN_OP_DATA_V1))
            continue;
        pkt[0] = (guint8)(op << 3 | (saved & 7));
        g_assert_cmpint(do_open(dec, v2, pkt, pkt_len, out, sizeof(out), &out_len, &pid), ==,
                        SHIMMER_DATACHAN_ERR_OPCODE);
        pkt[0] = saved;
    }
}

static void test_misuse(void)
{
    for_each_combination(misuse_one);
}

/* The receive path as the session will run it: peek, check, open, update,
 * with loss, reordering, replays and forgeries. */
static void test_with_replay_window(void)
{
    g_autoptr(ShimmerDatachanKey) enc =
        make_key(SHIMMER_DATACHAN_AES_256_GCM, SHIMMER_DATACHAN_BACKEND_DEFAULT,
                 SHIMMER_DATACHAN_ENCRYPT, 1);
    g_autoptr(ShimmerDatachanKey) dec =
        make_key(SHIMMER_DATACHAN_AES_256_GCM, SHIMMER_DATACHAN_BACKEND_DEFAULT,
                 SHIMMER_DATACHAN_DECRYPT, 1);
    ShimmerReplay window;
    guint8 pkts[8][256];
    gsize lens[8];
    /* Index into pkts (packet id - 1); -1 is a forgery of packet id 9. */
    static const int arrivals[] = {0, 2, 1, 1, 5, -1, 4, 3, 0, 7, 6, 5};
    static const gboolean accepted[] = {TRUE, TRUE, TRUE,  FALSE, TRUE, FALSE,
                                        TRUE, TRUE, FALSE, TRUE,  TRUE, FALSE};
    guint8 forged[256];

    g_assert_true(shimmer_replay_init(&window, SHIMMER_REPLAY_DEFAULT_WINDOW,
                                      SHIMMER_REPLAY_DEFAULT_TIME_BACKTRACK_S));
    for (int i = 0; i < 8; i++) {
        guint8 plain[100];
        fill_pattern(plain, sizeof(plain), (guint8)i);
        g_assert_cmpint(shimmer_datachan_seal_v2(enc, 0, 1, plain, sizeof(plain), pkts[i],
                                                 sizeof(pkts[i]), &lens[i], NULL),
                        ==, SHIMMER_DATACHAN_OK);
    }
    /* A forgery that claims id 9: right layout, wrong tag. */
    memcpy(forged, pkts[7], lens[7]);
    forged[7] = 9;

    for (gsize a = 0; a < G_N_ELEMENTS(arrivals); a++) {
        const guint8 *pkt = arrivals[a] < 0 ? forged : pkts[arrivals[a]];
        gsize len = arrivals[a] < 0 ? lens[7] : lens[arrivals[a]];
        guint8 out[256];
        gsize out_len;
        guint32 peeked, pid;
        gboolean ok = FALSE;

        g_assert_true(shimmer_datachan_peek_packet_id(TRUE, pkt, len, &peeked));
        if (shimmer_replay_check(&window, peeked, (gint64)a) == SHIMMER_REPLAY_OK &&
            shimmer_datachan_open_v2(dec, pkt, len, out, sizeof(out), &out_len, &pid) ==
                SHIMMER_DATACHAN_OK) {
            g_assert_cmpuint(pid, ==, peeked);
            shimmer_replay_update(&window, pid, (gint64)a);
            ok = TRUE;
        }
        g_assert_cmpint(ok, ==, accepted[a]);
    }
    /* The forgery did not move the window. */
    g_assert_cmpuint(shimmer_replay_highest(&window), ==, 8);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/datachan/names", test_names);
    g_test_add_func("/datachan/key-new-errors", test_key_new_errors);
    g_test_add_func("/datachan/key-accessors", test_key_accessors);
    g_test_add_func("/datachan/raw-vectors", test_raw_vectors);
    g_test_add_func("/datachan/nonce-layout", test_nonce_layout);
    g_test_add_func("/datachan/known-answers", test_known_answers);
    g_test_add_func("/datachan/round-trip", test_round_trip);
    g_test_add_func("/datachan/cross-backend", test_cross_backend);
    g_test_add_func("/datachan/tamper", test_tamper);
    g_test_add_func("/datachan/truncated", test_truncated);
    g_test_add_func("/datachan/empty", test_empty);
    g_test_add_func("/datachan/wrong-key", test_wrong_key);
    g_test_add_func("/datachan/exhaustion", test_exhaustion);
    g_test_add_func("/datachan/misuse", test_misuse);
    g_test_add_func("/datachan/with-replay-window", test_with_replay_window);

    return g_test_run();
}
