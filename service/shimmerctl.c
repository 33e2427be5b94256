/* SPDX-License-Identifier: MIT */
/*
 * shimmerctl: the command-line client of Shimmer.
 *
 * `check` works on a file alone. Every other command talks to shimmerd over
 * D-Bus (the system bus, or the bus named by --bus-address or
 * $SHIMMER_BUS_ADDRESS) through the bindings generated from dbus/ *.xml,
 * and follows signals rather than polling.
 *
 * `import` reads the profile and every file it names as the calling user
 * and sends the daemon one self-contained text: the daemon never opens a
 * user's files.
 *
 * Exit codes (also in --help and README.md):
 *   0  success (for `check`: the configuration is usable)
 *   1  the operation failed or was refused (for `check`: the configuration
 *      is refused; for `connect --wait`: the session failed)
 *   2  usage error
 *   3  the daemon or the bus cannot be reached
 *   4  not authorized
 */
#include "shimmer-build-config.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <glib.h>
#include <glib/gi18n.h>
#include <locale.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "config.h"
#include "secure.h"
#include "shimmer-dbus-generated.h"

enum {
    EXIT_OK = 0,
    EXIT_REFUSED = 1,
    EXIT_USAGE = 2,
    EXIT_UNREACHABLE = 3,
    EXIT_NOT_AUTHORIZED = 4,
};

#define BUS_NAME             "org.shimmervpn"
#define ROOT_PATH            "/org/shimmervpn"
#define SESSION_PREFIX       "/org/shimmervpn/session/"
#define IFACE_MANAGER        "org.shimmervpn.Manager1"
#define IFACE_PROFILE        "org.shimmervpn.Profile1"
#define IFACE_SESSION        "org.shimmervpn.Session1"
#define IFACE_PROPERTIES     "org.freedesktop.DBus.Properties"
#define IFACE_OBJECT_MANAGER "org.freedesktop.DBus.ObjectManager"

/* How long `disconnect` waits for the session to end, and how long
 * `status` listens for counter updates to compute rates. */
#define DISCONNECT_TIMEOUT_S 20
#define RATE_SAMPLE_MS       2500

typedef struct {
    const char *address; /* --bus-address; NULL: $SHIMMER_BUS_ADDRESS or the system bus */
    GDBusConnection *bus;
    ShimmerDBusManager1 *manager;
} Ctl;

/* ------------------------------------------------------------------ usage */

static int usage(FILE *out)
{
    fprintf(out, "%s",
            _("Usage: shimmerctl [--bus-address ADDRESS] COMMAND [ARGS]\n"
              "\n"
              "Commands:\n"
              "  check [--json|--inline] FILE     check an OpenVPN configuration file\n"
              "  import FILE [--name NAME] [--transient]\n"
              "                                   import a profile (files it names are read\n"
              "                                   as you and inlined)\n"
              "  list [--json]                    list your profiles (everyone's for root)\n"
              "  show NAME|ID|PATH [--json]       a profile's properties and configuration\n"
              "  rename NAME|ID|PATH NEW-NAME     rename a profile\n"
              "  remove NAME|ID|PATH              remove a profile (disconnecting it first)\n"
              "  connect NAME|ID|PATH [--wait] [--timeout SECONDS] [--username USER]\n"
              "          [--verbose]              start a session; with --wait follow it,\n"
              "                                   ask for credentials and return once it is\n"
              "                                   connected (0) or has failed (1)\n"
              "  disconnect NAME|ID|SESSION       end a profile's session and wait for it\n"
              "  status [NAME|SESSION] [--json] [--watch]\n"
              "                                   state, addresses, counters and rates of\n"
              "                                   sessions; --watch follows them live\n"
              "  monitor                          print every event of the daemon (state\n"
              "                                   changes, logs, credential requests) until\n"
              "                                   interrupted\n"
              "\n"
              "check prints FILE:LINE diagnostics on standard error and exits 0 when\n"
              "the file is usable, 1 when it is refused. --json prints the normalized\n"
              "configuration (secrets redacted); --inline prints an equivalent\n"
              "self-contained .ovpn with every referenced file inlined.\n"
              "\n"
              "The daemon is reached on the system bus, or on the bus given by\n"
              "--bus-address or the SHIMMER_BUS_ADDRESS environment variable.\n"
              "Credentials asked for by `connect` are read from the terminal without\n"
              "echo, or one per line from standard input when it is not a terminal.\n"
              "\n"
              "Exit status:\n"
              "  0  success (check: the configuration is usable)\n"
              "  1  the operation failed or was refused (check: the configuration is\n"
              "     refused; connect --wait: the session failed)\n"
              "  2  usage error\n"
              "  3  the daemon or the bus cannot be reached\n"
              "  4  not authorized\n"));
    return out == stdout ? EXIT_OK : EXIT_USAGE;
}

static int usage_error(const char *synopsis)
{
    fprintf(stderr, _("Usage: shimmerctl %s\n"), synopsis);
    fprintf(stderr, "%s", _("Try 'shimmerctl --help' for more information.\n"));
    return EXIT_USAGE;
}

/* One option of a command. VALUE set: the option takes an argument. */
typedef struct {
    const char *name;
    gboolean *flag;
    const char **value;
} Option;

/* Splits ARGV into OPTIONS and positional arguments (at most MAX_POS, at
 * least MIN_POS). Every command also takes --bus-address and --help.
 * Returns -1 when parsing succeeded, else the exit code to return. */
static int parse_options(Ctl *ctl, const char *synopsis, int argc, char **argv,
                         const Option *options, const char **pos, int min_pos, int max_pos)
{
    int n_pos = 0;
    gboolean only_pos = FALSE;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (only_pos || arg[0] != '-' || arg[1] == '\0') {
            if (n_pos >= max_pos) {
                fprintf(stderr, _("shimmerctl: unexpected argument '%s'\n"), arg);
                return usage_error(synopsis);
            }
            pos[n_pos++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_pos = TRUE;
            continue;
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            printf(_("Usage: shimmerctl %s\n"), synopsis);
            return EXIT_OK;
        }
        const char *eq = strchr(arg, '=');
        gsize name_len = eq ? (gsize)(eq - arg) : strlen(arg);
        const char **value = NULL;
        gboolean *flag = NULL;
        if (name_len == strlen("--bus-address") && strncmp(arg, "--bus-address", name_len) == 0)
            value = &ctl->address;
        for (const Option *o = options; o && o->name && !value && !flag; o++) {
            if (strlen(o->name) == name_len && strncmp(arg, o->name, name_len) == 0) {
                value = o->value;
                flag = o->flag;
            }
        }
        if (value == NULL && flag == NULL) {
            fprintf(stderr, _("shimmerctl: unknown option '%s'\n"), arg);
            return usage_error(synopsis);
        }
        if (flag) {
            if (eq) {
                fprintf(stderr, _("shimmerctl: option '%.*s' takes no value\n"), (int)name_len,
                        arg);
                return usage_error(synopsis);
            }
            *flag = TRUE;
        } else if (eq) {
            *value = eq + 1;
        } else if (i + 1 < argc) {
            *value = argv[++i];
        } else {
            fprintf(stderr, _("shimmerctl: option '%s' needs a value\n"), arg);
            return usage_error(synopsis);
        }
    }
    if (n_pos < min_pos)
        return usage_error(synopsis);
    for (int i = n_pos; i < max_pos; i++)
        pos[i] = NULL;
    return -1;
}

/* ------------------------------------------------------------ errors, bus */

static gboolean error_is(const char *remote, const char *const *names)
{
    for (; *names; names++) {
        gsize n = strlen(*names);
        /* A trailing '.' matches a family of errors. */
        if ((*names)[n - 1] == '.' ? strncmp(remote, *names, n) == 0 : strcmp(remote, *names) == 0)
            return TRUE;
    }
    return FALSE;
}

static int exit_code_for(const GError *error)
{
    static const char *const unauthorized[] = {
        "org.shimmervpn.Error.NotAuthorized",
        "org.freedesktop.DBus.Error.AccessDenied",
        "org.freedesktop.DBus.Error.AuthFailed",
        "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
        NULL,
    };
    static const char *const unreachable[] = {
        "org.freedesktop.DBus.Error.ServiceUnknown",
        "org.freedesktop.DBus.Error.NameHasNoOwner",
        "org.freedesktop.DBus.Error.NoReply",
        "org.freedesktop.DBus.Error.NoServer",
        "org.freedesktop.DBus.Error.Disconnected",
        "org.freedesktop.DBus.Error.Spawn.",
        NULL,
    };
    g_autofree char *remote = g_dbus_error_get_remote_error(error);
    if (remote) {
        if (error_is(remote, unauthorized))
            return EXIT_NOT_AUTHORIZED;
        if (error_is(remote, unreachable))
            return EXIT_UNREACHABLE;
        return EXIT_REFUSED;
    }
    if (error->domain == G_DBUS_ERROR) {
        switch (error->code) {
        case G_DBUS_ERROR_ACCESS_DENIED:
        case G_DBUS_ERROR_AUTH_FAILED:
            return EXIT_NOT_AUTHORIZED;
        case G_DBUS_ERROR_SERVICE_UNKNOWN:
        case G_DBUS_ERROR_NAME_HAS_NO_OWNER:
        case G_DBUS_ERROR_NO_REPLY:
        case G_DBUS_ERROR_NO_SERVER:
        case G_DBUS_ERROR_DISCONNECTED:
        case G_DBUS_ERROR_TIMEOUT:
            return EXIT_UNREACHABLE;
        default:
            return EXIT_REFUSED;
        }
    }
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CLOSED) ||
        g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
        return EXIT_UNREACHABLE;
    return EXIT_REFUSED;
}

/* Prints "shimmerctl: WHAT: MESSAGE" and returns the exit code for ERROR. */
static int fail(const char *what, GError *error)
{
    int code = exit_code_for(error);
    g_dbus_error_strip_remote_error(error);
    if (code == EXIT_NOT_AUTHORIZED)
        fprintf(stderr, _("shimmerctl: %s: not authorized: %s\n"), what, error->message);
    else if (code == EXIT_UNREACHABLE)
        fprintf(stderr, _("shimmerctl: %s: the daemon cannot be reached: %s\n"), what,
                error->message);
    else
        fprintf(stderr, "shimmerctl: %s: %s\n", what, error->message);
    return code;
}

static void ctl_clear(Ctl *ctl)
{
    g_clear_object(&ctl->manager);
    g_clear_object(&ctl->bus);
}

/* Connects to the bus and checks that shimmerd is there (starting it
 * through bus activation when it is activatable). With !REQUIRE_DAEMON only
 * the bus must be reachable. */
