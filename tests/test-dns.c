/* SPDX-License-Identifier: MIT */
/*
 * service/os/dns.c against its three backends: a stand-in for systemd-resolved
 * (tests/dbus/resolved_mock.py) on a private dbus-daemon started here, a
 * fake resolvconf written by each test into its temporary directory (it
 * records its arguments and its input and keeps records the way resolvconf
 * does), and neither.
 *
 * Needs dbus-daemon and python3-gi (skips with the reason otherwise), not
 * root. Every process started here is stopped by its pid at the end, and is
 * told to die with this one should the test crash (PR_SET_PDEATHSIG); the
 * stand-in also exits by itself after a minute.
 */
#include "os/dns.h"

#include <errno.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <glib/gstdio.h>

#define TEST_DOMAIN "shimmerd"

/* ---------- the asynchronous API, waited for ---------- */

/* Every change runs on the main loop; these wait for its result, running
 * the loop meanwhile (as shimmerd's would). */
static void on_done(GObject *source, GAsyncResult *result, gpointer user)
{
    *(GAsyncResult **)user = g_object_ref(result);
}

static gboolean finish(GAsyncResult **result, GError **error)
{
    while (*result == NULL)
        g_main_context_iteration(NULL, TRUE);
    gboolean ok = g_task_propagate_boolean(G_TASK(*result), error);
    g_clear_object(result);
    return ok;
}

static gboolean dns_apply(ShimmerDns *dns, int ifindex, const char *ifname,
                          const char *const *servers, const char *const *domains,
                          gboolean default_route, GError **error)
{
    GAsyncResult *result = NULL;
    shimmer_dns_apply(dns, ifindex, ifname, servers, domains, default_route, NULL, on_done,
                      &result);
    return finish(&result, error);
}

static gboolean dns_revert(ShimmerDns *dns, int ifindex, const char *ifname, GError **error)
{
    GAsyncResult *result = NULL;
    shimmer_dns_revert(dns, ifindex, ifname, NULL, on_done, &result);
    return finish(&result, error);
}

static void dns_revert_all(ShimmerDns *dns)
{
    GAsyncResult *result = NULL;
    shimmer_dns_revert_all(dns, NULL, on_done, &result);
    g_assert_true(finish(&result, NULL));
}

static void dns_cleanup_stale(ShimmerDns *dns)
{
    GAsyncResult *result = NULL;
    shimmer_dns_cleanup_stale(dns, NULL, on_done, &result);
    g_assert_true(finish(&result, NULL));
}

static char *python;
static char *mock_script;
static char *bus_dir;
static GSubprocess *bus_daemon;
static char *bus_address;

/* ---------- processes ---------- */

static void die_with_parent(gpointer user)
{
    (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
}

/* Starts ARGV with stdout on a pipe and returns its first line (NULL when
 * the process ended first). */
static GSubprocess *spawn_and_read_line(const char *const *argv, char **line)
{
    g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE);
    g_autoptr(GError) error = NULL;
    GSubprocess *p;

    g_subprocess_launcher_set_child_setup(l, die_with_parent, NULL, NULL);
    p = g_subprocess_launcher_spawnv(l, argv, &error);
    g_assert_no_error(error);
    g_autoptr(GDataInputStream) in = g_data_input_stream_new(g_subprocess_get_stdout_pipe(p));
    *line = g_data_input_stream_read_line(in, NULL, NULL, &error);
    g_assert_no_error(error);
    return p;
}

static void stop(GSubprocess **p)
{
    if (*p == NULL)
        return;
    g_subprocess_send_signal(*p, SIGTERM);
    g_assert_true(g_subprocess_wait(*p, NULL, NULL));
    g_clear_object(p);
}

static void bus_up(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *config = NULL;
    g_autofree char *config_path = NULL;

    bus_dir = g_dir_make_tmp("shimmer-test-dns-bus-XXXXXX", &error);
    g_assert_no_error(error);
    config = g_strdup_printf(
        "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
        " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
        "<busconfig>\n"
        "  <type>session</type>\n"
        "  <listen>unix:dir=%s</listen>\n"
        "  <auth>EXTERNAL</auth>\n"
        "  <policy context=\"default\">\n"
        "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
        "    <allow eavesdrop=\"true\"/>\n"
        "    <allow own=\"*\"/>\n"
        "  </policy>\n"
        "</busconfig>\n",
        bus_dir);
    config_path = g_build_filename(bus_dir, "bus.conf", NULL);
    g_file_set_contents(config_path, config, -1, &error);
    g_assert_no_error(error);

    g_autofree char *arg = g_strdup_printf("--config-file=%s", config_path);
    const char *argv[] = {"dbus-daemon", arg, "--print-address=1", "--nofork", NULL};
    bus_daemon = spawn_and_read_line(argv, &bus_address);
    g_assert_nonnull(bus_address);
}

static void rm_tree(const char *path)
{
    g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
    const char *name;

    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
        g_autofree char *p = g_build_filename(path, name, NULL);

        if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
            rm_tree(p);
        else
            g_assert_cmpint(g_unlink(p), ==, 0);
    }
    g_assert_cmpint(g_rmdir(path), ==, 0);
}

static void bus_down(void)
{
    stop(&bus_daemon);
    g_free(bus_address);
    if (bus_dir != NULL)
        rm_tree(bus_dir);
    g_free(bus_dir);
}

/* ---------- fixture ---------- */

typedef struct {
    GDBusConnection *bus;
    GSubprocess *mock;
    char *dir;        /* the fake resolvconf's world */
    char *resolvconf; /* the fake resolvconf */
    char *records;    /* its records: dir/interface */
    int lo;           /* ifindex of lo, a link that exists */
} Fixture;

