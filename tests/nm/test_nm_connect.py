# SPDX-License-Identifier: MIT
"""The service plugin end to end: a real NetworkManager (tests/nm/nmlab.py)
brings Shimmer connections up and down through nm-shimmer-service and a real
shimmerd, against real OpenVPN 2.6 servers in the lab's peer namespace.

  - `nmcli connection import type shimmer` then `nmcli connection up`: the
    tunnel comes up on a shimN device that NetworkManager configured (the
    address, the pushed route, MTU), a ping to the server's tunnel address
    goes through it, shimmerd holds the transient profile;
    `nmcli connection down`: the device, the route and the profile are gone;
  - a password profile comes up with `nmcli connection up NAME passwd-file F`;
  - a wrong password fails the activation with NetworkManager's login
    failure, and the server's refusal is in the log;
  - `nmcli --ask connection up` asks for the password through the auth
    dialog (nm-shimmer-auth-dialog --external-ui-mode) on a terminal;
  - the machine's default routes are the same before and after.

Every VPN connection here has ipv4/ipv6 never-default yes and the servers
push no redirect-gateway (LAB.md); the base connection has no default route
either, so `nmcli connection up` names its device (`ifname`). Pings are sent only after `ip route get`
shows the tunnel device, so that nothing leaves by the machine's uplink.
Needs root; skips with the reason otherwise.
Environment: SHIMMER_NM_NAME_FILE, SHIMMERD, SHIMMER_TEST_SRCDIR.
"""

import base64
import ipaddress
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lab"))

import lab as labmod  # noqa: E402
import nmlab  # noqa: E402

USER = "nm-user"
PASSWORD = "nm-Passw0rd-e2e"
CHALLENGE_ANSWER = "271828"

# A server that asks a dynamic challenge (CRV1) after the right password and
# lets the user in with the answer ("CRV1::STATE::ANSWER" as the password).
CRV1_SCRIPT = """#!/bin/sh
user=$(head -1 "$1"); pass=$(sed -n 2p "$1")
if [ "$user" = %(user)s ] && [ "$pass" = "CRV1::st-7::%(answer)s" ]; then exit 0; fi
if [ "$user" = %(user)s ] && [ "$pass" = "%(password)s" ] && [ -n "$auth_failed_reason_file" ]; then
    printf 'CRV1:R,E:st-7:bm0tdXNlcg==:Enter the code shown on your token' > "$auth_failed_reason_file"
fi
exit 1
""" % {"user": USER, "password": PASSWORD, "answer": CHALLENGE_ANSWER}

# A server that wants the password and a one-time code as a static-challenge
# response: "SCRV1:base64(password):base64(code)".
OTP = "123456"
SCRV1_SCRIPT = """#!/bin/sh
user=$(head -1 "$1"); pass=$(sed -n 2p "$1")
[ "$user" = %(user)s ] && [ "$pass" = "SCRV1:%(b64pw)s:%(b64otp)s" ] && exit 0
exit 1
""" % {"user": USER, "b64pw": base64.b64encode(PASSWORD.encode()).decode(),
       "b64otp": base64.b64encode(OTP.encode()).decode()}


def _ip(*args):
    return subprocess.run(["ip"] + list(args), capture_output=True, text=True,
                          timeout=10).stdout


def _default_routes():
    return (_ip("-4", "route", "show", "default"), _ip("-6", "route", "show", "default"))


def _shim_links():
    out = _ip("-o", "link", "show", "type", "tun")
    return set(re.findall(r"^\d+: (shim\d+)[:@]", out, re.M))


