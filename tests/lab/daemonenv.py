# SPDX-License-Identifier: MIT
"""shimmerd as the D-Bus service for fault and fuzz tests: a private
dbus-daemon (tests/lab/privbus.py), optionally a polkitd stand-in
(python-dbusmock) and a resolvconf stand-in, and shimmerd in the client
namespace of a lab (tests/lab/lab.py). Needs python3-gi.

    with Lab() as lab:
        lab.start_openvpn_server(...)
        with ServiceEnv(lab, shimmerd, resolvconf=True) as env:
            path = env.import_profile("p", lab.client_config({"inline": True}))
            session = env.connect(path)
            env.wait_state(session, "connected")
            env.daemon.signal(signal.SIGKILL)

The resolvconf stand-in keeps its records as files in RECORDS_DIR. shimmerd
runs in a mount namespace of its own where a tmpfs covers /run and that
directory is bound on /run/resolvconf/interface, where shimmerd looks for
records a crashed run left: so a stale record is visible to the next
shimmerd and to the test, and the machine's /run is never touched.

Everything is started by and stopped by its pid; close() removes the
private directory.
"""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import lab as labmod
import privbus

try:
    from gi.repository import Gio, GLib
except ImportError:  # pragma: no cover
    Gio = GLib = None

REPO = labmod.REPO
BUS_NAME = "org.shimmervpn"
ROOT = "/org/shimmervpn"
M1 = "org.shimmervpn.Manager1"
P1 = "org.shimmervpn.Profile1"
S1 = "org.shimmervpn.Session1"
PROPS = "org.freedesktop.DBus.Properties"
OM = "org.freedesktop.DBus.ObjectManager"
PYTHON = "/usr/bin/python3"   # the one with python3-gi and python3-dbusmock
DATA_POLICY = os.path.join(REPO, "data", "org.shimmervpn.conf")
OWN_ACTIONS = ["org.shimmervpn.profile.import",
               "org.shimmervpn.profile.manage-own",
               "org.shimmervpn.session.control-own"]

# Only root (shimmerd, the test) talks to the polkitd stand-in.
POLKIT_POLICY = """  <policy user="root">
    <allow own="org.freedesktop.PolicyKit1"/>
    <allow send_destination="org.freedesktop.PolicyKit1"/>
  </policy>
"""

FAKE_RESOLVCONF = """#!/bin/sh
# resolvconf stand-in for shimmerd's tests: one file per record in RECORDS,
# every call logged.
records='{records}'
printf '%s\\n' "$*" >> '{calls}'
case "$1" in
-a) cat > "$records/$2" ;;
-d) rm -f "$records/$2" ;;
*) echo "resolvconf: bad usage" >&2; exit 99 ;;
esac
"""

# Gives shimmerd /run of its own with the stand-in's records where resolvconf
# keeps them ($1: the records directory; the rest: shimmerd's command line).
PRIVATE_RUN = ('mount -t tmpfs -o mode=0755 shimmer-run /run && '
               'mkdir -p /run/resolvconf/interface && '
               'mount --bind "$1" /run/resolvconf/interface && shift && exec "$@"')


def skip_reason(shimmerd, polkit=False):
    """Why a ServiceEnv cannot run here, or None."""
    reason = privbus.lab_skip_reason()
    if reason:
        return reason
    if not shimmerd or not os.access(shimmerd, os.X_OK):
        return "shimmerd not built (set $SHIMMERD)"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    if polkit:
        r = subprocess.run([PYTHON, "-c", "import dbusmock"], capture_output=True)
        if r.returncode != 0:
            return "python3-dbusmock is needed"
    return None


