# SPDX-License-Identifier: MIT
"""The scripting examples against a real shimmerd (issue 14, part 6).

- dbus/examples/shimmer-watch.py sees a session appear, connect to the
  lab's OpenVPN 2.6 server, show non-zero rates after traffic and disappear
  after the disconnect; its --once modes give the documented exit codes.
- Every busctl/gdbus one-liner of dbus/README.md's "Scripting" section is
  taken from the README and run as an unprivileged user, in order, and its
  output checked (so the documentation cannot rot).
- The bash completion of shimmerctl (data/completion/shimmerctl) completes
  profile names from the running daemon.

Same private bus, polkitd stand-in and lab as test_service.py (whose
fixtures these tests share).

    SHIMMERD=... SHIMMERCTL=... python3 -m pytest -q tests/dbus/test_examples.py

Needs root; skips with the reason otherwise.
"""
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import types

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from test_service import (  # noqa: E402,F401  (env and h are fixtures)
    M1, P1, PASSWORD, PYTHON, REPO, ROOT, S1, SHIMMERCTL, USER_A, USER_B, USERNAME, as_uid,
    env, h, pytestmark, wait_for)

WATCH = os.path.join(REPO, "dbus", "examples", "shimmer-watch.py")
DBUS_README = os.path.join(REPO, "dbus", "README.md")
COMPLETION = os.path.join(REPO, "data", "completion", "shimmerctl")


# ------------------------------------------------------------ the watcher

class Watch:
    """shimmer-watch.py running as USER_A, its output in a file."""

    def __init__(self, h, *args, uid=USER_A, stdin_text=None):
        self.log = os.path.join(h.lab.dir, "watch-%d-%d.log" % (os.getpid(), time.monotonic_ns()))
        self.proc = h.spawn([PYTHON, WATCH, "--address", h.bus.address] + list(args),
                            uid=uid, output=self.log)
        if stdin_text is not None:
            self.proc.stdin.write(stdin_text)
            self.proc.stdin.flush()

    def output(self):
        with open(self.log) as f:
            return f.read()

    def wait(self, pattern, timeout, what):
        """The first match of PATTERN in the output (re.M), waiting for it."""
        def found():
            m = re.search(pattern, self.output(), re.M)
            if m is None and self.proc.poll() is not None:
                raise AssertionError("the watcher exited (%s) before %s:\n%s"
                                     % (self.proc.returncode, what, self.output()))
            return m
        try:
            return wait_for(found, timeout, what, interval=0.1)
        except TimeoutError:
            raise AssertionError("no %s in the watcher's output:\n%s" % (what, self.output()))