class World:
    """The NM lab, OpenVPN servers in its peer namespace, shimmerd on its bus."""

    def __init__(self, nm):
        self.nm = nm
        self.dir = nm.tmpdir()
        self.srv = labmod.Lab.servers_only(nm.peer_ns, nm.peer_addr, self.dir)
        third = int(nm.peer_addr.split(".")[2])
        used = nmlab._used_ipv4_networks()
        self.net4 = {}
        self.servers = {}
        # Per-client settings of the "cert" server (read at every connect).
        self.ccd = os.path.join(self.dir, "ccd")
        os.mkdir(self.ccd)
        crv1 = os.path.join(self.dir, "crv1.sh")
        with open(crv1, "w") as f:
            f.write(CRV1_SCRIPT)
        os.chmod(crv1, 0o755)
        scrv1 = os.path.join(self.dir, "scrv1.sh")
        with open(scrv1, "w") as f:
            f.write(SCRV1_SCRIPT)
        os.chmod(scrv1, 0o755)
        for i, (name, opts) in enumerate((
                ("cert", {"wrap": "tls-crypt",
                          "extra": ["client-config-dir %s" % self.ccd]}),
                ("pw", {"wrap": "tls-auth", "auth_user_pass": (USER, PASSWORD)}),
                ("crv1", {"extra": ["script-security 2",
                                    "auth-user-pass-verify %s via-file" % crv1]}),
                ("otp", {"extra": ["script-security 2",
                                   "auth-user-pass-verify %s via-file" % scrv1]}))):
            net4 = ipaddress.ip_network("10.%d.%d.0/24" % (214 + i, third))
            route = ipaddress.ip_network("10.%d.%d.0/24" % (218 + i, third))
            for n in (net4, route):
                if any(n.overlaps(u) for u in used if u.prefixlen > 0):
                    raise nmlab.NMLabError("%s is in use on this machine" % n)
            spec = dict(opts, bind="ipv4", tunnel_v4=str(net4),
                        tunnel_v6="fd5e:%x:%x::/64" % (300 + i, third),
                        push_routes=[str(route)],
                        extra=['push "dhcp-option DNS %s"' % (net4.network_address + 53),
                               'push "dhcp-option DOMAIN %s.shimmer.test"' % name]
                        + list(opts.get("extra", ())))
            s = self.srv.start_openvpn_server(spec, name=name)
            s.pushed_route = str(route)
            s.dns = str(net4.network_address + 53)
            self.servers[name] = s
        self.state = os.path.join(self.dir, "shimmerd-state")
        log = open(os.path.join(self.dir, "shimmerd.log"), "wb")
        # NetworkManager configures the tun, so shimmerd runs in the machine's
        # network namespace; /run of its own keeps its start-up clean-up away
        # from the machine's resolvconf records.
        self.shimmerd = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             'mount -t tmpfs -o mode=0755 shimmer-run /run && exec "$@"', "private-run",
             os.environ["SHIMMERD"], "--bus-address", nm.bus_address, "--state-dir", self.state,
             "--resolved-bus-address", nm.bus_address, "--verbose"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=labmod._child_setup)
        log.close()
        nmlab.wait_for(lambda: "org.shimmervpn" in self.bus_names(), 15, "shimmerd on the lab's bus")

    def call(self, dest, path, method, *args):
        """dbus-send on the lab's bus; the reply as text."""
        res = subprocess.run(["dbus-send", "--system", "--print-reply", "--dest=" + dest, path,
                              method] + list(args),
                             capture_output=True, text=True, timeout=10, env=self.nm.env())
        assert res.returncode == 0, res.stderr
        return res.stdout

    def bus_names(self):
        return self.call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                         "org.freedesktop.DBus.ListNames")

    def shimmer_objects(self, method):
        """The object paths Manager1.METHOD (ListProfiles, ListSessions) gives."""
        return re.findall(r'object path "([^"]+)"',
                          self.call("org.shimmervpn", "/org/shimmervpn",
                                    "org.shimmervpn.Manager1." + method))

    def shimmer_profiles(self):
        return self.shimmer_objects("ListProfiles")

    def shimmerd_log(self):
        with open(os.path.join(self.dir, "shimmerd.log"), errors="replace") as f:
            return f.read()

    def profile(self, server, name, auth=None, extra=(), **options):
        """Writes NAME.ovpn for SERVER (lab client options OPTIONS, EXTRA
        directives) and imports it with nmcli. AUTH "username": an
        auth-user-pass block with the user name only."""
        opts = dict({"inline": True, "remote": self.nm.peer_addr, "verb": 3}, **options)
        if auth is not None:
            opts["auth_user_pass"] = False
        text = self.srv.client_config(opts, server=self.servers[server])
        if auth == "username":
            text += "<auth-user-pass>\n%s\n</auth-user-pass>\n" % USER
        text += "".join(line + "\n" for line in extra)
        path = os.path.join(self.dir, name + ".ovpn")
        with open(path, "w") as f:
            f.write(text)
        self.nm.nmcli("connection", "import", "type", "shimmer", "file", path)
        # LAB.md: never the machine's default route.
        self.nm.nmcli("connection", "modify", name, "ipv4.never-default", "yes",
                      "ipv6.never-default", "yes")
        return name

    def close(self):
        if self.shimmerd.poll() is None:
            self.shimmerd.send_signal(signal.SIGTERM)
            try:
                self.shimmerd.wait(15)
            except subprocess.TimeoutExpired:
                self.shimmerd.kill()
        self.srv.close()


