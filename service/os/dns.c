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

/* Both helpers answer at once when they work. Nothing here waits for
 * them: every change runs asynchronously on the main loop, one after the
 * other; these bound how long a wedged resolved or a hanging resolvconf
 * hook can hold up the changes queued behind it. */
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
    char *dnssec, *dns_over_tls; /* ShimmerDnsExtra; NULL: not set */
} DnsLink;

struct ShimmerDns {
    gint ref;             /* the owner's, and one per call under way */
    GDBusConnection *bus; /* NULL: no bus to look for resolved on */
    char *resolvconf;     /* absolute path, NULL when not installed */
    ShimmerDnsBackend backend;
    char **record_dirs;
    GPtrArray *links; /* of DnsLink, oldest first */
    /* Following org.freedesktop.resolve1 (backend resolved): a resolved
     * that restarts has forgotten every link's settings. */
    guint resolved_watch;
    gboolean resolved_gone;
    /* Changes waiting (GTask*), and the one under way. */
    GQueue queue;
    GTask *current;
};

static void dns_link_free(gpointer p)
{
    DnsLink *l = p;

    g_free(l->ifname);
    g_clear_pointer(&l->servers, g_variant_unref);
    g_strfreev(l->domains);
    g_free(l->dnssec);
    g_free(l->dns_over_tls);
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

/* ---------- the queue of changes ---------- */

/* Every change is a GTask with an Op as its data. They run one at a time,
 * in the order asked for, so an apply and the revert after it can never
 * pass each other; each step is an asynchronous call whose answer comes
 * back to op_step() on the main loop, which moves the change under way
 * (dns->current) on. A change itself is never cancelled (a revert must
 * happen even when its caller went away): a cancelled GCancellable only
 * turns what the caller is told into G_IO_ERROR_CANCELLED. */

typedef enum {
    OP_APPLY,
    OP_REVERT,
    OP_REVERT_ALL,
    OP_CLEANUP,
} OpKind;

/* Steps of an apply. */
enum {
    APPLY_START,
    APPLY_OLD_UNDONE,
    APPLY_SET,
    APPLY_DNS_SET,
    APPLY_DOMAINS_SET,
    APPLY_DEFAULT_ROUTE_SET,
    APPLY_DNSSEC_SET,
    APPLY_DOT_SET,
    APPLY_BACKED_OUT,
    APPLY_RESOLVCONF_DONE,
};

typedef struct {
    OpKind kind;
    guint step;
    int ifindex;
    char *ifname;
    GVariant *servers;   /* a(iay), checked */
    char **server_texts; /* the same, as written (for resolvconf) */
    char **domains;
    gboolean default_route;
    char *dnssec, *dns_over_tls;
    gboolean quiet;  /* a re-apply after resolved came back: logged here */
    DnsLink *link;   /* a link taken out of the table while it is undone */
    GPtrArray *todo; /* revert-all: DnsLink*; cleanup: ifnames */
    GError *error;   /* the failure an apply is backing out of */
} Op;

static void op_free(gpointer data)
{
    Op *op = data;

    g_free(op->ifname);
    g_clear_pointer(&op->servers, g_variant_unref);
    g_strfreev(op->server_texts);
    g_strfreev(op->domains);
    g_free(op->dnssec);
    g_free(op->dns_over_tls);
    if (op->link != NULL)
        dns_link_free(op->link);
    g_clear_pointer(&op->todo, g_ptr_array_unref);
    g_clear_error(&op->error);
    g_free(op);
}

static ShimmerDns *dns_ref(ShimmerDns *dns)
{
    dns->ref++;
    return dns;
}

static void dns_unref(ShimmerDns *dns);

static void op_step(ShimmerDns *dns, GError *error);

/* Ends the change under way with ERROR (taken; NULL: success) and starts
 * the next one. */
static void op_done(ShimmerDns *dns, GError *error)
{
    GTask *task = g_steal_pointer(&dns->current);

    if (error != NULL)
        g_task_return_error(task, error);
    else
        g_task_return_boolean(task, TRUE);
    g_object_unref(task);
    while (dns->current == NULL && !g_queue_is_empty(&dns->queue)) {
        dns->current = g_queue_pop_head(&dns->queue);
        op_step(dns, NULL);
    }
}

static void enqueue(ShimmerDns *dns, GTask *task)
{
    g_queue_push_tail(&dns->queue, task);
    if (dns->current == NULL) {
        dns->current = g_queue_pop_head(&dns->queue);
        op_step(dns, NULL);
    }
}

static GTask *new_task(OpKind kind, gpointer tag, GCancellable *cancellable,
                       GAsyncReadyCallback callback, gpointer user_data, Op **op_out)
{
    GTask *task = g_task_new(NULL, cancellable, callback, user_data);
    Op *op = g_new0(Op, 1);

    op->kind = kind;
    g_task_set_source_tag(task, tag);
    g_task_set_task_data(task, op, op_free);
    *op_out = op;
    return task;
}

/* ---------- asynchronous calls: resolved ---------- */

typedef struct {
    ShimmerDns *dns; /* a reference */
    const char *method;
    char *ifname;
    int ifindex;
    const char *tolerated;
} Call;

static void on_call_reply(GObject *source, GAsyncResult *result, gpointer user)
{
    Call *c = user;
    g_autoptr(GError) local = NULL;
    g_autoptr(GVariant) ret =
        g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &local);
    GError *error = NULL;

    if (ret == NULL) {
        /* Before stripping: an unregistered error's name is in its message. */
        g_autofree char *remote = g_dbus_error_get_remote_error(local);

        if (c->tolerated != NULL && g_strcmp0(remote, c->tolerated) == 0) {
            g_debug("systemd-resolved: %s for %s: %s (fine)", c->method, c->ifname, remote);
        } else {
            g_dbus_error_strip_remote_error(local);
            if (g_error_matches(local, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER) ||
                g_error_matches(local, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN))
                g_prefix_error(&local, "it is not on the bus any more: ");
            g_propagate_prefixed_error(&error, g_steal_pointer(&local),
                                       "systemd-resolved: %s for %s (ifindex %d) failed: ",
                                       c->method, c->ifname, c->ifindex);
        }
    }
    op_step(c->dns, error);
    dns_unref(c->dns);
    g_free(c->ifname);
    g_free(c);
}

