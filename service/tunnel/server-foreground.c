/* SPDX-License-Identifier: MIT */
/*
 * `shimmerd --config server.conf`: one server in the foreground, as
 * `openvpn --config server.conf` runs one. See server.h.
 */
#define G_LOG_DOMAIN "shimmerd"

#include <glib-unix.h>
#include <stdio.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "os/log.h"
#include "os/pam.h"
#include "secure.h"
#include "server.h"

typedef struct {
    GMainLoop *loop;
    ShimmerServer *server;
    const ShimmerConfig *cfg;
    int exit_code;
    gboolean verbose;
    guint signals;
    GCancellable *cancel;
} Foreground;

static void on_log(gpointer user, ShimmerLogLevel level, const char *message)
{
    Foreground *f = user;
    if (level == SHIMMER_LOG_DEBUG && !f->verbose)
        return;
    shimmer_log_line(level == SHIMMER_LOG_ERROR     ? "error: "
                     : level == SHIMMER_LOG_WARNING ? "warning: "
                                                    : "",
                     message);
}

typedef struct {
    Foreground *f;
    guint64 id;
    char *username;
} PamCheck;

static void on_pam_done(GObject *source, GAsyncResult *result, gpointer user)
{
    PamCheck *pc = user;
    g_autoptr(GError) error = NULL;
    gboolean ok = shimmer_pam_check_finish(result, &error);
    if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        Foreground *f = pc->f;
        if (!ok) {
            g_autofree char *line =
                g_strdup_printf("PAM refused user '%s': %s", pc->username, error->message);
            shimmer_log_line("warning: ", line);
        }
        shimmer_server_auth_reply(f->server, pc->id, ok ? SHIMMER_AUTH_ACCEPT : SHIMMER_AUTH_DENY,
                                  NULL);
    }
    g_free(pc->username);
    g_free(pc);
}

static void on_auth_request(gpointer user, guint64 id, const char *common_name,
                            const char *username, const char *password)
{
    Foreground *f = user;
    if (f->cfg->pam_service == NULL) {
        shimmer_server_auth_reply(f->server, id, SHIMMER_AUTH_DENY, NULL);
        return;
    }
    PamCheck *pc = g_new0(PamCheck, 1);
    pc->f = f;
    pc->id = id;
    pc->username = g_strdup(username);
    /* Until PAM answers; the client hears AUTH_PENDING if it knows it. */
    shimmer_server_auth_reply(f->server, id, SHIMMER_AUTH_PENDING, NULL);
    shimmer_pam_check_async(f->cfg->pam_service, username, password, f->cancel, on_pam_done, pc);
}

static void on_finished(gpointer user, gboolean failed, const char *reason)
{
    Foreground *f = user;
    if (failed) {
        shimmer_log_line("error: ", reason ? reason : "the server failed");
        f->exit_code = 1;
    } else {
        shimmer_log_line("", reason ? reason : "stopped");
    }
    g_main_loop_quit(f->loop);
}

static gboolean on_signal(gpointer user)
{
    Foreground *f = user;
    if (++f->signals > 1) {
        /* A second signal: stop waiting for the clients' acks. */
        g_main_loop_quit(f->loop);
        return G_SOURCE_CONTINUE;
    }
    shimmer_log_line("", "signal received, telling the clients to reconnect later");
    shimmer_server_stop(f->server);
    return G_SOURCE_CONTINUE;
}

int shimmer_server_foreground_run(const ShimmerConfig *cfg, const char *file, gboolean verbose)
{
    Foreground f = {.cfg = cfg, .verbose = verbose};
#ifdef __GLIBC__
    /* shimmerd fixes glibc's mmap threshold (shimmerd.c), which fixes the
     * heap's trim threshold at 128 KB too: a server taking a crowd of
     * clients grew and shrank its heap with a brk() (and page faults) per
     * handshake. A server process keeps half a megabyte of slack per
     * arena; the daemon does not (its sessions come and go, and each
     * thread's arena would keep it). */
    mallopt(M_TRIM_THRESHOLD, 512 * 1024);
    mallopt(M_TOP_PAD, 512 * 1024);
#endif
    f.loop = g_main_loop_new(NULL, FALSE);
    f.cancel = g_cancellable_new();
    ShimmerServerCallbacks cb = {
        .log = on_log,
        .auth_request = on_auth_request,
        .finished = on_finished,
        .user = &f,
    };
    g_autoptr(GError) error = NULL;
    f.server = shimmer_server_new(cfg, NULL, &cb, &error);
    if (f.server == NULL || !shimmer_server_start(f.server, &error)) {
        fprintf(stderr, "%s: error: %s\n", file, error->message);
        shimmer_server_free(f.server);
        g_object_unref(f.cancel);
        g_main_loop_unref(f.loop);
        return 2;
    }
    guint s1 = g_unix_signal_add(SIGINT, on_signal, &f);
    guint s2 = g_unix_signal_add(SIGTERM, on_signal, &f);
    /* Clients' lines go out a loop turn at a time, not a write each. */
    shimmer_log_batch_start(NULL);
    g_main_loop_run(f.loop);
    g_source_remove(s1);
    g_source_remove(s2);
    g_cancellable_cancel(f.cancel);
    shimmer_server_free(f.server);
    shimmer_log_batch_stop();
    /* PAM checks still running finish on their threads and find the
     * cancellation. */
    g_object_unref(f.cancel);
    g_main_loop_unref(f.loop);
    return f.exit_code;
}
