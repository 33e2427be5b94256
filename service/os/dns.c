/* SPDX-License-Identifier: MIT */
#define G_LOG_DOMAIN "shimmerd"

#include "dns.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>

#define RESOLVED_NAME  "org.freedesktop.resolve1"
#define RESOLVED_PATH  "/org/freedesktop/resolve1"
#define RESOLVED_IFACE "org.freedesktop.resolve1.Manager"

/* Both helpers answer at once when they work. The calls are synchronous
 * (the API is), so these bound how long a wedged resolved or a hanging
 * resolvconf hook can hold up the daemon's main loop. */
#define DBUS_TIMEOUT_MS      5000
#define RESOLVCONF_TIMEOUT_S 5

/* resolvconf records are "IFNAME.shimmer", so that a crashed run's records
 * can be told from everyone else's. */
#define RECORD_SUFFIX ".shimmer"

/* Where resolvconf keeps one file per record: Debian's resolvconf in
 * .../interface, openresolv in .../interfaces. */
static const char *const default_record_dirs[] = {
    "/run/resolvconf/interface",
    "/run/resolvconf/interfaces",
    NULL,
};

typedef struct {
    int ifindex;
    char *ifname;
    ShimmerDnsBackend backend;
    /* What was applied, to apply it again when resolved comes back. */
    GVariant *servers; /* a(iay) */
    char **domains;
    gboolean default_route;
} DnsLink;

struct ShimmerDns {
    GDBusConnection *bus; /* NULL: no bus to look for resolved on */
    char *resolvconf;     /* absolute path, NULL when not installed */
    ShimmerDnsBackend backend;
    char **record_dirs;
    GPtrArray *links; /* of DnsLink, oldest first */
    /* Following org.freedesktop.resolve1 (backend resolved): a resolved
     * that restarts has forgotten every link's settings. */
    guint resolved_watch;
    gboolean resolved_gone;
};

static void dns_link_free(gpointer p)
{
    DnsLink *l = p;

    g_free(l->ifname);
    g_clear_pointer(&l->servers, g_variant_unref);
    g_strfreev(l->domains);
    g_free(l);
}

/* A token from the server's push, printable in a message: escaped and
 * bounded, so that a hostile push cannot put control characters or a flood
 * of text into the log. */
static char *quote_token(const char *s)
{
    g_autofree char *esc = g_strescape(s, NULL);

    if (strlen(esc) > 64)
        return g_strdup_printf("\"%.64s...\"", esc);
    return g_strdup_printf("\"%s\"", esc);
}

/* The name goes into a resolvconf record's file name and its command line. */
static gboolean ifname_is_valid(const char *ifname)
{
    size_t n = ifname ? strlen(ifname) : 0;

    if (n == 0 || n >= IFNAMSIZ || ifname[0] == '-' || strcmp(ifname, ".") == 0 ||
        strcmp(ifname, "..") == 0)
        return FALSE;
    for (const char *p = ifname; *p; p++)
        if (*p == '/' || !g_ascii_isgraph(*p))
            return FALSE;
    return TRUE;
}

/* A search or routing domain without its "~": "." (the root, which means
 * every name) or dot-separated labels of letters, digits, '-' and '_',
 * 1 to 63 characters each, an optional final dot. Anything else could smuggle
 * a line into a resolv.conf fragment or is no name resolved would take. */
static gboolean domain_is_valid(const char *d)
{
    size_t n = strlen(d);
    size_t label = 0;

    if (strcmp(d, ".") == 0)
        return TRUE;
    if (n == 0 || n > 253)
        return FALSE;
    for (const char *p = d; *p; p++) {
        if (*p == '.') {
            if (label == 0)
                return FALSE;
            label = 0;
        } else if (g_ascii_isalnum(*p) || *p == '-' || *p == '_') {
            if (++label > 63)
                return FALSE;
        } else {
            return FALSE;
        }
    }
    return TRUE;
}