static const char fake_resolvconf[] =
    "#!/bin/sh\n"
    "# A fake resolvconf: records each call's arguments and input.\n"
    "d='%s'\n"
    "n=$(cat \"$d/count\" 2>/dev/null || echo 0)\n"
    "n=$((n + 1))\n"
    "echo \"$n\" > \"$d/count\"\n"
    "printf '%%s\\n' \"$*\" >> \"$d/calls\"\n"
    "cat > \"$d/input.$n\"\n"
    "if [ -e \"$d/hang\" ]; then exec sleep 10; fi\n"
    "if [ -e \"$d/fail\" ]; then echo 'resolvconf: simulated failure' >&2; exit 3; fi\n"
    "case \"$1\" in\n"
    "-a) cp \"$d/input.$n\" \"$d/interface/$2\" ;;\n"
    "-d) rm -f \"$d/interface/$2\" ;;\n"
    "*) echo \"resolvconf: bad usage\" >&2; exit 99 ;;\n"
    "esac\n";

static void fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *script = NULL;

    f->bus =
        g_dbus_connection_new_for_address_sync(bus_address,
                                               G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                   G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                               NULL, NULL, &error);
    g_assert_no_error(error);

    f->dir = g_dir_make_tmp("shimmer-test-dns-XXXXXX", &error);
    g_assert_no_error(error);
    f->records = g_build_filename(f->dir, "interface", NULL);
    g_assert_cmpint(g_mkdir(f->records, 0700), ==, 0);
    f->resolvconf = g_build_filename(f->dir, "resolvconf", NULL);
    script = g_strdup_printf(fake_resolvconf, f->dir);
    g_file_set_contents(f->resolvconf, script, -1, &error);
    g_assert_no_error(error);
    g_assert_cmpint(g_chmod(f->resolvconf, 0700), ==, 0);

    f->lo = (int)if_nametoindex("lo");
    g_assert_cmpint(f->lo, >, 0);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    stop(&f->mock);
    g_dbus_connection_close_sync(f->bus, NULL, NULL);
    g_clear_object(&f->bus);
    rm_tree(f->dir);
    g_free(f->dir);
    g_free(f->records);
    g_free(f->resolvconf);
}

static gboolean resolved_owned(Fixture *f)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) ret = g_dbus_connection_call_sync(
        f->bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
        "NameHasOwner", g_variant_new("(s)", "org.freedesktop.resolve1"), G_VARIANT_TYPE("(b)"),
        G_DBUS_CALL_FLAGS_NONE, 5000, NULL, &error);
    gboolean owned;

    g_assert_no_error(error);
    g_variant_get(ret, "(b)", &owned);
    return owned;
}

static void mock_start(Fixture *f)
{
    g_autofree char *line = NULL;
    const char *argv[] = {python, mock_script, "--address", bus_address, "--lifetime", "60", NULL};

    f->mock = spawn_and_read_line(argv, &line);
    g_assert_cmpstr(line, ==, "READY");
    g_assert_true(resolved_owned(f));
}

/* Stops the stand-in, and waits for the bus to see its name go. */
static void mock_vanish(Fixture *f)
{
    stop(&f->mock);
    for (int i = 0; i < 500 && resolved_owned(f); i++)
        g_usleep(10 * 1000);
    g_assert_false(resolved_owned(f));
}

static GVariant *mock_call(Fixture *f, const char *method, GVariant *args, const char *reply)
{
    g_autoptr(GError) error = NULL;
    GVariant *ret = g_dbus_connection_call_sync(
        f->bus, "org.freedesktop.resolve1", "/org/freedesktop/resolve1",
        "org.shimmervpn.test.ResolvedMock", method, args, reply ? G_VARIANT_TYPE(reply) : NULL,
        G_DBUS_CALL_FLAGS_NONE, 5000, NULL, &error);

    g_assert_no_error(error);
    return ret;
}

static void mock_fail_next(Fixture *f, const char *method, const char *error_name)
{
    g_variant_unref(mock_call(
        f, "FailNext", g_variant_new("(sss)", method, error_name, "simulated refusal"), NULL));
}

static void assert_variant(GVariant *got, const char *expected_text)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) expected =
        g_variant_parse(g_variant_get_type(got), expected_text, NULL, NULL, &error);

    g_assert_no_error(error);
    if (!g_variant_equal(got, expected)) {
        g_autofree char *g = g_variant_print(got, TRUE);
        g_autofree char *e = g_variant_print(expected, TRUE);

        g_test_message("got      %s", g);
        g_test_message("expected %s", e);
        g_test_fail_printf("unexpected calls or settings: got %s", g);
    }
}

/* The stand-in's record of calls since the last reset, as a(sv) text
 * (printf-style, so that ifindexes can go in). */
G_GNUC_PRINTF(2, 3)
static void assert_calls(Fixture *f, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *text = NULL;
    g_autoptr(GVariant) ret = mock_call(f, "GetCalls", NULL, "(a(sv))");
    g_autoptr(GVariant) calls = g_variant_get_child_value(ret, 0);

    va_start(ap, fmt);
    text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    assert_variant(calls, text);
}

static void mock_reset(Fixture *f)
{
    g_variant_unref(mock_call(f, "Reset", NULL, NULL));
}

/* The settings the stand-in holds now, as a{iv} text (printf-style). */
G_GNUC_PRINTF(2, 3)
static void assert_links(Fixture *f, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *text = NULL;
    g_autoptr(GVariant) ret = mock_call(f, "GetLinks", NULL, "(a{iv})");
    g_autoptr(GVariant) links = g_variant_get_child_value(ret, 0);

    va_start(ap, fmt);
    text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    assert_variant(links, text);
}

static void assert_no_links(Fixture *f)
{
    assert_links(f, "@a{iv} {}");
}

/* ---------- the fake resolvconf's record ---------- */

static char *read_file(Fixture *f, const char *name)
{
    g_autofree char *path = g_build_filename(f->dir, name, NULL);
    char *text = NULL;

    if (!g_file_get_contents(path, &text, NULL, NULL))
        return g_strdup("");
    return text;
}

static void assert_resolvconf_calls(Fixture *f, const char *expected)
{
    g_autofree char *calls = read_file(f, "calls");

    g_assert_cmpstr(calls, ==, expected);
}

static gboolean record_exists(Fixture *f, const char *name)
{
    g_autofree char *path = g_build_filename(f->records, name, NULL);

    return g_file_test(path, G_FILE_TEST_EXISTS);
}

