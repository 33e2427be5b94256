# SPDX-License-Identifier: MIT
"""A bounded D-Bus fuzzer against shimmerd (issue 9).

shimmerd serves org.shimmervpn on a private bus (tests/lab/daemonenv.py: a
dbus-daemon that lets every message through, so that shimmerd's own checks
are what is tested, a polkitd stand-in that allows the usual "own" actions,
a resolvconf stand-in) in the lab's client namespace, with two OpenVPN 2.6
servers in the other (one plain, one that wants a user name and password).
Callers as root and as two unprivileged users (games, nobody) run
tests/dbus/busfuzz.py in batches: random methods of every interface in
dbus/*.xml with their signatures and random values, wrong signatures,
properties, unknown names, random object paths, huge strings, deep
variants, the state machine with valid arguments, hand-made messages with
invalid UTF-8. After each batch shimmerd must be alive, answer Introspect,
GetManagedObjects and Peer.Ping, and have printed no sanitizer report; at
the end it must stop cleanly and leave no tun device, route or resolvconf
record behind.

    BUS_FUZZ_SECONDS=60 BUS_FUZZ_SEED=1234 SHIMMERD=... \\
        /usr/bin/python3 -m pytest -q -s tests/dbus/test_bus_fuzz.py

The seed is printed (and picked at random when $BUS_FUZZ_SEED is unset);
the same seed replays the same calls per caller and batch (their
interleaving, and so the daemon's state, may differ). Needs root.
"""
import glob
import json
import os
import pwd
import random
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "lab"))

import daemonenv  # noqa: E402
import lab as labmod  # noqa: E402

SECONDS = float(os.environ.get("BUS_FUZZ_SECONDS", "60"))
SEED = os.environ.get("BUS_FUZZ_SEED") or str(random.SystemRandom().randrange(1 << 32))
CALLS_PER_BATCH = int(os.environ.get("BUS_FUZZ_CALLS", "150"))
USERNAME, PASSWORD = "alice", "fuzz-secret"
SHIMMERD = labmod.find_shimmerd()


def _uid(name):
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None


CALLERS = [("root", 0), ("games", _uid("games")), ("nobody", _uid("nobody"))]


def _skip_reason():
    if os.geteuid() != 0:
        return "needs root (network namespaces, callers as other users)"
    reason = daemonenv.skip_reason(SHIMMERD, polkit=True)
    if reason:
        return reason
    if None in [uid for _, uid in CALLERS]:
        return "no unprivileged accounts to call as (games, nobody)"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


def interfaces():
    """{interface: {"methods": {name: [in types]}, "properties": {name: [type,
    access]}}} from dbus/*.xml."""
    out = {}
    for path in sorted(glob.glob(os.path.join(REPO, "dbus", "*.xml"))):
        for iface in ET.parse(path).getroot().iter("interface"):
            methods = {}
            for m in iface.iter("method"):
                methods[m.get("name")] = [a.get("type") for a in m.iter("arg")
                                          if a.get("direction", "in") == "in"]
            props = {p.get("name"): [p.get("type"), p.get("access")] for p in iface.iter("property")}
            out[iface.get("name")] = {"methods": methods, "properties": props}
    return out


def test_interfaces_parsed():
    """The fuzzer sees every interface and method the XML declares."""
    ifs = interfaces()
    assert {"org.shimmervpn.Manager1", "org.shimmervpn.Profile1",
            "org.shimmervpn.Session1"} <= set(ifs), ifs
    assert ifs["org.shimmervpn.Manager1"]["methods"]["ImportProfile"] == ["s", "s", "a{sv}"]
    assert ifs["org.shimmervpn.Session1"]["methods"]["ProvideCredentials"] == ["a{ss}"]


def as_uid(uid, argv):
    if uid == 0:
        return list(argv)
    return ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups"] + list(argv)


def alive_and_answering(env):
    """shimmerd answers the calls every client starts with, within 10 s."""
    assert env.daemon.alive(), "shimmerd died:\n" + env.daemon.log_tail(60)
    xml = env.call(daemonenv.ROOT, "org.freedesktop.DBus.Introspectable", "Introspect", None,
                   "(s)", timeout_ms=10000)[0]
    assert "org.shimmervpn.Manager1" in xml
    env.call(daemonenv.ROOT, daemonenv.OM, "GetManagedObjects", None, "(a{oa{sa{sv}}})",
             timeout_ms=10000)
    env.call(daemonenv.ROOT, "org.freedesktop.DBus.Peer", "Ping", None, None, timeout_ms=10000)
    assert env.prop(daemonenv.ROOT, daemonenv.M1, "Version")


# Sends, as another user, a method call whose body GDBus misreads: the
# array's first element ends where GDBus wrongly thinks the array ends (it
# counts the length from before the padding to the elements' alignment), the
# 4-byte element after it is read as the next array's length, 0x80000000.
UNREADABLE = r"""
import sys
from gi.repository import Gio, GLib
c = Gio.DBusConnection.new_for_address_sync(sys.argv[1],
    Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
    | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
body = GLib.Variant("(aa{gn})", ([{}, {"vbb": 0, "": -32768}],))
try:
    c.call_sync("org.shimmervpn", "/org/shimmervpn", "org.shimmervpn.Manager1",
                "ListProfiles", body, None, Gio.DBusCallFlags.NONE, 3000, None)
except GLib.Error as e:
    print(e.message)
"""


