# SPDX-License-Identifier: MIT
"""Pending logins through the daemon and shimmerctl (issue 14), with the
real OpenVPN 2.6 server deferring every login to its management interface
(tests/lab/mgmt.py plays the SSO backend), a private system-like bus with
the project's policy, a polkitd stand-in and shimmerctl run as an
unprivileged user:

  - a web sign-in: shimmerctl prints the URL on a line of its own and starts
    the user's browser (a fake `gio` records how), the session is in state
    "web-sign-in", GetWebAuthRequest answers its owner and refuses another
    user, the URL never reaches the daemon's log or another user, and the
    tunnel comes up once the backend approves;
  - a CR_TEXT challenge answered through shimmerctl, right and wrong;
  - a login never approved ends the session with a clear reason;
  - pushed `dns` options (servers, routing domains, search domains, DNSSEC,
    DNS over TLS) reach systemd-resolved's stand-in (resolved_mock.py).

Needs root; skips with the reason otherwise.
"""
import json
import os
import pathlib
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
from test_service import P1, PROPS, S1, USER_A, USER_B  # noqa: E402

import lab as labmod  # noqa: E402
import mgmt  # noqa: E402
import privbus  # noqa: E402

pytestmark = pytest.mark.skipif(ts._skip_reason() is not None, reason=ts._skip_reason() or "")

URL = "https://sso.shimmer.test/approve?id=%s&t=abc123"
USERNAME, PASSWORD = "alice", "pw-for-sso"

# Root may also own systemd-resolved's name (its stand-in) on this bus.
EXTRA_POLICY = ts.POLKIT_POLICY + """  <policy user="root">
    <allow own="org.freedesktop.resolve1"/>
    <allow send_destination="org.freedesktop.resolve1"/>
  </policy>
"""


class Bus(privbus.PrivateBus):
    def __init__(self):
        directory = tempfile.mkdtemp(prefix="shimmer-webauth-")
        os.chmod(directory, 0o755)
        try:
            super().__init__(directory, policy="system", includes=[ts.DATA_POLICY],
                             extra=EXTRA_POLICY)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Backend:
    """Answers logins as POLICY says: "web", "cr-text" (424242 lets in),
    "approve"; remembers the logins it left pending."""

    def __init__(self, path):
        self.policy = "approve"
        self.timeout = 60
        self.pending = []
        self.m = mgmt.Management(path, self._on_event)

    def _on_event(self, m, ev):
        cid, kid = ev["cid"], ev["kid"]
        if ev["type"] == "CR_RESPONSE":
            if ev["response"] == "424242":
                m.approve(cid, kid)
            else:
                m.deny(cid, kid, "wrong code")
            return
        if ev["type"] == "REAUTH" or (ev["type"] == "CONNECT" and self.policy == "approve"):
            m.approve(cid, kid)
        elif ev["type"] == "CONNECT":
            self.pending.append((cid, kid))
            if self.policy == "web":
                m.pending_web(cid, kid, URL % cid, self.timeout, flags="external")
            else:
                m.pending_cr_text(cid, kid, "Code from your app:", self.timeout)