static void touch(Fixture *f, const char *dir, const char *name)
{
    g_autofree char *path = g_build_filename(dir ? dir : f->dir, name, NULL);
    g_autoptr(GError) error = NULL;

    g_file_set_contents(path, "", 0, &error);
    g_assert_no_error(error);
}

/* ---------- backend choice ---------- */

static void test_backend_names(void)
{
    g_assert_cmpstr(shimmer_dns_backend_name(SHIMMER_DNS_BACKEND_RESOLVED), ==, "resolved");
    g_assert_cmpstr(shimmer_dns_backend_name(SHIMMER_DNS_BACKEND_RESOLVCONF), ==, "resolvconf");
    g_assert_cmpstr(shimmer_dns_backend_name(SHIMMER_DNS_BACKEND_NONE), ==, "none");
}

static void test_backend_choice(Fixture *f, gconstpointer data)
{
    /* Without resolved on the bus: resolvconf when there is one. */
    g_autoptr(ShimmerDns) rc = shimmer_dns_new(f->bus, f->resolvconf);
    g_assert_cmpint(shimmer_dns_get_backend(rc), ==, SHIMMER_DNS_BACKEND_RESOLVCONF);

    g_test_expect_message(TEST_DOMAIN, G_LOG_LEVEL_WARNING,
                          "*resolvconf program /nonexistent/resolvconf is not there*");
    g_autoptr(ShimmerDns) none = shimmer_dns_new(f->bus, "/nonexistent/resolvconf");
    g_test_assert_expected_messages();
    g_assert_cmpint(shimmer_dns_get_backend(none), ==, SHIMMER_DNS_BACKEND_NONE);

    /* resolved wins whenever it is on the bus, resolvconf or not. */
    mock_start(f);
    g_autoptr(ShimmerDns) rd = shimmer_dns_new(f->bus, f->resolvconf);
    g_assert_cmpint(shimmer_dns_get_backend(rd), ==, SHIMMER_DNS_BACKEND_RESOLVED);
    /* Picking the backend calls nothing on resolved. */
    assert_calls(f, "@a(sv) []");
}

/* ---------- systemd-resolved ---------- */

static ShimmerDns *resolved_dns(Fixture *f)
{
    mock_start(f);
    ShimmerDns *dns = shimmer_dns_new(f->bus, f->resolvconf);
    g_assert_cmpint(shimmer_dns_get_backend(dns), ==, SHIMMER_DNS_BACKEND_RESOLVED);
    return dns;
}

static void test_resolved_split(Fixture *f, gconstpointer data)
{
    g_autoptr(ShimmerDns) dns = resolved_dns(f);
    g_autoptr(GError) error = NULL;
    const char *servers[] = {"10.8.0.1", "10.8.0.2", NULL};
    const char *domains[] = {"corp.example", "~internal.example", NULL};

    g_assert_true(dns_apply(dns, f->lo, "lo", servers, domains, FALSE, &error));
    g_assert_no_error(error);
    assert_calls(f,
                 "[('SetLinkDNS', <(%d, [(2, [byte 10, 8, 0, 1]), (2, [byte 10, 8, 0, 2])])>),"
                 " ('SetLinkDomains', <(%d, [('corp.example', false),"
                 " ('internal.example', true)])>),"
                 " ('SetLinkDefaultRoute', <(%d, false)>)]",
                 f->lo, f->lo, f->lo);
    assert_links(f,
                 "{%d: <([(2, [byte 10, 8, 0, 1]), (2, [byte 10, 8, 0, 2])],"
                 " [('corp.example', false), ('internal.example', true)], false)>}",
                 f->lo);

    g_assert_true(dns_revert(dns, f->lo, "lo", &error));
    g_assert_no_error(error);
    assert_no_links(f);
    g_assert_true(dns_apply(dns, f->lo, "lo", servers, domains, FALSE, &error));
    mock_reset(f);
    g_assert_true(dns_revert(dns, f->lo, "lo", &error));
    g_assert_no_error(error);
    assert_calls(f, "[('RevertLink', <(%d,)>)]", f->lo);

    /* Reverted links are forgotten: nothing is undone twice. */
    mock_reset(f);
    g_assert_true(dns_revert(dns, f->lo, "lo", &error));
    dns_revert_all(dns);
    assert_calls(f, "@a(sv) []");
}

static void test_resolved_default_route_ipv6(Fixture *f, gconstpointer data)
{
    g_autoptr(ShimmerDns) dns = resolved_dns(f);
    g_autoptr(GError) error = NULL;
    const char *servers[] = {"fd5e::53", "10.8.0.1", "2001:db8:0:1::ff00:42:8329", NULL};

    g_assert_true(dns_apply(dns, f->lo, "lo", servers, NULL, TRUE, &error));
    g_assert_no_error(error);
    assert_calls(f,
                 "[('SetLinkDNS', <(%d, [(10, [byte 0xfd, 0x5e, 0, 0, 0, 0, 0, 0,"
                 " 0, 0, 0, 0, 0, 0, 0, 0x53]), (2, [byte 10, 8, 0, 1]),"
                 " (10, [byte 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1,"
                 " 0, 0, 0xff, 0, 0, 0x42, 0x83, 0x29])])>),"
                 " ('SetLinkDomains', <(%d, [('.', true)])>),"
                 " ('SetLinkDefaultRoute', <(%d, true)>)]",
                 f->lo, f->lo, f->lo);

    /* A "~." of the caller's own is not doubled; a search domain stays. */
    const char *domains[] = {"~.", "corp.example", NULL};
    mock_reset(f);
    g_assert_true(dns_apply(dns, f->lo, "lo", servers + 1, domains, TRUE, &error));
    g_assert_no_error(error);
    assert_calls(f,
                 "[('SetLinkDNS', <(%d, [(2, [byte 10, 8, 0, 1]), (10, [byte 0x20, 0x01, 0x0d,"
                 " 0xb8, 0, 0, 0, 1, 0, 0, 0xff, 0, 0, 0x42, 0x83, 0x29])])>),"
                 " ('SetLinkDomains', <(%d, [('.', true), ('corp.example', false)])>),"
                 " ('SetLinkDefaultRoute', <(%d, true)>)]",
                 f->lo, f->lo, f->lo);

    /* The second apply replaced the first: one link to undo. */
    mock_reset(f);
    dns_revert_all(dns);
    assert_calls(f, "[('RevertLink', <(%d,)>)]", f->lo);
    assert_no_links(f);
}

