/* SPDX-License-Identifier: MIT */
/*
 * org.shimmervpn.Error.*. See errors.h.
 */
#include "errors.h"

static const GDBusErrorEntry entries[] = {
    {SHIMMER_SERVICE_ERROR_FAILED, "org.shimmervpn.Error.Failed"},
    {SHIMMER_SERVICE_ERROR_INVALID_ARGS, "org.shimmervpn.Error.InvalidArgs"},
    {SHIMMER_SERVICE_ERROR_INVALID_CONFIG, "org.shimmervpn.Error.InvalidConfig"},
    {SHIMMER_SERVICE_ERROR_NOT_AUTHORIZED, "org.shimmervpn.Error.NotAuthorized"},
    {SHIMMER_SERVICE_ERROR_EXISTS, "org.shimmervpn.Error.Exists"},
    {SHIMMER_SERVICE_ERROR_BUSY, "org.shimmervpn.Error.Busy"},
    {SHIMMER_SERVICE_ERROR_NOT_FOUND, "org.shimmervpn.Error.NotFound"},
    {SHIMMER_SERVICE_ERROR_LIMIT, "org.shimmervpn.Error.LimitReached"},
};

G_STATIC_ASSERT(G_N_ELEMENTS(entries) == SHIMMER_SERVICE_N_ERRORS);

void shimmer_bus_errors_register(void)
{
    static gsize done = 0;
    if (g_once_init_enter(&done)) {
        GQuark q = SHIMMER_SERVICE_ERROR;
        for (gsize i = 0; i < G_N_ELEMENTS(entries); i++)
            g_dbus_error_register_error(q, entries[i].error_code, entries[i].dbus_error_name);
        g_once_init_leave(&done, 1);
    }
}

const char *shimmer_bus_error_name(ShimmerServiceError code)
{
    for (gsize i = 0; i < G_N_ELEMENTS(entries); i++)
        if (entries[i].error_code == (gint)code)
            return entries[i].dbus_error_name;
    return entries[0].dbus_error_name;
}

void shimmer_bus_return_error(GDBusMethodInvocation *invocation, const GError *error)
{
    if (error->domain == SHIMMER_SERVICE_ERROR)
        g_dbus_method_invocation_return_gerror(invocation, error);
    else
        g_dbus_method_invocation_return_error_literal(invocation, SHIMMER_SERVICE_ERROR,
                                                      SHIMMER_SERVICE_ERROR_FAILED, error->message);
}

void shimmer_bus_return_new(GDBusMethodInvocation *invocation, ShimmerServiceError code,
                            const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    g_autofree char *msg = g_strdup_vprintf(format, ap);
    va_end(ap);
    g_dbus_method_invocation_return_error_literal(invocation, SHIMMER_SERVICE_ERROR, (gint)code,
                                                  msg);
}
