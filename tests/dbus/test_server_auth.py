# SPDX-License-Identifier: MIT
"""Logins decided over D-Bus (issue 12, item 3's deferred decisions): a
server started with "auth" "bus" announces each login with
Server1.AuthRequested to its owner's bus connections only, never with the
password; AnswerAuth accepts, denies (the client hears the reason) or
keeps it pending (the client hears AUTH_PENDING); a login nobody decides
is denied after hand-window; PAM and the bus together (PAM first).

Real OpenVPN 2.6 and Shimmer clients in the lab; shimmerd in the lab's
server namespace on a private system-like bus with a polkitd stand-in
(fixtures of test_server_bus.py).

Needs root; skips with the reason otherwise.
"""
import os
import re
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import test_service as ts  # noqa: E402
import test_server_bus as tsb  # noqa: E402
from test_server_bus import CL1, SRV1, env, h  # noqa: E402,F401
from test_service import USER_A, USER_B  # noqa: E402

import privbus  # noqa: E402

pytestmark = pytest.mark.skipif(ts._skip_reason() is not None, reason=ts._skip_reason() or "")

USER, PASSWORD = "alice", "pw-never-on-the-bus-7731"
HAND_WINDOW = 10

# Listens for the daemon's AuthRequested as another uid, after one call
# (which makes the daemon know this connection); prints how many arrived.
LISTENER = r"""
import sys, time, dbus, dbus.mainloop.glib
from gi.repository import GLib
dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
bus = dbus.bus.BusConnection(sys.argv[1])
seen = []
bus.add_signal_receiver(lambda *a: seen.append(a), signal_name="AuthRequested",
                        dbus_interface="org.shimmervpn.Server1")
try:
    bus.call_blocking("org.shimmervpn", "/org/shimmervpn", "org.shimmervpn.Manager1",
                      "ListProfiles", "", [])
except dbus.DBusException:
    pass
print("ready", flush=True)
loop = GLib.MainLoop()
GLib.timeout_add(int(float(sys.argv[2]) * 1000), loop.quit)
loop.run()
print(len(seen), flush=True)
"""


def start_bus_server(h, name, extra=()):
    profile, srv = h.import_server(name, {"wrap": "tls-crypt",
                                          "extra": ["duplicate-cn", "hand-window %d" % HAND_WINDOW]
                                          + list(extra)}, uid=0)
    server = h.start_server(name, "--auth", "bus", uid=0)
    assert h.dbus.props(server, SRV1)["AuthMode"] in ("bus", "pam+bus")
    # A decider calls GetAuthRequests when it starts: that also makes the
    # daemon send it the signals meant for the owner.
    assert h.dbus.call(server, SRV1, "GetAuthRequests") == ([],)
    return profile, srv, server


def requested(h, server, timeout=15):
    ev = h.dbus.wait("AuthRequested", timeout, "AuthRequested", path=server,
                     pred=lambda e: e[0] == server and e[3][0] not in h.answered)
    request, details = ev[-1][3]
    h.answered.add(request)
    return request, details


def closed(h, server, request, timeout=15):
    ev = h.dbus.wait("AuthRequestClosed", timeout, "AuthRequestClosed of %d" % request,
                     path=server, pred=lambda e: e[3][0] == request)
    return ev[-1][3][1]


def answer(h, server, request, decision, reason=""):
    r = h.ctl("server", "answer", server, str(request), decision, "--reason", reason, uid=0)
    assert r.returncode == 0, r.stdout + r.stderr


def creds(user=USER, password=PASSWORD):
    return {"auth_user_pass": (user, password)}


@pytest.fixture
def hb(h):
    h.answered = set()
    yield h