static int ctl_open_full(Ctl *ctl, gboolean require_daemon)
{
    g_autoptr(GError) error = NULL;
    const char *address = ctl->address;
    if (address == NULL || *address == '\0')
        address = g_getenv("SHIMMER_BUS_ADDRESS");
    if (address && *address) {
        ctl->bus = g_dbus_connection_new_for_address_sync(
            address,
            G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
            NULL, NULL, &error);
    } else {
        ctl->bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
    }
    if (ctl->bus == NULL) {
        fprintf(stderr, _("shimmerctl: cannot connect to the bus: %s\n"), error->message);
        return EXIT_UNREACHABLE;
    }
    g_dbus_connection_set_exit_on_close(ctl->bus, FALSE);
    ctl->manager = shimmer_dbus_manager1_proxy_new_sync(ctl->bus, G_DBUS_PROXY_FLAGS_NONE, BUS_NAME,
                                                        ROOT_PATH, NULL, &error);
    if (ctl->manager == NULL)
        return fail(_("cannot reach the daemon"), error);
    g_autofree char *owner = g_dbus_proxy_get_name_owner(G_DBUS_PROXY(ctl->manager));
    if (owner == NULL && !require_daemon)
        return EXIT_UNREACHABLE;
    if (owner == NULL) {
        fprintf(stderr, _("shimmerctl: the Shimmer daemon (%s) is not running on this bus\n"),
                BUS_NAME);
        return EXIT_UNREACHABLE;
    }
    return EXIT_OK;
}

static int ctl_open(Ctl *ctl)
{
    return ctl_open_full(ctl, TRUE);
}

/* A method call of the daemon. When a person sits at the terminal, polkit
 * may ask them to authenticate, so the call may wait for that. */
static GVariant *ctl_call(Ctl *ctl, const char *path, const char *iface, const char *method,
                          GVariant *args, const GVariantType *reply_type, GError **error)
{
    GDBusCallFlags flags = G_DBUS_CALL_FLAGS_NONE;
    int timeout_ms = -1;
    if (isatty(STDIN_FILENO)) {
        flags |= G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION;
        timeout_ms = 300 * 1000;
    }
    return g_dbus_connection_call_sync(ctl->bus, BUS_NAME, path, iface, method, args, reply_type,
                                       flags, timeout_ms, NULL, error);
}

static GVariant *get_property(Ctl *ctl, const char *path, const char *iface, const char *name)
{
    g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
        ctl->bus, BUS_NAME, path, IFACE_PROPERTIES, "Get", g_variant_new("(ss)", iface, name),
        G_VARIANT_TYPE("(v)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
    if (reply == NULL)
        return NULL;
    GVariant *value = NULL;
    g_variant_get(reply, "(v)", &value);
    return value;
}

/* ---------------------------------------------------------------- output */

static void json_variant(GString *out, GVariant *v)
{
    switch (g_variant_classify(v)) {
    case G_VARIANT_CLASS_BOOLEAN:
        g_string_append(out, g_variant_get_boolean(v) ? "true" : "false");
        break;
    case G_VARIANT_CLASS_BYTE:
        g_string_append_printf(out, "%u", g_variant_get_byte(v));
        break;
    case G_VARIANT_CLASS_INT16:
        g_string_append_printf(out, "%d", g_variant_get_int16(v));
        break;
    case G_VARIANT_CLASS_UINT16:
        g_string_append_printf(out, "%u", g_variant_get_uint16(v));
        break;
    case G_VARIANT_CLASS_INT32:
        g_string_append_printf(out, "%d", g_variant_get_int32(v));
        break;
    case G_VARIANT_CLASS_HANDLE:
        g_string_append_printf(out, "%d", g_variant_get_handle(v));
        break;
    case G_VARIANT_CLASS_UINT32:
        g_string_append_printf(out, "%u", g_variant_get_uint32(v));
        break;
    case G_VARIANT_CLASS_INT64:
        g_string_append_printf(out, "%" G_GINT64_FORMAT, g_variant_get_int64(v));
        break;
    case G_VARIANT_CLASS_UINT64:
        g_string_append_printf(out, "%" G_GUINT64_FORMAT, g_variant_get_uint64(v));
        break;
    case G_VARIANT_CLASS_DOUBLE: {
        char buf[G_ASCII_DTOSTR_BUF_SIZE];
        double d = g_variant_get_double(v);
        if (d != d || d - d != 0) /* NaN and infinities have no JSON form */
            g_string_append(out, "null");
        else
            g_string_append(out, g_ascii_dtostr(buf, sizeof(buf), d));
        break;
    }
    case G_VARIANT_CLASS_STRING:
    case G_VARIANT_CLASS_OBJECT_PATH:
    case G_VARIANT_CLASS_SIGNATURE:
        shimmer_json_append_string(out, g_variant_get_string(v, NULL));
        break;
    case G_VARIANT_CLASS_VARIANT: {
        g_autoptr(GVariant) inner = g_variant_get_variant(v);
        json_variant(out, inner);
        break;
    }
    case G_VARIANT_CLASS_MAYBE: {
        g_autoptr(GVariant) inner = g_variant_get_maybe(v);
        if (inner)
            json_variant(out, inner);
        else
            g_string_append(out, "null");
        break;
    }
    case G_VARIANT_CLASS_ARRAY: {
        gboolean dict = g_variant_type_is_dict_entry(g_variant_type_element(g_variant_get_type(v)));
        gsize n = g_variant_n_children(v);
        g_string_append_c(out, dict ? '{' : '[');
        for (gsize i = 0; i < n; i++) {
            g_autoptr(GVariant) child = g_variant_get_child_value(v, i);
            if (i > 0)
                g_string_append_c(out, ',');
            if (dict) {
                g_autoptr(GVariant) key = g_variant_get_child_value(child, 0);
                g_autoptr(GVariant) val = g_variant_get_child_value(child, 1);
                if (g_variant_is_of_type(key, G_VARIANT_TYPE_STRING)) {
                    shimmer_json_append_string(out, g_variant_get_string(key, NULL));
                } else {
                    g_autofree char *k = g_variant_print(key, FALSE);
                    shimmer_json_append_string(out, k);
                }
                g_string_append_c(out, ':');
                json_variant(out, val);
            } else {
                json_variant(out, child);
            }
        }
        g_string_append_c(out, dict ? '}' : ']');
        break;
    }
    case G_VARIANT_CLASS_TUPLE:
    case G_VARIANT_CLASS_DICT_ENTRY: {
        gsize n = g_variant_n_children(v);
        g_string_append_c(out, '[');
        for (gsize i = 0; i < n; i++) {
            g_autoptr(GVariant) child = g_variant_get_child_value(v, i);
            if (i > 0)
                g_string_append_c(out, ',');
            json_variant(out, child);
        }
        g_string_append_c(out, ']');
        break;
    }
    }
}

static int compare_strings(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Opens a JSON object with "Path" and every property cached in PROXY, in
 * name order; the caller adds members and the closing brace. */
static void json_open_object(GString *out, GDBusProxy *proxy)
{
    g_string_append(out, "{\"Path\":");
    shimmer_json_append_string(out, g_dbus_proxy_get_object_path(proxy));
    g_auto(GStrv) names = g_dbus_proxy_get_cached_property_names(proxy);
    if (names == NULL)
        return;
    qsort(names, g_strv_length(names), sizeof(char *), compare_strings);
    for (char **n = names; *n; n++) {
        g_autoptr(GVariant) v = g_dbus_proxy_get_cached_property(proxy, *n);
        if (v == NULL)
            continue;
        g_string_append_c(out, ',');
        shimmer_json_append_string(out, *n);
        g_string_append_c(out, ':');
        json_variant(out, v);
    }
}

/* A property value for people: strings bare, lists joined, "-" for nothing. */
static char *format_value(GVariant *v)
{
    if (v == NULL)
        return g_strdup("-");
    if (g_variant_is_of_type(v, G_VARIANT_TYPE_VARIANT)) {
        g_autoptr(GVariant) inner = g_variant_get_variant(v);
        return format_value(inner);
    }
    if (g_variant_is_of_type(v, G_VARIANT_TYPE_STRING) ||
        g_variant_is_of_type(v, G_VARIANT_TYPE_OBJECT_PATH)) {
        const char *s = g_variant_get_string(v, NULL);
        return g_strdup(*s ? s : "-");
    }
    if (g_variant_is_of_type(v, G_VARIANT_TYPE_BOOLEAN))
        return g_strdup(g_variant_get_boolean(v) ? _("yes") : _("no"));
    if (g_variant_is_of_type(v, G_VARIANT_TYPE_STRING_ARRAY) ||
        g_variant_is_of_type(v, G_VARIANT_TYPE_OBJECT_PATH_ARRAY)) {
        g_autofree const char **strv = g_variant_is_of_type(v, G_VARIANT_TYPE_STRING_ARRAY)
                                           ? g_variant_get_strv(v, NULL)
                                           : g_variant_get_objv(v, NULL);
        if (strv[0] == NULL)
            return g_strdup("-");
        return g_strjoinv(", ", (char **)strv);
    }
    if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT64))
        return g_strdup_printf("%" G_GUINT64_FORMAT, g_variant_get_uint64(v));
    if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT32))
        return g_strdup_printf("%u", g_variant_get_uint32(v));
    return g_variant_print(v, FALSE);
}

static char *format_strv(const char *const *strv)
{
    if (strv == NULL || strv[0] == NULL)
        return g_strdup("-");
    return g_strjoinv(", ", (char **)strv);
}

static const char *or_dash(const char *s)
{
    return s && *s ? s : "-";
}

static char *format_owner(guint uid)
{
    struct passwd *pw = getpwuid(uid);
    if (pw && pw->pw_name)
        return g_strdup_printf("%u (%s)", uid, pw->pw_name);
    return g_strdup_printf("%u", uid);
}

static char *format_time(guint64 unix_time)
{
    if (unix_time == 0 || unix_time > G_MAXINT64)
        return g_strdup("-");
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_local((gint64)unix_time);
    if (dt == NULL)
        return g_strdup("-");
    return g_date_time_format(dt, "%Y-%m-%d %H:%M:%S");
}

static char *format_duration(guint64 seconds)
{
    unsigned long long d = seconds / 86400;
    unsigned h = (unsigned)(seconds / 3600 % 24), m = (unsigned)(seconds / 60 % 60),
             s = (unsigned)(seconds % 60);
    /* TRANSLATORS: a duration in days, hours and minutes */
    if (d > 0)
        return g_strdup_printf(_("%llud %02uh %02um"), d, h, m);
    if (h > 0)
        return g_strdup_printf(_("%uh %02um %02us"), h, m, s);
    if (m > 0)
        return g_strdup_printf(_("%um %02us"), m, s);
    return g_strdup_printf(_("%us"), s);
}

static char *format_rate(double bytes_per_s)
{
    if (bytes_per_s < 0)
        return g_strdup("-");
    g_autofree char *size =
        g_format_size_full((guint64)(bytes_per_s + 0.5), G_FORMAT_SIZE_IEC_UNITS);
    return g_strdup_printf(_("%s/s"), size);
}

/* The session states of Session1.State, for people. */
static const char *state_label(const char *state)
{
    static const struct {
        const char *token;
        const char *label;
    } labels[] = {
        {"connecting", N_("connecting")},
        {"authenticating", N_("authenticating")},
        {"getting-config", N_("getting the configuration")},
        {"connected", N_("connected")},
        {"reconnecting", N_("reconnecting")},
        {"disconnecting", N_("disconnecting")},
        {"disconnected", N_("disconnected")},
        {"failed", N_("failed")},
    };
    if (state == NULL || *state == '\0')
        return "-";
    for (gsize i = 0; i < G_N_ELEMENTS(labels); i++) {
        if (strcmp(state, labels[i].token) == 0)
            return _(labels[i].label);
    }
    return state;
}