@pytest.fixture(scope="module")
def world():
    reason = nmlab.preflight() or labmod.preflight()
    if reason:
        pytest.skip(reason)
    name_file = os.environ.get("SHIMMER_NM_NAME_FILE")
    if not name_file or not os.path.exists(name_file):
        pytest.skip("SHIMMER_NM_NAME_FILE does not name the plugin's .name file")
    if not os.access(os.environ.get("SHIMMERD", ""), os.X_OK):
        pytest.skip("SHIMMERD does not name the built shimmerd")
    if nmlab.sanitizer_preload(name_file):
        pytest.skip("the plugin is built with sanitizers; nmcli cannot load it (see "
                    "test_nm_e2e.py)")
    # shimmerd removes every route of its protocol (115) when it starts, as
    # left by a crashed run: here, in the machine's namespace, those would
    # be another shimmerd's.
    theirs = _ip("-4", "route", "show", "table", "all", "proto", "115") + \
        _ip("-6", "route", "show", "table", "all", "proto", "115")
    if theirs.strip():
        pytest.skip("routes of another shimmerd (proto 115) exist here; a second one would "
                    "remove them: %s" % theirs.strip())
    previous = signal.signal(signal.SIGTERM, lambda *a: sys.exit("SIGTERM"))
    before = _default_routes()
    try:
        with nmlab.NMLab(name_file) as nm:
            w = World(nm)
            try:
                yield w
            finally:
                w.close()
                print("\n---- NetworkManager log (tail) ----\n" + nm.log_tail(80))
                print("\n---- shimmerd log (tail) ----\n" +
                      "".join(w.shimmerd_log().splitlines(True)[-40:]))
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert _default_routes() == before, "the machine's default routes changed"


def _deactivate_all(world):
    """Brings down every VPN connection this lab's NetworkManager has up and
    waits until shimmerd dropped their transient profiles."""
    res = world.nm.nmcli("-t", "-f", "NAME,TYPE", "connection", "show", "--active",
                         check=False)
    for line in res.stdout.splitlines():
        name, _, kind = line.rpartition(":")
        if kind == "vpn" and name:
            world.nm.nmcli("connection", "down", name.replace("\\:", ":"), check=False,
                           timeout=60)
    nmlab.wait_for(lambda: not world.shimmer_profiles(), 30,
                   "shimmerd to drop the transient profiles")


