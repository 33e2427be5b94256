# SPDX-License-Identifier: MIT
"""Quick checks of shimmerd's D-Bus core (issue 4): a private dbus-daemon
that allows everything, shimmerd in the lab's client namespace, an OpenVPN
2.6 server in the other, everything as root (the polkit and multi-user
cases are in test_service.py).

Import the lab's inline profile, connect, ping through the tunnel, watch
the counters and Log signals, disconnect, see the tun gone and the session
object removed, restart the daemon and find the profile again; a corrupt
stored file is set aside; malformed calls get org.shimmervpn.Error.* and the
daemon keeps running; a session bound to its caller ends when the caller
leaves the bus, and so does a transient profile imported bound to its
caller; a stale shimN tun device is removed at start. What NetworkManager's
plugin relies on: Connect with "configure-network" false (the tun is up,
nothing else is configured, NetworkConfig says what to configure) and
FailureKind.

    SHIMMERD=build/service/shimmerd /usr/bin/python3 -m pytest -q tests/dbus/test_daemon_core.py

Needs root; skips with the reason otherwise. Every process is stopped by
pid, the bus too, and the lab removes its namespaces.
"""
import contextlib
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "lab"))

import lab as labmod  # noqa: E402
import privbus  # noqa: E402

try:
    from gi.repository import Gio, GLib
except ImportError:  # pragma: no cover
    Gio = GLib = None

BUS_NAME = "org.shimmervpn"
ROOT = "/org/shimmervpn"
M1 = "org.shimmervpn.Manager1"
P1 = "org.shimmervpn.Profile1"
S1 = "org.shimmervpn.Session1"


def _find_shimmerd():
    path = os.environ.get("SHIMMERD")
    if path:
        return path if os.access(path, os.X_OK) else None
    found = [p for p in glob.glob(os.path.join(REPO, "*", "service", "shimmerd"))
             + glob.glob(os.path.join(REPO, "_build", "*", "service", "shimmerd"))
             if os.access(p, os.X_OK)]
    return max(found, key=os.path.getmtime) if found else None


SHIMMERD = _find_shimmerd()


def _find_shimmerctl():
    path = os.environ.get("SHIMMERCTL")
    if path:
        return path if os.access(path, os.X_OK) else None
    # shimmerctl is built in service/ctl/, beside shimmerd's directory.
    for near in ((os.path.join(os.path.dirname(SHIMMERD), "ctl", "shimmerctl"),
                  os.path.join(os.path.dirname(SHIMMERD), "shimmerctl")) if SHIMMERD else ()):
        if os.access(near, os.X_OK):
            return near
    return None


# Optional: the checks of its output are skipped without it.
SHIMMERCTL = _find_shimmerctl()


def _skip_reason():
    reason = privbus.lab_skip_reason()
    if reason:
        return reason
    if SHIMMERD is None:
        return "shimmerd not built (set $SHIMMERD)"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")

class Bus(privbus.PrivateBus):
    """A private dbus-daemon with an open policy (tests/lab/privbus.py)."""

    def __init__(self, tmp):
        super().__init__(tmp, policy="open")


def connect(address):
    return Gio.DBusConnection.new_for_address_sync(
        address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)


def call(conn, path, iface, method, args=None, reply=None):
    return conn.call_sync(BUS_NAME, path, iface, method, args,
                          GLib.VariantType(reply) if reply else None,
                          Gio.DBusCallFlags.NONE, 20000, None)


def call_error(conn, path, iface, method, args=None):
    """The D-Bus error name the call ends with (it must fail)."""
    return call_error_full(conn, path, iface, method, args)[0]


def call_error_full(conn, path, iface, method, args=None):
    """(error name, message) the call ends with (it must fail)."""
    try:
        call(conn, path, iface, method, args)
    except GLib.Error as e:
        return Gio.DBusError.get_remote_error(e) or e.message, e.message
    raise AssertionError("%s.%s succeeded" % (iface, method))


def prop(conn, path, iface, name):
    return call(conn, path, "org.freedesktop.DBus.Properties", "Get",
                GLib.Variant("(ss)", (iface, name)), "(v)").unpack()[0]


pump = privbus.pump
wait_until = privbus.wait_until


class Env:
    def __init__(self, lab, bus, state_dir):
        self.lab, self.bus, self.state_dir = lab, bus, state_dir
        self.daemon = None
        self.conn = None

    def start_daemon(self):
        self.daemon = self.lab.spawn_in_client(
            [SHIMMERD, "--bus-address", self.bus.address, "--state-dir", self.state_dir],
            name=self.lab._unique("shimmerd"))
        if self.conn is None:
            self.conn = connect(self.bus.address)

        def owned():
            assert self.daemon.alive(), "shimmerd exited:\n" + self.daemon.log_tail()
            r = self.conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                    "org.freedesktop.DBus", "NameHasOwner",
                                    GLib.Variant("(s)", (BUS_NAME,)), None,
                                    Gio.DBusCallFlags.NONE, 5000, None)
            return r.unpack()[0]
        wait_until(owned, 15, "shimmerd to own " + BUS_NAME)

    def stop_daemon(self):
        rc = self.daemon.stop(timeout=15)
        return rc

    def tun_links(self):
        out = self.lab.run_in_client(["ip", "-o", "link", "show", "type", "tun"],
                                     check=False).stdout
        return re.findall(r"^\d+: (\S+?)[:@]", out, re.M)


