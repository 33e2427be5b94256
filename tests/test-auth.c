/* SPDX-License-Identifier: MIT */
/*
 * service/bus/auth.c on a private dbus-daemon started here, against two polkitd
 * stand-ins: python-dbusmock's polkitd template (which actions are allowed)
 * and a recorder served by this test (what exactly polkit is asked, and
 * answers dbusmock cannot give: challenges, dismissed dialogs, no answer).
 *
 * The test serves a method, org.shimmervpn.Test.Check(kind, owner), that
 * runs shimmer_auth_check() for its caller, as shimmerd's methods do. A
 * caller other than root is this program started again with --call: under
 * setpriv as "nobody" when the test runs as root, as the test's own user
 * otherwise. The root shortcut is checked only when the test runs as root.
 *
 * Needs dbus-daemon (skips otherwise); the dbusmock cases need
 * /usr/bin/python3 with python3-dbusmock (skip otherwise). Every process
 * started here is stopped by its pid at the end and told to die with this
 * one should the test crash (PR_SET_PDEATHSIG).
 */
#include "bus/auth.h"
#include "bus/errors.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <glib/gstdio.h>

#define AUTH_DOMAIN  "shimmerd"
#define POLKIT_NAME  "org.freedesktop.PolicyKit1"
#define POLKIT_PATH  "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_IFACE "org.freedesktop.PolicyKit1.Authority"
#define TEST_PATH    "/org/shimmervpn/Test"
#define TEST_IFACE   "org.shimmervpn.Test"

#define A_IMPORT       "org.shimmervpn.profile.import"
#define A_PROFILE_OWN  "org.shimmervpn.profile.manage-own"
#define A_PROFILE_ANY  "org.shimmervpn.profile.manage-any"
#define A_SESSION_OWN  "org.shimmervpn.session.control-own"
#define A_SESSION_ANY  "org.shimmervpn.session.control-any"
#define A_SERVER       "org.shimmervpn.server.manage"
#define NOT_AUTHORIZED "org.shimmervpn.Error.NotAuthorized"

/* ---------- the caller, when started with --call ---------- */

/* --call ADDRESS DEST KIND OWNER INTERACTIVE: prints "ok" or the D-Bus
 * error's name; exit status 0 when allowed, 1 when refused, 2 otherwise. */
static int run_caller(char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GDBusConnection) c =
        g_dbus_connection_new_for_address_sync(argv[2],
                                               G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                   G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                               NULL, NULL, &error);
    if (c == NULL) {
        g_printerr("cannot connect: %s\n", error->message);
        return 2;
    }
    guint kind = (guint)g_ascii_strtoull(argv[4], NULL, 10);
    guint owner = (guint)g_ascii_strtoull(argv[5], NULL, 10);
    GDBusCallFlags flags = strcmp(argv[6], "1") == 0
                               ? G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION
                               : G_DBUS_CALL_FLAGS_NONE;
    g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
        c, argv[3], TEST_PATH, TEST_IFACE, "Check", g_variant_new("(uu)", kind, owner), NULL, flags,
        20000, NULL, &error);
    if (reply != NULL) {
        printf("ok\n");
        return 0;
    }
    g_autofree char *name = g_dbus_error_get_remote_error(error);
    printf("%s\n", name != NULL ? name : "(local error)");
    return name != NULL ? 1 : 2;
}

/* ---------- processes and waiting ---------- */

static char *tmp_dir;
static char *bus_address;
static GSubprocess *bus_daemon;
static GSubprocess *dbusmock;
static char *caller_exe; /* a copy of this program anyone can run */
static guint caller_uid; /* the non-root caller's uid */
static gboolean as_root; /* the test runs as root */
static gboolean have_dbusmock;