static void test_resolved_no_servers(Fixture *f, gconstpointer data)
{
    g_autoptr(ShimmerDns) dns = resolved_dns(f);
    g_autoptr(GError) error = NULL;
    const char *servers[] = {"10.8.0.1", NULL};
    const char *domains[] = {"corp.example", NULL};
    const char *none[] = {NULL};

    /* Domains without a server: nothing to send their queries to. */
    g_assert_true(dns_apply(dns, f->lo, "lo", NULL, domains, TRUE, &error));
    g_assert_true(dns_apply(dns, f->lo, "lo", none, domains, TRUE, &error));
    g_assert_no_error(error);
    assert_calls(f, "@a(sv) []");

    /* After a reconnect pushes no servers, the earlier ones go. */
    g_assert_true(dns_apply(dns, f->lo, "lo", servers, domains, FALSE, &error));
    mock_reset(f);
    g_assert_true(dns_apply(dns, f->lo, "lo", none, NULL, FALSE, &error));
    g_assert_no_error(error);
    assert_calls(f, "[('RevertLink', <(%d,)>)]", f->lo);
    mock_reset(f);
    dns_revert_all(dns);
    assert_calls(f, "@a(sv) []");
}

static void test_bad_input(Fixture *f, gconstpointer data)
{
    g_autoptr(ShimmerDns) dns = resolved_dns(f);
    const char *bad_servers[] = {
        "10.8.0.256", "10.8.0",    "fe80::1%lo", "dns.example",
        "",           " 10.8.0.1", "10.8.0.1\n", "fd5e::1::2",
    };
    const char *bad_domains[] = {
        "bad domain",
        "a..b",
        ".corp.example",
        "x\nnameserver 192.0.2.1",
        ".",
        "~",
        "",
        "a/b",
        "\xc3\xa9t\xc3\xa9.example",
        "~~corp.example",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
    };

    for (gsize i = 0; i < G_N_ELEMENTS(bad_servers); i++) {
        g_autoptr(GError) error = NULL;
        const char *servers[] = {"10.8.0.1", bad_servers[i], NULL};

        g_assert_false(dns_apply(dns, f->lo, "lo", servers, NULL, TRUE, &error));
        g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
        g_test_message("%s", error->message);
        g_assert_nonnull(strstr(error->message, "DNS server \""));
        g_assert_nonnull(strstr(error->message, " for lo "));
        /* Quoted escaped, so no control character reaches a log line. */
        g_assert_null(strchr(error->message, '\n'));
    }
    for (gsize i = 0; i < G_N_ELEMENTS(bad_domains); i++) {
        g_autoptr(GError) error = NULL;
        const char *servers[] = {"10.8.0.1", NULL};
        const char *domains[] = {"corp.example", bad_domains[i], NULL};

        g_assert_false(dns_apply(dns, f->lo, "lo", servers, domains, FALSE, &error));
        g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
        g_test_message("%s", error->message);
        g_assert_nonnull(strstr(error->message, "DNS domain \""));
        g_assert_null(strchr(error->message, '\n'));
    }
    /* A long token is cut short in the message. */
    {
        g_autoptr(GError) error = NULL;
        g_autofree char *huge = g_strnfill(4000, '9');
        const char *servers[] = {huge, NULL};

        g_assert_false(dns_apply(dns, f->lo, "lo", servers, NULL, TRUE, &error));
        g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
        g_assert_cmpuint(strlen(error->message), <, 200);
    }
    /* Interfaces whose names could not be a record name or an argument. */
    const char *bad_ifnames[] = {"", "-d", "a/b", "..", "tun 0", "averyveryverylongname"};
    const char *servers[] = {"10.8.0.1", NULL};
    for (gsize i = 0; i < G_N_ELEMENTS(bad_ifnames); i++) {
        g_autoptr(GError) error = NULL;

        g_assert_false(dns_apply(dns, f->lo, bad_ifnames[i], servers, NULL, TRUE, &error));
        g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    }
    g_autoptr(GError) error = NULL;
    g_assert_false(dns_apply(dns, 0, "lo", servers, NULL, TRUE, &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);

    /* Refused before anything was asked of resolved. */
    assert_calls(f, "@a(sv) []");
}

static void test_resolved_refuses(Fixture *f, gconstpointer data)
{
    g_autoptr(ShimmerDns) dns = resolved_dns(f);
    const char *servers[] = {"10.8.0.1", NULL};
    const char *domains[] = {"corp.example", NULL};

    /* A refusal half way: the link is put back, and not remembered. */
    {
        g_autoptr(GError) error = NULL;

        mock_fail_next(f, "SetLinkDomains", "org.freedesktop.DBus.Error.AccessDenied");
        g_assert_false(dns_apply(dns, f->lo, "lo", servers, domains, FALSE, &error));
        g_assert_error(error, G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED);
        g_test_message("%s", error->message);
        g_autofree char *expected = g_strdup_printf(
            "systemd-resolved: SetLinkDomains for lo (ifindex %d) failed: simulated refusal",
            f->lo);
        g_assert_cmpstr(error->message, ==, expected);
        assert_calls(f,
                     "[('SetLinkDNS', <(%d, [(2, [byte 10, 8, 0, 1])])>),"
                     " ('SetLinkDomains', <(%d, [('corp.example', false)])>),"
                     " ('RevertLink', <(%d,)>)]",
                     f->lo, f->lo, f->lo);
        assert_no_links(f);
        mock_reset(f);
        dns_revert_all(dns);
        assert_calls(f, "@a(sv) []");
    }
    /* A resolved older than SetLinkDefaultRoute: "~." does without it. */
    {
        g_autoptr(GError) error = NULL;

        mock_fail_next(f, "SetLinkDefaultRoute", "org.freedesktop.DBus.Error.UnknownMethod");
        g_assert_true(dns_apply(dns, f->lo, "lo", servers, NULL, TRUE, &error));
        g_assert_no_error(error);
        mock_reset(f);
        dns_revert_all(dns);
        assert_calls(f, "[('RevertLink', <(%d,)>)]", f->lo);
    }
    /* A link resolved does not know. */
    {
        g_autoptr(GError) error = NULL;

        mock_reset(f);
        g_assert_false(dns_apply(dns, 999999, "tun-gone", servers, NULL, TRUE, &error));
        g_test_message("%s", error->message);
        g_assert_true(g_str_has_prefix(
            error->message, "systemd-resolved: SetLinkDNS for tun-gone (ifindex 999999) failed"));
        dns_revert_all(dns);
        assert_calls(f, "[('SetLinkDNS', <(999999, [(2, [byte 10, 8, 0, 1])])>)]");
    }
    /* A link that went away before the revert took its settings along. */
    {
        g_autoptr(GError) error = NULL;

        g_assert_true(dns_apply(dns, f->lo, "lo", servers, NULL, TRUE, &error));
        mock_fail_next(f, "RevertLink", "org.freedesktop.resolve1.NoSuchLink");
        g_assert_true(dns_revert(dns, f->lo, "lo", &error));
        g_assert_no_error(error);
    }
}

static void test_resolved_vanishes(Fixture *f, gconstpointer data)
{
    g_autoptr(ShimmerDns) dns = resolved_dns(f);
    g_autoptr(GError) error = NULL;
    const char *servers[] = {"10.8.0.1", "fd5e::53", NULL};

    g_assert_true(dns_apply(dns, f->lo, "lo", servers, NULL, TRUE, &error));
    g_assert_no_error(error);
    mock_vanish(f);

    /* Reported, not a crash, and the link is forgotten. */
    g_assert_false(dns_revert(dns, f->lo, "lo", &error));
    g_assert_nonnull(error);
    g_test_message("%s", error->message);
    g_assert_error(error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER);
    g_assert_true(g_str_has_prefix(error->message, "systemd-resolved: RevertLink for lo"));
    g_assert_nonnull(strstr(error->message, "failed: it is not on the bus any more: "));
    g_clear_error(&error);
    g_assert_true(dns_revert(dns, f->lo, "lo", &error));
    g_assert_no_error(error);

    /* Nor is an apply a crash now; the backend stays what was picked. */
    g_assert_false(dns_apply(dns, f->lo, "lo", servers, NULL, TRUE, &error));
    g_assert_true(g_str_has_prefix(error->message, "systemd-resolved: SetLinkDNS for lo"));
    g_clear_error(&error);

    /* At shutdown the failure is a warning, and everything is forgotten. */
    mock_start(f);
    g_assert_true(dns_apply(dns, f->lo, "lo", servers, NULL, FALSE, &error));
    g_assert_no_error(error);
    mock_vanish(f);
    g_test_expect_message(TEST_DOMAIN, G_LOG_LEVEL_WARNING,
                          "systemd-resolved: RevertLink for lo (ifindex *) failed: *");
    dns_revert_all(dns);
    g_test_assert_expected_messages();
    dns_revert_all(dns);
}

/* ---------- resolvconf ---------- */

static ShimmerDns *resolvconf_dns(Fixture *f)
{
    ShimmerDns *dns = shimmer_dns_new(f->bus, f->resolvconf);
    g_assert_cmpint(shimmer_dns_get_backend(dns), ==, SHIMMER_DNS_BACKEND_RESOLVCONF);
    shimmer_dns_set_resolvconf_dir(dns, f->records);
    return dns;
}

static void test_resolvconf(Fixture *f, gconstpointer data)
{
    g_autoptr(ShimmerDns) dns = resolvconf_dns(f);
    g_autoptr(GError) error = NULL;
    const char *servers[] = {"10.8.0.1", "fd5e::53", NULL};
    const char *domains[] = {"corp.example", "~routed.example", "lab.example.", NULL};

    g_assert_true(dns_apply(dns, 41, "tun-t0", servers, domains, FALSE, &error));
    g_assert_no_error(error);
    assert_resolvconf_calls(f, "-a tun-t0.shimmer\n");
    g_autofree char *input = read_file(f, "input.1");
    g_assert_cmpstr(input, ==,
                    "nameserver 10.8.0.1\n"
                    "nameserver fd5e::53\n"
                    "search corp.example lab.example.\n");
    g_assert_true(record_exists(f, "tun-t0.shimmer"));

    /* Servers only, and IPv6 only. */
    const char *v6[] = {"fd5e::1", NULL};
    g_assert_true(dns_apply(dns, 42, "tun-t1", v6, NULL, TRUE, &error));
    g_assert_no_error(error);
    g_autofree char *input2 = read_file(f, "input.2");
    g_assert_cmpstr(input2, ==, "nameserver fd5e::1\n");

    g_assert_true(dns_revert(dns, 41, "tun-t0", &error));
    g_assert_no_error(error);
    assert_resolvconf_calls(f, "-a tun-t0.shimmer\n-a tun-t1.shimmer\n-d tun-t0.shimmer\n");
    g_assert_false(record_exists(f, "tun-t0.shimmer"));
    g_autofree char *input3 = read_file(f, "input.3");
    g_assert_cmpstr(input3, ==, "");

    /* Once reverted, a link is not undone again; the others are. */
    g_assert_true(dns_revert(dns, 41, "tun-t0", &error));
    dns_revert_all(dns);
    assert_resolvconf_calls(
        f, "-a tun-t0.shimmer\n-a tun-t1.shimmer\n-d tun-t0.shimmer\n-d tun-t1.shimmer\n");
    g_assert_false(record_exists(f, "tun-t1.shimmer"));
}

static void test_resolvconf_revert_all(Fixture *f, gconstpointer data)
{
    g_autoptr(ShimmerDns) dns = resolvconf_dns(f);
    g_autoptr(GError) error = NULL;
    const char *servers[] = {"10.8.0.1", NULL};

    g_assert_true(dns_apply(dns, 41, "tun-a", servers, NULL, FALSE, &error));
    g_assert_true(dns_apply(dns, 42, "tun-b", servers, NULL, FALSE, &error));
    /* Applying again to a link replaces its record in place. */
    g_assert_true(dns_apply(dns, 41, "tun-a", servers, NULL, FALSE, &error));
    g_assert_no_error(error);
    dns_revert_all(dns);
    /* Newest first. */
    assert_resolvconf_calls(f, "-a tun-a.shimmer\n-a tun-b.shimmer\n-a tun-a.shimmer\n"
                               "-d tun-b.shimmer\n-d tun-a.shimmer\n");
    dns_revert_all(dns);
    assert_resolvconf_calls(f, "-a tun-a.shimmer\n-a tun-b.shimmer\n-a tun-a.shimmer\n"
                               "-d tun-b.shimmer\n-d tun-a.shimmer\n");
    g_assert_false(record_exists(f, "tun-a.shimmer"));
    g_assert_false(record_exists(f, "tun-b.shimmer"));
}

static void test_resolvconf_fails(Fixture *f, gconstpointer data)
{
    g_autoptr(ShimmerDns) dns = resolvconf_dns(f);
    g_autoptr(GError) error = NULL;
    const char *servers[] = {"10.8.0.1", NULL};

    touch(f, NULL, "fail");
    g_assert_false(dns_apply(dns, 41, "tun-t0", servers, NULL, FALSE, &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_FAILED);
    g_test_message("%s", error->message);
    g_assert_cmpstr(error->message, ==,
                    "resolvconf: adding tun-t0.shimmer failed with exit status 3: "
                    "\"resolvconf: simulated failure\"");
    g_clear_error(&error);
    /* Not applied, so nothing to revert. */
    dns_revert_all(dns);
    assert_resolvconf_calls(f, "-a tun-t0.shimmer\n");

    /* A failing removal is reported too, and at shutdown warned about. */
    g_autofree char *fail = g_build_filename(f->dir, "fail", NULL);
    g_assert_cmpint(g_unlink(fail), ==, 0);
    g_assert_true(dns_apply(dns, 41, "tun-t0", servers, NULL, FALSE, &error));
    g_assert_true(dns_apply(dns, 42, "tun-t1", servers, NULL, FALSE, &error));
    g_assert_no_error(error);
    touch(f, NULL, "fail");
    g_assert_false(dns_revert(dns, 41, "tun-t0", &error));
    g_assert_true(g_str_has_prefix(error->message, "resolvconf: removing tun-t0.shimmer failed"));
    g_test_expect_message(TEST_DOMAIN, G_LOG_LEVEL_WARNING,
                          "resolvconf: removing tun-t1.shimmer failed with exit status 3*");
    dns_revert_all(dns);
    g_test_assert_expected_messages();
}

static gboolean count_tick(gpointer user)
{
    (*(guint *)user)++;
    return G_SOURCE_CONTINUE;
}

/* A resolvconf that never answers holds up neither the caller nor the
 * main loop (issue 9, item 13: it used to wait up to 5 s on a private
 * loop, with every tunnel and bus call of the daemon stalled): the change
 * fails after 5 s while the loop keeps running, and the changes queued
 * behind it run after it, in order. */
static void test_resolvconf_hangs(Fixture *f, gconstpointer data)
{
    g_autoptr(ShimmerDns) dns = resolvconf_dns(f);
    g_autoptr(GError) error = NULL;
    const char *servers[] = {"10.8.0.1", NULL};

    touch(f, NULL, "hang");
    guint ticks = 0;
    guint tick = g_timeout_add(100, count_tick, &ticks);
    gint64 start = g_get_monotonic_time();
    GAsyncResult *result = NULL;
    shimmer_dns_apply(dns, 41, "tun-t0", servers, NULL, FALSE, NULL, on_done, &result);
    /* The call came back at once, before its answer. */
    g_assert_null(result);
    g_assert_cmpint(g_get_monotonic_time() - start, <, G_USEC_PER_SEC / 2);
    g_assert_false(shimmer_dns_is_idle(dns));
    GAsyncResult *revert_result = NULL;
    shimmer_dns_revert(dns, 41, "tun-t0", NULL, on_done, &revert_result);
    g_assert_false(finish(&result, &error));
    gint64 took = g_get_monotonic_time() - start;
    g_source_remove(tick);
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
    g_test_message("%s (after %.1f s, %u ticks of the main loop meanwhile)", error->message,
                   took / 1e6, ticks);
    g_assert_cmpstr(error->message, ==,
                    "resolvconf: adding tun-t0.shimmer failed: no answer "
                    "within 5 s");
    g_assert_cmpint(took, >=, 4 * G_USEC_PER_SEC);
    g_assert_cmpint(took, <, 15 * G_USEC_PER_SEC);
    /* The loop ran all along: about 10 ticks a second. */
    g_assert_cmpuint(ticks, >=, 20);
    /* The revert asked for meanwhile ran after the failed apply: nothing
     * was applied, so there was nothing to undo. */
    g_assert_true(finish(&revert_result, NULL));
    g_assert_true(shimmer_dns_is_idle(dns));
}

static void test_resolvconf_cleanup_stale(Fixture *f, gconstpointer data)
{
    g_autoptr(ShimmerDns) dns = resolvconf_dns(f);

    touch(f, f->records, "tun-stale0.shimmer"); /* no such interface: removed */
    touch(f, f->records, "tun-stale1.shimmer");
    touch(f, f->records, "lo.shimmer");         /* exists: kept */
    touch(f, f->records, "tun-stale2.openvpn"); /* not ours */
    touch(f, f->records, "-x.shimmer");         /* not an interface name */
    touch(f, f->records, ".shimmer");

    g_test_expect_message(TEST_DOMAIN, G_LOG_LEVEL_MESSAGE,
                          "removed the stale resolvconf record tun-stale*.shimmer");
    g_test_expect_message(TEST_DOMAIN, G_LOG_LEVEL_MESSAGE,
                          "removed the stale resolvconf record tun-stale*.shimmer");
    dns_cleanup_stale(dns);
    g_test_assert_expected_messages();

    g_autofree char *calls = read_file(f, "calls");
    g_auto(GStrv) lines = g_strsplit(calls, "\n", -1);
    g_assert_cmpuint(g_strv_length(lines), ==, 3);
    g_assert_true(g_strv_contains((const char *const *)lines, "-d tun-stale0.shimmer"));
    g_assert_true(g_strv_contains((const char *const *)lines, "-d tun-stale1.shimmer"));
    g_assert_false(record_exists(f, "tun-stale0.shimmer"));
    g_assert_false(record_exists(f, "tun-stale1.shimmer"));
    g_assert_true(record_exists(f, "lo.shimmer"));
    g_assert_true(record_exists(f, "tun-stale2.openvpn"));
    g_assert_true(record_exists(f, "-x.shimmer"));

    /* Nothing stale is left, so a second start does nothing. */
    dns_cleanup_stale(dns);
    g_autofree char *calls2 = read_file(f, "calls");
    g_assert_cmpstr(calls2, ==, calls);

    /* A directory that does not exist (no resolvconf) is no error. */
    g_autofree char *missing = g_build_filename(f->dir, "missing", NULL);
    shimmer_dns_set_resolvconf_dir(dns, missing);
    dns_cleanup_stale(dns);
}

static void test_cleanup_stale_without_resolvconf(Fixture *f, gconstpointer data)
{
    g_test_expect_message(TEST_DOMAIN, G_LOG_LEVEL_WARNING, "*is not there or not executable*");
    g_autoptr(ShimmerDns) dns = shimmer_dns_new(f->bus, "/nonexistent/resolvconf");
    g_test_assert_expected_messages();
    shimmer_dns_set_resolvconf_dir(dns, f->records);

    touch(f, f->records, "tun-stale0.shimmer");
    g_test_expect_message(TEST_DOMAIN, G_LOG_LEVEL_WARNING,
                          "resolvconf record tun-stale0.shimmer in * is left from an earlier run, "
                          "but resolvconf is not installed to remove it");
    dns_cleanup_stale(dns);
    g_test_assert_expected_messages();
}

/* With resolved as the backend, an earlier run's resolvconf records still go. */
/* resolved restarts: the new one knows no link, and the settings of every
 * link still applied are sent to it again (shimmerd's main loop runs the
 * name watch; here the test iterates the main context). */
static void test_resolved_comes_back(Fixture *f, gconstpointer data)
{
    g_autoptr(ShimmerDns) dns = resolved_dns(f);
    g_autoptr(GError) error = NULL;
    const char *servers[] = {"10.8.0.1", NULL};
    const char *domains[] = {"corp.example", "~internal.example", NULL};

    g_assert_true(dns_apply(dns, f->lo, "lo", servers, domains, FALSE, &error));
    g_assert_no_error(error);
    while (g_main_context_iteration(NULL, FALSE))
        ;
    mock_vanish(f);
    g_test_expect_message(TEST_DOMAIN, G_LOG_LEVEL_WARNING,
                          "systemd-resolved left the bus: the DNS settings of 1 tunnel(s) *");
    for (int i = 0; i < 100; i++) {
        g_main_context_iteration(NULL, FALSE);
        g_usleep(10 * 1000);
    }
    g_test_assert_expected_messages();
    mock_start(f);
    assert_no_links(f);
    gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
    for (;;) {
        g_autoptr(GVariant) ret = mock_call(f, "GetLinks", NULL, "(a{iv})");
        g_autoptr(GVariant) links = g_variant_get_child_value(ret, 0);
        /* Applied again, all of it (three calls, asynchronously). */
        if ((g_variant_n_children(links) > 0 && shimmer_dns_is_idle(dns)) ||
            g_get_monotonic_time() > deadline)
            break;
        g_main_context_iteration(NULL, FALSE);
        g_usleep(10 * 1000);
    }
    assert_links(f,
                 "{%d: <([(2, [byte 10, 8, 0, 1])],"
                 " [('corp.example', false), ('internal.example', true)], false)>}",
                 f->lo);

    /* And it is still undone at the end. */
    mock_reset(f);
    dns_revert_all(dns);
    assert_calls(f, "[('RevertLink', <(%d,)>)]", f->lo);
}

static void test_resolved_cleanup_stale(Fixture *f, gconstpointer data)
{
    g_autoptr(ShimmerDns) dns = resolved_dns(f);

    shimmer_dns_set_resolvconf_dir(dns, f->records);
    touch(f, f->records, "tun-stale0.shimmer");
    g_test_expect_message(TEST_DOMAIN, G_LOG_LEVEL_MESSAGE,
                          "removed the stale resolvconf record tun-stale0.shimmer");
    dns_cleanup_stale(dns);
    g_test_assert_expected_messages();
    assert_resolvconf_calls(f, "-d tun-stale0.shimmer\n");
    assert_calls(f, "@a(sv) []");
}

/* ---------- neither ---------- */

static void test_none(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    const char *servers[] = {"10.8.0.1", NULL};

    g_test_expect_message(TEST_DOMAIN, G_LOG_LEVEL_WARNING, "*is not there or not executable*");
    g_autoptr(ShimmerDns) dns = shimmer_dns_new(f->bus, "/nonexistent/resolvconf");
    g_test_assert_expected_messages();
    g_assert_cmpint(shimmer_dns_get_backend(dns), ==, SHIMMER_DNS_BACKEND_NONE);

    g_assert_false(dns_apply(dns, f->lo, "lo", servers, NULL, TRUE, &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
    g_assert_cmpstr(error->message, ==,
                    "DNS servers for lo not set: systemd-resolved is not on the bus and "
                    "resolvconf is not installed");
    g_clear_error(&error);
    /* Bad input is still bad input. */
    const char *bad[] = {"nope", NULL};
    g_assert_false(dns_apply(dns, f->lo, "lo", bad, NULL, TRUE, &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);
    /* Nothing to apply, nothing to undo. */
    g_assert_true(dns_apply(dns, f->lo, "lo", NULL, NULL, TRUE, &error));
    g_assert_true(dns_revert(dns, f->lo, "lo", &error));
    g_assert_no_error(error);
    dns_revert_all(dns);
}

/* ---------- main ---------- */

static char *skip_reason(void)
{
    g_autofree char *daemon = g_find_program_in_path("dbus-daemon");
    const char *argv[] = {python, "-c", "from gi.repository import Gio, GLib", NULL};
    g_autoptr(GError) error = NULL;
    int status = -1;

    if (daemon == NULL)
        return g_strdup("dbus-daemon is not installed");
    if (!g_file_test(mock_script, G_FILE_TEST_EXISTS))
        return g_strdup_printf("%s is missing", mock_script);
    if (!g_spawn_sync(NULL, (char **)argv, NULL,
                      G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                      NULL, NULL, NULL, NULL, &status, &error) ||
        !g_spawn_check_wait_status(status, NULL))
        return g_strdup_printf("%s with python3-gi is needed", python);
    return NULL;
}

/* DNSSEC and DNS over TLS (pushed `dns server N dnssec|transport`) after
 * servers and domains; a resolved without the calls, or one that refuses
 * them, keeps the servers. */
static void test_resolved_extra(Fixture *f, gconstpointer data)
{
    g_autoptr(ShimmerDns) dns = resolved_dns(f);
    const char *servers[] = {"10.8.0.1", NULL};
    const char *domains[] = {"corp.example", NULL};
    ShimmerDnsExtra extra = {.dnssec = "allow-downgrade", .dns_over_tls = "yes"};
    GAsyncResult *result = NULL;
    g_autoptr(GError) error = NULL;

    shimmer_dns_apply_full(dns, f->lo, "lo", servers, domains, FALSE, &extra, NULL, on_done,
                           &result);
    g_assert_true(finish(&result, &error));
    g_assert_no_error(error);
    assert_calls(f,
                 "[('SetLinkDNS', <(%d, [(2, [byte 10, 8, 0, 1])])>),"
                 " ('SetLinkDomains', <(%d, [('corp.example', false)])>),"
                 " ('SetLinkDefaultRoute', <(%d, false)>),"
                 " ('SetLinkDNSSEC', <(%d, 'allow-downgrade')>),"
                 " ('SetLinkDNSOverTLS', <(%d, 'yes')>)]",
                 f->lo, f->lo, f->lo, f->lo, f->lo);

    /* Too old for DNSSEC per link: skipped quietly; a refusal only warns. */
    mock_reset(f);
    mock_fail_next(f, "SetLinkDNSSEC", "org.freedesktop.DBus.Error.UnknownMethod");
    mock_fail_next(f, "SetLinkDNSOverTLS", "org.freedesktop.DBus.Error.AccessDenied");
    g_test_expect_message("shimmerd", G_LOG_LEVEL_WARNING, "*SetLinkDNSOverTLS*");
    shimmer_dns_apply_full(dns, f->lo, "lo", servers, domains, FALSE, &extra, NULL, on_done,
                           &result);
    g_assert_true(finish(&result, &error));
    g_test_assert_expected_messages();
    assert_links(f, "{%d: <([(2, [byte 10, 8, 0, 1])], [('corp.example', false)], false)>}", f->lo);

    /* Values resolved does not know are refused before anything changes. */
    mock_reset(f);
    ShimmerDnsExtra bad = {.dnssec = "maybe"};
    shimmer_dns_apply_full(dns, f->lo, "lo", servers, domains, FALSE, &bad, NULL, on_done, &result);
    g_assert_false(finish(&result, &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    assert_calls(f, "@a(sv) []");
    dns_revert_all(dns);
}

#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)

int main(int argc, char **argv)
{
    const char *srcdir = g_getenv("SHIMMER_TEST_SRCDIR");
    g_autofree char *here = g_path_get_dirname(__FILE__);
    g_autofree char *reason = NULL;
    int ret;

    g_test_init(&argc, &argv, NULL);

    python = g_strdup(g_getenv("SHIMMER_TEST_PYTHON") ? g_getenv("SHIMMER_TEST_PYTHON")
                                                      : "/usr/bin/python3");
    mock_script = g_build_filename(srcdir ? srcdir : here, "dbus", "resolved_mock.py", NULL);
    reason = skip_reason();
    if (reason != NULL) {
        printf("1..0 # SKIP %s\n", reason);
        return 0;
    }

    g_test_add_func("/dns/backend-names", test_backend_names);
    ADD("/dns/backend-choice", test_backend_choice);
    ADD("/dns/resolved/split", test_resolved_split);
    ADD("/dns/resolved/extra", test_resolved_extra);
    ADD("/dns/resolved/default-route-ipv6", test_resolved_default_route_ipv6);
    ADD("/dns/resolved/no-servers", test_resolved_no_servers);
    ADD("/dns/resolved/bad-input", test_bad_input);
    ADD("/dns/resolved/refuses", test_resolved_refuses);
    ADD("/dns/resolved/vanishes", test_resolved_vanishes);
    ADD("/dns/resolved/comes-back", test_resolved_comes_back);
    ADD("/dns/resolved/cleanup-stale", test_resolved_cleanup_stale);
    ADD("/dns/resolvconf/apply-revert", test_resolvconf);
    ADD("/dns/resolvconf/revert-all", test_resolvconf_revert_all);
    ADD("/dns/resolvconf/fails", test_resolvconf_fails);
    ADD("/dns/resolvconf/hangs", test_resolvconf_hangs);
    ADD("/dns/resolvconf/cleanup-stale", test_resolvconf_cleanup_stale);
    ADD("/dns/resolvconf/cleanup-stale-uninstalled", test_cleanup_stale_without_resolvconf);
    ADD("/dns/none", test_none);

    bus_up();
    ret = g_test_run();
    bus_down();
    g_free(mock_script);
    g_free(python);
    return ret;
}