static gboolean state_is_final(const char *state)
{
    return g_strcmp0(state, "disconnected") == 0 || g_strcmp0(state, "failed") == 0;
}

/* Re-indents compact JSON for reading (strings are kept as they are). */
static void json_pretty(GString *out, const char *json)
{
    int depth = 0;
    gboolean in_string = FALSE, escaped = FALSE;
    for (const char *p = json; *p; p++) {
        char ch = *p;
        if (in_string) {
            g_string_append_c(out, ch);
            if (escaped)
                escaped = FALSE;
            else if (ch == '\\')
                escaped = TRUE;
            else if (ch == '"')
                in_string = FALSE;
            continue;
        }
        switch (ch) {
        case '"':
            in_string = TRUE;
            g_string_append_c(out, ch);
            break;
        case '{':
        case '[':
            g_string_append_c(out, ch);
            /* Keep empty containers on one line. */
            if (p[1] == (ch == '{' ? '}' : ']')) {
                g_string_append_c(out, p[1]);
                p++;
                break;
            }
            depth++;
            g_string_append_printf(out, "\n%*s", depth * 2, "");
            break;
        case '}':
        case ']':
            depth = depth > 0 ? depth - 1 : 0;
            g_string_append_printf(out, "\n%*s%c", depth * 2, "", ch);
            break;
        case ',':
            g_string_append_printf(out, ",\n%*s", depth * 2, "");
            break;
        case ':':
            g_string_append(out, ": ");
            break;
        case ' ':
        case '\n':
        case '\r':
        case '\t':
            break;
        default:
            g_string_append_c(out, ch);
        }
    }
    g_string_append_c(out, '\n');
}

static void print_field(const char *label, const char *value)
{
    /* Labels are translated, so pad by characters, not bytes. */
    glong width = g_utf8_strlen(label, -1);
    printf("%s%*s %s\n", label, (int)(width < 16 ? 16 - width : 0), "", value);
}

/* --------------------------------------------------------------- prompts */

static volatile sig_atomic_t prompt_interrupted;

static void on_prompt_signal(int sig)
{
    (void)sig;
    prompt_interrupted = 1;
}

/* Reads one line: from the terminal after showing LABEL (without echo
 * unless ECHO), or from standard input when it is not a terminal. Returns
 * NULL at end of input or when interrupted (then prompt_interrupted is set).
 * The caller frees the result with shimmer_str_free_secret(). */
static char *read_line(const char *label, gboolean echo)
{
    gboolean tty = isatty(STDIN_FILENO);
    /* Ctrl-C must end the read (the main loop's handler restarts it). */
    struct sigaction sa, old_sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_prompt_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_sa);
    prompt_interrupted = 0;

    struct termios old, quiet;
    gboolean restore = FALSE;
    if (tty) {
        fputs(label, stderr);
        fflush(stderr);
        if (!echo && tcgetattr(STDIN_FILENO, &old) == 0) {
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            quiet.c_lflag |= ECHONL;
            restore = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
        }
    }
    char buf[1024];
    gsize len = 0;
    gboolean ok = FALSE, too_long = FALSE;
    for (;;) {
        char ch;
        ssize_t n = read(STDIN_FILENO, &ch, 1);
        if (n < 0 && errno == EINTR && !prompt_interrupted)
            continue;
        if (n < 0 || prompt_interrupted)
            break;
        if (n == 0) {
            ok = len > 0; /* a last line without a newline still counts */
            break;
        }
        if (ch == '\n') {
            ok = TRUE;
            break;
        }
        if (len < sizeof(buf) - 1)
            buf[len++] = ch;
        else
            too_long = TRUE;
    }
    if (restore)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    if (tty && prompt_interrupted)
        fputc('\n', stderr);
    sigaction(SIGINT, &old_sa, NULL);
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    buf[len] = '\0';
    char *out = NULL;
    if (too_long)
        fprintf(stderr, "%s", _("shimmerctl: the answer is too long (at most 1023 bytes)\n"));
    else if (ok && !prompt_interrupted)
        out = g_strdup(buf);
    shimmer_wipe(buf, sizeof(buf));
    return out;
}

/* ---------------------------------------------------------------- lookup */

static ShimmerDBusProfile1 *profile_proxy(Ctl *ctl, const char *path, GError **error)
{
    return shimmer_dbus_profile1_proxy_new_sync(ctl->bus, G_DBUS_PROXY_FLAGS_NONE, BUS_NAME, path,
                                                NULL, error);
}

static ShimmerDBusSession1 *session_proxy(Ctl *ctl, const char *path, GError **error)
{
    return shimmer_dbus_session1_proxy_new_sync(ctl->bus, G_DBUS_PROXY_FLAGS_NONE, BUS_NAME, path,
                                                NULL, error);
}

static gboolean proxy_has_properties(gpointer proxy)
{
    g_auto(GStrv) names = g_dbus_proxy_get_cached_property_names(G_DBUS_PROXY(proxy));
    return names != NULL && names[0] != NULL;
}

/* Proxies for the objects Manager1.METHOD lists (ListProfiles or
 * ListSessions), in the daemon's order. NULL and *CODE on failure. */
static GPtrArray *list_objects(Ctl *ctl, const char *method, gboolean sessions, int *code)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply =
        ctl_call(ctl, ROOT_PATH, IFACE_MANAGER, method, NULL, G_VARIANT_TYPE("(ao)"), &error);
    if (reply == NULL) {
        *code =
            fail(sessions ? _("cannot list the sessions") : _("cannot list the profiles"), error);
        return NULL;
    }
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(g_object_unref);
    g_autoptr(GVariantIter) iter = NULL;
    const char *path;
    g_variant_get(reply, "(ao)", &iter);
    while (g_variant_iter_next(iter, "&o", &path)) {
        g_autoptr(GError) perr = NULL;
        gpointer proxy = sessions ? (gpointer)session_proxy(ctl, path, &perr)
                                  : (gpointer)profile_proxy(ctl, path, &perr);
        /* An object that went away meanwhile has no properties: skip it. */
        if (proxy == NULL || !proxy_has_properties(proxy)) {
            g_clear_object(&proxy);
            continue;
        }
        g_ptr_array_add(out, proxy);
    }
    return g_steal_pointer(&out);
}

/* The profile SPEC names: an object path, else a name (the caller's own
 * first when several users have one of that name), else an ID. When none
 * matches, prints why unless QUIET_MISSING, and sets *CODE. */
static ShimmerDBusProfile1 *find_profile(Ctl *ctl, const char *spec, gboolean quiet_missing,
                                         int *code)
{
    g_autoptr(GError) error = NULL;
    if (spec[0] == '/') {
        if (!g_variant_is_object_path(spec)) {
            fprintf(stderr, _("shimmerctl: '%s' is not an object path\n"), spec);
            *code = EXIT_USAGE;
            return NULL;
        }
        /* No check that it exists: the daemon's answer to the method call
         * says whether it does and whether the caller may use it. */
        ShimmerDBusProfile1 *p = profile_proxy(ctl, spec, &error);
        if (p == NULL)
            *code = fail(spec, error);
        return p;
    }
    g_autoptr(GPtrArray) all = list_objects(ctl, "ListProfiles", FALSE, code);
    if (all == NULL)
        return NULL;
    for (int pass = 0; pass < 2; pass++) {
        g_autoptr(GPtrArray) match = g_ptr_array_new();
        for (guint i = 0; i < all->len; i++) {
            ShimmerDBusProfile1 *p = all->pdata[i];
            const char *v =
                pass == 0 ? shimmer_dbus_profile1_get_name(p) : shimmer_dbus_profile1_get_id(p);
            if (g_strcmp0(v, spec) == 0)
                g_ptr_array_add(match, p);
        }
        if (match->len > 1) {
            ShimmerDBusProfile1 *mine = NULL;
            guint n_mine = 0;
            for (guint i = 0; i < match->len; i++) {
                if (shimmer_dbus_profile1_get_owner(match->pdata[i]) == getuid()) {
                    mine = match->pdata[i];
                    n_mine++;
                }
            }
            if (n_mine == 1)
                return g_object_ref(mine);
            fprintf(stderr,
                    _("shimmerctl: several profiles are called '%s'; give an object path:\n"),
                    spec);
            for (guint i = 0; i < match->len; i++)
                fprintf(stderr, "  %s\n", g_dbus_proxy_get_object_path(match->pdata[i]));
            *code = EXIT_REFUSED;
            return NULL;
        }
        if (match->len == 1)
            return g_object_ref(match->pdata[0]);
    }
    if (!quiet_missing)
        fprintf(stderr, _("shimmerctl: no profile '%s' (see 'shimmerctl list')\n"), spec);
    *code = EXIT_REFUSED;
    return NULL;
}

static const char *path_tail(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* The session SPEC names: a session's path or ID, or a profile (name, ID
 * or path) that has one. */
static ShimmerDBusSession1 *find_session(Ctl *ctl, const char *spec, int *code)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = NULL;
    if (g_str_has_prefix(spec, SESSION_PREFIX)) {
        if (!g_variant_is_object_path(spec)) {
            fprintf(stderr, _("shimmerctl: '%s' is not an object path\n"), spec);
            *code = EXIT_USAGE;
            return NULL;
        }
        path = g_strdup(spec);
    } else {
        g_autoptr(ShimmerDBusProfile1) profile = find_profile(ctl, spec, TRUE, code);
        if (profile == NULL && *code != EXIT_REFUSED)
            return NULL;
        if (profile) {
            const char *active = shimmer_dbus_profile1_get_active_session(profile);
            if (active == NULL || strcmp(active, "/") == 0) {
                fprintf(stderr, _("shimmerctl: profile '%s' has no session\n"), spec);
                *code = EXIT_REFUSED;
                return NULL;
            }
            path = g_strdup(active);
        } else if (spec[0] != '/') {
            g_autoptr(GPtrArray) sessions = list_objects(ctl, "ListSessions", TRUE, code);
            if (sessions == NULL)
                return NULL;
            for (guint i = 0; i < sessions->len && path == NULL; i++) {
                const char *p = g_dbus_proxy_get_object_path(sessions->pdata[i]);
                if (strcmp(path_tail(p), spec) == 0)
                    path = g_strdup(p);
            }
        }
        if (path == NULL) {
            fprintf(stderr, _("shimmerctl: no profile or session '%s' (see 'shimmerctl list')\n"),
                    spec);
            *code = EXIT_REFUSED;
            return NULL;
        }
    }
    ShimmerDBusSession1 *s = session_proxy(ctl, path, &error);
    if (s == NULL)
        *code = fail(path, error);
    return s;
}

/* The name of the profile at PATH, or PATH itself when it cannot be read. */
static char *profile_name(Ctl *ctl, const char *path)
{
    if (path == NULL || strcmp(path, "/") == 0)
        return g_strdup("-");
    g_autoptr(GVariant) v = get_property(ctl, path, IFACE_PROFILE, "Name");
    if (v && g_variant_is_of_type(v, G_VARIANT_TYPE_STRING))
        return g_variant_dup_string(v, NULL);
    return g_strdup(path);
}

