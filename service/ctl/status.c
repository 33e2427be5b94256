/* SPDX-License-Identifier: MIT */
/* shimmerctl: the status of sessions, once or followed (--watch). */
#include "shimmer-build-config.h"

#include <glib/gi18n.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "ctl.h"
#include "follow.h"
#include "output.h"

/* How long `status` listens for counter updates to compute rates. */
#define RATE_SAMPLE_MS 2500

enum { C_BYTES_IN, C_BYTES_OUT, C_PACKETS_IN, C_PACKETS_OUT, N_COUNTERS };

typedef struct {
    ShimmerDBusSession1 *proxy;
    char *profile_name;
    gulong handler;
    /* The first sample comes from the proxy's creation; later ones from
     * PropertiesChanged, which the daemon sends at most once a second. */
    gint64 t0, t_prev;
    guint64 c0[N_COUNTERS], prev[N_COUNTERS];
    guint updates;
    gboolean have_rates;
    double rate[N_COUNTERS];
    gboolean gone;
} SessionView;

typedef struct {
    Ctl *ctl;
    GPtrArray *views; /* SessionView* */
    Follow follow;
    gboolean watch;
    gboolean json;
} Status;

static void session_counters(ShimmerDBusSession1 *s, guint64 c[N_COUNTERS])
{
    c[C_BYTES_IN] = shimmer_dbus_session1_get_bytes_in(s);
    c[C_BYTES_OUT] = shimmer_dbus_session1_get_bytes_out(s);
    c[C_PACKETS_IN] = shimmer_dbus_session1_get_packets_in(s);
    c[C_PACKETS_OUT] = shimmer_dbus_session1_get_packets_out(s);
}

static void view_set_rates(SessionView *v, const guint64 from[N_COUNTERS], gint64 t_from,
                           const guint64 to[N_COUNTERS], gint64 t_to)
{
    double dt = (double)(t_to - t_from) / G_USEC_PER_SEC;
    if (dt <= 0.05)
        return;
    for (int i = 0; i < N_COUNTERS; i++)
        v->rate[i] = to[i] >= from[i] ? (double)(to[i] - from[i]) / dt : 0;
    v->have_rates = TRUE;
}

static void view_free(SessionView *v)
{
    if (v->handler)
        g_signal_handler_disconnect(v->proxy, v->handler);
    g_clear_object(&v->proxy);
    g_free(v->profile_name);
    g_free(v);
}

static void status_print_json(Status *st, SessionView *v, GString *out)
{
    ctl_json_open_object(out, G_DBUS_PROXY(v->proxy));
    g_string_append(out, ",\"ProfileName\":");
    shimmer_json_append_string(out, v->profile_name);
    static const char *const rate_names[N_COUNTERS] = {"RateIn", "RateOut", "PacketRateIn",
                                                       "PacketRateOut"};
    for (int i = 0; i < N_COUNTERS; i++) {
        g_string_append_printf(out, ",\"%s\":", rate_names[i]);
        if (v->have_rates)
            g_string_append_printf(out, "%.1f", v->rate[i]);
        else
            g_string_append(out, "null");
    }
    g_string_append_c(out, '}');
}

