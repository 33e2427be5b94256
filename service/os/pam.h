/* SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/*
 * User names and passwords checked with PAM, as OpenVPN's
 * openvpn-plugin-auth-pam.so checks them: pam_authenticate() then
 * pam_acct_mgmt() for the service named in the configuration
 * (/etc/pam.d/SERVICE), the password given to every prompt that does not
 * echo and the user name to every prompt that does. PAM may block (a
 * module's fail delay, a network directory), so each check runs on a worker
 * thread and the main loop never waits for it.
 *
 * Errors: G_IO_ERROR_PERMISSION_DENIED when PAM refuses (the message is
 * PAM's, never the password), G_IO_ERROR_FAILED when PAM cannot be used.
 */

void shimmer_pam_check_async(const char *service, const char *username, const char *password,
                             GCancellable *cancellable, GAsyncReadyCallback callback,
                             gpointer user_data);
gboolean shimmer_pam_check_finish(GAsyncResult *result, GError **error);

G_END_DECLS
