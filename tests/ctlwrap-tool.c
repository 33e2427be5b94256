/* SPDX-License-Identifier: MIT */
/*
 * ctlwrap-tool: packet.c and ctlwrap.c from the command line, so that the
 * interop test can hold them against the real OpenVPN.
 *
 *   ctlwrap-tool unwrap KEYOPTS < packet
 *       verifies and unwraps one packet, prints the inner fields as key=value
 *       lines; exit 1 (and "rejected: ..." on stderr) if it does not verify
 *       or parse.
 *   ctlwrap-tool wrap KEYOPTS --op N [--key-id K] [--session-id HEX]
 *       [--ack PID]... [--remote-session-id HEX] [--msg-pid N] [--payload HEX]
 *       [--pid N] [--time T] > packet
 *   ctlwrap-tool wrap-reset KEYOPTS [--session-id HEX] [--time T] > packet
 *       a HARD_RESET_CLIENT_V2 (V3 with tls-crypt-v2), msg_pid 0.
 *
 * KEYOPTS: --mode none|tls-auth|tls-crypt|tls-crypt-v2 [--key FILE]
 *   [--auth SHA1|SHA256|SHA512] [--key-direction 0|1|none]
 *   [--role client|server]. With tls-crypt-v2, --key is the client key for
 *   --role client and the server key for --role server.
 * --tcp frames output / expects input with the u16 length prefix.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "ctlwrap.h"
#include "keys.h"
#include "packet.h"
#include "secure.h"

static char *opt_mode = NULL;
static char *opt_key = NULL;
static char *opt_auth = NULL;
static char *opt_direction = NULL;
static char *opt_role = NULL;
static int opt_op = -1;
static int opt_key_id = 0;
static char *opt_session_id = NULL;
static char **opt_acks = NULL;
static char *opt_remote_sid = NULL;
static gint64 opt_msg_pid = 0;
static char *opt_payload = NULL;
static gint64 opt_pid = -1;
static gint64 opt_time = -1;
static gboolean opt_tcp = FALSE;
static char *opt_client_packet = NULL;

static GOptionEntry key_entries[] = {
    {"mode", 0, 0, G_OPTION_ARG_STRING, &opt_mode, "none|tls-auth|tls-crypt|tls-crypt-v2", "M"},
    {"key", 0, 0, G_OPTION_ARG_FILENAME, &opt_key, "key file", "FILE"},
    {"auth", 0, 0, G_OPTION_ARG_STRING, &opt_auth, "tls-auth digest (SHA1)", "D"},
    {"key-direction", 0, 0, G_OPTION_ARG_STRING, &opt_direction, "0|1|none", "K"},
    {"role", 0, 0, G_OPTION_ARG_STRING, &opt_role, "client|server", "R"},
    {"tcp", 0, 0, G_OPTION_ARG_NONE, &opt_tcp, "u16 length prefix", NULL},
    {NULL, 0, 0, 0, NULL, NULL, NULL},
};

static GOptionEntry wrap_entries[] = {
    {"op", 0, 0, G_OPTION_ARG_INT, &opt_op, "opcode", "N"},
    {"key-id", 0, 0, G_OPTION_ARG_INT, &opt_key_id, "key id", "K"},
    {"session-id", 0, 0, G_OPTION_ARG_STRING, &opt_session_id, "own session id", "HEX"},
    {"ack", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt_acks, "acked pid (repeat)", "PID"},
    {"remote-session-id", 0, 0, G_OPTION_ARG_STRING, &opt_remote_sid, "remote sid", "HEX"},
    {"msg-pid", 0, 0, G_OPTION_ARG_INT64, &opt_msg_pid, "message pid", "N"},
    {"payload", 0, 0, G_OPTION_ARG_STRING, &opt_payload, "payload", "HEX"},
    {"pid", 0, 0, G_OPTION_ARG_INT64, &opt_pid, "replay pid of this packet", "N"},
    {"time", 0, 0, G_OPTION_ARG_INT64, &opt_time, "replay time", "T"},
    {"client-packet", 0, 0, G_OPTION_ARG_FILENAME, &opt_client_packet,
     "tls-crypt-v2 server: learn Kc from this V3/WKC_V1 packet first", "FILE"},
    {NULL, 0, 0, 0, NULL, NULL, NULL},
};

static G_GNUC_NORETURN void die(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ctlwrap-tool: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

/* ---- key files ---- */

