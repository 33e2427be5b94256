/* SPDX-License-Identifier: MIT */
/* shimmerctl: reading answers without echo. */
#include "shimmer-build-config.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "output.h"
#include "prompt.h"
#include "secure.h"

static volatile sig_atomic_t prompt_interrupted;

static void on_prompt_signal(int sig)
{
    (void)sig;
    prompt_interrupted = 1;
}

char *ctl_prompt_line(const char *label, gboolean echo)
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
        ctl_print(stderr, "%s", label);
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
        ctl_print(stderr, "%s", _("shimmerctl: the answer is too long (at most 1023 bytes)\n"));
    else if (ok && !prompt_interrupted)
        out = g_strdup(buf);
    shimmer_wipe(buf, sizeof(buf));
    return out;
}

gboolean ctl_prompt_interrupted(void)
{
    return prompt_interrupted != 0;
}
