# SPDX-License-Identifier: MIT
"""shimmerd's D-Bus service end to end (issue 4, item 10).

A real dbus-daemon on a private bus (a system-bus-like policy: the project's
data/org.shimmervpn.conf when it exists), a polkitd stand-in from
python-dbusmock, the network lab (tests/lab/lab.py: an OpenVPN 2.6 server
in one namespace, shimmerd in the other) and the real shimmerctl.

Profiles belong to USER_A, an unprivileged account (games); USER_B
(nobody) plays another local user. Both run shimmerctl, or small python-dbus helpers,
under setpriv. Nothing leaves the lab's namespaces; every process started
here is stopped by its pid and the namespaces are removed by the lab.

    SHIMMERD=... SHIMMERCTL=... python3 -m pytest -q tests/dbus/test_service.py

Needs root; skips with the reason otherwise.
"""
import glob
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "lab"))

import lab as labmod  # noqa: E402
import privbus  # noqa: E402



def _uid_of(*names):
    # dbus-daemon refuses uids that have no passwd entry: use existing,
    # unprivileged accounts.
    for name in names:
        try:
            return pwd.getpwnam(name).pw_uid
        except KeyError:
            pass
    return None


USER_A = _uid_of("games", "man", "daemon")   # owns the profiles
USER_B = _uid_of("nobody")                   # another local user
USERNAME = "alice"
PASSWORD = "correct-horse-battery-staple"
KEY_PASSPHRASE = "shimmer-test"   # of tests/data/client-enc.key
BUS_NAME = "org.shimmervpn"
ROOT = "/org/shimmervpn"
M1 = "org.shimmervpn.Manager1"
P1 = "org.shimmervpn.Profile1"
S1 = "org.shimmervpn.Session1"
PROPS = "org.freedesktop.DBus.Properties"
OM = "org.freedesktop.DBus.ObjectManager"
OWN_ACTIONS = ["org.shimmervpn.profile.import",
               "org.shimmervpn.profile.manage-own",
               "org.shimmervpn.session.control-own"]
PYTHON = "/usr/bin/python3"   # the one with python3-dbus and python3-dbusmock
# Routes the lab's server pushes (they exist only inside the lab's namespaces).
PUSHED_ROUTE, PUSHED_HOST = "10.99.0.0/16", "10.99.1.1"
PUSHED_ROUTE6, PUSHED_HOST6 = "fd5e:99::/64", "fd5e:99::1"



def _find_binary(env, rel):
    """$ENV if set, else the newest REPO/*/REL or REPO/_build/*/REL."""
    path = os.environ.get(env)
    if path:
        return path if os.access(path, os.X_OK) else None
    found = [p for p in glob.glob(os.path.join(REPO, "*", rel))
             + glob.glob(os.path.join(REPO, "_build", "*", rel)) if os.access(p, os.X_OK)]
    return max(found, key=os.path.getmtime) if found else None


SHIMMERD = _find_binary("SHIMMERD", "service/shimmerd")
SHIMMERCTL = _find_binary("SHIMMERCTL", "service/ctl/shimmerctl")


def _skip_reason():
    if os.geteuid() != 0:
        return "needs root (network namespaces, setpriv, a system-like bus)"
    reason = labmod.preflight()
    if reason:
        return reason
    for tool in ("dbus-daemon", "busctl", "gdbus", "setpriv", PYTHON):
        if shutil.which(tool) is None:
            return "%s is not installed" % tool
    r = subprocess.run([PYTHON, "-c", "import dbus, dbusmock"], capture_output=True)
    if r.returncode != 0:
        return "python3-dbus and python3-dbusmock are needed"
    if USER_A is None or USER_B is None:
        return "no unprivileged accounts to act as two users (games, nobody)"
    if SHIMMERD is None:
        return "shimmerd not built (set $SHIMMERD)"
    if SHIMMERCTL is None:
        return "shimmerctl not built (set $SHIMMERCTL)"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


def _pdeathsig():
    labmod._child_setup()


def wait_for(predicate, timeout, what, interval=0.05):
    return labmod.wait_for(predicate, timeout, interval=interval, what=what)


# ------------------------------------------------------------ the private bus

# The polkitd stand-in runs as root; only root (shimmerd, the test) talks to
# it. The rest is a system-bus-like policy with the project's own
# data/org.shimmervpn.conf included (tests/lab/privbus.py).
POLKIT_POLICY = """  <policy user="root">
    <allow own="org.freedesktop.PolicyKit1"/>
    <allow send_destination="org.freedesktop.PolicyKit1"/>
  </policy>
"""

DATA_POLICY = os.path.join(REPO, "data", "org.shimmervpn.conf")


class PrivateBus(privbus.PrivateBus):
    """The private bus in a directory everyone can reach."""

    def __init__(self):
        directory = tempfile.mkdtemp(prefix="shimmer-dbus-")
        os.chmod(directory, 0o755)
        try:
            super().__init__(directory, policy="system", includes=[DATA_POLICY],
                             extra=POLKIT_POLICY)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# ------------------------------------------------------- D-Bus calls by uid

# Runs a list of D-Bus method calls (JSON on stdin) and prints the results
# as JSON: {"ok": true, "reply": [...]} or {"ok": false, "error": NAME}.
CALLER = r"""
import json, sys, dbus
def plain(v):
    if isinstance(v, (dbus.Dictionary, dict)):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (dbus.Array, dbus.Struct, list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dbus.Boolean):
        return bool(v)
    if isinstance(v, (dbus.String, dbus.ObjectPath, dbus.Signature)):
        return str(v)
    if isinstance(v, (dbus.Byte, dbus.Int16, dbus.UInt16, dbus.Int32, dbus.UInt32,
                      dbus.Int64, dbus.UInt64)):
        return int(v)
    if isinstance(v, dbus.Double):
        return float(v)
    return v
bus = dbus.bus.BusConnection(sys.argv[1])
out = []
for c in json.load(sys.stdin):
    try:
        r = bus.call_blocking(c["dest"], c["path"], c["iface"], c["method"], c["sig"],
                              c["args"], timeout=30)
        # dbus-python gives None, the one value, or a tuple of them.
        r = [] if r is None else list(r) if type(r) is tuple else [r]
        out.append({"ok": True, "reply": plain(r)})
    except dbus.DBusException as e:
        out.append({"ok": False, "error": e.get_dbus_name(), "message": e.get_dbus_message()})
print(json.dumps(out))
"""