static guint8 *read_file(const char *path, gsize *len)
{
    char *data = NULL;
    GError *error = NULL;
    if (!g_file_get_contents(path, &data, len, &error))
        die("%s", error->message);
    return (guint8 *)data;
}

static void load_static(const char *path, guint8 out[SHIMMER_STATIC_KEY_LEN])
{
    gsize len;
    guint8 *data = read_file(path, &len);
    GError *error = NULL;
    if (!shimmer_keys_parse_static(data, len, out, &error))
        die("%s: %s", path, error ? error->message : "not a static key");
    shimmer_free_secret(data, len);
}

static void load_v2_client(const char *path, ShimmerTlsCryptV2ClientKey *out)
{
    gsize len;
    guint8 *data = read_file(path, &len);
    GError *error = NULL;
    if (!shimmer_keys_parse_tls_crypt_v2_client(data, len, out, &error))
        die("%s: %s", path, error ? error->message : "not a tls-crypt-v2 client key");
    shimmer_free_secret(data, len);
}

static void load_v2_server(const char *path, guint8 out[SHIMMER_TLS_CRYPT_V2_SERVER_KEY_LEN])
{
    gsize len;
    guint8 *data = read_file(path, &len);
    GError *error = NULL;
    if (!shimmer_keys_parse_tls_crypt_v2_server(data, len, out, &error))
        die("%s: %s", path, error ? error->message : "not a tls-crypt-v2 server key");
    shimmer_free_secret(data, len);
}

static ShimmerCtlwrapRole parse_role(void)
{
    if (opt_role == NULL || g_str_equal(opt_role, "client"))
        return SHIMMER_CTLWRAP_ROLE_CLIENT;
    if (g_str_equal(opt_role, "server"))
        return SHIMMER_CTLWRAP_ROLE_SERVER;
    die("bad --role %s", opt_role);
}

static ShimmerCtlwrap *make_wrapper(void)
{
    ShimmerCtlwrapRole role = parse_role();
    ShimmerCtlwrap *w = NULL;

    if (opt_mode == NULL || g_str_equal(opt_mode, "none"))
        return shimmer_ctlwrap_new_none();
    if (opt_key == NULL)
        die("--key is required with --mode %s", opt_mode);

    if (g_str_equal(opt_mode, "tls-auth")) {
        ShimmerCtlwrapDigest d = SHIMMER_CTLWRAP_DIGEST_SHA1;
        ShimmerKeyDirection dir = SHIMMER_KEY_DIRECTION_NONE;
        guint8 key[SHIMMER_STATIC_KEY_LEN];
        if (opt_auth == NULL || g_ascii_strcasecmp(opt_auth, "SHA1") == 0)
            d = SHIMMER_CTLWRAP_DIGEST_SHA1;
        else if (g_ascii_strcasecmp(opt_auth, "SHA256") == 0)
            d = SHIMMER_CTLWRAP_DIGEST_SHA256;
        else if (g_ascii_strcasecmp(opt_auth, "SHA512") == 0)
            d = SHIMMER_CTLWRAP_DIGEST_SHA512;
        else
            die("bad --auth %s", opt_auth);
        if (opt_direction == NULL || g_str_equal(opt_direction, "none"))
            dir = SHIMMER_KEY_DIRECTION_NONE;
        else if (g_str_equal(opt_direction, "0"))
            dir = SHIMMER_KEY_DIRECTION_0;
        else if (g_str_equal(opt_direction, "1"))
            dir = SHIMMER_KEY_DIRECTION_1;
        else
            die("bad --key-direction %s", opt_direction);
        load_static(opt_key, key);
        w = shimmer_ctlwrap_new_tls_auth(key, d, dir);
        shimmer_wipe(key, sizeof(key));
    } else if (g_str_equal(opt_mode, "tls-crypt")) {
        guint8 key[SHIMMER_STATIC_KEY_LEN];
        load_static(opt_key, key);
        w = shimmer_ctlwrap_new_tls_crypt(key, role);
        shimmer_wipe(key, sizeof(key));
    } else if (g_str_equal(opt_mode, "tls-crypt-v2")) {
        if (role == SHIMMER_CTLWRAP_ROLE_CLIENT) {
            ShimmerTlsCryptV2ClientKey ck;
            load_v2_client(opt_key, &ck);
            w = shimmer_ctlwrap_new_tls_crypt_v2_client(ck.kc, ck.wkc, ck.wkc_len);
            shimmer_wipe(&ck, sizeof(ck));
        } else {
            guint8 sk[SHIMMER_TLS_CRYPT_V2_SERVER_KEY_LEN];
            load_v2_server(opt_key, sk);
            w = shimmer_ctlwrap_new_tls_crypt_v2_server(sk);
            shimmer_wipe(sk, sizeof(sk));
        }
    } else {
        die("bad --mode %s", opt_mode);
    }
    if (w == NULL)
        die("could not set up the wrapper");
    return w;
}