@pytest.fixture(autouse=True)
def _clean_slate(request):
    """After each test (failed ones too): no VPN activation and no shimmerd
    profile left, so that one failure does not fail the tests after it."""
    yield
    if "world" not in request.fixturenames:
        return
    world = request.getfixturevalue("world")
    try:
        _deactivate_all(world)
    except Exception as e:  # the next test's own checks say what is wrong
        print("clean-up after %s: %s" % (request.node.name, e))


def _up(world, name, *extra, check=True):
    # The base device is named: its connection has no default route (it is
    # never-default), so NetworkManager would find no "source connection".
    return world.nm.nmcli("--wait", "60", "connection", "up", name, "ifname", world.nm.veth,
                          *extra, check=check, timeout=90)


def _tunnel_device(world, server):
    """The shimN device holding an address of SERVER's tunnel network."""
    net = ipaddress.ip_network(server.tunnel_net4)
    for line in _ip("-o", "-4", "addr", "show").splitlines():
        m = re.match(r"\d+: (\S+)\s+inet (\S+)", line)
        if m and ipaddress.ip_interface(m.group(2)).ip in net:
            return m.group(1), ipaddress.ip_interface(m.group(2))
    return None


def _ping_through(dev, addr):
    route = _ip("route", "get", addr)
    assert " dev %s " % dev in route + " ", \
        "%s is not routed through %s (%s): not pinging" % (addr, dev, route.strip())
    rx = int(open("/sys/class/net/%s/statistics/rx_packets" % dev).read())
    res = subprocess.run(["ping", "-c", "3", "-i", "0.2", "-W", "2", addr],
                         capture_output=True, text=True, timeout=20)
    assert res.returncode == 0, res.stdout + res.stderr
    assert int(open("/sys/class/net/%s/statistics/rx_packets" % dev).read()) >= rx + 3


def _passwd_file(world, name, **secrets):
    """A passwd-file for `nmcli connection up ... passwd-file`: one
    vpn.secrets.KEY:VALUE line per secret (KEY with "_" for "-")."""
    path = os.path.join(world.dir, name)
    with open(path, "w") as f:
        for key, value in secrets.items():
            f.write("vpn.secrets.%s:%s\n" % (key.replace("_", "-"), value))
    return path


def _up_and_ping(world, name, srv, *extra):
    """Activates NAME (nmcli's EXTRA arguments) and pings SRV's tunnel
    address through the device NetworkManager configured: that device."""
    res = _up(world, name, *extra)
    assert "successfully activated" in res.stdout, res.stdout
    found = _tunnel_device(world, srv)
    assert found, "no device has an address of %s:\n%s" % (srv.tunnel_net4, _ip("addr"))
    _ping_through(found[0], srv.tunnel_v4)
    return found[0]


def _down_and_gone(world, name, dev):
    world.nm.nmcli("connection", "down", name, timeout=60)
    nmlab.wait_for(lambda: dev not in _shim_links(), 20, "%s to disappear" % dev)
    nmlab.wait_for(lambda: not world.shimmer_profiles(), 20, "shimmerd to drop the transient profile")


