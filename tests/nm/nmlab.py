# SPDX-License-Identifier: MIT
"""A real NetworkManager for tests, managing one veth and nothing else.

    with NMLab(name_file) as lab:
        lab.nmcli("connection", "import", "type", "shimmer", "file", path)

What it sets up (see /work/shared/LAB.md, "Real NetworkManager end to end"):
  - a private system bus (tests/lab/privbus.py, its own socket): the
    machine's bus, if any, is not used and another NetworkManager on it is
    not disturbed; nmcli and NetworkManager are pointed at it with
    DBUS_SYSTEM_BUS_ADDRESS;
  - systemd-udevd, unless one answers already (NetworkManager keeps devices
    without udev data unmanaged). It is shared: another NMLab (another test
    run on this machine) may rely on it, so it is started outside this
    process's reach (no parent-death signal, a session of its own), marked
    in its environment, and stopped by the last NMLab to close (each one
    registers in its directory while it runs);
  - a veth pair: one end in the root namespace (the only device
    NetworkManager manages), the peer in a namespace created here, with an
    address from 10.213.128.0/17 picked to be free;
  - NetworkManager --debug in the root network namespace but in a mount
    namespace of its own, where tmpfs hides /run and /var/lib/NetworkManager
    (its state stays out of the machine's, and /run/udev is bound back) and
    /usr/lib/NetworkManager/VPN is a directory of this lab holding the
    plugin's .name file: nothing is installed into the machine's
    directories. nmcli finds the same file through NM_VPN_PLUGIN_DIR. Its
    configuration: keyfile only, profiles in a directory of this lab, no
    auto-default connections, no DNS or hostname changes, polkit unused
    (root only);
  - a base connection on the veth (manual address, never-default, no IPv6):
    a VPN needs an active base connection.

Every process started here is stopped by its pid (and gets SIGTERM from the
kernel if this process dies); the veth, the namespace and the temporary
directory are removed on exit, also after a failure, and by the next NMLab
(cleanup_stale()) when this process was SIGKILLed. Needs root.
"""

import ctypes
import fcntl
import glob
import ipaddress
import os
import shutil
import signal
import subprocess
import tempfile
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "lab"))
import privbus  # noqa: E402

UDEVD = "/lib/systemd/systemd-udevd"
# In the environment of a systemd-udevd an NMLab started: "1" if it made
# /run/udev (to be removed with it), "0" if not.
UDEVD_MARK = "SHIMMER_NMLAB_UDEVD"
# A lab's registration as a user of the shared udevd (its pid inside).
UDEV_USER = "udev-user"
TOOLS = ["NetworkManager", "nmcli", "dbus-daemon", "ip", "unshare", "udevadm"]


NM_CONFIG = """[main]
plugins=keyfile
no-auto-default=*
dns=none
rc-manager=unmanaged
hostname-mode=none
auth-polkit=root-only

[keyfile]
path={profiles}
unmanaged-devices=*,except:interface-name:{veth}

[connectivity]
enabled=false

[logging]
level=INFO
"""

# Runs inside the mount namespace, then becomes NetworkManager (same pid).
NM_WRAPPER = """set -e
mount --rbind /run "$LAB/realrun"
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/udev
if [ -d "$LAB/realrun/udev" ]; then mount --rbind "$LAB/realrun/udev" /run/udev; fi
mount -t tmpfs -o mode=0755 tmpfs /var/lib/NetworkManager
mount --bind "$LAB/vpn" /usr/lib/NetworkManager/VPN
exec NetworkManager --debug --config="$LAB/NetworkManager.conf" \
    --config-dir="$LAB/conf.d" --system-config-dir="$LAB/conf.d" \
    --intern-config="$LAB/intern.conf" --state-file="$LAB/NetworkManager.state" \
    --pid-file="$LAB/NetworkManager.pid"
"""

_PR_SET_PDEATHSIG = 1


class NMLabError(RuntimeError):
    pass