@pytest.fixture(scope="module")
def env():
    bus = polkit = lab = backend = None
    userdir = tempfile.mkdtemp(prefix="shimmer-user-")
    state_dir = tempfile.mkdtemp(prefix="shimmer-state-")
    harness = None
    try:
        bus = Bus()
        polkit_log = open(os.path.join(bus.dir, "polkitd.log"), "w")
        polkit = subprocess.Popen(
            [ts.PYTHON, "-m", "dbusmock", "--system", "--template", "polkitd"],
            stdin=subprocess.DEVNULL, stdout=polkit_log, stderr=subprocess.STDOUT,
            env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus.address), preexec_fn=ts._pdeathsig)
        polkit_log.close()
        os.chown(userdir, USER_A, USER_A)
        os.chmod(userdir, 0o700)
        for name in ("ca.crt", "client.crt", "client.key", "tc.key"):
            dst = os.path.join(userdir, name)
            shutil.copyfile(labmod.fixture(name), dst)
            os.chown(dst, USER_A, USER_A)
            os.chmod(dst, 0o600)
        lab = labmod.Lab()
        lab.setup()
        sock = mgmt.socket_path(lab.dir)
        server = lab.start_openvpn_server({"wrap": "tls-crypt",
                                           "extra": mgmt.server_lines(sock)})
        backend = Backend(sock)
        harness = ts.Harness(bus, polkit, lab, server, state_dir, userdir)
        harness.backend = backend
        ts.wait_for(lambda: subprocess.run(
            ["busctl", "--address=" + bus.address, "status", "org.freedesktop.PolicyKit1"],
            capture_output=True).returncode == 0 or polkit.poll() is not None, 10,
            "the polkitd stand-in")
        harness.polkit_allow(ts.OWN_ACTIONS)
        harness.start_daemon()
        yield harness
    finally:
        if harness:
            harness.stop_helpers()
        if backend:
            backend.m.close()
        if lab:
            lab.close()
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
    env.backend.policy = "approve"
    env.backend.pending.clear()
    failed = request.session.testsfailed
    yield env
    env.stop_helpers()
    if request.session.testsfailed > failed:
        print("\n---- logs ----")
        print(env.lab.logs(80))


@pytest.fixture
def tmp_path():
    """A directory the unprivileged user can reach (pytest's own lies under
    a root-only directory)."""
    d = tempfile.mkdtemp(prefix="shimmer-webauth-test-")
    os.chmod(d, 0o755)
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


def fake_browser(tmp_path):
    """A directory with a `gio` that records its arguments and uid."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "gio.args"
    script = bindir / "gio"
    script.write_text("#!/bin/sh\n{ id -u; printf '%%s\\n' \"$@\"; } > %s\n" % record)
    script.chmod(0o755)
    os.chmod(bindir, 0o755)
    # The unprivileged user writes the record.
    record.touch()
    os.chown(record, USER_A, USER_A)
    return str(bindir), record


def ctl_spawn(h, args, stdin_text, extra_env, uid=USER_A):
    argv = [ts.SHIMMERCTL, "--bus-address", h.bus.address] + list(args)
    env = dict(os.environ, LC_ALL="C")
    env.update(extra_env)
    p = subprocess.Popen(ts.as_uid(uid, argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env, preexec_fn=ts._pdeathsig)
    p.stdin.write(stdin_text)
    p.stdin.close()
    h.helpers.append(p)
    return p


def finish(p, timeout):
    p.wait(timeout)
    return p.stdout.read(), p.stderr.read()


WATCHER = r"""
import json, sys, dbus, dbus.mainloop.glib
from gi.repository import GLib
dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
bus = dbus.bus.BusConnection(sys.argv[1])
def got(*args, **kw):
    print(json.dumps({"member": kw["member"]}), flush=True)
for m in ("WebAuthRequested", "ServerMessage", "CredentialsRequested", "Log"):
    bus.add_signal_receiver(got, m, "org.shimmervpn.Session1", None, None,
                            member_keyword="member")
