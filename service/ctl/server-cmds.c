/* SPDX-License-Identifier: MIT */
/*
 * shimmerctl: servers run by the daemon. `server start|stop|status|
 * clients|kick|requests|answer`.
 *
 * Servers and their clients are found through the object manager
 * (GetManagedObjects: readable by everyone, like the sessions); starting,
 * stopping, kicking and deciding logins need the polkit action
 * org.shimmervpn.server.manage.
 */
#include "shimmer-build-config.h"

#include <glib/gi18n.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "ctl.h"
#include "follow.h"
#include "output.h"

#define SERVER_PREFIX "/org/shimmervpn/server/"
/* How long `server stop` waits for the server to end. */
#define STOP_TIMEOUT_S 20

static const char server_synopsis[] =
    "server start NAME|ID|PATH [--auth bus]\n"
    "       shimmerctl server stop SERVER\n"
    "       shimmerctl server status [SERVER] [--json]\n"
    "       shimmerctl server clients [SERVER] [--json]\n"
    "       shimmerctl server kick SERVER CLIENT [--reason TEXT]\n"
    "       shimmerctl server requests SERVER [--json]\n"
    "       shimmerctl server answer SERVER REQUEST accept|deny|pending [--reason TEXT]";

/* ---------------------------------------------------------------- lookup */

/* Every object of the daemon, typed. */
static GDBusObjectManager *objects_of(Ctl *ctl, int *code)
{
    g_autoptr(GError) error = NULL;
    GDBusObjectManager *om = shimmer_dbus_object_manager_client_new_sync(
        ctl->bus, G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_DO_NOT_AUTO_START, BUS_NAME, ROOT_PATH, NULL,
        &error);
    if (om == NULL)
        *code = ctl_fail(_("cannot list the daemon's objects"), error);
    return om;
}

static gint compare_by_id(gconstpointer a, gconstpointer b)
{
    /* Ids are numbers: shorter first keeps "9" before "10". */
    const char *x = g_dbus_proxy_get_object_path(*(GDBusProxy *const *)a);
    const char *y = g_dbus_proxy_get_object_path(*(GDBusProxy *const *)b);
    gsize lx = strlen(x), ly = strlen(y);
    return lx != ly ? (lx < ly ? -1 : 1) : strcmp(x, y);
}

/* The Server1 proxies, by id (references). */
static GPtrArray *all_servers(GDBusObjectManager *om)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_object_unref);
    GList *objects = g_dbus_object_manager_get_objects(om);
    for (GList *l = objects; l != NULL; l = l->next) {
        ShimmerDBusServer1 *s = shimmer_dbus_object_get_server1(SHIMMER_DBUS_OBJECT(l->data));
        if (s != NULL)
            g_ptr_array_add(out, s);
    }
    g_list_free_full(objects, g_object_unref);
    g_ptr_array_sort(out, compare_by_id);
    return out;
}

/* The Client1 proxies below SERVER_PATH, by id (references). */
static GPtrArray *clients_of(GDBusObjectManager *om, const char *server_path)
{
    g_autofree char *prefix = g_strdup_printf("%s/client/", server_path);
    GPtrArray *out = g_ptr_array_new_with_free_func(g_object_unref);
    GList *objects = g_dbus_object_manager_get_objects(om);
    for (GList *l = objects; l != NULL; l = l->next) {
        ShimmerDBusClient1 *c = shimmer_dbus_object_get_client1(SHIMMER_DBUS_OBJECT(l->data));
        if (c == NULL)
            continue;
        if (g_str_has_prefix(g_dbus_proxy_get_object_path(G_DBUS_PROXY(c)), prefix))
            g_ptr_array_add(out, c);
        else
            g_object_unref(c);
    }
    g_list_free_full(objects, g_object_unref);
    g_ptr_array_sort(out, compare_by_id);
    return out;
}