/* Parses every server (address family and bytes) and checks every domain
 * before anything is changed. Returns the servers as a(iay). */
static GVariant *parse_settings(const char *ifname, const char *const *servers,
                                const char *const *domains, GError **error)
{
    g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE("a(iay)"));

    for (gsize i = 0; servers != NULL && servers[i] != NULL; i++) {
        guint8 buf[16];
        int family = AF_INET;
        gsize len = 4;

        if (inet_pton(AF_INET, servers[i], buf) != 1) {
            family = AF_INET6;
            len = 16;
            if (inet_pton(AF_INET6, servers[i], buf) != 1) {
                g_autofree char *q = quote_token(servers[i]);

                g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                            "DNS server %s for %s is not an IPv4 or IPv6 address", q, ifname);
                return NULL;
            }
        }
        g_variant_builder_add(&b, "(i@ay)", family,
                              g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, buf, len, 1));
    }
    for (gsize i = 0; domains != NULL && domains[i] != NULL; i++) {
        const char *d = domains[i][0] == '~' ? domains[i] + 1 : domains[i];

        /* "." is only meaningful as a routing domain. */
        if (!domain_is_valid(d) || (strcmp(d, ".") == 0 && d == domains[i])) {
            g_autofree char *q = quote_token(domains[i]);

            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "DNS domain %s for %s is not a valid domain name", q, ifname);
            return NULL;
        }
    }
    return g_variant_ref_sink(g_variant_builder_end(&b));
}

/* ---------- systemd-resolved ---------- */

/* Whether resolved is running now. Only a present owner counts: on a
 * systemd machine resolve1 is activatable even when resolved is disabled,
 * and a resolved that is not running does not serve /etc/resolv.conf, so
 * configuring it would have no effect. */
static gboolean resolved_is_present(GDBusConnection *bus)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) ret = g_dbus_connection_call_sync(
        bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
        "NameHasOwner", g_variant_new("(s)", RESOLVED_NAME), G_VARIANT_TYPE("(b)"),
        G_DBUS_CALL_FLAGS_NONE, DBUS_TIMEOUT_MS, NULL, &error);
    gboolean owned = FALSE;

    if (ret == NULL) {
        g_debug("cannot ask the bus for %s: %s", RESOLVED_NAME, error->message);
        return FALSE;
    }
    g_variant_get(ret, "(b)", &owned);
    return owned;
}

/* One call to resolved's Manager. Never starts resolved (see above). An
 * error named TOLERATED counts as success. On failure, ERROR names the
 * method, the link and the backend, and keeps the D-Bus error's domain and
 * code. */
static gboolean resolved_call(ShimmerDns *dns, const char *method, GVariant *args, int ifindex,
                              const char *ifname, const char *tolerated, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(GVariant) ret = g_dbus_connection_call_sync(
        dns->bus, RESOLVED_NAME, RESOLVED_PATH, RESOLVED_IFACE, method, args, NULL,
        G_DBUS_CALL_FLAGS_NO_AUTO_START, DBUS_TIMEOUT_MS, NULL, &local);

    if (ret != NULL)
        return TRUE;
    if (tolerated != NULL) {
        /* Before stripping: an unregistered error's name is in its message. */
        g_autofree char *remote = g_dbus_error_get_remote_error(local);

        if (g_strcmp0(remote, tolerated) == 0) {
            g_debug("systemd-resolved: %s for %s: %s (fine)", method, ifname, remote);
            return TRUE;
        }
    }
    g_dbus_error_strip_remote_error(local);
    if (g_error_matches(local, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER) ||
        g_error_matches(local, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN))
        g_prefix_error(&local, "it is not on the bus any more: ");
    g_propagate_prefixed_error(error, g_steal_pointer(&local),
                               "systemd-resolved: %s for %s (ifindex %d) failed: ", method, ifname,
                               ifindex);
    return FALSE;
}