static void die_with_parent(gpointer user)
{
    (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
}

static GSubprocessLauncher *launcher(GSubprocessFlags flags)
{
    GSubprocessLauncher *l = g_subprocess_launcher_new(flags);
    g_subprocess_launcher_set_child_setup(l, die_with_parent, NULL, NULL);
    return l;
}

static void stop(GSubprocess **p)
{
    if (*p == NULL)
        return;
    g_subprocess_send_signal(*p, SIGTERM);
    (void)g_subprocess_wait(*p, NULL, NULL);
    g_clear_object(p);
}

static gboolean on_timeout(gpointer user)
{
    *(gboolean *)user = TRUE;
    return G_SOURCE_REMOVE;
}

/* Iterates the main context until *FLAG is set; FALSE after TIMEOUT_MS. */
static gboolean wait_for(const gboolean *flag, guint timeout_ms)
{
    gboolean timed_out = FALSE;
    guint id = g_timeout_add(timeout_ms, on_timeout, &timed_out);
    while (!*flag && !timed_out)
        g_main_context_iteration(NULL, TRUE);
    if (!timed_out)
        g_source_remove(id);
    return *flag;
}

static void spin(guint ms)
{
    gboolean never = FALSE;
    wait_for(&never, ms);
}

/* ---------- the bus ---------- */

static GDBusConnection *server;  /* serves Check; ShimmerAuth's bus */
static GDBusConnection *control; /* drives dbusmock; serves the recorder */
static GDBusConnection *self;    /* the test itself as a caller */
static ShimmerAuth *auth;
static GCancellable *auth_cancel;

static GDBusConnection *connect_bus(void)
{
    g_autoptr(GError) error = NULL;
    GDBusConnection *c =
        g_dbus_connection_new_for_address_sync(bus_address,
                                               G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                   G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                               NULL, NULL, &error);
    g_assert_no_error(error);
    return c;
}

static gboolean bus_up(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *exe = g_find_program_in_path("dbus-daemon");
    if (exe == NULL)
        return FALSE;
    tmp_dir = g_dir_make_tmp("shimmer-test-auth-XXXXXX", &error);
    g_assert_no_error(error);
    /* The caller may run as nobody: it must reach the socket and the copy. */
    g_assert_cmpint(g_chmod(tmp_dir, 0755), ==, 0);
    g_autofree char *config = g_strdup_printf(
        "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
        " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
        "<busconfig>\n"
        "  <listen>unix:path=%s/bus</listen>\n"
        "  <auth>EXTERNAL</auth>\n"
        "  <policy context=\"default\">\n"
        "    <allow user=\"*\"/>\n"
        "    <allow own=\"*\"/>\n"
        "    <allow send_destination=\"*\"/>\n"
        "    <allow receive_sender=\"*\"/>\n"
        "  </policy>\n"
        "</busconfig>\n",
        tmp_dir);
    g_autofree char *config_path = g_build_filename(tmp_dir, "bus.conf", NULL);
    g_assert_true(g_file_set_contents(config_path, config, -1, &error));
    g_autofree char *config_arg = g_strconcat("--config-file=", config_path, NULL);
    const char *argv[] = {exe, config_arg, "--nofork", "--print-address=1", NULL};
    g_autoptr(GSubprocessLauncher) l = launcher(G_SUBPROCESS_FLAGS_STDOUT_PIPE);
    bus_daemon = g_subprocess_launcher_spawnv(l, argv, &error);
    g_assert_no_error(error);
    g_autoptr(GDataInputStream) in =
        g_data_input_stream_new(g_subprocess_get_stdout_pipe(bus_daemon));
    g_autofree char *line = g_data_input_stream_read_line(in, NULL, NULL, &error);
    g_assert_no_error(error);
    g_assert_nonnull(line);
    bus_address = g_strdup_printf("unix:path=%s/bus", tmp_dir);

    server = connect_bus();
    control = connect_bus();
    self = connect_bus();
    return TRUE;
}

static gboolean name_has_owner(const char *name)
{
    g_autoptr(GVariant) r = g_dbus_connection_call_sync(
        control, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
        "NameHasOwner", g_variant_new("(s)", name), G_VARIANT_TYPE("(b)"), G_DBUS_CALL_FLAGS_NONE,
        -1, NULL, NULL);
    gboolean has = FALSE;
    if (r != NULL)
        g_variant_get(r, "(b)", &has);
    return has;
}

static gboolean wait_for_name(const char *name, gboolean owned, guint timeout_ms)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    while (name_has_owner(name) != owned) {
        if (g_get_monotonic_time() > deadline)
            return FALSE;
        spin(20);
    }
    return TRUE;
}

/* ---------- the served method ---------- */

typedef struct {
    gboolean done;
    gboolean allowed;
    GError *error;
    char *sender;
} Outcome;

static Outcome outcome;

static void outcome_reset(void)
{
    g_clear_error(&outcome.error);
    g_clear_pointer(&outcome.sender, g_free);
    outcome.done = FALSE;
    outcome.allowed = FALSE;
}

static void on_checked(GObject *source, GAsyncResult *result, gpointer user)
{
    GDBusMethodInvocation *invocation = user;
    g_autoptr(GError) error = NULL;
    /* AUTH may be gone already (test_free_while_pending): finish only
     * looks at RESULT. */
    outcome.allowed = shimmer_auth_check_finish(auth, result, NULL, &error);
    outcome.done = TRUE;
    if (outcome.allowed) {
        g_assert_no_error(error);
        g_dbus_method_invocation_return_value(invocation, NULL);
        return;
    }
    g_assert_nonnull(error);
    outcome.error = g_error_copy(error);
    if (error->domain == SHIMMER_SERVICE_ERROR)
        g_dbus_method_invocation_return_gerror(invocation, error);
    else
        g_dbus_method_invocation_return_error(invocation, SHIMMER_SERVICE_ERROR,
                                              SHIMMER_SERVICE_ERROR_FAILED, "%s", error->message);
}

static void on_gate_allowed(GDBusMethodInvocation *invocation, guint uid, gpointer data)
{
    g_dbus_method_invocation_return_value(invocation, NULL);
}

static void on_test_method(GDBusConnection *c, const char *sender, const char *path,
                           const char *iface, const char *method, GVariant *params,
                           GDBusMethodInvocation *invocation, gpointer user)
{
    if (strcmp(method, "Gate") == 0) {
        /* Not in the table: refused whoever calls. */
        shimmer_auth_gate(auth, invocation, getuid(), auth_cancel, on_gate_allowed, NULL, NULL);
        return;
    }
    guint kind, owner;
    g_variant_get(params, "(uu)", &kind, &owner);
    g_free(outcome.sender);
    outcome.sender = g_strdup(sender);
    shimmer_auth_check(auth, invocation, (ShimmerAuthKind)kind, owner, auth_cancel, on_checked,
                       invocation);
}

static const char test_xml[] = "<node><interface name='" TEST_IFACE "'>"
                               "<method name='Check'>"
                               "<arg type='u' name='kind' direction='in'/>"
                               "<arg type='u' name='owner' direction='in'/>"
                               "</method><method name='Gate'/></interface></node>";

