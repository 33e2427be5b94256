# SPDX-License-Identifier: MIT
"""shimmerd under a hostile local user (issue 9): regression tests for the
findings that live in the daemon, on the same private bus, polkitd stand-in
and lab as test_service.py (whose fixtures these tests share).

Each test failed before its fix:
- 1: big profiles made GetManagedObjects pass the bus's message limit (any
  caller could make the daemon lose its name); now every exported list is
  bounded and each uid's profiles are capped in number and bytes;
- 2/5: sessions and profiles had no limit but per-uid counts; the session
  limit now follows the descriptor limit;
- 3: a name with a bidirectional-text control was accepted;
- 4: `mark` in a user's profile marked the root daemon's socket;
- 6: CredentialsRequested (with the server's challenge) went to every bus
  client;
- 7/8: a FIFO in the state directory hung the start; a 0755 state
  directory stayed so.

    SHIMMERD=... SHIMMERCTL=... python3 -m pytest -q tests/dbus/test_hardening.py

Needs root; skips with the reason otherwise.
"""
import json
import os
import stat
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from test_service import (  # noqa: E402,F401  (env and h are fixtures)
    BUS_NAME, M1, OM, P1, PYTHON, ROOT, S1, SHIMMERD, USER_A, USER_B, as_uid, env, h,
    pytestmark, read_events, wait_for)

MAX_PROFILES_PER_UID = 64
MAX_BYTES_PER_UID = 8 * 1024 * 1024
MAX_SHOWN_LINES = 32


def big_profile(h, size):
    """A self-contained profile of about SIZE bytes: the lab's profile and
    `setenv` lines, each of which is a warning of the parser."""
    text = h.inline_text()
    lines, n = [], 0
    while len(text) + n < size:
        line = "setenv SHIMMER_FILL_%06d %s" % (len(lines), "v" * 40)
        lines.append(line)
        n += len(line) + 1
    return text + "\n".join(lines) + "\n"


def import_call(name, text):
    return (ROOT, M1, "ImportProfile", "ssa{sv}", [name, text, {}])


def managed_objects_size(h, uid):
    """The byte size of GetManagedObjects' reply as UID sees it (the reply
    as JSON: its text is about the size of the D-Bus message)."""
    r = h.call(ROOT, OM, "GetManagedObjects", uid=uid)
    assert r["ok"], r
    return len(json.dumps(r["reply"]))


def remove_all_of(h, uid):
    r = h.call(ROOT, M1, "ListProfiles", uid=uid)
    if r["ok"]:
        h.calls([(p, P1, "Remove", "", []) for p in r["reply"][0]], uid=uid)


def test_big_profiles_cannot_take_the_daemon_down(h):
    # Before: 13 profiles of 1 MiB (66,000 `setenv` lines each) made each
    # Warnings property 2.6 MB, and anyone's GetManagedObjects passed the
    # bus's 32 MiB limit: shimmerd lost its name. Now a uid stores at most
    # 8 MiB, and what a profile shows is bounded.
    text = big_profile(h, 1000 * 1000)
    try:
        results = h.calls([import_call("big%02d" % i, text) for i in range(13)], uid=USER_A)
        accepted = [r for r in results if r["ok"]]
        refused = [r for r in results if not r["ok"]]
        assert 1 <= len(accepted) <= MAX_BYTES_PER_UID // len(text), results
        assert refused and all(r["error"] == "org.shimmervpn.Error.LimitReached"
                               for r in refused), refused
        assert "bytes" in refused[0]["message"], refused[0]
        first = accepted[0]["reply"][0]
        warnings = h.props(first, P1)["Warnings"]
        assert len(warnings) <= MAX_SHOWN_LINES, len(warnings)
        assert "more warnings not shown" in warnings[-1], warnings[-1]
        assert all(len(w.encode()) <= 256 for w in warnings)
        # Anyone may list the objects: the reply stays small and the daemon
        # keeps its name.
        size = managed_objects_size(h, USER_B)
        assert size < 1024 * 1024, size
        assert h.daemon.alive() and h.name_has_owner(), h.daemon.log_tail()
    finally:
        remove_all_of(h, USER_A)


def test_profile_count_is_capped_per_uid(h):
    text = h.inline_text()
    try:
        results = h.calls([import_call("n%03d" % i, text)
                           for i in range(MAX_PROFILES_PER_UID + 2)], uid=USER_A)
        ok = sum(r["ok"] for r in results)
        assert ok == MAX_PROFILES_PER_UID, results[-3:]
        assert results[-1]["error"] == "org.shimmervpn.Error.LimitReached", results[-1]
        # Root is not held by the per-uid caps.
        r = h.call(*import_call("root-extra", text)[:4], args=["root-extra", text, {}], uid=0)
        assert r["ok"], r
        h.call_ok(r["reply"][0], P1, "Remove", uid=0)
    finally:
        remove_all_of(h, USER_A)


def test_names_with_bidi_controls_are_refused(h):
    text = h.inline_text()
    for name in ("invoice\u202egpj.exe", "a\u2066b", "tab\tname", "esc\x1b[31m"):
        r = h.call(*import_call(name, text), uid=USER_A)
        assert not r["ok"] and r["error"] == "org.shimmervpn.Error.InvalidArgs", (name, r)
    assert h.daemon.alive()


