#!/usr/bin/python3
"""Shimmer's network test lab: an OpenVPN 2.6 server and a client under test,
each in a network namespace of its own, joined by one veth pair.

Python 3 standard library only; needs root, iproute2, /dev/net/tun and (for
the server) Debian's openvpn. See tests/lab/README.md.

    with Lab() as lab:
        srv = lab.start_openvpn_server({"proto": "udp", "wrap": "tls-crypt"})
        cli = lab.start_client(lab.client_config())      # real openvpn
        assert lab.ping_from_client(srv.tunnel_v4)

Rules this file keeps (see /work/shared/LAB.md): every packet stays inside the
two namespaces created here; nothing in the machine's own namespace is
created, changed or routed through; every process started here is stopped by
its pid and both namespaces are deleted on exit, on exceptions, at interpreter
exit and on SIGTERM/SIGINT/SIGHUP. Children also get SIGTERM from the kernel
if this process dies (PR_SET_PDEATHSIG), and namespaces left behind by a lab
process that was SIGKILLed are removed by the next Lab (cleanup_stale()).
"""

import atexit
import ctypes
import dataclasses
import ipaddress
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(REPO, "tests", "data")

SERVER_CN = "server.shimmer.test"
OPENVPN_READY = r"Initialization Sequence Completed"
AUTH_FAILED = r"AUTH_FAILED"

_NS_RE = re.compile(r"^shimmer-(?:srv|cli)-(\d+)(?:-\d+)?(?:-c\d+)?$")
SHIMMER_SERVER_READY = r"listening on \S+ \((?:UDP|TCP)\), tun "


class LabError(RuntimeError):
    """Something in the lab did not come up (the message carries a log tail)."""


def fixture(name):
    """Absolute path of a file in tests/data/ (an absolute NAME is kept)."""
    return os.path.join(DATA, name)


def wait_for(predicate, timeout, interval=0.05, what=None):
    """Call predicate() until it returns something true; return that value.
    Raises TimeoutError after `timeout` seconds (the loop is bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s"
                               % (timeout, what or getattr(predicate, "__name__", "condition")))
        time.sleep(interval)


def preflight():
    """None if the lab can run here, else a sentence saying why not."""
    if os.geteuid() != 0:
        return "the lab needs root (it creates network namespaces)"
    for tool in ("ip", "openvpn", "ping"):
        if shutil.which(tool) is None:
            return "%s is not installed" % tool
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing"
    return None


# ---------------------------------------------------------------- clients

@dataclasses.dataclass(frozen=True)
class ClientCommand:
    """How to run one client implementation. `argv` holds "{config}" where
    the profile path goes; `ready` and `auth_failed` are regexes searched in
    the client's combined stdout/stderr (its log)."""
    name: str
    argv: tuple
    ready: str = OPENVPN_READY
    auth_failed: str = AUTH_FAILED

    def build(self, config_path):
        return [a.replace("{config}", config_path) for a in self.argv]

    def available(self):
        exe = self.argv[0]
        if os.sep in exe:
            return os.access(exe, os.X_OK)
        return shutil.which(exe) is not None


# The real OpenVPN as the client. --disable-dco keeps it on the userspace
# data path (a kernel with ovpn-dco would otherwise make comparisons unfair);
# it is on the command line so that the profile stays plain for Shimmer.
OPENVPN = ClientCommand("openvpn", ("openvpn", "--disable-dco", "--config", "{config}"))


def find_shimmerd():
    """$SHIMMERD if set, else the newest _build/*/service/shimmerd, else None."""
    env = os.environ.get("SHIMMERD")
    if env:
        return env if os.access(env, os.X_OK) else None
    found = []
    base = os.path.join(REPO, "_build")
    if os.path.isdir(base):
        for d in os.listdir(base):
            p = os.path.join(base, d, "service", "shimmerd")
            if os.access(p, os.X_OK):
                found.append((os.path.getmtime(p), p))
    return max(found)[1] if found else None


def shimmerd_command(path=None, ready=None):
    """A ClientCommand for Shimmer's daemon (`shimmerd --config FILE`), or None
    when no binary is found. `ready` defaults to $SHIMMERD_READY or "connected"."""
    path = path or find_shimmerd()
    if not path:
        return None
    ready = ready or os.environ.get("SHIMMERD_READY") or r"\bconnected to "
    return ClientCommand("shimmerd", (path, "--config", "{config}"), ready=ready,
                         auth_failed=r"authentication failed")


# ---------------------------------------------------------------- processes

try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover
    _libc = None


def _child_setup():
    # Runs in the child between fork and exec: die with the parent.
    if _libc is not None:
        _libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