# Connects a profile and follows the session: prints one JSON object a line
# (session path, states, credential requests), answers credential requests
# with argv[4]; exits at connected/failed/disconnected unless argv[5] is
# "hold" (then it stays on the bus until killed, for bound-to-caller).
DRIVER = r"""
import json, sys, dbus, dbus.mainloop.glib
from gi.repository import GLib
dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
addr, profile, options, answers, mode = sys.argv[1:6]
bus = dbus.bus.BusConnection(addr)
options = json.loads(options)
answers = json.loads(answers)
loop = GLib.MainLoop()
session = [None]
last = [None]
def say(**kw):
    print(json.dumps(kw), flush=True)
def state_changed(iface, changed, invalidated, path=None):
    if iface != "org.shimmervpn.Session1" or path != session[0]:
        return
    if "State" in changed and changed["State"] != last[0]:
        last[0] = str(changed["State"])
        props = bus.call_blocking("org.shimmervpn", path, "org.freedesktop.DBus.Properties",
                                  "GetAll", "s", ["org.shimmervpn.Session1"])
        say(event="state", state=last[0], reason=str(props.get("StateReason", "")))
        if mode != "hold" and last[0] in ("connected", "failed", "disconnected"):
            loop.quit()
def creds(fields, prompt, echo, path=None):
    if path != session[0]:
        return
    say(event="credentials", fields=[str(f) for f in fields], prompt=str(prompt))
    if answers is not None:
        bus.call_blocking("org.shimmervpn", path, "org.shimmervpn.Session1",
                          "ProvideCredentials", "a{ss}", [answers])
bus.add_signal_receiver(state_changed, "PropertiesChanged", "org.freedesktop.DBus.Properties",
                        "org.shimmervpn", None, path_keyword="path")
bus.add_signal_receiver(creds, "CredentialsRequested", "org.shimmervpn.Session1",
                        "org.shimmervpn", None, path_keyword="path")
opts = dbus.Dictionary({k: v for k, v in options.items()}, signature="sv")
try:
    path = bus.call_blocking("org.shimmervpn", profile, "org.shimmervpn.Profile1", "Connect",
                             "a{sv}", [opts])
except dbus.DBusException as e:
    say(event="error", error=e.get_dbus_name(), message=e.get_dbus_message())
    sys.exit(1)
session[0] = str(path)
say(event="session", path=session[0])
props = bus.call_blocking("org.shimmervpn", path, "org.freedesktop.DBus.Properties", "GetAll",
                          "s", ["org.shimmervpn.Session1"])
state_changed("org.shimmervpn.Session1", {"State": props["State"]}, [], path=session[0])
GLib.timeout_add_seconds(40, loop.quit)
loop.run()
"""


def as_uid(uid, argv):
    if uid is None or uid == 0:
        return list(argv)
    return ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups"] + list(argv)