/* One call to resolved's Manager for the change under way; never starts
 * resolved (see resolved_is_present()). An error named TOLERATED (a
 * static string) counts as success. */
static void resolved_call(ShimmerDns *dns, const char *method, GVariant *args, int ifindex,
                          const char *ifname, const char *tolerated)
{
    Call *c = g_new0(Call, 1);

    c->dns = dns_ref(dns);
    c->method = method;
    c->ifname = g_strdup(ifname);
    c->ifindex = ifindex;
    c->tolerated = tolerated;
    g_dbus_connection_call(dns->bus, RESOLVED_NAME, RESOLVED_PATH, RESOLVED_IFACE, method, args,
                           NULL, G_DBUS_CALL_FLAGS_NO_AUTO_START, DBUS_TIMEOUT_MS, NULL,
                           on_call_reply, c);
}

static GVariant *resolved_domains(const char *const *domains, gboolean default_route)
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
    return g_variant_builder_end(&b);
}

/* ---------- asynchronous calls: resolvconf ---------- */

typedef struct {
    ShimmerDns *dns; /* a reference */
    GSubprocess *proc;
    GCancellable *cancel;
    guint timer;
    char *verb;
    char *record;
} Run;

static gboolean on_run_timeout(gpointer user)
{
    Run *r = user;

    r->timer = 0;
    g_cancellable_cancel(r->cancel);
    return G_SOURCE_REMOVE;
}

static void on_run_waited(GObject *source, GAsyncResult *result, gpointer user)
{
    /* A killed resolvconf is reaped here; nothing else to do. */
    g_subprocess_wait_finish(G_SUBPROCESS(source), result, NULL);
}