static gboolean server_state_final(const char *state)
{
    return g_strcmp0(state, "stopped") == 0 || g_strcmp0(state, "failed") == 0;
}

static gboolean all_digits(const char *s)
{
    if (*s == '\0')
        return FALSE;
    for (; *s; s++)
        if (!g_ascii_isdigit(*s))
            return FALSE;
    return TRUE;
}

/* The server SPEC names: its path, its id, or the name, id or path of the
 * profile it runs (found among the servers, whose properties everyone may
 * read). NULL and *CODE (printed why) otherwise. */
static ShimmerDBusServer1 *find_server(Ctl *ctl, GDBusObjectManager *om, const char *spec,
                                       int *code)
{
    g_autofree char *path = NULL;
    if (g_str_has_prefix(spec, SERVER_PREFIX)) {
        path = g_strdup(spec);
    } else if (all_digits(spec)) {
        path = g_strconcat(SERVER_PREFIX, spec, NULL);
    } else {
        g_autoptr(GPtrArray) servers = all_servers(om);
        g_autoptr(GPtrArray) match = g_ptr_array_new();
        for (guint i = 0; i < servers->len; i++) {
            ShimmerDBusServer1 *s = servers->pdata[i];
            const char *profile = shimmer_dbus_server1_get_profile(s);
            if (profile == NULL || server_state_final(shimmer_dbus_server1_get_state(s)))
                continue;
            g_autoptr(GVariant) id = ctl_get_property(ctl, profile, IFACE_PROFILE, "Id");
            g_autofree char *name = ctl_profile_name(ctl, profile);
            if (strcmp(profile, spec) == 0 || g_strcmp0(name, spec) == 0 ||
                (id != NULL && g_strcmp0(g_variant_get_string(id, NULL), spec) == 0))
                g_ptr_array_add(match, s);
        }
        if (match->len > 1) {
            ctl_print(stderr, _("shimmerctl: several servers run a profile called '%s':\n"), spec);
            for (guint i = 0; i < match->len; i++)
                ctl_print(stderr, "  %s\n", g_dbus_proxy_get_object_path(match->pdata[i]));
            *code = EXIT_REFUSED;
            return NULL;
        }
        if (match->len == 0) {
            ctl_print(stderr,
                      _("shimmerctl: no server runs '%s' (see 'shimmerctl server status')\n"),
                      spec);
            *code = EXIT_REFUSED;
            return NULL;
        }
        return g_object_ref(match->pdata[0]);
    }
    GDBusInterface *i = g_dbus_object_manager_get_interface(om, path, "org.shimmervpn.Server1");
    if (i == NULL) {
        ctl_print(stderr, _("shimmerctl: no server %s (see 'shimmerctl server status')\n"), path);
        *code = EXIT_REFUSED;
        return NULL;
    }
    return SHIMMER_DBUS_SERVER1(i);
}

/* The client SPEC names on SERVER: its id, its path, or its common name
 * (when one client alone has it). */
static ShimmerDBusClient1 *find_client(GDBusObjectManager *om, ShimmerDBusServer1 *server,
                                       const char *spec, int *code)
{
    const char *server_path = g_dbus_proxy_get_object_path(G_DBUS_PROXY(server));
    g_autoptr(GPtrArray) clients = clients_of(om, server_path);
    g_autoptr(GPtrArray) match = g_ptr_array_new();
    gboolean by_id = all_digits(spec);
    guint64 id = by_id ? g_ascii_strtoull(spec, NULL, 10) : 0;
    for (guint i = 0; i < clients->len; i++) {
        ShimmerDBusClient1 *c = clients->pdata[i];
        if ((by_id && shimmer_dbus_client1_get_id(c) == id) ||
            strcmp(g_dbus_proxy_get_object_path(G_DBUS_PROXY(c)), spec) == 0 ||
            (!by_id && g_strcmp0(shimmer_dbus_client1_get_common_name(c), spec) == 0))
            g_ptr_array_add(match, c);
    }
    if (match->len == 1)
        return g_object_ref(match->pdata[0]);
    if (match->len > 1) {
        ctl_print(stderr, _("shimmerctl: several clients are called '%s'; give an id:\n"), spec);
        for (guint i = 0; i < match->len; i++)
            ctl_print(stderr, "  %" G_GUINT64_FORMAT " %s\n",
                      shimmer_dbus_client1_get_id(match->pdata[i]),
                      shimmer_dbus_client1_get_real_address(match->pdata[i]));
    } else {
        ctl_print(stderr, _("shimmerctl: no client '%s' on server %s\n"), spec, server_path);
    }
    *code = EXIT_REFUSED;
    return NULL;
}