static gboolean resolved_apply(ShimmerDns *dns, int ifindex, const char *ifname, GVariant *servers,
                               const char *const *domains, gboolean default_route, GError **error)
{
    g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE("a(sb)"));
    gboolean have_root = FALSE;

    for (gsize i = 0; domains != NULL && domains[i] != NULL; i++) {
        gboolean routing = domains[i][0] == '~';
        const char *d = routing ? domains[i] + 1 : domains[i];

        have_root |= strcmp(d, ".") == 0;
        g_variant_builder_add(&b, "(sb)", d, routing);
    }
    /* "~." (on the bus: the root domain, routing only) sends every query
     * without a better-matching link here. */
    if (default_route && !have_root)
        g_variant_builder_add(&b, "(sb)", ".", TRUE);

    if (!resolved_call(dns, "SetLinkDNS", g_variant_new("(i@a(iay))", ifindex, servers), ifindex,
                       ifname, NULL, error))
        return FALSE;
    /* Before systemd 240 there is no SetLinkDefaultRoute, and "~." alone
     * does the job there. */
    if (!resolved_call(dns, "SetLinkDomains", g_variant_new("(ia(sb))", ifindex, &b), ifindex,
                       ifname, NULL, error) ||
        !resolved_call(dns, "SetLinkDefaultRoute", g_variant_new("(ib)", ifindex, default_route),
                       ifindex, ifname, "org.freedesktop.DBus.Error.UnknownMethod", error)) {
        /* Best effort: leave the link as it was rather than half
         * configured. */
        (void)resolved_call(dns, "RevertLink", g_variant_new("(i)", ifindex), ifindex, ifname, NULL,
                            NULL);
        return FALSE;
    }
    return TRUE;
}

static gboolean resolved_revert(ShimmerDns *dns, const DnsLink *l, GError **error)
{
    /* resolved forgets a link's settings when the link goes away. A
     * resolved that left the bus keeps nothing either, but that is still
     * reported: someone stopped it under us. */
    return resolved_call(dns, "RevertLink", g_variant_new("(i)", l->ifindex), l->ifindex, l->ifname,
                         "org.freedesktop.resolve1.NoSuchLink", error);
}

/* ---------- resolvconf ---------- */

static char *find_resolvconf(const char *program)
{
    char *path;

    if (program != NULL) {
        path = g_find_program_in_path(program);
        if (path == NULL)
            g_warning("the resolvconf program %s is not there or not executable: DNS goes "
                      "elsewhere or nowhere",
                      program);
        return path;
    }
    path = g_find_program_in_path("resolvconf");
    /* A daemon's PATH may leave out the sbin directories. */
    if (path == NULL && g_file_test("/usr/sbin/resolvconf", G_FILE_TEST_IS_EXECUTABLE))
        path = g_strdup("/usr/sbin/resolvconf");
    if (path == NULL && g_file_test("/sbin/resolvconf", G_FILE_TEST_IS_EXECUTABLE))
        path = g_strdup("/sbin/resolvconf");
    return path;
}

static void on_communicated(GObject *src, GAsyncResult *res, gpointer user)
{
    GAsyncResult **out = user;

    *out = g_object_ref(res);
}

static gboolean on_timeout(gpointer user)
{
    g_cancellable_cancel(user);
    return G_SOURCE_REMOVE;
}