def preflight():
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, veth, NetworkManager)"
    for tool in TOOLS:
        if shutil.which(tool) is None:
            return "%s is not installed (Debian: network-manager, dbus, iproute2, udev)" % tool
    if not os.access(UDEVD, os.X_OK):
        return "%s is not installed (Debian: udev)" % UDEVD
    if not os.path.isdir("/var/lib/NetworkManager") or \
            not os.path.isdir("/usr/lib/NetworkManager/VPN"):
        return "NetworkManager's directories are missing (Debian: network-manager)"
    return None


def _child_setup():
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise NMLabError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(0.05)


def _run(argv, check=True, timeout=30, env=None):
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    if check and res.returncode != 0:
        raise NMLabError("%s: exit %d\n%s%s" % (" ".join(argv), res.returncode, res.stdout,
                                                res.stderr))
    return res


def _used_ipv4_networks():
    out = _run(["ip", "-4", "-o", "addr", "show"], check=False).stdout
    out += _run(["ip", "-4", "route", "show", "table", "all"], check=False).stdout
    nets = []
    for word in out.split():
        try:
            nets.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            pass
    return nets


class _UdevLock:
    """Serialises the decisions about the shared udevd between NMLabs: an
    flock on the udevd binary (a file every lab opens anyway; nothing is
    created for it)."""

    def __enter__(self):
        self.f = open(UDEVD, "rb")
        fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


def _marked_udevds():
    """[(pid, made /run/udev)] of the systemd-udevd processes NMLabs started."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        for var in env:
            if var.startswith(UDEVD_MARK.encode() + b"="):
                found.append((int(entry), var.endswith(b"=1")))
    return found


def _running(pid):
    """PID exists and is not a zombie (another lab's child waits for its
    parent to reap it)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _other_udev_users(mine):
    """Other NMLabs (their registration files) whose process still runs."""
    users = []
    for path in glob.glob(os.path.join(tempfile.gettempdir(), "shimmer-nmlab-*", UDEV_USER)):
        if mine and os.path.dirname(path) == mine:
            continue
        try:
            with open(path) as f:
                pid = int(f.read().strip())
            os.kill(pid, 0)
            users.append(pid)
        except (OSError, ValueError):
            pass
    return users