def is_sanitized(path):
    """Whether the binary at PATH was built with AddressSanitizer (its RSS
    then says nothing about leaks: the quarantine holds freed memory)."""
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def heap_in_use(proc):
    """The bytes PROC's glibc malloc holds for live allocations ("in use",
    all arenas and mmapped chunks), read by asking the process for
    malloc_stats() through gdb: RSS also counts freed memory that malloc
    keeps, this does not. None where gdb is missing or the binary is
    sanitized (its malloc is not glibc's)."""
    if shutil.which("gdb") is None or is_sanitized(_exe(proc)):
        return None
    mark = proc.mark()
    r = subprocess.run(["gdb", "-p", str(proc.pid), "-batch", "-nx",
                        "-ex", "call (void)malloc_stats()", "-ex", "call (int)fflush(0)"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    for _ in range(100):
        m = re.search(r"Total \(incl\. mmap\):\s*\n\s*system bytes\s*=\s*\d+\s*\n"
                      r"\s*in use bytes\s*=\s*(\d+)", proc.read_log(since=mark))
        if m:
            return int(m.group(1))
        time.sleep(0.05)
    raise RuntimeError("no malloc_stats from pid %d: %s" % (proc.pid, r.stdout[-500:]))


def _exe(proc):
    try:
        return os.readlink("/proc/%d/exe" % proc.pid)
    except OSError:
        return ""


SANITIZER_RE = re.compile(r"ERROR: (?:AddressSanitizer|LeakSanitizer)|runtime error:")


def sanitizer_reports(text):
    """The lines of TEXT where AddressSanitizer, LeakSanitizer or UBSan
    reported something."""
    return [line for line in text.splitlines() if SANITIZER_RE.search(line)]


class ServiceEnv:
    """A private bus and shimmerd on it in LAB's client namespace.

    policy     "open" (everyone may do anything) or "system" (the project's
               data/org.shimmervpn.conf on a system-like bus, with polkit).
    polkit     start the polkitd stand-in (python-dbusmock), allowing
               OWN_ACTIONS.
    resolvconf give shimmerd the resolvconf stand-in (and /run of its own).
    env        variables added to shimmerd's environment.
    """

    def __init__(self, lab, shimmerd, policy="open", polkit=False, resolvconf=False,
                 extra_args=(), env=None):
        self.lab, self.shimmerd = lab, shimmerd
        self.env = env
        self.policy, self.use_polkit, self.use_resolvconf = policy, polkit, resolvconf
        self.extra_args = list(extra_args)
        self.dir = None
        self.bus = self.polkit = self.daemon = None
        self._conn = None
        self.daemons = []      # every shimmerd started, oldest first

    # -- lifecycle

    def __enter__(self):
        try:
            self.setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def setup(self):
        self.dir = tempfile.mkdtemp(prefix="shimmer-svc-%d-" % os.getpid())
        os.chmod(self.dir, 0o755)   # unprivileged callers reach the bus socket
        self.state_dir = os.path.join(self.dir, "state")
        self.records_dir = os.path.join(self.dir, "resolvconf-records")
        self.resolvconf_calls = os.path.join(self.dir, "resolvconf-calls.log")
        os.makedirs(self.records_dir)
        self.resolvconf = os.path.join(self.dir, "resolvconf")
        with open(self.resolvconf, "w") as f:
            f.write(FAKE_RESOLVCONF.format(records=self.records_dir,
                                           calls=self.resolvconf_calls))
        os.chmod(self.resolvconf, 0o755)
        if self.policy == "system":
            self.bus = privbus.PrivateBus(self.dir, policy="system", includes=[DATA_POLICY],
                                          extra=POLKIT_POLICY)
        else:
            self.bus = privbus.PrivateBus(self.dir, policy="open")
        if self.use_polkit:
            log = open(os.path.join(self.dir, "polkitd.log"), "w")
            self.polkit = subprocess.Popen(
                [PYTHON, "-m", "dbusmock", "--system", "--template", "polkitd"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.bus.address),
                preexec_fn=labmod._child_setup)
            log.close()
            labmod.wait_for(lambda: self._name_has_owner("org.freedesktop.PolicyKit1")
                            or self.polkit.poll() is not None, 15, what="the polkitd stand-in")
            assert self.polkit.poll() is None, "the polkitd stand-in exited"
            self.polkit_allow(OWN_ACTIONS)
        return self

    def close(self):
        for d in self.daemons:
            try:
                d.stop(timeout=10)
            except Exception:
                pass
        if self._conn is not None:
            try:
                self._conn.close_sync(None)
            except Exception:
                pass
            self._conn = None
        if self.polkit is not None and self.polkit.poll() is None:
            self.polkit.terminate()
            try:
                self.polkit.wait(5)
            except subprocess.TimeoutExpired:
                self.polkit.kill()
                self.polkit.wait(5)
        if self.bus is not None:
            self.bus.stop()
            self.bus = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    # -- shimmerd

    def daemon_argv(self):
        argv = [self.shimmerd, "--bus-address", self.bus.address, "--state-dir", self.state_dir]
        if self.use_polkit:
            argv += ["--polkit-bus-address", self.bus.address]
        if self.use_resolvconf:
            argv += ["--resolvconf", self.resolvconf]
        argv += self.extra_args
        if self.use_resolvconf:
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", PRIVATE_RUN,
                    "private-run", self.records_dir] + argv
        return argv

    def start_daemon(self, timeout=20):
        self.daemon = self.lab.spawn_in_client(self.daemon_argv(), env=self.env,
                                               name=self.lab._unique("shimmerd"))
        self.daemons.append(self.daemon)
        labmod.wait_for(lambda: not self.daemon.alive() or self._name_has_owner(BUS_NAME),
                        timeout, what="shimmerd to own " + BUS_NAME)
        assert self.daemon.alive(), "shimmerd exited:\n" + self.daemon.log_tail()
        return self.daemon

    def kill_daemon(self, sig=signal.SIGKILL, timeout=10):
        self.daemon.signal(sig)
        status = self.daemon.wait_exit(timeout)
        labmod.wait_for(lambda: not self._name_has_owner(BUS_NAME), 10,
                        what="the bus name to be released")
        return status

    def stop_daemon(self, timeout=15):
        status = self.daemon.stop(timeout=timeout)
        labmod.wait_for(lambda: not self._name_has_owner(BUS_NAME), 10,
                        what="the bus name to be released")
        return status

    def daemon_logs(self):
        return "".join(d.read_log(whole=True) for d in self.daemons)

    def sanitizer_reports(self):
        return sanitizer_reports(self.daemon_logs())

    # -- D-Bus as root

    @property
    def conn(self):
        if self._conn is None:
            self._conn = Gio.DBusConnection.new_for_address_sync(
                self.bus.address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
                | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        return self._conn

    def _name_has_owner(self, name):
        try:
            r = self.conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                    "org.freedesktop.DBus", "NameHasOwner",
                                    GLib.Variant("(s)", (name,)), GLib.VariantType("(b)"),
                                    Gio.DBusCallFlags.NONE, 5000, None)
        except GLib.Error:
            return False
        return r.unpack()[0]

    def call(self, path, iface, method, args=None, reply=None, timeout_ms=20000):
        r = self.conn.call_sync(BUS_NAME, path, iface, method, args,
                                GLib.VariantType(reply) if reply else None,
                                Gio.DBusCallFlags.NONE, timeout_ms, None)
        return r.unpack() if r is not None else None

    def prop(self, path, iface, name):
        return self.call(path, PROPS, "Get", GLib.Variant("(ss)", (iface, name)), "(v)")[0]

    def managed_objects(self):
        return self.call(ROOT, OM, "GetManagedObjects", None, "(a{oa{sa{sv}}})")[0]

    def list_profiles(self):
        return self.call(ROOT, M1, "ListProfiles", None, "(ao)")[0]

    def import_profile(self, name, text, persistent=True):
        opts = {"persistent": GLib.Variant("b", persistent)}
        return self.call(ROOT, M1, "ImportProfile", GLib.Variant("(ssa{sv})", (name, text, opts)),
                         "(o)")[0]

    def connect(self, profile, **options):
        opts = {k: GLib.Variant("b" if isinstance(v, bool) else "s", v)
                for k, v in options.items()}
        return self.call(profile, P1, "Connect", GLib.Variant("(a{sv})", (opts,)), "(o)")[0]

    def disconnect(self, session):
        self.call(session, S1, "Disconnect")

    def session_state(self, session):
        """The session's State, or None once its object is gone."""
        try:
            return self.prop(session, S1, "State")
        except GLib.Error:
            return None

    def wait_state(self, session, states, timeout=20, interval=0.02):
        """Waits until the session's State is one of STATES (None: its
        object is gone); returns that state."""
        if isinstance(states, str) or states is None:
            states = (states,)
        seen = []

        def reached():
            seen[:] = [self.session_state(session)]
            return seen[0] in states

        try:
            labmod.wait_for(reached, timeout, interval=interval)
        except TimeoutError:
            raise TimeoutError("session %s is %s after %ss, not %s"
                               % (session, seen[0], timeout, "/".join(map(str, states))))
        return seen[0]

    def polkit_allow(self, actions):
        self.conn.call_sync("org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority",
                            "org.freedesktop.DBus.Mock", "SetAllowed",
                            GLib.Variant("(as)", (list(actions),)), None,
                            Gio.DBusCallFlags.NONE, 5000, None)

    # -- what the sessions left in the client namespace

    def tun_links(self):
        out = self.lab.run_in_client(["ip", "-o", "link", "show", "type", "tun"],
                                     check=False).stdout
        return re.findall(r"^\d+: ([^:@]+)", out, re.M)

    def shimmerd_routes(self):
        """Routes of shimmerd's routing protocol (115), every table, both
        families: what a session adds outside its tun device."""
        out = ""
        for fam in ("-4", "-6"):
            out += self.lab.run_in_client(["ip", fam, "route", "show", "table", "all",
                                           "proto", "115"], check=False).stdout
        return [line for line in out.splitlines() if line.strip()]

    def tun_routes(self):
        out = ""
        for fam in ("-4", "-6"):
            out += self.lab.run_in_client(["ip", fam, "route", "show", "table", "all"],
                                          check=False).stdout
        return [line for line in out.splitlines() if re.search(r"\bdev (shim|tun)\S*", line)
                and "fe80::" not in line and " table local " not in line]

    def resolvconf_records(self):
        return sorted(os.listdir(self.records_dir))