/* What the program said, fit for one line of a message. */
static char *output_summary(GBytes *out)
{
    gsize len = 0;
    const char *data = out ? g_bytes_get_data(out, &len) : NULL;

    if (len == 0)
        return g_strdup("no output");
    g_autofree char *valid = g_utf8_make_valid(data, MIN(len, 200));
    g_strstrip(valid);
    for (char *p = valid; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    return g_strdup_printf("\"%s\"", valid);
}

/* Runs "resolvconf ACTION RECORD" with INPUT on its stdin, for at most
 * RESOLVCONF_TIMEOUT_S seconds. Synchronous like the API, but on a private
 * main context, so that nothing else of the daemon runs in between. */
static gboolean run_resolvconf(ShimmerDns *dns, const char *action, const char *record,
                               const char *input, GError **error)
{
    const char *argv[] = {dns->resolvconf, action, record, NULL};
    const char *verb = strcmp(action, "-a") == 0 ? "adding" : "removing";
    g_autoptr(GMainContext) ctx = g_main_context_new();
    g_autoptr(GSubprocessLauncher) launcher = NULL;
    g_autoptr(GSubprocess) proc = NULL;
    g_autoptr(GCancellable) cancel = NULL;
    g_autoptr(GAsyncResult) res = NULL;
    g_autoptr(GBytes) in = NULL;
    g_autoptr(GBytes) out = NULL;
    g_autoptr(GError) local = NULL;
    GSource *timer;
    gboolean ok;

    launcher =
        g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                  G_SUBPROCESS_FLAGS_STDERR_MERGE);
    g_subprocess_launcher_set_cwd(launcher, "/");
    proc = g_subprocess_launcher_spawnv(launcher, argv, &local);
    if (proc == NULL) {
        g_propagate_prefixed_error(error, g_steal_pointer(&local),
                                   "resolvconf: %s %s failed: cannot run %s: ", verb, record,
                                   dns->resolvconf);
        return FALSE;
    }

    g_main_context_push_thread_default(ctx);
    cancel = g_cancellable_new();
    timer = g_timeout_source_new_seconds(RESOLVCONF_TIMEOUT_S);
    g_source_set_callback(timer, on_timeout, cancel, NULL);
    g_source_attach(timer, ctx);
    in = g_bytes_new_static(input, strlen(input));
    g_subprocess_communicate_async(proc, in, cancel, on_communicated, &res);
    while (res == NULL)
        g_main_context_iteration(ctx, TRUE);
    ok = g_subprocess_communicate_finish(proc, res, &out, NULL, &local);
    g_source_destroy(timer);
    g_source_unref(timer);
    if (!ok) {
        gboolean timed_out = g_cancellable_is_cancelled(cancel);

        g_subprocess_force_exit(proc);
        (void)g_subprocess_wait(proc, NULL, NULL);
        while (g_main_context_iteration(ctx, FALSE))
            ;
        g_main_context_pop_thread_default(ctx);
        if (timed_out)
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                        "resolvconf: %s %s failed: no answer within %d s", verb, record,
                        RESOLVCONF_TIMEOUT_S);
        else
            g_propagate_prefixed_error(error, g_steal_pointer(&local),
                                       "resolvconf: %s %s failed: ", verb, record);
        return FALSE;
    }
    while (g_main_context_iteration(ctx, FALSE))
        ;
    g_main_context_pop_thread_default(ctx);

    if (!g_subprocess_get_if_exited(proc)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "resolvconf: %s %s failed: killed by signal %d", verb, record,
                    g_subprocess_get_term_sig(proc));
        return FALSE;
    }
    if (g_subprocess_get_exit_status(proc) != 0) {
        g_autofree char *said = output_summary(out);

        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "resolvconf: %s %s failed with exit status %d: %s", verb, record,
                    g_subprocess_get_exit_status(proc), said);
        return FALSE;
    }
    return TRUE;
}

/* resolvconf knows no routing domains and no default route: the servers
 * join everyone else's for all queries, and "~" domains are left out. */
static gboolean resolvconf_apply(ShimmerDns *dns, const char *ifname, const char *const *servers,
                                 const char *const *domains, GError **error)
{
    g_autoptr(GString) conf = g_string_new(NULL);
    g_autofree char *record = g_strconcat(ifname, RECORD_SUFFIX, NULL);
    gboolean search = FALSE;

    for (gsize i = 0; servers[i] != NULL; i++)
        g_string_append_printf(conf, "nameserver %s\n", servers[i]);
    for (gsize i = 0; domains != NULL && domains[i] != NULL; i++) {
        if (domains[i][0] == '~')
            continue;
        g_string_append(conf, search ? " " : "search ");
        g_string_append(conf, domains[i]);
        search = TRUE;
    }
    if (search)
        g_string_append_c(conf, '\n');
    return run_resolvconf(dns, "-a", record, conf->str, error);
}

