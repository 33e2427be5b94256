/* SPDX-License-Identifier: MIT */
/*
 * nm-shimmer-service: NetworkManager's VPN service plugin for Shimmer.
 *
 * NetworkManager starts this program when a connection of service type
 * org.freedesktop.NetworkManager.shimmer is brought up, and talks to it
 * through libnm's NMVpnServicePlugin. The plugin runs no protocol itself:
 *
 *   1. the connection (with its secrets) becomes .ovpn text again
 *      (shimmer_nm_connection_to_ovpn(), the editor plugin's export);
 *   2. shimmerd imports it as a transient profile bound to this process
 *      (ImportProfile: persistent false, bound-to-caller true), so that the
 *      profile disappears with the plugin, whatever happens to it;
 *   3. Profile1.Connect with configure-network false: shimmerd creates the
 *      tun device and runs the tunnel, NetworkManager sets addresses, routes
 *      and DNS from what this plugin reports (the session's NetworkConfig);
 *   4. the session's state drives the plugin: connected → Config, Ip4Config,
 *      Ip6Config (again after every reconnect inside shimmerd); failed →
 *      a failure reason; credentials requested → NetworkManager's secret
 *      flow (SecretsRequired / NewSecrets) when the activation is
 *      interactive;
 *   5. Disconnect removes the profile, which ends the session.
 */

#include <arpa/inet.h>
#include <glib-unix.h>
#include <glib/gi18n.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>

#include <NetworkManager.h>

#include "shimmer-build-config.h"

#include "engine.h"
#include "mapping.h"
#include "secrets.h"
#include "secure.h"
#include "shimmer-dbus-generated.h"

#define SHIMMERD_NAME "org.shimmervpn"
#define SHIMMERD_PATH "/org/shimmervpn"

typedef struct {
    NMVpnServicePlugin parent;

    GDBusConnection *bus;
    ShimmerDBusProfile1 *profile;
    ShimmerDBusSession1 *session;
    guint shimmerd_watch;
    char *last_state;
    gboolean interactive;
    gboolean reported;          /* IP configuration reported at least once */
    gboolean stopping;          /* Disconnect was asked: the session's end is expected */
    gboolean pending_challenge; /* SecretsRequired sent, NewSecrets awaited */
    gboolean pending_web_auth;  /* the same for a web sign-in (nothing to pass on) */
    char *config_digest;        /* the last NetworkConfig reported, to skip repeats */
    int failure;                /* the reason fail() gave, -1 if none */
} ShimmerNmPlugin;

typedef struct {
    NMVpnServicePluginClass parent;
} ShimmerNmPluginClass;

static GType shimmer_nm_plugin_get_type(void);
G_DEFINE_TYPE(ShimmerNmPlugin, shimmer_nm_plugin, NM_TYPE_VPN_SERVICE_PLUGIN)
#define SHIMMER_NM_PLUGIN(o)                                                                       \
    (G_TYPE_CHECK_INSTANCE_CAST((o), shimmer_nm_plugin_get_type(), ShimmerNmPlugin))

static gboolean debug;
static GMainLoop *main_loop;

/* ---------- helpers ---------- */

/* The message of a D-Bus error from shimmerd without the remote error name. */
static const char *remote_message(GError *error)
{
    if (g_dbus_error_is_remote_error(error))
        g_dbus_error_strip_remote_error(error);
    return error->message;
}

static void drop_session(ShimmerNmPlugin *self)
{
    if (self->session != NULL) {
        g_signal_handlers_disconnect_by_data(self->session, self);
        g_clear_object(&self->session);
    }
    g_clear_pointer(&self->last_state, g_free);
    g_clear_pointer(&self->config_digest, g_free);
    self->reported = FALSE;
    self->pending_challenge = FALSE;
}

/* Removes the transient profile (shimmerd disconnects its session first). */
static void remove_profile(ShimmerNmPlugin *self)
{
    drop_session(self);
    if (self->profile == NULL)
        return;
    g_autoptr(GError) error = NULL;
    if (!shimmer_dbus_profile1_call_remove_sync(self->profile, NULL, &error))
        g_message("removing the profile from shimmerd: %s", remote_message(error));
    g_clear_object(&self->profile);
}

static NMVpnPluginFailure failure_for(const char *kind)
{
    if (g_strcmp0(kind, "auth-failed") == 0)
        return NM_VPN_PLUGIN_FAILURE_LOGIN_FAILED;
    if (g_strcmp0(kind, "network-config") == 0)
        return NM_VPN_PLUGIN_FAILURE_BAD_IP_CONFIG;
    return NM_VPN_PLUGIN_FAILURE_CONNECT_FAILED;
}

/* Ends the activation with REASON; the plugin's disconnect then removes the
 * profile. */
static void fail(ShimmerNmPlugin *self, NMVpnPluginFailure reason, const char *why)
{
    g_warning("%s", why);
    self->stopping = TRUE;
    self->failure = (int)reason;
    nm_vpn_service_plugin_failure(NM_VPN_SERVICE_PLUGIN(self), reason);
}

