/* SPDX-License-Identifier: MIT */
/*
 * nm-shimmer-auth-dialog: what NetworkManager's secret agents run to learn
 * which secrets of a Shimmer connection to ask the user for. GTK-free: it
 * asks nothing itself. The agent (nmcli --ask, GNOME Shell) runs it with
 * --external-ui-mode, reads the form it prints and asks the user.
 *
 * The protocol (NetworkManager's, as its agents speak it):
 *   argv   -u UUID -n NAME -s SERVICE [-i] [-r] [-t HINT]... [--external-ui-mode]
 *          -i: the agent may interact with the user; -r: ask again even for
 *          secrets that have a value (the last ones failed); -t: the hints
 *          the service plugin passed with SecretsRequired.
 *   stdin  the connection's vpn.data and vpn.secrets as DATA_KEY=/DATA_VAL=/
 *          SECRET_KEY=/SECRET_VAL= lines, then DONE (libnm reads it).
 *   stdout with --external-ui-mode, a key file: the group [VPN Plugin UI]
 *          first (Version=2, Title=, Description=), then one group per
 *          secret named as the agent must return it, with Value= (its
 *          current value), Label=, IsSecret=, ShouldAsk= and ForceEcho=.
 *          The program then exits without waiting for anything.
 *          Without it, "NAME\nVALUE\n" for each secret that has a value, an
 *          empty line twice, and the program waits for the agent's QUIT line
 *          (or the end of stdin) before it exits. Asking the user is not
 *          possible in that mode: if something must be asked it fails.
 *
 * Every field is IsSecret=true: nmcli ignores the groups whose IsSecret is
 * false, so a field shown while typed (a user name, a challenge whose answer
 * may be echoed) says ForceEcho=true instead, which nmcli >= 1.46 honours.
 *
 * Secret values go to stdout only, as the protocol wants, and are wiped
 * there; stderr names secrets, never their values.
 */
#include "shimmer-build-config.h"

#include <NetworkManager.h>
#include <errno.h>
#include <glib/gi18n.h>
#include <locale.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mapping.h"
#include "secrets.h"
#include "secure.h"
#include "webauth.h"

#define PROG     "nm-shimmer-auth-dialog"
#define UI_GROUP "VPN Plugin UI"

/* How long to wait for the agent's QUIT once the secrets are written. */
#define QUIT_TIMEOUT_MS (60 * 1000)

typedef struct {
    char *uuid;
    char *name;
    char *service;
    gboolean allow_interaction;
    gboolean reprompt;
    char **hints;
    gboolean external_ui;
} Options;

static void options_clear(Options *o)
{
    g_free(o->uuid);
    g_free(o->name);
    g_free(o->service);
    g_strfreev(o->hints);
}

/* What a field is, for the sentence saying what the connection needs. */
static const char *field_what(const ShimmerNmSecretField *f)
{
    if (strcmp(f->name, SHIMMER_NM_SECRET_USERNAME) == 0)
        return _("user name");
    if (strcmp(f->name, SHIMMER_NM_SECRET_PASSWORD) == 0)
        return _("password");
    if (strcmp(f->name, SHIMMER_NM_SECRET_CERT_PASS) == 0)
        return _("private key passphrase");
    if (strcmp(f->name, SHIMMER_NM_SECRET_WEB_SIGN_IN) == 0)
        return _("confirmation of the web sign-in");
    return _("challenge response");
}

static gboolean should_ask(const Options *o, const ShimmerNmSecretField *f)
{
    return o->allow_interaction && (f->must_ask || o->reprompt);
}