static gboolean resolvconf_revert(ShimmerDns *dns, const char *ifname, GError **error)
{
    g_autofree char *record = g_strconcat(ifname, RECORD_SUFFIX, NULL);

    return run_resolvconf(dns, "-d", record, "", error);
}

/* ---------- the API ---------- */

static void on_resolved_vanished(GDBusConnection *bus, const char *name, gpointer user)
{
    ShimmerDns *dns = user;
    guint n = 0;

    dns->resolved_gone = TRUE;
    for (guint i = 0; i < dns->links->len; i++)
        n += ((DnsLink *)g_ptr_array_index(dns->links, i))->backend == SHIMMER_DNS_BACKEND_RESOLVED;
    if (n > 0)
        g_warning("systemd-resolved left the bus: the DNS settings of %u tunnel(s) are applied "
                  "again when it is back",
                  n);
}

/* resolved is back (restarted): it knows nothing of our links. */
static void on_resolved_appeared(GDBusConnection *bus, const char *name, const char *owner,
                                 gpointer user)
{
    ShimmerDns *dns = user;

    if (!dns->resolved_gone)
        return; /* the first sighting, at start */
    dns->resolved_gone = FALSE;
    for (guint i = 0; i < dns->links->len; i++) {
        DnsLink *l = g_ptr_array_index(dns->links, i);
        g_autoptr(GError) error = NULL;

        if (l->backend != SHIMMER_DNS_BACKEND_RESOLVED)
            continue;
        if (resolved_apply(dns, l->ifindex, l->ifname, l->servers, (const char *const *)l->domains,
                           l->default_route, &error))
            g_message("systemd-resolved is back: DNS settings of %s applied again", l->ifname);
        else
            g_warning("%s", error->message);
    }
}

ShimmerDns *shimmer_dns_new(GDBusConnection *bus, const char *resolvconf)
{
    ShimmerDns *dns = g_new0(ShimmerDns, 1);

    if (bus != NULL) {
        dns->bus = g_object_ref(bus);
    } else {
        g_autoptr(GError) error = NULL;

        dns->bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
        if (dns->bus == NULL)
            g_debug("no system bus, so no systemd-resolved: %s", error->message);
    }
    /* Looked for even when resolved is used: cleanup_stale needs it for
     * the records of an earlier run without resolved. */
    dns->resolvconf = find_resolvconf(resolvconf);
    dns->record_dirs = g_strdupv((char **)default_record_dirs);
    dns->links = g_ptr_array_new_with_free_func(dns_link_free);
    /* A resolvconf that exits before reading its input makes our write
     * fail; GSocket's class setup ignores SIGPIPE so that this is EPIPE and
     * not the end of the daemon. GDBus has done it already; make sure. */
    g_type_class_unref(g_type_class_ref(G_TYPE_SOCKET));

    if (dns->bus != NULL && resolved_is_present(dns->bus)) {
        dns->backend = SHIMMER_DNS_BACKEND_RESOLVED;
        /* Callbacks come on the thread-default main context of now. */
        dns->resolved_watch =
            g_bus_watch_name_on_connection(dns->bus, RESOLVED_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                           on_resolved_appeared, on_resolved_vanished, dns, NULL);
    } else if (dns->resolvconf != NULL)
        dns->backend = SHIMMER_DNS_BACKEND_RESOLVCONF;
    else
        dns->backend = SHIMMER_DNS_BACKEND_NONE;
    return dns;
}