static void status_print_human(Status *st, SessionView *v)
{
    ShimmerDBusSession1 *s = v->proxy;
    const char *state = shimmer_dbus_session1_get_state(s);
    const char *reason = shimmer_dbus_session1_get_state_reason(s);
    g_autofree char *profile = g_strdup_printf("%s (%s)", v->profile_name,
                                               ctl_or_dash(shimmer_dbus_session1_get_profile(s)));
    g_autofree char *owner = ctl_format_owner(shimmer_dbus_session1_get_owner(s));
    g_autofree char *addresses = ctl_format_strv(shimmer_dbus_session1_get_addresses(s));
    g_autofree char *routes = ctl_format_strv(shimmer_dbus_session1_get_routes(s));
    g_autofree char *dns = ctl_format_strv(shimmer_dbus_session1_get_dns_servers(s));
    g_autofree char *domains = ctl_format_strv(shimmer_dbus_session1_get_dns_domains(s));
    guint64 since = shimmer_dbus_session1_get_connected_since(s);
    g_autofree char *since_text = NULL;
    if (since) {
        g_autofree char *when = ctl_format_time(since);
        gint64 now = g_get_real_time() / G_USEC_PER_SEC;
        g_autofree char *dur = ctl_format_duration(now > (gint64)since ? (guint64)now - since : 0);
        since_text = g_strdup_printf(_("%s (%s ago)"), when, dur);
    }
    guint64 c[N_COUNTERS];
    session_counters(s, c);
    g_autofree char *in_size = g_format_size_full(c[C_BYTES_IN], G_FORMAT_SIZE_IEC_UNITS);
    g_autofree char *out_size = g_format_size_full(c[C_BYTES_OUT], G_FORMAT_SIZE_IEC_UNITS);
    g_autofree char *in_rate = ctl_format_rate(v->have_rates ? v->rate[C_BYTES_IN] : -1);
    g_autofree char *out_rate = ctl_format_rate(v->have_rates ? v->rate[C_BYTES_OUT] : -1);
    g_autofree char *in_text = NULL, *out_text = NULL;
    if (v->have_rates) {
        in_text =
            g_strdup_printf(_("%s, %llu packets (%s, %.0f packets/s)"), in_size,
                            (unsigned long long)c[C_PACKETS_IN], in_rate, v->rate[C_PACKETS_IN]);
        out_text =
            g_strdup_printf(_("%s, %llu packets (%s, %.0f packets/s)"), out_size,
                            (unsigned long long)c[C_PACKETS_OUT], out_rate, v->rate[C_PACKETS_OUT]);
    } else {
        in_text =
            g_strdup_printf(_("%s, %llu packets"), in_size, (unsigned long long)c[C_PACKETS_IN]);
        out_text =
            g_strdup_printf(_("%s, %llu packets"), out_size, (unsigned long long)c[C_PACKETS_OUT]);
    }
    g_autofree char *reconnects = g_strdup_printf("%u", shimmer_dbus_session1_get_reconnects(s));

    ctl_print_field(_("Session:"), g_dbus_proxy_get_object_path(G_DBUS_PROXY(s)));
    ctl_print_field(_("Profile:"), profile);
    ctl_print_field(_("Owner:"), owner);
    ctl_print_field(_("State:"), ctl_state_label(state));
    if (reason && *reason)
        ctl_print_field(_("Reason:"), reason);
    ctl_print_field(_("Interface:"), ctl_or_dash(shimmer_dbus_session1_get_interface(s)));
    ctl_print_field(_("Server:"), ctl_or_dash(shimmer_dbus_session1_get_remote_address(s)));
    /* Then the lists below stay empty: the client applies NetworkConfig.
     * (A daemon without the property configures the network itself.) */
    g_autoptr(GVariant) configure =
        g_dbus_proxy_get_cached_property(G_DBUS_PROXY(s), "ConfigureNetwork");
    if (configure != NULL && g_variant_is_of_type(configure, G_VARIANT_TYPE_BOOLEAN) &&
        !g_variant_get_boolean(configure))
        ctl_print_field(_("Network:"), _("configured by the client (NetworkManager)"));
    ctl_print_field(_("Addresses:"), addresses);
    ctl_print_field(_("Routes:"), routes);
    ctl_print_field(_("DNS servers:"), dns);
    ctl_print_field(_("DNS domains:"), domains);
    ctl_print_field(_("Cipher:"), ctl_or_dash(shimmer_dbus_session1_get_cipher(s)));
    ctl_print_field(_("TLS version:"), ctl_or_dash(shimmer_dbus_session1_get_tls_version(s)));
    ctl_print_field(_("Connected:"), since_text ? since_text : "-");
    ctl_print_field(_("Received:"), in_text);
    ctl_print_field(_("Sent:"), out_text);
    ctl_print_field(_("Reconnects:"), reconnects);
    ctl_print_field(_("Bound to caller:"),
                    shimmer_dbus_session1_get_bound_to_caller(s) ? _("yes") : _("no"));
}

