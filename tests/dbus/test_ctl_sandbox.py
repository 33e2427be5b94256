# SPDX-License-Identifier: MIT
"""shimmerd confined as its systemd unit confines it, driven by shimmerctl
(issue 9, item 14).

systemd does not run here, so the confinement the unit's lines ask for is
built by hand from data/shimmerd.service.in, as far as it can be without
systemd: the capability bounding set (CapabilityBoundingSet=, with setpriv),
NoNewPrivileges=, UMask=, a /proc mounted with hidepid=invisible and
subset=pid (ProtectProc=invisible, ProcSubset=pid) and a read-only root
with only the state directory writable (ProtectSystem=strict,
StateDirectory=), in a mount namespace of its own. The system call filter
and the address families are not applied (that needs systemd). A session
must then connect, carry a ping and end as usual.

    SHIMMERD=... SHIMMERCTL=... python3 -m pytest -q tests/dbus/test_ctl_sandbox.py

Needs root; skips with the reason otherwise.
"""
import os
import re

import test_service as ts
from test_service import env, h  # noqa: F401 (the fixtures, one set for this module)
from test_ctl_output import _needs_lab

UNIT_IN = os.path.join(ts.REPO, "data", "shimmerd.service.in")


def unit_settings():
    settings, section = {}, None
    with open(UNIT_IN) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line
            elif section == "[Service]":
                name, _, value = line.partition("=")
                settings[name.strip()] = value.strip()
    return settings


def capability_bits(names):
    """The capability mask of NAMES ("CAP_NET_ADMIN ...")."""
    numbers = {"CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11, "CAP_NET_ADMIN": 12,
               "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_SETGID": 6, "CAP_SETUID": 7,
               "CAP_DAC_OVERRIDE": 1, "CAP_SYS_CHROOT": 18, "CAP_SYS_ADMIN": 21}
    mask = 0
    for name in names.split():
        assert name in numbers, "add %s to the table" % name
        mask |= 1 << numbers[name]
    return mask


# Mount namespace first (mounting needs CAP_SYS_ADMIN), then the bounding
# set, then shimmerd; every step execs, so shimmerd keeps the pid started.
WRAPPER = """#!/bin/sh
umask %(umask)s
exec unshare --mount --propagation private -- /bin/sh -c '
  set -e
  mount -t proc -o %(proc)s proc /proc
  mount --bind "$1" "$1"
  mount -o remount,bind,ro /
  shift
  exec setpriv --bounding-set=-all,%(caps)s --inh-caps=-all %(nnp)s -- "$@"' \\
  sh %(state)s %(shimmerd)s "$@"
"""


@_needs_lab()
def test_shimmerd_works_confined_as_its_unit_says(h, monkeypatch, tmp_path):
    s = unit_settings()
    caps = s["CapabilityBoundingSet"]
    proc = []
    if s.get("ProtectProc") in ("invisible", "noaccess", "ptraceable"):
        proc.append("hidepid=" + s["ProtectProc"])
    if s.get("ProcSubset") == "pid":
        proc.append("subset=pid")
    assert s.get("ProtectSystem") == "strict", "the read-only root below stands for it"
    wrapper = tmp_path / "confined-shimmerd"
    wrapper.write_text(WRAPPER % {
        "umask": s.get("UMask", "0022"),
        "proc": ",".join(proc) or "defaults",
        "caps": ",".join("+" + c[len("CAP_"):].lower() for c in caps.split()),
        "nnp": "--no-new-privs" if s.get("NoNewPrivileges") == "yes" else "",
        "state": h.state_dir,
        "shimmerd": ts.SHIMMERD,
    })
    wrapper.chmod(0o755)
    os.chmod(tmp_path, 0o755)

    h.stop_daemon()
    monkeypatch.setattr(ts, "SHIMMERD", str(wrapper))
    try:
        h.start_daemon()
        pid = h.daemon.pid
        with open("/proc/%d/status" % pid) as f:
            status = dict(re.findall(r"^(\w+):\s*(\S+)", f.read(), re.M))
        want = capability_bits(caps)
        assert int(status["CapBnd"], 16) == want, status
        assert int(status["CapEff"], 16) == want, status
        assert status["NoNewPrivs"] == ("1" if s.get("NoNewPrivileges") == "yes" else "0")
        with open("/proc/%d/mountinfo" % pid) as f:
            mounts = f.read().splitlines()
        assert any(" /proc " in m and all(o in m for o in proc) for m in mounts), mounts
        assert any(m.split()[4] == "/" and m.split()[5].startswith("ro") for m in mounts), mounts

        h.import_profile("confined")
        r = h.ctl("connect", "confined", "--wait",
                  input="%s\n%s\n" % (ts.USERNAME, ts.PASSWORD), timeout=40)
        assert r.returncode == 0, r.stdout + r.stderr + h.daemon.log_tail()
        assert h.ping_through_tunnel(), h.daemon.log_tail()
        r = h.ctl("status", "confined")
        assert r.returncode == 0 and "connected" in r.stdout, r.stdout + r.stderr
        r = h.ctl("disconnect", "confined")
        assert r.returncode == 0, r.stdout + r.stderr
        h.wait_tunnel_gone()
        # Stored under the unit's umask, in the one writable directory.
        stored = [n for n in os.listdir(h.state_dir) if n.endswith(".profile")]
        assert stored
        for name in stored:
            assert os.stat(os.path.join(h.state_dir, name)).st_mode & 0o077 == 0
        h.remove_profile("confined")
    finally:
        if h.daemon is not None and h.daemon.alive():
            h.stop_daemon()
    assert "critical" not in h.daemon.log_tail().lower(), h.daemon.log_tail()