void shimmer_dns_free(ShimmerDns *dns)
{
    if (dns == NULL)
        return;
    /* Undoing is shimmer_dns_revert_all()'s job: freeing never touches
     * the system, so a test or an error path can drop the object freely. */
    if (dns->resolved_watch != 0)
        g_bus_unwatch_name(dns->resolved_watch);
    g_ptr_array_unref(dns->links);
    g_strfreev(dns->record_dirs);
    g_free(dns->resolvconf);
    g_clear_object(&dns->bus);
    g_free(dns);
}

ShimmerDnsBackend shimmer_dns_get_backend(ShimmerDns *dns)
{
    return dns->backend;
}

const char *shimmer_dns_backend_name(ShimmerDnsBackend backend)
{
    switch (backend) {
    case SHIMMER_DNS_BACKEND_RESOLVED:
        return "resolved";
    case SHIMMER_DNS_BACKEND_RESOLVCONF:
        return "resolvconf";
    case SHIMMER_DNS_BACKEND_NONE:
        break;
    }
    return "none";
}

void shimmer_dns_set_resolvconf_dir(ShimmerDns *dns, const char *dir)
{
    const char *dirs[] = {dir, NULL};

    g_strfreev(dns->record_dirs);
    dns->record_dirs = g_strdupv(dir != NULL ? (char **)dirs : (char **)default_record_dirs);
}

static DnsLink *find_link(ShimmerDns *dns, int ifindex, const char *ifname, guint *index)
{
    for (guint i = 0; i < dns->links->len; i++) {
        DnsLink *l = g_ptr_array_index(dns->links, i);

        if ((ifindex > 0 && l->ifindex == ifindex) ||
            (ifname != NULL && strcmp(l->ifname, ifname) == 0)) {
            if (index != NULL)
                *index = i;
            return l;
        }
    }
    return NULL;
}

static gboolean revert_link(ShimmerDns *dns, const DnsLink *l, GError **error)
{
    switch (l->backend) {
    case SHIMMER_DNS_BACKEND_RESOLVED:
        return resolved_revert(dns, l, error);
    case SHIMMER_DNS_BACKEND_RESOLVCONF:
        return resolvconf_revert(dns, l->ifname, error);
    case SHIMMER_DNS_BACKEND_NONE:
        break;
    }
    return TRUE;
}

/* Forgets the link first: whatever the undoing says, there is nothing a
 * second attempt would do better. */
static gboolean forget_and_revert(ShimmerDns *dns, guint index, GError **error)
{
    DnsLink *l = g_ptr_array_steal_index(dns->links, index);
    gboolean ok = revert_link(dns, l, error);

    if (ok)
        g_debug("DNS settings of %s undone (%s)", l->ifname, shimmer_dns_backend_name(l->backend));
    dns_link_free(l);
    return ok;
}