class Harness:
    """Everything a test needs: the bus, polkit, the lab and shimmerd."""

    def __init__(self, bus, polkit, lab, server, state_dir, userdir):
        self.bus, self.polkit, self.lab, self.server = bus, polkit, lab, server
        self.state_dir, self.userdir = state_dir, userdir
        self.daemon = None
        self.helpers = []

    # -- processes

    def start_daemon(self, timeout=15):
        self.daemon = self.lab.spawn_in_client(
            [SHIMMERD, "--bus-address", self.bus.address, "--state-dir", self.state_dir,
             "--polkit-bus-address", self.bus.address],
            name=self.lab._unique("shimmerd"))
        wait_for(lambda: self.name_has_owner() or not self.daemon.alive(), timeout,
                 "shimmerd to own %s" % BUS_NAME)
        assert self.daemon.alive(), "shimmerd exited:\n" + self.daemon.log_tail()
        return self.daemon

    def stop_daemon(self, timeout=15):
        status = self.daemon.stop(timeout=timeout)
        wait_for(lambda: not self.name_has_owner(), 5, "the bus name to be released")
        return status

    def spawn(self, argv, uid=None, output=None):
        """A helper process (stopped by pid at the end of the test); its
        output goes to pipes, or to the file OUTPUT."""
        out = open(output, "w") if output else subprocess.PIPE
        p = subprocess.Popen(as_uid(uid, argv), stdin=subprocess.PIPE, stdout=out,
                             stderr=subprocess.STDOUT if output else subprocess.PIPE,
                             text=True, preexec_fn=_pdeathsig,
                             env=dict(os.environ, LC_ALL="C"))
        if output:
            out.close()
        self.helpers.append(p)
        return p

    def stop_helpers(self):
        for p in self.helpers:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        self.helpers = []

    # -- D-Bus

    def calls(self, calls, uid=None):
        """Runs CALLS [(path, iface, method, signature, args)] as UID."""
        spec = [{"dest": BUS_NAME, "path": c[0], "iface": c[1], "method": c[2], "sig": c[3],
                 "args": list(c[4])} for c in calls]
        r = subprocess.run(as_uid(uid, [PYTHON, "-c", CALLER, self.bus.address]),
                           input=json.dumps(spec), capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def call(self, path, iface, method, sig="", args=(), uid=None):
        return self.calls([(path, iface, method, sig, args)], uid)[0]

    def call_ok(self, path, iface, method, sig="", args=(), uid=None):
        r = self.call(path, iface, method, sig, args, uid)
        assert r["ok"], "%s.%s on %s: %s" % (iface, method, path, r)
        return r["reply"]

    def name_has_owner(self):
        r = subprocess.run(["busctl", "--address=" + self.bus.address, "call",
                            "org.freedesktop.DBus", "/org/freedesktop/DBus",
                            "org.freedesktop.DBus", "NameHasOwner", "s", BUS_NAME],
                           capture_output=True, text=True, timeout=10)
        return r.returncode == 0 and r.stdout.strip() == "b true"

    def props(self, path, iface, uid=None):
        return self.call_ok(path, PROPS, "GetAll", "s", [iface], uid)[0]

    def polkit_allow(self, actions):
        r = subprocess.run(["busctl", "--address=" + self.bus.address, "call",
                            "org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority",
                            "org.freedesktop.DBus.Mock", "SetAllowed", "as", str(len(actions))]
                           + list(actions), capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, r.stderr

    # -- shimmerctl

    def ctl(self, *args, uid=USER_A, input=None, timeout=60):
        argv = [SHIMMERCTL, "--bus-address", self.bus.address] + list(args)
        return subprocess.run(as_uid(uid, argv), input=input, capture_output=True, text=True,
                              stdin=None if input is not None else subprocess.DEVNULL,
                              timeout=timeout, env=dict(os.environ, LC_ALL="C"))

    def ctl_json(self, *args, uid=USER_A):
        r = self.ctl(*args, "--json", uid=uid)
        assert r.returncode == 0, "shimmerctl %s: %s%s" % (" ".join(args), r.stdout, r.stderr)
        return json.loads(r.stdout)

    # -- profiles

    def profile_text(self, extra=(), key="client.key"):
        """A profile for the lab's server that reads its files from
        USER_A's directory and asks for the user name and password."""
        text = self.lab.client_config({"auth_user_pass": False, "key": key,
                                       "extra": ["auth-user-pass"] + list(extra)}, self.server)
        return text.replace(labmod.DATA + "/", self.userdir + "/")

    def inline_text(self):
        """profile_text() made self-contained by `shimmerctl check --inline`."""
        path = self.write_profile("inline", self.profile_text())
        r = subprocess.run([SHIMMERCTL, "check", "--inline", path], capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def write_profile(self, name, text):
        path = os.path.join(self.userdir, name + ".ovpn")
        with open(path, "w") as f:
            f.write(text)
        os.chown(path, USER_A, USER_A)
        os.chmod(path, 0o600)
        return path

    def import_profile(self, name, *args, key="client.key"):
        path = self.write_profile(name, self.profile_text(key=key))
        r = self.ctl("import", path, *args)
        assert r.returncode == 0, r.stdout + r.stderr
        m = re.search(r"(/org/shimmervpn/profile/\S+?)\)?$", r.stdout.strip())
        assert m, r.stdout
        return m.group(1)

    def remove_profile(self, name, uid=USER_A):
        r = self.ctl("remove", name, uid=uid)
        assert r.returncode == 0, r.stdout + r.stderr

    def session_of(self, profile_path):
        s = self.props(profile_path, P1)["ActiveSession"]
        return None if s == "/" else s

    def ping_through_tunnel(self, count=3):
        """Pings the server's tunnel address; true only if the client
        namespace routes it through the session's tun device and the replies
        arrived on it (the veth would reach that address too)."""
        addr = self.server.tunnel_v4
        dev = self.lab.route_dev(addr)
        if dev not in self.tun_devices():
            return False
        rx = self.lab._rx_packets(dev)
        r = self.lab.ping_from_client(addr, count=count, interval=0.1, through_tunnel=False)
        return r.ok and self.lab._rx_packets(dev) - rx >= r.received

    def tun_devices(self):
        r = self.lab.run_in_client(["ip", "-o", "link", "show", "type", "tun"], check=False)
        return re.findall(r"^\d+: ([^:@]+)", r.stdout, re.M)

    def tunnel_routes(self):
        r = self.lab.run_in_client(["ip", "route", "show"], check=False)
        r6 = self.lab.run_in_client(["ip", "-6", "route", "show"], check=False)
        return [line for line in (r.stdout + r6.stdout).splitlines()
                if re.search(r"\bdev (shim|tun)", line)]

    def wait_tunnel_gone(self, timeout=10):
        wait_for(lambda: not self.tun_devices() and not self.tunnel_routes(), timeout,
                 "the tun device and its routes to be removed")

    def wait_session_gone_or(self, session, states, timeout=15):
        """Waits until SESSION is in one of STATES or no longer exists;
        returns the state (None when the object is gone)."""
        result = {}

        def check():
            r = self.call(session, PROPS, "GetAll", "s", [S1])
            if not r["ok"]:
                result["state"] = None
                return True
            state = r["reply"][0].get("State")
            if state in states:
                result["state"] = state
                result["reason"] = r["reply"][0].get("StateReason")
                return True
            return False
        wait_for(check, timeout, "session %s to reach %s" % (session, "/".join(states)),
                 interval=0.2)
        return result

    def driver(self, profile, options, answers=None, mode="until-final", uid=USER_A):
        return self.spawn([PYTHON, "-c", DRIVER, self.bus.address, profile, json.dumps(options),
                           json.dumps(answers), mode], uid=uid)


def read_events(proc, until, timeout=30):
    """JSON lines of a DRIVER until UNTIL(event) is true; returns them all."""
    events = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        ev = json.loads(line)
        events.append(ev)
        if until(ev):
            return events
    raise AssertionError("driver: no final event in %ss; events %s; stderr %s"
                         % (timeout, events, proc.stderr.read() if proc.poll() is not None
                            else ""))


def secret_needles():
    """Strings that must never leave the daemon: the password, the key
    passphrase and every line of the private and static keys."""
    needles = {PASSWORD, KEY_PASSPHRASE}
    for name in ("client.key", "client-enc.key", "tc.key"):
        with open(labmod.fixture(name)) as f:
            for line in f:
                line = line.strip()
                if len(line) >= 16 and not line.startswith("-----") and not line.startswith("#"):
                    needles.add(line)
    return needles


def assert_no_secrets(text, where):
    for n in secret_needles():
        assert n not in text, "secret material (%s...) in %s" % (n[:8], where)


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def env():
    bus = polkit = lab = None
    userdir = tempfile.mkdtemp(prefix="shimmer-user-")
    state_dir = tempfile.mkdtemp(prefix="shimmer-state-")
    harness = None
    try:
        bus = PrivateBus()
        polkit_log = open(os.path.join(bus.dir, "polkitd.log"), "w")
        polkit = subprocess.Popen(
            [PYTHON, "-m", "dbusmock", "--system", "--template", "polkitd"],
            stdin=subprocess.DEVNULL, stdout=polkit_log, stderr=subprocess.STDOUT,
            env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus.address), preexec_fn=_pdeathsig)
        polkit_log.close()
        # The user's own copies of the keys: shimmerctl reads them as USER_A.
        os.chown(userdir, USER_A, USER_A)
        os.chmod(userdir, 0o700)
        for name in ("ca.crt", "client.crt", "client.key", "client-enc.key", "tc.key"):
            dst = os.path.join(userdir, name)
            shutil.copyfile(labmod.fixture(name), dst)
            os.chown(dst, USER_A, USER_A)
            os.chmod(dst, 0o600)
        lab = labmod.Lab()
        lab.setup()
        server = lab.start_openvpn_server({"wrap": "tls-crypt",
                                           "auth_user_pass": (USERNAME, PASSWORD),
                                           "push_routes": (PUSHED_ROUTE, PUSHED_ROUTE6)})
        harness = Harness(bus, polkit, lab, server, state_dir, userdir)
        wait_for(lambda: subprocess.run(
            ["busctl", "--address=" + bus.address, "status", "org.freedesktop.PolicyKit1"],
            capture_output=True).returncode == 0 or polkit.poll() is not None, 10,
            "the polkitd stand-in")
        assert polkit.poll() is None, "the polkitd stand-in exited"
        harness.polkit_allow(OWN_ACTIONS)
        harness.start_daemon()
        yield harness
    finally:
        if harness:
            harness.stop_helpers()
        if lab:
            lab.close()   # stops shimmerd and the server by pid, removes the namespaces
        if polkit and polkit.poll() is None:
            polkit.terminate()
            polkit.wait(5)
        if bus:
            bus.close()
        shutil.rmtree(userdir, ignore_errors=True)
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture
def h(env, request):
    """The module's harness, with polkit reset to the shipped defaults and
    helpers stopped after each test; prints logs when a test failed."""
    env.polkit_allow(OWN_ACTIONS)
    if env.daemon is None or not env.daemon.alive():
        env.start_daemon()
    failed = request.session.testsfailed
    yield env
    env.stop_helpers()
    if request.session.testsfailed > failed:
        print("\n---- logs ----")
        print(env.lab.logs(60))
    clean_up_after(env)


def clean_up_after(env):
    """What a test left, as when it failed half-way (its finally may not
    have run to the end): every session ended, every profile removed, as
    root, so that the next test starts from an empty daemon. Best effort:
    it reports, the next test's own checks decide."""
    if env.daemon is None or not env.daemon.alive():
        return
    try:
        sessions = env.call(ROOT, M1, "ListSessions", uid=0)
        profiles = env.call(ROOT, M1, "ListProfiles", uid=0)
        calls = [(p, S1, "Disconnect", "", []) for p in
                 (sessions["reply"][0] if sessions["ok"] else [])]
        calls += [(p, P1, "Remove", "", []) for p in
                  (profiles["reply"][0] if profiles["ok"] else [])]
        if calls:
            env.calls(calls, uid=0)
        wait_for(lambda: not env.tun_devices(), 15, "the sessions' tun devices to go")
    except Exception as e:  # the next test's checks say what is wrong
        print("clean-up after the test: %s" % e)


# --------------------------------------------------------------------- tests

def test_shimmerctl_without_daemon():
    # Exit codes that need no daemon: usage (2), unreachable (3).
    r = subprocess.run([SHIMMERCTL, "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for code in ("0 ", "1 ", "2 ", "3 ", "4 "):
        assert "\n  " + code in r.stdout, r.stdout
    r = subprocess.run([SHIMMERCTL, "list", "--bogus"], capture_output=True, text=True)
    assert r.returncode == 2
    r = subprocess.run([SHIMMERCTL, "connect"], capture_output=True, text=True)
    assert r.returncode == 2
    r = subprocess.run([SHIMMERCTL, "--bus-address", "unix:path=/nonexistent/bus", "list"],
                       capture_output=True, text=True)
    assert r.returncode == 3, r.stderr


def test_introspection_shows_the_tree(h):
    profile = h.import_profile("tree")
    try:
        r = subprocess.run(["busctl", "--address=" + h.bus.address, "introspect", BUS_NAME, ROOT],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, r.stderr
        for item in (OM, M1, ".ImportProfile", ".CheckConfig", ".ListProfiles", ".ListSessions",
                     ".Version", ".DnsBackend", ".GetManagedObjects"):
            assert item in r.stdout, "%s missing from:\n%s" % (item, r.stdout)
        r = subprocess.run(["busctl", "--address=" + h.bus.address, "introspect", BUS_NAME,
                            profile], capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, r.stderr
        for item in (P1, ".Connect", ".Remove", ".Rename", ".GetConfiguration", ".Credentials",
                     ".ActiveSession", ".Remotes", ".Owner"):
            assert item in r.stdout, "%s missing from:\n%s" % (item, r.stdout)
        r = subprocess.run(["busctl", "--address=" + h.bus.address, "tree", BUS_NAME],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 0 and profile in r.stdout, r.stdout + r.stderr

        objects = h.call_ok(ROOT, OM, "GetManagedObjects")[0]
        assert profile in objects and P1 in objects[profile], objects
        props = objects[profile][P1]
        assert props["Owner"] == USER_A
        assert props["Name"] == "tree"
        assert props["Credentials"] == "prompt"
        assert props["ActiveSession"] == "/"
        assert any(":%d" % h.server.port in r for r in props["Remotes"]), props["Remotes"]
        # What ListProfiles gives the owner is in the tree too.
        listed = h.call_ok(ROOT, M1, "ListProfiles", uid=USER_A)[0]
        assert profile in listed
        version = h.call_ok(ROOT, PROPS, "Get", "ss", [M1, "Version"])[0]
        assert version
        backend = h.call_ok(ROOT, PROPS, "Get", "ss", [M1, "DnsBackend"])[0]
        assert backend in ("resolved", "resolvconf", "none")
    finally:
        h.remove_profile("tree")


def test_rename(h):
    profile = h.import_profile("before")
    other = h.import_profile("other")
    try:
        r = h.ctl("rename", "before", "after")
        assert r.returncode == 0, r.stderr
        assert h.props(profile, P1)["Name"] == "after"
        r = h.ctl("rename", "after", "other")   # taken
        assert r.returncode == 1, r.stdout + r.stderr
        assert h.props(profile, P1)["Name"] == "after"
        r = h.ctl("rename", profile, "again", uid=USER_B)
        assert r.returncode == 4, r.stdout + r.stderr
    finally:
        h.remove_profile(other)
        h.remove_profile(profile)


def test_import_reads_files_as_the_user(h):
    # A profile naming a key USER_A cannot read: shimmerctl refuses it
    # locally (the daemon never opens a user's files).
    # (A root-only copy: a fresh clone's fixtures may be world-readable.)
    secret_dir = tempfile.mkdtemp(prefix="shimmer-root-only-")
    os.chmod(secret_dir, 0o700)
    root_only_key = os.path.join(secret_dir, "client.key")
    shutil.copyfile(labmod.fixture("client.key"), root_only_key)
    os.chmod(root_only_key, 0o600)
    text = h.profile_text().replace(os.path.join(h.userdir, "client.key"), root_only_key)
    path = h.write_profile("unreadable", text)
    r = h.ctl("import", path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "client.key" in r.stderr
    shutil.rmtree(secret_dir, ignore_errors=True)
    assert "unreadable" not in json.dumps(h.ctl_json("list"))
    # A refused configuration: the daemon's InvalidConfig or a local error,
    # never a profile.
    path = h.write_profile("broken", "client\nremote\ndev tun\n")
    r = h.ctl("import", path)
    assert r.returncode == 1
    # CheckConfig takes a self-contained text and stores nothing; a text
    # that names files is refused (the daemon reads no files).
    usable, diags = h.call_ok(ROOT, M1, "CheckConfig", "s", [h.profile_text()], uid=USER_A)
    assert usable is False and diags, diags
    usable, diags = h.call_ok(ROOT, M1, "CheckConfig", "s", [h.inline_text()], uid=USER_A)
    assert usable is True, diags
    usable, diags = h.call_ok(ROOT, M1, "CheckConfig", "s", ["client\nbogus-directive 1\n"],
                              uid=USER_A)
    assert usable is False and diags, diags
    assert "inline" not in json.dumps(h.ctl_json("list"))


def test_import_connect_ping_counters_disconnect(h):
    profile = h.import_profile("office")
    monitor_log = os.path.join(h.lab.dir, "monitor.log")
    monitor = h.spawn([SHIMMERCTL, "--bus-address", h.bus.address, "monitor"], uid=USER_A,
                      output=monitor_log)

    def monitor_output():
        with open(monitor_log) as f:
            return f.read()
    try:
        # Its first line says it follows the daemon: it is subscribed.
        wait_for(lambda: "on the bus" in monitor_output(), 10, "shimmerctl monitor to start")
        listed = h.ctl_json("list")
        assert [p["Path"] for p in listed if p["Name"] == "office"] == [profile]
        shown = h.ctl_json("show", "office")
        assert shown["Owner"] == USER_A and shown["Credentials"] == "prompt"
        assert isinstance(shown["Configuration"], dict)

        fds_idle = h.daemon.fd_count()
        r = h.ctl("connect", "office", "--wait", input="%s\n%s\n" % (USERNAME, PASSWORD),
                  timeout=40)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "Connected" in r.stdout
        assert PASSWORD not in r.stdout + r.stderr
        # A connected session holds no more descriptors than the daemon
        # budgets for one (shimmer_tunnel_max_descriptors(): 3, and the data
        # path's eventfd and 3 per worker, one worker per processor up to 8).
        workers = min(max(os.cpu_count() or 1, 1), 8)
        used = h.daemon.fd_count() - fds_idle
        assert 0 < used <= 4 + 3 * workers, used

        status = h.ctl_json("status", "office")
        assert status["State"] == "connected"
        assert status["Owner"] == USER_A
        assert status["Interface"] in h.tun_devices()
        assert status["Addresses"], status
        assert status["Cipher"] == "AES-256-GCM"
        assert status["TlsVersion"]
        assert status["ConnectedSince"] > 0
        assert status["RemoteAddress"]
        session = status["Path"]
        assert h.session_of(profile) == session
        assert session in h.call_ok(ROOT, M1, "ListSessions", uid=USER_A)[0]
        # The pushed routes are set, on the tun, and announced.
        assert PUSHED_ROUTE in status["Routes"] and PUSHED_ROUTE6 in status["Routes"], status
        assert h.lab.route_dev(PUSHED_HOST) == status["Interface"]
        assert h.lab.route_dev(PUSHED_HOST6) == status["Interface"]
        # The session is in the object tree too.
        objects = h.call_ok(ROOT, OM, "GetManagedObjects")[0]
        assert S1 in objects[session] and objects[session][S1]["State"] == "connected"
        assert objects[profile][P1]["ActiveSession"] == session
        tree = subprocess.run(["busctl", "--address=" + h.bus.address, "tree", BUS_NAME],
                              capture_output=True, text=True, timeout=10)
        assert session in tree.stdout and profile in tree.stdout, tree.stdout

        # Restart: a new TLS session on the same tun, counted.
        h.call_ok(session, S1, "Restart", uid=USER_A)
        wait_for(lambda: h.props(session, S1)["Reconnects"] >= 1 and
                 h.props(session, S1)["State"] == "connected", 20,
                 "the session to reconnect after Restart", interval=0.2)
        status = h.ctl_json("status", session)

        before = status["PacketsIn"], status["BytesIn"], status["PacketsOut"], status["BytesOut"]
        assert h.ping_through_tunnel(count=5)
        # The counters are announced at most once a second.
        def risen():
            s = h.props(session, S1, uid=USER_A)
            now = s["PacketsIn"], s["BytesIn"], s["PacketsOut"], s["BytesOut"]
            return all(n >= b + 5 for n, b in zip(now[::2], before[::2])) and \
                all(n > b for n, b in zip(now[1::2], before[1::2]))
        wait_for(risen, 5, "the session's counters to count the pings", interval=0.25)
        human = h.ctl("status", "office")
        assert human.returncode == 0 and "connected" in human.stdout, human.stdout
        assert re.search(r"/s\b", human.stdout), human.stdout   # rates

        r = h.ctl("disconnect", "office")
        assert r.returncode == 0, r.stdout + r.stderr
        h.wait_tunnel_gone()
        assert h.lab.route_dev(h.server.tunnel_v4) == "lab-cli"
        assert h.lab.route_dev(PUSHED_HOST) == "lab-cli"    # the lab's default route
        assert h.lab.route_dev(PUSHED_HOST6) == "lab-cli"
        state = h.wait_session_gone_or(session, ("disconnected",))
        assert state["state"] in ("disconnected", None)
        wait_for(lambda: h.session_of(profile) is None, 10, "ActiveSession to be reset")
    finally:
        monitor.send_signal(signal.SIGINT)
        monitor.wait(10)
        h.remove_profile("office")
    out = monitor_output()
    assert monitor.returncode == 0, out
    # monitor printed the events of the session, one a line.
    assert re.search(r"session/\S+.*State=connected", out), out
    assert re.search(r"session/\S+.*State=disconnected", out), out
    assert re.search(r"profile/\S+.*ActiveSession=", out), out
    assert re.search(r"session/\S+ 'office'", out), out
    assert_no_secrets(out, "shimmerctl monitor")


def test_credentials_requested_signal(h):
    # Connect without credentials: the session asks through
    # CredentialsRequested and goes on after ProvideCredentials.
    profile = h.import_profile("asks")
    try:
        d = h.driver(profile, {}, {"username": USERNAME, "password": PASSWORD})
        events = read_events(d, lambda e: e["event"] in ("error",) or
                             e.get("state") in ("connected", "failed", "disconnected"))
        asked = [e for e in events if e["event"] == "credentials"]
        assert asked and "password" in asked[0]["fields"], events
        assert events[-1].get("state") == "connected", events
        # Nothing is asked now: answering is an error.
        session = h.session_of(profile)
        r = h.call(session, S1, "ProvideCredentials", "a{ss}", [{"password": "x"}], uid=USER_A)
        assert not r["ok"] and r["error"].startswith("org.shimmervpn.Error."), r
        r = h.ctl("disconnect", session)
        assert r.returncode == 0, r.stderr
        h.wait_tunnel_gone()
    finally:
        h.remove_profile("asks")


def test_key_passphrase_prompt_through_shimmerctl(h):
    # An encrypted private key: shimmerctl answers the daemon's request for
    # the passphrase (read from standard input here; from the terminal
    # without echo for a person).
    h.import_profile("enckey", key="client-enc.key")
    try:
        r = h.ctl("connect", "enckey", "--wait",
                  input="%s\n%s\n%s\n" % (USERNAME, PASSWORD, KEY_PASSPHRASE), timeout=40)
        assert r.returncode == 0, r.stdout + r.stderr
        assert KEY_PASSPHRASE not in r.stdout + r.stderr
        r = h.ctl("disconnect", "enckey")
        assert r.returncode == 0, r.stderr
        h.wait_tunnel_gone()
    finally:
        h.remove_profile("enckey")


def test_wrong_credentials_fail_with_a_reason(h):
    profile = h.import_profile("wrongpw")
    try:
        r = h.ctl("connect", "wrongpw", "--wait", input="%s\nnot-the-password\n" % USERNAME,
                  timeout=40)
        assert r.returncode == 1, r.stdout + r.stderr
        m = re.search(r"Connection failed: (.+)", r.stderr)
        assert m and m.group(1).strip(), r.stderr
        assert "not-the-password" not in r.stdout + r.stderr
        wait_for(lambda: h.session_of(profile) is None, 15, "the failed session to go")
        # The same through the API: State failed, StateReason set.
        d = h.driver(profile, {"username": USERNAME, "password": "still-wrong"})
        events = read_events(d, lambda e: e["event"] == "error" or
                             e.get("state") in ("connected", "failed", "disconnected"))
        assert events[-1].get("state") == "failed", events
        assert events[-1]["reason"], events
        assert not h.tun_devices()
        wait_for(lambda: h.session_of(profile) is None, 15, "the failed session to go")
    finally:
        h.remove_profile("wrongpw")


def test_other_user_can_neither_control_nor_remove_nor_read_secrets(h):
    profile = h.import_profile("mine")
    # USER_B watches: the owner's session logs must not reach it.
    monitor_log = os.path.join(h.lab.dir, "monitor-b.log")
    monitor = h.spawn([SHIMMERCTL, "--bus-address", h.bus.address, "monitor"], uid=USER_B,
                      output=monitor_log)
    wait_for(lambda: "on the bus" in open(monitor_log).read(), 10, "shimmerctl monitor")
    try:
        r = h.ctl("connect", "mine", "--wait", input="%s\n%s\n" % (USERNAME, PASSWORD),
                  timeout=40)
        assert r.returncode == 0, r.stdout + r.stderr
        session = h.session_of(profile)
        assert session

        # shimmerctl as USER_B: the profile is not among B's, and acting on
        # it by path is refused.
        assert "mine" not in h.ctl("list", uid=USER_B).stdout
        r = h.ctl("remove", profile, uid=USER_B)
        assert r.returncode == 4, r.stdout + r.stderr
        r = h.ctl("disconnect", session, uid=USER_B)
        assert r.returncode == 4, r.stdout + r.stderr
        r = h.ctl("connect", profile, uid=USER_B, input="bob\nguess\n")
        assert r.returncode == 4, r.stdout + r.stderr

        # The API as USER_B: every control method is refused.
        results = h.calls([
            (profile, P1, "Remove", "", []),
            (profile, P1, "Rename", "s", ["stolen"]),
            (profile, P1, "Connect", "a{sv}", [{}]),
            (session, S1, "Disconnect", "", []),
            (session, S1, "Restart", "", []),
            (session, S1, "ProvideCredentials", "a{ss}", [{"password": "x"}]),
        ], uid=USER_B)
        for r in results:
            assert not r["ok"], results
            assert r["error"] in ("org.shimmervpn.Error.NotAuthorized",
                                  "org.freedesktop.DBus.Error.AccessDenied"), results
        assert h.props(session, S1)["State"] == "connected"
        assert h.props(profile, P1)["Name"] == "mine"
        assert profile not in h.call_ok(ROOT, M1, "ListProfiles", uid=USER_B)[0]
        assert session not in h.call_ok(ROOT, M1, "ListSessions", uid=USER_B)[0]

        # Nobody sees a secret: not B, not the owner, not root.
        for uid in (USER_B, USER_A, 0):
            seen = h.calls([(ROOT, OM, "GetManagedObjects", "", []),
                            (profile, PROPS, "GetAll", "s", [P1]),
                            (session, PROPS, "GetAll", "s", [S1]),
                            (profile, P1, "GetConfiguration", "", [])], uid=uid)
            assert_no_secrets(json.dumps(seen), "D-Bus output seen by uid %d" % uid)
        config = h.call_ok(profile, P1, "GetConfiguration", uid=USER_A)[0]
        assert json.loads(config)
        for cmd in (("show", "mine"), ("show", "mine", "--json"), ("status", "mine", "--json"),
                    ("list", "--json")):
            r = h.ctl(*cmd)
            assert r.returncode == 0, r.stderr
            assert_no_secrets(r.stdout + r.stderr, "shimmerctl " + " ".join(cmd))

        # An administrator may (polkit's "any" actions), and then really does.
        h.polkit_allow(OWN_ACTIONS + ["org.shimmervpn.profile.manage-any",
                                      "org.shimmervpn.session.control-any"])
        r = h.ctl("disconnect", session, uid=USER_B)
        assert r.returncode == 0, r.stdout + r.stderr
        h.wait_tunnel_gone()
    finally:
        h.polkit_allow(OWN_ACTIONS)
        h.remove_profile("mine")
        monitor.send_signal(signal.SIGINT)
        monitor.wait(10)
    seen = open(monitor_log).read()
    assert not re.search(r"\[(info|warning|error|debug)\]", seen), seen
    assert_no_secrets(seen, "another user's shimmerctl monitor")


def test_polkit_denies_by_default(h):
    h.polkit_allow([])
    path = h.write_profile("denied", h.profile_text())
    r = h.ctl("import", path)
    assert r.returncode == 4, r.stdout + r.stderr
    # root is always allowed.
    r = h.ctl("import", path, "--name", "root-owned", uid=0)
    assert r.returncode == 0, r.stdout + r.stderr
    h.polkit_allow(OWN_ACTIONS)
    r = h.ctl("remove", "root-owned", uid=USER_A)
    assert r.returncode != 0
    r = h.ctl("remove", "root-owned", uid=0)
    assert r.returncode == 0, r.stdout + r.stderr


def test_bus_policy_only_root_owns_the_name(h):
    r = subprocess.run(as_uid(USER_B, [
        PYTHON, "-c",
        "import dbus, sys; b = dbus.bus.BusConnection(sys.argv[1]); "
        "b.request_name('org.shimmervpn', dbus.bus.NAME_FLAG_DO_NOT_QUEUE)", h.bus.address]),
        capture_output=True, text=True, timeout=20)
    assert r.returncode != 0 and "AccessDenied" in r.stderr, r.stderr


def test_malformed_calls_get_errors_and_the_daemon_lives(h):
    profile = h.import_profile("target")
    try:
        huge = "x" * (2 * 1024 * 1024)
        good = h.inline_text()
        bad = [
            # wrong types and arity
            (ROOT, M1, "ImportProfile", "s", ["only-a-name"]),
            (ROOT, M1, "ImportProfile", "iss", [1, "a", "b"]),
            (ROOT, M1, "ImportProfile", "ssa{ss}", ["n", good, {"persistent": "yes"}]),
            (ROOT, M1, "ImportProfile", "ssa{sv}", ["n", good, {"persistent": "yes"}]),
            (ROOT, M1, "CheckConfig", "u", [7]),
            (profile, P1, "Connect", "s", ["bound-to-caller"]),
            (profile, P1, "Rename", "u", [1]),
            # huge strings
            (ROOT, M1, "ImportProfile", "ssa{sv}", [huge[:4096], good, {}]),
            (ROOT, M1, "ImportProfile", "ssa{sv}", ["", good, {}]),
            (ROOT, M1, "ImportProfile", "ssa{sv}", ["huge", good + "#" + huge, {}]),
            (ROOT, M1, "ImportProfile", "ssa{sv}", ["huge", huge, {}]),
            (ROOT, M1, "CheckConfig", "s", [huge]),
            (profile, P1, "Rename", "s", [huge[:1000]]),
            (profile, P1, "Rename", "s", [""]),
            (profile, P1, "Rename", "s", ["tab\tname"]),
            # unknown option keys and wrong option types
            (profile, P1, "Connect", "a{sv}", [{"no-such-option": True}]),
            (profile, P1, "Connect", "a{sv}", [{"bound-to-caller": "yes"}]),
            (profile, P1, "Connect", "a{sv}", [{"password": "p" * 100000}]),
            (ROOT, M1, "ImportProfile", "ssa{sv}", ["n2", good, {"no-such-option": 1}]),
            # unknown paths, interfaces and methods
            (ROOT + "/profile/doesnotexist", P1, "Connect", "a{sv}", [{}]),
            (ROOT + "/profile/doesnotexist", P1, "Remove", "", []),
            (ROOT + "/session/999999", S1, "Disconnect", "", []),
            (ROOT + "/session/999999", PROPS, "GetAll", "s", [S1]),
            (ROOT + "/nothing/here", M1, "ListProfiles", "", []),
            (ROOT, M1, "NoSuchMethod", "", []),
            (ROOT, "org.shimmervpn.NoSuchInterface", "Foo", "", []),
            # read-only properties
            (ROOT, PROPS, "Set", "ssv", [M1, "Version", "9"]),
            (profile, PROPS, "Set", "ssv", [P1, "Owner", 0]),
            (profile, PROPS, "Set", "ssv", [P1, "Name", "renamed-by-set"]),
        ]
        # Wrong types are checked against the signatures the client claims:
        # dbus-python sends exactly what it is told.
        for uid in (USER_A, 0):
            calls = bad
            if uid == USER_A:   # a name the caller has already
                calls = bad + [(ROOT, M1, "ImportProfile", "ssa{sv}", ["target", good, {}])]
            results = h.calls(calls, uid=uid)
            for call, r in zip(calls, results):
                assert not r["ok"], "%s.%s(%s) %s as uid %d was accepted: %s" % (
                    call[1], call[2], call[3], repr(call[4])[:100], uid, r)
                assert r["error"], r
                assert h.daemon.alive(), "shimmerd died on %s.%s(%s):\n%s" % (
                    call[1], call[2], call[3], h.daemon.log_tail())
        # busctl and gdbus with signatures that do not match.
        for argv in (
            ["busctl", "--address=" + h.bus.address, "call", BUS_NAME, ROOT, M1,
             "ImportProfile", "s", "x"],
            ["busctl", "--address=" + h.bus.address, "call", BUS_NAME, profile, P1,
             "Connect", "s", "x"],
            ["busctl", "--address=" + h.bus.address, "call", BUS_NAME, ROOT + "/profile/nope",
             P1, "Remove"],
            ["gdbus", "call", "--address", h.bus.address, "--dest", BUS_NAME,
             "--object-path", profile, "--method", P1 + ".Connect", "{'bogus': <1>}"],
        ):
            r = subprocess.run(as_uid(USER_A, argv), capture_output=True, text=True, timeout=20)
            assert r.returncode != 0, "%s was accepted: %s" % (argv, r.stdout)
        # Nothing was created, nothing was renamed, the daemon still answers.
        assert h.daemon.alive(), h.daemon.log_tail()
        names = [p["Name"] for p in h.ctl_json("list")]
        assert "target" in names
        assert not {"n", "n2", "huge", "renamed-by-set", "stolen"} & set(names)
        assert h.session_of(profile) is None
        assert h.call_ok(ROOT, PROPS, "Get", "ss", [M1, "Version"])[0]
    finally:
        h.remove_profile("target")


def test_bound_to_caller_ends_with_its_caller(h):
    profile = h.import_profile("bound")
    try:
        creds = {"username": USERNAME, "password": PASSWORD}
        d = h.driver(profile, dict(creds, **{"bound-to-caller": True}), mode="hold")
        events = read_events(d, lambda e: e["event"] == "error" or
                             e.get("state") in ("connected", "failed", "disconnected"))
        assert events[-1].get("state") == "connected", events
        session = events[0]["path"]
        assert h.props(session, S1)["BoundToCaller"] is True
        d.send_signal(signal.SIGKILL)   # the caller leaves the bus without a word
        d.wait(5)
        state = h.wait_session_gone_or(session, ("disconnected", "failed"))
        assert state["state"] in ("disconnected", None), state
        h.wait_tunnel_gone()
        wait_for(lambda: h.session_of(profile) is None, 15, "the ended session to go")

        # Without the option the session outlives its caller.
        d = h.driver(profile, creds, mode="hold")
        events = read_events(d, lambda e: e["event"] == "error" or
                             e.get("state") in ("connected", "failed", "disconnected"))
        assert events[-1].get("state") == "connected", events
        session = events[0]["path"]
        assert h.props(session, S1)["BoundToCaller"] is False
        d.send_signal(signal.SIGKILL)
        d.wait(5)
        time.sleep(2)
        assert h.props(session, S1)["State"] == "connected"
        assert h.ping_through_tunnel(count=1)
        r = h.ctl("disconnect", "bound")
        assert r.returncode == 0, r.stderr
        h.wait_tunnel_gone()
    finally:
        h.remove_profile("bound")


def test_restart_keeps_profiles_and_undoes_the_network(h):
    kept = h.import_profile("kept")
    h.import_profile("transient", "--transient")
    before = h.props(kept, P1)
    files = os.listdir(h.state_dir)
    assert files, "nothing stored in the state directory"
    for name in files:
        st = os.stat(os.path.join(h.state_dir, name))
        assert st.st_mode & 0o077 == 0, "%s has mode %o" % (name, st.st_mode & 0o777)
        with open(os.path.join(h.state_dir, name)) as f:
            assert "transient" not in f.read()
    r = h.ctl("connect", "kept", "--wait", input="%s\n%s\n" % (USERNAME, PASSWORD), timeout=40)
    assert r.returncode == 0, r.stdout + r.stderr
    assert h.tun_devices()

    # A stop takes the session down and everything it configured.
    status = h.stop_daemon()
    assert status == 0, h.daemon.log_tail()
    h.wait_tunnel_gone(timeout=5)

    h.start_daemon()
    try:
        after = h.props(kept, P1)
        for key in ("Id", "Name", "Owner", "Created", "Remotes", "Credentials", "Persistent"):
            assert after[key] == before[key], key
        assert after["ActiveSession"] == "/"
        names = [p["Name"] for p in h.ctl_json("list")]
        assert "kept" in names and "transient" not in names, names
        # A corrupt stored file is set aside; the others still load.
        bad = os.path.join(h.state_dir, "0" * 32 + ".profile")
        with open(bad, "w") as f:
            f.write("this is not a profile\n")
        os.chmod(bad, 0o600)
        h.stop_daemon()
        h.start_daemon()
        assert "kept" in [p["Name"] for p in h.ctl_json("list")]
        assert not os.path.exists(bad)
    finally:
        for name in os.listdir(h.state_dir):
            if name.endswith(".corrupt"):
                os.unlink(os.path.join(h.state_dir, name))
        h.remove_profile("kept")


def test_daemon_log_holds_no_secret(h):
    # Last: everything above went through this daemon's log.
    logs = "".join(p.read_log(whole=True) for p in h.lab._procs
                   if p.argv and p.argv[0] == SHIMMERD)
    assert logs
    assert_no_secrets(logs, "shimmerd's log")
