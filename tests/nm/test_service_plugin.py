# SPDX-License-Identifier: MIT
"""nm-shimmer-service driven over D-Bus the way NetworkManager drives it, with
no NetworkManager: a private bus (tests/lab/privbus.py), shimmerd and the
plugin in the lab's client namespace, an OpenVPN 2.6 server in its server
namespace. This runs the plugin in every build, the sanitizer one too (where
nmcli cannot load the editor plugin and test_nm_connect.py skips), with
GLib criticals fatal.

  - Connect with a connection (vpn.data / vpn.secrets as the editor plugin
    writes them): the plugin reports Config (tundev shimN, MTU, the server as
    external gateway), Ip4Config (the tunnel address, prefix, pushed route
    and DNS, never-default) and Ip6Config, reaches STARTED; the tun is up
    and carries no address (NetworkManager would set it);
  - Disconnect: STOPPED, shimmerd's transient profile and the tun are gone,
    and the plugin leaves the bus and exits 0 by itself;
  - a wrong password: Failure(login-failed) is the last failure, then
    STOPPED;
  - a connection that is not a usable profile: Connect fails with the
    parser's message.

Needs root; skips with the reason otherwise.
Environment: NM_SHIMMER_SERVICE (the built plugin), SHIMMERD.
"""

import ipaddress
import os
import shutil
import socket
import struct
import sys
import tempfile
import time
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lab"))

import lab as labmod  # noqa: E402
import privbus  # noqa: E402

try:
    from gi.repository import Gio, GLib
except ImportError:  # pragma: no cover - reported by _skip_reason()
    Gio = GLib = None

PLUGIN = os.environ.get("NM_SHIMMER_SERVICE", "")
SHIMMERD = os.environ.get("SHIMMERD", "")
SERVICE = "org.freedesktop.NetworkManager.shimmer"
BUS_NAME = SERVICE + ".Connection_1"
PATH = "/org/freedesktop/NetworkManager/VPN/Plugin"
IFACE = "org.freedesktop.NetworkManager.VPN.Plugin"
STARTED, STOPPED = 4, 6           # NMVpnServiceState
LOGIN_FAILED, CONNECT_FAILED = 0, 1  # NMVpnPluginFailure
USER, PASSWORD = "alice", "s3cret-plugin"


def _skip_reason():
    reason = privbus.lab_skip_reason()
    if reason:
        return reason
    if not os.access(PLUGIN, os.X_OK) or not os.access(SHIMMERD, os.X_OK):
        return "NM_SHIMMER_SERVICE and SHIMMERD must name the built programs"
    return None


def _read(name):
    with open(labmod.fixture(name)) as f:
        return f.read()


def _cpu_seconds(pid):
    """User + system CPU time the process PID has used."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _u32(addr):
    """An IPv4 address as NetworkManager's VPN API carries it (network order)."""
    return struct.unpack("=I", socket.inet_aton(addr))[0]


