"""Pending logins against the real OpenVPN 2.6 server, through
`shimmerd --config`: the server defers every login to its management
interface (`management-client-auth`), where the test plays an SSO backend
(mgmt.py) and answers >CLIENT:CONNECT with client-pending-auth:

  - a web sign-in (WEB_AUTH / OPEN_URL): the URL reaches the user on a line
    of its own, a browser is started only where that is allowed (never as
    root; through sudo in the user's session, as the user), and the tunnel
    comes up once the backend approves;
  - a CR_TEXT challenge answered on the terminal, right (approved) and
    wrong (denied, with the server's reason);
  - a login never approved, which ends with a clear reason;
  - an auth-token (auth-gen-token) that brings the session back after the
    server restarts it, without another web sign-in.

Pushed `dns` options reaching the system resolver are tested with the
daemon (tests/dbus/test_web_auth.py: systemd-resolved's stand-in).

OpenVPN's own client needs a management GUI for this: these run for
shimmerd only. The daemon and shimmerctl are tested in
tests/dbus/test_web_auth.py, NetworkManager in tests/nm/.
"""
import os
import pty
import pwd
import re
import shutil
import subprocess
import termios
import time

import pytest

import lab as labmod
import mgmt

pytestmark = pytest.mark.client

URL = "https://sso.shimmer.test/login?session=%s&next=%%2F"


@pytest.fixture
def shimmerd_only(client_cmd):
    if client_cmd.name != "shimmerd":
        pytest.skip("OpenVPN's client leaves web sign-in to a management GUI")
    return client_cmd


class Backend:
    """The management client and what it was told to do with each login:
    POLICY is "web", "openurl", "cr-text" or "approve"; re-authentications
    of a session that already passed (a valid auth-token) are approved."""

    def __init__(self, path, policy, timeout=60):
        self.policy = policy
        self.timeout = timeout
        self.pending = []  # (cid, kid) told to wait
        self.m = mgmt.Management(path, self._on_event)

    def _on_event(self, m, ev):
        if ev["type"] == "REAUTH" or ev["env"].get("session_state") == "Authenticated":
            m.approve(ev["cid"], ev["kid"])
            return
        if ev["type"] != "CONNECT":
            return
        cid, kid = ev["cid"], ev["kid"]
        if self.policy == "approve":
            m.approve(cid, kid)
        elif self.policy == "web":
            self.pending.append((cid, kid))
            m.pending_web(cid, kid, URL % cid, self.timeout, flags="external")
        elif self.policy == "openurl":
            self.pending.append((cid, kid))
            m.pending_web(cid, kid, URL % cid, self.timeout, kind="OPEN_URL")
        elif self.policy == "cr-text":
            self.pending.append((cid, kid))
            m.pending_cr_text(cid, kid, "Your code from the app?", self.timeout, flags="E,R")

    def close(self):
        self.m.close()


@pytest.fixture
def backend_server(lab):
    """Starts a server deferring logins to a Backend; returns a function
    (policy, extra server lines, timeout) -> (server, backend)."""
    made = []

    def start(policy, extra=(), timeout=60):
        sock = mgmt.socket_path(lab.dir, "mgmt%d" % len(made))
        srv = lab.start_openvpn_server({"wrap": "tls-crypt",
                                        "extra": mgmt.server_lines(sock) + list(extra)})
        b = Backend(sock, policy, timeout)
        made.append(b)
        return srv, b

    yield start
    for b in made:
        b.close()


def profile(lab, extra=()):
    return lab.client_config({"auth_user_pass": ("alice", "pw"),
                              "extra": ["auth-retry none"] + list(extra)})