/* ------------------------------------------------------------ follow */

/* Following the daemon's signals: every command that waits for something
 * subscribes to all signals from org.shimmervpn before it acts, so that no
 * event of the object it creates is missed, and stops when the daemon
 * leaves the bus. */
typedef struct Follow Follow;
typedef void (*FollowSignal)(Follow *f, const char *path, const char *iface, const char *member,
                             GVariant *params);
struct Follow {
    Ctl *ctl;
    GMainLoop *loop;
    FollowSignal on_signal;
    gpointer data;
    guint subscription;
    guint name_watch;
    guint sigint, sigterm, timeout;
    gboolean interrupted, timed_out, daemon_gone;
};

static void follow_signal_cb(GDBusConnection *bus, const char *sender, const char *path,
                             const char *iface, const char *member, GVariant *params, gpointer user)
{
    Follow *f = user;
    f->on_signal(f, path, iface, member, params);
}

static void follow_name_vanished(GDBusConnection *bus, const char *name, gpointer user)
{
    Follow *f = user;
    f->daemon_gone = TRUE;
    g_main_loop_quit(f->loop);
}

static gboolean follow_on_unix_signal(gpointer user)
{
    Follow *f = user;
    f->interrupted = TRUE;
    g_main_loop_quit(f->loop);
    return G_SOURCE_CONTINUE;
}

static gboolean follow_on_timeout(gpointer user)
{
    Follow *f = user;
    f->timed_out = TRUE;
    f->timeout = 0;
    g_main_loop_quit(f->loop);
    return G_SOURCE_REMOVE;
}

static void follow_start(Follow *f, Ctl *ctl, FollowSignal on_signal, gpointer data,
                         gboolean watch_name)
{
    f->ctl = ctl;
    f->loop = g_main_loop_new(NULL, FALSE);
    f->on_signal = on_signal;
    f->data = data;
    f->subscription =
        g_dbus_connection_signal_subscribe(ctl->bus, BUS_NAME, NULL, NULL, NULL, NULL,
                                           G_DBUS_SIGNAL_FLAGS_NONE, follow_signal_cb, f, NULL);
    if (watch_name)
        f->name_watch = g_bus_watch_name_on_connection(
            ctl->bus, BUS_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE, NULL, follow_name_vanished, f, NULL);
    f->sigint = g_unix_signal_add(SIGINT, follow_on_unix_signal, f);
    f->sigterm = g_unix_signal_add(SIGTERM, follow_on_unix_signal, f);
}

static void follow_set_timeout(Follow *f, guint ms)
{
    if (f->timeout)
        g_source_remove(f->timeout);
    f->timeout = ms ? g_timeout_add(ms, follow_on_timeout, f) : 0;
}

static void follow_stop(Follow *f)
{
    if (f->subscription)
        g_dbus_connection_signal_unsubscribe(f->ctl->bus, f->subscription);
    if (f->name_watch)
        g_bus_unwatch_name(f->name_watch);
    if (f->sigint)
        g_source_remove(f->sigint);
    if (f->sigterm)
        g_source_remove(f->sigterm);
    if (f->timeout)
        g_source_remove(f->timeout);
    g_clear_pointer(&f->loop, g_main_loop_unref);
    memset(f, 0, sizeof(*f));
}

/* ---------------------------------------------------------------- check */

static int cmd_check(int argc, char **argv)
{
    bool json = false, inline_out = false;
    const char *file = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--inline") == 0)
            inline_out = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return usage(stdout);
        else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, _("shimmerctl check: unknown option '%s'\n"), argv[i]);
            return EXIT_USAGE;
        } else if (file == NULL)
            file = argv[i];
        else {
            fprintf(stderr, "%s", _("shimmerctl check: give one file\n"));
            return EXIT_USAGE;
        }
    }
    if (file == NULL || (json && inline_out)) {
        fprintf(stderr, "%s", _("Usage: shimmerctl check [--json|--inline] FILE\n"));
        return EXIT_USAGE;
    }

    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) bytes = NULL;
    if (!shimmer_config_file_loader(file, &bytes, &error, NULL)) {
        fprintf(stderr, _("%s: error: cannot read the file: %s\n"), file, error->message);
        return EXIT_REFUSED;
    }
    gsize len;
    const char *text = g_bytes_get_data(bytes, &len);
    g_autoptr(ShimmerConfig) cfg =
        shimmer_config_parse(file, NULL, text ? text : "", len, shimmer_config_file_loader, NULL);

    g_autoptr(GString) diags = g_string_new(NULL);
    shimmer_config_format_diagnostics(cfg, diags);
    fputs(diags->str, stderr);
    if (shimmer_config_has_errors(cfg))
        return EXIT_REFUSED;

    if (json) {
        g_autofree char *out = shimmer_config_to_json(cfg);
        fputs(out, stdout);
    } else if (inline_out) {
        char *out = shimmer_config_to_ovpn(cfg);
        if (out == NULL) {
            const char *why = shimmer_config_inline_error(cfg);
            fprintf(stderr, _("%s: error: cannot make it self-contained: %s\n"), file,
                    why ? why : _("unknown reason"));
            return EXIT_REFUSED;
        }
        fputs(out, stdout);
        explicit_bzero(out, strlen(out));
        g_free(out);
    }
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_REFUSED;
}

/* ---------------------------------------------------------------- import */

/* "work.ovpn" -> "work"; a file name that is not UTF-8 is made readable. */
static char *default_profile_name(const char *file)
{
    g_autofree char *base = g_path_get_basename(file);
    g_autofree char *display = g_filename_display_name(base);
    if (g_str_has_suffix(display, ".ovpn") && strlen(display) > strlen(".ovpn"))
        display[strlen(display) - strlen(".ovpn")] = '\0';
    return g_steal_pointer(&display);
}

static int cmd_import(Ctl *ctl, int argc, char **argv)
{
    static const char synopsis[] = "import FILE [--name NAME] [--transient]";
    const char *name = NULL;
    gboolean transient = FALSE;
    const char *pos[1];
    const Option options[] = {
        {"--name", NULL, &name},
        {"--transient", &transient, NULL},
        {NULL, NULL, NULL},
    };
    int r = parse_options(ctl, synopsis, argc, argv, options, pos, 1, 1);
    if (r >= 0)
        return r;
    const char *file = pos[0];

    /* Read and check everything here, as the calling user. */
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) bytes = NULL;
    if (!shimmer_config_file_loader(file, &bytes, &error, NULL)) {
        fprintf(stderr, _("%s: error: cannot read the file: %s\n"), file, error->message);
        return EXIT_REFUSED;
    }
    gsize len;
    const char *text = g_bytes_get_data(bytes, &len);
    g_autoptr(ShimmerConfig) cfg =
        shimmer_config_parse(file, NULL, text ? text : "", len, shimmer_config_file_loader, NULL);
    g_autoptr(GString) diags = g_string_new(NULL);
    shimmer_config_format_diagnostics(cfg, diags);
    fputs(diags->str, stderr);
    if (shimmer_config_has_errors(cfg)) {
        fprintf(stderr, _("shimmerctl: %s is refused; nothing was imported\n"), file);
        return EXIT_REFUSED;
    }
    char *inlined = shimmer_config_to_ovpn(cfg);
    if (inlined == NULL) {
        const char *why = shimmer_config_inline_error(cfg);
        fprintf(stderr, _("shimmerctl: %s cannot be made self-contained: %s\n"), file,
                why ? why : _("unknown reason"));
        return EXIT_REFUSED;
    }
    if (!g_utf8_validate(inlined, -1, NULL)) {
        fprintf(stderr, _("shimmerctl: %s is not valid UTF-8 text\n"), file);
        shimmer_str_free_secret(inlined);
        return EXIT_REFUSED;
    }
    g_autofree char *profile = name ? g_strdup(name) : default_profile_name(file);
    if (!g_utf8_validate(profile, -1, NULL)) {
        fprintf(stderr, "%s", _("shimmerctl: the profile name must be UTF-8 text\n"));
        shimmer_str_free_secret(inlined);
        return EXIT_USAGE;
    }

    r = ctl_open(ctl);
    if (r != EXIT_OK) {
        shimmer_str_free_secret(inlined);
        return r;
    }
    GVariantBuilder opts;
    g_variant_builder_init(&opts, G_VARIANT_TYPE_VARDICT);
    if (transient)
        g_variant_builder_add(&opts, "{sv}", "persistent", g_variant_new_boolean(FALSE));
    g_autoptr(GVariant) reply =
        ctl_call(ctl, ROOT_PATH, IFACE_MANAGER, "ImportProfile",
                 g_variant_new("(ss@a{sv})", profile, inlined, g_variant_builder_end(&opts)),
                 G_VARIANT_TYPE("(o)"), &error);
    shimmer_str_free_secret(inlined);
    if (reply == NULL) {
        g_autofree char *what = g_strdup_printf(_("cannot import %s"), file);
        return fail(what, error);
    }
    const char *path;
    g_variant_get(reply, "(&o)", &path);
    printf(_("Imported profile '%s' (%s)\n"), profile, path);
    return EXIT_OK;
}

/* ------------------------------------------------------------ list, show */

static char *session_state_of(Ctl *ctl, const char *session)
{
    if (session == NULL || strcmp(session, "/") == 0)
        return NULL;
    g_autoptr(GVariant) v = get_property(ctl, session, IFACE_SESSION, "State");
    if (v && g_variant_is_of_type(v, G_VARIANT_TYPE_STRING))
        return g_variant_dup_string(v, NULL);
    return NULL;
}