class World:
    def __init__(self, tmp):
        self.tmp = tmp
        self.bus = self.lab = self.plugin = self.shimmerd = None
        try:
            self._setup()
        except BaseException:
            # Half a world is taken down here: the fixture only has a World
            # once this returns.
            self.close()
            raise

    def _setup(self):
        self.bus = privbus.PrivateBus(self.tmp, policy="open")
        self.lab = labmod.Lab().setup()
        self.srv = self.lab.start_openvpn_server({
            "wrap": "tls-crypt", "auth_user_pass": (USER, PASSWORD),
            "push_routes": ["10.99.0.0/16"],
            "extra": ['push "dhcp-option DNS 10.99.0.53"',
                      'push "dhcp-option DOMAIN corp.shimmer.test"']})
        self.shimmerd = self.lab.spawn_in_client(
            [SHIMMERD, "--bus-address", self.bus.address, "--state-dir",
             os.path.join(self.tmp, "state"), "--resolved-bus-address", self.bus.address],
            name="shimmerd")
        self.conn = Gio.DBusConnection.new_for_address_sync(
            self.bus.address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
            | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        privbus.wait_until(lambda: self.has_owner("org.shimmervpn"), 15, "shimmerd on the bus")
        self.plugin = None
        self.signals = []

    def has_owner(self, name):
        return self.conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                   "org.freedesktop.DBus", "NameHasOwner",
                                   GLib.Variant("(s)", (name,)), None, Gio.DBusCallFlags.NONE,
                                   5000, None).unpack()[0]

    def start_plugin(self):
        env = {"DBUS_SYSTEM_BUS_ADDRESS": self.bus.address,
               "G_DEBUG": "fatal-criticals", "G_MESSAGES_DEBUG": ""}
        self.plugin = self.lab.spawn_in_client([PLUGIN, "--bus-name", BUS_NAME],
                                               name=self.lab._unique("plugin"), env=env)
        privbus.wait_until(lambda: self.has_owner(BUS_NAME), 15, "the plugin on the bus")
        self.signals = []
        self.conn.signal_subscribe(None, IFACE, None, PATH, None, Gio.DBusSignalFlags.NONE,
                                   lambda c, sender, p, i, member, params:
                                   self.signals.append((member, params.unpack())))

    def call(self, method, args, timeout=30000):
        return self.conn.call_sync(BUS_NAME, PATH, IFACE, method, args, None,
                                   Gio.DBusCallFlags.NONE, timeout, None)

    def seen(self, member):
        return [args for m, args in self.signals if m == member]

    def shimmer_profiles(self):
        return self.conn.call_sync("org.shimmervpn", "/org/shimmervpn",
                                   "org.shimmervpn.Manager1", "ListProfiles", None,
                                   GLib.VariantType("(ao)"), Gio.DBusCallFlags.NONE, 5000,
                                   None).unpack()[0]

    def tun_links(self):
        out = self.lab.run_in_client(["ip", "-o", "link", "show", "type", "tun"],
                                     check=False).stdout
        return [line.split(":")[1].strip() for line in out.splitlines() if line.strip()]

    def plugin_log(self):
        return self.plugin.read_log(whole=True) if self.plugin else ""

    def close(self):
        for proc in (self.plugin, self.shimmerd):
            if proc is not None:
                proc.stop(timeout=10)
        if self.lab is not None:
            self.lab.close()
        if self.bus is not None:
            self.bus.stop()


@pytest.fixture
def world():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    tmp = tempfile.mkdtemp(prefix="shimmer-nm-service-")
    w = None
    try:
        w = World(tmp)
        yield w
        # No sanitizer report, no critical, whatever the test did.
        log = w.plugin_log()
        assert "AddressSanitizer" not in log and "runtime error:" not in log, log[-4000:]
        assert "CRITICAL" not in log, log[-4000:]
    finally:
        if w is not None:
            print("\n---- plugin log ----\n" + w.plugin_log()[-3000:])
            w.close()
        shutil.rmtree(tmp, ignore_errors=True)


def connection(w, password=PASSWORD, **data_overrides):
    """A connection as NetworkManager hands it to the plugin (a{sa{sv}}),
    with vpn.data and vpn.secrets as the editor plugin's import writes them."""
    data = {
        "client": "yes", "dev": "tun", "proto": "udp",
        "remote": "%s %d" % (w.lab.server_ip4, w.srv.port),
        "remote-cert-tls": "server",
        "ca": _read("ca.crt"), "cert": _read("client.crt"),
        "key-pem-flags": "0", "tls-crypt-key-flags": "0",
        "username": USER, "password-flags": "1",
    }
    data.update(data_overrides)
    data = {k: v for k, v in data.items() if v is not None}
    secrets = {"key-pem": _read("client.key"), "tls-crypt-key": _read("tc.key"),
               "password": password}
    return GLib.Variant("(a{sa{sv}})", ({
        "connection": {"id": GLib.Variant("s", "plugin-test"),
                       "uuid": GLib.Variant("s", str(uuid.uuid4())),
                       "type": GLib.Variant("s", "vpn")},
        "vpn": {"service-type": GLib.Variant("s", SERVICE),
                "data": GLib.Variant("a{ss}", data),
                "secrets": GLib.Variant("a{ss}", secrets)},
        "ipv4": {"method": GLib.Variant("s", "auto"), "never-default": GLib.Variant("b", True)},
    },))


