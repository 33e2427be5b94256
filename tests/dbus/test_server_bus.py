# SPDX-License-Identifier: MIT
"""Servers run by shimmerd through D-Bus (issue 12, item 5): a server
profile imported and started as root and as an unprivileged user (refused
unless polkit allows org.shimmervpn.server.manage), real OpenVPN 2.6 and
Shimmer clients connecting to it in the lab, their Client1 objects with the
right properties and the object manager's signals seen by a watcher, a
kick, Stop removing the tun device and the routes, and the shimmerctl
server commands.

shimmerd runs in the lab's server namespace on a private system-like bus
(the project's bus policy) with a polkitd stand-in; clients run in the
client namespaces. Every process is stopped by its pid and the namespaces
are removed by the lab, also when a test fails.

    SHIMMERD=... SHIMMERCTL=... python3 -m pytest -q tests/dbus/test_server_bus.py

Needs root; skips with the reason otherwise.
"""
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import test_service as ts  # noqa: E402
from test_service import USER_A, USER_B  # noqa: E402

import lab as labmod  # noqa: E402
import privbus  # noqa: E402

pytestmark = pytest.mark.skipif(ts._skip_reason() is not None, reason=ts._skip_reason() or "")

ROOT = "/org/shimmervpn"
M1 = "org.shimmervpn.Manager1"
P1 = "org.shimmervpn.Profile1"
SRV1 = "org.shimmervpn.Server1"
CL1 = "org.shimmervpn.Client1"
OM = "org.freedesktop.DBus.ObjectManager"
SERVER_ACTION = "org.shimmervpn.server.manage"
CLIENT_CN = "client.shimmer.test"
# What a server configuration names, copied where USER_A can read it.
SERVER_FILES = ("ca.crt", "server.crt", "server.key", "tc.key", "ta.key", "tc-v2-server.key")


def gio():
    from gi.repository import Gio, GLib
    return Gio, GLib


class LabServer:
    """What tests/lab/lab.py needs of a server to write client profiles for
    it and to tell tunnel addresses (lab.client_config, ping_from_client):
    here the server is shimmerd's, started over D-Bus."""

    def __init__(self, name, spec):
        self.name, self.spec = name, spec
        self.port, self.proto = spec["port"], spec["proto"]
        self.dev = "tun-" + name
        net4 = ipaddress.ip_network(spec["tunnel_v4"])
        net6 = ipaddress.ip_network(spec["tunnel_v6"])
        self.tunnel_net4, self.tunnel_net6 = str(net4), str(net6)
        self.tunnel_v4 = str(net4.network_address + 1)
        self.tunnel_v6 = str(net6.network_address + 1) if spec["ipv6"] else None
        self.running = True

    def alive(self):
        return self.running