/* libnm's disconnect, run by nm_vpn_service_plugin_failure() while the
 * plugin is starting, sends a second Failure (connect-failed) before the
 * plugin stops, and NetworkManager keeps the last one it heard: the real
 * reason is sent once more, right before the state becomes "stopped". */
static void repeat_failure(ShimmerNmPlugin *self)
{
    if (self->failure < 0 || self->failure == NM_VPN_PLUGIN_FAILURE_CONNECT_FAILED)
        return;
    g_autoptr(GDBusConnection) bus =
        nm_vpn_service_plugin_get_connection(NM_VPN_SERVICE_PLUGIN(self));
    if (bus != NULL)
        g_dbus_connection_emit_signal(bus, NULL, NM_VPN_DBUS_PLUGIN_PATH,
                                      NM_VPN_DBUS_PLUGIN_INTERFACE, "Failure",
                                      g_variant_new("(u)", (guint32)self->failure), NULL);
}

/* ---------- the configuration NetworkManager applies ---------- */

static gboolean parse4(const char *text, guint32 *out)
{
    struct in_addr a;
    if (text == NULL || inet_pton(AF_INET, text, &a) != 1)
        return FALSE;
    *out = a.s_addr; /* network byte order, as NetworkManager wants it */
    return TRUE;
}

static GVariant *addr6_variant(const char *text)
{
    struct in6_addr a;
    if (text == NULL || inet_pton(AF_INET6, text, &a) != 1)
        return NULL;
    return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, &a, sizeof(a), 1);
}

static const char *lookup_str(GVariant *cfg, const char *key)
{
    const char *v = NULL;
    if (!g_variant_lookup(cfg, key, "&s", &v))
        return NULL;
    return v[0] != '\0' ? v : NULL;
}

static GVariant *ip4_config(GVariant *cfg)
{
    guint32 addr;
    if (!parse4(lookup_str(cfg, "ipv4-address"), &addr))
        return NULL;
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_IP4_CONFIG_ADDRESS, g_variant_new_uint32(addr));
    guint32 prefix = 32;
    g_variant_lookup(cfg, "ipv4-prefix", "u", &prefix);
    g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_IP4_CONFIG_PREFIX,
                          g_variant_new_uint32(CLAMP(prefix, 1, 32)));
    guint32 a;
    if (parse4(lookup_str(cfg, "ipv4-peer"), &a))
        g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_IP4_CONFIG_PTP, g_variant_new_uint32(a));
    if (parse4(lookup_str(cfg, "ipv4-gateway"), &a))
        g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_IP4_CONFIG_INT_GATEWAY,
                              g_variant_new_uint32(a));

    GVariantBuilder dns;
    g_variant_builder_init(&dns, G_VARIANT_TYPE("au"));
    gboolean any_dns = FALSE;
    g_autofree const char **servers = NULL;
    if (g_variant_lookup(cfg, "dns-servers", "^a&s", &servers))
        for (guint i = 0; servers[i] != NULL; i++)
            if (parse4(servers[i], &a)) {
                g_variant_builder_add(&dns, "u", a);
                any_dns = TRUE;
            }
    if (any_dns)
        g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_IP4_CONFIG_DNS,
                              g_variant_builder_end(&dns));
    else
        g_variant_builder_clear(&dns);

    /* Search domains, and routing-only domains the way NetworkManager
     * writes them ("~example.com"). */
    GVariantBuilder dom;
    g_variant_builder_init(&dom, G_VARIANT_TYPE_STRING_ARRAY);
    gboolean any_dom = FALSE;
    g_autofree const char **search = NULL, **routing = NULL;
    if (g_variant_lookup(cfg, "dns-search", "^a&s", &search))
        for (guint i = 0; search[i] != NULL; i++, any_dom = TRUE)
            g_variant_builder_add(&dom, "s", search[i]);
    if (g_variant_lookup(cfg, "dns-routing-domains", "^a&s", &routing))
        for (guint i = 0; routing[i] != NULL; i++, any_dom = TRUE)
            g_variant_builder_add_value(
                &dom, g_variant_new_take_string(g_strconcat("~", routing[i], NULL)));
    if (any_dom)
        g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_IP4_CONFIG_DOMAINS,
                              g_variant_builder_end(&dom));
    else
        g_variant_builder_clear(&dom);

    GVariantBuilder routes;
    g_variant_builder_init(&routes, G_VARIANT_TYPE("aau"));
    GVariantIter *it = NULL;
    if (g_variant_lookup(cfg, "ipv4-routes", "a(suu)", &it)) {
        const char *net;
        guint32 plen, metric;
        while (g_variant_iter_next(it, "(&suu)", &net, &plen, &metric)) {
            guint32 dest;
            if (!parse4(net, &dest) || plen > 32)
                continue;
            guint32 r[4] = {dest, plen, 0, metric};
            g_variant_builder_add_value(
                &routes, g_variant_new_fixed_array(G_VARIANT_TYPE_UINT32, r, 4, sizeof(guint32)));
        }
        g_variant_iter_free(it);
    }
    g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_IP4_CONFIG_ROUTES,
                          g_variant_builder_end(&routes));

    gboolean def = FALSE;
    g_variant_lookup(cfg, "ipv4-default-route", "b", &def);
    /* The connection's ipv4.never-default still wins in NetworkManager. */
    g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_IP4_CONFIG_NEVER_DEFAULT,
                          g_variant_new_boolean(!def));
    return g_variant_builder_end(&b);
}