static void on_run_communicated(GObject *source, GAsyncResult *result, gpointer user)
{
    Run *r = user;
    g_autoptr(GBytes) out = NULL;
    g_autoptr(GError) local = NULL;
    GError *error = NULL;

    if (r->timer != 0)
        g_source_remove(r->timer);
    if (!g_subprocess_communicate_finish(r->proc, result, &out, NULL, &local)) {
        gboolean timed_out = g_cancellable_is_cancelled(r->cancel);

        g_subprocess_force_exit(r->proc);
        g_subprocess_wait_async(r->proc, NULL, on_run_waited, NULL);
        if (timed_out)
            g_set_error(&error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                        "resolvconf: %s %s failed: no answer within %d s", r->verb, r->record,
                        RESOLVCONF_TIMEOUT_S);
        else
            g_propagate_prefixed_error(&error, g_steal_pointer(&local),
                                       "resolvconf: %s %s failed: ", r->verb, r->record);
    } else if (!g_subprocess_get_if_exited(r->proc)) {
        g_set_error(&error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "resolvconf: %s %s failed: killed by signal %d", r->verb, r->record,
                    g_subprocess_get_term_sig(r->proc));
    } else if (g_subprocess_get_exit_status(r->proc) != 0) {
        g_autofree char *said = output_summary(out);

        g_set_error(&error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "resolvconf: %s %s failed with exit status %d: %s", r->verb, r->record,
                    g_subprocess_get_exit_status(r->proc), said);
    }
    op_step(r->dns, error);
    dns_unref(r->dns);
    g_object_unref(r->proc);
    g_object_unref(r->cancel);
    g_free(r->verb);
    g_free(r->record);
    g_free(r);
}

/* Runs "resolvconf ACTION RECORD" with INPUT on its stdin for the change
 * under way, for at most RESOLVCONF_TIMEOUT_S seconds. */
static void run_resolvconf(ShimmerDns *dns, const char *action, const char *record,
                           const char *input)
{
    const char *argv[] = {dns->resolvconf, action, record, NULL};
    const char *verb = strcmp(action, "-a") == 0 ? "adding" : "removing";
    g_autoptr(GSubprocessLauncher) launcher =
        g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                  G_SUBPROCESS_FLAGS_STDERR_MERGE);
    g_autoptr(GError) local = NULL;

    g_subprocess_launcher_set_cwd(launcher, "/");
    GSubprocess *proc = g_subprocess_launcher_spawnv(launcher, argv, &local);
    if (proc == NULL) {
        GError *error = NULL;

        g_propagate_prefixed_error(&error, g_steal_pointer(&local),
                                   "resolvconf: %s %s failed: cannot run %s: ", verb, record,
                                   dns->resolvconf);
        op_step(dns, error);
        return;
    }
    Run *r = g_new0(Run, 1);
    r->dns = dns_ref(dns);
    r->proc = proc;
    r->cancel = g_cancellable_new();
    r->verb = g_strdup(verb);
    r->record = g_strdup(record);
    r->timer = g_timeout_add_seconds(RESOLVCONF_TIMEOUT_S, on_run_timeout, r);
    g_autoptr(GBytes) in = g_bytes_new(input, strlen(input));
    g_subprocess_communicate_async(proc, in, r->cancel, on_run_communicated, r);
}

/* resolvconf knows no routing domains and no default route: the servers
 * join everyone else's for all queries, and "~" domains are left out. */
static void resolvconf_apply(ShimmerDns *dns, const char *ifname, const char *const *servers,
                             const char *const *domains)
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
    run_resolvconf(dns, "-a", record, conf->str);
}

static void resolvconf_revert(ShimmerDns *dns, const char *ifname)
{
    g_autofree char *record = g_strconcat(ifname, RECORD_SUFFIX, NULL);

    run_resolvconf(dns, "-d", record, "");
}