class Bus:
    """A GLib D-Bus client of the private bus in this process (root): calls
    and every signal of the daemon, recorded."""

    def __init__(self, address):
        Gio, _ = gio()
        self.conn = Gio.DBusConnection.new_for_address_sync(
            address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
            | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        self.events = []
        self.sub = self.conn.signal_subscribe("org.shimmervpn", None, None, None, None,
                                              Gio.DBusSignalFlags.NONE, self._on_signal, None)

    def _on_signal(self, conn, sender, path, iface, member, params, user):
        self.events.append((path, iface, member, params.unpack()))

    def call(self, path, iface, method, args=None):
        Gio, GLib = gio()
        r = self.conn.call_sync("org.shimmervpn", path, iface, method, args, None,
                                Gio.DBusCallFlags.NONE, 30000, None)
        return r.unpack()

    def call_error(self, path, iface, method, args=None):
        """The D-Bus error name of a call expected to fail."""
        Gio, GLib = gio()
        try:
            self.call(path, iface, method, args)
        except GLib.Error as e:
            return Gio.DBusError.get_remote_error(e)
        raise AssertionError("%s.%s succeeded" % (iface, method))

    def objects(self):
        privbus.pump()
        return self.call(ROOT, OM, "GetManagedObjects")[0]

    def props(self, path, iface):
        _, GLib = gio()
        return self.call(path, "org.freedesktop.DBus.Properties", "GetAll",
                         GLib.Variant("(s)", (iface,)))[0]

    def seen(self, member, path=None, pred=None):
        privbus.pump()
        return [e for e in self.events if e[2] == member and (path is None or e[0] == path)
                and (pred is None or pred(e))]

    def wait(self, member, timeout, what, path=None, pred=None):
        return privbus.wait_until(lambda: self.seen(member, path, pred), timeout, what)

    def close(self):
        self.conn.signal_unsubscribe(self.sub)
        self.conn.close_sync(None)


class Harness(ts.Harness):
    """ts.Harness with shimmerd in the lab's server namespace."""

    def start_daemon(self, timeout=15):
        self.daemon = self.lab.spawn_in_server(
            [ts.SHIMMERD, "--bus-address", self.bus.address, "--state-dir", self.state_dir,
             "--polkit-bus-address", self.bus.address],
            name=self.lab._unique("shimmerd"))
        ts.wait_for(lambda: self.name_has_owner() or not self.daemon.alive(), timeout,
                    "shimmerd to own %s" % ts.BUS_NAME)
        assert self.daemon.alive(), "shimmerd exited:\n" + self.daemon.log_tail()
        return self.daemon

    def server_config(self, options=None, name=None):
        """A server configuration for the lab (its files in USER_A's
        directory), written there; returns (path, LabServer)."""
        name = name or self.lab._unique("s")
        for s in self.lab.servers:
            s.running = False
        text, spec = self.lab.server_config(options, name)
        text = text.replace(labmod.DATA + "/", self.userdir + "/")
        # The status file is OpenVPN's; shimmerd ignores the directive.
        path = self.write_profile(name, text)
        srv = LabServer(name, spec)
        self.lab.servers = [s for s in self.lab.servers if s.name != name] + [srv]
        return path, srv

    def import_server(self, name, options=None, uid=USER_A):
        path, srv = self.server_config(options, name)
        r = self.ctl("import", path, "--name", name, uid=uid)
        assert r.returncode == 0, r.stdout + r.stderr
        m = re.search(r"(/org/shimmervpn/profile/\S+?)\)?$", r.stdout.strip())
        assert m, r.stdout
        return m.group(1), srv

    def start_server(self, profile_name, *args, uid=USER_A):
        r = self.ctl("server", "start", profile_name, *args, uid=uid)
        assert r.returncode == 0, r.stdout + r.stderr
        m = re.search(r"(/org/shimmervpn/server/\d+)", r.stdout)
        assert m, r.stdout
        return m.group(1)

    def server_tun(self, dev):
        r = self.lab.run_in_server(["ip", "-o", "addr", "show", "dev", dev], check=False)
        return r.stdout if r.returncode == 0 else None

    def server_routes(self, dev):
        r = self.lab.run_in_server(["ip", "route", "show", "proto", "115"], check=False)
        return [line for line in r.stdout.splitlines() if "dev " + dev in line]


@pytest.fixture(scope="module")
def env():
    bus = polkit = lab = None
    userdir = tempfile.mkdtemp(prefix="shimmer-user-")
    state_dir = tempfile.mkdtemp(prefix="shimmer-state-")
    harness = None
    try:
        bus = ts.PrivateBus()
        polkit_log = open(os.path.join(bus.dir, "polkitd.log"), "w")
        polkit = subprocess.Popen(
            [ts.PYTHON, "-m", "dbusmock", "--system", "--template", "polkitd"],
            stdin=subprocess.DEVNULL, stdout=polkit_log, stderr=subprocess.STDOUT,
            env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus.address), preexec_fn=ts._pdeathsig)
        polkit_log.close()
        os.chown(userdir, USER_A, USER_A)
        os.chmod(userdir, 0o711)
        for name in SERVER_FILES:
            dst = os.path.join(userdir, name)
            shutil.copyfile(labmod.fixture(name), dst)
            os.chown(dst, USER_A, USER_A)
            os.chmod(dst, 0o600)
        lab = labmod.Lab()
        lab.setup()
        harness = Harness(bus, polkit, lab, None, state_dir, userdir)
        ts.wait_for(lambda: subprocess.run(
            ["busctl", "--address=" + bus.address, "status", "org.freedesktop.PolicyKit1"],
            capture_output=True).returncode == 0 or polkit.poll() is not None, 10,
            "the polkitd stand-in")
        assert polkit.poll() is None, "the polkitd stand-in exited"
        harness.polkit_allow(ts.OWN_ACTIONS)
        harness.start_daemon()
        yield harness
    finally:
        if harness:
            harness.stop_helpers()
        if lab:
            lab.close()   # stops shimmerd and the clients by pid, removes the namespaces
        if polkit and polkit.poll() is None:
            polkit.terminate()
            polkit.wait(5)
        if bus:
            bus.close()
        shutil.rmtree(userdir, ignore_errors=True)
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture
def h(env, request):
    env.polkit_allow(ts.OWN_ACTIONS)
    if env.daemon is None or not env.daemon.alive():
        env.start_daemon()
    env.dbus = Bus(env.bus.address)
    failed = request.session.testsfailed
    yield env
    env.stop_helpers()
    # Whatever a test left goes (root may stop and remove anything).
    try:
        for path in env.dbus.call(ROOT, M1, "ListServers")[0]:
            env.dbus.call(path, SRV1, "Stop")
        for path in env.dbus.call(ROOT, M1, "ListProfiles")[0]:
            env.dbus.call(path, P1, "Remove")
    except Exception:
        pass
    env.dbus.close()
    for p in list(env.lab._procs):
        if p is not env.daemon and p.alive():
            p.stop(timeout=3)
    if request.session.testsfailed > failed:
        print("\n---- logs ----")
        print(env.lab.logs(80))