static GVariant *ip6_config(GVariant *cfg)
{
    GVariant *addr = addr6_variant(lookup_str(cfg, "ipv6-address"));
    if (addr == NULL)
        return NULL;
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_IP6_CONFIG_ADDRESS, addr);
    guint32 prefix = 128;
    g_variant_lookup(cfg, "ipv6-prefix", "u", &prefix);
    g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_IP6_CONFIG_PREFIX,
                          g_variant_new_uint32(CLAMP(prefix, 1, 128)));
    GVariant *gw = addr6_variant(lookup_str(cfg, "ipv6-gateway"));
    if (gw != NULL)
        g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_IP6_CONFIG_INT_GATEWAY, gw);

    GVariantBuilder dns;
    g_variant_builder_init(&dns, G_VARIANT_TYPE("aay"));
    gboolean any_dns = FALSE;
    g_autofree const char **servers = NULL;
    if (g_variant_lookup(cfg, "dns-servers", "^a&s", &servers))
        for (guint i = 0; servers[i] != NULL; i++) {
            GVariant *a = addr6_variant(servers[i]);
            if (a != NULL) {
                g_variant_builder_add_value(&dns, a);
                any_dns = TRUE;
            }
        }
    if (any_dns)
        g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_IP6_CONFIG_DNS,
                              g_variant_builder_end(&dns));
    else
        g_variant_builder_clear(&dns);

    GVariantBuilder routes;
    g_variant_builder_init(&routes, G_VARIANT_TYPE("a(ayuayu)"));
    GVariantIter *it = NULL;
    if (g_variant_lookup(cfg, "ipv6-routes", "a(suu)", &it)) {
        const char *net;
        guint32 plen, metric;
        while (g_variant_iter_next(it, "(&suu)", &net, &plen, &metric)) {
            GVariant *dest = addr6_variant(net);
            if (dest == NULL || plen > 128) {
                if (dest != NULL)
                    g_variant_unref(g_variant_ref_sink(dest));
                continue;
            }
            g_variant_builder_add(&routes, "(@ayu@ayu)", dest, plen, addr6_variant("::"), metric);
        }
        g_variant_iter_free(it);
    }
    g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_IP6_CONFIG_ROUTES,
                          g_variant_builder_end(&routes));

    gboolean def = FALSE;
    g_variant_lookup(cfg, "ipv6-default-route", "b", &def);
    g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_IP6_CONFIG_NEVER_DEFAULT,
                          g_variant_new_boolean(!def));
    return g_variant_builder_end(&b);
}

/* Config, Ip4Config and Ip6Config from the session's NetworkConfig. */
static void report_config(ShimmerNmPlugin *self)
{
    GVariant *cfg = shimmer_dbus_session1_get_network_config(self->session);
    const char *tundev = cfg ? lookup_str(cfg, "interface") : NULL;
    if (tundev == NULL) {
        fail(self, NM_VPN_PLUGIN_FAILURE_BAD_IP_CONFIG,
             "shimmerd reported the tunnel up without its network configuration");
        return;
    }
    g_autofree char *digest = g_variant_print(cfg, FALSE);
    if (self->reported && g_strcmp0(digest, self->config_digest) == 0)
        return;
    g_autoptr(GVariant) ip4 = ip4_config(cfg);
    g_autoptr(GVariant) ip6 = ip6_config(cfg);
    if (ip4 != NULL)
        g_variant_ref_sink(ip4);
    if (ip6 != NULL)
        g_variant_ref_sink(ip6);
    if (ip4 == NULL && ip6 == NULL) {
        fail(self, NM_VPN_PLUGIN_FAILURE_BAD_IP_CONFIG,
             "the server assigned the tunnel no IPv4 or IPv6 address (ifconfig)");
        return;
    }

    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_CONFIG_TUNDEV, g_variant_new_string(tundev));
    guint32 mtu = 0;
    if (g_variant_lookup(cfg, "mtu", "u", &mtu) && mtu > 0)
        g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_CONFIG_MTU, g_variant_new_uint32(mtu));
    /* The server's address: NetworkManager keeps a route to it through the
     * base connection. */
    const char *remote = lookup_str(cfg, "remote");
    guint32 a4;
    GVariant *a6;
    if (parse4(remote, &a4))
        g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_CONFIG_EXT_GATEWAY,
                              g_variant_new_uint32(a4));
    else if ((a6 = addr6_variant(remote)) != NULL)
        g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_CONFIG_EXT_GATEWAY, a6);
    g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_CONFIG_HAS_IP4,
                          g_variant_new_boolean(ip4 != NULL));
    g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_CONFIG_HAS_IP6,
                          g_variant_new_boolean(ip6 != NULL));
    /* shimmerd reconnects by itself (server restarts, ping-restart). */
    g_variant_builder_add(&b, "{sv}", NM_VPN_PLUGIN_CAN_PERSIST, g_variant_new_boolean(TRUE));

    g_message("%s the tunnel's configuration: %s%s%s", self->reported ? "updating" : "reporting",
              tundev, ip4 ? ", IPv4" : "", ip6 ? ", IPv6" : "");
    nm_vpn_service_plugin_set_config(NM_VPN_SERVICE_PLUGIN(self), g_variant_builder_end(&b));
    if (ip4 != NULL)
        nm_vpn_service_plugin_set_ip4_config(NM_VPN_SERVICE_PLUGIN(self), ip4);
    if (ip6 != NULL)
        nm_vpn_service_plugin_set_ip6_config(NM_VPN_SERVICE_PLUGIN(self), ip6);
    self->reported = TRUE;
    g_free(self->config_digest);
    self->config_digest = g_steal_pointer(&digest);
}

