/* SPDX-License-Identifier: MIT */
/* Unit tests of src/webauth.c: which URLs a front end may hand to a
 * browser, and whether and how it may start one. */
#include <string.h>

#include "webauth.h"

static void test_url_is_safe(void)
{
    static const char *const good[] = {
        "https://sso.example.test/login?session=7&x=1",
        "http://10.0.0.1:8080/auth",
        "HTTPS://[fd00::1]/a#b",
    };
    for (guint i = 0; i < G_N_ELEMENTS(good); i++)
        g_assert_true(shimmer_web_auth_url_is_safe(good[i]));
    static const char *const bad[] = {
        "",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "ms-settings:network",
        "https:///no-host",
        "https://a.example/\x1b[2J",
        "https://a.example/with space",
        "https://a.example/\xc3\xa9",
        "ftp://a.example/",
        "//a.example/",
    };
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++)
        g_assert_false(shimmer_web_auth_url_is_safe(bad[i]));
    g_assert_false(shimmer_web_auth_url_is_safe(NULL));
    g_autofree char *longest = g_strnfill(SHIMMER_WEB_AUTH_MAX_URL, 'a');
    memcpy(longest, "https://a/", 10);
    g_assert_true(shimmer_web_auth_url_is_safe(longest));
    g_autofree char *too_long = g_strconcat(longest, "a", NULL);
    g_assert_false(shimmer_web_auth_url_is_safe(too_long));
}

static const char *url = "https://sso.example.test/x";

static void test_open_as_user(void)
{
    ShimmerBrowserEnv env = {.euid = 1000, .display = ":0", .xdg_runtime_dir = "/run/user/1000"};
    const char *why = "unset";
    g_auto(GStrv) argv = shimmer_web_auth_open_command(&env, url, &why);
    g_assert_nonnull(argv);
    g_assert_null(why);
    g_assert_cmpstr(argv[0], ==, "gio");
    g_assert_cmpstr(argv[1], ==, "open");
    g_assert_cmpstr(argv[2], ==, url);
    g_assert_null(argv[3]);

    /* Wayland alone, with a session type. */
    ShimmerBrowserEnv w = {
        .euid = 1000, .wayland_display = "wayland-0", .xdg_session_type = "wayland"};
    g_auto(GStrv) argv2 = shimmer_web_auth_open_command(&w, url, NULL);
    g_assert_nonnull(argv2);

    /* No display, or a display but no session: only printed. */
    ShimmerBrowserEnv none = {.euid = 1000, .xdg_runtime_dir = "/run/user/1000"};
    g_assert_null(shimmer_web_auth_open_command(&none, url, &why));
    g_assert_nonnull(strstr(why, "graphical"));
    ShimmerBrowserEnv ssh = {.euid = 1000, .display = "localhost:10.0"};
    g_assert_null(shimmer_web_auth_open_command(&ssh, url, &why));
    g_assert_nonnull(strstr(why, "desktop session"));
    /* A URL the engine would not pass either. */
    g_assert_null(shimmer_web_auth_open_command(&env, "file:///etc/shadow", &why));
    g_assert_nonnull(strstr(why, "http(s)"));
}

static void test_open_as_root(void)
{
    const char *why = NULL;
    /* Root on its own: never a browser. */
    ShimmerBrowserEnv root = {.euid = 0, .display = ":0", .xdg_runtime_dir = "/run/user/0"};
    g_assert_null(shimmer_web_auth_open_command(&root, url, &why));
    g_assert_nonnull(strstr(why, "root"));

    /* Through sudo, in the user's session, as the user, with nothing of
     * root's environment. */
    ShimmerBrowserEnv sudo = {.euid = 0,
                              .display = ":1",
                              .wayland_display = "wayland-0",
                              .sudo_uid = "1000",
                              .sudo_user = "alice",
                              .sudo_user_has_session = TRUE};
    g_auto(GStrv) argv = shimmer_web_auth_open_command(&sudo, url, &why);
    g_assert_nonnull(argv);
    g_autofree char *joined = g_strjoinv(" ", argv);
    g_assert_cmpstr(joined, ==,
                    "runuser -u alice -- env -i XDG_RUNTIME_DIR=/run/user/1000 "
                    "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus DISPLAY=:1 "
                    "WAYLAND_DISPLAY=wayland-0 PATH=/usr/local/bin:/usr/bin:/bin gio open "
                    "https://sso.example.test/x");

    /* The sudo user without a session, a user name that could be an
     * option, a uid that is root's or not a number. */
    ShimmerBrowserEnv s2 = sudo;
    s2.sudo_user_has_session = FALSE;
    g_assert_null(shimmer_web_auth_open_command(&s2, url, &why));
    s2 = sudo;
    s2.sudo_user = "-fake";
    g_assert_null(shimmer_web_auth_open_command(&s2, url, &why));
    s2 = sudo;
    s2.sudo_uid = "0";
    g_assert_null(shimmer_web_auth_open_command(&s2, url, &why));
    s2 = sudo;
    s2.sudo_uid = "10x";
    g_assert_null(shimmer_web_auth_open_command(&s2, url, &why));
    /* A display value with a newline is not passed on. */
    s2 = sudo;
    s2.display = ":0\nLD_PRELOAD=/tmp/x";
    g_auto(GStrv) argv3 = shimmer_web_auth_open_command(&s2, url, &why);
    g_assert_nonnull(argv3);
    for (guint i = 0; argv3 != NULL && argv3[i] != NULL; i++)
        g_assert_null(strchr(argv3[i], '\n'));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/webauth/url-is-safe", test_url_is_safe);
    g_test_add_func("/webauth/open-as-user", test_open_as_user);
    g_test_add_func("/webauth/open-as-root", test_open_as_root);
    return g_test_run();
}