print("ready", flush=True)
GLib.timeout_add_seconds(60, GLib.MainLoop().quit)
GLib.MainLoop().run()
"""


def test_web_sign_in_through_shimmerctl(h, tmp_path):
    h.backend.policy = "web"
    h.import_profile("sso")
    # Another user listens for anything the session says.
    spy = h.spawn([ts.PYTHON, "-c", WATCHER, h.bus.address], uid=USER_B)
    assert spy.stdout.readline().strip() == "ready"
    bindir, record = fake_browser(tmp_path)
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    os.chown(runtime, USER_A, USER_A)
    ctl = ctl_spawn(h, ["connect", "sso", "--wait", "--timeout", "60"],
                    "%s\n%s\n" % (USERNAME, PASSWORD),
                    {"PATH": bindir + ":/usr/bin:/bin", "DISPLAY": ":42",
                     "XDG_RUNTIME_DIR": str(runtime)})
    ev = h.backend.m.wait(lambda e: e["type"] == "CONNECT", 30, "the login")
    url = URL % ev["cid"]
    ts.wait_for(lambda: record.read_text().strip(), 20, "the browser to be started")
    lines = record.read_text().splitlines()
    assert lines == [str(USER_A), "open", url], lines
    session = h.ctl_json("status", "sso")["Path"]
    assert h.props(session, S1)["State"] == "web-sign-in"
    # The request, structured, for its owner only.
    req = h.call_ok(session, S1, "GetWebAuthRequest", uid=USER_A)[0]
    assert req["url"] == url and req["kind"] == "webauth" and req["flags"] == ["external"], req
    assert 50 <= req["timeout"] <= 60 and req["deadline"] > time.time() + 40, req
    r = h.call(session, S1, "GetWebAuthRequest", uid=USER_B)
    assert not r["ok"], r
    h.backend.m.approve(*h.backend.pending[0])
    out, err = finish(ctl, 40)
    assert ctl.returncode == 0, out + err
    assert re.search(r"(?m)^" + re.escape(url) + r"$", out), out
    assert "Opening it in your browser." in out, out
    assert "waiting for the web sign-in" in out, out
    assert re.search(r"Connected: sso", out), out
    assert h.ping_through_tunnel()
    # Nothing of it for another user, nor in the daemon's log.
    spy.terminate()
    spied = spy.stdout.read()
    assert "WebAuthRequested" not in spied and "Log" not in spied, spied
    assert url not in h.daemon.read_log(whole=True)
    assert req["url"] == url
    assert h.call_ok(session, S1, "GetWebAuthRequest", uid=USER_A)[0] == {}
    r = h.ctl("disconnect", "sso")
    assert r.returncode == 0, r.stderr
    h.wait_tunnel_gone()
    h.remove_profile("sso")


def test_no_browser_without_a_desktop_or_when_told(h, tmp_path):
    h.backend.policy = "web"
    h.import_profile("sso2")
    bindir, record = fake_browser(tmp_path)
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    for args, env, why in (
            (["--no-browser"], {"DISPLAY": ":42", "XDG_RUNTIME_DIR": str(runtime)}, None),
            ([], {"DISPLAY": "", "WAYLAND_DISPLAY": ""}, "no graphical session")):
        h.backend.pending.clear()
        ctl = ctl_spawn(h, ["connect", "sso2", "--wait"] + args,
                        "%s\n%s\n" % (USERNAME, PASSWORD), dict(env, PATH=bindir + ":/usr/bin:/bin"))
        ts.wait_for(lambda: h.backend.pending, 30, "the login")
        h.backend.m.approve(*h.backend.pending[0])
        out, err = finish(ctl, 40)
        assert ctl.returncode == 0, out + err
        assert "https://sso.shimmer.test/approve?id=" in out, out
        assert record.read_text() == "", record.read_text()
        if why:
            assert why in out, out
        r = h.ctl("disconnect", "sso2")
        assert r.returncode == 0, r.stderr
        h.wait_tunnel_gone()
    h.remove_profile("sso2")


@pytest.mark.parametrize("answer,good", [("424242", True), ("999", False)])
def test_cr_text_through_shimmerctl(h, answer, good):
    h.backend.policy = "cr-text"
    h.import_profile("crtext")
    try:
        r = h.ctl("connect", "crtext", "--wait", "--timeout", "60",
                  input="%s\n%s\n%s\n" % (USERNAME, PASSWORD, answer), timeout=90)
        resp = h.backend.m.wait(lambda e: e["type"] == "CR_RESPONSE", 5, "the answer")
        assert resp["response"] == answer
        if good:
            assert r.returncode == 0, r.stdout + r.stderr
            r = h.ctl("disconnect", "crtext")
            assert r.returncode == 0, r.stderr
            h.wait_tunnel_gone()
        else:
            assert r.returncode == 1, r.stdout + r.stderr
            assert "authentication failed: wrong code" in r.stderr, r.stderr
        assert answer not in h.daemon.read_log(whole=True)
    finally:
        h.backend.m.events.clear()
        h.remove_profile("crtext")


def test_cr_text_over_the_api(h):
    # Through the API: CredentialsRequested as before (old clients keep
    # working), GetCredentialsRequest says it is a CR_TEXT, for the owner
    # only; the answer goes to the server on the running connection.
    h.backend.policy = "cr-text"
    profile = h.import_profile("crapi")
    try:
        d = h.driver(profile, {"username": USERNAME, "password": PASSWORD}, None)
        events = ts.read_events(d, lambda e: e["event"] in ("credentials", "error"))
        asked = events[-1]
        assert asked == {"event": "credentials", "fields": ["response"],
                         "prompt": "Code from your app:"}, events
        session = h.ctl_json("status", "crapi")["Path"]
        req = h.call_ok(session, S1, "GetCredentialsRequest", uid=USER_A)[0]
        assert req == {"fields": ["response"], "prompt": "Code from your app:", "echo": True,
                       "kind": "cr-text", "response-required": True}, req
        r = h.call(session, S1, "GetCredentialsRequest", uid=USER_B)
        assert not r["ok"], r
        h.call_ok(session, S1, "ProvideCredentials", "a{ss}", [{"response": "424242"}],
                  uid=USER_A)
        state = h.wait_session_gone_or(session, ("connected", "failed"), 20)
        assert state["state"] == "connected", state
        assert h.call_ok(session, S1, "GetCredentialsRequest", uid=USER_A)[0] == {}
        r = h.ctl("disconnect", "crapi")
        assert r.returncode == 0, r.stderr
        h.wait_tunnel_gone()
    finally:
        h.remove_profile("crapi")


def test_login_never_approved_ends_with_a_reason(h):
    h.backend.policy = "web"
    h.backend.timeout = 8
    h.import_profile("never")
    try:
        r = h.ctl("connect", "never", "--wait", "--no-browser",
                  input="%s\n%s\n" % (USERNAME, PASSWORD), timeout=60)
        assert r.returncode == 1, r.stdout + r.stderr
        assert re.search(r"Connection failed: .*(web sign-in was not finished within \d+ s|"
                         r"authentication failed)", r.stderr), r.stderr
    finally:
        h.backend.timeout = 60
        h.remove_profile("never")


def test_pushed_dns_options_reach_resolved(h, tmp_path):
    """A server pushing `dns` options: the session hands servers, routing and
    search domains, DNSSEC and DNS over TLS to systemd-resolved (its
    stand-in, on this bus); a server on another port is left out."""
    dns_server = h.lab.start_openvpn_server(
        {"wrap": "tls-crypt", "tunnel_v4": "10.215.%d.0/24" % h.lab.n,
         "tunnel_v6": "fd5e:101:%d::/64" % h.lab.n,
         "extra": ['push "dns server 1 address 10.99.0.53 [fd5e:99::53]:53"',
                   'push "dns server 1 resolve-domains corp.shimmer.test"',
                   'push "dns server 1 dnssec optional"',
                   'push "dns server 1 transport DoT"',
                   'push "dns server 2 address 10.99.0.54:5353"',
                   'push "dns search-domains lab.shimmer.test"',
                   'push "dhcp-option DNS 10.99.0.99"']}, name="dns")
    mock = h.lab.spawn_in_client([ts.PYTHON, os.path.join(HERE, "resolved_mock.py"), "--address",
                                  h.bus.address, "--lifetime", "120"], name="resolved-mock")
    mock.wait_log(r"READY", 10)
    h.stop_daemon()
    daemon = h.lab.spawn_in_client(
        [ts.SHIMMERD, "--bus-address", h.bus.address, "--state-dir", h.state_dir,
         "--polkit-bus-address", h.bus.address, "--resolved-bus-address", h.bus.address],
        name=h.lab._unique("shimmerd-resolved"))
    h.daemon = daemon
    ts.wait_for(lambda: h.name_has_owner() or not daemon.alive(), 15, "shimmerd")
    try:
        text = h.lab.client_config({"auth_user_pass": False}, dns_server)
        path = h.write_profile("dns", text.replace(labmod.DATA + "/", h.userdir + "/"))
        r = h.ctl("import", path)
        assert r.returncode == 0, r.stdout + r.stderr
        r = h.ctl("connect", "dns", "--wait", timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        session = h.ctl_json("status", "dns")["Path"]
        props = h.props(session, S1)
        # `dns` wins over dhcp-option DNS; the server on port 5353 is out.
        assert props["DnsServers"] == ["10.99.0.53", "fd5e:99::53"], props["DnsServers"]
        assert sorted(props["DnsDomains"]) == ["lab.shimmer.test", "~corp.shimmer.test"], \
            props["DnsDomains"]
        out = subprocess.run(
            ["gdbus", "call", "--address", h.bus.address, "--dest", "org.freedesktop.resolve1",
             "--object-path", "/org/freedesktop/resolve1", "--method",
             "org.shimmervpn.test.ResolvedMock.GetCalls"], capture_output=True, text=True,
            check=True).stdout
        assert re.search(r"'SetLinkDNSSEC', <\(\d+, 'allow-downgrade'\)>", out), out
        assert re.search(r"'SetLinkDNSOverTLS', <\(\d+, 'yes'\)>", out), out
        assert re.search(r"\('corp\.shimmer\.test', true\)", out), out
        assert re.search(r"\('lab\.shimmer\.test', false\)", out), out
        assert "10, 99, 0, 54" not in out, out
        r = h.ctl("disconnect", "dns")
        assert r.returncode == 0, r.stderr
        h.wait_tunnel_gone()
        h.remove_profile("dns")
    finally:
        mock.stop()
        h.stop_daemon()
        h.daemon = None
        dns_server.stop()


ANSWERER = r"""
import json, sys, dbus, dbus.mainloop.glib
from gi.repository import GLib
dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
addr, session, password = sys.argv[1:4]
bus = dbus.bus.BusConnection(addr)
loop = GLib.MainLoop()
def creds(fields, prompt, echo, path=None):
    if path != session:
        return
    state = bus.call_blocking("org.shimmervpn", path, "org.freedesktop.DBus.Properties", "Get",
                              "ss", ["org.shimmervpn.Session1", "State"])
    print(json.dumps({"fields": [str(f) for f in fields], "state": str(state)}), flush=True)
    bus.call_blocking("org.shimmervpn", path, "org.shimmervpn.Session1", "ProvideCredentials",
                      "a{ss}", [{"password": password}])
    loop.quit()