/* ----------------------------------------------------------------- start */

static int cmd_start(Ctl *ctl, int argc, char **argv)
{
    static const char synopsis[] = "server start NAME|ID|PATH [--auth bus]";
    const char *auth = NULL;
    const char *pos[1];
    const Option options[] = {{"--auth", NULL, &auth}, {NULL, NULL, NULL}};
    int r = ctl_parse_options(ctl, synopsis, argc, argv, options, pos, 1, 1);
    if (r >= 0)
        return r;
    if (auth != NULL && strcmp(auth, "bus") != 0) {
        ctl_print(stderr, _("shimmerctl: --auth takes 'bus', not '%s'\n"), auth);
        return EXIT_USAGE;
    }
    if ((r = ctl_open(ctl)) != EXIT_OK)
        return r;
    int code = EXIT_OK;
    g_autoptr(ShimmerDBusProfile1) p = ctl_find_profile(ctl, pos[0], FALSE, &code);
    if (p == NULL)
        return code;
    GVariantBuilder opts;
    g_variant_builder_init(&opts, G_VARIANT_TYPE_VARDICT);
    if (auth != NULL)
        g_variant_builder_add(&opts, "{sv}", "auth", g_variant_new_string(auth));
    g_autoptr(GError) error = NULL;
    const char *profile_path = g_dbus_proxy_get_object_path(G_DBUS_PROXY(p));
    g_autoptr(GVariant) reply = ctl_call(ctl, profile_path, IFACE_PROFILE, "StartServer",
                                         g_variant_new("(@a{sv})", g_variant_builder_end(&opts)),
                                         G_VARIANT_TYPE("(o)"), &error);
    if (reply == NULL) {
        g_autofree char *what = g_strdup_printf(_("cannot start %s"), pos[0]);
        return ctl_fail(what, error);
    }
    const char *path;
    g_variant_get(reply, "(&o)", &path);
    g_autoptr(GVariant) listen =
        ctl_get_property(ctl, path, "org.shimmervpn.Server1", "ListenAddress");
    g_autoptr(GVariant) dev = ctl_get_property(ctl, path, "org.shimmervpn.Server1", "Interface");
    ctl_print(stdout, _("Started server %s of profile '%s': listening on %s, tun %s\n"), path,
              shimmer_dbus_profile1_get_name(p), listen ? g_variant_get_string(listen, NULL) : "-",
              dev ? g_variant_get_string(dev, NULL) : "-");
    return EXIT_OK;
}

/* ------------------------------------------------------------------ stop */

/* Reaches the daemon and the server SPEC names (OM: the daemon's objects,
 * for the caller's further lookups). NULL with *CODE set when either
 * fails, after saying why. */
static ShimmerDBusServer1 *open_server(Ctl *ctl, const char *spec, GDBusObjectManager **om,
                                       int *code)
{
    if ((*code = ctl_open(ctl)) != EXIT_OK)
        return NULL;
    *om = objects_of(ctl, code);
    if (*om == NULL)
        return NULL;
    return find_server(ctl, *om, spec, code);
}