static int cmd_list(Ctl *ctl, int argc, char **argv)
{
    static const char synopsis[] = "list [--json]";
    gboolean json = FALSE;
    const Option options[] = {{"--json", &json, NULL}, {NULL, NULL, NULL}};
    int r = parse_options(ctl, synopsis, argc, argv, options, NULL, 0, 0);
    if (r >= 0)
        return r;
    if ((r = ctl_open(ctl)) != EXIT_OK)
        return r;
    int code = EXIT_OK;
    g_autoptr(GPtrArray) profiles = list_objects(ctl, "ListProfiles", FALSE, &code);
    if (profiles == NULL)
        return code;

    if (json) {
        g_autoptr(GString) out = g_string_new("[");
        for (guint i = 0; i < profiles->len; i++) {
            ShimmerDBusProfile1 *p = profiles->pdata[i];
            if (i > 0)
                g_string_append_c(out, ',');
            json_open_object(out, G_DBUS_PROXY(p));
            g_autofree char *state =
                session_state_of(ctl, shimmer_dbus_profile1_get_active_session(p));
            g_string_append(out, ",\"SessionState\":");
            if (state)
                shimmer_json_append_string(out, state);
            else
                g_string_append(out, "null");
            g_string_append_c(out, '}');
        }
        g_string_append(out, "]\n");
        fputs(out->str, stdout);
        return fflush(stdout) == 0 ? EXIT_OK : EXIT_REFUSED;
    }

    if (profiles->len == 0) {
        printf("%s", _("No profiles. Import one with 'shimmerctl import FILE'.\n"));
        return EXIT_OK;
    }
    /* Columns: NAME ID OWNER CREDENTIALS SESSION REMOTES */
    g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
    const char *head[] = {_("NAME"),    _("ID"),      _("OWNER"), _("CREDENTIALS"),
                          _("SESSION"), _("REMOTES"), NULL};
    g_ptr_array_add(rows, g_strdupv((char **)head));
    for (guint i = 0; i < profiles->len; i++) {
        ShimmerDBusProfile1 *p = profiles->pdata[i];
        g_autofree char *state = session_state_of(ctl, shimmer_dbus_profile1_get_active_session(p));
        char **row = g_new0(char *, 7);
        row[0] = g_strdup(or_dash(shimmer_dbus_profile1_get_name(p)));
        row[1] = g_strdup(or_dash(shimmer_dbus_profile1_get_id(p)));
        row[2] = format_owner(shimmer_dbus_profile1_get_owner(p));
        row[3] = g_strdup(or_dash(shimmer_dbus_profile1_get_credentials(p)));
        row[4] = g_strdup(state ? state_label(state) : "-");
        row[5] = format_strv(shimmer_dbus_profile1_get_remotes(p));
        g_ptr_array_add(rows, row);
    }
    glong width[5] = {0};
    for (guint i = 0; i < rows->len; i++) {
        char **row = rows->pdata[i];
        for (int c = 0; c < 5; c++)
            width[c] = MAX(width[c], g_utf8_strlen(row[c], -1));
    }
    for (guint i = 0; i < rows->len; i++) {
        char **row = rows->pdata[i];
        for (int c = 0; c < 5; c++)
            printf("%s%*s  ", row[c], (int)(width[c] - g_utf8_strlen(row[c], -1)), "");
        printf("%s\n", row[5]);
    }
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_REFUSED;
}

static int cmd_show(Ctl *ctl, int argc, char **argv)
{
    static const char synopsis[] = "show NAME|ID|PATH [--json]";
    gboolean json = FALSE;
    const char *pos[1];
    const Option options[] = {{"--json", &json, NULL}, {NULL, NULL, NULL}};
    int r = parse_options(ctl, synopsis, argc, argv, options, pos, 1, 1);
    if (r >= 0)
        return r;
    if ((r = ctl_open(ctl)) != EXIT_OK)
        return r;
    int code = EXIT_OK;
    g_autoptr(ShimmerDBusProfile1) p = find_profile(ctl, pos[0], FALSE, &code);
    if (p == NULL)
        return code;
    const char *path = g_dbus_proxy_get_object_path(G_DBUS_PROXY(p));

    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply =
        ctl_call(ctl, path, IFACE_PROFILE, "GetConfiguration", NULL, G_VARIANT_TYPE("(s)"), &error);
    if (reply == NULL) {
        g_autofree char *what = g_strdup_printf(_("cannot read profile %s"), pos[0]);
        return fail(what, error);
    }
    if (!proxy_has_properties(p)) {
        /* GetConfiguration worked, so the object is there: its properties
         * arrive late only if it was created just now. Ask once more. */
        g_clear_object(&p);
        p = profile_proxy(ctl, path, &error);
        if (p == NULL)
            return fail(path, error);
    }
    const char *config;
    g_variant_get(reply, "(&s)", &config);
    const char *active = shimmer_dbus_profile1_get_active_session(p);
    g_autofree char *state = session_state_of(ctl, active);

    if (json) {
        g_autoptr(GString) out = g_string_new(NULL);
        json_open_object(out, G_DBUS_PROXY(p));
        g_string_append(out, ",\"SessionState\":");
        if (state)
            shimmer_json_append_string(out, state);
        else
            g_string_append(out, "null");
        /* The daemon's configuration is JSON already. */
        g_autofree char *trimmed = g_strstrip(g_strdup(config));
        g_string_append(out, ",\"Configuration\":");
        g_string_append(out, *trimmed ? trimmed : "null");
        g_string_append(out, "}\n");
        fputs(out->str, stdout);
        return fflush(stdout) == 0 ? EXIT_OK : EXIT_REFUSED;
    }

    g_autofree char *owner = format_owner(shimmer_dbus_profile1_get_owner(p));
    g_autofree char *created = format_time(shimmer_dbus_profile1_get_created(p));
    g_autofree char *remotes = format_strv(shimmer_dbus_profile1_get_remotes(p));
    g_autofree char *session = NULL;
    if (active && strcmp(active, "/") != 0)
        session = g_strdup_printf("%s (%s)", active, state_label(state));
    print_field(_("Name:"), or_dash(shimmer_dbus_profile1_get_name(p)));
    print_field(_("ID:"), or_dash(shimmer_dbus_profile1_get_id(p)));
    print_field(_("Path:"), path);
    print_field(_("Owner:"), owner);
    print_field(_("Persistent:"), shimmer_dbus_profile1_get_persistent(p) ? _("yes") : _("no"));
    print_field(_("Imported:"), created);
    print_field(_("Remotes:"), remotes);
    print_field(_("Credentials:"), or_dash(shimmer_dbus_profile1_get_credentials(p)));
    const char *challenge = shimmer_dbus_profile1_get_static_challenge(p);
    if (challenge && *challenge)
        print_field(_("Challenge:"), challenge);
    print_field(_("Session:"), session ? session : _("none"));
    printf("%s\n", _("Configuration (secrets redacted):"));
    g_autoptr(GString) pretty = g_string_new(NULL);
    json_pretty(pretty, config);
    fputs(pretty->str, stdout);
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_REFUSED;
}

static int cmd_rename(Ctl *ctl, int argc, char **argv)
{
    static const char synopsis[] = "rename NAME|ID|PATH NEW-NAME";
    const char *pos[2];
    int r = parse_options(ctl, synopsis, argc, argv, NULL, pos, 2, 2);
    if (r >= 0)
        return r;
    if (!g_utf8_validate(pos[1], -1, NULL)) {
        fprintf(stderr, "%s", _("shimmerctl: the profile name must be UTF-8 text\n"));
        return EXIT_USAGE;
    }
    if ((r = ctl_open(ctl)) != EXIT_OK)
        return r;
    int code = EXIT_OK;
    g_autoptr(ShimmerDBusProfile1) p = find_profile(ctl, pos[0], FALSE, &code);
    if (p == NULL)
        return code;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply =
        ctl_call(ctl, g_dbus_proxy_get_object_path(G_DBUS_PROXY(p)), IFACE_PROFILE, "Rename",
                 g_variant_new("(s)", pos[1]), NULL, &error);
    if (reply == NULL) {
        g_autofree char *what = g_strdup_printf(_("cannot rename %s"), pos[0]);
        return fail(what, error);
    }
    printf(_("Renamed profile '%s' to '%s'\n"), pos[0], pos[1]);
    return EXIT_OK;
}

static int cmd_remove(Ctl *ctl, int argc, char **argv)
{
    static const char synopsis[] = "remove NAME|ID|PATH";
    const char *pos[1];
    int r = parse_options(ctl, synopsis, argc, argv, NULL, pos, 1, 1);
    if (r >= 0)
        return r;
    if ((r = ctl_open(ctl)) != EXIT_OK)
        return r;
    int code = EXIT_OK;
    g_autoptr(ShimmerDBusProfile1) p = find_profile(ctl, pos[0], FALSE, &code);
    if (p == NULL)
        return code;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = ctl_call(ctl, g_dbus_proxy_get_object_path(G_DBUS_PROXY(p)),
                                         IFACE_PROFILE, "Remove", NULL, NULL, &error);
    if (reply == NULL) {
        g_autofree char *what = g_strdup_printf(_("cannot remove %s"), pos[0]);
        return fail(what, error);
    }
    printf(_("Removed profile '%s'\n"), pos[0]);
    return EXIT_OK;
}

/* --------------------------------------------------------------- connect */

typedef struct {
    Ctl *ctl;
    Follow follow;
    char *session; /* its path, once Connect returned */
    char *profile_name;
    const char *username; /* --username */
    GHashTable *props;    /* the session's properties: name -> GVariant */
    char *last_state;
    gboolean verbose;
    gboolean done;
    int code;
} Connecting;

static const char *prop_string(GHashTable *props, const char *name)
{
    GVariant *v = g_hash_table_lookup(props, name);
    if (v && g_variant_is_of_type(v, G_VARIANT_TYPE_STRING))
        return g_variant_get_string(v, NULL);
    return NULL;
}

static char *prop_format(GHashTable *props, const char *name)
{
    return format_value(g_hash_table_lookup(props, name));
}

static void merge_props(GHashTable *props, GVariant *dict)
{
    GVariantIter iter;
    const char *name;
    GVariant *value;
    g_variant_iter_init(&iter, dict);
    while (g_variant_iter_next(&iter, "{&sv}", &name, &value))
        g_hash_table_replace(props, g_strdup(name), value);
}

static void connecting_finish(Connecting *c, int code)
{
    c->done = TRUE;
    c->code = code;
    g_main_loop_quit(c->follow.loop);
}

static void connecting_check_state(Connecting *c)
{
    const char *state = prop_string(c->props, "State");
    if (state == NULL || g_strcmp0(state, c->last_state) == 0 || c->done)
        return;
    g_free(c->last_state);
    c->last_state = g_strdup(state);
    const char *reason = prop_string(c->props, "StateReason");
    if (strcmp(state, "connected") == 0) {
        g_autofree char *addresses = prop_format(c->props, "Addresses");
        printf(_("Connected: %s on %s, addresses %s, server %s (%s, %s)\n"), c->profile_name,
               or_dash(prop_string(c->props, "Interface")), addresses,
               or_dash(prop_string(c->props, "RemoteAddress")),
               or_dash(prop_string(c->props, "Cipher")),
               or_dash(prop_string(c->props, "TlsVersion")));
        connecting_finish(c, EXIT_OK);
    } else if (state_is_final(state)) {
        if (strcmp(state, "failed") == 0)
            fprintf(stderr, _("Connection failed: %s\n"),
                    reason && *reason ? reason : _("no reason given"));
        else
            fprintf(stderr, _("Disconnected before the tunnel came up: %s\n"),
                    reason && *reason ? reason : _("no reason given"));
        connecting_finish(c, EXIT_REFUSED);
    } else {
        printf("  %s\n", state_label(state));
    }
    fflush(stdout);
}

static void connecting_disconnect(Connecting *c)
{
    if (c->session == NULL)
        return;
    g_autoptr(GVariant) reply =
        g_dbus_connection_call_sync(c->ctl->bus, BUS_NAME, c->session, IFACE_SESSION, "Disconnect",
                                    NULL, NULL, G_DBUS_CALL_FLAGS_NONE, 10000, NULL, NULL);
}