def client_objects(h, server_path):
    return {p: ifaces[CL1] for p, ifaces in h.dbus.objects().items()
            if CL1 in ifaces and p.startswith(server_path + "/client/")}


def shimmer_client(h, srv, options=None, wait=True):
    """Shimmer's own client (`shimmerd --config`) in a namespace of its own."""
    ns, c4, c6, s4, s6 = h.lab.add_client_namespace()
    opts = {"remote": s4}
    opts.update(options or {})
    prof = h.lab.client_config(opts, srv)
    cli = h.lab.start_client(prof, labmod.shimmerd_command(), ns=ns, wait=wait, timeout=20)
    cli.ns, cli.addr4 = ns, c4
    return cli


def openvpn_client(h, srv, options=None, wait=True):
    cli = h.lab.start_client(h.lab.client_config(options or {}, srv), labmod.OPENVPN, wait=wait,
                             timeout=20)
    cli.ns, cli.addr4 = h.lab.cli_ns, h.lab.client_ip4
    return cli


# --------------------------------------------------------------- authorization

def test_server_profile_needs_the_server_action(h):
    """An unprivileged user imports and starts a server profile only when
    polkit allows org.shimmervpn.server.manage; client profiles and the
    rest of the API do not need it."""
    path, srv = h.server_config({"wrap": "tls-crypt"}, "s-auth")
    # The text itself is usable: CheckConfig says so.
    inlined = subprocess.run([ts.SHIMMERCTL, "check", "--inline", path], capture_output=True,
                             text=True).stdout
    assert "<key>" in inlined
    usable = h.call_ok(ROOT, M1, "CheckConfig", "s", [inlined], uid=USER_A)
    assert usable[0] is True, usable

    r = h.ctl("import", path, "--name", "s-auth")
    assert r.returncode == 4, r.stdout + r.stderr
    assert SERVER_ACTION in r.stderr, r.stderr
    assert h.ctl_json("list") == []

    h.polkit_allow(ts.OWN_ACTIONS + [SERVER_ACTION])
    r = h.ctl("import", path, "--name", "s-auth")
    assert r.returncode == 0, r.stdout + r.stderr
    prof = [p for p in h.ctl_json("list") if p["Name"] == "s-auth"][0]
    assert prof["Role"] == "server" and prof["Remotes"] == [] and prof["ActiveServer"] == "/"
    assert prof["Owner"] == USER_A

    # Starting needs the action too; and a server profile is not connected.
    h.polkit_allow(ts.OWN_ACTIONS)
    r = h.ctl("server", "start", "s-auth")
    assert r.returncode == 4 and SERVER_ACTION in r.stderr, r.stdout + r.stderr
    r = h.call(prof["Path"], P1, "Connect", "a{sv}", [{}], uid=USER_A)
    assert not r["ok"] and r["error"] == "org.shimmervpn.Error.InvalidArgs", r
    r = h.call(ROOT, M1, "ListServers", uid=USER_A)
    assert not r["ok"] and r["error"] == "org.shimmervpn.Error.NotAuthorized", r

    h.polkit_allow(ts.OWN_ACTIONS + [SERVER_ACTION])
    server = h.start_server("s-auth")
    props = h.dbus.props(server, SRV1)
    assert props["Owner"] == USER_A and props["State"] == "running", props
    assert h.dbus.props(prof["Path"], P1)["ActiveServer"] == server
    assert h.call_ok(ROOT, M1, "ListServers", uid=USER_A) == [[server]]
    # Once: the profile's server runs already.
    r = h.call(prof["Path"], P1, "StartServer", "a{sv}", [{}], uid=USER_A)
    assert not r["ok"] and r["error"] == "org.shimmervpn.Error.Busy", r
    r = h.call(prof["Path"], P1, "StartServer", "a{sv}", [{"auth": ("s", "maybe")}], uid=USER_A)
    assert not r["ok"] and r["error"] == "org.shimmervpn.Error.InvalidArgs", r

    # Another user without the action can neither stop it nor read its logins.
    h.polkit_allow(ts.OWN_ACTIONS)
    r = h.call(server, SRV1, "Stop", uid=USER_B)
    assert not r["ok"] and r["error"] == "org.shimmervpn.Error.NotAuthorized", r
    h.polkit_allow(ts.OWN_ACTIONS + [SERVER_ACTION])
    r = h.call(server, SRV1, "GetAuthRequests", uid=USER_B)
    assert not r["ok"] and r["error"] == "org.shimmervpn.Error.NotAuthorized", r
    assert h.call_ok(server, SRV1, "GetAuthRequests", uid=USER_A) == [[]]

    r = h.ctl("server", "stop", "s-auth")
    assert r.returncode == 0, r.stdout + r.stderr
    assert h.dbus.props(server, SRV1)["State"] == "stopped"
    assert h.server_tun(srv.dev) is None

    # Stored: the server profile is there again after a restart of the
    # daemon, still a server profile.
    h.stop_daemon()
    h.start_daemon()
    h.dbus.close()
    h.dbus = Bus(h.bus.address)
    prof = [p for p in h.ctl_json("list") if p["Name"] == "s-auth"][0]
    assert prof["Role"] == "server"
    h.remove_profile("s-auth")