@contextlib.contextmanager
def lab_env(tmp_path, server_options=None):
    """A lab with an OpenVPN server (SERVER_OPTIONS, see lab.SERVER_DEFAULTS),
    a private bus and shimmerd serving on it: yields the Env. Skips with the
    reason where the lab cannot run; stops everything at the end."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    bus = Bus(str(tmp_path))
    try:
        with labmod.Lab() as lab:
            lab.start_openvpn_server(server_options)
            e = Env(lab, bus, str(tmp_path / "state"))
            e.start_daemon()
            try:
                yield e
            finally:
                if e.daemon is not None:
                    e.daemon.stop()
    finally:
        bus.stop()


@pytest.fixture
def env():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    tmp = tempfile.mkdtemp(prefix="shimmer-dbus-core-")
    bus = Bus(tmp)
    try:
        with labmod.Lab() as lab:
            lab.start_openvpn_server({"push_routes": ["10.99.0.0/16"]})
            e = Env(lab, bus, os.path.join(tmp, "state"))
            e.start_daemon()
            try:
                yield e
            except BaseException:
                print(lab.logs(60))
                raise
            finally:
                if e.daemon is not None:
                    e.daemon.stop()
    finally:
        bus.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def import_lab_profile(e, name="lab"):
    text = e.lab.client_config({"inline": True})
    reply = call(e.conn, ROOT, M1, "ImportProfile",
                 GLib.Variant("(ssa{sv})", (name, text, {})), "(o)")
    return reply.unpack()[0], text


def test_introspection_and_bad_calls(env):
    c = env.conn
    xml = call(c, ROOT, "org.freedesktop.DBus.Introspectable", "Introspect", None,
               "(s)").unpack()[0]
    assert "org.shimmervpn.Manager1" in xml and "org.freedesktop.DBus.ObjectManager" in xml
    assert prop(c, ROOT, M1, "Version")
    assert prop(c, ROOT, M1, "DnsBackend") in ("resolved", "resolvconf", "none")

    def imp(name, text, opts):
        return call_error(c, ROOT, M1, "ImportProfile",
                          GLib.Variant("(ssa{sv})", (name, text, opts)))

    good = env.lab.client_config({"inline": True})
    err = "org.shimmervpn.Error."
    assert imp("", good, {}) == err + "InvalidArgs"
    assert imp("x" * 129, good, {}) == err + "InvalidArgs"
    assert imp("a\nb", good, {}) == err + "InvalidArgs"
    assert imp("n", good, {"nope": GLib.Variant("b", True)}) == err + "InvalidArgs"
    assert imp("n", good, {"persistent": GLib.Variant("s", "yes")}) == err + "InvalidArgs"
    assert imp("n", "x" * (1024 * 1024 + 1), {}) == err + "InvalidArgs"
    # A file reference: refused, with FILE:LINE diagnostics named after the profile.
    with_file = good + "tls-auth /etc/shadow 1\n"
    try:
        call(c, ROOT, M1, "ImportProfile", GLib.Variant("(ssa{sv})", ("withfile", with_file, {})))
        raise AssertionError("a profile that names a file was imported")
    except GLib.Error as e:
        assert Gio.DBusError.get_remote_error(e) == err + "InvalidConfig"
        assert re.search(r"withfile:\d+: error:", e.message), e.message
    # A server configuration is not a client profile.
    server_text = open(env.lab.servers[-1].config).read()
    assert imp("srv", server_text, {}) == err + "InvalidConfig"
    # GDBus itself refuses wrong argument types; unknown objects are errors.
    assert call_error(c, ROOT, M1, "ImportProfile", GLib.Variant("(s)", ("x",))).startswith(
        "org.freedesktop.DBus.Error.")
    assert call_error(c, ROOT + "/profile/nope", P1, "Remove").startswith(
        "org.freedesktop.DBus.Error.")
    usable, diags = call(c, ROOT, M1, "CheckConfig", GLib.Variant("(s)", (good,)),
                         "(bs)").unpack()
    assert usable, diags
    path, _ = import_lab_profile(env)
    assert imp("lab", good, {}) == err + "Exists"
    bad_opts = call_error(c, path, P1, "Connect",
                          GLib.Variant("(a{sv})", ({"bound-to-caller": GLib.Variant("s", "x")},)))
    assert bad_opts == err + "InvalidArgs"
    assert env.daemon.alive()


def test_tunnel_lifecycle(env):
    c = env.conn
    path, text = import_lab_profile(env)
    assert re.fullmatch(ROOT + r"/profile/[0-9a-f]{32}", path)
    files = os.listdir(env.state_dir)
    assert len(files) == 1 and files[0].endswith(".profile")
    st = os.stat(os.path.join(env.state_dir, files[0]))
    assert st.st_mode & 0o777 == 0o600
    assert prop(c, path, P1, "Name") == "lab"
    assert prop(c, path, P1, "Remotes") == ["%s:%d/udp" % (env.lab.server_ip4,
                                                           env.lab.servers[-1].port)]
    # The summary a tray applet shows: the wrap, the parser's warnings
    # (the lab profile has 'nobind' and 'verb'), never used yet.
    assert prop(c, path, P1, "Wrap") == env.lab.servers[-1].spec["wrap"]
    warnings = prop(c, path, P1, "Warnings")
    assert any(":6: warning: 'nobind' ignored" in w for w in warnings), warnings
    assert prop(c, path, P1, "LastUsed") == 0
    # No key material over D-Bus, neither in the configuration nor in the tree.
    key_body = [l for l in text.split("<key>")[1].splitlines() if l and "-----" not in l][0]
    json_text = call(c, path, P1, "GetConfiguration", None, "(s)").unpack()[0]
    objects = call(c, ROOT, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", None,
                   "(a{oa{sa{sv}}})").unpack()[0]
    assert key_body not in json_text and key_body not in repr(objects)
    assert path in objects

    logs = []
    c.signal_subscribe(BUS_NAME, S1, "Log", None, None, Gio.DBusSignalFlags.NONE,
                       lambda *a: logs.append(a[5].unpack()))
    session = call(c, path, P1, "Connect", GLib.Variant("(a{sv})", ({},)), "(o)").unpack()[0]
    assert prop(c, path, P1, "ActiveSession") == session
    assert call_error(c, path, P1, "Connect",
                      GLib.Variant("(a{sv})", ({},))) == "org.shimmervpn.Error.Busy"
    wait_until(lambda: prop(c, session, S1, "State") == "connected", 20, "connected")
    iface = prop(c, session, S1, "Interface")
    assert re.fullmatch(r"shim\d+", iface), iface
    net_prefix = env.lab.tunnel_net4.rsplit(".", 1)[0] + "."
    addrs = prop(c, session, S1, "Addresses")
    assert any(a.startswith(net_prefix) and a.endswith("/24") for a in addrs), addrs
    assert "10.99.0.0/16" in prop(c, session, S1, "Routes")
    assert prop(c, session, S1, "Cipher") == "AES-256-GCM"
    assert prop(c, session, S1, "TlsVersion").startswith("TLS")
    assert prop(c, session, S1, "ConnectedSince") > 0

    # A ping through the tunnel: routed via the session's tun, replies on it.
    srv = env.lab.servers[-1]
    assert env.lab.route_dev(srv.tunnel_v4) == iface
    rx_before = env.lab._rx_packets(iface)
    ping = env.lab.ping_from_client(srv.tunnel_v4, count=5, interval=0.1, through_tunnel=False)
    assert ping.ok, ping.output
    assert env.lab._rx_packets(iface) - rx_before >= ping.received
    # Counters follow within about a second (announced once a second).
    wait_until(lambda: prop(c, session, S1, "PacketsIn") >= ping.received
               and prop(c, session, S1, "BytesOut") > 0, 5, "the counters to rise")
    wait_until(lambda: any("connected" in m or "tun device" in m for _, m in logs), 5,
               "Log signals")

    call(c, session, S1, "Disconnect")
    wait_until(lambda: prop(c, session, S1, "State") == "disconnected", 10, "disconnected")
    assert "disconnected on request" in prop(c, session, S1, "StateReason")
    assert prop(c, path, P1, "ActiveSession") == "/"
    assert iface not in env.tun_links()
    assert "10.99.0.0" not in env.lab.run_in_client(["ip", "route"], check=False).stdout
    # The object stays a few seconds for the final state, then goes.
    wait_until(lambda: session not in call(
        c, ROOT, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", None,
        "(a{oa{sa{sv}}})").unpack()[0], 15, "the session object to be removed")

    # A corrupt file is set aside; the good profile survives a restart; a
    # persistent tun of the daemon's pattern (as a crash could leave one)
    # is removed at start.
    with open(os.path.join(env.state_dir, "0" * 32 + ".profile"), "w") as f:
        f.write("shimmer-profile 1\nid: garbage\n\n")
    assert env.stop_daemon() == 0
    env.lab.run_in_client(["ip", "tuntap", "add", "shim77", "mode", "tun"])
    env.start_daemon()
    assert "shim77" not in env.tun_links()
    profiles = call(c, ROOT, M1, "ListProfiles", None, "(ao)").unpack()[0]
    assert profiles == [path]
    assert prop(c, path, P1, "Name") == "lab"
    assert os.path.exists(os.path.join(env.state_dir, "0" * 32 + ".profile.corrupt"))
    assert "set aside" in env.daemon.read_log()

    # A session still up when the daemon stops is disconnected, tun removed.
    session = call(c, path, P1, "Connect", GLib.Variant("(a{sv})", ({},)), "(o)").unpack()[0]
    wait_until(lambda: prop(c, session, S1, "State") == "connected", 20, "connected again")
    assert env.stop_daemon() == 0
    assert not [t for t in env.tun_links() if t.startswith("shim")]
    log = env.daemon.read_log()
    assert "BEGIN" not in log and key_body not in log


def test_bound_to_caller(env):
    path, _ = import_lab_profile(env)
    other = connect(env.bus.address)
    session = call(other, path, P1, "Connect",
                   GLib.Variant("(a{sv})", ({"bound-to-caller": GLib.Variant("b", True)},)),
                   "(o)").unpack()[0]
    c = env.conn
    wait_until(lambda: prop(c, session, S1, "State") == "connected", 20, "connected")
    assert prop(c, session, S1, "BoundToCaller") is True
    other.close_sync(None)
    wait_until(lambda: prop(c, session, S1, "State") == "disconnected", 10,
               "the bound session to end")
    assert "left the bus" in prop(c, session, S1, "StateReason")
    # Without the option the session outlives its caller.
    third = connect(env.bus.address)
    session = call(third, path, P1, "Connect", GLib.Variant("(a{sv})", ({},)),
                   "(o)").unpack()[0]
    wait_until(lambda: prop(c, session, S1, "State") == "connected", 20, "connected")
    third.close_sync(None)
    pump(1.0)
    assert prop(c, session, S1, "State") == "connected"
    call(c, session, S1, "Disconnect")


def test_session_dns_through_resolved(tmp_path):
    """A session applies the pushed DNS through systemd-resolved's D-Bus API
    (the stand-in in resolved_mock.py: resolved is not running here) on its
    tun, and reverts it when the session ends."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    bus = Bus(str(tmp_path))
    mock = None
    try:
        with labmod.Lab() as lab:
            lab.start_openvpn_server({"extra": [
                'push "dhcp-option DNS 10.99.0.53"',
                'push "dhcp-option DOMAIN corp.shimmer.test"']})
            # In the client namespace: the stand-in checks that the link exists.
            mock = lab.spawn_in_client(["/usr/bin/python3", os.path.join(HERE, "resolved_mock.py"),
                                        "--address", bus.address, "--lifetime", "120"],
                                       name="resolved-mock")
            mock.wait_log(r"READY", 10)
            e = Env(lab, bus, str(tmp_path / "state"))
            e.daemon = lab.spawn_in_client(
                [SHIMMERD, "--bus-address", bus.address, "--state-dir", e.state_dir,
                 "--resolved-bus-address", bus.address], name="shimmerd")
            e.conn = connect(bus.address)
            wait_until(lambda: e.daemon.alive() and e.conn.call_sync(
                "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                "NameHasOwner", GLib.Variant("(s)", (BUS_NAME,)), None, Gio.DBusCallFlags.NONE,
                5000, None).unpack()[0], 15, "shimmerd on the bus")
            assert prop(e.conn, ROOT, M1, "DnsBackend") == "resolved"
            path, _ = import_lab_profile(e)
            session = call(e.conn, path, P1, "Connect", GLib.Variant("(a{sv})", ({},)),
                           "(o)").unpack()[0]
            wait_until(lambda: prop(e.conn, session, S1, "State") == "connected", 20,
                       "the session to connect")
            assert prop(e.conn, session, S1, "DnsServers") == ["10.99.0.53"]
            ifname = prop(e.conn, session, S1, "Interface")
            ifindex = int(lab.run_in_client(["cat", "/sys/class/net/%s/ifindex" % ifname])
                          .stdout.strip())
            calls = e.conn.call_sync("org.freedesktop.resolve1", "/org/freedesktop/resolve1",
                                     "org.shimmervpn.test.ResolvedMock", "GetCalls", None,
                                     GLib.VariantType("(a(sv))"), Gio.DBusCallFlags.NONE,
                                     5000, None).unpack()[0]
            names = [c[0] for c in calls]
            assert "SetLinkDNS" in names and "SetLinkDomains" in names, calls
            dns_call = [c for c in calls if c[0] == "SetLinkDNS"][0][1]
            assert dns_call[0] == ifindex and list(dns_call[1][0][1]) == [10, 99, 0, 53], dns_call
            dom_call = [c for c in calls if c[0] == "SetLinkDomains"][0][1]
            assert ("corp.shimmer.test", False) in [tuple(d) for d in dom_call[1]], dom_call
            call(e.conn, session, S1, "Disconnect")
            wait_until(lambda: "RevertLink" in [c[0] for c in e.conn.call_sync(
                "org.freedesktop.resolve1", "/org/freedesktop/resolve1",
                "org.shimmervpn.test.ResolvedMock", "GetCalls", None,
                GLib.VariantType("(a(sv))"), Gio.DBusCallFlags.NONE, 5000,
                None).unpack()[0]], 10, "RevertLink")
            e.daemon.stop()
    finally:
        if mock is not None:
            mock.stop()
        bus.stop()