/* Answers CredentialsRequested: asks for each field and sends them back. */
static void connecting_credentials(Connecting *c, GVariant *params)
{
    g_autofree const char **fields = NULL;
    const char *prompt_text;
    gboolean echo;
    g_autoptr(GVariant) fv = NULL;
    g_variant_get(params, "(@as&sb)", &fv, &prompt_text, &echo);
    fields = g_variant_get_strv(fv, NULL);

    gboolean has_challenge = FALSE;
    for (const char **f = fields; *f; f++)
        has_challenge |= strcmp(*f, "otp") == 0 || strcmp(*f, "response") == 0;
    if (*prompt_text && !has_challenge)
        fprintf(stderr, "%s\n", prompt_text);

    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE("a{ss}"));
    g_autoptr(GPtrArray) answers =
        g_ptr_array_new_with_free_func((GDestroyNotify)shimmer_str_free_secret);
    gboolean complete = TRUE;
    for (const char **f = fields; *f && complete; f++) {
        char *answer = NULL;
        g_autofree char *label = NULL;
        if (strcmp(*f, "username") == 0 && c->username) {
            answer = g_strdup(c->username);
        } else if (strcmp(*f, "username") == 0) {
            answer = read_line(_("Username: "), TRUE);
        } else if (strcmp(*f, "password") == 0) {
            answer = read_line(_("Password: "), FALSE);
        } else if (strcmp(*f, "key-passphrase") == 0) {
            answer = read_line(_("Private key passphrase: "), FALSE);
        } else if (strcmp(*f, "otp") == 0 || strcmp(*f, "response") == 0) {
            if (*prompt_text)
                label = g_strdup_printf("%s ", prompt_text);
            answer = read_line(label                    ? label
                               : strcmp(*f, "otp") == 0 ? _("One-time password: ")
                                                        : _("Response: "),
                               echo);
        } else {
            label = g_strdup_printf("%s: ", *f);
            answer = read_line(label, FALSE);
        }
        if (answer == NULL) {
            complete = FALSE;
            break;
        }
        g_ptr_array_add(answers, answer);
        g_variant_builder_add(&b, "{ss}", *f, answer);
    }
    if (!complete) {
        g_variant_builder_clear(&b);
        if (prompt_interrupted)
            fprintf(stderr, "%s", _("Interrupted; disconnecting.\n"));
        else
            fprintf(stderr, "%s",
                    _("shimmerctl: the server asks for credentials but none were given; "
                      "disconnecting\n"));
        connecting_disconnect(c);
        connecting_finish(c, EXIT_REFUSED);
        return;
    }
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
        c->ctl->bus, BUS_NAME, c->session, IFACE_SESSION, "ProvideCredentials",
        g_variant_new("(a{ss})", &b), NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
    if (reply == NULL) {
        int code = fail(_("cannot send the credentials"), error);
        connecting_disconnect(c);
        connecting_finish(c, code);
    }
}

static void connecting_signal(Follow *f, const char *path, const char *iface, const char *member,
                              GVariant *params)
{
    Connecting *c = f->data;
    if (c->session == NULL || c->done)
        return;
    if (strcmp(member, "InterfacesRemoved") == 0 && strcmp(path, ROOT_PATH) == 0 &&
        g_variant_is_of_type(params, G_VARIANT_TYPE("(oas)"))) {
        const char *gone;
        g_variant_get_child(params, 0, "&o", &gone);
        if (strcmp(gone, c->session) == 0) {
            const char *reason = prop_string(c->props, "StateReason");
            fprintf(stderr, _("The session ended: %s\n"),
                    reason && *reason ? reason : _("no reason given"));
            connecting_finish(c, EXIT_REFUSED);
        }
        return;
    }
    if (strcmp(path, c->session) != 0)
        return;
    if (strcmp(iface, IFACE_PROPERTIES) == 0 && strcmp(member, "PropertiesChanged") == 0 &&
        g_variant_is_of_type(params, G_VARIANT_TYPE("(sa{sv}as)"))) {
        const char *which;
        g_autoptr(GVariant) changed = NULL;
        g_variant_get(params, "(&s@a{sv}@as)", &which, &changed, NULL);
        if (strcmp(which, IFACE_SESSION) != 0)
            return;
        merge_props(c->props, changed);
        connecting_check_state(c);
    } else if (strcmp(iface, IFACE_SESSION) == 0 && strcmp(member, "CredentialsRequested") == 0 &&
               g_variant_is_of_type(params, G_VARIANT_TYPE("(assb)"))) {
        connecting_credentials(c, params);
    } else if (strcmp(iface, IFACE_SESSION) == 0 && strcmp(member, "Log") == 0 &&
               g_variant_is_of_type(params, G_VARIANT_TYPE("(us)"))) {
        guint level;
        const char *message;
        g_variant_get(params, "(u&s)", &level, &message);
        if (level == 0)
            fprintf(stderr, _("  error: %s\n"), message);
        else if (level == 1)
            fprintf(stderr, _("  warning: %s\n"), message);
        else if (c->verbose)
            fprintf(stderr, "  %s\n", message);
    }
}

static void connecting_got_all(GObject *source, GAsyncResult *result, gpointer user)
{
    Connecting *c = user;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply =
        g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
    if (c->follow.loop == NULL)
        return; /* the command is over */
    if (reply) {
        g_autoptr(GVariant) all = g_variant_get_child_value(reply, 0);
        merge_props(c->props, all);
        connecting_check_state(c);
    }
}

static int cmd_connect(Ctl *ctl, int argc, char **argv)
{
    static const char synopsis[] =
        "connect NAME|ID|PATH [--wait] [--timeout SECONDS] [--username USER] [--verbose]";
    gboolean wait = FALSE, verbose = FALSE;
    const char *timeout = NULL, *username = NULL;
    const char *pos[1];
    const Option options[] = {
        {"--wait", &wait, NULL},
        {"--verbose", &verbose, NULL},
        {"--timeout", NULL, &timeout},
        {"--username", NULL, &username},
        {NULL, NULL, NULL},
    };
    int r = parse_options(ctl, synopsis, argc, argv, options, pos, 1, 1);
    if (r >= 0)
        return r;
    guint64 timeout_s = 0;
    if (timeout && (!g_ascii_string_to_unsigned(timeout, 10, 1, 86400, &timeout_s, NULL))) {
        fprintf(stderr, _("shimmerctl: --timeout wants seconds (1-86400), not '%s'\n"), timeout);
        return EXIT_USAGE;
    }
    if ((r = ctl_open(ctl)) != EXIT_OK)
        return r;
    int code = EXIT_OK;
    g_autoptr(ShimmerDBusProfile1) p = find_profile(ctl, pos[0], FALSE, &code);
    if (p == NULL)
        return code;
    const char *ppath = g_dbus_proxy_get_object_path(G_DBUS_PROXY(p));

    Connecting c = {.ctl = ctl, .username = username, .verbose = verbose};
    c.profile_name =
        g_strdup(shimmer_dbus_profile1_get_name(p) ? shimmer_dbus_profile1_get_name(p) : pos[0]);
    c.props =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_variant_unref);
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = NULL;

    /* A profile that says "prompt" needs a user name and password: ask now
     * and hand them over with Connect. */
    GVariantBuilder opts;
    g_variant_builder_init(&opts, G_VARIANT_TYPE_VARDICT);
    char *user = NULL, *password = NULL;
    if (g_strcmp0(shimmer_dbus_profile1_get_credentials(p), "prompt") == 0) {
        user = username ? g_strdup(username) : read_line(_("Username: "), TRUE);
        password = user ? read_line(_("Password: "), FALSE) : NULL;
        if (user == NULL || password == NULL) {
            fprintf(stderr, "%s",
                    prompt_interrupted ? _("Interrupted.\n")
                                       : _("shimmerctl: this profile needs a user name and a "
                                           "password\n"));
            shimmer_str_free_secret(user);
            shimmer_str_free_secret(password);
            g_variant_builder_clear(&opts);
            code = EXIT_REFUSED;
            goto out;
        }
        g_variant_builder_add(&opts, "{sv}", "username", g_variant_new_string(user));
        g_variant_builder_add(&opts, "{sv}", "password", g_variant_new_string(password));
        shimmer_str_free_secret(user);
        shimmer_str_free_secret(password);
    } else if (username) {
        g_variant_builder_add(&opts, "{sv}", "username", g_variant_new_string(username));
    }

    /* Subscribe before Connect, so that nothing the new session says is
     * missed. */
    if (wait)
        follow_start(&c.follow, ctl, connecting_signal, &c, TRUE);
    reply = ctl_call(ctl, ppath, IFACE_PROFILE, "Connect", g_variant_new("(a{sv})", &opts),
                     G_VARIANT_TYPE("(o)"), &error);
    if (reply == NULL) {
        g_autofree char *what = g_strdup_printf(_("cannot connect %s"), c.profile_name);
        code = fail(what, error);
        goto out;
    }
    g_variant_get(reply, "(o)", &c.session);
    if (!wait) {
        printf(_("Connecting %s: session %s\n"), c.profile_name, c.session);
        code = EXIT_OK;
        goto out;
    }
    printf(_("Connecting %s (session %s)\n"), c.profile_name, c.session);
    fflush(stdout);
    /* Asynchronously, so that the answer is handled in order with the
     * signals that came before it. */
    g_dbus_connection_call(ctl->bus, BUS_NAME, c.session, IFACE_PROPERTIES, "GetAll",
                           g_variant_new("(s)", IFACE_SESSION), G_VARIANT_TYPE("(a{sv})"),
                           G_DBUS_CALL_FLAGS_NONE, -1, NULL, connecting_got_all, &c);
    if (timeout_s)
        follow_set_timeout(&c.follow, (guint)timeout_s * 1000);
    g_main_loop_run(c.follow.loop);
    if (!c.done) {
        if (c.follow.daemon_gone) {
            fprintf(stderr, "%s", _("shimmerctl: the daemon left the bus\n"));
            code = EXIT_UNREACHABLE;
        } else if (c.follow.interrupted) {
            fprintf(stderr, "%s", _("Interrupted; disconnecting.\n"));
            connecting_disconnect(&c);
            code = EXIT_REFUSED;
        } else {
            fprintf(stderr,
                    _("shimmerctl: not connected after %s seconds (state: %s); the "
                      "session goes on\n"),
                    timeout, state_label(c.last_state));
            code = EXIT_REFUSED;
        }
    } else {
        code = c.code;
    }
out:
    if (c.follow.loop)
        follow_stop(&c.follow);
    g_free(c.session);
    g_free(c.profile_name);
    g_free(c.last_state);
    g_hash_table_unref(c.props);
    return code;
}

/* ------------------------------------------------------------ disconnect */

typedef struct {
    const char *session;
    gboolean ended;
    char *state;
    char *reason;
} Ending;

static void ending_signal(Follow *f, const char *path, const char *iface, const char *member,
                          GVariant *params)
{
    Ending *e = f->data;
    if (strcmp(member, "InterfacesRemoved") == 0 && strcmp(path, ROOT_PATH) == 0 &&
        g_variant_is_of_type(params, G_VARIANT_TYPE("(oas)"))) {
        const char *gone;
        g_variant_get_child(params, 0, "&o", &gone);
        if (strcmp(gone, e->session) == 0) {
            e->ended = TRUE;
            g_main_loop_quit(f->loop);
        }
        return;
    }
    if (strcmp(path, e->session) != 0 || strcmp(member, "PropertiesChanged") != 0 ||
        !g_variant_is_of_type(params, G_VARIANT_TYPE("(sa{sv}as)")))
        return;
    g_autoptr(GVariant) changed = g_variant_get_child_value(params, 1);
    const char *s;
    if (g_variant_lookup(changed, "StateReason", "&s", &s)) {
        g_free(e->reason);
        e->reason = g_strdup(s);
    }
    if (g_variant_lookup(changed, "State", "&s", &s)) {
        g_free(e->state);
        e->state = g_strdup(s);
        if (state_is_final(s)) {
            e->ended = TRUE;
            g_main_loop_quit(f->loop);
        }
    }
}