def test_accept_deny_pending_timeout(hb):
    h = hb
    profile, srv, server = start_bus_server(h, "s-bus")

    # Another local user, even one that called the daemon, hears nothing.
    listener = h.spawn([ts.PYTHON, "-c", LISTENER, h.bus.address, "8"], uid=USER_B)
    assert listener.stdout.readline().strip() == "ready"

    # accept: the owner hears who logs in from where, never the password.
    cli = tsb.openvpn_client(h, srv, creds(), wait=False)
    request, details = requested(h, server)
    assert details["username"] == USER and details["common-name"] == tsb.CLIENT_CN
    assert details["real-address"].startswith(h.lab.client_ip4 + ":")
    assert details["pam"] is False
    assert 0 < details["timeout"] <= HAND_WINDOW
    assert abs(details["deadline"] - (time.time() + details["timeout"])) < 3
    assert PASSWORD not in repr(h.dbus.events)
    pending = h.ctl_json("server", "requests", server, uid=0)
    assert [(x["Request"], x["username"]) for x in pending] == [(request, USER)]
    answer(h, server, request, "accept")
    assert closed(h, server, request) == "accepted"
    cli.wait_log(cli.client_cmd.ready, 10)
    path = "%s/client/%d" % (server, request)
    c = privbus.wait_until(lambda: tsb.client_objects(h, server).get(path), 5,
                           "the accepted client's object")
    assert c["UserName"] == USER and c["Id"] == request
    assert h.ctl_json("server", "requests", server, uid=0) == []
    assert listener.wait(15) == 0
    assert listener.stdout.read().strip() == "0"
    cli.stop()

    # deny, by another user allowed to manage servers: the client hears the reason.
    shim = tsb.shimmer_client(h, srv, creds(), wait=False)
    request, details = requested(h, server)
    assert details["real-address"].startswith(shim.addr4 + ":")
    h.polkit_allow(ts.OWN_ACTIONS + [tsb.SERVER_ACTION])
    r = h.call(server, SRV1, "AnswerAuth", "tss", [request, "deny", "not today"], uid=USER_B)
    assert r["ok"], r
    assert closed(h, server, request) == "denied"
    shim.wait_log(r"authentication failed.*not today|not today.*authentication failed", 10)
    h.polkit_allow(ts.OWN_ACTIONS)
    shim.stop()

    # pending, then accept: the OpenVPN client is told to wait.
    cli = tsb.openvpn_client(h, srv, creds(), wait=False)
    request, _ = requested(h, server)
    answer(h, server, request, "pending")
    cli.wait_log(r"AUTH_PENDING", 10)
    time.sleep(1)
    assert not re.search(cli.client_cmd.ready, cli.read_log())
    assert [x["Request"] for x in h.ctl_json("server", "requests", server, uid=0)] == [request]
    answer(h, server, request, "accept", "checked by hand")
    assert closed(h, server, request) == "accepted"
    cli.wait_log(cli.client_cmd.ready, 10)
    cli.stop()

    # Nobody answers: denied after hand-window.
    shim = tsb.shimmer_client(h, srv, creds(), wait=False)
    request, details = requested(h, server)
    t0 = time.monotonic()
    assert closed(h, server, request, timeout=HAND_WINDOW + 5) == "timeout"
    assert time.monotonic() - t0 >= details["timeout"] - 2
    shim.wait_log(shim.client_cmd.auth_failed, 10)
    # Too late now.
    r = h.call(server, SRV1, "AnswerAuth", "tss", [request, "accept", ""])
    assert not r["ok"] and r["error"] == "org.shimmervpn.Error.NotFound", r
    shim.stop()

    # Malformed and unauthorized answers.
    r = h.call(server, SRV1, "AnswerAuth", "tss", [request, "maybe", ""])
    assert not r["ok"] and r["error"] == "org.shimmervpn.Error.InvalidArgs", r
    r = h.call(server, SRV1, "AnswerAuth", "tss", [request, "accept", ""], uid=USER_B)
    assert not r["ok"] and r["error"] == "org.shimmervpn.Error.NotAuthorized", r
    r = h.ctl("server", "answer", server, "x", "accept", uid=0)
    assert r.returncode == 2

    # The password reached no log of the daemon.
    assert PASSWORD not in h.daemon.read_log(whole=True)
    assert h.ctl("server", "stop", server, uid=0).returncode == 0
    h.remove_profile("s-bus", uid=0)


def test_a_client_that_leaves_closes_its_request(hb):
    h = hb
    profile, srv, server = start_bus_server(h, "s-gone")
    cli = tsb.openvpn_client(h, srv, creds(), wait=False)
    request, _ = requested(h, server)
    cli.stop()  # SIGTERM: OpenVPN tells the server it leaves
    assert closed(h, server, request, timeout=HAND_WINDOW + 5) in ("gone", "timeout")
    r = h.call(server, SRV1, "AnswerAuth", "tss", [request, "accept", ""])
    assert not r["ok"] and r["error"] == "org.shimmervpn.Error.NotFound", r
    assert h.ctl("server", "stop", server, uid=0).returncode == 0
    h.remove_profile("s-gone", uid=0)


PAM_CHECK = """#!/bin/sh
# pam_exec with expose_authtok: the password on stdin (NUL-terminated).
pw=$(tr -d '\\000')
[ "$PAM_USER" = %s ] && [ "$pw" = %s ] && exit 0
exit 1
"""


@pytest.fixture
def pam_service(hb):
    name = "shimmer-test-%d" % os.getpid()
    path = os.path.join("/etc/pam.d", name)
    script = os.path.join(hb.lab.dir, "pam-check.sh")
    with open(script, "w") as f:
        f.write(PAM_CHECK % (USER, PASSWORD))
    os.chmod(script, 0o755)
    with open(path, "w") as f:
        f.write("auth required pam_exec.so quiet expose_authtok %s\n"
                "account required pam_permit.so\n" % script)
    try:
        yield name
    finally:
        os.unlink(path)


def test_pam_then_bus(hb, pam_service):
    """PAM checks the password first; only a login PAM accepted is put to
    the bus, marked so."""
    h = hb
    plugin = "plugin /usr/lib/x86_64-linux-gnu/openvpn/plugins/openvpn-plugin-auth-pam.so "
    profile, srv, server = start_bus_server(h, "s-pam", [plugin + pam_service])
    assert h.dbus.props(server, SRV1)["AuthMode"] == "pam+bus"

    cli = tsb.openvpn_client(h, srv, creds(password="wrong"), wait=False)
    cli.wait_log(cli.client_cmd.auth_failed, 15)
    assert re.search(r"PAM refused user 'alice'", h.daemon.read_log(whole=True))
    assert not h.dbus.seen("AuthRequested", server)
    cli.stop()

    cli = tsb.openvpn_client(h, srv, creds(), wait=False)
    request, details = requested(h, server)
    assert details["pam"] is True and details["username"] == USER
    answer(h, server, request, "accept")
    cli.wait_log(cli.client_cmd.ready, 10)
    cli.stop()
    assert PASSWORD not in h.daemon.read_log(whole=True)
    assert h.ctl("server", "stop", server, uid=0).returncode == 0
    h.remove_profile("s-pam", uid=0)