/* ---------- following the session ---------- */

static void on_session_state(ShimmerNmPlugin *self)
{
    if (self->session == NULL)
        return;
    const char *state = shimmer_dbus_session1_get_state(self->session);
    const char *reason = shimmer_dbus_session1_get_state_reason(self->session);
    if (state == NULL || g_strcmp0(state, self->last_state) == 0)
        return;
    g_free(self->last_state);
    self->last_state = g_strdup(state);
    g_message("session %s%s%s", state, reason && reason[0] ? ": " : "", reason ? reason : "");

    if (strcmp(state, "connected") == 0) {
        report_config(self);
    } else if (strcmp(state, "failed") == 0) {
        const char *kind = shimmer_dbus_session1_get_failure_kind(self->session);
        g_autofree char *why = g_strdup_printf("the tunnel failed: %s", reason ? reason : "");
        fail(self, failure_for(kind), why);
    } else if (strcmp(state, "disconnected") == 0 && !self->stopping) {
        g_autofree char *why =
            g_strdup_printf("the tunnel ended: %s", reason && reason[0] ? reason : "disconnected");
        fail(self, NM_VPN_PLUGIN_FAILURE_CONNECT_FAILED, why);
    }
}

static gboolean session_state_once(gpointer user)
{
    on_session_state(user);
    return G_SOURCE_REMOVE;
}

static void on_session_notify(GObject *obj, GParamSpec *pspec, gpointer user)
{
    on_session_state(user);
}

static void on_network_config_notify(GObject *obj, GParamSpec *pspec, gpointer user)
{
    ShimmerNmPlugin *self = user;
    /* A reconnect that changed the configuration while the state stayed
     * "connected" as seen from here (both changes in one signal). */
    if (self->session != NULL && self->reported &&
        g_strcmp0(shimmer_dbus_session1_get_state(self->session), "connected") == 0)
        report_config(self);
}

static void on_session_log(ShimmerDBusSession1 *session, guint level, const char *message,
                           gpointer user)
{
    /* Never a secret (shimmerd's promise); NetworkManager's log gets it. */
    if (level == 0)
        g_warning("shimmerd: %s", message);
    else if (level <= 2 || debug)
        g_message("shimmerd: %s", message);
}

/* shimmerd asks for something the connection did not hold. */
static void on_credentials_requested(ShimmerDBusSession1 *session, const char *const *fields,
                                     const char *prompt, gboolean echo, gpointer user)
{
    ShimmerNmPlugin *self = user;
    gboolean response = g_strv_contains(fields, "response");
    if (!self->interactive) {
        g_autofree char *list = g_strjoinv(", ", (char **)fields);
        g_autofree char *why = g_strdup_printf(
            "shimmerd needs %s, and this activation may not ask the user (use nmcli --ask or a "
            "secret agent)",
            list);
        fail(self, NM_VPN_PLUGIN_FAILURE_LOGIN_FAILED, why);
        return;
    }
    g_autoptr(GPtrArray) hints = g_ptr_array_new_with_free_func(g_free);
    if (response) {
        /* The tagged form: NetworkManager 1.46 and later then never store
         * the answer; older ones hand it back under this name, which
         * secrets.c reads too. */
        g_ptr_array_add(hints, g_strconcat(echo ? SHIMMER_NM_HINT_DYNAMIC_CHALLENGE_ECHO
                                                : SHIMMER_NM_HINT_DYNAMIC_CHALLENGE,
                                           SHIMMER_NM_SECRET_CHALLENGE_RESPONSE, NULL));
    } else {
        for (guint i = 0; fields[i] != NULL; i++) {
            if (strcmp(fields[i], "username") == 0)
                g_ptr_array_add(hints, g_strdup(SHIMMER_NM_SECRET_USERNAME));
            else if (strcmp(fields[i], "password") == 0)
                g_ptr_array_add(hints, g_strdup(SHIMMER_NM_SECRET_PASSWORD));
            else if (strcmp(fields[i], "otp") == 0)
                g_ptr_array_add(hints, g_strdup(SHIMMER_NM_SECRET_OTP));
            else if (strcmp(fields[i], "key-passphrase") == 0)
                g_ptr_array_add(hints, g_strdup(SHIMMER_NM_SECRET_CERT_PASS));
        }
    }
    if (prompt != NULL && prompt[0] != '\0')
        g_ptr_array_add(hints, g_strconcat(SHIMMER_NM_HINT_VPN_MESSAGE, prompt, NULL));
    g_ptr_array_add(hints, NULL);
    self->pending_challenge = TRUE;
    g_message("asking NetworkManager's secret agents for %s", response ? "the answer to the "
                                                                         "server's challenge"
                                                                       : "credentials");
    nm_vpn_service_plugin_secrets_required(NM_VPN_SERVICE_PLUGIN(self),
                                           prompt && prompt[0] ? prompt : _("Credentials needed"),
                                           (const char **)hints->pdata);
}