def cleanup_stale():
    """Removes what an NMLab whose process is gone (SIGKILLed: nothing ran
    its close()) left: its namespace shimmer-nm-PID, its veth shnmPID and
    its directory. Returns the names removed. A lab whose process still runs
    is left alone."""
    removed = []

    def dead(pid):
        try:
            os.kill(pid, 0)
            return False
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    for line in _run(["ip", "netns", "list"], check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith("shimmer-nm-") and name[11:].isdigit() and dead(int(name[11:])):
            for pid in _run(["ip", "netns", "pids", name], check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ValueError, ProcessLookupError):
                    pass
            _run(["ip", "netns", "del", name], check=False)
            removed.append(name)
    for line in _run(["ip", "-o", "link", "show", "type", "veth"], check=False).stdout.splitlines():
        parts = line.split(":")
        name = parts[1].strip().split("@")[0] if len(parts) > 1 else ""
        if name.startswith("shnm") and name[4:].isdigit() and dead(int(name[4:])):
            _run(["ip", "link", "del", name], check=False)
            removed.append(name)
    for path in glob.glob(os.path.join(tempfile.gettempdir(), "shimmer-nmlab-*", UDEV_USER)):
        try:
            with open(path) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if dead(pid):
            shutil.rmtree(os.path.dirname(path), ignore_errors=True)
            removed.append(os.path.dirname(path))
    return removed


def sanitizer_preload(name_file):
    """An ASan/UBSan build of the plugin can only be loaded into nmcli with the
    sanitizer runtimes preloaded: the environment for that, or {}."""
    plugin = None
    try:
        with open(name_file) as f:
            for line in f:
                if line.startswith("plugin="):
                    plugin = line.split("=", 1)[1].strip()
    except OSError:
        return {}
    if not plugin or not os.path.exists(plugin):
        return {}
    out = _run(["ldd", plugin], check=False).stdout
    libs = [w for w in out.split() if os.path.isabs(w) and
            os.path.basename(w).startswith(("libasan.so", "libubsan.so"))]
    if not libs:
        # clang links the sanitizer runtime into executables only: a plugin
        # built that way has its __asan_/__ubsan_ symbols undefined and cannot
        # be loaded into nmcli at all. Say so (a non-empty answer) so that
        # callers skip instead of failing.
        syms = _run(["nm", "-D", "--undefined-only", plugin], check=False).stdout
        if "__asan_" in syms or "__ubsan_" in syms:
            return {"SHIMMER_SANITIZER_RUNTIME": "static (clang): cannot be preloaded"}
        return {}
    # nmcli's own allocations are not the plugin's to answer for.
    return {"LD_PRELOAD": " ".join(libs), "ASAN_OPTIONS": "detect_leaks=0"}


class NMLab:
    """See the module documentation. `name_file` is the plugin's .name file
    (the build tree's nm-shimmer-service-uninstalled.name)."""

    def __init__(self, name_file):
        self.name_file = os.path.abspath(name_file)
        self.preload = sanitizer_preload(name_file)
        tag = os.getpid()   # at most 7 digits: "shnmp" + tag fits IFNAMSIZ
        self.veth = "shnm%d" % tag
        self.peer = "shnmp%d" % tag
        self.peer_ns = "shimmer-nm-%d" % tag
        self.base = "shimmer-nm-base-%d" % tag
        self.dir = None
        self.bus = None
        self.bus_address = None
        self.local_addr = None
        self.peer_addr = None
        self._procs = []  # (name, Popen), stopped in reverse order
        self._veth_made = False
        self._ns_made = False
        self._udev_user = None
        self.prefix = 24

    # ---- context manager ----

    def __enter__(self):
        try:
            self.setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- setup ----

    def setup(self):
        reason = preflight()
        if reason:
            raise NMLabError(reason)
        with _UdevLock():   # not while another lab decides about its udevd
            cleanup_stale()
        self.dir = tempfile.mkdtemp(prefix="shimmer-nmlab-")
        for sub in ("vpn", "conf.d", "profiles", "realrun"):
            os.mkdir(os.path.join(self.dir, sub))
        os.symlink(self.name_file, os.path.join(self.dir, "vpn", "nm-shimmer-service.name"))
        self._start_bus()
        self._start_udevd()
        self._make_veth()
        self._start_nm()
        self._make_base()

    def _spawn(self, name, argv, env=None, stdout=None):
        log = open(os.path.join(self.dir, name + ".log"), "wb")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                stdout=stdout if stdout is not None else log, stderr=log,
                                env=env, preexec_fn=_child_setup)
        log.close()
        self._procs.append((name, proc))
        return proc

    def _start_bus(self):
        self.bus = privbus.PrivateBus(self.dir, policy="open")
        self.bus_address = self.bus.address

    def _start_udevd(self):
        with _UdevLock():
            # Registered first: from now on no other lab stops the udevd.
            self._udev_user = os.path.join(self.dir, UDEV_USER)
            with open(self._udev_user, "w") as f:
                f.write("%d\n" % os.getpid())
            if _run(["udevadm", "control", "--ping"], check=False, timeout=5).returncode == 0:
                return
            made = not os.path.exists("/run/udev")
            log = open(os.path.join(self.dir, "udevd.log"), "wb")
            subprocess.Popen([UDEVD], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                             env=dict(os.environ, **{UDEVD_MARK: "1" if made else "0"}),
                             start_new_session=True)
            log.close()
            wait_for(lambda: _run(["udevadm", "control", "--ping"], check=False,
                                   timeout=5).returncode == 0, 10, "systemd-udevd")

    def _stop_udevd(self):
        """Unregisters; the last NMLab stops the udevd an NMLab started (by
        its pid), and removes /run/udev if that udevd made it."""
        if self._udev_user is None:
            return
        with _UdevLock():
            try:
                os.unlink(self._udev_user)
            except OSError:
                pass
            self._udev_user = None
            if _other_udev_users(self.dir):
                return
            for pid, made in _marked_udevds():
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
                deadline = time.monotonic() + 10
                while _running(pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
                    try:
                        os.waitpid(pid, os.WNOHANG)   # ours to reap if we started it
                    except ChildProcessError:
                        pass
                if _running(pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                if made and _run(["udevadm", "control", "--ping"], check=False,
                                 timeout=5).returncode != 0:
                    shutil.rmtree("/run/udev", ignore_errors=True)

    def _make_veth(self):
        used = _used_ipv4_networks()
        start = os.getpid() % 120
        for i in range(120):
            net = ipaddress.ip_network("10.213.%d.0/24" % (128 + (start + i) % 120))
            if not any(net.overlaps(u) for u in used if u.prefixlen > 0):
                break
        else:
            raise NMLabError("no free /24 in 10.213.128.0/17")
        hosts = list(net.hosts())
        self.local_addr, self.peer_addr, self.prefix = str(hosts[0]), str(hosts[1]), 24
        _run(["ip", "netns", "add", self.peer_ns])
        self._ns_made = True
        _run(["ip", "link", "add", self.veth, "type", "veth", "peer", "name", self.peer,
              "netns", self.peer_ns])
        self._veth_made = True
        ns = ["ip", "-n", self.peer_ns]
        _run(ns + ["addr", "add", "%s/24" % self.peer_addr, "dev", self.peer])
        _run(ns + ["link", "set", self.peer, "up"])
        _run(ns + ["link", "set", "lo", "up"])
        _run(["udevadm", "settle", "--timeout=10"], check=False, timeout=15)

    def _start_nm(self):
        with open(os.path.join(self.dir, "NetworkManager.conf"), "w") as f:
            f.write(NM_CONFIG.format(profiles=os.path.join(self.dir, "profiles"),
                                     veth=self.veth))
        env = dict(os.environ, LAB=self.dir, DBUS_SYSTEM_BUS_ADDRESS=self.bus_address)
        self.nm = self._spawn("NetworkManager",
                              ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                               NM_WRAPPER], env=env)

        def running():
            if self.nm.poll() is not None:
                raise NMLabError("NetworkManager exited (%d):\n%s" % (self.nm.returncode,
                                                                       self.log_tail()))
            res = self.nmcli("-t", "-f", "RUNNING", "general", check=False, timeout=5)
            return res.returncode == 0 and res.stdout.strip() == "running"
        wait_for(running, 30, "NetworkManager")

    def _make_base(self):
        def managed():
            res = self.nmcli("device", "set", self.veth, "managed", "yes", check=False)
            return res.returncode == 0
        wait_for(managed, 15, "NetworkManager to see %s" % self.veth)
        self.nmcli("connection", "add", "type", "ethernet", "ifname", self.veth,
                   "con-name", self.base, "connection.autoconnect", "no",
                   "ipv4.method", "manual", "ipv4.addresses", "%s/24" % self.local_addr,
                   "ipv4.never-default", "yes", "ipv6.method", "disabled")
        self.nmcli("--wait", "20", "connection", "up", self.base, timeout=30)

    # ---- use ----

    def env(self):
        """The environment nmcli (or any libnm client) needs for this lab."""
        return dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.bus_address,
                    NM_VPN_PLUGIN_DIR=os.path.join(self.dir, "vpn"), LC_ALL="C",
                    **self.preload)

    def tmpdir(self):
        """A fresh directory inside the lab's, removed with it."""
        return tempfile.mkdtemp(dir=self.dir, prefix="work-")

    def nmcli(self, *args, check=True, timeout=30):
        return _run(["nmcli"] + list(args), check=check, timeout=timeout, env=self.env())

    def profile_path(self, name):
        """Where NetworkManager keeps the keyfile of the connection NAME."""
        return os.path.join(self.dir, "profiles", name + ".nmconnection")

    def log_tail(self, lines=60):
        try:
            with open(os.path.join(self.dir, "NetworkManager.log"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def nm_log(self):
        with open(os.path.join(self.dir, "NetworkManager.log"), errors="replace") as f:
            return f.read()

    # ---- teardown ----

    def close(self):
        for name, proc in reversed(self._procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        self._procs = []
        if self.bus is not None:
            self.bus.stop()
            self.bus = None
        if self._veth_made:
            _run(["ip", "link", "del", self.veth], check=False)
            self._veth_made = False
        if self._ns_made:
            _run(["ip", "netns", "del", self.peer_ns], check=False)
            self._ns_made = False
        self._stop_udevd()
        if self.dir is not None and os.environ.get("SHIMMER_NMLAB_KEEP") is None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
