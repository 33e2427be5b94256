/* SPDX-License-Identifier: MIT */
/*
 * shimmerctl: the commands on profiles. check, import, list, show, rename,
 * remove.
 *
 * `import` reads the profile and every file it names as the calling user
 * and sends the daemon one self-contained text: the daemon never opens a
 * user's files.
 */
#include "shimmer-build-config.h"

#include <glib/gi18n.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "output.h"
#include "secure.h"

/* ---------------------------------------------------------------- check */

int ctl_cmd_check(int argc, char **argv)
{
    bool json = false, inline_out = false;
    const char *file = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--inline") == 0)
            inline_out = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return ctl_usage(stdout);
        else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            ctl_print(stderr, _("shimmerctl check: unknown option '%s'\n"), argv[i]);
            return EXIT_USAGE;
        } else if (file == NULL)
            file = argv[i];
        else {
            ctl_print(stderr, "%s", _("shimmerctl check: give one file\n"));
            return EXIT_USAGE;
        }
    }
    if (file == NULL || (json && inline_out)) {
        ctl_print(stderr, "%s", _("Usage: shimmerctl check [--json|--inline] FILE\n"));
        return EXIT_USAGE;
    }

    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) bytes = NULL;
    if (!shimmer_config_file_loader(file, &bytes, &error, NULL)) {
        ctl_print(stderr, _("%s: error: cannot read the file: %s\n"), file, error->message);
        return EXIT_REFUSED;
    }
    gsize len;
    const char *text = g_bytes_get_data(bytes, &len);
    g_autoptr(ShimmerConfig) cfg =
        shimmer_config_parse(file, NULL, text ? text : "", len, shimmer_config_file_loader, NULL);

    g_autoptr(GString) diags = g_string_new(NULL);
    shimmer_config_format_diagnostics(cfg, diags);
    ctl_print_lines(stderr, diags->str);
    if (shimmer_config_has_errors(cfg))
        return EXIT_REFUSED;

    if (json) {
        g_autofree char *out = shimmer_config_to_json(cfg);
        fputs(out, stdout);
    } else if (inline_out) {
        char *out = shimmer_config_to_ovpn(cfg);
        if (out == NULL) {
            const char *why = shimmer_config_inline_error(cfg);
            ctl_print(stderr, _("%s: error: cannot make it self-contained: %s\n"), file,
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

int ctl_cmd_import(Ctl *ctl, int argc, char **argv)
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
    int r = ctl_parse_options(ctl, synopsis, argc, argv, options, pos, 1, 1);
    if (r >= 0)
        return r;
    const char *file = pos[0];

    /* Read and check everything here, as the calling user. */
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) bytes = NULL;
    if (!shimmer_config_file_loader(file, &bytes, &error, NULL)) {
        ctl_print(stderr, _("%s: error: cannot read the file: %s\n"), file, error->message);
        return EXIT_REFUSED;
    }
    gsize len;
    const char *text = g_bytes_get_data(bytes, &len);
    g_autoptr(ShimmerConfig) cfg =
        shimmer_config_parse(file, NULL, text ? text : "", len, shimmer_config_file_loader, NULL);
    g_autoptr(GString) diags = g_string_new(NULL);
    shimmer_config_format_diagnostics(cfg, diags);
    ctl_print_lines(stderr, diags->str);
    if (shimmer_config_has_errors(cfg)) {
        ctl_print(stderr, _("shimmerctl: %s is refused; nothing was imported\n"), file);
        return EXIT_REFUSED;
    }
    char *inlined = shimmer_config_to_ovpn(cfg);
    if (inlined == NULL) {
        const char *why = shimmer_config_inline_error(cfg);
        ctl_print(stderr, _("shimmerctl: %s cannot be made self-contained: %s\n"), file,
                  why ? why : _("unknown reason"));
        return EXIT_REFUSED;
    }
    if (!g_utf8_validate(inlined, -1, NULL)) {
        ctl_print(stderr, _("shimmerctl: %s is not valid UTF-8 text\n"), file);
        shimmer_str_free_secret(inlined);
        return EXIT_REFUSED;
    }
    g_autofree char *profile = name ? g_strdup(name) : default_profile_name(file);
    if (!g_utf8_validate(profile, -1, NULL)) {
        ctl_print(stderr, "%s", _("shimmerctl: the profile name must be UTF-8 text\n"));
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
        return ctl_fail(what, error);
    }
    const char *path;
    g_variant_get(reply, "(&o)", &path);
    ctl_print(stdout, _("Imported profile '%s' (%s)\n"), profile, path);
    return EXIT_OK;
}

/* ------------------------------------------------------------ list, show */

static char *session_state_of(Ctl *ctl, const char *session)
{
    if (session == NULL || strcmp(session, "/") == 0)
        return NULL;
    g_autoptr(GVariant) v = ctl_get_property(ctl, session, IFACE_SESSION, "State");
    if (v && g_variant_is_of_type(v, G_VARIANT_TYPE_STRING))
        return g_variant_dup_string(v, NULL);
    return NULL;
}

int ctl_cmd_list(Ctl *ctl, int argc, char **argv)
{
    static const char synopsis[] = "list [--json]";
    gboolean json = FALSE;
    const Option options[] = {{"--json", &json, NULL}, {NULL, NULL, NULL}};
    int r = ctl_parse_options(ctl, synopsis, argc, argv, options, NULL, 0, 0);
    if (r >= 0)
        return r;
    if ((r = ctl_open(ctl)) != EXIT_OK)
        return r;
    int code = EXIT_OK;
    g_autoptr(GPtrArray) profiles = ctl_list_objects(ctl, "ListProfiles", FALSE, &code);
    if (profiles == NULL)
        return code;

    if (json) {
        g_autoptr(GString) out = g_string_new("[");
        for (guint i = 0; i < profiles->len; i++) {
            ShimmerDBusProfile1 *p = profiles->pdata[i];
            if (i > 0)
                g_string_append_c(out, ',');
            ctl_json_open_object(out, G_DBUS_PROXY(p));
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
        ctl_print(stdout, "%s", _("No profiles. Import one with 'shimmerctl import FILE'.\n"));
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
        row[0] = g_strdup(ctl_or_dash(shimmer_dbus_profile1_get_name(p)));
        row[1] = g_strdup(ctl_or_dash(shimmer_dbus_profile1_get_id(p)));
        row[2] = ctl_format_owner(shimmer_dbus_profile1_get_owner(p));
        row[3] = g_strdup(ctl_or_dash(shimmer_dbus_profile1_get_credentials(p)));
        row[4] = g_strdup(state ? ctl_state_label(state) : "-");
        row[5] = ctl_format_strv(shimmer_dbus_profile1_get_remotes(p));
        g_ptr_array_add(rows, row);
    }
    /* Columns as wide as their cells will show, escapes included. */
    glong width[5] = {0};
    for (guint i = 0; i < rows->len; i++) {
        char **row = rows->pdata[i];
        for (int c = 0; c < 6; c++) {
            char *shown = ctl_escape(row[c]);
            g_free(row[c]);
            row[c] = shown;
        }
        for (int c = 0; c < 5; c++)
            width[c] = MAX(width[c], g_utf8_strlen(row[c], -1));
    }
    for (guint i = 0; i < rows->len; i++) {
        char **row = rows->pdata[i];
        g_autoptr(GString) line = g_string_new(NULL);
        for (int c = 0; c < 5; c++)
            g_string_append_printf(line, "%s%*s  ", row[c],
                                   (int)(width[c] - g_utf8_strlen(row[c], -1)), "");
        ctl_print(stdout, "%s%s\n", line->str, row[5]);
    }
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_REFUSED;
}

int ctl_cmd_show(Ctl *ctl, int argc, char **argv)
{
    static const char synopsis[] = "show NAME|ID|PATH [--json]";
    gboolean json = FALSE;
    const char *pos[1];
    const Option options[] = {{"--json", &json, NULL}, {NULL, NULL, NULL}};
    int r = ctl_parse_options(ctl, synopsis, argc, argv, options, pos, 1, 1);
    if (r >= 0)
        return r;
    if ((r = ctl_open(ctl)) != EXIT_OK)
        return r;
    int code = EXIT_OK;
    g_autoptr(ShimmerDBusProfile1) p = ctl_find_profile(ctl, pos[0], FALSE, &code);
    if (p == NULL)
        return code;
    const char *path = g_dbus_proxy_get_object_path(G_DBUS_PROXY(p));

    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply =
        ctl_call(ctl, path, IFACE_PROFILE, "GetConfiguration", NULL, G_VARIANT_TYPE("(s)"), &error);
    if (reply == NULL) {
        g_autofree char *what = g_strdup_printf(_("cannot read profile %s"), pos[0]);
        return ctl_fail(what, error);
    }
    if (!ctl_proxy_has_properties(p)) {
        /* GetConfiguration worked, so the object is there: its properties
         * arrive late only if it was created just now. Ask once more. */
        g_clear_object(&p);
        p = ctl_profile_proxy(ctl, path, &error);
        if (p == NULL)
            return ctl_fail(path, error);
    }
    const char *config;
    g_variant_get(reply, "(&s)", &config);
    const char *active = shimmer_dbus_profile1_get_active_session(p);
    g_autofree char *state = session_state_of(ctl, active);

    if (json) {
        g_autoptr(GString) out = g_string_new(NULL);
        ctl_json_open_object(out, G_DBUS_PROXY(p));
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

    g_autofree char *owner = ctl_format_owner(shimmer_dbus_profile1_get_owner(p));
    g_autofree char *created = ctl_format_time(shimmer_dbus_profile1_get_created(p));
    g_autofree char *remotes = ctl_format_strv(shimmer_dbus_profile1_get_remotes(p));
    g_autofree char *session = NULL;
    if (active && strcmp(active, "/") != 0)
        session = g_strdup_printf("%s (%s)", active, ctl_state_label(state));
    ctl_print_field(_("Name:"), ctl_or_dash(shimmer_dbus_profile1_get_name(p)));
    ctl_print_field(_("ID:"), ctl_or_dash(shimmer_dbus_profile1_get_id(p)));
    ctl_print_field(_("Path:"), path);
    ctl_print_field(_("Owner:"), owner);
    ctl_print_field(_("Persistent:"), shimmer_dbus_profile1_get_persistent(p) ? _("yes") : _("no"));
    ctl_print_field(_("Imported:"), created);
    ctl_print_field(_("Remotes:"), remotes);
    ctl_print_field(_("Credentials:"), ctl_or_dash(shimmer_dbus_profile1_get_credentials(p)));
    const char *challenge = shimmer_dbus_profile1_get_static_challenge(p);
    if (challenge && *challenge)
        ctl_print_field(_("Challenge:"), challenge);
    ctl_print_field(_("Session:"), session ? session : _("none"));
    ctl_print(stdout, "%s\n", _("Configuration (secrets redacted):"));
    g_autoptr(GString) pretty = g_string_new(NULL);
    ctl_json_pretty(pretty, config);
    ctl_print_lines(stdout, pretty->str);
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_REFUSED;
}

int ctl_cmd_rename(Ctl *ctl, int argc, char **argv)
{
    static const char synopsis[] = "rename NAME|ID|PATH NEW-NAME";
    const char *pos[2];
    int r = ctl_parse_options(ctl, synopsis, argc, argv, NULL, pos, 2, 2);
    if (r >= 0)
        return r;
    if (!g_utf8_validate(pos[1], -1, NULL)) {
        ctl_print(stderr, "%s", _("shimmerctl: the profile name must be UTF-8 text\n"));
        return EXIT_USAGE;
    }
    if ((r = ctl_open(ctl)) != EXIT_OK)
        return r;
    int code = EXIT_OK;
    g_autoptr(ShimmerDBusProfile1) p = ctl_find_profile(ctl, pos[0], FALSE, &code);
    if (p == NULL)
        return code;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply =
        ctl_call(ctl, g_dbus_proxy_get_object_path(G_DBUS_PROXY(p)), IFACE_PROFILE, "Rename",
                 g_variant_new("(s)", pos[1]), NULL, &error);
    if (reply == NULL) {
        g_autofree char *what = g_strdup_printf(_("cannot rename %s"), pos[0]);
        return ctl_fail(what, error);
    }
    ctl_print(stdout, _("Renamed profile '%s' to '%s'\n"), pos[0], pos[1]);
    return EXIT_OK;
}

int ctl_cmd_remove(Ctl *ctl, int argc, char **argv)
{
    static const char synopsis[] = "remove NAME|ID|PATH";
    const char *pos[1];
    int r = ctl_parse_options(ctl, synopsis, argc, argv, NULL, pos, 1, 1);
    if (r >= 0)
        return r;
    if ((r = ctl_open(ctl)) != EXIT_OK)
        return r;
    int code = EXIT_OK;
    g_autoptr(ShimmerDBusProfile1) p = ctl_find_profile(ctl, pos[0], FALSE, &code);
    if (p == NULL)
        return code;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = ctl_call(ctl, g_dbus_proxy_get_object_path(G_DBUS_PROXY(p)),
                                         IFACE_PROFILE, "Remove", NULL, NULL, &error);
    if (reply == NULL) {
        g_autofree char *what = g_strdup_printf(_("cannot remove %s"), pos[0]);
        return ctl_fail(what, error);
    }
    ctl_print(stdout, _("Removed profile '%s'\n"), pos[0]);
    return EXIT_OK;
}
