/* SPDX-License-Identifier: MIT */
/*
 * PAM checks on worker threads. See pam.h.
 */
#include "pam.h"

#include <security/pam_appl.h>
#include <string.h>

#include "secure.h"

typedef struct {
    char *service;
    char *username;
    char *password; /* a secret */
} Check;

static void check_free(Check *c)
{
    g_free(c->service);
    g_free(c->username);
    shimmer_str_free_secret(c->password);
    g_free(c);
}

/* Answers PAM's prompts: the password where the answer is not shown, the
 * user name where it is. Replies are PAM's to free. */
static int converse(int n, const struct pam_message **msgs, struct pam_response **out, void *data)
{
    Check *c = data;
    if (n <= 0 || n > PAM_MAX_NUM_MSG)
        return PAM_CONV_ERR;
    struct pam_response *r = calloc((size_t)n, sizeof(*r));
    if (r == NULL)
        return PAM_BUF_ERR;
    for (int i = 0; i < n; i++) {
        switch (msgs[i]->msg_style) {
        case PAM_PROMPT_ECHO_OFF:
            r[i].resp = strdup(c->password);
            break;
        case PAM_PROMPT_ECHO_ON:
            r[i].resp = strdup(c->username);
            break;
        default:
            break; /* PAM_ERROR_MSG, PAM_TEXT_INFO: nothing to answer */
        }
        if ((msgs[i]->msg_style == PAM_PROMPT_ECHO_OFF ||
             msgs[i]->msg_style == PAM_PROMPT_ECHO_ON) &&
            r[i].resp == NULL) {
            for (int j = 0; j < i; j++) {
                if (r[j].resp != NULL) {
                    shimmer_wipe(r[j].resp, strlen(r[j].resp));
                    free(r[j].resp);
                }
            }
            free(r);
            return PAM_BUF_ERR;
        }
    }
    *out = r;
    return PAM_SUCCESS;
}

static void run_check(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    Check *c = data;
    struct pam_conv conv = {converse, c};
    pam_handle_t *h = NULL;
    int rc = pam_start(c->service, c->username, &conv, &h);
    if (rc != PAM_SUCCESS) {
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_FAILED, "PAM service %s: %s",
                                c->service, h ? pam_strerror(h, rc) : "cannot start");
        if (h != NULL)
            pam_end(h, rc);
        return;
    }
    rc = pam_authenticate(h, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
    if (rc == PAM_SUCCESS)
        rc = pam_acct_mgmt(h, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
    if (rc == PAM_SUCCESS)
        g_task_return_boolean(task, TRUE);
    else
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED, "%s",
                                pam_strerror(h, rc));
    pam_end(h, rc);
}

void shimmer_pam_check_async(const char *service, const char *username, const char *password,
                             GCancellable *cancellable, GAsyncReadyCallback callback,
                             gpointer user_data)
{
    Check *c = g_new0(Check, 1);
    c->service = g_strdup(service);
    c->username = g_strdup(username ? username : "");
    c->password = g_strdup(password ? password : "");
    GTask *task = g_task_new(NULL, cancellable, callback, user_data);
    g_task_set_source_tag(task, shimmer_pam_check_async);
    g_task_set_task_data(task, c, (GDestroyNotify)check_free);
    g_task_run_in_thread(task, run_check);
    g_object_unref(task);
}

gboolean shimmer_pam_check_finish(GAsyncResult *result, GError **error)
{
    return g_task_propagate_boolean(G_TASK(result), error);
}
