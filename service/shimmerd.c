/* SPDX-License-Identifier: MIT */
/*
 * shimmerd, two ways:
 *
 * - `shimmerd --system` (or `--bus-address ADDR`): the D-Bus service
 *   org.shimmervpn (bus/service.h; the API is in dbus/README.md). Exit
 *   codes: 0 stopped by SIGTERM/SIGINT (every session disconnected and its
 *   routes and DNS reverted first); 1 the bus or the bus name is lost or
 *   cannot be had; 2 usage.
 * - `shimmerd --config FILE`: runs one client in the foreground, as
 *   `openvpn --config FILE` does (tunnel/foreground.h). Exit codes: 0
 *   stopped by a signal or the server; 1 the session failed
 *   (authentication refused, certificate rejected, ...); 2 usage or a
 *   configuration that is refused.
 */
#define G_LOG_DOMAIN "shimmerd"

#include "shimmer-build-config.h"

#include <glib.h>
#include <glib/gi18n.h>
#include <locale.h>
#include <stdio.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "bus/service.h"
#include "tunnel/foreground.h"

int main(int argc, char **argv)
{
#ifdef __GLIBC__
    /* A tunnel's data path holds some megabytes of 64 KB buffers, made
     * and freed with each session. A fixed threshold keeps them in their
     * own mappings, given back at free; glibc's moving one would put the
     * next session's on the heap after the first free, where they stay. */
    mallopt(M_MMAP_THRESHOLD, 64 * 1024);
#endif
    setlocale(LC_ALL, "");
    bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
    bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
    textdomain(GETTEXT_PACKAGE);

    g_autofree char *config = NULL;
    g_autofree char *bus_address = NULL, *polkit_address = NULL, *resolved_address = NULL;
    g_autofree char *state_dir = NULL, *resolvconf = NULL;
    gboolean verbose = FALSE, version = FALSE, system_bus = FALSE;
    GOptionEntry entries[] = {
        {"system", 0, 0, G_OPTION_ARG_NONE, &system_bus,
         N_("Serve org.shimmervpn on the system bus"), NULL},
        {"bus-address", 0, 0, G_OPTION_ARG_STRING, &bus_address,
         N_("Serve on the bus at this address instead (tests)"), "ADDR"},
        {"state-dir", 0, 0, G_OPTION_ARG_FILENAME, &state_dir,
         N_("Where profiles are stored (default /var/lib/shimmer)"), "DIR"},
        {"polkit-bus-address", 0, 0, G_OPTION_ARG_STRING, &polkit_address,
         N_("Where the polkit authority is (default: the bus served on)"), "ADDR"},
        {"resolved-bus-address", 0, 0, G_OPTION_ARG_STRING, &resolved_address,
         N_("Where systemd-resolved is looked for (default: the bus served on)"), "ADDR"},
        {"resolvconf", 0, 0, G_OPTION_ARG_FILENAME, &resolvconf,
         N_("The resolvconf program (default: found in PATH)"), "PROGRAM"},
        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config,
         N_("Run one client from an OpenVPN configuration file, in the foreground"), "FILE"},
        {"verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, N_("Log protocol details"), NULL},
        {"version", 0, 0, G_OPTION_ARG_NONE, &version, N_("Print the version"), NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);
    g_option_context_set_summary(ctx, _("The Shimmer VPN daemon."));
    g_option_context_add_main_entries(ctx, entries, GETTEXT_PACKAGE);
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        fprintf(stderr, "shimmerd: %s\n", error->message);
        return 2;
    }
    if (version) {
        printf("shimmerd %s\n", PACKAGE_VERSION);
        return 0;
    }
    gboolean service = system_bus || bus_address != NULL;
    if (config != NULL && service) {
        fprintf(stderr, "%s",
                _("shimmerd: --config runs one client without D-Bus; it does not "
                  "go with --system or --bus-address\n"));
        return 2;
    }
    if (system_bus && bus_address != NULL) {
        fprintf(stderr, "%s", _("shimmerd: give --system or --bus-address, not both\n"));
        return 2;
    }
    if (config != NULL)
        return shimmer_foreground_run(config, verbose);
    if (!service) {
        fprintf(stderr, "%s",
                _("shimmerd: give --system (the D-Bus service), --bus-address "
                  "ADDR, or --config FILE (one client in the foreground)\n"));
        return 2;
    }
    ShimmerBusServiceRunOptions run = {
        .bus_address = bus_address,
        .polkit_address = polkit_address,
        .resolved_address = resolved_address,
        .resolvconf = resolvconf,
        .state_dir = state_dir,
        .verbose = verbose,
    };
    return shimmer_bus_service_run(&run);
}