/* Undoes link L for the change under way. */
static void revert_link(ShimmerDns *dns, const DnsLink *l)
{
    switch (l->backend) {
    case SHIMMER_DNS_BACKEND_RESOLVED:
        /* resolved forgets a link's settings when the link goes away. A
         * resolved that left the bus keeps nothing either, but that is
         * still reported: someone stopped it under us. */
        resolved_call(dns, "RevertLink", g_variant_new("(i)", l->ifindex), l->ifindex, l->ifname,
                      "org.freedesktop.resolve1.NoSuchLink");
        return;
    case SHIMMER_DNS_BACKEND_RESOLVCONF:
        resolvconf_revert(dns, l->ifname);
        return;
    case SHIMMER_DNS_BACKEND_NONE:
        break;
    }
    op_step(dns, NULL);
}

/* ---------- the changes, step by step ---------- */

static void remember_link(ShimmerDns *dns, Op *op)
{
    DnsLink *l = find_link(dns, op->ifindex, op->ifname, NULL);

    if (l == NULL) {
        l = g_new0(DnsLink, 1);
        l->ifindex = op->ifindex;
        l->ifname = g_strdup(op->ifname);
        l->backend = dns->backend;
        g_ptr_array_add(dns->links, l);
    }
    g_clear_pointer(&l->servers, g_variant_unref);
    g_strfreev(l->domains);
    l->servers = g_variant_ref(op->servers);
    l->domains = g_strdupv(op->domains);
    l->default_route = op->default_route;
    g_free(l->dnssec);
    g_free(l->dns_over_tls);
    l->dnssec = g_strdup(op->dnssec);
    l->dns_over_tls = g_strdup(op->dns_over_tls);
    g_debug("DNS for %s through %s: %" G_GSIZE_FORMAT " server(s), %u domain(s)%s", op->ifname,
            shimmer_dns_backend_name(dns->backend), g_variant_n_children(op->servers),
            op->domains ? g_strv_length(op->domains) : 0, op->default_route ? ", all queries" : "");
}