/* ", "-joined descriptions of the fields to ask, each once. */
static char *needs_list(const Options *o, GPtrArray *fields)
{
    g_autoptr(GPtrArray) what = g_ptr_array_new();
    for (guint i = 0; i < fields->len; i++) {
        const ShimmerNmSecretField *f = fields->pdata[i];
        if (!should_ask(o, f))
            continue;
        const char *w = field_what(f);
        gboolean seen = FALSE;
        for (guint j = 0; j < what->len; j++)
            seen = seen || strcmp(what->pdata[j], w) == 0;
        if (!seen)
            g_ptr_array_add(what, (gpointer)w);
    }
    if (what->len == 0)
        return NULL;
    g_ptr_array_add(what, NULL);
    /* TRANSLATORS: joins the things to enter, e.g. "user name, password" */
    return g_strjoinv(_(", "), (char **)what->pdata);
}

/* A key file value as GKeyFile reads it back: backslash escapes for the
 * characters it treats specially, \s for spaces at either end (they would
 * be trimmed). */
static void append_value(GString *out, const char *s)
{
    gsize n = strlen(s);
    gsize lead = 0;
    while (lead < n && s[lead] == ' ')
        lead++;
    gsize trail = n;
    while (trail > lead && s[trail - 1] == ' ')
        trail--;
    for (gsize i = 0; i < n; i++) {
        switch (s[i]) {
        case ' ':
            g_string_append(out, i < lead || i >= trail ? "\\s" : " ");
            break;
        case '\n':
            g_string_append(out, "\\n");
            break;
        case '\r':
            g_string_append(out, "\\r");
            break;
        case '\t':
            g_string_append(out, "\\t");
            break;
        case '\\':
            g_string_append(out, "\\\\");
            break;
        default:
            g_string_append_c(out, s[i]);
        }
    }
}

static void append_entry(GString *out, const char *key, const char *value)
{
    g_string_append_printf(out, "%s=", key);
    append_value(out, value);
    g_string_append_c(out, '\n');
}

static void append_bool(GString *out, const char *key, gboolean value)
{
    g_string_append_printf(out, "%s=%s\n", key, value ? "true" : "false");
}

static gboolean write_all(int fd, const char *p, gsize len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return FALSE;
        p += n;
        len -= (gsize)n;
    }
    return TRUE;
}

/* Writes OUT to stdout and wipes it: it holds secret values. */
static gboolean flush_secret_text(GString *out)
{
    gboolean ok = write_all(STDOUT_FILENO, out->str, out->len);
    shimmer_wipe(out->str, out->len);
    g_string_free(out, TRUE);
    if (!ok)
        fprintf(stderr, "%s: %s: %s\n", PROG, _("cannot write to standard output"),
                g_strerror(errno));
    return ok;
}