# ------------------------------------------------------- clients, kick, stop

def test_clients_kick_and_stop(h):
    """Root starts a server; an OpenVPN 2.6 client and a Shimmer client come
    in; their Client1 objects appear (InterfacesAdded) with the right
    properties and counters; a kick removes one, which comes back; Stop
    tells the clients, removes the tun and the routes, and the objects go."""
    n = h.lab.n
    lan = "10.216.%d.0/24" % n
    profile, srv = h.import_server("s-root", {
        "wrap": "tls-crypt",
        "extra": ["duplicate-cn", "max-clients 8", "route 10.216.%d.0 255.255.255.0" % n]},
        uid=0)
    assert h.dbus.props(profile, P1)["Owner"] == 0
    server = h.start_server("s-root", uid=0)

    props = h.dbus.props(server, SRV1)
    assert props["State"] == "running" and props["StateReason"] == ""
    assert props["Interface"] == srv.dev
    assert props["Protocol"] == "udp"
    assert props["ListenAddress"].endswith(":%d" % srv.port), props["ListenAddress"]
    assert props["Networks"] == [srv.tunnel_net4, srv.tunnel_net6], props["Networks"]
    assert props["AuthMode"] == "certificate"
    assert props["MaxClients"] == 8 and props["ClientCount"] == 0
    assert abs(props["StartedSince"] - time.time()) < 30
    assert props["Profile"] == profile and props["Id"] == server.rsplit("/", 1)[1]
    assert "first-packets-answered" in props["Statistics"]
    tun = h.server_tun(srv.dev)
    assert tun and srv.tunnel_v4 + "/24" in tun, tun
    assert any(line.startswith(lan) for line in h.server_routes(srv.dev)), \
        h.server_routes(srv.dev)

    ovpn = openvpn_client(h, srv)
    shim = shimmer_client(h, srv)
    clients = privbus.wait_until(lambda: len(client_objects(h, server)) == 2
                                 and client_objects(h, server), 10, "two Client1 objects")
    for path, c in clients.items():
        assert c["CommonName"] == CLIENT_CN
        assert c["UserName"] == ""
        assert c["Server"] == server
        assert path == "%s/client/%d" % (server, c["Id"])
        assert c["Cipher"] == "AES-256-GCM"
        assert abs(c["ConnectedSince"] - time.time()) < 60
        v4 = [a for a in c["VirtualAddresses"] if "." in a]
        v6 = [a for a in c["VirtualAddresses"] if ":" in a]
        assert len(v4) == 1 and ipaddress.ip_address(v4[0]) in ipaddress.ip_network(
            srv.tunnel_net4), c
        assert len(v6) == 1 and ipaddress.ip_address(v6[0]) in ipaddress.ip_network(
            srv.tunnel_net6), c
    by_addr = {c["RealAddress"].rsplit(":", 1)[0]: (p, c) for p, c in clients.items()}
    assert set(by_addr) == {ovpn.addr4, shim.addr4}, by_addr
    ovpn_path, ovpn_obj = by_addr[ovpn.addr4]
    # The watcher saw both come in.
    for path in clients:
        h.dbus.wait("InterfacesAdded", 5, "InterfacesAdded of " + path,
                    pred=lambda e, p=path: e[3][0] == p and CL1 in e[3][1])

    # Traffic shows in the counters (updated once a second).
    assert h.lab.ping_from_client(srv.tunnel_v4, count=5).ok
    # (The tun also carries the clients' own IPv6 chatter.)
    privbus.wait_until(lambda: h.dbus.props(ovpn_path, CL1)["BytesIn"] >= 5 * 84, 5,
                       "the client's counters to count the pings")
    c = h.dbus.props(ovpn_path, CL1)
    assert c["PacketsIn"] >= 5 and c["PacketsOut"] >= 5 and c["BytesOut"] >= 5 * 84, c
    s = h.dbus.props(server, SRV1)
    assert s["ClientCount"] == 2 and s["BytesIn"] >= c["BytesIn"], s

    # shimmerctl shows them.
    listed = h.ctl_json("server", "clients", server.rsplit("/", 1)[1], uid=0)
    assert sorted(x["Path"] for x in listed) == sorted(clients)
    status = h.ctl_json("server", "status", uid=0)
    assert [x["Path"] for x in status] == [server] and status[0]["ClientCount"] == 2
    r = h.ctl("server", "status", "s-root", uid=0)
    assert r.returncode == 0 and srv.dev in r.stdout and "2 of at most 8" in r.stdout, r.stdout

    # A kick: the OpenVPN client is told RESTART with the reason, its object
    # goes, and it comes back as a new client.
    r = h.ctl("server", "kick", "s-root", str(ovpn_obj["Id"]), "--reason", "maintenance", uid=0)
    assert r.returncode == 0, r.stdout + r.stderr
    h.dbus.wait("InterfacesRemoved", 5, "InterfacesRemoved of the kicked client",
                pred=lambda e: e[3][0] == ovpn_path)
    ovpn.wait_log(r"Connection reset command was pushed by server \('maintenance'\)", 10)
    back = privbus.wait_until(
        lambda: [p for p, c in client_objects(h, server).items()
                 if c["RealAddress"].startswith(ovpn.addr4 + ":") and p != ovpn_path],
        30, "the kicked client to come back")
    assert back and ovpn_path not in client_objects(h, server)
    # Its login was decided long ago: no such request.
    assert h.dbus.call_error(server, SRV1, "AnswerAuth",
                             gio()[1].Variant("(tss)", (ovpn_obj["Id"], "accept", ""))) \
        == "org.shimmervpn.Error.NotFound"

    # Stop: the clients hear it, the tun and its routes go, the objects too.
    r = h.ctl("server", "stop", server, uid=0)
    assert r.returncode == 0 and "Stopped" in r.stdout, r.stdout + r.stderr
    props = h.dbus.props(server, SRV1)
    assert props["State"] == "stopped" and props["ClientCount"] == 0, props
    assert client_objects(h, server) == {}
    assert h.server_tun(srv.dev) is None
    assert h.server_routes(srv.dev) == []
    assert not [line for line in h.lab.run_in_server(["ip", "route"]).stdout.splitlines()
                if line.startswith(lan)]
    shim.wait_log(r"server is shutting down|asked to restart", 10)
    ovpn.wait_log(r"Connection reset command was pushed by server|SIGUSR1", 10)
    h.dbus.wait("InterfacesRemoved", 10, "the server's object to go",
                pred=lambda e: e[3][0] == server and SRV1 in e[3][1])
    assert h.dbus.call(ROOT, M1, "ListServers") == ([],)
    assert h.dbus.props(profile, P1)["ActiveServer"] == "/"
    h.remove_profile("s-root", uid=0)