bus.add_signal_receiver(creds, "CredentialsRequested", "org.shimmervpn.Session1",
                        "org.shimmervpn", None, path_keyword="path")
# Directed signals reach connections that called the daemon.
bus.call_blocking("org.shimmervpn", "/org/shimmervpn", "org.shimmervpn.Manager1",
                  "ListSessions", "", [])
print("ready", flush=True)
GLib.timeout_add_seconds(40, loop.quit)
loop.run()
"""


def test_auth_nocache_asks_again_at_renegotiation(h):
    # auth-nocache without a token: the password is forgotten once the
    # tunnel is up, so the renegotiation asks for it again; the tunnel stays
    # up meanwhile (State stays "connected").
    h.backend.policy = "approve"
    path = h.write_profile("nocache", h.profile_text(extra=["auth-nocache", "reneg-sec 6"]))
    r = h.ctl("import", path)
    assert r.returncode == 0, r.stdout + r.stderr
    try:
        r = h.ctl("connect", "nocache", "--wait", input="%s\n%s\n" % (USERNAME, PASSWORD),
                  timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        session = h.ctl_json("status", "nocache")["Path"]
        ans = h.spawn([ts.PYTHON, "-c", ANSWERER, h.bus.address, session, PASSWORD], uid=USER_A)
        assert ans.stdout.readline().strip() == "ready"
        line = ans.stdout.readline()
        assert line, ans.stderr.read() if ans.poll() is not None else "no request"
        ev = json.loads(line)
        assert ev["fields"] == ["password"] and ev["state"] == "connected", ev
        # The server let the new key in (a REAUTH answered), and the
        # tunnel still carries traffic.
        h.backend.m.wait(lambda e: e["type"] == "REAUTH", 20, "the re-authentication")
        ts.wait_for(lambda: h.props(session, S1)["State"] == "connected", 10, "connected")
        assert h.ping_through_tunnel()
        r = h.ctl("disconnect", "nocache")
        assert r.returncode == 0, r.stderr
        h.wait_tunnel_gone()
    finally:
        h.remove_profile("nocache")