def test_up_ping_down(world):
    srv = world.servers["cert"]
    name = world.profile("cert", "shimmer-cert")
    res = _up(world, name)
    assert "successfully activated" in res.stdout, res.stdout
    state = world.nm.nmcli("-g", "GENERAL.STATE", "connection", "show", name).stdout.strip()
    assert state == "activated"

    found = _tunnel_device(world, srv)
    assert found, "no device has an address of %s:\n%s" % (srv.tunnel_net4, _ip("addr"))
    dev, iface = found
    assert dev.startswith("shim"), dev
    assert iface.network.prefixlen == 24
    # NetworkManager reports the same address and the pushed DNS and domain.
    show = world.nm.nmcli("-t", "-f", "IP4", "connection", "show", name).stdout
    assert str(iface) in show, show
    assert srv.dns in show, show
    assert "cert.shimmer.test" in show, show
    # NetworkManager installed the pushed route through the tunnel.
    assert "dev %s" % dev in _ip("route", "show", srv.pushed_route), _ip("route")
    # shimmerd runs the tunnel from a transient profile it did not configure.
    assert len(world.shimmer_profiles()) == 1
    _ping_through(dev, srv.tunnel_v4)
    # IPv6 inside the tunnel (server-ipv6): NetworkManager set the address.
    show6 = world.nm.nmcli("-t", "-f", "IP6", "connection", "show", name).stdout
    net6 = ipaddress.ip_network(srv.tunnel_net6)
    addrs6 = [ipaddress.ip_interface(a) for a in re.findall(r"IP6\.ADDRESS\[\d+\]:(\S+)", show6)]
    assert any(a.ip in net6 and a.network.prefixlen == 64 for a in addrs6), show6
    _ping_through(dev, srv.tunnel_v6)

    _down_and_gone(world, name, dev)
    assert srv.pushed_route not in _ip("route", "show"), _ip("route")
    state = world.nm.nmcli("-g", "GENERAL.STATE", "connection", "show", name, check=False)
    assert "activated" not in state.stdout


def test_password_from_passwd_file(world):
    srv = world.servers["pw"]
    name = world.profile("pw", "shimmer-pw", auth="username")
    data = world.nm.nmcli("-g", "vpn.data", "connection", "show", name).stdout
    assert "username = %s" % USER in data, data
    pwfile = _passwd_file(world, "passwd-good", password=PASSWORD)
    dev = _up_and_ping(world, name, srv, "passwd-file", pwfile)
    # The password is not kept in NetworkManager's profile (agent-owned).
    with open(world.nm.profile_path(name)) as f:
        assert PASSWORD not in f.read()
    _down_and_gone(world, name, dev)


def test_wrong_password_fails_with_reason(world):
    name = "shimmer-pw"
    if "shimmer-pw" not in world.nm.nmcli("-g", "NAME", "connection", "show").stdout:
        world.profile("pw", name, auth="username")
    pwfile = _passwd_file(world, "passwd-bad", password="not-the-password")
    before_log = len(world.nm.nm_log())
    res = _up(world, name, "passwd-file", pwfile, check=False)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    # NetworkManager's words for a login failure (not "the VPN service
    # stopped unexpectedly", which is what a plugin crash gives).
    assert re.search(r"(?i)invalid secrets|login", out), out
    log = world.nm.nm_log()[before_log:]
    assert "authentication failed" in log, log[-3000:]
    assert not _tunnel_device(world, world.servers["pw"])
    nmlab.wait_for(lambda: not world.shimmer_profiles(), 20, "shimmerd to drop the transient profile")


