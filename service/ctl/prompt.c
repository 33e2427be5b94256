/* SPDX-License-Identifier: MIT */
/*
 * shimmerctl: reading answers without echo.
 *
 * While echo is off the terminal belongs to us, and it must come back as
 * it was whatever happens: the signals that would end shimmerctl (Ctrl-C,
 * Ctrl-\, SIGTERM, SIGHUP) end the prompt instead, and Ctrl-Z gives the
 * terminal back while shimmerctl is stopped. A prompt may run inside the
 * main loop (an answer the daemon asks for), whose own SIGINT and SIGTERM
 * handlers restart an interrupted read(): the prompt's handlers replace
 * them while it reads. The handlers write to a pipe that is polled with
 * standard input, so that a signal that comes just before the wait still
 * ends it, whichever thread it is delivered to.
 */
#include "shimmer-build-config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <glib/gi18n.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "output.h"
#include "prompt.h"
#include "secure.h"

/* The signal that ended the last prompt; 0 if none did. */
static volatile sig_atomic_t prompt_signal;
static volatile sig_atomic_t wake_fd = -1; /* the write end of the prompt's pipe */

static const int end_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static void on_prompt_signal(int sig)
{
    int saved = errno;
    if (sig != SIGTSTP || prompt_signal == 0)
        prompt_signal = sig;
    if (wake_fd >= 0) {
        char c = 0;
        /* Full or failing: the flag is set, and a wake-up is there already. */
        (void)!write(wake_fd, &c, 1);
    }
    errno = saved;
}

typedef struct {
    gboolean tty, echo;
    gboolean quiet;       /* echo is off now */
    struct termios saved; /* the terminal as it was */
    const char *label;
    struct sigaction old[G_N_ELEMENTS(end_signals) + 1]; /* ... and SIGTSTP last */
} Prompt;

static void prompt_handle_signals(Prompt *p)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_prompt_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: the wait must end. */
    for (gsize i = 0; i < G_N_ELEMENTS(end_signals); i++)
        sigaction(end_signals[i], &sa, &p->old[i]);
    sigaction(SIGTSTP, &sa, &p->old[G_N_ELEMENTS(end_signals)]);
}

static void prompt_restore_signals(Prompt *p)
{
    for (gsize i = 0; i < G_N_ELEMENTS(end_signals); i++)
        sigaction(end_signals[i], &p->old[i], NULL);
    sigaction(SIGTSTP, &p->old[G_N_ELEMENTS(end_signals)], NULL);
}

/* Echo off (unless the answer may be seen) before the label is shown:
 * TCSAFLUSH drops what was typed before, never what is typed after. */
static void prompt_show(Prompt *p)
{
    if (!p->tty)
        return;
    if (!p->echo && tcgetattr(STDIN_FILENO, &p->saved) == 0) {
        struct termios quiet = p->saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        quiet.c_lflag |= ECHONL;
        p->quiet = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
    }
    /* On one line, even a label that ends with a line break. */
    g_autofree char *shown = ctl_escape(p->label);
    fputs(shown, stderr);
    fflush(stderr);
}

static void prompt_unquiet(Prompt *p)
{
    if (p->quiet)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &p->saved);
    p->quiet = FALSE;
}

/* Ctrl-Z: the terminal as it was while stopped; asked again once resumed. */
static void prompt_suspend(Prompt *p)
{
    prompt_unquiet(p);
    if (p->tty)
        fputc('\n', stderr);
    struct sigaction dfl, ours;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGTSTP, &dfl, &ours);
    raise(SIGTSTP); /* returns once continued */
    sigaction(SIGTSTP, &ours, NULL);
    prompt_show(p);
}

/* Waits until standard input has something to read (TRUE), or a signal
 * ended the prompt or poll failed (FALSE). */
static gboolean prompt_wait(Prompt *p, int wake_read)
{
    for (;;) {
        struct pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {wake_read, POLLIN, 0}};
        int n = poll(fds, 2, -1);
        if (n < 0 && errno != EINTR)
            return FALSE;
        if (fds[1].revents & POLLIN) {
            char drain[16];
            while (read(wake_read, drain, sizeof(drain)) > 0)
                ;
        }
        if (prompt_signal == SIGTSTP) {
            prompt_signal = 0;
            prompt_suspend(p);
            continue;
        }
        if (prompt_signal != 0)
            return FALSE;
        if (n > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)))
            return TRUE;
    }
}

char *ctl_prompt_line(const char *label, gboolean echo)
{
    Prompt p = {.tty = isatty(STDIN_FILENO), .echo = echo, .label = label};
    int wake[2];
    if (!g_unix_open_pipe(wake, FD_CLOEXEC, NULL))
        return NULL;
    g_unix_set_fd_nonblocking(wake[0], TRUE, NULL);
    g_unix_set_fd_nonblocking(wake[1], TRUE, NULL);
    prompt_signal = 0;
    wake_fd = wake[1];
    prompt_handle_signals(&p);
    prompt_show(&p);

    char buf[1024];
    gsize len = 0;
    gboolean ok = FALSE, too_long = FALSE;
    while (prompt_wait(&p, wake[0])) {
        char ch;
        ssize_t n = read(STDIN_FILENO, &ch, 1);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
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
    prompt_unquiet(&p);
    if (p.tty && prompt_signal != 0)
        fputc('\n', stderr);
    prompt_restore_signals(&p);
    wake_fd = -1;
    close(wake[0]);
    close(wake[1]);

    if (len > 0 && buf[len - 1] == '\r')
        len--;
    buf[len] = '\0';
    char *out = NULL;
    if (too_long)
        ctl_print(stderr, "%s", _("shimmerctl: the answer is too long (at most 1023 bytes)\n"));
    else if (ok && prompt_signal == 0)
        out = g_strdup(buf);
    shimmer_wipe(buf, sizeof(buf));
    return out;
}

gboolean ctl_prompt_interrupted(void)
{
    return prompt_signal != 0;
}