static int cmd_stop(Ctl *ctl, int argc, char **argv)
{
    static const char synopsis[] = "server stop SERVER";
    const char *pos[1];
    int r = ctl_parse_options(ctl, synopsis, argc, argv, NULL, pos, 1, 1);
    if (r >= 0)
        return r;
    int code = EXIT_OK;
    g_autoptr(GDBusObjectManager) om = NULL;
    g_autoptr(ShimmerDBusServer1) s = open_server(ctl, pos[0], &om, &code);
    if (s == NULL)
        return code;
    const char *path = g_dbus_proxy_get_object_path(G_DBUS_PROXY(s));
    if (server_state_final(shimmer_dbus_server1_get_state(s))) {
        ctl_print(stdout, _("Server %s has already ended (%s)\n"), path,
                  shimmer_dbus_server1_get_state(s));
        return EXIT_OK;
    }
    g_autofree char *state = NULL, *reason = NULL;
    g_autoptr(GError) error = NULL;
    switch (ctl_call_and_follow_end(ctl, path, "org.shimmervpn.Server1", "Stop", server_state_final,
                                    STOP_TIMEOUT_S, &state, &reason, &error)) {
    case CTL_END_ENDED:
        ctl_print(stdout, _("Stopped server %s\n"), path);
        return EXIT_OK;
    case CTL_END_CALL_FAILED: {
        g_autofree char *what = g_strdup_printf(_("cannot stop %s"), pos[0]);
        return ctl_fail(what, error);
    }
    case CTL_END_DAEMON_GONE:
        ctl_print(stderr, "%s", _("shimmerctl: the daemon left the bus\n"));
        return EXIT_UNREACHABLE;
    case CTL_END_INTERRUPTED:
        return EXIT_REFUSED;
    case CTL_END_TIMED_OUT:
    default:
        ctl_print(stderr, _("shimmerctl: the server has not stopped after %d seconds\n"),
                  STOP_TIMEOUT_S);
        return EXIT_REFUSED;
    }
}

/* ---------------------------------------------------------------- status */

static char *since_text(guint64 since)
{
    if (since == 0)
        return g_strdup("-");
    g_autofree char *when = ctl_format_time(since);
    gint64 now = g_get_real_time() / G_USEC_PER_SEC;
    g_autofree char *dur = ctl_format_duration(now > (gint64)since ? (guint64)now - since : 0);
    return g_strdup_printf(_("%s (%s ago)"), when, dur);
}

static void print_server(Ctl *ctl, ShimmerDBusServer1 *s)
{
    const char *reason = shimmer_dbus_server1_get_state_reason(s);
    g_autofree char *profile_name = ctl_profile_name(ctl, shimmer_dbus_server1_get_profile(s));
    g_autofree char *profile =
        g_strdup_printf("%s (%s)", profile_name, ctl_or_dash(shimmer_dbus_server1_get_profile(s)));
    g_autofree char *owner = ctl_format_owner(shimmer_dbus_server1_get_owner(s));
    g_autofree char *networks = ctl_format_strv(shimmer_dbus_server1_get_networks(s));
    g_autofree char *clients =
        g_strdup_printf(_("%u of at most %u"), shimmer_dbus_server1_get_client_count(s),
                        shimmer_dbus_server1_get_max_clients(s));
    g_autofree char *since = since_text(shimmer_dbus_server1_get_started_since(s));
    g_autofree char *in_size =
        g_format_size_full(shimmer_dbus_server1_get_bytes_in(s), G_FORMAT_SIZE_IEC_UNITS);
    g_autofree char *out_size =
        g_format_size_full(shimmer_dbus_server1_get_bytes_out(s), G_FORMAT_SIZE_IEC_UNITS);
    g_autofree char *in_text = g_strdup_printf(
        _("%s, %llu packets"), in_size, (unsigned long long)shimmer_dbus_server1_get_packets_in(s));
    g_autofree char *out_text =
        g_strdup_printf(_("%s, %llu packets"), out_size,
                        (unsigned long long)shimmer_dbus_server1_get_packets_out(s));
    g_autofree char *listen =
        g_strdup_printf("%s (%s)", ctl_or_dash(shimmer_dbus_server1_get_listen_address(s)),
                        ctl_or_dash(shimmer_dbus_server1_get_protocol(s)));
    ctl_print_field(_("Server:"), g_dbus_proxy_get_object_path(G_DBUS_PROXY(s)));
    ctl_print_field(_("Profile:"), profile);
    ctl_print_field(_("Owner:"), owner);
    ctl_print_field(_("State:"), ctl_or_dash(shimmer_dbus_server1_get_state(s)));
    if (reason && *reason)
        ctl_print_field(_("Reason:"), reason);
    ctl_print_field(_("Listening:"), listen);
    ctl_print_field(_("Interface:"), ctl_or_dash(shimmer_dbus_server1_get_interface(s)));
    ctl_print_field(_("Networks:"), networks);
    ctl_print_field(_("Logins:"), ctl_or_dash(shimmer_dbus_server1_get_auth_mode(s)));
    ctl_print_field(_("Clients:"), clients);
    ctl_print_field(_("Since:"), since);
    ctl_print_field(_("Received:"), in_text);
    ctl_print_field(_("Sent:"), out_text);
}