def _nmcli_on_terminal(world, args, answers, timeout=90):
    """Runs nmcli ARGS on a pseudo-terminal, answering each prompt matching
    a regular expression of ANSWERS (a list of (regex, text), in order).
    Returns (exit code, what nmcli printed, how many prompts it answered).
    The child is reaped exactly once, and killed if it outlives TIMEOUT or
    this function fails."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: nmcli on a terminal
        try:
            os.execvpe("nmcli", ["nmcli"] + list(args), world.nm.env())
        finally:
            os._exit(127)
    out = b""
    answered = 0
    deadline = time.monotonic() + timeout
    status = None   # set once the child is reaped: never wait for it twice
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.5)
            if r:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:   # EIO: the terminal's other side is closed
                    chunk = b""
                if not chunk:
                    break
                out += chunk
                if answered < len(answers) and re.search(answers[answered][0], out):
                    os.write(fd, answers[answered][1].encode() + b"\n")
                    out += b"\n<answered>\n"
                    answered += 1
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                # Reaped: a status of 0 is a status, not "not yet".
                status = st
                break
    finally:
        if status is None:
            # The terminal closed (nmcli is exiting), the time is up, or
            # this loop failed: a bounded wait, then SIGKILL.
            end = min(deadline, time.monotonic() + 10)
            while status is None and time.monotonic() < end:
                done, st = os.waitpid(pid, os.WNOHANG)
                if done:
                    status = st
                else:
                    time.sleep(0.05)
            if status is None:
                os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace"), answered


def test_ask_for_password_on_a_terminal(world):
    srv = world.servers["pw"]
    name = "shimmer-pw"
    if name not in world.nm.nmcli("-g", "NAME", "connection", "show").stdout:
        world.profile("pw", name, auth="username")
    code, text, answered = _nmcli_on_terminal(
        world, ["--ask", "--wait", "60", "connection", "up", name, "ifname", world.nm.veth],
        [(rb"(?i)password[^\n]*:\s*$", PASSWORD)])
    print("nmcli --ask said:\n" + text)
    assert answered == 1, "nmcli did not ask for the password:\n" + text
    # The description comes from nm-shimmer-auth-dialog (its external UI).
    assert "To connect to the VPN" in text and "enter: password" in text, text
    assert PASSWORD not in text, "the password was echoed"
    assert code == 0, text
    found = _tunnel_device(world, srv)
    assert found, text
    _ping_through(found[0], srv.tunnel_v4)
    _down_and_gone(world, name, found[0])


def test_dynamic_challenge_through_networkmanager(world):
    """The server answers the password with a CRV1 challenge: the plugin asks
    NetworkManager (SecretsRequired), nmcli runs the auth dialog with the
    hints and shows the server's text, and the answer gets the tunnel up."""
    srv = world.servers["crv1"]
    name = world.profile("crv1", "shimmer-crv1", auth="username")
    code, text, answered = _nmcli_on_terminal(
        world, ["--ask", "--wait", "60", "connection", "up", name, "ifname", world.nm.veth],
        [(rb"(?i)password[^\n]*:\s*$", PASSWORD),
         (rb"Enter the code shown on your token[^\n]*\n?[^\n]*:\s*$", CHALLENGE_ANSWER)])
    print("nmcli --ask said:\n" + text)
    assert answered == 2, "nmcli did not ask for the challenge:\n" + text
    assert code == 0, text
    found = _tunnel_device(world, srv)
    assert found, text
    _ping_through(found[0], srv.tunnel_v4)
    _down_and_gone(world, name, found[0])


def _session_state(world, path):
    reply = world.call("org.shimmervpn", path, "org.freedesktop.DBus.Properties.Get",
                       "string:org.shimmervpn.Session1", "string:State")
    m = re.search(r'string "([^"]*)"', reply)
    return m.group(1) if m else None


def test_reconnect_inside_shimmerd_keeps_the_connection(world):
    """shimmerd reconnects (Session1.Restart, as after a ping-restart) and the
    server now assigns another address: the NetworkManager connection stays
    activated on the same device, the plugin reports the new configuration
    and NetworkManager moves the device to the new address."""
    srv = world.servers["cert"]
    name = "shimmer-cert"
    if name not in world.nm.nmcli("-g", "NAME", "connection", "show").stdout:
        world.profile("cert", name)
    dev = _up_and_ping(world, name, srv)
    old = _tunnel_device(world, srv)[1]
    new = ipaddress.ip_interface("%s/24" % (ipaddress.ip_network(srv.tunnel_net4)
                                           .network_address + 77))
    assert new != old
    ccd = os.path.join(world.ccd, "client.shimmer.test")
    try:
        with open(ccd, "w") as f:
            f.write("ifconfig-push %s %s\n" % (new.ip, new.netmask))
        # Ended sessions linger a few seconds: the one that runs.
        sessions = [p for p in world.shimmer_objects("ListSessions")
                    if _session_state(world, p) == "connected"]
        assert len(sessions) == 1, sessions
        before = len(world.nm.nm_log())
        world.call("org.shimmervpn", sessions[0], "org.shimmervpn.Session1.Restart")
        nmlab.wait_for(lambda: "session reconnecting" in world.nm.nm_log()[before:], 20,
                       "the plugin to hear of the reconnect")
        nmlab.wait_for(lambda: "updating the tunnel's configuration" in
                       world.nm.nm_log()[before:], 30, "the plugin to report the new address")
        nmlab.wait_for(lambda: _tunnel_device(world, srv) == (dev, new), 20,
                       "NetworkManager to move %s to %s" % (dev, new))
    finally:
        os.unlink(ccd)
    state = world.nm.nmcli("-g", "GENERAL.STATE", "connection", "show", name).stdout.strip()
    assert state == "activated", world.nm.log_tail(40)
    show = world.nm.nmcli("-t", "-f", "IP4", "connection", "show", name).stdout
    assert str(new) in show and str(old) not in show, show
    _ping_through(dev, srv.tunnel_v4)
    _down_and_gone(world, name, dev)