def test_web_sign_in_approved(lab, shimmerd_only, backend_server):
    srv, b = backend_server("web")
    # As root in a graphical session but not through sudo: the URL is only
    # printed (never a browser as root).
    path = lab.write_client_config({"auth_user_pass": ("alice", "pw")})
    cli = lab.spawn_in_client([shimmerd_only.argv[0], "--config", path], name="shimmerd-web",
                              env={"DISPLAY": ":42", "XDG_RUNTIME_DIR": "/run/user/0",
                                   "SUDO_UID": "", "SUDO_USER": ""})
    ev = b.m.wait(lambda e: e["type"] == "CONNECT", 20, "the login")
    # What the client announced: the pending-login methods and keywords.
    env = ev["env"]
    assert env.get("IV_SSO") == "openurl,webauth,crtext", env
    proto = int(env.get("IV_PROTO", "0"))
    assert proto & (1 << 4) and proto & (1 << 6), proto  # AUTH_PENDING_KW, DNS option
    url = URL % ev["cid"]
    cli.wait_log(r"(?m)^" + re.escape(url) + r"$", 15)
    cli.wait_log(r"no browser is started: .*root", 5)
    assert lab.ping_from_client(srv.tunnel_v4, count=1, timeout=1).ok is False
    assert not re.search(shimmerd_only.ready, cli.read_log())
    cid, kid = b.pending[0]
    b.m.approve(cid, kid)
    cli.wait_log(shimmerd_only.ready, 20)
    assert lab.ping_from_client(srv.tunnel_v4, count=2).ok
    # The URL was not logged anywhere but on its own line.
    assert cli.read_log().count(url) == 1, cli.read_log()


def test_open_url_opens_in_the_sudo_users_session(lab, shimmerd_only, backend_server, tmp_path):
    # shimmerd run through sudo by a user with a desktop session: the
    # browser starts as that user (runuser, a fake one here that records
    # its arguments), with only that session's variables.
    user = pwd.getpwnam("games")
    run_dir = "/run/user/%d" % user.pw_uid
    made_run_dir = not os.path.isdir(run_dir)
    fakebin = tmp_path / "bin"
    fakebin.mkdir()
    record = tmp_path / "runuser.args"
    (fakebin / "runuser").write_text("#!/bin/sh\nprintf '%%s\\n' \"$@\" > %s\n" % record)
    (fakebin / "runuser").chmod(0o755)
    srv, b = backend_server("openurl")
    try:
        if made_run_dir:
            os.makedirs(run_dir, mode=0o700)
        path = lab.write_client_config({"auth_user_pass": ("alice", "pw")})
        cli = lab.spawn_in_client(
            [shimmerd_only.argv[0], "--config", path], name="shimmerd-sudo",
            env={"PATH": "%s:%s" % (fakebin, os.environ.get("PATH", "/usr/bin:/bin")),
                 "DISPLAY": ":42", "WAYLAND_DISPLAY": "", "SUDO_UID": str(user.pw_uid),
                 "SUDO_USER": user.pw_name, "SUDO_GID": str(user.pw_gid)})
        ev = b.m.wait(lambda e: e["type"] == "CONNECT", 20, "the login")
        url = URL % ev["cid"]
        cli.wait_log(r"(?m)^" + re.escape(url) + r"$", 15)
        labmod.wait_for(lambda: record.exists() and record.read_text(), 10,
                        what="the browser command")
        args = record.read_text().splitlines()
        assert args == ["-u", user.pw_name, "--", "env", "-i",
                        "XDG_RUNTIME_DIR=" + run_dir,
                        "DBUS_SESSION_BUS_ADDRESS=unix:path=%s/bus" % run_dir,
                        "DISPLAY=:42", "PATH=/usr/local/bin:/usr/bin:/bin", "gio", "open",
                        url], args
        b.m.approve(*b.pending[0])
        cli.wait_log(shimmerd_only.ready, 20)
    finally:
        if made_run_dir:
            shutil.rmtree(run_dir, ignore_errors=True)


def test_web_sign_in_never_approved(lab, shimmerd_only, backend_server):
    srv, b = backend_server("web", timeout=8)
    started = time.monotonic()
    cli = lab.start_client(profile(lab), shimmerd_only, wait=False)
    b.m.wait(lambda e: e["type"] == "CONNECT", 20, "the login")
    rc = cli.wait_exit(30)
    took = time.monotonic() - started
    assert rc == 1, cli.read_log()
    log = cli.read_log()
    # Whoever gives up first, the reason says what happened.
    assert re.search(r"web sign-in was not finished within \d+ s|authentication failed", log), log
    assert took < 25, took
    assert not re.search(shimmerd_only.ready, log)


