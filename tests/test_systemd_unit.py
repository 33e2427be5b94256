# SPDX-License-Identifier: MIT
"""The systemd unit (data/shimmerd.service.in, as meson configured it):
systemd's own checks, and what the unit promises (issue 9, item 14).

- `systemd-analyze verify` accepts every line (it only warns about an
  unknown key or a value it cannot parse, so its output must be empty);
- `systemd-analyze security --offline=true` rates the exposure at most
  THRESHOLD (2.2 when this was written, systemd 252);
- the sandbox keeps what shimmerd needs and no more: CAP_NET_ADMIN alone,
  a private /proc, a root-only state directory, descriptors for the
  daemon's session cap.

tests/dbus/test_ctl_sandbox.py runs shimmerd confined as the unit says.

    SHIMMERD_UNIT=build/data/shimmerd.service python3 -m pytest -q tests/test_systemd_unit.py

Needs systemd-analyze (package systemd; systemd need not run), not root.
"""
import glob
import os
import re
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# Above this, a change made the unit laxer: look at what
# `systemd-analyze security --offline=true UNIT` lists as exposed.
THRESHOLD = 2.5
# The daemon's cap on sessions (SHIMMER_MANAGER_MAX_SESSIONS), the
# descriptors a session holds at most (shimmer_tunnel_max_descriptors():
# its socket, a netlink socket, a spare, the data path's eventfd and, for
# each of at most 8 workers, an epoll, an eventfd and a tun queue), and
# those the daemon keeps back (twice SHIMMER_MANAGER_FDS_RESERVED).
SESSION_CAP = 256
FDS_PER_SESSION = 4 + 3 * 8
FDS_RESERVED = 2 * 64


def _unit_path():
    path = os.environ.get("SHIMMERD_UNIT")
    if path:
        return path
    found = glob.glob(os.path.join(REPO, "*", "data", "shimmerd.service")) + \
        glob.glob(os.path.join(REPO, "_build", "*", "data", "shimmerd.service"))
    return max(found, key=os.path.getmtime) if found else None


UNIT = _unit_path()
ANALYZE = shutil.which("systemd-analyze")


def _skip_reason():
    if UNIT is None or not os.path.exists(UNIT):
        return "the configured unit is not built (set $SHIMMERD_UNIT)"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")
needs_analyze = pytest.mark.skipif(ANALYZE is None,
                                   reason="systemd-analyze is not installed (package systemd)")


def service_settings():
    """The [Service] section: name -> list of values, in order."""
    settings, section = {}, None
    with open(UNIT) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line
                continue
            if section == "[Service]":
                name, _, value = line.partition("=")
                settings.setdefault(name.strip(), []).append(value.strip())
    return settings


@needs_analyze
def test_systemd_accepts_every_line(tmp_path):
    # verify also wants the program to exist: the one meson built, or any.
    program = os.environ.get("SHIMMERD") or shutil.which("true")
    with open(UNIT) as f:
        text = f.read()
    assert re.search(r"^ExecStart=\S+ --system$", text, re.M), text
    unit = tmp_path / "shimmerd.service"
    unit.write_text(re.sub(r"^ExecStart=\S+", "ExecStart=" + program, text, flags=re.M))
    r = subprocess.run([ANALYZE, "verify", str(unit)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout + r.stderr == "", "systemd-analyze verify warns:\n" + r.stdout + r.stderr


@needs_analyze
def test_exposure_is_low():
    r = subprocess.run([ANALYZE, "security", "--offline=true", "--threshold=%d" % (THRESHOLD * 10),
                        UNIT], capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
    assert m, r.stdout + r.stderr
    level = float(m.group(1))
    print("exposure %.1f (threshold %.1f)" % (level, THRESHOLD))
    assert level <= THRESHOLD, r.stdout
    # --threshold takes tenths (0-100); it agrees.
    assert r.returncode == 0, r.stdout + r.stderr


def test_sandbox_keeps_only_what_shimmerd_needs():
    # (test-data-install.py checks the rest of the installed unit.)
    s = service_settings()
    # tun devices, rtnetlink and SO_MARK; no raw sockets, no binding to a
    # device or a low port.
    assert s.get("CapabilityBoundingSet") == ["CAP_NET_ADMIN"], s.get("CapabilityBoundingSet")
    # Callers are known by their bus name: other processes are not its
    # business, nor /proc beyond its own.
    assert s.get("ProtectProc") == ["invisible"]
    assert s.get("ProcSubset") == ["pid"]
    # Profiles hold keys: root-only, whatever the system's umask.
    assert s.get("StateDirectoryMode") == ["0700"]
    assert s.get("UMask") == ["0077"]


def test_descriptors_for_every_session():
    limit = service_settings().get("LimitNOFILE")
    assert limit, "no LimitNOFILE: the default soft limit (1024) stops at a few hundred sessions"
    soft = int(limit[-1].split(":")[0])
    assert soft >= SESSION_CAP * FDS_PER_SESSION + FDS_RESERVED, soft
