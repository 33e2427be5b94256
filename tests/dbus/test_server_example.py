# SPDX-License-Identifier: MIT
"""The README's "Run your own server" example (data/examples/server.conf
and client.ovpn): `shimmerctl check` accepts both, with their files beside
them as the comments say; and the main-job demo (tests/lab/demo.py, what
`scripts/demo.sh` runs) serves them end to end with Shimmer's own server
and client, through the D-Bus service and in the foreground, and cleans up.

The check needs no root; the demo does (it skips with the reason).
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "lab"))

import lab as labmod  # noqa: E402

EXAMPLES = os.path.join(REPO, "data", "examples")
SHIMMERCTL = os.environ.get("SHIMMERCTL", "")
SHIMMERD = os.environ.get("SHIMMERD", "")


def ctl():
    if not os.access(SHIMMERCTL, os.X_OK):
        pytest.skip("shimmerctl not built (set $SHIMMERCTL)")
    return SHIMMERCTL


@pytest.mark.parametrize("example,files,role", [
    ("server.conf", ("ca.crt", "server.crt", "server.key", "tc.key"), "server"),
    ("client.ovpn", ("ca.crt", "client.crt", "client.key", "tc.key"), "client"),
])
def test_check_accepts_the_examples(tmp_path, example, files, role):
    shutil.copy(os.path.join(EXAMPLES, example), tmp_path)
    for name in files:
        shutil.copy(labmod.fixture(name), tmp_path)
    path = str(tmp_path / example)
    r = subprocess.run([ctl(), "check", path], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "error" not in r.stderr and "warning" not in r.stderr, r.stderr
    r = subprocess.run([ctl(), "check", "--json", path], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["role"] == role
    # Without its files beside it, it is refused (the check is real).
    os.unlink(str(tmp_path / files[-1]))
    r = subprocess.run([ctl(), "check", path], capture_output=True, text=True)
    assert r.returncode == 1 and "tc.key" in r.stderr, r.stderr


def demo_skip_reason():
    if os.geteuid() != 0:
        return "needs root (network namespaces, tun devices)"
    reason = labmod.preflight()
    if reason:
        return reason
    if not os.access(SHIMMERD, os.X_OK):
        return "shimmerd not built (set $SHIMMERD)"
    if shutil.which("dbus-daemon") is None:
        return "dbus-daemon is not installed"
    return None


@pytest.mark.parametrize("args", [[], ["--foreground"]], ids=["service", "foreground"])
def test_demo_serves_the_examples(args):
    why = demo_skip_reason()
    if why:
        pytest.skip(why)
    r = subprocess.run(["/usr/bin/python3", os.path.join(REPO, "tests", "lab", "demo.py"),
                        "--shimmerd", SHIMMERD] + args,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "Tunnel worked." in r.stdout
    assert "LEFT BEHIND" not in r.stdout
    if not args:
        assert "Stopped server /org/shimmervpn/server/1" in r.stdout, r.stdout
        assert "Common name:     client.shimmer.test" in r.stdout, r.stdout