static void apply_step(ShimmerDns *dns, Op *op, GError *error)
{
    switch (op->step) {
    case APPLY_START: {
        /* Settings from an earlier apply on this link (a reconnect) go
         * first when they were made elsewhere; resolved and resolvconf
         * replace their own record in place. */
        guint index;
        DnsLink *old = find_link(dns, op->ifindex, op->ifname, &index);
        gsize n = g_variant_n_children(op->servers);

        if (old != NULL &&
            (old->ifindex != op->ifindex || strcmp(old->ifname, op->ifname) != 0 || n == 0)) {
            op->link = g_ptr_array_steal_index(dns->links, index);
            op->step = APPLY_OLD_UNDONE;
            revert_link(dns, op->link);
            return;
        }
        op->step = APPLY_SET;
        apply_step(dns, op, NULL);
        return;
    }
    case APPLY_OLD_UNDONE:
        if (error != NULL)
            g_warning("%s", error->message);
        g_clear_error(&error);
        g_clear_pointer(&op->link, dns_link_free);
        op->step = APPLY_SET;
        apply_step(dns, op, NULL);
        return;
    case APPLY_SET:
        /* Without a server there is nothing to send queries to. */
        if (g_variant_n_children(op->servers) == 0) {
            op_done(dns, NULL);
            return;
        }
        switch (dns->backend) {
        case SHIMMER_DNS_BACKEND_RESOLVED:
            op->step = APPLY_DNS_SET;
            resolved_call(dns, "SetLinkDNS",
                          g_variant_new("(i@a(iay))", op->ifindex, g_variant_ref(op->servers)),
                          op->ifindex, op->ifname, NULL);
            return;
        case SHIMMER_DNS_BACKEND_RESOLVCONF:
            op->step = APPLY_RESOLVCONF_DONE;
            resolvconf_apply(dns, op->ifname, (const char *const *)op->server_texts,
                             (const char *const *)op->domains);
            return;
        case SHIMMER_DNS_BACKEND_NONE:
            break;
        }
        op_done(dns, g_error_new(G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                                 "DNS servers for %s not set: systemd-resolved is not on the bus "
                                 "and resolvconf is not installed",
                                 op->ifname));
        return;
    case APPLY_DNS_SET:
        if (error != NULL) {
            op_done(dns, error);
            return;
        }
        op->step = APPLY_DOMAINS_SET;
        resolved_call(
            dns, "SetLinkDomains",
            g_variant_new("(i@a(sb))", op->ifindex,
                          resolved_domains((const char *const *)op->domains, op->default_route)),
            op->ifindex, op->ifname, NULL);
        return;
    case APPLY_DOMAINS_SET:
        if (error == NULL) {
            /* Before systemd 240 there is no SetLinkDefaultRoute, and "~."
             * alone does the job there. */
            op->step = APPLY_DEFAULT_ROUTE_SET;
            resolved_call(dns, "SetLinkDefaultRoute",
                          g_variant_new("(ib)", op->ifindex, op->default_route), op->ifindex,
                          op->ifname, "org.freedesktop.DBus.Error.UnknownMethod");
            return;
        }
        G_GNUC_FALLTHROUGH;
    case APPLY_DEFAULT_ROUTE_SET:
        if (error != NULL) {
            /* Best effort: leave the link as it was rather than half
             * configured. */
            op->error = error;
            op->step = APPLY_BACKED_OUT;
            resolved_call(dns, "RevertLink", g_variant_new("(i)", op->ifindex), op->ifindex,
                          op->ifname, NULL);
            return;
        }
        /* The link works now; what follows is extra and only warns. */
        remember_link(dns, op);
        if (op->dnssec != NULL) {
            op->step = APPLY_DNSSEC_SET;
            resolved_call(dns, "SetLinkDNSSEC", g_variant_new("(is)", op->ifindex, op->dnssec),
                          op->ifindex, op->ifname, "org.freedesktop.DBus.Error.UnknownMethod");
            return;
        }
        G_GNUC_FALLTHROUGH;
    case APPLY_DNSSEC_SET:
        if (error != NULL)
            g_warning("%s", error->message);
        g_clear_error(&error);
        if (op->dns_over_tls != NULL) {
            op->step = APPLY_DOT_SET;
            resolved_call(dns, "SetLinkDNSOverTLS",
                          g_variant_new("(is)", op->ifindex, op->dns_over_tls), op->ifindex,
                          op->ifname, "org.freedesktop.DBus.Error.UnknownMethod");
            return;
        }
        G_GNUC_FALLTHROUGH;
    case APPLY_DOT_SET:
        if (error != NULL)
            g_warning("%s", error->message);
        g_clear_error(&error);
        op_done(dns, NULL);
        return;
    case APPLY_BACKED_OUT:
        g_clear_error(&error);
        /* After a failure an earlier apply's record stays: whatever is
         * left of it is still undone by revert, which does no harm when
         * nothing is. */
        op_done(dns, g_steal_pointer(&op->error));
        return;
    case APPLY_RESOLVCONF_DONE:
        if (error == NULL)
            remember_link(dns, op);
        op_done(dns, error);
        return;
    }
    op_done(dns, error);
}

static void revert_step(ShimmerDns *dns, Op *op, GError *error)
{
    if (op->step == 0) {
        guint index;

        if (find_link(dns, op->ifindex, op->ifname, &index) == NULL) {
            op_done(dns, NULL);
            return;
        }
        /* Forgotten first: whatever the undoing says, there is nothing a
         * second attempt would do better. */
        op->link = g_ptr_array_steal_index(dns->links, index);
        op->step = 1;
        revert_link(dns, op->link);
        return;
    }
    if (error == NULL)
        g_debug("DNS settings of %s undone (%s)", op->link->ifname,
                shimmer_dns_backend_name(op->link->backend));
    op_done(dns, error);
}