def run_watch(h, *args, uid=USER_A, timeout=60):
    r = subprocess.run(as_uid(uid, [PYTHON, WATCH, "--address", h.bus.address] + list(args)),
                       capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return r


def rates_in_bytes(text):
    """'1.5 KiB/s' -> 1536."""
    value, unit = text.split()
    return float(value) * {"B/s": 1, "KiB/s": 1024, "MiB/s": 1024 ** 2, "GiB/s": 1024 ** 3}[unit]


def test_watcher_follows_a_session_through_its_life(h):
    h.import_profile("watched")
    watch = Watch(h, "--connect", "watched", "--username", USERNAME,
                  stdin_text=PASSWORD + "\n")   # the password: a line of stdin
    try:
        m = watch.wait(r"connecting watched: (/org/shimmervpn/session/(\d+))$", 20,
                       "the Connect reply")
        session, number = m.group(1), m.group(2)
        label = r"watched \(session %s\)" % number
        watch.wait(r"%s: session appeared, connecting" % label, 5, "the session appearing")
        watch.wait(r"%s: credentials requested: username, password$" % label, 20,
                   "the credentials request")
        m = watch.wait(r"%s: connected \((.*)\)$" % label, 30, "the connected state")
        props = h.props(session, S1)
        assert props["State"] == "connected"
        assert props["Interface"] in m.group(1) and props["Cipher"] in m.group(1), m.group(0)
        for address in props["Addresses"]:
            assert address in m.group(1), m.group(0)

        # Traffic: the rates go above zero, in and out, then fall back to
        # zero when it stops.
        assert h.ping_through_tunnel(count=20)
        m = watch.wait(r"%s: in ([\d.]+ \S+), out ([\d.]+ \S+)$" % label, 10, "a rate line")
        rate_lines = re.findall(r"%s: in ([\d.]+ \S+), out ([\d.]+ \S+)$" % label,
                                watch.output(), re.M)
        assert any(rates_in_bytes(i) > 0 and rates_in_bytes(o) > 0 for i, o in rate_lines), \
            watch.output()
        # 20 pings of 84 bytes each way in about 2 s: no rate can pass what
        # was sent in one second, nor a counter pass what was sent at all.
        assert all(rates_in_bytes(i) < 64 * 1024 for i, _ in rate_lines), rate_lines
        watch.wait(r"%s: idle \(in 0 B/s, out 0 B/s\)$" % label, 10, "the rates falling to zero")

        r = h.ctl("disconnect", "watched")
        assert r.returncode == 0, r.stdout + r.stderr
        watch.wait(r"%s: disconnected" % label, 10, "the disconnected state")
        watch.wait(r"%s: session is gone$" % label, 15, "the session's object going away")
        assert watch.proc.poll() is None, "the watcher exited:\n" + watch.output()
        assert PASSWORD not in watch.output()
    finally:
        h.stop_helpers()
        h.remove_profile("watched")


def test_watcher_once_modes_and_exit_codes(h):
    h.import_profile("scripted")
    good = os.path.join(h.userdir, "good.pass")
    bad = os.path.join(h.userdir, "bad.pass")
    for path, text in ((good, PASSWORD), (bad, "not-the-password")):
        with open(path, "w") as f:
            f.write(text + "\n")
        os.chown(path, USER_A, USER_A)
        os.chmod(path, 0o600)
    try:
        r = run_watch(h, "--connect", "scripted", "--once", "--timeout", "40",
                      "--username", USERNAME, "--password-file", good)
        assert r.returncode == 0, r.stdout + r.stderr
        assert re.search(r"scripted \(session \d+\): connected", r.stdout), r.stdout
        assert PASSWORD not in r.stdout + r.stderr
        assert h.ctl_json("status", "scripted")["State"] == "connected"

        # Another user can neither see the profile by name nor disconnect it.
        session = h.session_of(h.ctl_json("show", "scripted")["Path"])
        r = run_watch(h, "--disconnect", session, "--once", "--timeout", "20", uid=USER_B)
        assert r.returncode == 4, r.stdout + r.stderr
        assert h.props(session, S1)["State"] == "connected"

        r = run_watch(h, "--disconnect", "scripted", "--once", "--timeout", "20")
        assert r.returncode == 0, r.stdout + r.stderr
        h.wait_tunnel_gone()

        wait_for(lambda: h.session_of(h.ctl_json("show", "scripted")["Path"]) is None, 15,
                 "the ended session to go")
        r = run_watch(h, "--connect", "scripted", "--once", "--timeout", "40",
                      "--username", USERNAME, "--password-file", bad)
        assert r.returncode == 1, r.stdout + r.stderr
        assert re.search(r"scripted \(session \d+\): failed", r.stdout), r.stdout

        r = run_watch(h, "--connect", "no-such-profile", "--once", "--timeout", "20")
        assert r.returncode == 1 and "no profile no-such-profile" in r.stdout, r.stdout
        r = subprocess.run([PYTHON, WATCH, "--address", "unix:path=/nonexistent/bus",
                            "--connect", "x", "--once"], capture_output=True, text=True,
                           timeout=20)
        assert r.returncode == 3, r.stdout + r.stderr
        r = subprocess.run([PYTHON, WATCH, "--once"], capture_output=True, text=True, timeout=20)
        assert r.returncode == 2, r.stdout + r.stderr
    finally:
        h.remove_profile("scripted")   # disconnects a session left running


def test_web_sign_in_hook_escapes_the_url(capsys):
    # Session1.WebAuthRequested calls this: an untrusted URL must be shown
    # without letting it drive the terminal.
    spec = importlib.util.spec_from_file_location("shimmer_watch", WATCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    args = types.SimpleNamespace(once=False, connect=None, disconnect=None, answer_all=False)
    w = mod.Watcher(None, args)
    w.show_web_sign_in("/org/shimmervpn/session/7", "https://sso.example/\x1b]8;;x\x07\u202eevil")
    out = capsys.readouterr().out
    assert "/org/shimmervpn/session/7: sign in at https://sso.example/" in out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "\\x1b]8;;x\\x07\\u202eevil" in out
    assert mod.human_rate(0) == "0 B/s" and mod.human_rate(1536) == "1.5 KiB/s"
    # It is wired to the signal.
    assert '"WebAuthRequested": lambda path, params: self.show_web_sign_in(' in open(WATCH).read()


# ------------------------------------------------- the README's one-liners

def readme_examples():
    """[(name, [(command, [expected output lines])])] from the "Scripting"
    section of dbus/README.md, in order: each `<!-- example: NAME -->`
    before a ```console block, `$ ` starting a command."""
    with open(DBUS_README) as f:
        text = f.read()
    m = re.search(r"^## Scripting\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, "dbus/README.md has no Scripting section"
    examples = []
    for name, block in re.findall(r"<!-- example: ([\w-]+) -->\n```console\n(.*?)^```",
                                  m.group(1), re.M | re.S):
        commands = []
        for line in block.splitlines():
            if line.startswith("$ "):
                commands.append((line[2:], []))
            else:
                assert commands, "example %s: output before a command" % name
                commands[-1][1].append(line)
        examples.append((name, commands))
    return examples


def normalized(lines):
    """Lines with what differs from run to run replaced: profile ids,
    session numbers, unique bus names, counters."""
    out = []
    for line in lines:
        line = re.sub(r"\b[0-9a-f]{32}\b", "<ID>", line)
        line = re.sub(r"/session/\d+", "/session/<N>", line)
        line = re.sub(r":1\.\d+", ":1.<N>", line)
        line = re.sub(r"(\buint64 |^t )\d+", r"\g<1><N>", line)
        out.append(line)
    return out


class Shell:
    """Runs the README's commands as USER_A in USER_A's directory, with the
    system bus being the private one and the build's shimmerctl in PATH;
    variables assigned by a command (VAR=$(...)) are passed to the next."""

    def __init__(self, h):
        self.h = h
        self.vars = {}
        self.env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=h.bus.address, LC_ALL="C",
                        PATH=os.path.dirname(SHIMMERCTL) + ":" + os.environ.get("PATH", ""))
        self.env.pop("SHIMMER_BUS_ADDRESS", None)

    def run(self, command, timeout=30):
        assign = re.match(r"^([A-Z_]+)=\$\(", command)
        script = command + ('\nprintf "%%s" "$%s"' % assign.group(1) if assign else "")
        r = subprocess.run(as_uid(USER_A, ["bash", "-c", script]), capture_output=True,
                           text=True, timeout=timeout, cwd=self.h.userdir,
                           env=dict(self.env, **self.vars), stdin=subprocess.DEVNULL)
        assert r.returncode == 0, "%s\nexit %d: %s%s" % (command, r.returncode, r.stdout,
                                                       r.stderr)
        # shimmerctl check's diagnostics (warnings) go to stderr; nothing else
        # may complain.
        if "shimmerctl check" not in command:
            assert r.stderr == "", "%s\nwrote to stderr: %s" % (command, r.stderr)
        if assign:
            self.vars[assign.group(1)] = r.stdout
            return []
        return r.stdout.splitlines()

    def spawn(self, command):
        """COMMAND running in a process group of its own (stopped by the
        caller with killpg)."""
        return subprocess.Popen(as_uid(USER_A, ["bash", "-c", "exec " + command]),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=self.h.userdir, env=dict(self.env, **self.vars),
                                stdin=subprocess.DEVNULL, start_new_session=True)


def read_until(proc, pattern, timeout):
    """Lines of PROC's stdout until one matches PATTERN; all of them."""
    import selectors
    lines, buf = [], ""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not sel.select(timeout=0.2):
            continue
        chunk = os.read(proc.stdout.fileno(), 65536).decode(errors="replace")
        if not chunk:
            break
        buf += chunk
        *complete, buf = buf.split("\n")
        lines += complete
        if any(re.search(pattern, line) for line in complete):
            return lines
    raise AssertionError("no line matching %r in %ss: %s" % (pattern, timeout, lines + [buf]))


def test_readme_one_liners_run(h):
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed (the README's name listing uses it)")
    examples = readme_examples()
    names = [name for name, _ in examples]
    expected = ["import", "list-profiles", "list-names", "profile-properties", "connect",
                "credentials", "status", "counters", "list-sessions", "monitor", "disconnect",
                "remove"]
    assert names == expected, "the README's examples changed: %s; update this test" % names

    # What the commands read: the profile (naming USER_A's files) and the
    # password, in USER_A's directory.
    h.write_profile("work", h.profile_text())
    pw = os.path.join(h.userdir, "password.txt")
    with open(pw, "w") as f:
        f.write(PASSWORD + "\n")
    os.chown(pw, USER_A, USER_A)
    os.chmod(pw, 0o600)
    assert h.call_ok(ROOT, M1, "ListProfiles", uid=USER_A)[0] == [], \
        "USER_A has profiles left by another test"
    # Ended sessions of earlier tests stay on the bus for 5 s.
    wait_for(lambda: h.call_ok(ROOT, M1, "ListSessions", uid=USER_A)[0] == [], 15,
             "earlier sessions to go")

    sh = Shell(h)
    ex = dict(examples)

    def run_exact(name):
        """Every command of example NAME; the output must be what the
        README shows, up to ids and counters."""
        outputs = []
        for command, shown in ex[name]:
            out = sh.run(command)
            assert normalized(out) == normalized(shown), \
                "README example %s:\n$ %s\nprinted:\n%s\nthe README shows:\n%s" % (
                    name, command, "\n".join(out), "\n".join(shown))
            outputs.append(out)
        return outputs

    try:
        run_exact("import")
        profile = sh.vars["PROFILE"]
        assert re.fullmatch(r"/org/shimmervpn/profile/[0-9a-f]{32}", profile), profile
        assert h.props(profile, P1)["Name"] == "work"
        assert h.props(profile, P1)["Owner"] == USER_A

        run_exact("list-profiles")
        (out,) = run_exact("list-names")
        assert out == ["work\t" + profile]
        run_exact("profile-properties")

        # Connect, then the state once the session waits for credentials.
        (command, _), (state_command, shown) = ex["connect"]
        sh.run(command)
        session = sh.vars["SESSION"]
        assert re.fullmatch(r"/org/shimmervpn/session/\d+", session), session
        wait_for(lambda: h.props(session, S1)["StateReason"] == "waiting for credentials", 20,
                 "the session to ask for credentials", interval=0.2)
        out = sh.run(state_command)
        assert out == shown, (out, shown)

        run_exact("credentials")
        wait_for(lambda: h.props(session, S1)["State"] == "connected", 30,
                 "the session to connect", interval=0.2)

        # Status: every key the README shows is in the real output, and the
        # values that are sure.
        ((command, shown),) = ex["status"]
        out = "\n".join(sh.run(command))
        assert out.startswith("({") and out.endswith("},)"), out
        for key in re.findall(r"'(\w+)': <", "\n".join(shown)):
            assert "'%s': <" % key in out, "%s not in %s" % (key, out)
        assert "'State': <'connected'>" in out, out
        assert "'Cipher': <'AES-256-GCM'>" in out, out
        assert "'Profile': <objectpath '%s'>" % profile in out, out

        assert h.ping_through_tunnel(count=3)
        wait_for(lambda: h.props(session, S1)["BytesIn"] > 0, 5, "the counters to count")
        (out,) = run_exact("counters")
        assert all(int(line.split()[1]) > 0 for line in out), out
        (out,) = run_exact("list-sessions")
        assert out == ["([objectpath '%s'],)" % session], out

        # Monitor: runs until stopped; traffic makes the counters' change
        # show up.
        ((command, shown),) = ex["monitor"]
        monitor = sh.spawn(command)
        try:
            lines = read_until(monitor, r"is owned by", 10)
            assert normalized(lines) == normalized(shown[:2]), lines
            assert h.ping_through_tunnel(count=5)
            counters = r"^%s: org\.freedesktop\.DBus\.Properties\.PropertiesChanged " \
                       r"\('org\.shimmervpn\.Session1', \{.*'BytesIn': <uint64 \d+>" % session
            assert re.search(counters.replace(session, r"/org/shimmervpn/session/\d+"),
                             shown[2]), "the README's monitor line is not what is checked"
            read_until(monitor, counters, 10)
        finally:
            os.killpg(monitor.pid, signal.SIGTERM)
            monitor.wait(5)
            monitor.stdout.close()
            monitor.stderr.close()

        run_exact("disconnect")
        h.wait_tunnel_gone()
        state = h.wait_session_gone_or(session, ("disconnected",))
        assert state["state"] in ("disconnected", None), state
        run_exact("remove")
        assert h.call_ok(ROOT, M1, "ListProfiles", uid=USER_A)[0] == []
    finally:
        for p in h.call_ok(ROOT, M1, "ListProfiles", uid=USER_A)[0]:
            h.call(p, P1, "Remove", uid=USER_A)


# ------------------------------------------------------- bash completion

def complete(words, uid=USER_A, env=None, line=None):
    """Runs the completion function on WORDS (the last one being completed)
    in a fresh bash as UID; returns (COMPREPLY, seconds it took)."""
    script = r'''
source "$1"; shift
COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE=${COMP_LINE_OVERRIDE:-"${COMP_WORDS[*]}"}; COMP_POINT=${#COMP_LINE}
_shimmerctl
printf '%s\n' "${COMPREPLY[@]}"
'''
    e = dict(os.environ, LC_ALL="C.UTF-8")
    e.pop("SHIMMER_BUS_ADDRESS", None)
    e.update(env or {})
    if line is not None:
        e["COMP_LINE_OVERRIDE"] = line
    t0 = time.monotonic()
    r = subprocess.run(as_uid(uid, ["bash", "--norc", "--noprofile", "-c", script, "bash",
                                    COMPLETION] + list(words)),
                       capture_output=True, text=True, timeout=30, env=e,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return [w for w in r.stdout.split("\n") if w], time.monotonic() - t0


def unquote(word):
    """What bash makes of a completion as it is inserted."""
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", 'printf "%s" ' + word],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_bash_completion_from_the_daemon(h):
    addr = h.bus.address
    names = ["office", "office two", 'it\'s "home"', "café"]
    for name in names:
        path = h.write_profile("c%d" % names.index(name), h.profile_text())
        r = h.ctl("import", path, "--name", name)
        assert r.returncode == 0, r.stdout + r.stderr
    try:
        # Commands and options need no daemon.
        got, _ = complete([SHIMMERCTL, "dis"])
        assert got == ["disconnect"]
        got, _ = complete([SHIMMERCTL, "--bus-address", addr, "connect", "x", "--w"])
        assert got == ["--wait"]

        # Profile names, from the daemon on the bus named on the line, as
        # the user (each sees their own), quoted for the shell.
        got, took = complete([SHIMMERCTL, "--bus-address", addr, "connect", ""])
        assert sorted(unquote(w) for w in got) == sorted(names), got
        assert took < 3, took
        got, _ = complete([SHIMMERCTL, "--bus-address", addr, "show", "off"])
        assert sorted(unquote(w) for w in got) == ["office", "office two"], got
        assert "office\\ two" in got, got
        got, _ = complete([SHIMMERCTL, "--bus-address", addr, "remove", "it"])
        assert [unquote(w) for w in got] == ['it\'s "home"'], got
        got, _ = complete([SHIMMERCTL, "--bus-address", addr, "connect", ""], uid=USER_B)
        assert got == [], got
        # The bus from the environment, and --bus-address=ADDR, which bash
        # cuts into pieces at '=' and ':' in COMP_WORDS.
        got, _ = complete([SHIMMERCTL, "rename", "caf"], env={"SHIMMER_BUS_ADDRESS": addr})
        assert [unquote(w) for w in got] == ["café"], got
        pieces = re.split(r"([=:])", "--bus-address=" + addr)
        got, _ = complete([SHIMMERCTL] + pieces + ["show", "o"],
                          line=" ".join([SHIMMERCTL, "--bus-address=" + addr, "show", "o"]))
        assert sorted(unquote(w) for w in got) == ["office", "office two"], got
        # Only the profile's own argument: not the new name of rename.
        got, _ = complete([SHIMMERCTL, "--bus-address", addr, "rename", "office", ""])
        assert got == [], got

        # disconnect and status: the profiles that have a session.
        got, _ = complete([SHIMMERCTL, "--bus-address", addr, "disconnect", ""])
        assert got == [], got
        r = h.ctl("connect", "office two", "--wait", input="%s\n%s\n" % (USERNAME, PASSWORD),
                  timeout=40)
        assert r.returncode == 0, r.stdout + r.stderr
        for command in ("disconnect", "status"):
            got, _ = complete([SHIMMERCTL, "--bus-address", addr, command, ""])
            assert got == ["office\\ two"], got
        r = h.ctl("disconnect", "office two")
        assert r.returncode == 0, r.stdout + r.stderr

        # No daemon, or no bus: nothing, quietly, quickly.
        got, took = complete([SHIMMERCTL, "--bus-address", "unix:path=/nonexistent/bus",
                              "connect", ""])
        assert got == [] and took < 3, (got, took)
    finally:
        for name in names:
            h.remove_profile(name)