static int cmd_disconnect(Ctl *ctl, int argc, char **argv)
{
    static const char synopsis[] = "disconnect NAME|ID|SESSION";
    const char *pos[1];
    int r = parse_options(ctl, synopsis, argc, argv, NULL, pos, 1, 1);
    if (r >= 0)
        return r;
    if ((r = ctl_open(ctl)) != EXIT_OK)
        return r;
    int code = EXIT_OK;
    g_autoptr(ShimmerDBusSession1) s = find_session(ctl, pos[0], &code);
    if (s == NULL)
        return code;
    const char *path = g_dbus_proxy_get_object_path(G_DBUS_PROXY(s));
    if (state_is_final(shimmer_dbus_session1_get_state(s))) {
        printf(_("Session %s has already ended (%s)\n"), path,
               state_label(shimmer_dbus_session1_get_state(s)));
        return EXIT_OK;
    }

    Ending e = {.session = path};
    Follow f = {0};
    follow_start(&f, ctl, ending_signal, &e, TRUE);
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply =
        ctl_call(ctl, path, IFACE_SESSION, "Disconnect", NULL, NULL, &error);
    if (reply == NULL) {
        g_autofree char *what = g_strdup_printf(_("cannot disconnect %s"), pos[0]);
        code = fail(what, error);
    } else {
        follow_set_timeout(&f, DISCONNECT_TIMEOUT_S * 1000);
        /* The state may have changed before we subscribed: read it once. */
        g_autoptr(GVariant) now = get_property(ctl, path, IFACE_SESSION, "State");
        if (now == NULL || state_is_final(g_variant_get_string(now, NULL)))
            e.ended = TRUE;
        if (!e.ended)
            g_main_loop_run(f.loop);
        if (e.ended) {
            if (g_strcmp0(e.state, "failed") == 0 && e.reason && *e.reason)
                printf(_("Disconnected %s (%s)\n"), pos[0], e.reason);
            else
                printf(_("Disconnected %s\n"), pos[0]);
        } else if (f.daemon_gone) {
            fprintf(stderr, "%s", _("shimmerctl: the daemon left the bus\n"));
            code = EXIT_UNREACHABLE;
        } else if (f.interrupted) {
            code = EXIT_REFUSED;
        } else {
            fprintf(stderr, _("shimmerctl: the session is still %s after %d seconds\n"),
                    state_label(e.state), DISCONNECT_TIMEOUT_S);
            code = EXIT_REFUSED;
        }
    }
    follow_stop(&f);
    g_free(e.state);
    g_free(e.reason);
    return code;
}

/* ---------------------------------------------------------------- status */

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
    json_open_object(out, G_DBUS_PROXY(v->proxy));
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
    g_autofree char *profile =
        g_strdup_printf("%s (%s)", v->profile_name, or_dash(shimmer_dbus_session1_get_profile(s)));
    g_autofree char *owner = format_owner(shimmer_dbus_session1_get_owner(s));
    g_autofree char *addresses = format_strv(shimmer_dbus_session1_get_addresses(s));
    g_autofree char *routes = format_strv(shimmer_dbus_session1_get_routes(s));
    g_autofree char *dns = format_strv(shimmer_dbus_session1_get_dns_servers(s));
    g_autofree char *domains = format_strv(shimmer_dbus_session1_get_dns_domains(s));
    guint64 since = shimmer_dbus_session1_get_connected_since(s);
    g_autofree char *since_text = NULL;
    if (since) {
        g_autofree char *when = format_time(since);
        gint64 now = g_get_real_time() / G_USEC_PER_SEC;
        g_autofree char *dur = format_duration(now > (gint64)since ? (guint64)now - since : 0);
        since_text = g_strdup_printf(_("%s (%s ago)"), when, dur);
    }
    guint64 c[N_COUNTERS];
    session_counters(s, c);
    g_autofree char *in_size = g_format_size_full(c[C_BYTES_IN], G_FORMAT_SIZE_IEC_UNITS);
    g_autofree char *out_size = g_format_size_full(c[C_BYTES_OUT], G_FORMAT_SIZE_IEC_UNITS);
    g_autofree char *in_rate = format_rate(v->have_rates ? v->rate[C_BYTES_IN] : -1);
    g_autofree char *out_rate = format_rate(v->have_rates ? v->rate[C_BYTES_OUT] : -1);
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

    print_field(_("Session:"), g_dbus_proxy_get_object_path(G_DBUS_PROXY(s)));
    print_field(_("Profile:"), profile);
    print_field(_("Owner:"), owner);
    print_field(_("State:"), state_label(state));
    if (reason && *reason)
        print_field(_("Reason:"), reason);
    print_field(_("Interface:"), or_dash(shimmer_dbus_session1_get_interface(s)));
    print_field(_("Server:"), or_dash(shimmer_dbus_session1_get_remote_address(s)));
    /* Then the lists below stay empty: the client applies NetworkConfig.
     * (A daemon without the property configures the network itself.) */
    g_autoptr(GVariant) configure =
        g_dbus_proxy_get_cached_property(G_DBUS_PROXY(s), "ConfigureNetwork");
    if (configure != NULL && g_variant_is_of_type(configure, G_VARIANT_TYPE_BOOLEAN) &&
        !g_variant_get_boolean(configure))
        print_field(_("Network:"), _("configured by the client (NetworkManager)"));
    print_field(_("Addresses:"), addresses);
    print_field(_("Routes:"), routes);
    print_field(_("DNS servers:"), dns);
    print_field(_("DNS domains:"), domains);
    print_field(_("Cipher:"), or_dash(shimmer_dbus_session1_get_cipher(s)));
    print_field(_("TLS version:"), or_dash(shimmer_dbus_session1_get_tls_version(s)));
    print_field(_("Connected:"), since_text ? since_text : "-");
    print_field(_("Received:"), in_text);
    print_field(_("Sent:"), out_text);
    print_field(_("Reconnects:"), reconnects);
    print_field(_("Bound to caller:"),
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
            printf(_("%s %s: %s (%s)\n"), ts, v->profile_name,
                   state_label(shimmer_dbus_session1_get_state(v->proxy)), reason);
        else
            printf(_("%s %s: %s\n"), ts, v->profile_name,
                   state_label(shimmer_dbus_session1_get_state(v->proxy)));
    }
    guint64 c[N_COUNTERS];
    session_counters(v->proxy, c);
    g_autofree char *in_size = g_format_size_full(c[C_BYTES_IN], G_FORMAT_SIZE_IEC_UNITS);
    g_autofree char *out_size = g_format_size_full(c[C_BYTES_OUT], G_FORMAT_SIZE_IEC_UNITS);
    g_autofree char *in_rate = format_rate(v->have_rates ? v->rate[C_BYTES_IN] : -1);
    g_autofree char *out_rate = format_rate(v->have_rates ? v->rate[C_BYTES_OUT] : -1);
    printf(_("%s %s: in %s (%s), out %s (%s)\n"), ts, v->profile_name, in_size, in_rate, out_size,
           out_rate);
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
                printf(_("%s: the session is gone\n"), v->profile_name);
        }
        all_gone &= v->gone;
    }
    fflush(stdout);
    if (all_gone)
        g_main_loop_quit(f->loop);
}

static int cmd_status(Ctl *ctl, int argc, char **argv)
{
    static const char synopsis[] = "status [NAME|SESSION] [--json] [--watch]";
    gboolean json = FALSE, watch = FALSE;
    const char *pos[1];
    const Option options[] = {
        {"--json", &json, NULL},
        {"--watch", &watch, NULL},
        {NULL, NULL, NULL},
    };
    int r = parse_options(ctl, synopsis, argc, argv, options, pos, 0, 1);
    if (r >= 0)
        return r;
    if ((r = ctl_open(ctl)) != EXIT_OK)
        return r;

    Status st = {.ctl = ctl, .watch = watch, .json = json};
    st.views = g_ptr_array_new_with_free_func((GDestroyNotify)view_free);
    /* Subscribe first: the proxies' samples must not miss an update. */
    follow_start(&st.follow, ctl, status_signal, &st, TRUE);
    int code = EXIT_OK;
    if (pos[0]) {
        ShimmerDBusSession1 *s = find_session(ctl, pos[0], &code);
        if (s == NULL)
            goto out;
        if (!proxy_has_properties(s)) {
            fprintf(stderr, _("shimmerctl: no session at %s\n"),
                    g_dbus_proxy_get_object_path(G_DBUS_PROXY(s)));
            g_object_unref(s);
            code = EXIT_REFUSED;
            goto out;
        }
        SessionView *v = g_new0(SessionView, 1);
        v->proxy = s;
        g_ptr_array_add(st.views, v);
    } else {
        g_autoptr(GPtrArray) sessions = list_objects(ctl, "ListSessions", TRUE, &code);
        if (sessions == NULL)
            goto out;
        for (guint i = 0; i < sessions->len; i++) {
            SessionView *v = g_new0(SessionView, 1);
            v->proxy = g_object_ref(sessions->pdata[i]);
            g_ptr_array_add(st.views, v);
        }
    }
    gboolean any_connected = FALSE;
    for (guint i = 0; i < st.views->len; i++) {
        SessionView *v = st.views->pdata[i];
        v->profile_name = profile_name(ctl, shimmer_dbus_session1_get_profile(v->proxy));
        v->t0 = v->t_prev = g_get_monotonic_time();
        session_counters(v->proxy, v->c0);
        memcpy(v->prev, v->c0, sizeof(v->c0));
        v->handler = g_signal_connect(v->proxy, "g-properties-changed",
                                      G_CALLBACK(status_properties_changed), &st);
        any_connected |= g_strcmp0(shimmer_dbus_session1_get_state(v->proxy), "connected") == 0;
    }

    if (!watch && any_connected) {
        /* Rates from two samples: two updates of the daemon, or the
         * counters now and after a while when no update came. */
        gint64 started = g_get_monotonic_time();
        follow_set_timeout(&st.follow, RATE_SAMPLE_MS);
        g_main_loop_run(st.follow.loop);
        for (guint i = 0; i < st.views->len; i++) {
            SessionView *v = st.views->pdata[i];
            if (v->have_rates || v->gone)
                continue;
            g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
                ctl->bus, BUS_NAME, g_dbus_proxy_get_object_path(G_DBUS_PROXY(v->proxy)),
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
            view_set_rates(v, v->c0, v->updates > 0 ? v->t0 : started, now_c,
                           g_get_monotonic_time());
        }
        if (st.follow.daemon_gone) {
            fprintf(stderr, "%s", _("shimmerctl: the daemon left the bus\n"));
            code = EXIT_UNREACHABLE;
            goto out;
        }
    }

    if (json && !watch) {
        g_autoptr(GString) out = g_string_new(pos[0] ? NULL : "[");
        for (guint i = 0; i < st.views->len; i++) {
            if (i > 0)
                g_string_append_c(out, ',');
            status_print_json(&st, st.views->pdata[i], out);
        }
        g_string_append(out, pos[0] ? "\n" : "]\n");
        fputs(out->str, stdout);
    } else if (json) {
        for (guint i = 0; i < st.views->len; i++) {
            g_autoptr(GString) out = g_string_new(NULL);
            status_print_json(&st, st.views->pdata[i], out);
            g_string_append_c(out, '\n');
            fputs(out->str, stdout);
        }
    } else if (st.views->len == 0) {
        printf("%s", _("No sessions.\n"));
    } else {
        for (guint i = 0; i < st.views->len; i++) {
            if (i > 0)
                printf("\n");
            status_print_human(&st, st.views->pdata[i]);
        }
    }
    fflush(stdout);

    if (watch && st.views->len > 0) {
        follow_set_timeout(&st.follow, 0);
        g_main_loop_run(st.follow.loop);
        if (st.follow.daemon_gone) {
            fprintf(stderr, "%s", _("shimmerctl: the daemon left the bus\n"));
            code = EXIT_UNREACHABLE;
        }
    }

out:
    g_ptr_array_unref(st.views);
    follow_stop(&st.follow);
    return code;
}