static void revert_all_step(ShimmerDns *dns, Op *op, GError *error)
{
    if (op->step == 0) {
        /* Newest first, the reverse of how they were made. */
        op->todo = g_ptr_array_new_with_free_func(dns_link_free);
        while (dns->links->len > 0)
            g_ptr_array_add(op->todo, g_ptr_array_steal_index(dns->links, dns->links->len - 1));
        op->step = 1;
    } else if (error != NULL) {
        g_warning("%s", error->message);
        g_clear_error(&error);
    }
    g_clear_pointer(&op->link, dns_link_free);
    if (op->todo->len == 0) {
        op_done(dns, NULL);
        return;
    }
    op->link = g_ptr_array_steal_index(op->todo, 0);
    revert_link(dns, op->link);
}

/* The resolvconf records "*.shimmer" of interfaces that no longer exist. */
static GPtrArray *stale_records(ShimmerDns *dns)
{
    GPtrArray *stale = g_ptr_array_new_with_free_func(g_free);

    for (char **dir = dns->record_dirs; *dir != NULL; dir++) {
        g_autoptr(GDir) d = g_dir_open(*dir, 0, NULL);
        const char *name;

        while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
            g_autofree char *ifname = NULL;

            if (!g_str_has_suffix(name, RECORD_SUFFIX))
                continue;
            ifname = g_strndup(name, strlen(name) - strlen(RECORD_SUFFIX));
            if (!ifname_is_valid(ifname) || if_nametoindex(ifname) != 0)
                continue;
            if (dns->resolvconf == NULL)
                g_warning("resolvconf record %s%s in %s is left from an earlier run, but "
                          "resolvconf is not installed to remove it",
                          ifname, RECORD_SUFFIX, *dir);
            else if (!g_ptr_array_find_with_equal_func(stale, ifname, g_str_equal, NULL))
                g_ptr_array_add(stale, g_steal_pointer(&ifname));
        }
    }
    return stale;
}

static void cleanup_step(ShimmerDns *dns, Op *op, GError *error)
{
    if (op->step == 0) {
        /* resolved needs nothing: it drops a link's settings with the link,
         * and a crashed run's tun went away with its file descriptor. */
        op->todo = stale_records(dns);
        op->step = 1;
    } else if (error != NULL) {
        g_warning("%s", error->message);
        g_clear_error(&error);
    } else {
        g_message("removed the stale resolvconf record %s%s", op->ifname, RECORD_SUFFIX);
    }
    g_clear_pointer(&op->ifname, g_free);
    if (op->todo->len == 0) {
        op_done(dns, NULL);
        return;
    }
    op->ifname = g_ptr_array_steal_index(op->todo, 0);
    resolvconf_revert(dns, op->ifname);
}

/* Moves the change under way on, with the result of its last step. */
static void op_step(ShimmerDns *dns, GError *error)
{
    Op *op = g_task_get_task_data(dns->current);

    switch (op->kind) {
    case OP_APPLY:
        apply_step(dns, op, error);
        return;
    case OP_REVERT:
        revert_step(dns, op, error);
        return;
    case OP_REVERT_ALL:
        revert_all_step(dns, op, error);
        return;
    case OP_CLEANUP:
        cleanup_step(dns, op, error);
        return;
    }
}

/* ---------- the API ---------- */

static void on_reapplied(GObject *source, GAsyncResult *result, gpointer user)
{
    g_autofree char *ifname = user;
    g_autoptr(GError) error = NULL;

    if (g_task_propagate_boolean(G_TASK(result), &error))
        g_message("systemd-resolved is back: DNS settings of %s applied again", ifname);
    else
        g_warning("%s", error->message);
}

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

static GTask *apply_task(ShimmerDns *dns, int ifindex, const char *ifname, GVariant *servers,
                         const char *const *server_texts, const char *const *domains,
                         gboolean default_route, const ShimmerDnsExtra *extra,
                         GCancellable *cancellable, GAsyncReadyCallback callback,
                         gpointer user_data);

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

        if (l->backend != SHIMMER_DNS_BACKEND_RESOLVED)
            continue;
        ShimmerDnsExtra extra = {.dnssec = l->dnssec, .dns_over_tls = l->dns_over_tls};
        enqueue(dns, apply_task(dns, l->ifindex, l->ifname, l->servers, NULL,
                                (const char *const *)l->domains, l->default_route, &extra, NULL,
                                on_reapplied, g_strdup(l->ifname)));
    }
}