class Proc:
    """A process the lab started inside one of its namespaces. Its combined
    stdout/stderr go to `.log`. `.pid` is the program's own pid (ip netns exec
    execs it), so /proc/PID/status describes the program itself."""

    def __init__(self, lab, ns, argv, log, env=None, cwd=None):
        self.lab, self.ns, self.argv, self.log = lab, ns, list(argv), log
        self.env, self.cwd = env, cwd
        self.popen = None
        self.pid = None
        self.started = None
        self._log_offset = 0

    def start(self):
        if self.alive():
            raise LabError("%s is already running" % self.argv[0])
        self._log_offset = os.path.getsize(self.log) if os.path.exists(self.log) else 0
        env = None
        if self.env:
            env = dict(os.environ)
            env.update(self.env)
        with open(self.log, "ab") as logf:
            self.started = time.monotonic()
            self.popen = subprocess.Popen(
                ["ip", "netns", "exec", self.ns] + self.argv,
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                env=env, cwd=self.cwd, start_new_session=True,
                preexec_fn=_child_setup)
        self.pid = self.popen.pid
        self.lab._track(self)
        return self

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    @property
    def returncode(self):
        return None if self.popen is None else self.popen.poll()

    def read_log(self, whole=False, since=None):
        """The log since the last (re)start, or all of it with whole=True,
        or what came after SINCE (a mark())."""
        try:
            with open(self.log, "rb") as f:
                if since is not None:
                    f.seek(since)
                elif not whole:
                    f.seek(self._log_offset)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def mark(self):
        """The log's current end, for read_log(since=) and wait_log(since=):
        what a process prints after an event, e.g. its next "connected"."""
        try:
            return os.path.getsize(self.log)
        except OSError:
            return 0

    def log_tail(self, lines=40):
        return "\n".join(self.read_log(whole=True).splitlines()[-lines:])

    def wait_log(self, pattern, timeout=15.0, interval=0.01, since=None):
        """Wait until regex `pattern` appears in the log (since the last start,
        or since the mark() SINCE); return the match. Raises LabError if the
        process exits first and TimeoutError (with the log tail) after
        `timeout` seconds."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.read_log(since=since))
            if m:
                return m
            if not self.alive():
                m = rx.search(self.read_log(since=since))  # it may have printed and exited
                if m:
                    return m
                raise LabError("%s exited (status %s) before /%s/ appeared; log %s:\n%s"
                               % (self.argv[0], self.returncode, pattern, self.log,
                                  self.log_tail()))
            if time.monotonic() >= deadline:
                raise TimeoutError("/%s/ did not appear in %s within %.1fs; tail:\n%s"
                                   % (pattern, self.log, timeout, self.log_tail()))
            time.sleep(interval)

    def wait_exit(self, timeout=10.0):
        """Wait for the process to exit on its own; return its status."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError("%s (pid %d) still running after %.1fs"
                               % (self.argv[0], self.pid, timeout)) from None

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, timeout=5.0):
        """SIGTERM, then SIGKILL after `timeout` s. Returns the exit status."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.popen.wait(timeout)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        return self.popen.returncode

    def fd_count(self):
        """How many file descriptors the process holds, or None if it is gone."""
        try:
            return len(os.listdir("/proc/%d/fd" % self.pid))
        except (OSError, TypeError):
            return None

    def rss_kb(self):
        """VmRSS of the process in KiB, or None if it is gone."""
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except (OSError, TypeError):
            pass
        return None


class OpenVPNServer(Proc):
    """A running `openvpn --config server.conf` in the server namespace.
    Attributes: name, dev, port, proto, spec (the builder options), config
    (path), dir, tunnel_v4 / tunnel_v6 (the server's tunnel addresses),
    tunnel_net4 / tunnel_net6."""

    def wait_ready(self, timeout=15.0):
        return self.wait_log(OPENVPN_READY, timeout)

    def restart(self, timeout=15.0):
        """Stop and start again with the same configuration (new pid)."""
        self.stop()
        self.start()
        self.wait_ready(timeout)
        return self

    def status(self):
        """The server's status file (refreshed every second)."""
        try:
            with open(os.path.join(self.dir, "status.txt")) as f:
                return f.read()
        except FileNotFoundError:
            return ""


class ShimmerServerProc(OpenVPNServer):
    """`shimmerd --config server.conf` in the server namespace: the same
    interface as OpenVPNServer, Shimmer's ready line, no status file."""

    def wait_ready(self, timeout=15.0):
        return self.wait_log(SHIMMER_SERVER_READY, timeout)


@dataclasses.dataclass
class PingResult:
    ok: bool
    transmitted: int
    received: int
    output: str

    def __bool__(self):
        return self.ok


# ---------------------------------------------------------------- config builders

SERVER_DEFAULTS = {
    "proto": "udp",            # udp | tcp
    "bind": "dual",            # dual (:: , both families) | ipv4 | ipv6
    "port": None,              # None: 1194, or the next free one in this lab
    "wrap": "none",            # none | tls-auth | tls-crypt | tls-crypt-v2
    "cipher": "AES-256-GCM",   # data-ciphers: one name, or a list
    "tls_version_min": None,   # "1.2", "1.3"
    "tls_version_max": None,
    "topology": "subnet",      # subnet | net30
    "ipv6": True,              # server-ipv6 (IPv6 inside the tunnel)
    "tunnel_v4": None,         # None: 10.214.N.0/24
    "tunnel_v6": None,         # None: fd5e:100:N::/64
    "push_routes": (),         # "10.99.0.0/16", "fd5e:99::/64", ...
    "redirect_gateway": False,  # True (= "def1") or a flag string, e.g. "def1 ipv6"
    "auth_user_pass": None,    # (user, password): the one pair the server accepts
    "reneg_sec": None,
    "keepalive": (10, 60),     # None: no keepalive
    "crl": False,              # crl-verify tests/data/crl.pem
    "cert": "server.crt",      # the server's certificate and key (fixtures)
    "key": "server.key",
    "verb": 3,
    "extra": (),               # raw server directives, one per item
}

CLIENT_KEYS = {
    "remote": "ipv4",          # ipv4 | ipv6 | an address or host name
    "proto": None,             # None: as the server (udp/tcp, family from remote)
    "port": None,
    "wrap": None,              # None: as the server
    "cipher": None,
    "tls_version_min": None,   # None: as the server
    "tls_version_max": None,
    "reneg_sec": None,         # None: as the server
    "auth_user_pass": None,    # None: the server's pair; (u, p) to override; False: none
    "inline": False,           # embed certs/keys/credentials instead of absolute paths
    "ca": "ca.crt",            # file names in tests/data/ or absolute paths; ca None: none
    "cert": "client.crt",
    "key": "client.key",
    "verify_x509_name": SERVER_CN,  # None: leave out
    "dev": "tun",
    "verb": 3,
    "extra": (),               # raw client directives, one per item
}

_WRAPS = ("none", "tls-auth", "tls-crypt", "tls-crypt-v2")


def _merge(defaults, options, what):
    spec = dict(defaults)
    if options is None:
        options = {}
    if isinstance(options, (list, tuple)):
        options = {"extra": list(options)}
    unknown = set(options) - set(defaults)
    if unknown:
        raise ValueError("unknown %s option(s): %s (known: %s)"
                         % (what, ", ".join(sorted(unknown)), ", ".join(sorted(defaults))))
    spec.update(options)
    return spec


def _read(path):
    with open(path) as f:
        return f.read()


def _sh_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def _ovpn_quote(s):
    """Quote one argument for an OpenVPN config line."""
    if s and not re.search(r'[\s"\'\\#;]', s):
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _route_line(route):
    net = ipaddress.ip_network(route, strict=False)
    if net.version == 6:
        return "route-ipv6 %s" % net
    return "route %s %s" % (net.network_address, net.netmask)


# ---------------------------------------------------------------- the lab

_LIVE = set()
_LIVE_LOCK = threading.RLock()
_HANDLERS_INSTALLED = False
_PREV_HANDLERS = {}
_COUNTER = [0]


def _cleanup_all():
    with _LIVE_LOCK:
        labs = list(_LIVE)
    for lab in labs:
        try:
            lab.close()
        except Exception as e:  # keep going: every lab must be torn down
            print("lab cleanup: %s" % e, file=sys.stderr)


def _on_signal(signum, frame):
    _cleanup_all()
    prev = _PREV_HANDLERS.get(signum, signal.SIG_DFL)
    if callable(prev):
        prev(signum, frame)
    elif prev != signal.SIG_IGN:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _install_handlers():
    global _HANDLERS_INSTALLED
    if _HANDLERS_INSTALLED:
        return
    _HANDLERS_INSTALLED = True
    atexit.register(_cleanup_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        prev = signal.getsignal(sig)
        if prev is None:
            prev = signal.SIG_DFL
        if prev == signal.SIG_IGN:
            continue  # ignored (e.g. SIGINT in a background job): keep it so
        _PREV_HANDLERS[sig] = prev
        signal.signal(sig, _on_signal)


def _ip(*args, check=True, timeout=10):
    return subprocess.run(["ip"] + list(args), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, check=check, timeout=timeout)


def _kill_ns_processes(ns):
    """SIGKILL every process still inside lab namespace `ns` (by pid)."""
    r = _ip("netns", "pids", ns, check=False)
    for tok in r.stdout.split():
        try:
            os.kill(int(tok), signal.SIGKILL)
        except (ValueError, ProcessLookupError):
            pass


def cleanup_stale():
    """Delete lab namespaces (shimmer-srv-PID, shimmer-cli-PID[-K]) whose
    creating process is gone, e.g. after a SIGKILL. Returns their names."""
    r = _ip("netns", "list", check=False)
    removed = []
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = _NS_RE.match(name)
        if not m:
            continue
        pid = int(m.group(1))
        try:
            os.kill(pid, 0)
            continue  # its lab is still running
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        _kill_ns_processes(name)
        _ip("netns", "del", name, check=False)
        removed.append(name)
    return removed


class Lab:
    """Two namespaces, `srv_ns` and `cli_ns`, joined by a veth pair:

        server side  lab-srv  10.213.N.1/24  fd5e:N::1/64
        client side  lab-cli  10.213.N.2/24  fd5e:N::2/64

    N is derived from the pid (and a per-process counter). With
    client_default_route=True the client namespace gets default routes via
    the server side, so that redirect-gateway has a gateway to replace; the
    server namespace does not forward, so nothing leaves the lab.
    Servers tunnel 10.214.N.0/24 and fd5e:100:N::/64 (server end .1 / ::1).
    Files go to a temporary directory, removed on close unless keep=True
    or SHIMMER_LAB_KEEP=1."""

    def __init__(self, n=None, client_default_route=True, keep=None):
        pid = os.getpid()
        k = _COUNTER[0]
        _COUNTER[0] += 1
        self.n = n if n is not None else (pid + k) % 250 + 1
        suffix = "%d" % pid if k == 0 else "%d-%d" % (pid, k)
        self.srv_ns = "shimmer-srv-" + suffix
        self.cli_ns = "shimmer-cli-" + suffix
        n = self.n
        self.server_ip4 = "10.213.%d.1" % n
        self.client_ip4 = "10.213.%d.2" % n
        self.server_ip6 = "fd5e:%d::1" % n
        self.client_ip6 = "fd5e:%d::2" % n
        self.tunnel_net4 = "10.214.%d.0/24" % n
        self.tunnel_net6 = "fd5e:100:%d::/64" % n
        self.tunnel_server4 = "10.214.%d.1" % n
        self.tunnel_server6 = "fd5e:100:%d::1" % n
        self.client_default_route = client_default_route
        self.keep = keep if keep is not None else os.environ.get("SHIMMER_LAB_KEEP") == "1"
        self.dir = None
        self.servers = []
        self._procs = []
        self._created_ns = []
        self._closed = False
        self._seq = 0
        self.extra_clients = []

    @classmethod
    def servers_only(cls, srv_ns, server_ip4, directory):
        """A Lab that runs OpenVPN servers in the existing namespace SRV_NS
        (reached at SERVER_IP4), made and removed by someone else, e.g.
        tests/nm/nmlab.py. Files go to DIRECTORY (not removed here); close()
        stops the servers and touches no namespace. Client-side helpers
        (ping_from_client, ...) do not apply."""
        lab = cls()
        lab.srv_ns, lab.cli_ns = srv_ns, None
        lab.server_ip4 = server_ip4
        lab.dir = directory
        lab.keep = True
        with _LIVE_LOCK:
            _LIVE.add(lab)
        return lab

    # -- lifecycle

    def __enter__(self):
        self.setup()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def setup(self):
        err = preflight()
        if err:
            raise LabError(err)
        _install_handlers()
        with _LIVE_LOCK:
            _LIVE.add(self)
        try:
            cleanup_stale()
            self.dir = tempfile.mkdtemp(prefix="shimmer-lab-%d-" % os.getpid())
            for ns in (self.srv_ns, self.cli_ns):
                _ip("netns", "add", ns)
                self._created_ns.append(ns)
            # The pair is created inside the server namespace with its peer
            # moved straight into the client one: it never exists outside.
            _ip("-n", self.srv_ns, "link", "add", "lab-srv", "type", "veth",
                "peer", "name", "lab-cli", "netns", self.cli_ns)
            for ns, dev, a4, a6 in ((self.srv_ns, "lab-srv", self.server_ip4, self.server_ip6),
                                    (self.cli_ns, "lab-cli", self.client_ip4, self.client_ip6)):
                _ip("-n", ns, "link", "set", "lo", "up")
                _ip("-n", ns, "addr", "add", a4 + "/24", "dev", dev)
                _ip("-n", ns, "-6", "addr", "add", a6 + "/64", "dev", dev, "nodad")
                _ip("-n", ns, "link", "set", dev, "up")
            if self.client_default_route:
                _ip("-n", self.cli_ns, "route", "add", "default", "via", self.server_ip4)
                _ip("-n", self.cli_ns, "-6", "route", "add", "default", "via", self.server_ip6)
        except BaseException:
            self.close()
            raise
        return self

    def close(self):
        """Stop every process by pid, delete both namespaces, remove files.
        Idempotent, and re-entrant (a signal handler may call it while it
        runs): every step tolerates having been done already."""
        for p in list(reversed(self._procs)):
            try:
                p.stop(timeout=3)
            except Exception:
                pass
        while self._created_ns:
            ns = self._created_ns[0]
            _kill_ns_processes(ns)
            _ip("netns", "del", ns, check=False)
            if self._created_ns and self._created_ns[0] == ns:
                self._created_ns.pop(0)
        if getattr(self, "_etc_netns", None):
            shutil.rmtree(self._etc_netns, ignore_errors=True)
            self._etc_netns = None
            try:
                os.rmdir("/etc/netns")  # only when nothing else is in it
            except OSError:
                pass
        if self.dir and not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        self._closed = True
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def _track(self, proc):
        if proc not in self._procs:
            self._procs.append(proc)

    def _path(self, name):
        return os.path.join(self.dir, name)

    def _unique(self, stem):
        self._seq += 1
        return "%s-%d" % (stem, self._seq)

    # -- running things

    def _run(self, ns, cmd, timeout=30, check=True, input=None):
        if isinstance(cmd, str):
            cmd = shlex.split(cmd)
        return subprocess.run(["ip", "netns", "exec", ns] + list(cmd),
                              input=input, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=None if input is not None else subprocess.DEVNULL,
                              text=True, timeout=timeout, check=check,
                              preexec_fn=_child_setup)

    def run_in_client(self, cmd, timeout=30, check=True, input=None, ns=None):
        """Run cmd (list or shell-like string) in the client namespace (or
        NS, one of add_client_namespace()'s) and wait; returns
        CompletedProcess (stdout has stderr merged in)."""
        return self._run(ns or self.cli_ns, cmd, timeout, check, input)

    def run_in_server(self, cmd, timeout=30, check=True, input=None):
        return self._run(self.srv_ns, cmd, timeout, check, input)

    def _spawn(self, ns, cmd, name, env, cwd):
        if isinstance(cmd, str):
            cmd = shlex.split(cmd)
        name = name or self._unique(os.path.basename(cmd[0]))
        return Proc(self, ns, cmd, self._path(name + ".log"), env=env, cwd=cwd).start()

    def spawn_in_client(self, cmd, name=None, env=None, cwd=None, ns=None):
        """Start cmd in the client namespace (or NS) without waiting;
        returns a Proc (stopped by pid when the lab closes). Output goes to
        Proc.log."""
        return self._spawn(ns or self.cli_ns, cmd, name, env, cwd)

    def spawn_in_server(self, cmd, name=None, env=None, cwd=None):
        return self._spawn(self.srv_ns, cmd, name, env, cwd)

    def set_client_hosts(self, names):
        """Host names the client namespace resolves ({name: address}):
        `ip netns exec` binds /etc/netns/<client ns>/hosts over /etc/hosts
        for what it starts, so this takes effect for clients started from
        now on. The file and its directory are removed on close."""
        d = os.path.join("/etc/netns", self.cli_ns)
        os.makedirs(d, exist_ok=True)
        self._etc_netns = d
        with open(os.path.join(d, "hosts"), "w") as f:
            f.write("127.0.0.1 localhost\n")
            for name, addr in names.items():
                f.write("%s %s\n" % (addr, name))

    def route_dev(self, addr, ns=None):
        """The device the client namespace (or NS) routes ADDR through, or
        None."""
        r = self.run_in_client(["ip", "route", "get", addr], check=False, ns=ns)
        m = re.search(r"\bdev (\S+)", r.stdout)
        return m.group(1) if m else None

    def ping_from_client(self, addr, count=3, size=56, timeout=None, interval=0.2,
                         through_tunnel=None, ns=None):
        """ping from the client namespace; a PingResult, true if any reply came.

        The client namespace has a default route into the server namespace,
        which owns the server's tunnel addresses: without care a ping to them
        would succeed with no tunnel at all. So a ping to an address inside a
        server's tunnel network (or with THROUGH_TUNNEL=True) only counts when
        the client routes it through a tun device, and the replies must have
        arrived on that device (its receive counter rose by at least as many
        packets)."""
        if through_tunnel is None:
            through_tunnel = any(
                s.tunnel_net4 and ipaddress.ip_address(addr) in ipaddress.ip_network(s.tunnel_net4)
                or s.tunnel_net6 and ":" in addr
                and ipaddress.ip_address(addr) in ipaddress.ip_network(s.tunnel_net6)
                for s in self.servers)
        dev = None
        rx_before = 0
        if through_tunnel:
            dev = self.route_dev(addr, ns=ns)
            # tunN from `shimmerd --config` / OpenVPN, shimN from shimmerd's sessions
            if not dev or not dev.startswith(("tun", "shim")):
                return PingResult(ok=False, transmitted=0, received=0,
                                  output="%s is routed via %s, not a tunnel" % (addr, dev))
            rx_before = self._rx_packets(dev, ns=ns)
        deadline = timeout or max(3, int(count * interval + 3))
        cmd = ["ping", "-n", "-q", "-c", str(count), "-s", str(size),
               "-i", str(interval), "-W", "2", "-w", str(deadline)]
        if ":" in addr:
            cmd.append("-6")
        cmd.append(addr)
        r = self.run_in_client(cmd, timeout=deadline + 5, check=False, ns=ns)
        m = re.search(r"(\d+) packets transmitted, (\d+) (?:packets )?received", r.stdout)
        tx, rx = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
        ok = r.returncode == 0 and rx > 0
        if ok and dev:
            arrived = self._rx_packets(dev, ns=ns) - rx_before
            if arrived < rx:
                ok = False
                r.stdout += "\nonly %d packets arrived on %s for %d replies" % (arrived, dev, rx)
        return PingResult(ok=ok, transmitted=tx, received=rx, output=r.stdout)

    def _rx_packets(self, dev, ns=None):
        r = self.run_in_client(["cat", "/sys/class/net/%s/statistics/rx_packets" % dev],
                               check=False, ns=ns)
        try:
            return int(r.stdout.strip())
        except ValueError:
            return 0

    wait_for = staticmethod(wait_for)

    # -- the OpenVPN server

    def server_config(self, options=None, name="srv"):
        """The text of a server config for the builder `options` (see
        SERVER_DEFAULTS; a list means raw extra directives) plus the
        resolved spec: (text, spec)."""
        spec = _merge(SERVER_DEFAULTS, options, "server")
        if spec["wrap"] not in _WRAPS:
            raise ValueError("wrap must be one of %s" % ", ".join(_WRAPS))
        if spec["proto"] not in ("udp", "tcp"):
            raise ValueError("server proto must be udp or tcp")
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,11}", name):
            raise ValueError("server name: 1-11 of [A-Za-z0-9_-]")
        for s in self.servers:
            if s.alive() and s.name == name:
                raise LabError("a server named %r is running: stop it or use another name" % name)
        used = {s.port for s in self.servers if s.alive()}
        port = spec["port"] or next(p for p in range(1194, 1294) if p not in used)
        spec["port"] = port
        spec["tunnel_v4"] = spec["tunnel_v4"] or self.tunnel_net4
        spec["tunnel_v6"] = spec["tunnel_v6"] or self.tunnel_net6
        net4 = ipaddress.ip_network(spec["tunnel_v4"])
        net6 = ipaddress.ip_network(spec["tunnel_v6"])
        for s in self.servers:
            if s.alive() and s.name != name and s.tunnel_net4 == str(net4):
                raise LabError("server %r already uses %s: give tunnel_v4/tunnel_v6" % (s.name, net4))
        sdir = self._path("server-" + name)
        os.makedirs(sdir, exist_ok=True)
        bind = spec["bind"]
        proto = spec["proto"]
        if bind == "dual":
            proto_line, local = proto + "6", None
        elif bind == "ipv4":
            proto_line, local = proto + "4", self.server_ip4
        elif bind == "ipv6":
            proto_line, local = proto + "6", self.server_ip6
        else:
            raise ValueError("bind must be dual, ipv4 or ipv6")
        if proto == "tcp":
            proto_line += "-server"
        lines = [
            "# OpenVPN server for Shimmer's test lab (generated by tests/lab/lab.py)",
            "dev tun-" + name,
            "dev-type tun",
            "disable-dco",
            "proto " + proto_line,
            "port %d" % port,
        ]
        if local:
            lines.append("local " + local)
        if bind == "ipv6":
            lines.append("bind-ipv6-only")
        lines += [
            "topology " + spec["topology"],
            "server %s %s" % (net4.network_address, net4.netmask),
        ]
        if spec["ipv6"]:
            lines.append("server-ipv6 %s" % net6)
        lines += [
            "ca " + fixture("ca.crt"),
            "cert " + fixture(spec["cert"]),
            "key " + fixture(spec["key"]),
            # ECDHE only: the fixture dh.pem (1024 bit) is below OpenSSL 3's
            # default security level.
            "dh none",
        ]
        wrap = spec["wrap"]
        if wrap == "tls-auth":
            lines.append("tls-auth %s 0" % fixture("ta.key"))
        elif wrap == "tls-crypt":
            lines.append("tls-crypt " + fixture("tc.key"))
        elif wrap == "tls-crypt-v2":
            lines.append("tls-crypt-v2 " + fixture("tc-v2-server.key"))
        cipher = spec["cipher"]
        if cipher:
            lines.append("data-ciphers " + (cipher if isinstance(cipher, str) else ":".join(cipher)))
        if spec["tls_version_min"]:
            lines.append("tls-version-min " + spec["tls_version_min"])
        if spec["tls_version_max"]:
            lines.append("tls-version-max " + spec["tls_version_max"])
        if spec["crl"]:
            lines.append("crl-verify " + fixture("crl.pem"))
        for r in spec["push_routes"]:
            lines.append('push "%s"' % _route_line(r))
        rg = spec["redirect_gateway"]
        if rg:
            lines.append('push "redirect-gateway %s"' % ("def1" if rg is True else rg))
        if spec["auth_user_pass"]:
            user, password = spec["auth_user_pass"]
            script = os.path.join(sdir, "check-user.sh")
            with open(script, "w") as f:
                # OpenVPN passes a file: line 1 user name, line 2 password.
                f.write("#!/bin/sh\n"
                        "# Accepts exactly one user name / password pair.\n"
                        "{ IFS= read -r u && IFS= read -r p; } < \"$1\" || exit 1\n"
                        "[ \"$u\" = %s ] && [ \"$p\" = %s ] && exit 0\n"
                        "exit 1\n" % (_sh_quote(user), _sh_quote(password)))
            os.chmod(script, 0o700)
            lines += ["script-security 2",
                      "auth-user-pass-verify %s via-file" % script]
        if spec["reneg_sec"] is not None:
            lines.append("reneg-sec %d" % spec["reneg_sec"])
        if spec["keepalive"]:
            lines.append("keepalive %d %d" % tuple(spec["keepalive"]))
        lines += [
            "status %s 1" % os.path.join(sdir, "status.txt"),
            "verb %d" % spec["verb"],
        ]
        lines += list(spec["extra"])
        return "\n".join(lines) + "\n", spec

    def start_openvpn_server(self, options=None, name="srv", wait=True, timeout=15.0):
        """Write a server config for `options` (dict of SERVER_DEFAULTS keys,
        or a list of raw extra directives) and run `openvpn --config` in the
        server namespace, not daemonized, logging to <dir>/server-NAME/
        openvpn.log. Waits for "Initialization Sequence Completed" unless
        wait=False. Returns an OpenVPNServer."""
        text, spec = self.server_config(options, name)
        sdir = self._path("server-" + name)
        conf = os.path.join(sdir, "server.conf")
        with open(conf, "w") as f:
            f.write(text)
        srv = OpenVPNServer(self, self.srv_ns, ["openvpn", "--config", conf],
                            os.path.join(sdir, "openvpn.log"))
        srv.name, srv.dev, srv.port, srv.proto = name, "tun-" + name, spec["port"], spec["proto"]
        srv.spec, srv.config, srv.dir = spec, conf, sdir
        net4 = ipaddress.ip_network(spec["tunnel_v4"])
        net6 = ipaddress.ip_network(spec["tunnel_v6"])
        srv.tunnel_net4, srv.tunnel_net6 = str(net4), str(net6)
        srv.tunnel_v4 = str(net4.network_address + 1)
        srv.tunnel_v6 = str(net6.network_address + 1) if spec["ipv6"] else None
        self.servers = [s for s in self.servers if s.name != name] + [srv]
        srv.start()
        if wait:
            srv.wait_ready(timeout)
        return srv

    # -- Shimmer's server

    def start_shimmer_server(self, options=None, name="srv", wait=True, timeout=15.0,
                             shimmerd=None, env=None):
        """As start_openvpn_server(), but `shimmerd --config` serves the same
        configuration text (the builder's options, so the client profiles
        match). Returns a ShimmerServerProc (an OpenVPNServer whose ready
        line is Shimmer's). Skips nothing: raises LabError without a
        shimmerd binary."""
        exe = shimmerd or find_shimmerd()
        if not exe:
            raise LabError("shimmerd is not built (set $SHIMMERD)")
        text, spec = self.server_config(options, name)
        sdir = self._path("server-" + name)
        conf = os.path.join(sdir, "server.conf")
        with open(conf, "w") as f:
            f.write(text)
        srv = ShimmerServerProc(self, self.srv_ns, [exe, "--config", conf],
                                os.path.join(sdir, "shimmerd.log"), env=env)
        srv.name, srv.dev, srv.port, srv.proto = name, "tun-" + name, spec["port"], spec["proto"]
        srv.spec, srv.config, srv.dir = spec, conf, sdir
        net4 = ipaddress.ip_network(spec["tunnel_v4"])
        net6 = ipaddress.ip_network(spec["tunnel_v6"])
        srv.tunnel_net4, srv.tunnel_net6 = str(net4), str(net6)
        srv.tunnel_v4 = str(net4.network_address + 1)
        srv.tunnel_v6 = str(net6.network_address + 1) if spec["ipv6"] else None
        self.servers = [s for s in self.servers if s.name != name] + [srv]
        srv.start()
        if wait:
            srv.wait_ready(timeout)
        return srv

    # -- more client namespaces

    def add_client_namespace(self):
        """One more client namespace, linked to the server namespace by a
        veth pair of its own (a /30 and a /64 per namespace):

            server side  lab-cJ  10.215.N.(4J+1)/30  fd5f:N:J::1/64
            client side  lab-c   10.215.N.(4J+2)/30  fd5f:N:J::2/64

        J counts from 1 (at most 60). Returns (namespace, client_ip4,
        client_ip6, server_ip4, server_ip6); the client namespace routes
        the server's veth addresses and the default through its link.
        Removed with the lab."""
        j = len(self.extra_clients) + 1
        if j > 60:
            raise LabError("at most 60 extra client namespaces")
        ns = "%s-c%d" % (self.cli_ns, j)
        _ip("netns", "add", ns)
        self._created_ns.append(ns)
        dev = "lab-c%d" % j
        _ip("-n", self.srv_ns, "link", "add", dev, "type", "veth", "peer", "name", "lab-c",
            "netns", ns)
        s4, c4 = "10.215.%d.%d" % (self.n, 4 * j + 1), "10.215.%d.%d" % (self.n, 4 * j + 2)
        s6, c6 = "fd5f:%d:%d::1" % (self.n, j), "fd5f:%d:%d::2" % (self.n, j)
        for where, d, a4, a6 in ((self.srv_ns, dev, s4, s6), (ns, "lab-c", c4, c6)):
            _ip("-n", where, "link", "set", "lo", "up")
            _ip("-n", where, "addr", "add", a4 + "/30", "dev", d)
            _ip("-n", where, "-6", "addr", "add", a6 + "/64", "dev", d, "nodad")
            _ip("-n", where, "link", "set", d, "up")
        _ip("-n", ns, "route", "add", "default", "via", s4)
        _ip("-n", ns, "-6", "route", "add", "default", "via", s6)
        entry = (ns, c4, c6, s4, s6)
        self.extra_clients.append(entry)
        return entry

    # -- client profiles and clients

    def client_config(self, options=None, server=None):
        """A client profile (.ovpn text, the same for OpenVPN and Shimmer)
        that matches `server` (default: the last one started), with the
        overrides in `options` (see CLIENT_KEYS)."""
        server = server or (self.servers[-1] if self.servers else None)
        if server is None:
            raise LabError("start a server first (or pass server=)")
        o = _merge(CLIENT_KEYS, options, "client")
        s = server.spec
        remote = o["remote"]
        family = None
        if remote == "ipv4":
            remote, family = self.server_ip4, 4
        elif remote == "ipv6":
            remote, family = self.server_ip6, 6
        else:
            try:
                family = ipaddress.ip_address(remote).version
            except ValueError:
                family = None
        proto = o["proto"]
        if proto is None:
            proto = s["proto"] + ("6" if family == 6 else "")
            if s["proto"] == "tcp":
                proto += "-client"
        port = o["port"] or server.port
        wrap = o["wrap"] if o["wrap"] is not None else s["wrap"]
        cipher = o["cipher"] if o["cipher"] is not None else s["cipher"]
        inline = o["inline"]

        def path(p):
            return p if os.path.isabs(p) else fixture(p)

        def file_opt(directive, p, extra_arg=None):
            if inline:
                body = _read(path(p)).rstrip("\n")
                return ["<%s>" % directive, body, "</%s>" % directive]
            return ["%s %s%s" % (directive, path(p), " " + extra_arg if extra_arg else "")]

        lines = [
            "# Client profile for Shimmer's test lab (generated by tests/lab/lab.py)",
            "client",
            "dev " + o["dev"],
            "proto " + proto,
            "remote %s %d" % (remote, port),
            "nobind",
            "remote-cert-tls server",
        ]
        if o["verify_x509_name"]:
            lines.append("verify-x509-name %s name" % o["verify_x509_name"])
        if cipher:
            lines.append("data-ciphers " + (cipher if isinstance(cipher, str) else ":".join(cipher)))
        for key, directive in (("tls_version_min", "tls-version-min"),
                               ("tls_version_max", "tls-version-max")):
            v = o[key] if o[key] is not None else s[key]
            if v:
                lines.append("%s %s" % (directive, v))
        reneg = o["reneg_sec"] if o["reneg_sec"] is not None else s["reneg_sec"]
        if reneg is not None:
            lines.append("reneg-sec %d" % reneg)
        creds = o["auth_user_pass"]
        if creds is None:
            creds = s["auth_user_pass"]
        if creds:
            user, password = creds
            if inline:
                lines += ["<auth-user-pass>", user, password, "</auth-user-pass>"]
            else:
                cred = self._path(self._unique("credentials") + ".txt")
                with open(cred, "w") as f:
                    f.write("%s\n%s\n" % (user, password))
                os.chmod(cred, 0o600)
                lines.append("auth-user-pass " + cred)
        lines.append("verb %d" % o["verb"])
        if o["ca"]:  # None: the profile checks the server otherwise (peer-fingerprint)
            lines += file_opt("ca", o["ca"])
        lines += file_opt("cert", o["cert"])
        lines += file_opt("key", o["key"])
        if wrap == "tls-auth":
            if inline:
                lines.append("key-direction 1")
            lines += file_opt("tls-auth", "ta.key", extra_arg="1")
        elif wrap == "tls-crypt":
            lines += file_opt("tls-crypt", "tc.key")
        elif wrap == "tls-crypt-v2":
            lines += file_opt("tls-crypt-v2", "tc-v2-client.key")
        elif wrap != "none":
            raise ValueError("wrap must be one of %s" % ", ".join(_WRAPS))
        lines += list(o["extra"])
        return "\n".join(lines) + "\n"

    def write_client_config(self, options=None, server=None, name=None):
        """client_config() written to a file in the lab directory; its path."""
        p = self._path((name or self._unique("client")) + ".ovpn")
        with open(p, "w") as f:
            f.write(self.client_config(options, server))
        os.chmod(p, 0o600)
        return p

    def start_client(self, config=None, client_cmd=OPENVPN, name=None, wait=True, timeout=15.0,
                     ns=None):
        """Run a client implementation in the client namespace. `config` is
        profile text, a path to a profile, or None (client_config()).
        Waits for client_cmd.ready unless wait=False. Returns a Proc with
        .connect_time (seconds from start to the ready line, if waited)."""
        if config is None:
            config = self.client_config()
        if "\n" in config or not os.path.exists(config):
            p = self._path(self._unique("client") + ".ovpn")
            with open(p, "w") as f:
                f.write(config)
            os.chmod(p, 0o600)
            config = p
        name = name or self._unique(client_cmd.name)
        proc = Proc(self, ns or self.cli_ns, client_cmd.build(config), self._path(name + ".log"))
        proc.client_cmd, proc.config = client_cmd, config
        proc.connect_time = None
        proc.start()
        if wait:
            proc.wait_log(client_cmd.ready, timeout, interval=0.002)
            proc.connect_time = time.monotonic() - proc.started
        return proc

    def logs(self, lines=30):
        """Tails of the logs of every process started in this lab."""
        out = []
        for p in self._procs:
            out.append("==== %s (pid %s, status %s): %s\n%s"
                       % (" ".join(p.argv[:1]), p.pid, p.returncode, p.log, p.log_tail(lines)))
        return "\n".join(out)


# ---------------------------------------------------------------- command line

def _main(argv):
    import argparse
    ap = argparse.ArgumentParser(
        description="Shimmer's test lab: run an OpenVPN server in a fresh namespace pair "
                    "until Ctrl-C (or --seconds), and write a matching client profile.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--proto", default="udp", choices=["udp", "tcp"])
    s.add_argument("--wrap", default="tls-crypt", choices=list(_WRAPS))
    s.add_argument("--cipher", default="AES-256-GCM")
    s.add_argument("--auth", metavar="USER:PASS")
    s.add_argument("--remote", default="ipv4", help="ipv4 or ipv6 transport for the profile")
    s.add_argument("--inline", action="store_true")
    s.add_argument("--seconds", type=float, default=3600)
    sub.add_parser("cleanup-stale", help="remove namespaces of lab processes that died")
    a = ap.parse_args(argv)
    if a.cmd == "cleanup-stale":
        for name in cleanup_stale():
            print("removed", name)
        return 0
    opts = {"proto": a.proto, "wrap": a.wrap, "cipher": a.cipher}
    if a.auth:
        opts["auth_user_pass"] = tuple(a.auth.split(":", 1))
    with Lab(keep=True) as lab:
        srv = lab.start_openvpn_server(opts)
        prof = lab.write_client_config({"remote": a.remote, "inline": a.inline}, name="client")
        print("server  : pid %d in netns %s, log %s" % (srv.pid, lab.srv_ns, srv.log))
        print("tunnel  : server %s / %s" % (srv.tunnel_v4, srv.tunnel_v6))
        print("profile : %s" % prof)
        print("client  : ip netns exec %s openvpn --config %s" % (lab.cli_ns, prof))
        print("     or : ip netns exec %s shimmerd --config %s" % (lab.cli_ns, prof))
        print("Ctrl-C stops the server and removes the namespaces.", flush=True)
        deadline = time.monotonic() + a.seconds
        try:
            while time.monotonic() < deadline and srv.alive():
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        if not srv.alive():
            print(srv.log_tail())
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
