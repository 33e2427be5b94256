# SPDX-License-Identifier: MIT
"""nm-plugin/nm-shimmer-service.conf in a real dbus-daemon: root may own
org.freedesktop.NetworkManager.shimmer and the per-connection names under it
and call them; another user may do neither.

The bus is a private dbus-daemon (tests/lab/privbus.py) whose configuration
allows everything and then includes the policy file, as the system bus
includes system.d/. Needs
root (to act as another user with setpriv); skips otherwise.
Environment: SHIMMER_NM_BUS_POLICY (the file).
"""

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "lab"))
import privbus  # noqa: E402

POLICY = os.environ.get("SHIMMER_NM_BUS_POLICY", os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "nm-plugin", "nm-shimmer-service.conf"))


NAMES = ["org.freedesktop.NetworkManager.shimmer",
         "org.freedesktop.NetworkManager.shimmer.Connection_7"]


@pytest.fixture(scope="module")
def bus():
    if os.geteuid() != 0:
        pytest.skip("needs root (acts as another user with setpriv)")
    for tool in ("dbus-daemon", "python3", "setpriv"):
        if shutil.which(tool) is None:
            pytest.skip("%s is not installed" % tool)
    tmp = tempfile.mkdtemp(prefix="shimmer-nm-policy-")
    os.chmod(tmp, 0o755)
    try:
        bus = privbus.PrivateBus(tmp, policy="open", includes=[POLICY])
    except RuntimeError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise AssertionError("dbus-daemon refused the policy: %s" % e)
    yield bus.address
    bus.stop()
    shutil.rmtree(tmp, ignore_errors=True)


# Owns NAME (argv[2]) on the bus argv[1], then calls a method on it from a
# second connection (argv[3], "self" or a name to call): prints one result
# word per step.
CLIENT = r"""
import sys
from gi.repository import Gio, GLib
addr, name, target = sys.argv[1], sys.argv[2], sys.argv[3]
def conn():
    return Gio.DBusConnection.new_for_address_sync(
        addr, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
        Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
c = conn()
if name != "-":
    try:
        r = c.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                        "RequestName", GLib.Variant("(su)", (name, 4)), None, 0, 5000, None)
        print("own:" + ("ok" if r.unpack()[0] == 1 else "code%d" % r.unpack()[0]))
    except GLib.Error as e:
        print("own:" + (Gio.DBusError.get_remote_error(e) or e.message))
if target != "-":
    try:
        conn().call_sync(target, "/", "org.freedesktop.DBus.Peer", "Ping", None, None, 0, 5000,
                         None)
        print("call:ok")
    except GLib.Error as e:
        print("call:" + (Gio.DBusError.get_remote_error(e) or e.message))
"""


def _client(address, name, target, user=None):
    argv = ["/usr/bin/python3", "-c", CLIENT, address, name, target]
    if user is not None:
        argv = ["setpriv", "--reuid", user, "--regid", "nogroup", "--clear-groups"] + argv
    res = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    return res.stdout.split()


@pytest.mark.parametrize("name", NAMES)
def test_root_owns_and_calls(bus, name):
    assert _client(bus, name, name) == ["own:ok", "call:ok"]


@pytest.mark.parametrize("name", NAMES)
def test_others_may_not_own(bus, name):
    out = _client(bus, name, "-", user="nobody")
    assert out == ["own:org.freedesktop.DBus.Error.AccessDenied"], out


def test_others_may_not_call(bus):
    # Root owns the name in one process; nobody tries to call it meanwhile.
    script = CLIENT.replace('if target != "-":', 'import time\nif target != "-":')
    owner = subprocess.Popen(["/usr/bin/python3", "-c",
                              "import sys,time\n" + script.split("if target")[0] +
                              "print('owned', flush=True)\ntime.sleep(30)\n",
                              bus, NAMES[1], "-"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout.readline().strip() == "own:ok"
        assert owner.stdout.readline().strip() == "owned"
        out = _client(bus, "-", NAMES[1], user="nobody")
        assert out == ["call:org.freedesktop.DBus.Error.AccessDenied"], out
        assert _client(bus, "-", NAMES[1]) == ["call:ok"]
    finally:
        owner.kill()
        owner.wait()