def test_start_failure_is_reported(h):
    """A server that cannot listen (its port is taken) is refused with the
    reason, and leaves no object and no tun behind."""
    h.polkit_allow(ts.OWN_ACTIONS + [SERVER_ACTION])
    profile, srv = h.import_server("s-busy", {"wrap": "tls-crypt", "proto": "tcp"})
    blocker = h.lab.spawn_in_server(
        [ts.PYTHON, "-c", "import socket,time; s=socket.socket(socket.AF_INET6); "
         "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
         "s.bind(('::', %d)); s.listen(); time.sleep(60)" % srv.port], name="blocker")
    time.sleep(0.5)
    r = h.ctl("server", "start", "s-busy")
    blocker.stop()
    assert r.returncode == 1, r.stdout + r.stderr
    assert "cannot listen on port %d" % srv.port in r.stderr, r.stderr
    assert h.server_tun(srv.dev) is None
    assert h.dbus.call(ROOT, M1, "ListServers") == ([],)
    # And once the port is free it starts.
    server = h.start_server("s-busy")
    assert h.dbus.props(server, SRV1)["Protocol"] == "tcp"
    assert h.ctl("server", "stop", "s-busy").returncode == 0
    h.remove_profile("s-busy")


def test_daemon_stop_ends_servers(h):
    """SIGTERM to the daemon with a running server: its clients are told,
    the tun goes, the daemon exits 0."""
    profile, srv = h.import_server("s-term", {"wrap": "tls-crypt"}, uid=0)
    h.start_server("s-term", uid=0)
    cli = shimmer_client(h, srv)
    assert h.server_tun(srv.dev)
    assert h.stop_daemon() == 0
    assert h.server_tun(srv.dev) is None
    cli.wait_log(r"server is shutting down|asked to restart", 10)
    h.start_daemon()
    h.dbus.close()
    h.dbus = Bus(h.bus.address)
    h.remove_profile("s-term", uid=0)


