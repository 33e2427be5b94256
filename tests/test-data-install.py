# SPDX-License-Identifier: MIT
"""data/: `meson install --destdir` puts the bus policy, the polkit policy, the
systemd unit and the D-Bus activation file where the system looks for them,
with @sbindir@ filled in; and the bus policy does what it says in a real
dbus-daemon (only root owns org.shimmervpn; anyone may call its interfaces,
nothing else).

Run by meson (tests/meson.build passes the configured directories):

    MESON=... SHIMMER_BUILDDIR=... SHIMMER_SRCDIR=... SHIMMER_PREFIX=... \
    SHIMMER_DATADIR=... SHIMMER_SBINDIR=... SHIMMER_UNITDIR=... \
    python3 -m pytest -q tests/test-data-install.py

The bus policy case needs root, dbus-daemon, setpriv and python3-dbus (skips
with the reason otherwise). Every process it starts is stopped by its pid.
"""
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lab"))
import privbus  # noqa: E402

ENV_NAMES = ["MESON", "SHIMMER_BUILDDIR", "SHIMMER_SRCDIR", "SHIMMER_PREFIX",
             "SHIMMER_DATADIR", "SHIMMER_SBINDIR", "SHIMMER_UNITDIR"]
PYTHON = "/usr/bin/python3"   # the one with python3-dbus


def _env():
    missing = [n for n in ENV_NAMES if not os.environ.get(n)]
    if missing:
        pytest.skip("run through meson test (missing %s)" % ", ".join(missing))
    return {n: os.environ[n] for n in ENV_NAMES}