/* The servers SPEC names (all without one). */
static GPtrArray *servers_named(Ctl *ctl, GDBusObjectManager *om, const char *spec, int *code)
{
    if (spec == NULL)
        return all_servers(om);
    ShimmerDBusServer1 *s = find_server(ctl, om, spec, code);
    if (s == NULL)
        return NULL;
    GPtrArray *out = g_ptr_array_new_with_free_func(g_object_unref);
    g_ptr_array_add(out, s);
    return out;
}

static int print_json(GString *out)
{
    g_autoptr(GString) pretty = g_string_new(NULL);
    ctl_json_pretty(pretty, out->str);
    g_string_append_c(pretty, '\n');
    fputs(pretty->str, stdout);
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_REFUSED;
}

/* Reaches the daemon and the servers SPEC names (NULL: all), as
 * open_server() does. */
static GPtrArray *open_servers(Ctl *ctl, const char *spec, GDBusObjectManager **om, int *code)
{
    if ((*code = ctl_open(ctl)) != EXIT_OK)
        return NULL;
    *om = objects_of(ctl, code);
    if (*om == NULL)
        return NULL;
    return servers_named(ctl, *om, spec, code);
}

static int cmd_status(Ctl *ctl, int argc, char **argv)
{
    static const char synopsis[] = "server status [SERVER] [--json]";
    gboolean json = FALSE;
    const char *pos[1];
    const Option options[] = {{"--json", &json, NULL}, {NULL, NULL, NULL}};
    int r = ctl_parse_options(ctl, synopsis, argc, argv, options, pos, 0, 1);
    if (r >= 0)
        return r;
    int code = EXIT_OK;
    g_autoptr(GDBusObjectManager) om = NULL;
    g_autoptr(GPtrArray) servers = open_servers(ctl, pos[0], &om, &code);
    if (servers == NULL)
        return code;
    if (json) {
        g_autoptr(GString) out = g_string_new("[");
        for (guint i = 0; i < servers->len; i++) {
            if (i > 0)
                g_string_append_c(out, ',');
            ctl_json_open_object(out, G_DBUS_PROXY(servers->pdata[i]));
            g_string_append_c(out, '}');
        }
        g_string_append_c(out, ']');
        return print_json(out);
    }
    if (servers->len == 0) {
        ctl_print(stdout, "%s",
                  _("No servers run. Start one with 'shimmerctl server start PROFILE'.\n"));
        return EXIT_OK;
    }
    for (guint i = 0; i < servers->len; i++) {
        if (i > 0)
            fputc('\n', stdout);
        print_server(ctl, servers->pdata[i]);
    }
    return EXIT_OK;
}