# ------------------------------------------------------------ bash completion

COMPLETION = os.path.join(ts.REPO, "data", "completion", "shimmerctl")


def complete(words, uid=USER_A):
    """Runs the completion function on WORDS (the last one being completed)
    in a fresh bash as UID; returns COMPREPLY."""
    script = r'''
source "$1"; shift
COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}
_shimmerctl
printf '%s\n' "${COMPREPLY[@]}"
'''
    e = dict(os.environ, LC_ALL="C.UTF-8")
    e.pop("SHIMMER_BUS_ADDRESS", None)
    r = subprocess.run(ts.as_uid(uid, ["bash", "--norc", "--noprofile", "-c", script, "bash",
                                       COMPLETION] + list(words)),
                       capture_output=True, text=True, timeout=30, env=e,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return [w for w in r.stdout.split("\n") if w]


def test_bash_completion_of_server_commands(h):
    h.polkit_allow(ts.OWN_ACTIONS + [SERVER_ACTION])
    h.import_server("s-compl", {"wrap": "tls-crypt"})
    base = [ts.SHIMMERCTL, "--bus-address", h.bus.address]
    assert complete(base + ["ser"]) == ["server"]
    assert complete(base + ["server", ""]) == ["start", "stop", "status", "clients", "kick",
                                               "requests", "answer"]
    assert complete(base + ["server", "st"]) == ["start", "stop", "status"]
    assert complete(base + ["server", "start", ""]) == ["s-compl"]
    assert complete(base + ["server", "start", "s-compl", "--a"]) == ["--auth"]
    assert complete(base + ["server", "start", "s-compl", "--auth", ""]) == ["bus"]
    assert complete(base + ["server", "stop", ""]) == []      # none runs
    assert complete(base + ["server", "clients", "s-compl", "--"]) == [
        "--json", "--bus-address", "--help"]
    h.start_server("s-compl")
    assert complete(base + ["server", "stop", ""]) == ["s-compl"]
    assert complete(base + ["server", "answer", "s-compl", "3", ""]) == [
        "accept", "deny", "pending"]
    assert complete(base + ["server", "kick", "s-compl", "1", "--r"]) == ["--reason"]
    # Reading a server is everyone's: another user names it by its profile.
    r = h.ctl("server", "clients", "s-compl", uid=USER_B)
    assert r.returncode == 0 and "No clients" in r.stdout, r.stdout + r.stderr
    assert h.ctl("server", "stop", "s-compl").returncode == 0
    h.remove_profile("s-compl")