static void export_test_object(void)
{
    static const GDBusInterfaceVTable vtable = {on_test_method, NULL, NULL, {0}};
    g_autoptr(GError) error = NULL;
    g_autoptr(GDBusNodeInfo) node = g_dbus_node_info_new_for_xml(test_xml, &error);
    g_assert_no_error(error);
    guint id = g_dbus_connection_register_object(server, TEST_PATH, node->interfaces[0], &vtable,
                                                 NULL, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(id, >, 0);
}

/* ---------- calling ---------- */

typedef struct {
    gboolean done;
    int status;
    char *out;
} Child;

static void on_child_done(GObject *source, GAsyncResult *result, gpointer user)
{
    Child *child = user;
    g_autoptr(GError) error = NULL;
    char *out = NULL;
    if (g_subprocess_communicate_utf8_finish(G_SUBPROCESS(source), result, &out, NULL, &error)) {
        child->status = g_subprocess_get_if_exited(G_SUBPROCESS(source))
                            ? g_subprocess_get_exit_status(G_SUBPROCESS(source))
                            : -1;
        child->out = g_strstrip(out);
    } else {
        child->status = -1;
        child->out = g_strdup(error->message);
    }
    child->done = TRUE;
}

/* Runs Check(KIND, OWNER) as the non-root caller; the server's view of it is
 * in `outcome`. Returns the caller's view: "ok" or the D-Bus error name. */
static char *call_as_user(guint kind, guint owner, gboolean interactive)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *kind_s = g_strdup_printf("%u", kind);
    g_autofree char *owner_s = g_strdup_printf("%u", owner);
    g_autofree char *uid_s = g_strdup_printf("%u", caller_uid);
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    if (as_root) {
        g_ptr_array_add(argv, (char *)"setpriv");
        g_ptr_array_add(argv, (char *)"--reuid");
        g_ptr_array_add(argv, uid_s);
        g_ptr_array_add(argv, (char *)"--regid");
        g_ptr_array_add(argv, uid_s);
        g_ptr_array_add(argv, (char *)"--clear-groups");
        g_ptr_array_add(argv, (char *)"--");
    }
    g_ptr_array_add(argv, caller_exe);
    g_ptr_array_add(argv, (char *)"--call");
    g_ptr_array_add(argv, bus_address);
    g_ptr_array_add(argv, (char *)g_dbus_connection_get_unique_name(server));
    g_ptr_array_add(argv, kind_s);
    g_ptr_array_add(argv, owner_s);
    g_ptr_array_add(argv, (char *)(interactive ? "1" : "0"));
    g_ptr_array_add(argv, NULL);

    outcome_reset();
    g_autoptr(GSubprocessLauncher) l = launcher(G_SUBPROCESS_FLAGS_STDOUT_PIPE);
    g_autoptr(GSubprocess) p =
        g_subprocess_launcher_spawnv(l, (const char *const *)argv->pdata, &error);
    g_assert_no_error(error);
    Child child = {0};
    g_subprocess_communicate_utf8_async(p, NULL, NULL, on_child_done, &child);
    if (!wait_for(&child.done, 30000)) {
        g_subprocess_force_exit(p);
        wait_for(&child.done, 5000);
        g_test_fail_printf("the caller did not finish");
        g_free(child.out);
        return g_strdup("(timeout)");
    }
    g_assert_true(outcome.done);
    if (child.status == 0)
        g_assert_cmpstr(child.out, ==, "ok");
    else
        g_assert_cmpint(child.status, ==, 1);
    return child.out;
}

static void on_self_reply(GObject *source, GAsyncResult *result, gpointer user)
{
    gboolean *done = user;
    GVariant *r = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, NULL);
    g_clear_pointer(&r, g_variant_unref);
    *done = TRUE;
}

/* Runs Check(KIND, OWNER) as the test's own user; the result is in
 * `outcome`. */
static void call_as_self(guint kind, guint owner)
{
    gboolean done = FALSE;
    outcome_reset();
    g_dbus_connection_call(self, g_dbus_connection_get_unique_name(server), TEST_PATH, TEST_IFACE,
                           "Check", g_variant_new("(uu)", kind, owner), NULL,
                           G_DBUS_CALL_FLAGS_NONE, 20000, NULL, on_self_reply, &done);
    g_assert_true(wait_for(&done, 25000));
    g_assert_true(outcome.done);
}

/* The caller was refused: with NotAuthorized naming ACTION (and WHY). */
static void assert_denied(const char *seen, const char *action, const char *why)
{
    g_assert_cmpstr(seen, ==, NOT_AUTHORIZED);
    g_assert_false(outcome.allowed);
    g_assert_error(outcome.error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_NOT_AUTHORIZED);
    if (outcome.error == NULL)
        return;
    if (action != NULL && strstr(outcome.error->message, action) == NULL)
        g_test_fail_printf("\"%s\" does not name %s", outcome.error->message, action);
    if (why != NULL && strstr(outcome.error->message, why) == NULL)
        g_test_fail_printf("\"%s\" does not say \"%s\"", outcome.error->message, why);
}

static void assert_allowed(const char *seen)
{
    g_assert_cmpstr(seen, ==, "ok");
    g_assert_true(outcome.allowed);
    g_assert_no_error(outcome.error);
}

static void check_user(guint kind, guint owner, const char *denied_action)
{
    g_autofree char *seen = call_as_user(kind, owner, FALSE);
    if (denied_action != NULL)
        assert_denied(seen, denied_action, NULL);
    else
        assert_allowed(seen);
}