class PtyClient:
    """shimmerd --config in the client namespace with a terminal on its
    standard input (a pseudo-terminal the test types into)."""

    def __init__(self, lab, argv, name):
        self.master, slave = pty.openpty()
        # Line mode, as a terminal is by default.
        attrs = termios.tcgetattr(slave)
        attrs[3] |= termios.ICANON | termios.ECHO
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        self.log = os.path.join(lab.dir, name + ".log")
        self.logf = open(self.log, "wb")
        self.popen = subprocess.Popen(["ip", "netns", "exec", lab.cli_ns] + argv, stdin=slave,
                                      stdout=self.logf, stderr=subprocess.STDOUT,
                                      start_new_session=True, preexec_fn=labmod._child_setup)
        os.close(slave)

    def read_log(self):
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, pattern, timeout):
        return labmod.wait_for(lambda: re.search(pattern, self.read_log()), timeout,
                               what="/%s/ in %s" % (pattern, self.log))

    def type(self, text):
        os.write(self.master, text.encode())

    def wait_exit(self, timeout):
        return self.popen.wait(timeout)

    def stop(self):
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.logf.close()
        os.close(self.master)


@pytest.mark.parametrize("answer,good", [("424242", True), ("111111", False)])
def test_cr_text_answered_on_the_terminal(lab, shimmerd_only, backend_server, answer, good):
    srv, b = backend_server("cr-text")

    def check(m, ev):
        if ev["type"] == "CR_RESPONSE":
            if ev["response"] == "424242":
                m.approve(ev["cid"], ev["kid"])
            else:
                m.deny(ev["cid"], ev["kid"], "wrong code")
    b.m.policy = lambda m, ev: (b._on_event(m, ev), check(m, ev))
    path = lab.write_client_config({"auth_user_pass": ("alice", "pw")})
    cli = PtyClient(lab, [shimmerd_only.argv[0], "--config", path], "shimmerd-crtext")
    try:
        cli.wait_log(r"Your code from the app\? ", 20)
        cli.type(answer + "\n")
        resp = b.m.wait(lambda e: e["type"] == "CR_RESPONSE", 15, "the CR_RESPONSE")
        assert resp["response"] == answer
        if good:
            cli.wait_log(shimmerd_only.ready, 20)
            assert lab.ping_from_client(srv.tunnel_v4, count=1).ok
        else:
            assert cli.wait_exit(20) == 1
            assert re.search(r"authentication failed: wrong code", cli.read_log()), cli.read_log()
        # The answer is never logged (it echoes, as E asks, but the log
        # holds what shimmerd writes).
        assert answer not in re.sub(r"Your code from the app\? *\S*", "", cli.read_log())
    finally:
        cli.stop()


def test_auth_token_brings_the_session_back_without_a_new_sign_in(lab, shimmerd_only,
                                                                  backend_server):
    srv, b = backend_server("web", extra=["auth-gen-token 0 external-auth"])
    cli = lab.start_client(profile(lab), shimmerd_only, wait=False)
    ev = b.m.wait(lambda e: e["type"] == "CONNECT", 20, "the login")
    cli.wait_log(re.escape(URL % ev["cid"]), 15)
    b.m.approve(*b.pending[0])
    cli.wait_log(shimmerd_only.ready, 20)
    # The server drops the session and asks for a restart: the client
    # comes back with the token, which the backend accepts without a web
    # sign-in (session_state Authenticated).
    b.m.kill(ev["cid"])
    labmod.wait_for(lambda: len(re.findall(shimmerd_only.ready, cli.read_log())) >= 2, 30,
                    what="the second connection")
    again = [e for e in b.m.events if e["type"] == "CONNECT"]
    assert len(again) >= 2, b.m.events
    assert again[-1]["env"].get("session_state") == "Authenticated", again[-1]["env"]
    assert len(b.pending) == 1, b.pending
    assert len(re.findall(r"(?m)^https://sso\.shimmer\.test/", cli.read_log())) == 1
    assert lab.ping_from_client(srv.tunnel_v4, count=1).ok