/* The server asks for a web sign-in. The plugin runs as root and opens no
 * browser: the URL goes to the user's secret agent (the auth dialog opens
 * it in the user's session, nmcli --ask shows it), which only has to
 * confirm. */
static void on_web_auth_requested(ShimmerDBusSession1 *session, GVariant *request, gpointer user)
{
    ShimmerNmPlugin *self = user;
    const char *url = NULL;
    guint32 timeout = 0;
    if (!g_variant_lookup(request, "url", "&s", &url) || !shimmer_web_auth_url_is_safe(url)) {
        g_warning("shimmerd reports a web sign-in without a usable URL");
        return;
    }
    g_variant_lookup(request, "timeout", "u", &timeout);
    if (!self->interactive) {
        /* Not the URL: NetworkManager's log is not the user's alone. */
        g_warning("the server asks for a web sign-in, and this activation may not ask the user "
                  "(use nmcli --ask or a secret agent); the server waits up to %u s",
                  timeout);
        return;
    }
    g_autofree char *message = g_strdup_printf(
        _("Sign in on this web page to connect (the server waits up to %u seconds):\n%s"), timeout,
        url);
    g_autofree char *msg_hint = g_strconcat(SHIMMER_NM_HINT_VPN_MESSAGE, message, NULL);
    g_autofree char *url_hint = g_strconcat(SHIMMER_NM_HINT_WEB_AUTH, url, NULL);
    /* Tagged: NetworkManager 1.46 and later never store the confirmation. */
    g_autofree char *field =
        g_strconcat(SHIMMER_NM_HINT_DYNAMIC_CHALLENGE_ECHO, SHIMMER_NM_SECRET_WEB_SIGN_IN, NULL);
    const char *hints[] = {field, msg_hint, url_hint, NULL};
    self->pending_web_auth = TRUE;
    g_message("asking NetworkManager's secret agents to show the web sign-in");
    nm_vpn_service_plugin_secrets_required(NM_VPN_SERVICE_PLUGIN(self), message, hints);
}

static void on_server_message(ShimmerDBusSession1 *session, const char *text, gpointer user)
{
    g_message("the server says: %s", text);
}

static void on_shimmerd_vanished(GDBusConnection *bus, const char *name, gpointer user)
{
    ShimmerNmPlugin *self = user;
    if (self->profile == NULL || self->stopping)
        return;
    g_clear_object(&self->profile); /* gone with shimmerd */
    fail(self, NM_VPN_PLUGIN_FAILURE_CONNECT_FAILED, "shimmerd left the bus");
}

/* ---------- connecting ---------- */

/* Connect's options: the credentials NetworkManager's secret flow gave
 * (stored ones are in the profile text already; shimmerd prefers these).
 * A GVariant cannot be wiped: the strings live only until the call is
 * sent. */
static GVariant *connect_options(NMSettingVpn *s_vpn)
{
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", "bound-to-caller", g_variant_new_boolean(TRUE));
    g_variant_builder_add(&b, "{sv}", "configure-network", g_variant_new_boolean(FALSE));
    const char *user = nm_setting_vpn_get_data_item(s_vpn, SHIMMER_NM_KEY_USERNAME);
    if (user == NULL || user[0] == '\0')
        user = shimmer_nm_secrets_get(s_vpn, SHIMMER_NM_SECRET_USERNAME);
    const char *password = shimmer_nm_secrets_get(s_vpn, SHIMMER_NM_SECRET_PASSWORD);
    const char *otp = shimmer_nm_secrets_get(s_vpn, SHIMMER_NM_SECRET_OTP);
    if (user != NULL)
        g_variant_builder_add(&b, "{sv}", "username", g_variant_new_string(user));
    if (password != NULL)
        g_variant_builder_add(&b, "{sv}", "password", g_variant_new_string(password));
    /* shimmerd puts a static challenge's answer together with the password. */
    if (otp != NULL)
        g_variant_builder_add(&b, "{sv}", "otp", g_variant_new_string(otp));
    const char *pass = shimmer_nm_secrets_get(s_vpn, SHIMMER_NM_SECRET_CERT_PASS);
    if (pass != NULL)
        g_variant_builder_add(&b, "{sv}", "key-passphrase", g_variant_new_string(pass));
    return g_variant_builder_end(&b);
}

