"""scripts/check-layers.py: the real tree passes, and a tree with a layer
violation or an import circle fails, naming the files."""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SCRIPT = os.path.join(REPO, "scripts", "check-layers.py")


def run(root):
    return subprocess.run([sys.executable, SCRIPT, str(root)], capture_output=True, text=True)


def write(root, path, text):
    p = root / path
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def base_tree(root):
    write(root, "src/engine.h", "#pragma once\n")
    write(root, "src/engine.c", '#include "engine.h"\n')
    write(root, "service/os/tun.h", "#pragma once\n")
    write(root, "service/os/tun.c", '#include "tun.h"\n#include "engine.h"\n')
    write(root, "service/tunnel/tunnel.h", '#pragma once\n#include "os/tun.h"\n')
    write(root, "service/tunnel/tunnel.c", '#include "tunnel.h"\n')
    write(root, "service/manager/manager.h", '#pragma once\n#include "tunnel/tunnel.h"\n')
    write(root, "service/manager/manager.c", '#include "manager.h"\n')
    write(root, "service/bus/service.h", '#pragma once\n#include "manager/manager.h"\n')
    write(root, "service/bus/service.c", '#include "service.h"\n')
    write(root, "service/shimmerd.c", '#include "bus/service.h"\n')
    write(root, "service/ctl/main.c", '#include "engine.h"\n#include "shimmer-dbus-generated.h"\n')


def test_the_repository_is_layered():
    r = run(REPO)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok" in r.stdout


def test_a_clean_tree_passes(tmp_path):
    base_tree(tmp_path)
    r = run(tmp_path)
    assert r.returncode == 0, r.stdout


def test_an_upward_include_fails(tmp_path):
    base_tree(tmp_path)
    write(tmp_path, "service/os/tun.c", '#include "tun.h"\n#include "manager/manager.h"\n')
    r = run(tmp_path)
    assert r.returncode == 1
    assert "service/os/tun.c: includes service/manager/manager.h, from a higher layer" in r.stdout


def test_a_client_reaching_into_the_daemon_fails(tmp_path):
    base_tree(tmp_path)
    write(tmp_path, "service/ctl/main.c", '#include "bus/service.h"\n')
    r = run(tmp_path)
    assert r.returncode == 1
    assert "service/ctl/main.c: includes service/bus/service.h" in r.stdout


def test_an_import_circle_fails(tmp_path):
    base_tree(tmp_path)
    write(tmp_path, "service/manager/profile.h", "#pragma once\n")
    write(tmp_path, "service/manager/profile.c", '#include "profile.h"\n#include "session.h"\n')
    write(tmp_path, "service/manager/session.h", "#pragma once\n")
    write(tmp_path, "service/manager/session.c", '#include "session.h"\n#include "profile.h"\n')
    r = run(tmp_path)
    assert r.returncode == 1
    assert "import circle: service/manager/profile -> service/manager/session" in r.stdout