/* --watch: one line per change. */
static void status_print_update(Status *st, SessionView *v, GVariant *changed)
{
    if (st->json) {
        g_autoptr(GString) out = g_string_new(NULL);
        status_print_json(st, v, out);
        g_string_append_c(out, '\n');
        fputs(out->str, stdout);
        fflush(stdout);
        return;
    }
    g_autoptr(GDateTime) now = g_date_time_new_now_local();
    g_autofree char *ts = g_date_time_format(now, "%H:%M:%S");
    g_autoptr(GVariant) state = g_variant_lookup_value(changed, "State", NULL);
    if (state) {
        const char *reason = shimmer_dbus_session1_get_state_reason(v->proxy);
        if (reason && *reason)
            ctl_print(stdout, _("%s %s: %s (%s)\n"), ts, v->profile_name,
                      ctl_state_label(shimmer_dbus_session1_get_state(v->proxy)), reason);
        else
            ctl_print(stdout, _("%s %s: %s\n"), ts, v->profile_name,
                      ctl_state_label(shimmer_dbus_session1_get_state(v->proxy)));
    }
    guint64 c[N_COUNTERS];
    session_counters(v->proxy, c);
    g_autofree char *in_size = g_format_size_full(c[C_BYTES_IN], G_FORMAT_SIZE_IEC_UNITS);
    g_autofree char *out_size = g_format_size_full(c[C_BYTES_OUT], G_FORMAT_SIZE_IEC_UNITS);
    g_autofree char *in_rate = ctl_format_rate(v->have_rates ? v->rate[C_BYTES_IN] : -1);
    g_autofree char *out_rate = ctl_format_rate(v->have_rates ? v->rate[C_BYTES_OUT] : -1);
    ctl_print(stdout, _("%s %s: in %s (%s), out %s (%s)\n"), ts, v->profile_name, in_size, in_rate,
              out_size, out_rate);
    fflush(stdout);
}

static gboolean changed_has_counters(GVariant *changed)
{
    static const char *const names[] = {"BytesIn", "BytesOut", "PacketsIn", "PacketsOut"};
    for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
        g_autoptr(GVariant) v = g_variant_lookup_value(changed, names[i], NULL);
        if (v)
            return TRUE;
    }
    return FALSE;
}

static gboolean status_sampling_done(Status *st)
{
    for (guint i = 0; i < st->views->len; i++) {
        SessionView *v = st->views->pdata[i];
        if (!v->gone && g_strcmp0(shimmer_dbus_session1_get_state(v->proxy), "connected") == 0 &&
            v->updates < 2)
            return FALSE;
    }
    return TRUE;
}

static void status_properties_changed(GDBusProxy *proxy, GVariant *changed,
                                      const char *const *invalidated, gpointer user)
{
    Status *st = user;
    SessionView *v = NULL;
    for (guint i = 0; i < st->views->len && v == NULL; i++) {
        if (((SessionView *)st->views->pdata[i])->proxy == (gpointer)proxy)
            v = st->views->pdata[i];
    }
    if (v == NULL)
        return;
    gboolean counters = changed_has_counters(changed);
    if (counters) {
        gint64 now = g_get_monotonic_time();
        guint64 c[N_COUNTERS];
        session_counters(v->proxy, c);
        /* With the watch, each update gives a rate since the one before;
         * otherwise the rate spans the first to the last update seen. */
        if (st->watch) {
            view_set_rates(v, v->prev, v->t_prev, c, now);
        } else if (v->updates == 0) {
            memcpy(v->c0, c, sizeof(c));
            v->t0 = now;
        } else {
            view_set_rates(v, v->c0, v->t0, c, now);
        }
        memcpy(v->prev, c, sizeof(c));
        v->t_prev = now;
        v->updates++;
    }
    if (st->watch) {
        g_autoptr(GVariant) state = g_variant_lookup_value(changed, "State", NULL);
        if (counters || state)
            status_print_update(st, v, changed);
    } else if (status_sampling_done(st)) {
        g_main_loop_quit(st->follow.loop);
    }
}