/* ---------- dbusmock's polkitd ---------- */

static void mock_call(const char *method, GVariant *args)
{
    g_autoptr(GError) error = NULL;
    GVariant *r =
        g_dbus_connection_call_sync(control, POLKIT_NAME, POLKIT_PATH, "org.freedesktop.DBus.Mock",
                                    method, args, NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
    g_assert_no_error(error);
    g_clear_pointer(&r, g_variant_unref);
}

static void mock_allow(const char *const *actions)
{
    mock_call("SetAllowed", g_variant_new("(^as)", actions));
}

static gboolean dbusmock_up(void)
{
    const char *python = g_getenv("SHIMMER_TEST_PYTHON");
    if (python == NULL || !g_str_has_prefix(python, "/usr/bin/"))
        python = "/usr/bin/python3"; /* the one with python3-dbusmock */
    const char *probe[] = {python, "-c", "import dbusmock", NULL};
    int status = -1;
    if (!g_spawn_sync(NULL, (char **)probe, NULL,
                      G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL,
                      NULL, &status, NULL) ||
        !g_spawn_check_wait_status(status, NULL))
        return FALSE;

    g_autoptr(GError) error = NULL;
    g_autoptr(GSubprocessLauncher) l = launcher(G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
    g_subprocess_launcher_setenv(l, "DBUS_SYSTEM_BUS_ADDRESS", bus_address, TRUE);
    const char *argv[] = {python, "-m", "dbusmock", "--system", "--template", "polkitd", NULL};
    dbusmock = g_subprocess_launcher_spawnv(l, argv, &error);
    g_assert_no_error(error);
    g_assert_true(wait_for_name(POLKIT_NAME, TRUE, 20000));
    return TRUE;
}

/* ---------- the recorder: a polkitd stand-in served here ---------- */

typedef struct {
    guint calls;
    char *subject_kind;
    char *subject_name;
    char *action;
    guint n_details;
    guint flags;
    char *cancel_id;
    char *cancelled_id;
    /* the answer */
    gboolean authorized;
    gboolean challenge;
    gboolean dismissed;
    gboolean hold;
    GDBusMethodInvocation *held;
    guint reg_id;
} Recorder;

static Recorder rec;

static void recorder_reset(gboolean authorized, gboolean challenge, gboolean dismissed)
{
    rec.calls = 0;
    g_clear_pointer(&rec.subject_kind, g_free);
    g_clear_pointer(&rec.subject_name, g_free);
    g_clear_pointer(&rec.action, g_free);
    g_clear_pointer(&rec.cancel_id, g_free);
    g_clear_pointer(&rec.cancelled_id, g_free);
    rec.n_details = 0;
    rec.flags = G_MAXUINT;
    rec.authorized = authorized;
    rec.challenge = challenge;
    rec.dismissed = dismissed;
    rec.hold = FALSE;
}

static GVariant *recorder_answer(void)
{
    GVariantBuilder details;
    g_variant_builder_init(&details, G_VARIANT_TYPE("a{ss}"));
    if (rec.dismissed)
        g_variant_builder_add(&details, "{ss}", "polkit.dismissed", "true");
    return g_variant_new("((bba{ss}))", rec.authorized, rec.challenge, &details);
}

static void on_recorder_method(GDBusConnection *c, const char *sender, const char *path,
                               const char *iface, const char *method, GVariant *params,
                               GDBusMethodInvocation *invocation, gpointer user)
{
    if (strcmp(method, "CancelCheckAuthorization") == 0) {
        g_free(rec.cancelled_id);
        g_variant_get(params, "(s)", &rec.cancelled_id);
        g_dbus_method_invocation_return_value(invocation, NULL);
        return;
    }
    g_autoptr(GVariant) subject_details = NULL;
    g_autoptr(GVariant) details = NULL;
    rec.calls++;
    g_clear_pointer(&rec.subject_kind, g_free);
    g_clear_pointer(&rec.action, g_free);
    g_clear_pointer(&rec.cancel_id, g_free);
    g_variant_get(params, "((s@a{sv})s@a{ss}us)", &rec.subject_kind, &subject_details, &rec.action,
                  &details, &rec.flags, &rec.cancel_id);
    g_clear_pointer(&rec.subject_name, g_free);
    (void)g_variant_lookup(subject_details, "name", "s", &rec.subject_name);
    rec.n_details = (guint)g_variant_n_children(details);
    if (rec.hold) {
        rec.held = invocation;
        return;
    }
    g_dbus_method_invocation_return_value(invocation, recorder_answer());
}

static const char recorder_xml[] = "<node><interface name='" POLKIT_IFACE "'>"
                                   "<method name='CheckAuthorization'>"
                                   "<arg type='(sa{sv})' name='subject' direction='in'/>"
                                   "<arg type='s' name='action_id' direction='in'/>"
                                   "<arg type='a{ss}' name='details' direction='in'/>"
                                   "<arg type='u' name='flags' direction='in'/>"
                                   "<arg type='s' name='cancellation_id' direction='in'/>"
                                   "<arg type='(bba{ss})' name='result' direction='out'/>"
                                   "</method>"
                                   "<method name='CancelCheckAuthorization'>"
                                   "<arg type='s' name='cancellation_id' direction='in'/>"
                                   "</method></interface></node>";

static void recorder_up(void)
{
    static const GDBusInterfaceVTable vtable = {on_recorder_method, NULL, NULL, {0}};
    g_autoptr(GError) error = NULL;
    g_autoptr(GDBusNodeInfo) node = g_dbus_node_info_new_for_xml(recorder_xml, &error);
    g_assert_no_error(error);
    rec.reg_id = g_dbus_connection_register_object(control, POLKIT_PATH, node->interfaces[0],
                                                   &vtable, NULL, NULL, &error);
    g_assert_no_error(error);
    g_autoptr(GVariant) r = g_dbus_connection_call_sync(
        control, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
        "RequestName", g_variant_new("(su)", POLKIT_NAME, 4u /* DO_NOT_QUEUE */),
        G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
    g_assert_no_error(error);
    guint answer = 0;
    g_variant_get(r, "(u)", &answer);
    g_assert_cmpuint(answer, ==, 1 /* PRIMARY_OWNER */);
    recorder_reset(FALSE, FALSE, FALSE);
}

/* ---------- the tests ---------- */

typedef struct {
    gboolean done;
    gboolean ok;
    guint uid;
    GError *error;
} UidAnswer;

static void on_uid(GObject *source, GAsyncResult *result, gpointer user)
{
    UidAnswer *a = user;
    a->ok = shimmer_auth_get_uid_finish(auth, result, &a->uid, &a->error);
    a->done = TRUE;
}

/* Asks for SENDER's uid and waits (the main loop runs meanwhile). */
static gboolean get_uid(const char *sender, guint *uid, GError **error)
{
    UidAnswer a = {0};
    shimmer_auth_get_uid(auth, sender, NULL, on_uid, &a);
    while (!a.done)
        g_main_context_iteration(NULL, TRUE);
    *uid = a.uid;
    if (a.error != NULL)
        g_propagate_error(error, a.error);
    return a.ok;
}

static void test_uid(void)
{
    g_autoptr(GError) error = NULL;
    guint uid = G_MAXUINT;
    const char *me = g_dbus_connection_get_unique_name(self);

    /* Not known before it was asked for. */
    g_assert_false(shimmer_auth_lookup_uid(auth, me, &uid));
    g_assert_true(get_uid(me, &uid, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(uid, ==, getuid());
    /* cached: known at once, and the same answer again */
    uid = G_MAXUINT;
    g_assert_true(shimmer_auth_lookup_uid(auth, me, &uid));
    g_assert_cmpuint(uid, ==, getuid());
    g_assert_true(get_uid(me, &uid, &error));
    g_assert_cmpuint(uid, ==, getuid());
    /* and listed among the names of its uid (where owner-only signals go) */
    g_auto(GStrv) names = shimmer_auth_dup_names_of_uid(auth, getuid());
    g_assert_true(g_strv_contains((const char *const *)names, me));
    g_auto(GStrv) none = shimmer_auth_dup_names_of_uid(auth, getuid() + 12345);
    g_assert_null(none[0]);

    g_assert_false(get_uid(":1.99999", &uid, &error));
    g_assert_nonnull(error);
    g_assert_false(shimmer_auth_lookup_uid(auth, ":1.99999", &uid));
    g_assert_false(shimmer_auth_lookup_uid(auth, NULL, &uid));
}

/* A name's uid is forgotten when the name leaves the bus. */
static void test_uid_cache_follows_the_bus(void)
{
    g_autoptr(GError) error = NULL;
    GDBusConnection *c = connect_bus();
    g_autofree char *name = g_strdup(g_dbus_connection_get_unique_name(c));
    guint uid = G_MAXUINT;
    g_assert_true(get_uid(name, &uid, &error));
    g_assert_cmpuint(uid, ==, getuid());
    g_assert_true(g_dbus_connection_close_sync(c, NULL, &error));
    g_object_unref(c);

    gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
    gboolean forgotten = FALSE;
    while (!forgotten && g_get_monotonic_time() < deadline) {
        spin(20);
        forgotten = !shimmer_auth_lookup_uid(auth, name, &uid);
    }
    g_assert_true(forgotten);
}

/* Every method of the interface XML is in the authorization table, and
 * nothing else is: a method added to the API without an entry would be
 * refused to everyone. */
static void test_table_matches_the_api(void)
{
    const char *srcdir = g_getenv("SHIMMER_TEST_SRCDIR");
    if (srcdir == NULL) {
        g_test_skip("SHIMMER_TEST_SRCDIR is not set");
        return;
    }
    static const char *const files[] = {
        "org.shimmervpn.Manager1.xml", "org.shimmervpn.Profile1.xml", "org.shimmervpn.Session1.xml",
        "org.shimmervpn.Server1.xml", "org.shimmervpn.Client1.xml"};
    guint methods = 0;
    for (gsize f = 0; f < G_N_ELEMENTS(files); f++) {
        g_autofree char *path = g_build_filename(srcdir, "..", "dbus", files[f], NULL);
        g_autofree char *xml = NULL;
        g_autoptr(GError) error = NULL;
        g_assert_true(g_file_get_contents(path, &xml, NULL, &error));
        g_autoptr(GDBusNodeInfo) node = g_dbus_node_info_new_for_xml(xml, &error);
        g_assert_no_error(error);
        for (GDBusInterfaceInfo **i = node->interfaces; *i != NULL; i++)
            for (GDBusMethodInfo **m = (*i)->methods; m != NULL && *m != NULL; m++) {
                if (!shimmer_auth_method_is_listed((*i)->name, (*m)->name))
                    g_test_message("%s.%s is not in the table", (*i)->name, (*m)->name);
                g_assert_true(shimmer_auth_method_is_listed((*i)->name, (*m)->name));
                methods++;
            }
    }
    g_assert_cmpuint(methods, >=, 19);
    g_assert_false(shimmer_auth_method_is_listed("org.shimmervpn.Manager1", "Shutdown"));
    g_assert_false(shimmer_auth_method_is_listed(TEST_IFACE, "Check"));
    g_assert_false(shimmer_auth_method_is_listed(NULL, "Connect"));
}

static const char *const own_actions[] = {A_IMPORT, A_PROFILE_OWN, A_SESSION_OWN, NULL};
static const char *const any_actions[] = {A_PROFILE_ANY, A_SESSION_ANY, NULL};
static const char *const no_actions[] = {NULL};

static void test_dbusmock_actions(void)
{
    if (!have_dbusmock) {
        g_test_skip("/usr/bin/python3 with python3-dbusmock is needed");
        return;
    }
    guint me = caller_uid, other = caller_uid + 1;

    /* Nothing allowed: everything refused, naming the action it needed. */
    mock_allow(no_actions);
    check_user(SHIMMER_AUTH_IMPORT, 0, A_IMPORT);
    check_user(SHIMMER_AUTH_PROFILE, me, A_PROFILE_OWN);
    check_user(SHIMMER_AUTH_SESSION, me, A_SESSION_OWN);

    /* The shipped defaults for an active local user: own things only. */
    mock_allow(own_actions);
    check_user(SHIMMER_AUTH_IMPORT, 0, NULL);
    check_user(SHIMMER_AUTH_IMPORT, other, NULL); /* the owner does not matter */
    check_user(SHIMMER_AUTH_PROFILE, me, NULL);
    check_user(SHIMMER_AUTH_PROFILE, other, A_PROFILE_ANY);
    check_user(SHIMMER_AUTH_PROFILE, 0, A_PROFILE_ANY); /* root's objects too */
    check_user(SHIMMER_AUTH_SESSION, me, NULL);
    check_user(SHIMMER_AUTH_SESSION, other, A_SESSION_ANY);

    /* "any" and "own" are separate actions. */
    mock_allow(any_actions);
    check_user(SHIMMER_AUTH_PROFILE, other, NULL);
    check_user(SHIMMER_AUTH_SESSION, other, NULL);
    check_user(SHIMMER_AUTH_PROFILE, me, A_PROFILE_OWN);
    check_user(SHIMMER_AUTH_SESSION, me, A_SESSION_OWN);
    check_user(SHIMMER_AUTH_IMPORT, 0, A_IMPORT);

    /* Servers: one action, whoever owns the server; not implied by the
     * others. */
    check_user(SHIMMER_AUTH_SERVER, me, A_SERVER);
    check_user(SHIMMER_AUTH_SERVER, other, A_SERVER);
    static const char *const server_action[] = {A_SERVER, NULL};
    mock_allow(server_action);
    check_user(SHIMMER_AUTH_SERVER, me, NULL);
    check_user(SHIMMER_AUTH_SERVER, other, NULL);
    check_user(SHIMMER_AUTH_PROFILE, me, A_PROFILE_OWN);
    check_user(SHIMMER_AUTH_IMPORT, 0, A_IMPORT);

    /* A request auth.c has no action for is refused even if polkit would
     * allow anything. */
    mock_call("AllowUnknown", g_variant_new("(b)", TRUE));
    g_autofree char *seen = call_as_user(42, me, FALSE);
    assert_denied(seen, NULL, "unknown request");
    mock_call("AllowUnknown", g_variant_new("(b)", FALSE));
    mock_allow(no_actions);
}

static void on_result(GObject *source, GAsyncResult *result, gpointer user)
{
    *(GAsyncResult **)user = g_object_ref(result);
}

/* The gate refuses a method its table does not list, to root as well. */
static void test_gate_refuses_unlisted(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GAsyncResult) result = NULL;
    /* Asynchronously: the method is served on this thread's main loop. */
    g_dbus_connection_call(self, g_dbus_connection_get_unique_name(server), TEST_PATH, TEST_IFACE,
                           "Gate", NULL, NULL, G_DBUS_CALL_FLAGS_NONE, 5000, NULL, on_result,
                           &result);
    while (result == NULL)
        g_main_context_iteration(NULL, TRUE);
    g_autoptr(GVariant) reply = g_dbus_connection_call_finish(self, result, &error);
    g_assert_null(reply);
    g_assert_error(error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_NOT_AUTHORIZED);
}

static void test_root_shortcut(void)
{
    if (!as_root) {
        g_test_skip("needs root");
        return;
    }
    if (have_dbusmock)
        mock_allow(no_actions);
    call_as_self(SHIMMER_AUTH_IMPORT, 0);
    g_assert_true(outcome.allowed);
    call_as_self(SHIMMER_AUTH_PROFILE, caller_uid);
    g_assert_true(outcome.allowed);
    call_as_self(SHIMMER_AUTH_SESSION, caller_uid);
    g_assert_true(outcome.allowed);
    /* Not even root gets a request auth.c does not know. */
    call_as_self(42, 0);
    g_assert_false(outcome.allowed);
    g_assert_error(outcome.error, SHIMMER_SERVICE_ERROR, SHIMMER_SERVICE_ERROR_NOT_AUTHORIZED);
}

/* No polkit on the bus: everyone but root is refused, with one warning. */
static void test_polkit_unreachable(void)
{
    stop(&dbusmock);
    g_assert_true(wait_for_name(POLKIT_NAME, FALSE, 10000));

    g_test_expect_message(AUTH_DOMAIN, G_LOG_LEVEL_WARNING, "*polkit did not answer*");
    g_autofree char *first = call_as_user(SHIMMER_AUTH_PROFILE, caller_uid, FALSE);
    assert_denied(first, A_PROFILE_OWN, "not available");
    /* once, not per call */
    g_autofree char *second = call_as_user(SHIMMER_AUTH_IMPORT, 0, FALSE);
    assert_denied(second, A_IMPORT, "not available");
    g_test_assert_expected_messages();

    if (as_root) {
        call_as_self(SHIMMER_AUTH_SESSION, caller_uid);
        g_assert_true(outcome.allowed);
    }

    /* Without a polkit connection at all, the same. */
    ShimmerAuth *saved = auth;
    g_autoptr(GDBusConnection) dead = connect_bus();
    g_assert_true(g_dbus_connection_close_sync(dead, NULL, NULL));
    auth = shimmer_auth_new(server, dead);
    g_test_expect_message(AUTH_DOMAIN, G_LOG_LEVEL_WARNING, "*polkit did not answer*");
    g_autofree char *third = call_as_user(SHIMMER_AUTH_IMPORT, 0, FALSE);
    assert_denied(third, A_IMPORT, "not available");
    g_test_assert_expected_messages();
    shimmer_auth_free(auth);
    auth = saved;
}

/* What polkit is asked, exactly. */
static void test_wire_format(void)
{
    recorder_reset(TRUE, FALSE, FALSE);
    g_autofree char *seen = call_as_user(SHIMMER_AUTH_PROFILE, caller_uid + 7, TRUE);
    assert_allowed(seen);
    g_assert_cmpuint(rec.calls, ==, 1);
    g_assert_cmpstr(rec.subject_kind, ==, "system-bus-name");
    g_assert_cmpstr(rec.subject_name, ==, outcome.sender);
    g_assert_cmpstr(rec.action, ==, A_PROFILE_ANY);
    g_assert_cmpuint(rec.n_details, ==, 0);
    g_assert_cmpuint(rec.flags, ==, 1); /* AllowUserInteraction */
    g_assert_nonnull(rec.cancel_id);
    g_assert_cmpstr(rec.cancel_id, !=, "");
    g_autofree char *first_id = g_strdup(rec.cancel_id);

    recorder_reset(TRUE, FALSE, FALSE);
    g_autofree char *seen2 = call_as_user(SHIMMER_AUTH_SESSION, caller_uid, FALSE);
    assert_allowed(seen2);
    g_assert_cmpstr(rec.action, ==, A_SESSION_OWN);
    g_assert_cmpuint(rec.flags, ==, 0);
    g_assert_cmpstr(rec.cancel_id, !=, first_id);
}

static void test_polkit_answers(void)
{
    /* A challenge the caller did not allow us to put to its user. */
    recorder_reset(FALSE, TRUE, FALSE);
    g_autofree char *a = call_as_user(SHIMMER_AUTH_SESSION, caller_uid + 1, FALSE);
    assert_denied(a, A_SESSION_ANY, "authentication is required");

    /* The user closed the authentication dialog. */
    recorder_reset(FALSE, FALSE, TRUE);
    g_autofree char *b = call_as_user(SHIMMER_AUTH_SESSION, caller_uid + 1, TRUE);
    assert_denied(b, A_SESSION_ANY, "dismissed");

    /* A plain no. */
    recorder_reset(FALSE, FALSE, FALSE);
    g_autofree char *c = call_as_user(SHIMMER_AUTH_IMPORT, 0, TRUE);
    assert_denied(c, A_IMPORT, NULL);
}

typedef struct {
    Child child;
    GSubprocess *p;
} Pending;

/* Starts a non-root caller without waiting for it. */
static void start_user_call(Pending *pending, guint kind, guint owner)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *uid_s = g_strdup_printf("%u", caller_uid);
    g_autofree char *kind_s = g_strdup_printf("%u", kind);
    g_autofree char *owner_s = g_strdup_printf("%u", owner);
    const char *root_argv[] = {"setpriv",
                               "--reuid",
                               uid_s,
                               "--regid",
                               uid_s,
                               "--clear-groups",
                               "--",
                               caller_exe,
                               "--call",
                               bus_address,
                               g_dbus_connection_get_unique_name(server),
                               kind_s,
                               owner_s,
                               "1",
                               NULL};
    const char *const *argv = as_root ? root_argv : root_argv + 7;
    g_autoptr(GSubprocessLauncher) l = launcher(G_SUBPROCESS_FLAGS_STDOUT_PIPE);
    outcome_reset();
    memset(pending, 0, sizeof(*pending));
    pending->p = g_subprocess_launcher_spawnv(l, argv, &error);
    g_assert_no_error(error);
    g_subprocess_communicate_utf8_async(pending->p, NULL, NULL, on_child_done, &pending->child);
}

static void finish_user_call(Pending *pending)
{
    g_assert_true(wait_for(&pending->child.done, 30000));
    g_free(pending->child.out);
    g_clear_object(&pending->p);
}

/* Cancelling a check gets G_IO_ERROR_CANCELLED and tells polkit to drop
 * its dialog. */
static void test_cancel(void)
{
    Pending pending;
    recorder_reset(TRUE, FALSE, FALSE);
    rec.hold = TRUE;
    start_user_call(&pending, SHIMMER_AUTH_PROFILE, caller_uid);
    while (rec.held == NULL && !pending.child.done)
        g_main_context_iteration(NULL, TRUE);
    g_assert_nonnull(rec.held);
    g_cancellable_cancel(auth_cancel);
    g_assert_true(wait_for(&outcome.done, 10000));
    g_assert_false(outcome.allowed);
    g_assert_error(outcome.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    gboolean have_cancel = FALSE;
    gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
    while (rec.cancelled_id == NULL && g_get_monotonic_time() < deadline)
        spin(20);
    have_cancel = rec.cancelled_id != NULL;
    g_assert_true(have_cancel);
    g_assert_cmpstr(rec.cancelled_id, ==, rec.cancel_id);
    finish_user_call(&pending);

    g_dbus_method_invocation_return_value(g_steal_pointer(&rec.held), recorder_answer());
    g_clear_object(&auth_cancel);
    auth_cancel = g_cancellable_new();
}

/* shimmer_auth_free() while a check is under way: the check still ends,
 * with polkit's answer, and nothing touches freed memory (ASan). */
static void test_free_while_pending(void)
{
    Pending pending;
    recorder_reset(TRUE, FALSE, FALSE);
    rec.hold = TRUE;
    start_user_call(&pending, SHIMMER_AUTH_SESSION, caller_uid);
    while (rec.held == NULL && !pending.child.done)
        g_main_context_iteration(NULL, TRUE);
    g_assert_nonnull(rec.held);

    g_clear_pointer(&auth, shimmer_auth_free);
    g_dbus_method_invocation_return_value(g_steal_pointer(&rec.held), recorder_answer());
    g_assert_true(wait_for(&outcome.done, 10000));
    g_assert_true(outcome.allowed);
    finish_user_call(&pending);
    auth = shimmer_auth_new(server, server);
}

/* ---------- main ---------- */

static char *copy_self(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *exe = g_file_read_link("/proc/self/exe", &error);
    g_assert_no_error(error);
    char *copy = g_build_filename(tmp_dir, "test-auth-caller", NULL);
    g_autoptr(GFile) from = g_file_new_for_path(exe);
    g_autoptr(GFile) to = g_file_new_for_path(copy);
    g_assert_true(g_file_copy(from, to, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL, &error));
    g_assert_no_error(error);
    g_assert_cmpint(g_chmod(copy, 0755), ==, 0);
    return copy;
}

static void test_skipped(gconstpointer reason)
{
    g_test_skip(reason);
}

static int skip_all(const char *reason)
{
    g_test_add_data_func("/auth/skipped", reason, test_skipped);
    return g_test_run();
}

int main(int argc, char **argv)
{
    if (argc == 7 && strcmp(argv[1], "--call") == 0)
        return run_caller(argv);

    g_test_init(&argc, &argv, NULL);
    shimmer_bus_errors_register();

    as_root = getuid() == 0;
    caller_uid = getuid();
    if (as_root) {
        struct passwd *pw = getpwnam("nobody");
        g_autofree char *setpriv = g_find_program_in_path("setpriv");
        if (pw == NULL || setpriv == NULL)
            return skip_all(pw == NULL ? "running as root: the user nobody is needed"
                                       : "running as root: setpriv is needed");
        caller_uid = pw->pw_uid;
    }
    if (!bus_up())
        return skip_all("dbus-daemon is needed");
    caller_exe = copy_self();
    export_test_object();
    auth = shimmer_auth_new(server, server);
    auth_cancel = g_cancellable_new();
    have_dbusmock = dbusmock_up();

    g_test_add_func("/auth/uid", test_uid);
    g_test_add_func("/auth/uid-cache-follows-the-bus", test_uid_cache_follows_the_bus);
    g_test_add_func("/auth/table-matches-the-api", test_table_matches_the_api);
    g_test_add_func("/auth/gate-refuses-unlisted", test_gate_refuses_unlisted);
    g_test_add_func("/auth/dbusmock-actions", test_dbusmock_actions);
    g_test_add_func("/auth/root-shortcut", test_root_shortcut);
    g_test_add_func("/auth/polkit-unreachable", test_polkit_unreachable);
    g_test_add_func("/auth/recorder-setup", recorder_up);
    g_test_add_func("/auth/recorder-wire-format", test_wire_format);
    g_test_add_func("/auth/recorder-answers", test_polkit_answers);
    g_test_add_func("/auth/recorder-cancel", test_cancel);
    g_test_add_func("/auth/recorder-free-while-pending", test_free_while_pending);
    int ret = g_test_run();

    shimmer_auth_free(auth);
    g_clear_object(&auth_cancel);
    stop(&dbusmock);
    g_clear_object(&self);
    g_clear_object(&control);
    g_clear_object(&server);
    stop(&bus_daemon);
    outcome_reset();
    recorder_reset(FALSE, FALSE, FALSE);
    g_autofree char *bus_conf = g_build_filename(tmp_dir, "bus.conf", NULL);
    g_autofree char *bus_socket = g_build_filename(tmp_dir, "bus", NULL);
    (void)g_unlink(bus_conf);
    (void)g_unlink(bus_socket);
    (void)g_unlink(caller_exe);
    (void)g_rmdir(tmp_dir);
    g_free(caller_exe);
    g_free(bus_address);
    g_free(tmp_dir);
    return ret;
}