def test_mark_is_only_for_roots_profiles(h):
    text = h.inline_text() + "mark 42\n"
    r = h.call(*import_call("marked", text), uid=USER_A)
    assert not r["ok"] and r["error"] == "org.shimmervpn.Error.InvalidConfig", r
    assert "'mark'" in r["message"] and "root" in r["message"], r["message"]
    r = h.call(ROOT, M1, "CheckConfig", "s", [text], uid=USER_A)
    assert r["ok"] and r["reply"][0] is False, r
    r = h.call(*import_call("marked", text), uid=0)
    assert r["ok"], r
    h.call_ok(r["reply"][0], P1, "Remove", uid=0)


LISTENER = r"""
import json, sys, dbus, dbus.mainloop.glib
from gi.repository import GLib
dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
bus = dbus.bus.BusConnection(sys.argv[1])
def creds(fields, prompt, echo, path=None):
    print(json.dumps({"path": str(path), "prompt": str(prompt)}), flush=True)
bus.add_signal_receiver(creds, "CredentialsRequested", "org.shimmervpn.Session1", None, None,
                        path_keyword="path")
# A caller the daemon knows: it has called a method (as a log viewer does).
try:
    bus.call_blocking("org.shimmervpn", "/org/shimmervpn", "org.shimmervpn.Manager1",
                      "ListSessions", "", [])
except dbus.DBusException:
    pass
print(json.dumps({"ready": True}), flush=True)
GLib.timeout_add_seconds(30, GLib.MainLoop.quit, None)
GLib.MainLoop().run()
"""


def test_credentials_requested_goes_to_the_owner_only(h):
    profile = h.import_profile("asks-privately")
    try:
        other = h.spawn([PYTHON, "-c", LISTENER, h.bus.address], uid=USER_B)
        owner = h.spawn([PYTHON, "-c", LISTENER, h.bus.address], uid=USER_A)
        for p in (other, owner):
            assert json.loads(p.stdout.readline()) == {"ready": True}
        d = h.driver(profile, {}, None, mode="hold")
        events = read_events(d, lambda e: e["event"] in ("credentials", "error"))
        assert events[-1]["event"] == "credentials", events
        session = [e for e in events if e["event"] == "session"][0]["path"]
        # The owner's other connection hears it...
        seen = json.loads(owner.stdout.readline())
        assert seen["path"] == session, seen
        # ...another user's does not.
        time.sleep(1)
        h.ctl("disconnect", session)
        other.terminate()
        out, _ = other.communicate(timeout=10)
        assert out.strip() == "", "another user saw CredentialsRequested: %r" % out
    finally:
        h.remove_profile("asks-privately")


def restart_daemon(h, prefix=()):
    """Stops shimmerd and starts it again, under PREFIX (e.g. prlimit)."""
    h.stop_daemon()
    h.daemon = h.lab.spawn_in_client(
        list(prefix) + [SHIMMERD, "--bus-address", h.bus.address, "--state-dir", h.state_dir,
                        "--polkit-bus-address", h.bus.address],
        name=h.lab._unique("shimmerd"))
    wait_for(lambda: h.name_has_owner() or not h.daemon.alive(), 15,
             "shimmerd to own %s" % BUS_NAME)
    assert h.daemon.alive(), "shimmerd exited:\n" + h.daemon.log_tail()


def test_sessions_are_capped_by_the_descriptor_limit(h):
    # A session holds its socket, a netlink socket, a spare, and its data
    # path's descriptors: one eventfd, and per worker (one per processor,
    # up to 8) an epoll, an eventfd and a tun queue. With 200 descriptors,
    # 64 kept for the daemon and 64 for root's sessions, (200 - 128) / that
    # many sessions of users fit (7 on 2 processors). Before, the daemon
    # took every Connect until GLib aborted for want of a descriptor, ending
    # every tunnel.
    workers = min(max(os.cpu_count() or 1, 1), 8)
    expected = (200 - 2 * 64) // (4 + 3 * workers)
    restart_daemon(h, ["prlimit", "--nofile=200:200"])
    profiles = []
    try:
        profiles = [h.import_profile("fd%02d" % i) for i in range(expected + 2)]
        results = h.calls([(p, P1, "Connect", "a{sv}", [{}]) for p in profiles], uid=USER_A)
        ok = [r for r in results if r["ok"]]
        assert len(ok) == expected, results
        assert results[-1]["error"] == "org.shimmervpn.Error.LimitReached", results[-1]
        assert h.daemon.alive() and h.name_has_owner()
        h.calls([(r["reply"][0], S1, "Disconnect", "", []) for r in ok], uid=USER_A)
    finally:
        for i in range(len(profiles)):
            h.ctl("remove", "fd%02d" % i)
        restart_daemon(h)


def test_state_directory_fifo_and_mode(h):
    # A FIFO named like a profile hung the start forever (open() blocked,
    # SIGTERM ignored); a 0755 state directory stayed 0755.
    h.stop_daemon()
    fifo = os.path.join(h.state_dir, "f" * 32 + ".profile")
    os.mkfifo(fifo, 0o600)
    os.chmod(h.state_dir, 0o755)
    try:
        restart_daemon(h)
        assert h.call(ROOT, M1, "ListProfiles", uid=USER_A)["ok"]
        assert not os.path.exists(fifo)
        assert stat.S_ISFIFO(os.stat(fifo + ".corrupt").st_mode)
        assert stat.S_IMODE(os.stat(h.state_dir).st_mode) == 0o700
    finally:
        for p in (fifo, fifo + ".corrupt"):
            if os.path.lexists(p):
                os.unlink(p)