static char *profile_name(NMConnection *connection)
{
    const char *id = nm_connection_get_id(connection);
    const char *uuid = nm_connection_get_uuid(connection);
    /* Unique among this plugin's profiles (NetworkManager activates a
     * connection once at a time) and recognisable in `shimmerctl list`. */
    g_autofree char *valid = g_utf8_make_valid(id ? id : "VPN", -1);
    g_autofree char *shortid = g_utf8_substring(valid, 0, MIN(g_utf8_strlen(valid, -1), 64));
    return g_strdup_printf("%s (NetworkManager %.8s)", shortid, uuid ? uuid : "");
}

static gboolean do_connect(ShimmerNmPlugin *self, NMConnection *connection, GError **error)
{
    NMSettingVpn *s_vpn = nm_connection_get_setting_vpn(connection);
    if (s_vpn == NULL) {
        g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_INVALID_CONNECTION,
                    "the connection has no vpn setting");
        return FALSE;
    }
    if (shimmer_nm_secrets_needed(s_vpn, NULL) && !self->interactive) {
        g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_BAD_ARGUMENTS,
                    "a password or passphrase is missing (use nmcli --ask, a passwd-file or a "
                    "secret agent)");
        return FALSE;
    }
    remove_profile(self);
    self->stopping = FALSE;
    self->failure = -1;

    g_autoptr(GError) local = NULL;
    g_autofree char *text = shimmer_nm_connection_to_ovpn(connection, &local);
    if (text == NULL) {
        g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_INVALID_CONNECTION,
                    "the connection cannot be turned into a profile: %s", local->message);
        return FALSE;
    }
    g_autoptr(ShimmerDBusManager1) manager = shimmer_dbus_manager1_proxy_new_sync(
        self->bus,
        G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES | G_DBUS_PROXY_FLAGS_DO_NOT_CONNECT_SIGNALS,
        SHIMMERD_NAME, SHIMMERD_PATH, NULL, &local);
    g_autofree char *name = profile_name(connection);
    g_autofree char *ppath = NULL;
    gboolean ok = FALSE;
    if (manager != NULL) {
        GVariantBuilder opts;
        g_variant_builder_init(&opts, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&opts, "{sv}", "persistent", g_variant_new_boolean(FALSE));
        g_variant_builder_add(&opts, "{sv}", "bound-to-caller", g_variant_new_boolean(TRUE));
        ok = shimmer_dbus_manager1_call_import_profile_sync(
            manager, name, text, g_variant_builder_end(&opts), &ppath, NULL, &local);
    }
    shimmer_str_free_secret(g_steal_pointer(&text));
    if (!ok) {
        g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_LAUNCH_FAILED,
                    "shimmerd did not take the profile: %s", remote_message(local));
        return FALSE;
    }
    self->profile = shimmer_dbus_profile1_proxy_new_sync(
        self->bus,
        G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES | G_DBUS_PROXY_FLAGS_DO_NOT_CONNECT_SIGNALS,
        SHIMMERD_NAME, ppath, NULL, &local);
    if (self->profile == NULL) {
        g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_LAUNCH_FAILED,
                    "shimmerd's profile %s: %s", ppath, remote_message(local));
        return FALSE;
    }
    g_autofree char *spath = NULL;
    if (!shimmer_dbus_profile1_call_connect_sync(self->profile, connect_options(s_vpn), &spath,
                                                 NULL, &local)) {
        g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_LAUNCH_FAILED,
                    "shimmerd did not start the session: %s", remote_message(local));
        remove_profile(self);
        return FALSE;
    }
    self->session = shimmer_dbus_session1_proxy_new_sync(self->bus, G_DBUS_PROXY_FLAGS_NONE,
                                                         SHIMMERD_NAME, spath, NULL, &local);
    if (self->session == NULL) {
        g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_LAUNCH_FAILED,
                    "shimmerd's session %s: %s", spath, remote_message(local));
        remove_profile(self);
        return FALSE;
    }
    g_signal_connect(self->session, "notify::state", G_CALLBACK(on_session_notify), self);
    g_signal_connect(self->session, "notify::network-config", G_CALLBACK(on_network_config_notify),
                     self);
    g_signal_connect(self->session, "credentials-requested", G_CALLBACK(on_credentials_requested),
                     self);
    g_signal_connect(self->session, "log", G_CALLBACK(on_session_log), self);
    g_signal_connect(self->session, "web-auth-requested", G_CALLBACK(on_web_auth_requested), self);
    g_signal_connect(self->session, "server-message", G_CALLBACK(on_server_message), self);
    g_message("connecting \"%s\" through shimmerd (session %s)", nm_connection_get_id(connection),
              spath);
    /* What happened before the proxy was there: from the next main-loop
     * turn, once NetworkManager has heard that Connect succeeded. */
    g_idle_add_full(G_PRIORITY_DEFAULT, session_state_once, g_object_ref(self), g_object_unref);
    return TRUE;
}