static void status_signal(Follow *f, const char *path, const char *iface, const char *member,
                          GVariant *params)
{
    Status *st = f->data;
    if (strcmp(member, "InterfacesRemoved") != 0 || strcmp(path, ROOT_PATH) != 0 ||
        !g_variant_is_of_type(params, G_VARIANT_TYPE("(oas)")))
        return;
    const char *gone;
    g_variant_get_child(params, 0, "&o", &gone);
    gboolean all_gone = TRUE;
    for (guint i = 0; i < st->views->len; i++) {
        SessionView *v = st->views->pdata[i];
        if (strcmp(g_dbus_proxy_get_object_path(G_DBUS_PROXY(v->proxy)), gone) == 0) {
            v->gone = TRUE;
            if (st->watch && !st->json)
                ctl_print(stdout, _("%s: the session is gone\n"), v->profile_name);
        }
        all_gone &= v->gone;
    }
    fflush(stdout);
    if (all_gone)
        g_main_loop_quit(f->loop);
}

/* The sessions to show: the one SPEC names, or every session the caller
 * may see. FALSE and *CODE (printed why) when there is none to show. */
static gboolean status_collect(Status *st, const char *spec, int *code)
{
    if (spec) {
        ShimmerDBusSession1 *s = ctl_find_session(st->ctl, spec, code);
        if (s == NULL)
            return FALSE;
        if (!ctl_proxy_has_properties(s)) {
            ctl_print(stderr, _("shimmerctl: no session at %s\n"),
                      g_dbus_proxy_get_object_path(G_DBUS_PROXY(s)));
            g_object_unref(s);
            *code = EXIT_REFUSED;
            return FALSE;
        }
        SessionView *v = g_new0(SessionView, 1);
        v->proxy = s;
        g_ptr_array_add(st->views, v);
    } else {
        g_autoptr(GPtrArray) sessions = ctl_list_objects(st->ctl, "ListSessions", TRUE, code);
        if (sessions == NULL)
            return FALSE;
        for (guint i = 0; i < sessions->len; i++) {
            SessionView *v = g_new0(SessionView, 1);
            v->proxy = g_object_ref(sessions->pdata[i]);
            g_ptr_array_add(st->views, v);
        }
    }
    for (guint i = 0; i < st->views->len; i++) {
        SessionView *v = st->views->pdata[i];
        v->profile_name = ctl_profile_name(st->ctl, shimmer_dbus_session1_get_profile(v->proxy));
        v->t0 = v->t_prev = g_get_monotonic_time();
        session_counters(v->proxy, v->c0);
        memcpy(v->prev, v->c0, sizeof(v->c0));
        v->handler = g_signal_connect(v->proxy, "g-properties-changed",
                                      G_CALLBACK(status_properties_changed), st);
    }
    return TRUE;
}

/* Rates from two samples: two updates of the daemon, or the counters now
 * and after a while when no update came. */