def test_connect_reports_the_configuration_and_disconnects(world):
    w = world
    w.start_plugin()
    w.call("Connect", connection(w))
    privbus.wait_until(lambda: STARTED in [s[0] for s in w.seen("StateChanged")], 30, "STARTED")

    config = w.seen("Config")[-1][0]
    tundev = config["tundev"]
    assert tundev.startswith("shim"), config
    assert config["mtu"] == 1500 and config["has-ip4"] and config["has-ip6"], config
    assert config["gateway"] == _u32(w.lab.server_ip4), config

    ip4 = w.seen("Ip4Config")[-1][0]
    net4 = ipaddress.ip_network(w.srv.tunnel_net4)
    addr4 = socket.inet_ntoa(struct.pack("=I", ip4["address"]))
    assert ipaddress.ip_address(addr4) in net4 and ip4["prefix"] == 24, ip4
    assert ip4["dns"] == [_u32("10.99.0.53")], ip4
    assert "corp.shimmer.test" in ip4["domains"], ip4
    assert [_u32("10.99.0.0"), 16, 0, 0] in ip4["routes"], ip4
    assert ip4["never-default"] is True
    ip6 = w.seen("Ip6Config")[-1][0]
    addr6 = ipaddress.ip_address(bytes(ip6["address"]))
    assert addr6 in ipaddress.ip_network(w.srv.tunnel_net6) and ip6["prefix"] == 64, ip6

    # shimmerd made the tun and left its addresses to NetworkManager.
    link = w.lab.run_in_client(["ip", "-o", "addr", "show", "dev", tundev]).stdout
    assert "inet " not in link and "global" not in link, link
    assert ",UP" in w.lab.run_in_client(["ip", "-o", "link", "show", tundev]).stdout
    assert len(w.shimmer_profiles()) == 1

    # Idle while the tunnel is up: no busy loop in the plugin.
    before = _cpu_seconds(w.plugin.pid)
    time.sleep(1.0)
    assert _cpu_seconds(w.plugin.pid) - before < 0.2, "the plugin keeps the CPU busy"

    w.call("Disconnect", None)
    privbus.wait_until(lambda: STOPPED in [s[0] for s in w.seen("StateChanged")], 20, "STOPPED")
    privbus.wait_until(lambda: not w.shimmer_profiles(), 20, "the transient profile to go")
    privbus.wait_until(lambda: tundev not in w.tun_links(), 20, "the tun to go")
    assert not w.seen("Failure"), w.signals
    # Stopped and nobody to serve: it leaves by itself, cleanly.
    assert w.plugin.wait_exit(15) == 0, w.plugin_log()[-2000:]


def test_wrong_password_is_a_login_failure(world):
    w = world
    w.start_plugin()
    w.call("Connect", connection(w, password="not-the-password"))
    privbus.wait_until(lambda: STOPPED in [s[0] for s in w.seen("StateChanged")], 30, "STOPPED")
    failures = [f[0] for f in w.seen("Failure")]
    # libnm adds a connect-failed of its own; NetworkManager keeps the last.
    assert failures and failures[-1] == LOGIN_FAILED, failures
    stopped_at = [i for i, (m, a) in enumerate(w.signals) if m == "StateChanged"
                  and a[0] == STOPPED][0]
    last_failure = max(i for i, (m, a) in enumerate(w.signals) if m == "Failure")
    assert last_failure < stopped_at, w.signals
    assert "authentication failed" in w.plugin_log()
    privbus.wait_until(lambda: not w.shimmer_profiles(), 20, "the transient profile to go")
    assert w.plugin.wait_exit(15) == 0


def test_unusable_connection_is_refused_with_the_reason(world):
    w = world
    w.start_plugin()
    with pytest.raises(GLib.Error) as err:
        w.call("Connect", connection(w, **{"remote-cert-tls": "nonsense"}))
    assert "remote-cert-tls" in err.value.message, err.value.message
    assert not w.shimmer_profiles()