/* --------------------------------------------------------------- clients */

static int cmd_clients(Ctl *ctl, int argc, char **argv)
{
    static const char synopsis[] = "server clients [SERVER] [--json]";
    gboolean json = FALSE;
    const char *pos[1];
    const Option options[] = {{"--json", &json, NULL}, {NULL, NULL, NULL}};
    int r = ctl_parse_options(ctl, synopsis, argc, argv, options, pos, 0, 1);
    if (r >= 0)
        return r;
    int code = EXIT_OK;
    g_autoptr(GDBusObjectManager) om = NULL;
    g_autoptr(GPtrArray) servers = open_servers(ctl, pos[0], &om, &code);
    if (servers == NULL)
        return code;
    g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func(g_object_unref);
    for (guint i = 0; i < servers->len; i++) {
        g_autoptr(GPtrArray) c =
            clients_of(om, g_dbus_proxy_get_object_path(G_DBUS_PROXY(servers->pdata[i])));
        for (guint k = 0; k < c->len; k++)
            g_ptr_array_add(all, g_object_ref(c->pdata[k]));
    }
    if (json) {
        g_autoptr(GString) out = g_string_new("[");
        for (guint i = 0; i < all->len; i++) {
            if (i > 0)
                g_string_append_c(out, ',');
            ctl_json_open_object(out, G_DBUS_PROXY(all->pdata[i]));
            g_string_append_c(out, '}');
        }
        g_string_append_c(out, ']');
        return print_json(out);
    }
    if (all->len == 0) {
        ctl_print(stdout, "%s", _("No clients are connected.\n"));
        return EXIT_OK;
    }
    for (guint i = 0; i < all->len; i++) {
        ShimmerDBusClient1 *c = all->pdata[i];
        g_autofree char *id = g_strdup_printf("%" G_GUINT64_FORMAT, shimmer_dbus_client1_get_id(c));
        g_autofree char *addrs = ctl_format_strv(shimmer_dbus_client1_get_virtual_addresses(c));
        g_autofree char *since = since_text(shimmer_dbus_client1_get_connected_since(c));
        g_autofree char *in_size =
            g_format_size_full(shimmer_dbus_client1_get_bytes_in(c), G_FORMAT_SIZE_IEC_UNITS);
        g_autofree char *out_size =
            g_format_size_full(shimmer_dbus_client1_get_bytes_out(c), G_FORMAT_SIZE_IEC_UNITS);
        g_autofree char *traffic = g_strdup_printf(_("%s in, %s out"), in_size, out_size);
        if (i > 0)
            fputc('\n', stdout);
        ctl_print_field(_("Client:"), g_dbus_proxy_get_object_path(G_DBUS_PROXY(c)));
        ctl_print_field(_("Id:"), id);
        ctl_print_field(_("Common name:"), ctl_or_dash(shimmer_dbus_client1_get_common_name(c)));
        ctl_print_field(_("User name:"), ctl_or_dash(shimmer_dbus_client1_get_user_name(c)));
        ctl_print_field(_("Address:"), ctl_or_dash(shimmer_dbus_client1_get_real_address(c)));
        ctl_print_field(_("Tunnel:"), addrs);
        ctl_print_field(_("Cipher:"), ctl_or_dash(shimmer_dbus_client1_get_cipher(c)));
        ctl_print_field(_("Traffic:"), traffic);
        ctl_print_field(_("Since:"), since);
    }
    return EXIT_OK;
}

/* ------------------------------------------------------------------ kick */

