# SPDX-License-Identifier: MIT
"""Pending logins through NetworkManager (issue 14): a real NetworkManager
(tests/nm/nmlab.py), nm-shimmer-service, a real shimmerd and an OpenVPN
2.6 server that defers every login to its management interface, where
the test plays the SSO backend (tests/lab/mgmt.py).

  - `nmcli --ask connection up`: the plugin passes the server's web
    sign-in to NetworkManager's secret agent; nmcli runs the auth dialog,
    shows the URL and waits for the user to confirm; the backend approves
    and the connection comes up;
  - the `dns` options the server pushes (server, routing domain, search
    domain) reach NetworkManager's IP configuration of the connection;
  - a CR_TEXT challenge is asked and answered through nmcli.

Every VPN connection has ipv4/ipv6 never-default yes (LAB.md). Needs root;
skips with the reason otherwise. Environment: SHIMMER_NM_NAME_FILE,
SHIMMERD, SHIMMER_TEST_SRCDIR.
"""
import ipaddress
import os
import pty
import re
import select
import signal
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lab"))

import lab as labmod  # noqa: E402
import mgmt  # noqa: E402
import nmlab  # noqa: E402
import test_nm_connect as nc  # noqa: E402

URL = "https://sso.shimmer.test/nm?id=%s"


class Backend:
    def __init__(self, path):
        self.policy = "web"
        self.pending = []
        self.m = mgmt.Management(path, self._on_event)

    def _on_event(self, m, ev):
        cid, kid = ev["cid"], ev["kid"]
        if ev["type"] == "CR_RESPONSE":
            if ev["response"] == "5150":
                m.approve(cid, kid)
            else:
                m.deny(cid, kid, "wrong code")
        elif ev["type"] == "REAUTH":
            m.approve(cid, kid)
        elif ev["type"] == "CONNECT":
            self.pending.append((cid, kid))
            if self.policy == "web":
                m.pending_web(cid, kid, URL % cid, 90, flags="external")
            else:
                m.pending_cr_text(cid, kid, "Enter the number from your phone", 90)


@pytest.fixture(scope="module")
def sso():
    reason = nmlab.preflight() or labmod.preflight()
    if reason:
        pytest.skip(reason)
    name_file = os.environ.get("SHIMMER_NM_NAME_FILE")
    if not name_file or not os.path.exists(name_file):
        pytest.skip("SHIMMER_NM_NAME_FILE does not name the plugin's .name file")
    if not os.access(os.environ.get("SHIMMERD", ""), os.X_OK):
        pytest.skip("SHIMMERD does not name the built shimmerd")
    if nmlab.sanitizer_preload(name_file):
        pytest.skip("the plugin is built with sanitizers; nmcli cannot load it")
    previous = signal.signal(signal.SIGTERM, lambda *a: sys.exit("SIGTERM"))
    before = nc._default_routes()
    backend = None
    try:
        with nmlab.NMLab(name_file) as nm:
            w = nc.World(nm)
            try:
                third = int(nm.peer_addr.split(".")[2])
                net4 = ipaddress.ip_network("10.222.%d.0/24" % third)
                used = nmlab._used_ipv4_networks()
                if any(net4.overlaps(u) for u in used if u.prefixlen > 0):
                    pytest.skip("%s is in use on this machine" % net4)
                sock = mgmt.socket_path(w.dir, "sso")
                dns = str(net4.network_address + 53)
                srv = w.srv.start_openvpn_server(
                    {"bind": "ipv4", "tunnel_v4": str(net4),
                     "tunnel_v6": "fd5e:310:%x::/64" % third,
                     "extra": mgmt.server_lines(sock) + [
                         'push "dns server 1 address %s"' % dns,
                         'push "dns server 1 resolve-domains corp.sso.shimmer.test"',
                         'push "dns search-domains sso.shimmer.test"']}, name="sso")
                srv.dns = dns
                w.servers["sso"] = srv
                backend = Backend(sock)
                w.backend = backend
                yield w
            finally:
                if backend is not None:
                    backend.m.close()
                w.close()
                print("\n---- NetworkManager log (tail) ----\n" + nm.log_tail(80))
                print("\n---- shimmerd log (tail) ----\n" +
                      "".join(w.shimmerd_log().splitlines(True)[-40:]))
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert nc._default_routes() == before, "the machine's default routes changed"


