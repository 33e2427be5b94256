# SPDX-License-Identifier: MIT
"""Private system buses for tests and the demo: a dbus-daemon of our own
with its own socket, so that the machine's bus (if any) is neither used nor
disturbed. Python standard library only.

    bus = privbus.PrivateBus(directory, policy="system",
                             includes=["data/org.shimmervpn.conf"])
    ... DBUS_SYSTEM_BUS_ADDRESS=bus.address ...
    bus.stop()

Two default policies:
  "open"    everyone may connect, own any name and send anything (tests that
            are not about the bus policy);
  "system"  like Debian's system bus: everyone may connect, nobody owns a
            name or calls a method unless an included service policy (or
            EXTRA, XML put after the default policy) lets them.
"""

import ctypes
import os
import select
import shutil
import signal
import subprocess
import time

_HEAD = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
"""

POLICIES = {
    "open": """  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true"/>
    <allow receive_sender="*"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
""",
    "system": """  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>
""",
}


def config(socket, policy="open", includes=(), extra=""):
    """The text of a bus configuration listening on SOCKET."""
    text = _HEAD.format(socket=socket) + POLICIES[policy] + extra
    for path in includes:
        text += "  <include>%s</include>\n" % path
    return text + "</busconfig>\n"


def _pdeathsig():
    # Runs in the child between fork and exec: die with the parent.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


class PrivateBus:
    """A dbus-daemon with config(...) in DIRECTORY (bus.conf, bus.sock,
    dbus-daemon.log there), a child of this process (and gets SIGTERM from
    the kernel if this process dies), stopped by its pid. `address` is what
    DBUS_SYSTEM_BUS_ADDRESS takes. Raises RuntimeError with the daemon's
    messages if it does not start (e.g. an included policy it refuses)."""

    def __init__(self, directory, policy="open", includes=(), extra="", timeout=10):
        self.dir = directory
        self.socket = os.path.join(directory, "bus.sock")
        self.config = os.path.join(directory, "bus.conf")
        self.log = os.path.join(directory, "dbus-daemon.log")
        with open(self.config, "w") as f:
            f.write(config(self.socket, policy, includes, extra))
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                ["dbus-daemon", "--config-file=" + self.config, "--nofork", "--print-address=1"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                preexec_fn=_pdeathsig)
        self.pid = self.proc.pid
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline().decode().strip() if ready else ""
        if not line:
            self.stop()
            raise RuntimeError("dbus-daemon did not start: " + self.read_log().strip())
        self.address = line

    def read_log(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()


# ---- for tests that are D-Bus clients with GLib (python3-gi) ----

def lab_skip_reason():
    """Why a test with the network lab (tests/lab/lab.py), a private bus and
    a GLib D-Bus client cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, tun)"
    import lab
    reason = lab.preflight()
    if reason:
        return reason
    if shutil.which("dbus-daemon") is None:
        return "dbus-daemon is not installed"
    try:
        from gi.repository import Gio  # noqa: F401
    except ImportError:
        return "python3-gi is needed (run with /usr/bin/python3)"
    return None

def pump(seconds=0.0):
    """Dispatches what the default GLib main context has pending (signal
    subscriptions, name watches), for SECONDS at least."""
    from gi.repository import GLib
    ctx = GLib.MainContext.default()
    end = time.monotonic() + seconds
    while True:
        while ctx.pending():
            ctx.iteration(False)
        if time.monotonic() >= end:
            return
        time.sleep(0.02)


def wait_until(predicate, timeout, what):
    """pump() until PREDICATE() is true (returned); TimeoutError after
    TIMEOUT seconds, naming WHAT."""
    deadline = time.monotonic() + timeout
    while True:
        pump()
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(0.05)