CRV1_SCRIPT = """#!/bin/sh
# A server that asks a dynamic challenge (CRV1) before it lets alice in.
user=$(head -1 "$1"); pass=$(sed -n 2p "$1")
if [ "$user" = alice ] && [ "$pass" = "CRV1::st-42::314159" ]; then exit 0; fi
if [ "$user" = alice ] && [ "$pass" = "secret" ] && [ -n "$auth_failed_reason_file" ]; then
    printf 'CRV1:R,E:st-42:YWxpY2U=:Enter the code shown on your token' > "$auth_failed_reason_file"
fi
exit 1
"""


def test_dynamic_challenge_over_dbus(tmp_path):
    """The server answers the password with a dynamic challenge (CRV1): the
    session asks for a "response" with the server's text through
    CredentialsRequested, and the answer given with ProvideCredentials
    gets it connected."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    script = tmp_path / "crv1.sh"
    script.write_text(CRV1_SCRIPT)
    script.chmod(0o755)
    bus = Bus(str(tmp_path))
    try:
        with labmod.Lab() as lab:
            lab.start_openvpn_server({"extra": ["script-security 2",
                                                "auth-user-pass-verify %s via-file" % script]})
            e = Env(lab, bus, str(tmp_path / "state"))
            e.start_daemon()
            text = lab.client_config({"inline": True, "auth_user_pass": ("alice", "secret")})
            path = call(e.conn, ROOT, M1, "ImportProfile",
                        GLib.Variant("(ssa{sv})", ("crv1", text, {})), "(o)").unpack()[0]
            asked = []
            e.conn.signal_subscribe(BUS_NAME, S1, "CredentialsRequested", None, None,
                                    Gio.DBusSignalFlags.NONE,
                                    lambda *a: asked.append((a[2], a[5].unpack())))
            session = call(e.conn, path, P1, "Connect", GLib.Variant("(a{sv})", ({},)),
                           "(o)").unpack()[0]
            got = wait_until(lambda: [a for a in asked if a[0] == session], 20,
                             "CredentialsRequested")
            fields, prompt, echo = got[0][1]
            assert fields == ["response"]
            assert prompt == "Enter the code shown on your token" and echo is True
            call(e.conn, session, S1, "ProvideCredentials",
                 GLib.Variant("(a{ss})", ({"response": "314159"},)))
            wait_until(lambda: prop(e.conn, session, S1, "State") == "connected", 20,
                       "the session to connect after the challenge")
            e.daemon.stop()
    finally:
        bus.stop()


# ---- what NetworkManager's plugin (nm-shimmer-service) relies on

def B(value):
    return GLib.Variant("b", value)


def managed_objects(conn):
    return call(conn, ROOT, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", None,
                "(a{oa{sa{sv}}})").unpack()[0]


def test_import_bound_to_caller(env):
    c = env.conn
    text = env.lab.client_config({"inline": True})
    err = "org.shimmervpn.Error.InvalidArgs"

    def imp_error(opts):
        return call_error_full(c, ROOT, M1, "ImportProfile",
                               GLib.Variant("(ssa{sv})", ("bound", text, opts)))

    # Only transient profiles can be bound: a stored one would come back
    # at the next start without its caller.
    for opts in ({"bound-to-caller": B(True)},
                 {"bound-to-caller": B(True), "persistent": B(True)}):
        name, msg = imp_error(opts)
        assert name == err and '"bound-to-caller"' in msg and "persistent" in msg, msg
    name, msg = imp_error({"bound-to-caller": GLib.Variant("s", "yes"), "persistent": B(False)})
    assert name == err and '"bound-to-caller" must be a boolean' in msg, msg
    name, msg = imp_error({"nope": B(True)})
    assert name == err and 'unknown option "nope"' in msg, msg
    assert "known: persistent, bound-to-caller" in msg, msg
    assert os.listdir(env.state_dir) == []

    other = connect(env.bus.address)
    path = call(other, ROOT, M1, "ImportProfile",
                GLib.Variant("(ssa{sv})", ("nm-transient", text,
                                           {"persistent": B(False), "bound-to-caller": B(True)})),
                "(o)").unpack()[0]
    assert prop(c, path, P1, "Persistent") is False
    assert os.listdir(env.state_dir) == []
    session = call(other, path, P1, "Connect", GLib.Variant("(a{sv})", ({},)), "(o)").unpack()[0]
    wait_until(lambda: prop(c, session, S1, "State") == "connected", 20, "connected")
    iface = prop(c, session, S1, "Interface")
    # The session is not bound itself: the profile's removal ends it.
    assert prop(c, session, S1, "BoundToCaller") is False
    pump(0.3)
    assert path in managed_objects(c)
    other.close_sync(None)
    wait_until(lambda: path not in managed_objects(c), 10,
               "the bound profile to be removed with its caller")
    assert path not in call(c, ROOT, M1, "ListProfiles", None, "(ao)").unpack()[0]
    wait_until(lambda: prop(c, session, S1, "State") == "disconnected", 10,
               "its session to end")
    assert prop(c, session, S1, "StateReason") == "the profile was removed"
    assert prop(c, session, S1, "FailureKind") == ""
    assert iface not in env.tun_links()
    assert "left the bus" in env.daemon.read_log()

    # Without the option a transient profile outlives its caller.
    third = connect(env.bus.address)
    kept = call(third, ROOT, M1, "ImportProfile",
                GLib.Variant("(ssa{sv})", ("nm-transient", text, {"persistent": B(False)})),
                "(o)").unpack()[0]
    third.close_sync(None)
    pump(1.0)
    assert kept in managed_objects(c)


def ip_json(lab, *args):
    import json
    out = lab.run_in_client(["ip", "-j"] + list(args)).stdout
    return json.loads(out) if out.strip() else []


def tun_state(lab, iface):
    """(flags, mtu, global addresses, routes through it) in the client namespace."""
    link = ip_json(lab, "link", "show", "dev", iface)[0]
    addrs = [a["local"] for a in ip_json(lab, "addr", "show", "dev", iface)[0].get("addr_info", [])
             if a.get("scope") == "global"]
    routes = [r["dst"] for fam in ("-4", "-6")
              for r in ip_json(lab, fam, "route", "show", "table", "all", "dev", iface)
              if r.get("type", "unicast") == "unicast" and not r["dst"].startswith("fe80:")]
    return link["flags"], link["mtu"], addrs, routes


# The server of the configure-network tests: routes with and without a
# metric, one around the tunnel, the default route for both families, DNS,
# an MTU (a 2.6 server pushes its tun-mtu to clients that send IV_MTU).
NM_SERVER = {
    "push_routes": ["10.99.0.0/16", "fd5e:99::/64"],
    "redirect_gateway": "def1 ipv6",
    "extra": ["tun-mtu 1400",
              'push "route 10.98.0.0 255.255.255.0 vpn_gateway 77"',
              'push "route-ipv6 fd5e:98::/64 default 55"',
              'push "route 10.97.0.0 255.255.0.0 net_gateway"',
              'push "dhcp-option DNS 10.99.0.53"',
              'push "dhcp-option DNS6 fd5e:99::53"',
              'push "dhcp-option DOMAIN corp.shimmer.test"'],
}


def connect_watching(e, path, options):
    """Connect, recording the session's PropertiesChanged; returns
    (session path, list of changed dicts in order)."""
    changes = []

    def on_changed(conn, sender, obj, iface, member, params):
        if params.unpack()[0] == S1:
            changes.append((obj, params.unpack()[1]))
    sub = e.conn.signal_subscribe(BUS_NAME, "org.freedesktop.DBus.Properties",
                                  "PropertiesChanged", None, None, Gio.DBusSignalFlags.NONE,
                                  on_changed)
    session = call(e.conn, path, P1, "Connect", GLib.Variant("(a{sv})", (options,)),
                   "(o)").unpack()[0]
    wait_until(lambda: prop(e.conn, session, S1, "State") == "connected", 20, "connected")
    pump(0.2)
    e.conn.signal_unsubscribe(sub)
    return session, [ch for obj, ch in changes if obj == session]


def ctl_status(e, what):
    """`shimmerctl status WHAT` in the C locale, or None without shimmerctl."""
    if SHIMMERCTL is None:
        return None
    r = subprocess.run([SHIMMERCTL, "--bus-address", e.bus.address, "status", what],
                       capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, LC_ALL="C", LANGUAGE=""))
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def assert_config_before_connected(changes):
    """NetworkConfig arrived with or before the State that says connected."""
    seen = {}
    for ch in changes:
        seen.update(ch)
        if ch.get("State") == "connected":
            assert seen.get("NetworkConfig"), "connected before NetworkConfig: %r" % changes
            return
    raise AssertionError("no PropertiesChanged with State connected: %r" % changes)


def test_connect_without_network_configuration(tmp_path):
    """Connect with "configure-network" false, as NetworkManager's plugin
    does: the tun exists, is up with the MTU, and has no address, route or
    DNS; NetworkConfig tells what the server pushed and the profile says."""
    import ipaddress
    with lab_env(tmp_path, NM_SERVER) as e:
        lab = e.lab
        c = e.conn
        text = lab.client_config({"inline": True})
        path = call(c, ROOT, M1, "ImportProfile",
                    GLib.Variant("(ssa{sv})", ("nm", text, {"persistent": B(False)})),
                    "(o)").unpack()[0]
        assert call_error(c, path, P1, "Connect", GLib.Variant(
            "(a{sv})", ({"configure-network": GLib.Variant("s", "no")},))) == \
            "org.shimmervpn.Error.InvalidArgs"
        _, msg = call_error_full(c, path, P1, "Connect",
                                 GLib.Variant("(a{sv})", ({"nope": B(False)},)))
        assert "known: bound-to-caller, configure-network," in msg, msg
        session, changes = connect_watching(e, path, {"configure-network": B(False)})
        assert_config_before_connected(changes)
        assert prop(c, session, S1, "ConfigureNetwork") is False
        assert prop(c, session, S1, "FailureKind") == ""
        for name in ("Addresses", "Routes", "DnsServers", "DnsDomains"):
            assert prop(c, session, S1, name) == [], name
        iface = prop(c, session, S1, "Interface")
        assert re.fullmatch(r"shim\d+", iface), iface

        nc = prop(c, session, S1, "NetworkConfig")
        assert nc["interface"] == iface
        assert nc["mtu"] == 1400
        assert nc["remote"] == lab.server_ip4
        assert ipaddress.ip_address(nc["ipv4-address"]) in ipaddress.ip_network(
            lab.tunnel_net4), nc
        assert nc["ipv4-address"] != lab.tunnel_server4
        assert nc["ipv4-prefix"] == 24 and "ipv4-peer" not in nc, nc
        assert nc["ipv4-gateway"] == lab.tunnel_server4, nc
        assert ipaddress.ip_address(nc["ipv6-address"]) in ipaddress.ip_network(
            lab.tunnel_net6), nc
        assert nc["ipv6-prefix"] == 64, nc
        assert nc["ipv6-gateway"] == lab.tunnel_server6, nc
        # Configured then pushed, in order; net_gateway leads around the tunnel.
        assert nc["ipv4-routes"] == [("10.99.0.0", 16, 0), ("10.98.0.0", 24, 77)], nc
        assert nc["ipv6-routes"] == [("fd5e:99::", 64, 0), ("fd5e:98::", 64, 55)], nc
        assert nc["ipv4-default-route"] is True and nc["ipv6-default-route"] is True, nc
        assert nc["dns-servers"] == ["10.99.0.53", "fd5e:99::53"], nc
        assert nc["dns-search"] == ["corp.shimmer.test"], nc
        assert nc["dns-routing-domains"] == [], nc

        # The kernel's view: up, the MTU, nothing else of the tunnel's.
        flags, mtu, addrs, routes = tun_state(lab, iface)
        assert "UP" in flags and mtu == 1400, (flags, mtu)
        assert addrs == [] and routes == [], (addrs, routes)
        all_routes = lab.run_in_client(["ip", "route", "show", "table", "all"]).stdout
        all_routes += lab.run_in_client(["ip", "-6", "route", "show", "table", "all"]).stdout
        # (The kernel's own link-local fe80::/64 on the tun is not ours.)
        for absent in ("0.0.0.0/1", "128.0.0.0/1", "10.97.0.0", "10.99.0.0", "8000::/1",
                       lab.server_ip4 + " via"):
            assert absent not in all_routes, (absent, all_routes)
        log = e.daemon.read_log()
        assert "left to the caller" in log, log
        status = ctl_status(e, session)
        if status is not None:
            assert re.search(r"^Network: +configured by the client", status, re.M), status

        call(c, session, S1, "Disconnect")
        wait_until(lambda: prop(c, session, S1, "State") == "disconnected", 10,
                   "disconnected")
        assert iface not in e.tun_links()

        # Routing-only domains come from the profile's `dns` options
        # (the server pushes only what the client announced it supports).
        text = lab.client_config({"inline": True, "extra": [
            "dns server 1 address 10.99.0.54",
            "dns server 1 resolve-domains internal.shimmer.test"]})
        path = call(c, ROOT, M1, "ImportProfile",
                    GLib.Variant("(ssa{sv})", ("nm-dns", text, {"persistent": B(False)})),
                    "(o)").unpack()[0]
        session, _ = connect_watching(e, path, {"configure-network": B(False)})
        nc = prop(c, session, S1, "NetworkConfig")
        # `dns server` wins over the pushed dhcp-option DNS; the pushed
        # DOMAIN stays a search domain.
        assert nc["dns-servers"] == ["10.99.0.54"], nc
        assert nc["dns-routing-domains"] == ["internal.shimmer.test"], nc
        assert nc["dns-search"] == ["corp.shimmer.test"], nc
        assert prop(c, session, S1, "DnsDomains") == []
        call(c, session, S1, "Disconnect")
        wait_until(lambda: prop(c, session, S1, "State") == "disconnected", 10,
                   "disconnected")
        e.daemon.stop()


def test_network_config_when_shimmerd_configures(env):
    """The default: shimmerd configures the network, and NetworkConfig says
    the same as Addresses and Routes."""
    c = env.conn
    path, _ = import_lab_profile(env)
    session = call(c, path, P1, "Connect", GLib.Variant("(a{sv})", ({},)), "(o)").unpack()[0]
    # Empty before the tunnel first came up (read at once: the tunnel takes
    # longer than this round trip).
    nc = prop(c, session, S1, "NetworkConfig")
    state = prop(c, session, S1, "State")
    assert state == "connected" or nc == {}, (state, nc)
    wait_until(lambda: prop(c, session, S1, "State") == "connected", 20, "connected")
    assert prop(c, session, S1, "ConfigureNetwork") is True
    assert prop(c, session, S1, "FailureKind") == ""
    nc = prop(c, session, S1, "NetworkConfig")
    iface = prop(c, session, S1, "Interface")
    assert nc["interface"] == iface and nc["mtu"] == 1500
    assert nc["ipv4-gateway"] == env.lab.tunnel_server4
    v4 = "%s/%d" % (nc["ipv4-address"], nc["ipv4-prefix"])
    v6 = "%s/%d" % (nc["ipv6-address"], nc["ipv6-prefix"])
    assert prop(c, session, S1, "Addresses") == [v4, v6]
    assert nc["ipv4-routes"] == [("10.99.0.0", 16, 0)] and nc["ipv6-routes"] == []
    assert prop(c, session, S1, "Routes") == ["10.99.0.0/16"]
    assert nc["ipv4-default-route"] is False and nc["dns-servers"] == []
    flags, mtu, addrs, routes = tun_state(env.lab, iface)
    assert nc["ipv4-address"] in addrs and nc["ipv6-address"] in addrs, addrs
    assert "10.99.0.0/16" in routes, routes
    status = ctl_status(env, session)
    if status is not None:
        assert "Interface:" in status and "Network:" not in status, status
    call(c, session, S1, "Disconnect")
    wait_until(lambda: prop(c, session, S1, "State") == "disconnected", 10, "disconnected")
    assert prop(c, session, S1, "FailureKind") == ""


def test_failure_kind(tmp_path):
    """FailureKind says why a session failed: the server refused the
    password, the server could not be reached, the tunnel could not be
    configured; "" otherwise."""
    with lab_env(tmp_path, {"auth_user_pass": ("alice", "secret")}) as e:
        lab = e.lab
        srv = lab.servers[-1]
        c = e.conn

        def run(name, options):
            text = lab.client_config(dict({"inline": True}, **options))
            path = call(c, ROOT, M1, "ImportProfile",
                        GLib.Variant("(ssa{sv})", (name, text, {"persistent": B(False)})),
                        "(o)").unpack()[0]
            session = call(c, path, P1, "Connect", GLib.Variant("(a{sv})", ({},)),
                           "(o)").unpack()[0]
            wait_until(lambda: prop(c, session, S1, "State") in ("connected", "failed"), 20,
                       "%s: connected or failed" % name)
            return session

        session = run("wrong-password", {"auth_user_pass": ("alice", "wrong")})
        assert prop(c, session, S1, "State") == "failed"
        assert "authentication failed" in prop(c, session, S1, "StateReason")
        assert prop(c, session, S1, "FailureKind") == "auth-failed"
        # Never connected: nothing to configure.
        assert prop(c, session, S1, "NetworkConfig") == {}

        unused = srv.port + 50
        session = run("unreachable", {"port": unused,
                                      "extra": ["connect-retry 1", "connect-retry-max 1"]})
        assert prop(c, session, S1, "State") == "failed"
        assert prop(c, session, S1, "FailureKind") == "connect-failed"

        # The lab's own link route exists already: adding the profile's
        # route into the tunnel fails, and with it the tunnel.
        veth_net = lab.client_ip4.rsplit(".", 1)[0] + ".0"
        session = run("bad-route", {"extra": ["route %s 255.255.255.0" % veth_net]})
        assert prop(c, session, S1, "State") == "failed"
        assert prop(c, session, S1, "FailureKind") == "network-config"
        assert not [t for t in e.tun_links() if t.startswith("shim")]

        session = run("right-password", {})
        assert prop(c, session, S1, "State") == "connected"
        assert prop(c, session, S1, "FailureKind") == ""
        call(c, session, S1, "Disconnect")
        wait_until(lambda: prop(c, session, S1, "State") == "disconnected", 10,
                   "disconnected")
        assert prop(c, session, S1, "FailureKind") == ""
        e.daemon.stop()


def test_network_config_net30(tmp_path):
    """topology net30, IPv4 only: a point-to-point address; its peer is the
    gateway, and nothing of IPv6 is announced."""
    with lab_env(tmp_path, {"topology": "net30", "ipv6": False,
                            "push_routes": ["10.99.0.0/16"]}) as e:
        lab = e.lab
        path, _ = import_lab_profile(e, "net30")
        session, _ = connect_watching(e, path, {"configure-network": B(False)})
        nc = prop(e.conn, session, S1, "NetworkConfig")
        assert nc["ipv4-prefix"] == 32, nc
        peer = nc["ipv4-peer"]
        assert nc["ipv4-gateway"] == peer and peer != nc["ipv4-address"], nc
        assert peer.rsplit(".", 1)[0] == lab.tunnel_server4.rsplit(".", 1)[0], nc
        assert not [k for k in nc if k.startswith("ipv6-") and k not in (
            "ipv6-routes", "ipv6-default-route")], nc
        assert nc["ipv6-routes"] == [] and nc["ipv6-default-route"] is False, nc
        # A net30 server pushes a route to its own tunnel address too.
        assert sorted(nc["ipv4-routes"]) == sorted(
            [("10.99.0.0", 16, 0), (lab.tunnel_server4, 32, 0)]), nc
        call(e.conn, session, S1, "Disconnect")
        wait_until(lambda: prop(e.conn, session, S1, "State") == "disconnected", 10,
                   "disconnected")
        e.daemon.stop()


def test_stale_routes_removed_after_a_crash(tmp_path):
    """A session with redirect-gateway pins a route to the server through the
    client's own interface. shimmerd killed with SIGKILL cannot remove it
    (the tun and the routes through it go with the process); the next
    shimmerd removes it at start and says so, and leaves other routes be."""
    with lab_env(tmp_path, {"redirect_gateway": True}) as e:
        lab = e.lab
        server = lab.server_ip4

        def server_routes():
            return lab.run_in_client(["ip", "-4", "route", "show", server]).stdout.strip()
        path, _ = import_lab_profile(e)
        session = call(e.conn, path, P1, "Connect", GLib.Variant("(a{sv})", ({},)),
                       "(o)").unpack()[0]
        wait_until(lambda: prop(e.conn, session, S1, "State") == "connected", 20, "connected")
        pinned = server_routes()
        assert "proto 115" in pinned, pinned
        # Someone else's route of the same kind must survive the clean-up.
        lab.run_in_client(["ip", "route", "add", "10.233.0.0/16", "dev", "lab-cli"])
        e.daemon.signal(signal.SIGKILL)
        e.daemon.wait_exit(10)
        assert "proto 115" in server_routes(), "the pinned route went with the process"
        e.start_daemon()
        wait_until(lambda: "proto 115" not in server_routes(), 15, "the stale route to go")
        assert "removed the stale route %s/32" % server in e.daemon.read_log()
        assert "10.233.0.0/16" in lab.run_in_client(["ip", "route", "show"]).stdout