static gboolean real_connect(NMVpnServicePlugin *plugin, NMConnection *connection, GError **error)
{
    ShimmerNmPlugin *self = SHIMMER_NM_PLUGIN(plugin);
    self->interactive = FALSE;
    return do_connect(self, connection, error);
}

static gboolean real_connect_interactive(NMVpnServicePlugin *plugin, NMConnection *connection,
                                         GVariant *details, GError **error)
{
    ShimmerNmPlugin *self = SHIMMER_NM_PLUGIN(plugin);
    self->interactive = TRUE;
    return do_connect(self, connection, error);
}

static gboolean real_need_secrets(NMVpnServicePlugin *plugin, NMConnection *connection,
                                  const char **setting_name, GError **error)
{
    NMSettingVpn *s_vpn = nm_connection_get_setting_vpn(connection);
    if (s_vpn == NULL) {
        g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_INVALID_CONNECTION,
                    "the connection has no vpn setting");
        return FALSE;
    }
    if (shimmer_nm_secrets_needed(s_vpn, NULL)) {
        *setting_name = NM_SETTING_VPN_SETTING_NAME;
        return TRUE;
    }
    return FALSE;
}

/* The answers to SecretsRequired. */
static gboolean real_new_secrets(NMVpnServicePlugin *plugin, NMConnection *connection,
                                 GError **error)
{
    ShimmerNmPlugin *self = SHIMMER_NM_PLUGIN(plugin);
    NMSettingVpn *s_vpn = nm_connection_get_setting_vpn(connection);
    if (self->pending_web_auth && !self->pending_challenge) {
        /* The user confirmed the web sign-in; the server decides. */
        self->pending_web_auth = FALSE;
        return TRUE;
    }
    if (self->session == NULL || !self->pending_challenge || s_vpn == NULL) {
        g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_WRONG_STATE,
                    "no secrets were asked for");
        return FALSE;
    }
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE("a{ss}"));
    const char *response = shimmer_nm_secrets_get(s_vpn, SHIMMER_NM_SECRET_CHALLENGE_RESPONSE);
    if (response != NULL) {
        g_variant_builder_add(&b, "{ss}", "response", response);
    } else {
        const char *user = nm_setting_vpn_get_data_item(s_vpn, SHIMMER_NM_KEY_USERNAME);
        if (user == NULL)
            user = shimmer_nm_secrets_get(s_vpn, SHIMMER_NM_SECRET_USERNAME);
        const char *password = shimmer_nm_secrets_get(s_vpn, SHIMMER_NM_SECRET_PASSWORD);
        const char *otp = shimmer_nm_secrets_get(s_vpn, SHIMMER_NM_SECRET_OTP);
        const char *pass = shimmer_nm_secrets_get(s_vpn, SHIMMER_NM_SECRET_CERT_PASS);
        if (user != NULL)
            g_variant_builder_add(&b, "{ss}", "username", user);
        if (password != NULL)
            g_variant_builder_add(&b, "{ss}", "password", password);
        if (otp != NULL)
            g_variant_builder_add(&b, "{ss}", "otp", otp);
        if (pass != NULL)
            g_variant_builder_add(&b, "{ss}", "key-passphrase", pass);
    }
    g_autoptr(GError) local = NULL;
    if (!shimmer_dbus_session1_call_provide_credentials_sync(
            self->session, g_variant_builder_end(&b), NULL, &local)) {
        g_set_error(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_BAD_ARGUMENTS,
                    "shimmerd did not take the answer: %s", remote_message(local));
        return FALSE;
    }
    self->pending_challenge = FALSE;
    return TRUE;
}

static gboolean real_disconnect(NMVpnServicePlugin *plugin, GError **error)
{
    ShimmerNmPlugin *self = SHIMMER_NM_PLUGIN(plugin);
    self->stopping = TRUE;
    if (self->profile != NULL)
        g_message("disconnecting");
    remove_profile(self);
    repeat_failure(self);
    self->failure = -1;
    return TRUE;
}

/* ---------- the object ---------- */

static void shimmer_nm_plugin_init(ShimmerNmPlugin *self)
{
    self->failure = -1;
}