static int cmd_kick(Ctl *ctl, int argc, char **argv)
{
    static const char synopsis[] = "server kick SERVER CLIENT [--reason TEXT]";
    const char *reason = NULL;
    const char *pos[2];
    const Option options[] = {{"--reason", NULL, &reason}, {NULL, NULL, NULL}};
    int r = ctl_parse_options(ctl, synopsis, argc, argv, options, pos, 2, 2);
    if (r >= 0)
        return r;
    int code = EXIT_OK;
    g_autoptr(GDBusObjectManager) om = NULL;
    g_autoptr(ShimmerDBusServer1) s = open_server(ctl, pos[0], &om, &code);
    if (s == NULL)
        return code;
    g_autoptr(ShimmerDBusClient1) c = find_client(om, s, pos[1], &code);
    if (c == NULL)
        return code;
    const char *path = g_dbus_proxy_get_object_path(G_DBUS_PROXY(c));
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = ctl_call(ctl, path, "org.shimmervpn.Client1", "Kick",
                                         g_variant_new("(s)", reason ? reason : ""), NULL, &error);
    if (reply == NULL) {
        g_autofree char *what = g_strdup_printf(_("cannot kick %s"), pos[1]);
        return ctl_fail(what, error);
    }
    ctl_print(stdout, _("Kicked client %" PRIu64 " (%s)\n"),
              (uint64_t)shimmer_dbus_client1_get_id(c), shimmer_dbus_client1_get_real_address(c));
    return EXIT_OK;
}

/* -------------------------------------------------------- requests, answer */

static int cmd_requests(Ctl *ctl, int argc, char **argv)
{
    static const char synopsis[] = "server requests SERVER [--json]";
    gboolean json = FALSE;
    const char *pos[1];
    const Option options[] = {{"--json", &json, NULL}, {NULL, NULL, NULL}};
    int r = ctl_parse_options(ctl, synopsis, argc, argv, options, pos, 1, 1);
    if (r >= 0)
        return r;
    int code = EXIT_OK;
    g_autoptr(GDBusObjectManager) om = NULL;
    g_autoptr(ShimmerDBusServer1) s = open_server(ctl, pos[0], &om, &code);
    if (s == NULL)
        return code;
    const char *path = g_dbus_proxy_get_object_path(G_DBUS_PROXY(s));
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = ctl_call(ctl, path, "org.shimmervpn.Server1", "GetAuthRequests",
                                         NULL, G_VARIANT_TYPE("(a(ta{sv}))"), &error);
    if (reply == NULL) {
        g_autofree char *what = g_strdup_printf(_("cannot read the logins of %s"), pos[0]);
        return ctl_fail(what, error);
    }
    g_autoptr(GVariant) list = g_variant_get_child_value(reply, 0);
    gsize n = g_variant_n_children(list);
    if (json) {
        g_autoptr(GString) out = g_string_new("[");
        for (gsize i = 0; i < n; i++) {
            guint64 id;
            g_autoptr(GVariant) details = NULL;
            g_variant_get_child(list, i, "(t@a{sv})", &id, &details);
            if (i > 0)
                g_string_append_c(out, ',');
            g_string_append_printf(out, "{\"Request\":%" G_GUINT64_FORMAT, id);
            GVariantIter it;
            const char *key;
            GVariant *value;
            g_variant_iter_init(&it, details);
            while (g_variant_iter_next(&it, "{&sv}", &key, &value)) {
                g_autoptr(GVariant) v = value;
                g_string_append_c(out, ',');
                shimmer_json_append_string(out, key);
                g_string_append_c(out, ':');
                if (g_variant_is_of_type(v, G_VARIANT_TYPE_STRING))
                    shimmer_json_append_string(out, g_variant_get_string(v, NULL));
                else if (g_variant_is_of_type(v, G_VARIANT_TYPE_BOOLEAN))
                    g_string_append(out, g_variant_get_boolean(v) ? "true" : "false");
                else if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT64))
                    g_string_append_printf(out, "%" G_GUINT64_FORMAT, g_variant_get_uint64(v));
                else if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT32))
                    g_string_append_printf(out, "%u", g_variant_get_uint32(v));
                else
                    g_string_append(out, "null");
            }
            g_string_append_c(out, '}');
        }
        g_string_append_c(out, ']');
        return print_json(out);
    }
    if (n == 0) {
        ctl_print(stdout, "%s", _("No logins wait for a decision.\n"));
        return EXIT_OK;
    }
    for (gsize i = 0; i < n; i++) {
        guint64 id;
        g_autoptr(GVariant) details = NULL;
        g_variant_get_child(list, i, "(t@a{sv})", &id, &details);
        const char *cn = "", *user = "", *addr = "";
        guint32 timeout = 0;
        g_variant_lookup(details, "common-name", "&s", &cn);
        g_variant_lookup(details, "username", "&s", &user);
        g_variant_lookup(details, "real-address", "&s", &addr);
        g_variant_lookup(details, "timeout", "u", &timeout);
        ctl_print(stdout, _("%" PRIu64 ": '%s' user '%s' from %s (%u s left)\n"), (uint64_t)id, cn,
                  user, addr, timeout);
    }
    return EXIT_OK;
}