def _profile(w, name):
    if name not in w.nm.nmcli("-g", "NAME", "connection", "show").stdout:
        # Stored credentials: the only question is the sign-in.
        w.profile("sso", name, auth_user_pass=(nc.USER, nc.PASSWORD))
    return name


def test_web_sign_in_through_nmcli_ask(sso):
    w = sso
    w.backend.policy = "web"
    w.backend.pending.clear()
    name = _profile(w, "shimmer-sso")
    approved = []

    def approve_when_shown(out):
        # nmcli shows the URL: the "browser" signs in.
        if not approved and w.backend.pending:
            w.backend.m.approve(*w.backend.pending[0])
            approved.append(True)

    answers = [(rb"https://sso\.shimmer\.test/nm\?id=\d+[\s\S]*signed in[^\n]*:\s*$", "")]
    code, text = _nmcli_answering(w, name, answers, approve_when_shown)
    print("nmcli --ask said:\n" + text)
    assert approved, "nmcli never showed the sign-in:\n" + text
    cid = w.backend.pending[0][0]
    assert URL % cid in text, text
    assert code == 0, text
    found = nc._tunnel_device(w, w.servers["sso"])
    assert found, text
    nc._ping_through(found[0], w.servers["sso"].tunnel_v4)
    # The pushed `dns` options in NetworkManager's configuration.
    show = w.nm.nmcli("-t", "-f", "IP4.DNS,IP4.DOMAIN", "connection", "show", name).stdout
    assert w.servers["sso"].dns in show, show
    assert "sso.shimmer.test" in show, show
    assert "~corp.sso.shimmer.test" in show, show
    # The URL stayed out of NetworkManager's log.
    assert (URL % cid) not in w.nm.nm_log()
    nc._down_and_gone(w, name, found[0])


def test_cr_text_through_nmcli_ask(sso):
    w = sso
    w.backend.policy = "cr-text"
    w.backend.pending.clear()
    name = _profile(w, "shimmer-sso")
    code, text, answered = nc._nmcli_on_terminal(
        w, ["--ask", "--wait", "90", "connection", "up", name, "ifname", w.nm.veth],
        [(rb"Enter the number from your phone[\s\S]*:\s*$", "5150")])
    print("nmcli --ask said:\n" + text)
    assert answered == 1, text
    assert code == 0, text
    found = nc._tunnel_device(w, w.servers["sso"])
    assert found, text
    nc._down_and_gone(w, name, found[0])


def _nmcli_answering(w, name, answers, on_prompt, timeout=120):
    """Like test_nm_connect._nmcli_on_terminal, with ON_PROMPT(output) called
    just before each answer: the backend approves the sign-in there, as a
    person signing in on the web page would before confirming. Returns
    (exit code, what nmcli printed)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: nmcli on a terminal
        os.execvpe("nmcli", ["nmcli", "--ask", "--wait", "90", "connection", "up", name,
                             "ifname", w.nm.veth], w.nm.env())
    out = b""
    answered = 0
    deadline = time.monotonic() + timeout
    status = None
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.5)
            if r:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                out += chunk
                if answered < len(answers) and re.search(answers[answered][0], out):
                    on_prompt(out)
                    os.write(fd, answers[answered][1].encode() + b"\n")
                    out += b"\n<answered>\n"
                    answered += 1
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                # Reaped: a status of 0 is a status, not "not yet".
                status = st
                break
        else:
            os.kill(pid, signal.SIGKILL)
    finally:
        if status is None:
            _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")