static int external_ui(const Options *o, NMSettingVpn *s_vpn, GPtrArray *fields, const char *prompt)
{
    GString *out = g_string_new("[" UI_GROUP "]\n");
    append_entry(out, "Version", "2");
    append_entry(out, "Title", _("VPN authentication"));

    g_autofree char *name = g_utf8_make_valid(o->name, -1);
    g_autofree char *needs = needs_list(o, fields);
    g_autofree char *what =
        needs != NULL ? g_strdup_printf(_("To connect to the VPN “%s”, enter: %s."), name, needs)
                      : g_strdup_printf(_("The VPN connection “%s” needs nothing more."), name);
    g_autofree char *shown = prompt != NULL ? g_utf8_make_valid(prompt, -1) : NULL;
    g_autofree char *description =
        shown != NULL ? g_strdup_printf("%s\n\n%s", what, shown) : g_strdup(what);
    append_entry(out, "Description", description);

    for (guint i = 0; i < fields->len; i++) {
        const ShimmerNmSecretField *f = fields->pdata[i];
        const char *value = shimmer_nm_secrets_get(s_vpn, f->name);
        g_autofree char *label = g_utf8_make_valid(f->label, -1);
        g_string_append_printf(out, "\n[%s]\n", f->key);
        append_entry(out, "Value", value != NULL ? value : "");
        append_entry(out, "Label", label);
        append_bool(out, "IsSecret", TRUE);
        append_bool(out, "ShouldAsk", should_ask(o, f));
        append_bool(out, "ForceEcho", !f->is_secret);
    }
    return flush_secret_text(out) ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* Reads stdin until a QUIT or CANCEL line, its end, or the timeout. */
static void wait_for_quit(void)
{
    GString *line = g_string_new(NULL);
    gint64 deadline = g_get_monotonic_time() + (gint64)QUIT_TIMEOUT_MS * 1000;
    for (;;) {
        gint64 left_ms = (deadline - g_get_monotonic_time()) / 1000;
        if (left_ms <= 0)
            break;
        struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
        int r = poll(&pfd, 1, (int)MIN(left_ms, G_MAXINT));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        char c;
        ssize_t n = read(STDIN_FILENO, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (c != '\n') {
            if (line->len < 256)
                g_string_append_c(line, c);
            continue;
        }
        if (line->len > 0 && line->str[line->len - 1] == '\r')
            g_string_truncate(line, line->len - 1);
        if (strcmp(line->str, "QUIT") == 0 || g_str_has_prefix(line->str, "CANCEL"))
            break;
        g_string_truncate(line, 0);
    }
    g_string_free(line, TRUE);
}

static int line_protocol(const Options *o, NMSettingVpn *s_vpn, GPtrArray *fields)
{
    g_autoptr(GPtrArray) missing = g_ptr_array_new();
    for (guint i = 0; i < fields->len; i++) {
        const ShimmerNmSecretField *f = fields->pdata[i];
        if (should_ask(o, f))
            g_ptr_array_add(missing, f->name);
    }
    if (missing->len > 0) {
        g_ptr_array_add(missing, NULL);
        g_autofree char *names = g_strjoinv(", ", (char **)missing->pdata);
        g_autofree char *name = g_utf8_make_valid(o->name, -1);
        fprintf(stderr,
                _("%s: the VPN connection “%s” needs secrets to be asked (%s), and this dialog "
                  "asks only through an agent that runs it with --external-ui-mode, such as "
                  "nmcli --ask\n"),
                PROG, name, names);
        return EXIT_FAILURE;
    }

    GString *out = g_string_new(NULL);
    for (guint i = 0; i < fields->len; i++) {
        const ShimmerNmSecretField *f = fields->pdata[i];
        const char *value = shimmer_nm_secrets_get(s_vpn, f->name);
        /* One line each: a value holding a newline cannot be passed on. */
        if (value == NULL || strpbrk(value, "\r\n") != NULL)
            continue;
        g_string_append_printf(out, "%s\n%s\n", f->key, value);
    }
    g_string_append(out, "\n\n");
    if (!flush_secret_text(out))
        return EXIT_FAILURE;
    wait_for_quit();
    return EXIT_SUCCESS;
}

static void add_data(gpointer key, gpointer value, gpointer user)
{
    if (((const char *)key)[0] != '\0')
        nm_setting_vpn_add_data_item(user, key, value);
}

static void add_secret(gpointer key, gpointer value, gpointer user)
{
    if (((const char *)key)[0] != '\0')
        nm_setting_vpn_add_secret(user, key, value);
}

/* A web sign-in: the dialog runs as the user, in the user's session (the
 * agent started it), so it may start the user's browser where
 * shimmer_web_auth_open_command() allows; the description shows the URL
 * either way. */
static void open_web_auth(const char *url)
{
    ShimmerBrowserEnv env = {
        .euid = (guint)geteuid(),
        .display = g_getenv("DISPLAY"),
        .wayland_display = g_getenv("WAYLAND_DISPLAY"),
        .xdg_runtime_dir = g_getenv("XDG_RUNTIME_DIR"),
        .xdg_session_type = g_getenv("XDG_SESSION_TYPE"),
    };
    const char *why = NULL;
    g_auto(GStrv) argv = shimmer_web_auth_open_command(&env, url, &why);
    g_autoptr(GError) error = NULL;
    if (argv == NULL)
        fprintf(stderr, "%s: %s: %s\n", PROG, _("not opening the web sign-in"), why);
    else if (!g_spawn_async(NULL, argv, NULL,
                            G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL |
                                G_SPAWN_STDERR_TO_DEV_NULL,
                            NULL, NULL, NULL, &error))
        fprintf(stderr, "%s: %s: %s\n", PROG, _("cannot start a browser"), error->message);
}

static int run(const Options *o)
{
    GHashTable *data = NULL;
    GHashTable *secrets = NULL;
    if (!nm_vpn_service_plugin_read_vpn_details(STDIN_FILENO, &data, &secrets)) {
        fprintf(stderr, "%s: %s\n", PROG,
                _("cannot read the connection's data and secrets from standard input"));
        return EXIT_FAILURE;
    }
    g_autoptr(NMSettingVpn) s_vpn = NM_SETTING_VPN(nm_setting_vpn_new());
    g_object_set(s_vpn, NM_SETTING_VPN_SERVICE_TYPE, SHIMMER_NM_SERVICE_TYPE, NULL);
    g_hash_table_foreach(data, add_data, s_vpn);
    g_hash_table_foreach(secrets, add_secret, s_vpn);
    g_hash_table_unref(data);
    g_hash_table_unref(secrets);

    g_autofree char *prompt = NULL;
    g_autoptr(GPtrArray) fields =
        shimmer_nm_secrets_fields(s_vpn, (const char *const *)o->hints, &prompt);
    const char *url = shimmer_nm_secrets_web_auth_url((const char *const *)o->hints);
    if (url != NULL && o->external_ui && o->allow_interaction)
        open_web_auth(url);
    if (o->external_ui)
        return external_ui(o, s_vpn, fields, prompt);
    return line_protocol(o, s_vpn, fields);
}

static void usage(void)
{
    fprintf(stderr,
            _("Usage: %s -u UUID -n NAME -s SERVICE [-i] [-r] [-t HINT]... [--external-ui-mode]\n"),
            PROG);
}

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
    bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
    textdomain(GETTEXT_PACKAGE);

    Options o = {0};
    GOptionEntry entries[] = {
        {"uuid", 'u', 0, G_OPTION_ARG_STRING, &o.uuid, N_("The connection's UUID"), "UUID"},
        {"name", 'n', 0, G_OPTION_ARG_STRING, &o.name, N_("The connection's name"), "NAME"},
        {"service", 's', 0, G_OPTION_ARG_STRING, &o.service, N_("The VPN service type"), "SERVICE"},
        {"allow-interaction", 'i', 0, G_OPTION_ARG_NONE, &o.allow_interaction,
         N_("The user may be asked"), NULL},
        {"reprompt", 'r', 0, G_OPTION_ARG_NONE, &o.reprompt,
         N_("Ask again for secrets that have a value"), NULL},
        {"hint", 't', 0, G_OPTION_ARG_STRING_ARRAY, &o.hints,
         N_("A hint from the service plugin (repeatable)"), "HINT"},
        {"external-ui-mode", 0, 0, G_OPTION_ARG_NONE, &o.external_ui,
         N_("Describe the secrets to ask for on standard output"), NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);
    g_option_context_set_summary(ctx, _("Tells NetworkManager's secret agents which secrets a "
                                        "Shimmer VPN connection needs."));
    g_option_context_add_main_entries(ctx, entries, GETTEXT_PACKAGE);
    g_option_context_set_translation_domain(ctx, GETTEXT_PACKAGE);

    int status = EXIT_FAILURE;
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        fprintf(stderr, "%s: %s\n", PROG, error->message);
        usage();
    } else if (o.uuid == NULL || o.name == NULL || o.service == NULL || argc > 1) {
        usage();
    } else if (strcmp(o.service, SHIMMER_NM_SERVICE_TYPE) != 0) {
        g_autofree char *service = g_utf8_make_valid(o.service, -1);
        fprintf(stderr, _("%s: this dialog serves the '%s' VPN service only, not '%s'\n"), PROG,
                SHIMMER_NM_SERVICE_TYPE, service);
    } else {
        status = run(&o);
    }
    options_clear(&o);
    return status;
}