static void status_sample_rates(Status *st)
{
    gint64 started = g_get_monotonic_time();
    ctl_follow_set_timeout(&st->follow, RATE_SAMPLE_MS);
    g_main_loop_run(st->follow.loop);
    for (guint i = 0; i < st->views->len; i++) {
        SessionView *v = st->views->pdata[i];
        if (v->have_rates || v->gone)
            continue;
        g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
            st->ctl->bus, BUS_NAME, g_dbus_proxy_get_object_path(G_DBUS_PROXY(v->proxy)),
            IFACE_PROPERTIES, "GetAll", g_variant_new("(s)", IFACE_SESSION),
            G_VARIANT_TYPE("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
        if (reply == NULL)
            continue;
        g_autoptr(GVariant) all = g_variant_get_child_value(reply, 0);
        static const char *const names[N_COUNTERS] = {"BytesIn", "BytesOut", "PacketsIn",
                                                      "PacketsOut"};
        guint64 now_c[N_COUNTERS];
        gboolean ok = TRUE;
        for (int k = 0; k < N_COUNTERS; k++)
            ok &= g_variant_lookup(all, names[k], "t", &now_c[k]);
        if (!ok)
            continue;
        /* From the first sample: the proxy's own, or the one update. */
        view_set_rates(v, v->c0, v->updates > 0 ? v->t0 : started, now_c, g_get_monotonic_time());
    }
}

/* Every view once: a JSON array (a JSON object when ONE session was
 * asked for), JSON lines with --watch, or blocks of fields for people. */
static void status_print(Status *st, gboolean one)
{
    if (st->json && !st->watch) {
        g_autoptr(GString) out = g_string_new(one ? NULL : "[");
        for (guint i = 0; i < st->views->len; i++) {
            if (i > 0)
                g_string_append_c(out, ',');
            status_print_json(st, st->views->pdata[i], out);
        }
        g_string_append(out, one ? "\n" : "]\n");
        fputs(out->str, stdout);
    } else if (st->json) {
        for (guint i = 0; i < st->views->len; i++) {
            g_autoptr(GString) out = g_string_new(NULL);
            status_print_json(st, st->views->pdata[i], out);
            g_string_append_c(out, '\n');
            fputs(out->str, stdout);
        }
    } else if (st->views->len == 0) {
        ctl_print(stdout, "%s", _("No sessions.\n"));
    } else {
        for (guint i = 0; i < st->views->len; i++) {
            if (i > 0)
                ctl_print(stdout, "\n");
            status_print_human(st, st->views->pdata[i]);
        }
    }
    fflush(stdout);
}

int ctl_cmd_status(Ctl *ctl, int argc, char **argv)
{
    static const char synopsis[] = "status [NAME|SESSION] [--json] [--watch]";
    gboolean json = FALSE, watch = FALSE;
    const char *pos[1];
    const Option options[] = {
        {"--json", &json, NULL},
        {"--watch", &watch, NULL},
        {NULL, NULL, NULL},
    };
    int r = ctl_parse_options(ctl, synopsis, argc, argv, options, pos, 0, 1);
    if (r >= 0)
        return r;
    if ((r = ctl_open(ctl)) != EXIT_OK)
        return r;

    Status st = {.ctl = ctl, .watch = watch, .json = json};
    st.views = g_ptr_array_new_with_free_func((GDestroyNotify)view_free);
    /* Subscribe first: the proxies' samples must not miss an update. */
    ctl_follow_start(&st.follow, ctl, status_signal, &st, TRUE);
    int code = EXIT_OK;
    if (!status_collect(&st, pos[0], &code))
        goto out;
    gboolean any_connected = FALSE;
    for (guint i = 0; i < st.views->len; i++) {
        SessionView *v = st.views->pdata[i];
        any_connected |= g_strcmp0(shimmer_dbus_session1_get_state(v->proxy), "connected") == 0;
    }
    if (!watch && any_connected) {
        status_sample_rates(&st);
        if (st.follow.daemon_gone) {
            ctl_print(stderr, "%s", _("shimmerctl: the daemon left the bus\n"));
            code = EXIT_UNREACHABLE;
            goto out;
        }
    }
    status_print(&st, pos[0] != NULL);
    if (watch && st.views->len > 0) {
        ctl_follow_set_timeout(&st.follow, 0);
        g_main_loop_run(st.follow.loop);
        if (st.follow.daemon_gone) {
            ctl_print(stderr, "%s", _("shimmerctl: the daemon left the bus\n"));
            code = EXIT_UNREACHABLE;
        }
    }

out:
    g_ptr_array_unref(st.views);
    ctl_follow_stop(&st.follow);
    return code;
}