/* ---- helpers ---- */

static char *hex(const guint8 *p, gsize n)
{
    GString *s = g_string_sized_new(n * 2 + 1);
    for (gsize i = 0; i < n; i++)
        g_string_append_printf(s, "%02x", p[i]);
    return g_string_free(s, FALSE);
}

static guint8 *unhex(const char *s, gsize *len)
{
    gsize n = strlen(s);
    if (n % 2 != 0)
        die("odd number of hex digits");
    guint8 *out = g_malloc(n / 2 + 1);
    for (gsize i = 0; i < n / 2; i++) {
        int hi = g_ascii_xdigit_value(s[2 * i]), lo = g_ascii_xdigit_value(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            die("bad hex digit");
        out[i] = (guint8)(hi << 4 | lo);
    }
    *len = n / 2;
    return out;
}

static void parse_sid(const char *s, guint8 out[SHIMMER_SESSION_ID_LEN])
{
    gsize n;
    g_autofree guint8 *b = unhex(s, &n);
    if (n != SHIMMER_SESSION_ID_LEN)
        die("a session id is 8 bytes (16 hex digits)");
    memcpy(out, b, n);
}

static guint8 *read_stdin(gsize *len)
{
    GByteArray *a = g_byte_array_new();
    guint8 buf[4096];
    for (;;) {
        ssize_t r = read(STDIN_FILENO, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            die("read: %s", g_strerror(errno));
        if (r == 0)
            break;
        g_byte_array_append(a, buf, (guint)r);
    }
    *len = a->len;
    return g_byte_array_free(a, FALSE);
}

static void write_stdout(const guint8 *p, gsize n)
{
    while (n > 0) {
        ssize_t r = write(STDOUT_FILENO, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            die("write: %s", g_strerror(errno));
        p += r;
        n -= (gsize)r;
    }
}

/* ---- commands ---- */

static int cmd_unwrap(void)
{
    g_autoptr(ShimmerCtlwrap) w = make_wrapper();
    gsize in_len, out_len = 0;
    g_autofree guint8 *in = read_stdin(&in_len);
    const guint8 *pkt = in;
    gsize pkt_len = in_len;
    ShimmerCtlwrapInfo info;
    ShimmerControlPacket cp;

    if (opt_tcp) {
        g_autoptr(ShimmerTcpSplitter) sp = shimmer_tcp_splitter_new(SHIMMER_TCP_MAX_PACKET);
        gsize used;
        ShimmerPacketError perr = shimmer_tcp_splitter_feed(sp, in, in_len, &used, &pkt, &pkt_len);
        if (perr != SHIMMER_PACKET_OK || pkt == NULL || used != in_len) {
            fprintf(stderr, "rejected: tcp framing: %s\n",
                    perr != SHIMMER_PACKET_OK ? shimmer_packet_error_to_string(perr)
                                              : "incomplete");
            return 1;
        }
    }

    g_autofree guint8 *out = g_malloc(pkt_len + 1);
    ShimmerCtlwrapError err =
        shimmer_ctlwrap_unwrap(w, pkt, pkt_len, out, pkt_len, &out_len, &info);
    if (err != SHIMMER_CTLWRAP_OK) {
        fprintf(stderr, "rejected: %s\n", shimmer_ctlwrap_error_to_string(err));
        return 1;
    }
    ShimmerPacketError perr = shimmer_packet_parse_control(out, out_len, &cp);
    if (perr != SHIMMER_PACKET_OK) {
        fprintf(stderr, "rejected: inner packet: %s\n", shimmer_packet_error_to_string(perr));
        return 1;
    }

    g_autofree char *sid = hex(cp.session_id, SHIMMER_SESSION_ID_LEN);
    g_autofree char *rsid =
        cp.n_acks > 0 ? hex(cp.remote_session_id, SHIMMER_SESSION_ID_LEN) : g_strdup("");
    g_autofree char *payload = hex(cp.payload, cp.payload_len);
    GString *acks = g_string_new(NULL);
    for (guint i = 0; i < cp.n_acks; i++)
        g_string_append_printf(acks, "%s%u", i ? "," : "", cp.acks[i]);

    printf("opcode=%u\n", cp.opcode);
    printf("opname=%s\n", shimmer_packet_opcode_name(cp.opcode));
    printf("key_id=%u\n", cp.key_id);
    printf("session_id=%s\n", sid);
    printf("n_acks=%u\n", cp.n_acks);
    printf("acks=%s\n", acks->str);
    printf("remote_session_id=%s\n", rsid);
    if (cp.has_msg_pid)
        printf("msg_pid=%u\n", cp.msg_pid);
    else
        printf("msg_pid=\n");
    printf("payload=%s\n", payload);
    if (info.has_replay) {
        printf("replay_pid=%u\n", info.replay_pid);
        printf("replay_time=%u\n", info.replay_time);
    }
    if (shimmer_ctlwrap_get_mode(w) == SHIMMER_CTLWRAP_TLS_CRYPT_V2_SERVER) {
        gsize md_len;
        const guint8 *md = shimmer_ctlwrap_get_metadata(w, &md_len);
        g_autofree char *mdh = hex(md, md_len);
        printf("wkc_verified=%d\n", info.wkc_verified ? 1 : 0);
        printf("metadata=%s\n", mdh);
    }
    g_string_free(acks, TRUE);
    shimmer_wipe(out, pkt_len);
    return 0;
}

static int do_wrap(ShimmerControlPacket *cp)
{
    g_autoptr(ShimmerCtlwrap) w = make_wrapper();
    guint32 now = opt_time >= 0 ? (guint32)opt_time : (guint32)(g_get_real_time() / G_USEC_PER_SEC);
    gsize plain_size = shimmer_packet_control_size(cp), plain_len = 0, out_len = 0;
    g_autofree guint8 *plain = g_malloc(plain_size);
    ShimmerPacketError perr = shimmer_packet_build_control(cp, plain, plain_size, &plain_len);
    if (perr != SHIMMER_PACKET_OK)
        die("cannot build packet: %s", shimmer_packet_error_to_string(perr));

    if (opt_client_packet != NULL) {
        gsize cl_len, cl_out_len;
        g_autofree guint8 *cl = read_file(opt_client_packet, &cl_len);
        g_autofree guint8 *cl_out = g_malloc(cl_len + 1);
        ShimmerCtlwrapInfo info;
        ShimmerCtlwrapError cerr =
            shimmer_ctlwrap_unwrap(w, cl, cl_len, cl_out, cl_len, &cl_out_len, &info);
        if (cerr != SHIMMER_CTLWRAP_OK)
            die("--client-packet: %s", shimmer_ctlwrap_error_to_string(cerr));
        shimmer_wipe(cl_out, cl_len);
    }
    if (opt_pid >= 0)
        shimmer_ctlwrap_set_next_pid(w, (guint32)opt_pid);
    gsize out_size = SHIMMER_TCP_PREFIX_LEN + plain_len + shimmer_ctlwrap_overhead(w, cp->opcode);
    g_autofree guint8 *out = g_malloc(out_size);
    guint8 *body = opt_tcp ? out + SHIMMER_TCP_PREFIX_LEN : out;
    ShimmerCtlwrapError err = shimmer_ctlwrap_wrap(w, plain, plain_len, now, body,
                                                   out_size - SHIMMER_TCP_PREFIX_LEN, &out_len);
    if (err != SHIMMER_CTLWRAP_OK)
        die("cannot wrap: %s", shimmer_ctlwrap_error_to_string(err));
    if (opt_tcp) {
        if (shimmer_tcp_write_prefix(out_len, out) != SHIMMER_PACKET_OK)
            die("packet too large for TCP");
        out_len += SHIMMER_TCP_PREFIX_LEN;
    }
    write_stdout(out, out_len);
    return 0;
}

static void fill_sid(guint8 sid[SHIMMER_SESSION_ID_LEN])
{
    if (opt_session_id != NULL) {
        parse_sid(opt_session_id, sid);
        return;
    }
    for (int i = 0; i < SHIMMER_SESSION_ID_LEN; i++)
        sid[i] = (guint8)g_random_int_range(0, 256);
}

static int cmd_wrap(void)
{
    ShimmerControlPacket cp = {0};
    g_autofree guint8 *payload = NULL;

    if (opt_op < 0 || opt_op > 31)
        die("--op is required");
    cp.opcode = (guint8)opt_op;
    cp.key_id = (guint8)opt_key_id;
    fill_sid(cp.session_id);
    for (guint i = 0; opt_acks != NULL && opt_acks[i] != NULL; i++) {
        if (i >= SHIMMER_PACKET_MAX_ACKS)
            die("too many --ack");
        cp.acks[i] = (guint32)g_ascii_strtoull(opt_acks[i], NULL, 10);
        cp.n_acks = i + 1;
    }
    if (cp.n_acks > 0) {
        if (opt_remote_sid == NULL)
            die("--ack needs --remote-session-id");
        parse_sid(opt_remote_sid, cp.remote_session_id);
    }
    cp.msg_pid = (guint32)opt_msg_pid;
    if (opt_payload != NULL)
        payload = unhex(opt_payload, &cp.payload_len);
    cp.payload = payload;
    return do_wrap(&cp);
}

static int cmd_wrap_reset(void)
{
    ShimmerControlPacket cp = {0};
    gboolean v2 = opt_mode != NULL && g_str_equal(opt_mode, "tls-crypt-v2");
    cp.opcode = v2 ? SHIMMER_OP_HARD_RESET_CLIENT_V3 : SHIMMER_OP_HARD_RESET_CLIENT_V2;
    fill_sid(cp.session_id);
    cp.msg_pid = 0;
    return do_wrap(&cp);
}

int main(int argc, char **argv)
{
    g_autoptr(GOptionContext) ctx = NULL;
    g_autoptr(GError) error = NULL;
    const char *cmd;

    if (argc < 2)
        die("usage: ctlwrap-tool unwrap|wrap|wrap-reset [OPTIONS]");
    cmd = argv[1];
    ctx = g_option_context_new(cmd);
    g_option_context_add_main_entries(ctx, key_entries, NULL);
    if (!g_str_equal(cmd, "unwrap"))
        g_option_context_add_main_entries(ctx, wrap_entries, NULL);
    argv[1] = argv[0];
    argc--;
    argv++;
    if (!g_option_context_parse(ctx, &argc, &argv, &error))
        die("%s", error->message);

    if (g_str_equal(cmd, "unwrap"))
        return cmd_unwrap();
    if (g_str_equal(cmd, "wrap"))
        return cmd_wrap();
    if (g_str_equal(cmd, "wrap-reset"))
        return cmd_wrap_reset();
    die("unknown command %s", cmd);
}