def test_key_passphrase_from_passwd_file(world):
    """An encrypted private key: NetworkManager asks for cert-pass (here from
    a passwd-file) and the plugin hands it to shimmerd."""
    srv = world.servers["cert"]
    name = world.profile("cert", "shimmer-enc", key="client-enc.key")
    with open(labmod.fixture("client-enc.pass")) as f:
        passphrase = f.read().strip()
    bad = _passwd_file(world, "passwd-enc-none", password="unused")
    # Without the passphrase the activation fails (nothing to ask with).
    res = _up(world, name, "passwd-file", bad, check=False)
    assert res.returncode != 0, res.stdout
    good = _passwd_file(world, "passwd-enc", cert_pass=passphrase)
    dev = _up_and_ping(world, name, srv, "passwd-file", good)
    with open(world.nm.profile_path(name)) as f:
        assert passphrase not in f.read()
    _down_and_gone(world, name, dev)


def test_static_challenge_from_passwd_file(world):
    """static-challenge: NetworkManager asks for the password and the OTP
    (vpn.secrets.otp), and the server gets them in the SCRV1 form."""
    srv = world.servers["otp"]
    name = world.profile("otp", "shimmer-otp", auth="username",
                         extra=['static-challenge "Enter your one-time code" 1'])
    pwfile = _passwd_file(world, "passwd-otp", password=PASSWORD, otp=OTP)
    dev = _up_and_ping(world, name, srv, "passwd-file", pwfile)
    _down_and_gone(world, name, dev)
    # A wrong code is a login failure.
    pwfile = _passwd_file(world, "passwd-otp-bad", password=PASSWORD, otp="999999")
    res = _up(world, name, "passwd-file", pwfile, check=False)
    assert res.returncode != 0 and re.search(r"(?i)invalid secrets|login", res.stdout + res.stderr)


def test_unreachable_server_fails_the_activation(world):
    """Nothing listens on the profile's port: shimmerd gives up after
    connect-retry-max, the activation fails and NetworkManager's log says
    why; no tun device and no profile is left behind."""
    name = world.profile("cert", "shimmer-nowhere", port=9,
                         extra=["connect-retry-max 1", "connect-retry 1",
                                "server-poll-timeout 3"])
    before = len(world.nm.nm_log())
    links_before = _shim_links()   # another lab's shimmerd may hold some
    start = time.monotonic()
    res = _up(world, name, check=False)
    assert res.returncode != 0, res.stdout
    assert time.monotonic() - start < 45, "the failure took too long"
    log = world.nm.nm_log()[before:]
    # NetworkManager itself says "Unknown reason" for a plain connect
    # failure; the plugin's line in its log has shimmerd's reason.
    assert "the tunnel failed: gave up after connect-retry-max" in log, log[-3000:]
    assert not _shim_links() - links_before, _ip("link")
    nmlab.wait_for(lambda: not world.shimmer_profiles(), 20, "shimmerd to drop the transient profile")
