/* SPDX-License-Identifier: MIT */
/*
 * libnm-vpn-plugin-shimmer.so: the GTK-free NMVpnEditorPlugin. It imports
 * .ovpn files (`nmcli connection import type shimmer file X.ovpn`), exports
 * connections to self-contained .ovpn files (`nmcli connection export`) and
 * suggests a file name. There is no graphical editor: connections are edited
 * with nmcli.
 */
#include <NetworkManager.h>
#include <string.h>

#include "mapping.h"
#include "secure.h"

#define SHIMMER_TYPE_EDITOR_PLUGIN (shimmer_editor_plugin_get_type())
G_DECLARE_FINAL_TYPE(ShimmerEditorPlugin, shimmer_editor_plugin, SHIMMER, EDITOR_PLUGIN, GObject)

struct _ShimmerEditorPlugin {
    GObject parent_instance;
};

enum {
    PROP_0,
    PROP_NAME,
    PROP_DESCRIPTION,
    PROP_SERVICE,
};

static void editor_plugin_iface_init(NMVpnEditorPluginInterface *iface);

G_DEFINE_TYPE_WITH_CODE(ShimmerEditorPlugin, shimmer_editor_plugin, G_TYPE_OBJECT,
                        G_IMPLEMENT_INTERFACE(NM_TYPE_VPN_EDITOR_PLUGIN, editor_plugin_iface_init))

static NMConnection *import_from_file(NMVpnEditorPlugin *plugin, const char *path, GError **error)
{
    g_autoptr(GPtrArray) notes = NULL;
    NMConnection *conn = shimmer_nm_import(path, &notes, error);
    if (conn == NULL)
        return NULL;
    /* NetworkManager's import has no channel for warnings: tell the user on
     * the log (nmcli prints it) what the profile keeps without a setting of
     * its own, so nothing is dropped silently. */
    for (guint i = 0; i < notes->len; i++)
        g_message("%s", (const char *)g_ptr_array_index(notes, i));
    return conn;
}

/* `nmcli connection export` hands over the connection as the client sees it:
 * without secrets. Ask NetworkManager for the ones the profile stores (it
 * checks that the caller may see them). */
static NMConnection *with_secrets(NMConnection *connection, GError **error)
{
    g_autoptr(NMConnection) copy = nm_simple_connection_new_clone(connection);
    const char *path = nm_connection_get_path(connection);
    if (path == NULL || !shimmer_nm_connection_lacks_secrets(connection))
        return g_steal_pointer(&copy);

    g_autoptr(GDBusConnection) bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, error);
    if (bus == NULL)
        return NULL;
    g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
        bus, NM_DBUS_SERVICE, path, NM_DBUS_INTERFACE_SETTINGS_CONNECTION, "GetSecrets",
        g_variant_new("(s)", NM_SETTING_VPN_SETTING_NAME), G_VARIANT_TYPE("(a{sa{sv}})"),
        G_DBUS_CALL_FLAGS_NONE, 30000, NULL, error);
    if (reply == NULL) {
        g_prefix_error(error, "cannot read the connection's secrets: ");
        return NULL;
    }
    g_autoptr(GVariant) secrets = g_variant_get_child_value(reply, 0);
    if (!nm_connection_update_secrets(copy, NM_SETTING_VPN_SETTING_NAME, secrets, error))
        return NULL;
    return g_steal_pointer(&copy);
}

static gboolean export_to_file(NMVpnEditorPlugin *plugin, const char *path,
                               NMConnection *connection, GError **error)
{
    g_autoptr(NMConnection) full = with_secrets(connection, error);
    if (full == NULL)
        return FALSE;
    char *text = shimmer_nm_connection_to_ovpn(full, error);
    if (text == NULL)
        return FALSE;
    /* It may hold private keys: readable by its owner only. */
    gboolean ok =
        g_file_set_contents_full(path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, error);
    shimmer_str_free_secret(text);
    return ok;
}

static char *get_suggested_filename(NMVpnEditorPlugin *plugin, NMConnection *connection)
{
    const char *id = nm_connection_get_id(connection);
    if (id == NULL || id[0] == '\0')
        return g_strdup("shimmer.ovpn");
    GString *s = g_string_new(NULL);
    for (const char *c = id; *c != '\0'; c++) {
        bool bad = *c == '/' || (unsigned char)*c < 0x20 || *c == 0x7f || (c == id && *c == '.');
        g_string_append_c(s, bad ? '_' : *c);
    }
    g_string_append(s, ".ovpn");
    return g_string_free(s, FALSE);
}

static NMVpnEditorPluginCapability get_capabilities(NMVpnEditorPlugin *plugin)
{
    return NM_VPN_EDITOR_PLUGIN_CAPABILITY_IMPORT | NM_VPN_EDITOR_PLUGIN_CAPABILITY_EXPORT |
           NM_VPN_EDITOR_PLUGIN_CAPABILITY_IPV6;
}

static NMVpnEditor *get_editor(NMVpnEditorPlugin *plugin, NMConnection *connection, GError **error)
{
    g_set_error_literal(error, NM_VPN_PLUGIN_ERROR, NM_VPN_PLUGIN_ERROR_FAILED,
                        "Shimmer has no graphical editor: import the .ovpn file and edit the "
                        "connection with nmcli");
    return NULL;
}

static void editor_plugin_iface_init(NMVpnEditorPluginInterface *iface)
{
    iface->get_editor = get_editor;
    iface->get_capabilities = get_capabilities;
    iface->import_from_file = import_from_file;
    iface->export_to_file = export_to_file;
    iface->get_suggested_filename = get_suggested_filename;
}

static void get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
    switch (prop_id) {
    case PROP_NAME:
        g_value_set_string(value, "Shimmer");
        break;
    case PROP_DESCRIPTION:
        g_value_set_string(value, "OpenVPN-compatible VPN run by shimmerd");
        break;
    case PROP_SERVICE:
        g_value_set_string(value, SHIMMER_NM_SERVICE_TYPE);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
        break;
    }
}

static void shimmer_editor_plugin_class_init(ShimmerEditorPluginClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);
    object_class->get_property = get_property;
    g_object_class_override_property(object_class, PROP_NAME, NM_VPN_EDITOR_PLUGIN_NAME);
    g_object_class_override_property(object_class, PROP_DESCRIPTION,
                                     NM_VPN_EDITOR_PLUGIN_DESCRIPTION);
    g_object_class_override_property(object_class, PROP_SERVICE, NM_VPN_EDITOR_PLUGIN_SERVICE);
}

static void shimmer_editor_plugin_init(ShimmerEditorPlugin *plugin)
{
}

/* The one symbol the library exports (see libnm-vpn-plugin-shimmer.ver). */
NMVpnEditorPlugin *nm_vpn_editor_plugin_factory(GError **error)
{
    return NM_VPN_EDITOR_PLUGIN(g_object_new(SHIMMER_TYPE_EDITOR_PLUGIN, NULL));
}