static int cmd_answer(Ctl *ctl, int argc, char **argv)
{
    static const char synopsis[] =
        "server answer SERVER REQUEST accept|deny|pending [--reason TEXT]";
    const char *reason = NULL;
    const char *pos[3];
    const Option options[] = {{"--reason", NULL, &reason}, {NULL, NULL, NULL}};
    int r = ctl_parse_options(ctl, synopsis, argc, argv, options, pos, 3, 3);
    if (r >= 0)
        return r;
    if (!all_digits(pos[1])) {
        ctl_print(stderr, _("shimmerctl: REQUEST is a number, not '%s'\n"), pos[1]);
        return EXIT_USAGE;
    }
    if (strcmp(pos[2], "accept") != 0 && strcmp(pos[2], "deny") != 0 &&
        strcmp(pos[2], "pending") != 0) {
        ctl_print(stderr, _("shimmerctl: the decision is accept, deny or pending, not '%s'\n"),
                  pos[2]);
        return EXIT_USAGE;
    }
    int code = EXIT_OK;
    g_autoptr(GDBusObjectManager) om = NULL;
    g_autoptr(ShimmerDBusServer1) s = open_server(ctl, pos[0], &om, &code);
    if (s == NULL)
        return code;
    guint64 id = g_ascii_strtoull(pos[1], NULL, 10);
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = ctl_call(
        ctl, g_dbus_proxy_get_object_path(G_DBUS_PROXY(s)), "org.shimmervpn.Server1", "AnswerAuth",
        g_variant_new("(tss)", id, pos[2], reason ? reason : ""), NULL, &error);
    if (reply == NULL) {
        g_autofree char *what = g_strdup_printf(_("cannot answer login %s"), pos[1]);
        return ctl_fail(what, error);
    }
    ctl_print(stdout, _("Login %s: %s\n"), pos[1], pos[2]);
    return EXIT_OK;
}

/* ---------------------------------------------------------------- server */

int ctl_cmd_server(Ctl *ctl, int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(Ctl *ctl, int argc, char **argv);
    } commands[] = {
        {"start", cmd_start},     {"stop", cmd_stop}, {"status", cmd_status},
        {"clients", cmd_clients}, {"kick", cmd_kick}, {"requests", cmd_requests},
        {"answer", cmd_answer},
    };
    g_autofree char *usage = g_strdup_printf(_("Usage: shimmerctl %s\n"), server_synopsis);
    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        ctl_print_lines(argc < 1 ? stderr : stdout, usage);
        return argc < 1 ? EXIT_USAGE : EXIT_OK;
    }
    for (gsize i = 0; i < G_N_ELEMENTS(commands); i++)
        if (strcmp(argv[0], commands[i].name) == 0)
            return commands[i].run(ctl, argc - 1, argv + 1);
    ctl_print(stderr, _("shimmerctl: unknown server command '%s'\n"), argv[0]);
    ctl_print_lines(stderr, usage);
    return EXIT_USAGE;
}