gboolean shimmer_dns_apply(ShimmerDns *dns, int ifindex, const char *ifname,
                           const char *const *servers, const char *const *domains,
                           gboolean default_route, GError **error)
{
    g_autoptr(GVariant) parsed = NULL;
    guint index;
    gboolean ok = FALSE;

    g_return_val_if_fail(dns != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    if (!ifname_is_valid(ifname) || ifindex <= 0) {
        g_autofree char *q = quote_token(ifname ? ifname : "");

        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "cannot set DNS for the interface %s (ifindex %d): not a valid interface", q,
                    ifindex);
        return FALSE;
    }
    parsed = parse_settings(ifname, servers, domains, error);
    if (parsed == NULL)
        return FALSE;

    /* Settings from an earlier apply on this link (a reconnect) go first
     * when they were made elsewhere; resolved and resolvconf replace their
     * own record in place. */
    DnsLink *old = find_link(dns, ifindex, ifname, &index);
    if (old != NULL && (old->ifindex != ifindex || strcmp(old->ifname, ifname) != 0 ||
                        g_variant_n_children(parsed) == 0)) {
        g_autoptr(GError) local = NULL;

        if (!forget_and_revert(dns, index, &local))
            g_warning("%s", local->message);
        old = NULL;
    }
    /* Without a server there is nothing to send queries to. */
    if (g_variant_n_children(parsed) == 0)
        return TRUE;

    switch (dns->backend) {
    case SHIMMER_DNS_BACKEND_RESOLVED:
        ok = resolved_apply(dns, ifindex, ifname, parsed, domains, default_route, error);
        break;
    case SHIMMER_DNS_BACKEND_RESOLVCONF:
        ok = resolvconf_apply(dns, ifname, servers, domains, error);
        break;
    case SHIMMER_DNS_BACKEND_NONE:
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                    "DNS servers for %s not set: systemd-resolved is not on the bus and "
                    "resolvconf is not installed",
                    ifname);
        break;
    }
    /* After a failure an earlier apply's record stays: whatever is left
     * of it is still undone by revert, which does no harm when nothing is. */
    if (!ok)
        return FALSE;
    if (old == NULL) {
        old = g_new0(DnsLink, 1);
        old->ifindex = ifindex;
        old->ifname = g_strdup(ifname);
        old->backend = dns->backend;
        g_ptr_array_add(dns->links, old);
    }
    g_clear_pointer(&old->servers, g_variant_unref);
    g_strfreev(old->domains);
    old->servers = g_variant_ref(parsed);
    old->domains = g_strdupv((char **)domains);
    old->default_route = default_route;
    g_debug("DNS for %s through %s: %" G_GSIZE_FORMAT " server(s), %u domain(s)%s", ifname,
            shimmer_dns_backend_name(dns->backend), g_variant_n_children(parsed),
            domains ? g_strv_length((char **)domains) : 0, default_route ? ", all queries" : "");
    return TRUE;
}

gboolean shimmer_dns_revert(ShimmerDns *dns, int ifindex, const char *ifname, GError **error)
{
    guint index;

    g_return_val_if_fail(dns != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    if (find_link(dns, ifindex, ifname, &index) == NULL)
        return TRUE;
    return forget_and_revert(dns, index, error);
}

void shimmer_dns_revert_all(ShimmerDns *dns)
{
    g_return_if_fail(dns != NULL);

    /* Newest first, the reverse of how they were made. */
    while (dns->links->len > 0) {
        g_autoptr(GError) error = NULL;

        if (!forget_and_revert(dns, dns->links->len - 1, &error))
            g_warning("%s", error->message);
    }
}

void shimmer_dns_cleanup_stale(ShimmerDns *dns)
{
    g_return_if_fail(dns != NULL);

    /* resolved needs nothing: it drops a link's settings with the link, and
     * a crashed run's tun went away with its file descriptor. */
    for (char **dir = dns->record_dirs; *dir != NULL; dir++) {
        g_autoptr(GDir) d = g_dir_open(*dir, 0, NULL);
        g_autoptr(GPtrArray) stale = g_ptr_array_new_with_free_func(g_free);
        const char *name;

        if (d == NULL)
            continue;
        while ((name = g_dir_read_name(d)) != NULL) {
            g_autofree char *ifname = NULL;

            if (!g_str_has_suffix(name, RECORD_SUFFIX))
                continue;
            ifname = g_strndup(name, strlen(name) - strlen(RECORD_SUFFIX));
            if (!ifname_is_valid(ifname) || if_nametoindex(ifname) != 0)
                continue;
            g_ptr_array_add(stale, g_steal_pointer(&ifname));
        }
        for (guint i = 0; i < stale->len; i++) {
            const char *ifname = g_ptr_array_index(stale, i);
            g_autoptr(GError) error = NULL;

            if (dns->resolvconf == NULL)
                g_warning("resolvconf record %s%s in %s is left from an earlier run, but "
                          "resolvconf is not installed to remove it",
                          ifname, RECORD_SUFFIX, *dir);
            else if (!resolvconf_revert(dns, ifname, &error))
                g_warning("%s", error->message);
            else
                g_message("removed the stale resolvconf record %s%s", ifname, RECORD_SUFFIX);
        }
    }
}