def test_shimmerd_outlives_a_message_gdbus_cannot_read():
    """A valid message that GDBus misreads, sent by an unprivileged user to
    a method everyone may call on the project's bus policy: shimmerd must
    still serve, its sessions still up."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    with labmod.Lab() as lab:
        lab.start_openvpn_server({"wrap": "tls-crypt"})
        with daemonenv.ServiceEnv(lab, SHIMMERD, policy="system", polkit=True) as env:
            env.start_daemon()
            profile = env.import_profile("victim", lab.client_config({"inline": True}))
            session = env.connect(profile)
            env.wait_state(session, "connected")
            r = subprocess.run(as_uid(CALLERS[2][1], ["/usr/bin/python3", "-c", UNREADABLE,
                                                      env.bus.address]),
                               capture_output=True, text=True, timeout=30)
            print("the caller saw: %s%s" % (r.stdout, r.stderr))
            time.sleep(1)
            log = env.daemon.read_log(whole=True)
            assert env.daemon.alive(), "shimmerd stopped:\n" + log[-1500:]
            alive_and_answering(env)
            assert env.session_state(session) == "connected"
            assert "connected to the bus again" in env.daemon.read_log(whole=True)


def test_bus_fuzz():
    print("\nbus fuzz: seed %s (replay with BUS_FUZZ_SEED=%s), %.0f s, %d calls per caller "
          "and batch" % (SEED, SEED, SECONDS, CALLS_PER_BATCH))
    worker = open(os.path.join(HERE, "busfuzz.py")).read()
    with labmod.Lab() as lab:
        n = lab.n
        lab.start_openvpn_server({"wrap": "tls-crypt", "keepalive": (2, 10),
                                  "extra": ['push "dhcp-option DNS 10.99.0.53"']},
                                 name="plain")
        plain = lab.client_config({"inline": True, "verb": 4})
        lab.start_openvpn_server({"wrap": "tls-auth", "auth_user_pass": (USERNAME, PASSWORD),
                                  "tunnel_v4": "10.216.%d.0/24" % n,
                                  "tunnel_v6": "fd5e:200:%d::/64" % n}, name="auth")
        asks = lab.client_config({"inline": True, "auth_user_pass": False,
                                  "extra": ["auth-user-pass"]})
        with daemonenv.ServiceEnv(lab, SHIMMERD, policy="open", polkit=True,
                                  resolvconf=True) as env:
            env.start_daemon()
            spec = {"interfaces": interfaces(), "profile": plain,
                    "options": ["bound-to-caller", "configure-network", "username", "password",
                                "key-passphrase", "persistent", "nope"]}
            specs = {}
            for name, text in (("plain", plain), ("asks", asks)):
                p = os.path.join(env.dir, "spec-%s.json" % name)
                with open(p, "w") as f:
                    json.dump(dict(spec, profile=text,
                                   credentials={"username": USERNAME, "password": PASSWORD}
                                   if name == "asks" else {}), f)
                os.chmod(p, 0o644)
                specs[name] = p
            totals = {}
            batch = 0
            deadline = time.monotonic() + SECONDS
            try:
                while time.monotonic() < deadline:
                    procs = []
                    for name, uid in CALLERS:
                        seed = "%s-%d-%s" % (SEED, batch, name)
                        spec_file = specs["asks" if (batch + uid) % 2 else "plain"]
                        argv = ["/usr/bin/python3", "-c", worker, "--address", env.bus.address,
                                "--seed", seed, "--calls", str(CALLS_PER_BATCH),
                                "--spec", spec_file]
                        procs.append((name, seed, subprocess.Popen(
                            as_uid(uid, argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=labmod._child_setup,
                            env=dict(os.environ, LC_ALL="C.UTF-8"))))
                    for name, seed, p in procs:
                        try:
                            out, err = p.communicate(timeout=300)
                        except subprocess.TimeoutExpired:
                            p.kill()
                            out, err = p.communicate()
                            raise AssertionError("caller %s (seed %s) hung:\n%s"
                                                 % (name, seed, err[-2000:]))
                        assert p.returncode == 0, "caller %s (seed %s) broke:\n%s" % (
                            name, seed, err[-3000:])
                        counts = json.loads(out.strip().splitlines()[-1])
                        assert not counts.get("timeouts"), (
                            "shimmerd did not answer in time (seed %s, %s): %s"
                            % (seed, name, counts.get("timed_out_calls")))
                        for k, v in counts.items():
                            if isinstance(v, int):
                                totals[k] = totals.get(k, 0) + v
                    alive_and_answering(env)
                    assert not env.sanitizer_reports(), "\n".join(
                        env.sanitizer_reports()[:20]) + "\n" + env.daemon.log_tail(80)
                    batch += 1
            except BaseException:
                print("---- shimmerd's log (tail) ----\n" + env.daemon.log_tail(80))
                raise
            log = env.daemon.read_log(whole=True)
            print("bus fuzz: %d batches, outcomes %s; shimmerd started %d sessions, %d got "
                  "connected" % (batch, json.dumps(dict(sorted(totals.items())), indent=1),
                                 len(re.findall(r"^\S+ session \d+ of profile", log, re.M)),
                                 len(re.findall(r"^\S+ session \d+ .*: state connected$", log,
                                                re.M))))
            assert totals.get("ok", 0) > 0 and any(k.startswith("error org.shimmervpn.Error.")
                                                   for k in totals), totals

            # The end: a clean stop that undoes every session's network.
            status = env.stop_daemon(timeout=30)
            log = env.daemon.read_log(whole=True)
            assert not env.sanitizer_reports(), "\n".join(env.sanitizer_reports()[:20])
            assert status == 0, "shimmerd exited with %s:\n%s" % (status, log[-4000:])
            assert not [t for t in env.tun_links() if t.startswith("shim")], env.tun_links()
            assert not env.shimmerd_routes(), env.shimmerd_routes()
            assert not env.resolvconf_records(), env.resolvconf_records()