@pytest.fixture(scope="module")
def installed():
    env = _env()
    destdir = tempfile.mkdtemp(prefix="shimmer-test-install-")
    try:
        r = subprocess.run([env["MESON"], "install", "-C", env["SHIMMER_BUILDDIR"],
                            "--no-rebuild", "--quiet", "--destdir", destdir],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        yield env, destdir
    finally:
        shutil.rmtree(destdir, ignore_errors=True)


def _under(destdir, path):
    # meson install puts absolute paths under DESTDIR.
    return os.path.join(destdir, path.lstrip("/"))


def _paths(env, destdir):
    datadir = env["SHIMMER_DATADIR"]
    return {
        "bus policy": _under(destdir, os.path.join(datadir, "dbus-1", "system.d",
                                                   "org.shimmervpn.conf")),
        "polkit policy": _under(destdir, os.path.join(datadir, "polkit-1", "actions",
                                                      "org.shimmervpn.policy")),
        "activation file": _under(destdir, os.path.join(datadir, "dbus-1", "system-services",
                                                        "org.shimmervpn.service")),
        "unit": _under(destdir, os.path.join(env["SHIMMER_UNITDIR"], "shimmerd.service")),
    }


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def _keys(text):
    """systemd-style KEY=VALUE lines per section; a key may repeat."""
    sections, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep and section is not None, "stray line %r" % line
        section.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_files_are_where_the_system_looks(installed):
    env, destdir = installed
    for what, path in _paths(env, destdir).items():
        assert os.path.isfile(path), "%s not installed at %s" % (what, path)
        assert os.stat(path).st_mode & 0o777 == 0o644, "%s: mode %o" % (
            what, os.stat(path).st_mode & 0o777)


def test_policies_are_installed_as_written(installed):
    env, destdir = installed
    paths = _paths(env, destdir)
    src = os.path.join(env["SHIMMER_SRCDIR"], "data")
    assert _read(paths["bus policy"]) == _read(os.path.join(src, "org.shimmervpn.conf"))
    assert _read(paths["polkit policy"]) == _read(os.path.join(src, "org.shimmervpn.policy"))


def test_unit(installed):
    env, destdir = installed
    text = _read(_paths(env, destdir)["unit"])
    assert not re.search(r"@\w+@", text), "an unsubstituted @variable@ is left"
    service = _keys(text)["Service"]
    shimmerd = os.path.join(env["SHIMMER_SBINDIR"], "shimmerd")
    assert service["ExecStart"] == [shimmerd + " --system"]
    assert service["Type"] == ["dbus"]
    assert service["BusName"] == ["org.shimmervpn"]
    assert service["StateDirectory"] == ["shimmer"]
    caps = " ".join(service["CapabilityBoundingSet"]).split()
    # No CAP_NET_RAW: no raw socket, no SO_BINDTODEVICE (tests/test_systemd_unit.py).
    assert set(caps) == {"CAP_NET_ADMIN"}
    assert service["DeviceAllow"] == ["/dev/net/tun rw"]
    families = " ".join(service["RestrictAddressFamilies"]).split()
    assert set(families) == {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}
    for key, value in [("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                       ("PrivateTmp", "yes"), ("NoNewPrivileges", "yes"),
                       ("RestrictNamespaces", "yes"), ("LockPersonality", "yes"),
                       ("MemoryDenyWriteExecute", "yes"),
                       ("SystemCallArchitectures", "native")]:
        assert service.get(key) == [value], key
    # Root without privileges it does not need: no User=, no ambient caps.
    assert "User" not in service and "AmbientCapabilities" not in service


def test_unit_systemd_analyze(installed):
    """systemd itself reads the unit without a complaint (an unknown or
    misspelt directive is only a warning to systemd, so stderr must be
    empty)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is needed")
    env, destdir = installed
    text = _read(_paths(env, destdir)["unit"])
    # verify wants ExecStart's program to exist; the unit is not installed
    # for real, so point it at one that does.
    shimmerd = os.path.join(env["SHIMMER_SBINDIR"], "shimmerd")
    text = text.replace("ExecStart=" + shimmerd + " ", "ExecStart=/bin/true ")
    tmp = tempfile.mkdtemp(prefix="shimmer-test-unit-")
    try:
        unit = os.path.join(tmp, "shimmerd.service")
        with open(unit, "w") as f:
            f.write(text)
        r = subprocess.run([analyze, "verify", unit], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0 and r.stderr.strip() == "", r.stdout + r.stderr
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_activation_file(installed):
    env, destdir = installed
    text = _read(_paths(env, destdir)["activation file"])
    assert not re.search(r"@\w+@", text), "an unsubstituted @variable@ is left"
    entry = _keys(text)["D-BUS Service"]
    assert entry == {
        "Name": ["org.shimmervpn"],
        "Exec": [os.path.join(env["SHIMMER_SBINDIR"], "shimmerd") + " --system"],
        "User": ["root"],
        "SystemdService": ["shimmerd.service"],
    }


# ------------------------------------------------ the bus policy at work

# Run as nobody: what the bus lets an ordinary user do with org.shimmervpn.
CALLER = r"""
import sys
import dbus
bus = dbus.bus.BusConnection(sys.argv[1])
def outcome(f):
    try:
        f()
        return "ok"
    except dbus.exceptions.DBusException as e:
        return e.get_dbus_name()
print("own", outcome(lambda: bus.request_name("org.shimmervpn",
                                              dbus.bus.NAME_FLAG_DO_NOT_QUEUE)))
for iface in sys.argv[2:]:
    # The owner never answers: an allowed call times out (NoReply), a
    # refused one fails at once (AccessDenied).
    print(iface, outcome(lambda: bus.call_blocking("org.shimmervpn", "/org/shimmervpn",
                                                   iface, "Probe", "", [], timeout=0.5)))
"""

ALLOWED = ["org.shimmervpn.Manager1", "org.shimmervpn.Profile1", "org.shimmervpn.Session1",
           "org.freedesktop.DBus.Introspectable", "org.freedesktop.DBus.Properties",
           "org.freedesktop.DBus.ObjectManager", "org.freedesktop.DBus.Peer"]
REFUSED = ["org.example.NotShimmer", "org.freedesktop.DBus.Debug.Stats"]


def _why_not_bus_policy():
    if os.geteuid() != 0:
        return "needs root (to own the name and to run a caller as nobody)"
    for program in ("dbus-daemon", "setpriv"):
        if shutil.which(program) is None:
            return "%s is needed" % program
    if subprocess.run([PYTHON, "-c", "import dbus"], capture_output=True).returncode != 0:
        return "python3-dbus is needed"
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        return "the user nobody is needed"
    return None


def test_networkmanager_plugin_is_installed(installed):
    """The NetworkManager plugin (built when libnm is found): the .name file
    where NetworkManager and nmcli read it, and every program and library it
    names installed, the programs executable; its bus policy beside
    shimmerd's."""
    env, destdir = installed
    name_file = _under(destdir, os.path.join(env["SHIMMER_PREFIX"], "lib", "NetworkManager",
                                             "VPN", "nm-shimmer-service.name"))
    if not os.path.exists(os.path.dirname(name_file)):
        pytest.skip("the NetworkManager plugin was not built (no libnm)")
    import configparser
    kf = configparser.ConfigParser(interpolation=None)
    kf.read_string(_read(name_file))
    assert kf["VPN Connection"]["service"] == "org.freedesktop.NetworkManager.shimmer"
    paths = {"program": kf["VPN Connection"]["program"], "plugin": kf["libnm"]["plugin"],
             "auth-dialog": kf["GNOME"]["auth-dialog"]}
    for what, path in paths.items():
        assert os.path.isabs(path), (what, path)
        assert os.path.isfile(_under(destdir, path)), "%s %s is not installed" % (what, path)
    for what in ("program", "auth-dialog"):
        assert os.access(_under(destdir, paths[what]), os.X_OK), what
    assert kf["GNOME"]["supports-external-ui-mode"] == "true"
    assert os.path.isfile(_under(destdir, os.path.join(env["SHIMMER_DATADIR"], "dbus-1",
                                                       "system.d", "nm-shimmer-service.conf")))


def test_bus_policy_in_a_real_dbus_daemon():
    why = _why_not_bus_policy()
    if why:
        pytest.skip(why)
    env = _env()
    policy = os.path.join(env["SHIMMER_SRCDIR"], "data", "org.shimmervpn.conf")
    tmp = tempfile.mkdtemp(prefix="shimmer-test-policy-")
    daemon = None
    try:
        os.chmod(tmp, 0o755)   # nobody must reach the socket
        # As Debian's system bus: nobody owns names or calls methods unless
        # a service's policy lets them.
        daemon = privbus.PrivateBus(tmp, policy="system", includes=[policy])
        address = daemon.address

        # root owns the name (and keeps it while the caller probes).
        owner = subprocess.Popen(
            [PYTHON, "-c",
             "import dbus, sys; b = dbus.bus.BusConnection(sys.argv[1]); "
             "print(b.request_name('org.shimmervpn', dbus.bus.NAME_FLAG_DO_NOT_QUEUE), "
             "flush=True); sys.stdin.read()", address],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            got = owner.stdout.readline().strip()
            assert got == "1", "root could not own org.shimmervpn: %r %s" % (
                got, owner.stderr.read() if got == "" else "")
            nobody = pwd.getpwnam("nobody")
            r = subprocess.run(
                ["setpriv", "--reuid", str(nobody.pw_uid), "--regid", str(nobody.pw_gid),
                 "--clear-groups", "--", PYTHON, "-c", CALLER, address] + ALLOWED + REFUSED,
                capture_output=True, text=True, timeout=60)
        finally:
            owner.stdin.close()
            owner.wait(10)
        assert r.returncode == 0, r.stderr
        seen = dict(line.split(" ", 1) for line in r.stdout.splitlines())
        assert seen["own"] == "org.freedesktop.DBus.Error.AccessDenied", seen
        for iface in ALLOWED:
            assert seen[iface] == "org.freedesktop.DBus.Error.NoReply", (iface, seen[iface])
        for iface in REFUSED:
            assert seen[iface] == "org.freedesktop.DBus.Error.AccessDenied", (iface, seen[iface])
    finally:
        if daemon is not None:
            daemon.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider", "-rs"]))