static void shimmer_nm_plugin_dispose(GObject *object)
{
    ShimmerNmPlugin *self = SHIMMER_NM_PLUGIN(object);
    if (self->shimmerd_watch) {
        g_bus_unwatch_name(self->shimmerd_watch);
        self->shimmerd_watch = 0;
    }
    drop_session(self);
    g_clear_object(&self->profile);
    g_clear_object(&self->bus);
    G_OBJECT_CLASS(shimmer_nm_plugin_parent_class)->dispose(object);
}

static void shimmer_nm_plugin_class_init(ShimmerNmPluginClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    NMVpnServicePluginClass *parent = NM_VPN_SERVICE_PLUGIN_CLASS(klass);
    object_class->dispose = shimmer_nm_plugin_dispose;
    parent->connect = real_connect;
    parent->connect_interactive = real_connect_interactive;
    parent->need_secrets = real_need_secrets;
    parent->new_secrets = real_new_secrets;
    parent->disconnect = real_disconnect;
}

/* ---------- main ---------- */

static guint quit_timer;

static gboolean quit_now(gpointer user)
{
    quit_timer = 0;
    g_main_loop_quit(main_loop);
    return G_SOURCE_REMOVE;
}

/* libnm asks to quit as soon as the plugin is stopped. The process leaving
 * the bus at once can reach NetworkManager before the "stopped" state and
 * the failure reason that came with it ("the VPN service stopped
 * unexpectedly" instead of the real reason): leave a moment later. */
static void on_quit(NMVpnServicePlugin *plugin, gpointer user)
{
    if (quit_timer == 0)
        quit_timer = g_timeout_add_seconds(2, quit_now, NULL);
}

/* A new activation in that moment keeps the process. */
static void on_plugin_state(NMVpnServicePlugin *plugin, guint state, gpointer user)
{
    if (state == NM_VPN_SERVICE_STATE_STARTING && quit_timer != 0) {
        g_source_remove(quit_timer);
        quit_timer = 0;
    }
}

static gboolean on_signal(gpointer user)
{
    ShimmerNmPlugin *self = user;
    g_message("stopping on a signal");
    self->stopping = TRUE;
    nm_vpn_service_plugin_shutdown(NM_VPN_SERVICE_PLUGIN(self));
    remove_profile(self);
    g_main_loop_quit(main_loop);
    return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
    bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
    textdomain(GETTEXT_PACKAGE);

    gboolean persist = FALSE;
    g_autofree char *bus_name = NULL;
    GOptionEntry entries[] = {
        {"persist", 0, 0, G_OPTION_ARG_NONE, &persist, N_("Do not quit when the VPN disconnects"),
         NULL},
        {"debug", 0, 0, G_OPTION_ARG_NONE, &debug,
         N_("Log more, and stay when NetworkManager "
            "leaves the bus"),
         NULL},
        {"bus-name", 0, 0, G_OPTION_ARG_STRING, &bus_name, N_("D-Bus name to use"), N_("NAME")},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);
    g_option_context_set_translation_domain(ctx, GETTEXT_PACKAGE);
    g_option_context_set_summary(ctx, _("NetworkManager's VPN service for Shimmer; NetworkManager "
                                        "starts it."));
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        g_printerr("nm-shimmer-service: %s\n", error->message);
        return 1;
    }
    if (getenv("NM_VPN_SHIMMER_DEBUG") != NULL)
        debug = TRUE;
    if (bus_name == NULL)
        bus_name = g_strdup(SHIMMER_NM_SERVICE_TYPE);

    g_autoptr(GDBusConnection) bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
    if (bus == NULL) {
        g_printerr("nm-shimmer-service: the system bus: %s\n", error->message);
        return 1;
    }
    ShimmerNmPlugin *plugin = g_initable_new(shimmer_nm_plugin_get_type(), NULL, &error,
                                             NM_VPN_SERVICE_PLUGIN_DBUS_SERVICE_NAME, bus_name,
                                             NM_VPN_SERVICE_PLUGIN_DBUS_WATCH_PEER, !debug, NULL);
    if (plugin == NULL) {
        g_printerr("nm-shimmer-service: %s\n", error->message);
        return 1;
    }
    plugin->bus = g_object_ref(bus);
    plugin->shimmerd_watch =
        g_bus_watch_name_on_connection(bus, SHIMMERD_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE, NULL,
                                       on_shimmerd_vanished, plugin, NULL);

    main_loop = g_main_loop_new(NULL, FALSE);
    if (!persist)
        g_signal_connect(plugin, "quit", G_CALLBACK(on_quit), NULL);
    g_signal_connect(plugin, "state-changed", G_CALLBACK(on_plugin_state), NULL);
    guint sig_term = g_unix_signal_add(SIGTERM, on_signal, plugin);
    guint sig_int = g_unix_signal_add(SIGINT, on_signal, plugin);
    g_main_loop_run(main_loop);
    g_source_remove(sig_term);
    g_source_remove(sig_int);
    remove_profile(plugin);
    g_object_unref(plugin);
    g_main_loop_unref(main_loop);
    return 0;
}