/* --------------------------------------------------------------- monitor */

typedef struct {
    GHashTable *names; /* profile or session path -> the profile's name */
} Monitor;

static char *monitor_label(Monitor *m, const char *path)
{
    const char *name = g_hash_table_lookup(m->names, path);
    const char *shortp =
        g_str_has_prefix(path, ROOT_PATH "/") ? path + strlen(ROOT_PATH "/") : path;
    if (name)
        return g_strdup_printf("%s '%s'", shortp, name);
    return g_strdup(shortp);
}

static void monitor_print(const char *label, const char *text)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_local();
    g_autofree char *ts = g_date_time_format(now, "%H:%M:%S.%f");
    /* %f is microseconds: milliseconds are enough to read. */
    if (strlen(ts) > 12)
        ts[12] = '\0';
    printf("%s %s: %s\n", ts, label, text);
    fflush(stdout);
}

static char *format_changes(GVariant *changed, const char *const *invalidated)
{
    g_autoptr(GString) out = g_string_new(NULL);
    GVariantIter iter;
    const char *name;
    GVariant *value;
    g_variant_iter_init(&iter, changed);
    while (g_variant_iter_next(&iter, "{&sv}", &name, &value)) {
        g_autofree char *text = format_value(value);
        g_variant_unref(value);
        g_string_append_printf(out, "%s%s=%s", out->len ? ", " : "", name, text);
    }
    for (; invalidated && *invalidated; invalidated++)
        g_string_append_printf(out, "%s%s (%s)", out->len ? ", " : "", *invalidated,
                               _("invalidated"));
    return g_string_free(g_steal_pointer(&out), FALSE);
}

static void monitor_signal(Follow *f, const char *path, const char *iface, const char *member,
                           GVariant *params)
{
    Monitor *m = f->data;
    if (strcmp(member, "InterfacesAdded") == 0 &&
        g_variant_is_of_type(params, G_VARIANT_TYPE("(oa{sa{sv}})"))) {
        const char *obj;
        g_autoptr(GVariant) ifaces = NULL;
        g_variant_get(params, "(&o@a{sa{sv}})", &obj, &ifaces);
        g_autoptr(GVariant) profile = g_variant_lookup_value(ifaces, IFACE_PROFILE, NULL);
        g_autoptr(GVariant) session = g_variant_lookup_value(ifaces, IFACE_SESSION, NULL);
        const char *name = NULL, *state = NULL, *ppath = NULL;
        if (profile && g_variant_lookup(profile, "Name", "&s", &name))
            g_hash_table_replace(m->names, g_strdup(obj), g_strdup(name));
        char *label = monitor_label(m, obj);
        g_autofree char *text = NULL;
        if (session) {
            g_variant_lookup(session, "State", "&s", &state);
            g_variant_lookup(session, "Profile", "&o", &ppath);
            const char *pname = ppath ? g_hash_table_lookup(m->names, ppath) : NULL;
            if (pname) {
                g_hash_table_replace(m->names, g_strdup(obj), g_strdup(pname));
                g_free(label);
                label = monitor_label(m, obj);
            }
            g_autofree char *plabel = ppath ? monitor_label(m, ppath) : g_strdup("-");
            text = g_strdup_printf(_("session added for %s (%s)"), plabel, state_label(state));
        } else if (profile) {
            text = g_strdup(_("profile added"));
        } else {
            text = g_strdup(_("object added"));
        }
        monitor_print(label, text);
        g_free(label);
    } else if (strcmp(member, "InterfacesRemoved") == 0 &&
               g_variant_is_of_type(params, G_VARIANT_TYPE("(oas)"))) {
        const char *obj;
        g_variant_get_child(params, 0, "&o", &obj);
        g_autofree char *label = monitor_label(m, obj);
        monitor_print(label, _("removed"));
        g_hash_table_remove(m->names, obj);
    } else if (strcmp(member, "PropertiesChanged") == 0 &&
               g_variant_is_of_type(params, G_VARIANT_TYPE("(sa{sv}as)"))) {
        g_autoptr(GVariant) changed = NULL;
        g_autofree const char **invalidated = NULL;
        const char *which;
        g_variant_get(params, "(&s@a{sv}^a&s)", &which, &changed, &invalidated);
        const char *name;
        if (strcmp(which, IFACE_PROFILE) == 0 && g_variant_lookup(changed, "Name", "&s", &name))
            g_hash_table_replace(m->names, g_strdup(path), g_strdup(name));
        g_autofree char *label = monitor_label(m, path);
        g_autofree char *text = format_changes(changed, invalidated);
        monitor_print(label, text);
    } else if (strcmp(member, "Log") == 0 && g_variant_is_of_type(params, G_VARIANT_TYPE("(us)"))) {
        static const char *const levels[] = {N_("error"), N_("warning"), N_("info"), N_("debug")};
        guint level;
        const char *message;
        g_variant_get(params, "(u&s)", &level, &message);
        g_autofree char *label = monitor_label(m, path);
        g_autofree char *text = g_strdup_printf(
            "[%s] %s", level < G_N_ELEMENTS(levels) ? _(levels[level]) : "?", message);
        monitor_print(label, text);
    } else if (strcmp(member, "CredentialsRequested") == 0 &&
               g_variant_is_of_type(params, G_VARIANT_TYPE("(assb)"))) {
        g_autofree const char **fields = NULL;
        const char *prompt_text;
        gboolean echo;
        g_variant_get(params, "(^a&s&sb)", &fields, &prompt_text, &echo);
        g_autofree char *list = g_strjoinv(", ", (char **)fields);
        g_autofree char *label = monitor_label(m, path);
        g_autofree char *text =
            *prompt_text
                ? g_strdup_printf(_("credentials requested: %s (\"%s\")"), list, prompt_text)
                : g_strdup_printf(_("credentials requested: %s"), list);
        monitor_print(label, text);
    } else {
        g_autofree char *label = monitor_label(m, path);
        g_autofree char *args = g_variant_print(params, FALSE);
        g_autofree char *text = g_strdup_printf("%s.%s %s", iface, member, args);
        monitor_print(label, text);
    }
}

static void monitor_appeared(GDBusConnection *bus, const char *name, const char *owner,
                             gpointer user)
{
    g_autofree char *text = g_strdup_printf(_("the daemon is on the bus (%s)"), owner);
    monitor_print(name, text);
}

static void monitor_vanished(GDBusConnection *bus, const char *name, gpointer user)
{
    monitor_print(name, _("the daemon is not on the bus"));
}

static int cmd_monitor(Ctl *ctl, int argc, char **argv)
{
    static const char synopsis[] = "monitor";
    int r = parse_options(ctl, synopsis, argc, argv, NULL, NULL, 0, 0);
    if (r >= 0)
        return r;
    /* The daemon may come and go while we watch: only the bus must be
     * there. */
    r = ctl_open_full(ctl, FALSE);
    if (r != EXIT_OK && ctl->bus == NULL)
        return r;
    Monitor m = {g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free)};
    Follow f = {0};
    follow_start(&f, ctl, monitor_signal, &m, FALSE);
    guint watch = g_bus_watch_name_on_connection(ctl->bus, BUS_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                                 monitor_appeared, monitor_vanished, &m, NULL);
    if (r == EXIT_OK) {
        int code = EXIT_OK;
        g_autoptr(GPtrArray) profiles = list_objects(ctl, "ListProfiles", FALSE, &code);
        for (guint i = 0; profiles && i < profiles->len; i++) {
            ShimmerDBusProfile1 *p = profiles->pdata[i];
            const char *name = shimmer_dbus_profile1_get_name(p);
            const char *active = shimmer_dbus_profile1_get_active_session(p);
            if (name == NULL)
                continue;
            g_hash_table_replace(m.names, g_strdup(g_dbus_proxy_get_object_path(G_DBUS_PROXY(p))),
                                 g_strdup(name));
            if (active && strcmp(active, "/") != 0)
                g_hash_table_replace(m.names, g_strdup(active), g_strdup(name));
        }
    }
    g_main_loop_run(f.loop);
    g_bus_unwatch_name(watch);
    follow_stop(&f);
    g_hash_table_unref(m.names);
    return EXIT_OK;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
    bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
    textdomain(GETTEXT_PACKAGE);

    static const struct {
        const char *name;
        int (*run)(Ctl *ctl, int argc, char **argv);
    } commands[] = {
        {"import", cmd_import},         {"list", cmd_list},     {"show", cmd_show},
        {"rename", cmd_rename},         {"remove", cmd_remove}, {"connect", cmd_connect},
        {"disconnect", cmd_disconnect}, {"status", cmd_status}, {"monitor", cmd_monitor},
    };

    Ctl ctl = {0};
    int i = 1;
    /* Global options before the command. */
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return usage(stdout);
        if (strcmp(argv[i], "--version") == 0) {
            printf("shimmerctl %s\n", PACKAGE_VERSION);
            return EXIT_OK;
        }
        if (g_str_has_prefix(argv[i], "--bus-address=")) {
            ctl.address = argv[i] + strlen("--bus-address=");
        } else if (strcmp(argv[i], "--bus-address") == 0 && i + 1 < argc) {
            ctl.address = argv[++i];
        } else {
            fprintf(stderr, _("shimmerctl: unknown option '%s'\n"), argv[i]);
            return usage(stderr);
        }
    }
    if (i >= argc)
        return usage(stderr);
    const char *command = argv[i];
    if (strcmp(command, "check") == 0)
        return cmd_check(argc - i - 1, argv + i + 1);
    if (strcmp(command, "help") == 0)
        return usage(stdout);
    for (gsize k = 0; k < G_N_ELEMENTS(commands); k++) {
        if (strcmp(command, commands[k].name) == 0) {
            int code = commands[k].run(&ctl, argc - i - 1, argv + i + 1);
            ctl_clear(&ctl);
            return code;
        }
    }
    fprintf(stderr, _("shimmerctl: unknown command '%s'\n"), command);
    return usage(stderr);
}