ShimmerDns *shimmer_dns_new(GDBusConnection *bus, const char *resolvconf)
{
    ShimmerDns *dns = g_new0(ShimmerDns, 1);

    dns->ref = 1;
    g_queue_init(&dns->queue);
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

void shimmer_dns_set_bus(ShimmerDns *dns, GDBusConnection *bus)
{
    if (bus == dns->bus)
        return;
    g_set_object(&dns->bus, bus);
    if (dns->resolved_watch == 0)
        return;
    /* The old connection is gone, and resolved with it as far as we could
     * tell: a new watch says at once whether it is still there, and the
     * settings go to it again if it had seemed to leave. */
    g_bus_unwatch_name(dns->resolved_watch);
    dns->resolved_watch =
        g_bus_watch_name_on_connection(dns->bus, RESOLVED_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                       on_resolved_appeared, on_resolved_vanished, dns, NULL);
}

static void dns_unref(ShimmerDns *dns)
{
    if (--dns->ref > 0)
        return;
    g_ptr_array_unref(dns->links);
    g_strfreev(dns->record_dirs);
    g_free(dns->resolvconf);
    g_clear_object(&dns->bus);
    g_free(dns);
}

void shimmer_dns_free(ShimmerDns *dns)
{
    if (dns == NULL)
        return;
    /* Undoing is shimmer_dns_revert_all()'s job: freeing never touches
     * the system, so a test or an error path can drop the object freely.
     * Changes still queued are dropped; one under way finishes first (its
     * call holds a reference). */
    if (dns->resolved_watch != 0)
        g_bus_unwatch_name(dns->resolved_watch);
    dns->resolved_watch = 0;
    GTask *task;
    while ((task = g_queue_pop_head(&dns->queue)) != NULL) {
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "the DNS helper was freed");
        g_object_unref(task);
    }
    dns_unref(dns);
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

static GTask *apply_task(ShimmerDns *dns, int ifindex, const char *ifname, GVariant *servers,
                         const char *const *server_texts, const char *const *domains,
                         gboolean default_route, const ShimmerDnsExtra *extra,
                         GCancellable *cancellable, GAsyncReadyCallback callback,
                         gpointer user_data)
{
    Op *op;
    GTask *task = new_task(OP_APPLY, shimmer_dns_apply, cancellable, callback, user_data, &op);

    op->ifindex = ifindex;
    op->ifname = g_strdup(ifname);
    op->servers = g_variant_ref(servers);
    op->server_texts = g_strdupv((char **)server_texts);
    op->domains = g_strdupv((char **)domains);
    op->default_route = default_route;
    if (extra != NULL) {
        op->dnssec = g_strdup(extra->dnssec);
        op->dns_over_tls = g_strdup(extra->dns_over_tls);
    }
    return task;
}

gboolean shimmer_dns_backend_takes_extra(ShimmerDnsBackend backend)
{
    return backend == SHIMMER_DNS_BACKEND_RESOLVED;
}

static gboolean one_of(const char *v, const char *const *allowed)
{
    return v == NULL || g_strv_contains(allowed, v);
}

void shimmer_dns_apply(ShimmerDns *dns, int ifindex, const char *ifname, const char *const *servers,
                       const char *const *domains, gboolean default_route,
                       GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
    shimmer_dns_apply_full(dns, ifindex, ifname, servers, domains, default_route, NULL, cancellable,
                           callback, user_data);
}

void shimmer_dns_apply_full(ShimmerDns *dns, int ifindex, const char *ifname,
                            const char *const *servers, const char *const *domains,
                            gboolean default_route, const ShimmerDnsExtra *extra,
                            GCancellable *cancellable, GAsyncReadyCallback callback,
                            gpointer user_data)
{
    static const char *const dnssec_values[] = {"yes", "no", "allow-downgrade", NULL};
    static const char *const dot_values[] = {"yes", "no", "opportunistic", NULL};
    g_autoptr(GError) error = NULL;

    if (extra != NULL &&
        (!one_of(extra->dnssec, dnssec_values) || !one_of(extra->dns_over_tls, dot_values))) {
        g_task_report_new_error(NULL, callback, user_data, shimmer_dns_apply, G_IO_ERROR,
                                G_IO_ERROR_INVALID_ARGUMENT,
                                "DNSSEC or DNS-over-TLS setting for %s is not one resolved knows",
                                ifname ? ifname : "?");
        return;
    }

    if (!ifname_is_valid(ifname) || ifindex <= 0) {
        g_autofree char *q = quote_token(ifname ? ifname : "");

        g_task_report_new_error(NULL, callback, user_data, shimmer_dns_apply, G_IO_ERROR,
                                G_IO_ERROR_INVALID_ARGUMENT,
                                "cannot set DNS for the interface %s (ifindex %d): not a valid "
                                "interface",
                                q, ifindex);
        return;
    }
    /* Everything is checked before anything changes. */
    g_autoptr(GVariant) parsed = parse_settings(ifname, servers, domains, &error);
    if (parsed == NULL) {
        g_task_report_error(NULL, callback, user_data, shimmer_dns_apply, g_steal_pointer(&error));
        return;
    }
    enqueue(dns, apply_task(dns, ifindex, ifname, parsed, servers, domains, default_route, extra,
                            cancellable, callback, user_data));
}

gboolean shimmer_dns_apply_finish(ShimmerDns *dns, GAsyncResult *result, GError **error)
{
    return g_task_propagate_boolean(G_TASK(result), error);
}

void shimmer_dns_revert(ShimmerDns *dns, int ifindex, const char *ifname, GCancellable *cancellable,
                        GAsyncReadyCallback callback, gpointer user_data)
{
    Op *op;
    GTask *task = new_task(OP_REVERT, shimmer_dns_revert, cancellable, callback, user_data, &op);

    op->ifindex = ifindex;
    op->ifname = g_strdup(ifname);
    enqueue(dns, task);
}

gboolean shimmer_dns_revert_finish(ShimmerDns *dns, GAsyncResult *result, GError **error)
{
    return g_task_propagate_boolean(G_TASK(result), error);
}

void shimmer_dns_revert_all(ShimmerDns *dns, GCancellable *cancellable,
                            GAsyncReadyCallback callback, gpointer user_data)
{
    Op *op;

    enqueue(dns,
            new_task(OP_REVERT_ALL, shimmer_dns_revert_all, cancellable, callback, user_data, &op));
}

void shimmer_dns_cleanup_stale(ShimmerDns *dns, GCancellable *cancellable,
                               GAsyncReadyCallback callback, gpointer user_data)
{
    Op *op;

    enqueue(dns,
            new_task(OP_CLEANUP, shimmer_dns_cleanup_stale, cancellable, callback, user_data, &op));
}

gboolean shimmer_dns_is_idle(ShimmerDns *dns)
{
    return dns->current == NULL && g_queue_is_empty(&dns->queue);
}

static gboolean on_wait_over(gpointer user)
{
    *(gboolean *)user = TRUE;
    return G_SOURCE_REMOVE;
}

gboolean shimmer_dns_wait_idle(ShimmerDns *dns, guint timeout_ms)
{
    GMainContext *ctx = g_main_context_ref_thread_default();
    gboolean over = FALSE;
    GSource *timer = g_timeout_source_new(timeout_ms);

    g_source_set_callback(timer, on_wait_over, &over, NULL);
    g_source_attach(timer, ctx);
    while (!shimmer_dns_is_idle(dns) && !over)
        g_main_context_iteration(ctx, TRUE);
    g_source_destroy(timer);
    g_source_unref(timer);
    g_main_context_unref(ctx);
    return shimmer_dns_is_idle(dns);
}
