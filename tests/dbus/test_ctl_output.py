# SPDX-License-Identifier: MIT
"""shimmerctl shows untrusted text without letting it drive the terminal
(issue 9, item 3).

Text that comes from a profile (its name, a static-challenge text, a
directive the parser quotes), from a server (an AUTH_FAILED reason, a
dynamic challenge, log lines) or from another user's objects reaches a
person's terminal. Escape sequences in it (ESC [31m, the C1 CSI U+009B, a
right-to-left override U+202E, bytes that are not UTF-8) could recolour,
move, rewrite or reorder what the person reads. Every case here runs the
real shimmerctl against a real shimmerd on a private bus (the fixtures of
test_service.py) and an OpenVPN 2.6 server that sends such text, and checks
the bytes shimmerctl wrote: no control character but the newline, no C1
control, no bidirectional control, nothing that is not UTF-8, and the text
still shown, escaped (\\x1b, \\u009b, \\u202e).

    SHIMMERD=... SHIMMERCTL=... python3 -m pytest -q tests/dbus/test_ctl_output.py

`check` needs no daemon and runs unprivileged; the rest needs root (skips
with the reason otherwise).
"""
import json
import os
import signal
import subprocess

import pytest

import test_service as ts
from test_service import env, h  # noqa: F401 (the fixtures, one set for this module)

SHIMMERCTL = ts.SHIMMERCTL
USER_A = ts.USER_A

ESC = "\x1b[31m"     # SGR red: the least an attacker would do
CSI = "\u009b"       # the C1 control sequence introducer, as a character
RLO = "\u202e"       # RIGHT-TO-LEFT OVERRIDE
HOSTILE = "a" + ESC + "b" + CSI + "2J" + RLO + "c"
# ... as the escapes a person sees instead.
SHOWN = ("\\x1b", "\\u009b", "\\u202e")

# Every Unicode bidirectional formatting control.
BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def unsafe_chars(data):
    """What in DATA (bytes a terminal would get) is not plain text: control
    characters but the newline, C1 controls, bidi controls; bytes that are
    not UTF-8. Returns a list of descriptions (empty when safe)."""
    found = []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return ["not UTF-8 at byte %d: %r" % (e.start, data[max(0, e.start - 20):e.start + 20])]
    for i, ch in enumerate(text):
        o = ord(ch)
        if ch == "\n":
            continue
        if o < 0x20 or 0x7f <= o <= 0x9f or ch in BIDI:
            found.append("U+%04X at %d in %r" % (o, i, text[max(0, i - 30):i + 30]))
    return found


def assert_terminal_safe(data, where):
    bad = unsafe_chars(data)
    assert not bad, "%s writes terminal controls: %s" % (where, "; ".join(bad[:5]))


def assert_shown(data, where, shown=SHOWN):
    text = data.decode("utf-8", "replace")
    for s in shown:
        assert s in text, "%s does not show %s:\n%s" % (where, s, text)


def ctl_bytes(h, *args, uid=USER_A, input=None, timeout=60):
    """shimmerctl's exit code, standard output and standard error, as bytes."""
    argv = [SHIMMERCTL, "--bus-address", h.bus.address] + list(args)
    r = subprocess.run(ts.as_uid(uid, argv), input=input, capture_output=True,
                       stdin=None if input is not None else subprocess.DEVNULL,
                       timeout=timeout, env=dict(os.environ, LC_ALL="C"))
    return r.returncode, r.stdout, r.stderr


def _needs_shimmerctl():
    return pytest.mark.skipif(SHIMMERCTL is None, reason="shimmerctl not built (set $SHIMMERCTL)")


def _needs_lab():
    reason = ts._skip_reason()
    return pytest.mark.skipif(reason is not None, reason=reason or "")


# ------------------------------------------------------------------ check

@_needs_shimmerctl()
def test_check_quotes_a_hostile_directive_escaped(tmp_path):
    # An unknown directive with ESC, a raw 0x9b byte (CSI in Latin-1
    # terminals; not UTF-8) and U+202E: the FILE:LINE diagnostic quotes it.
    path = tmp_path / "hostile.ovpn"
    path.write_bytes(b"client\ndev tun\nremote 192.0.2.1 1194\n"
                     b"\x1b[31mevil\x9b2J" + RLO.encode() + b"x arg\n")
    r = subprocess.run([SHIMMERCTL, "check", str(path)], capture_output=True, timeout=30)
    assert r.returncode == 1, r.stderr
    assert b"unknown directive" in r.stderr, r.stderr
    assert_terminal_safe(r.stdout + r.stderr, "shimmerctl check")
    assert_shown(r.stderr, "shimmerctl check", ("\\x1b[31mevil\\x9b2J\\u202ex",))

    # Ignored with ignore-unknown-option: a warning quotes it, and the file
    # is usable.
    path.write_bytes(b"client\ndev tun\nremote 192.0.2.1 1194\nca ca.crt\n"
                     b"ignore-unknown-option " + HOSTILE.encode() + b"\n"
                     + HOSTILE.encode() + b" arg\n")
    (tmp_path / "ca.crt").write_bytes(open(ts.labmod.fixture("ca.crt"), "rb").read())
    r = subprocess.run([SHIMMERCTL, "check", str(path)], capture_output=True, timeout=30)
    assert b"unknown option ignored" in r.stderr, r.stderr
    assert_terminal_safe(r.stdout + r.stderr, "shimmerctl check (a warning)")
    assert_shown(r.stderr, "shimmerctl check (a warning)")


# -------------------------------------------------- profiles on the daemon

def hostile_profile(h, server=None, challenge=HOSTILE):
    """A profile for SERVER (the harness's own by default) with a hostile
    static-challenge text and a hostile directive that is ignored."""
    extra = ["auth-user-pass", "ignore-unknown-option " + HOSTILE, HOSTILE + " arg"]
    if challenge is not None:
        extra.append('static-challenge "%s" 0' % challenge)
    text = h.lab.client_config({"auth_user_pass": False, "extra": extra},
                               server or h.server)
    return text.replace(ts.labmod.DATA + "/", h.userdir + "/")


@_needs_lab()
def test_profile_commands_show_hostile_text_escaped(h):
    path = h.write_profile("hostile", hostile_profile(h))
    # The daemon refuses names with controls, bidi controls included; the
    # refusal quotes the name, escaped.
    code, out, err = ctl_bytes(h, "import", path, "--name", "evil" + RLO + "name")
    assert code == 1, err
    assert b"bidirectional-text controls" in err, err
    assert_terminal_safe(out + err, "shimmerctl import (a hostile name)")
    name = "evil-name"
    code, out, err = ctl_bytes(h, "import", path, "--name", name)
    assert code == 0, err
    assert b"unknown option ignored" in err, err
    assert_terminal_safe(out + err, "shimmerctl import")
    assert_shown(out + err, "shimmerctl import")
    try:
        code, out, err = ctl_bytes(h, "show", name)
        assert code == 0, err
        assert_terminal_safe(out + err, "shimmerctl show")
        assert b"Challenge:" in out, out
        assert_shown(out, "shimmerctl show")

        code, out, err = ctl_bytes(h, "list")
        assert code == 0, err
        assert_terminal_safe(out + err, "shimmerctl list")
        assert b"evil-name" in out, out

        # Root lists every user's profiles: another user's names.
        code, out, err = ctl_bytes(h, "list", uid=0)
        assert code == 0, err
        assert_terminal_safe(out + err, "shimmerctl list as root")

        code, out, err = ctl_bytes(h, "rename", name, "other" + "\u2066" + "name")
        assert code == 1, err
        assert_terminal_safe(out + err, "shimmerctl rename (a hostile name)")
        renamed = "other-name"
        code, out, err = ctl_bytes(h, "rename", name, renamed)
        assert code == 0, err
        assert_terminal_safe(out + err, "shimmerctl rename")
        name = renamed
        # A refusal quotes the name too.
        code, out, err = ctl_bytes(h, "show", "no" + RLO + "such")
        assert code == 1
        assert_terminal_safe(out + err, "shimmerctl show (no such profile)")
    finally:
        code, out, err = ctl_bytes(h, "remove", name)
        assert code == 0, err
        assert_terminal_safe(out + err, "shimmerctl remove")


def json_strings(doc):
    """Every string in a parsed JSON document, keys too."""
    if isinstance(doc, str):
        yield doc
    elif isinstance(doc, dict):
        for k, v in doc.items():
            yield k
            yield from json_strings(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from json_strings(v)


def _json_outputs(h, name, path):
    outputs = []
    for args in (("list", "--json"), ("show", name, "--json")):
        code, out, err = ctl_bytes(h, *args)
        assert code == 0, err
        outputs.append((" ".join(args), out))
    r = subprocess.run([SHIMMERCTL, "check", "--json", path], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    outputs.append(("check --json", r.stdout))
    return outputs


@_needs_lab()
def test_json_output_escapes_c0_controls(h):
    path = h.write_profile("hostile-json", hostile_profile(h))
    name = "json-name"
    code, out, err = ctl_bytes(h, "import", path, "--name", name)
    assert code == 0, err
    try:
        for what, out in _json_outputs(h, name, path):
            assert b"\x1b" not in out and b"\\u001b" in out, (what, out)
            assert any(HOSTILE in s for s in json_strings(json.loads(out))), what
    finally:
        h.remove_profile(name)


@_needs_lab()
@pytest.mark.xfail(strict=True, reason="libshimmer's shimmer_json_append_string writes C1 and "
                   "bidi controls raw (the change is in src/config-output.c)")
def test_json_output_escapes_c1_and_bidi_controls(h):
    path = h.write_profile("hostile-json2", hostile_profile(h))
    name = "json2-name"
    code, out, err = ctl_bytes(h, "import", path, "--name", name)
    assert code == 0, err
    try:
        for what, out in _json_outputs(h, name, path):
            assert_terminal_safe(out.replace(b"\n", b""), "shimmerctl " + what)
            assert json.loads(out)
    finally:
        h.remove_profile(name)


# ------------------------------------------------- a server's hostile text

# A server that lets nobody in and says why with terminal controls: ESC
# [31m, U+009B and U+202E (as octal UTF-8 for printf). The password "crv1"
# gets a dynamic challenge (CRV1) whose text holds them instead. What kind
# of password came is noted in hostile-auth.seen beside the script.
HOSTILE_SH = r"\033[31mdenied\302\2332J\342\200\256reason"
AUTH_SCRIPT = """#!/bin/sh
pass=$(sed -n 2p "$1")
case "$pass" in SCRV1:*) kind=scrv1 ;; CRV1:*) kind=crv1 ;; *) kind=plain ;; esac
echo "$kind" >> "$(dirname "$0")/hostile-auth.seen"
if [ -n "$auth_failed_reason_file" ]; then
    if [ "$pass" = crv1 ]; then
        printf 'CRV1:R,E:st-9:YWxpY2U=:code \\033[31mhere\\302\\233\\342\\200\\256' \\
            > "$auth_failed_reason_file"
    else
        printf '%s' > "$auth_failed_reason_file"
    fi
fi
exit 1
""" % HOSTILE_SH


@pytest.fixture(scope="module")
def hostile_server(env):  # noqa: F811 (env is the imported fixture)
    script = os.path.join(env.lab.dir, "hostile-auth.sh")
    with open(script, "w") as f:
        f.write(AUTH_SCRIPT)
    os.chmod(script, 0o755)
    # Stopped with the lab, by pid, when the module ends.
    # Beside the harness's server: its own port and tunnel networks.
    return env.lab.start_openvpn_server(
        {"extra": ["script-security 2", "auth-user-pass-verify %s via-file" % script],
         "tunnel_v4": "10.215.%d.0/24" % env.lab.n, "tunnel_v6": "fd5e:101:%d::/64" % env.lab.n},
        name="hostile")


@_needs_lab()
def test_auth_failed_reason_and_monitor_escaped(h, hostile_server):
    monitor_log = os.path.join(h.lab.dir, "monitor-hostile.log")
    monitor = h.spawn([SHIMMERCTL, "--bus-address", h.bus.address, "monitor"], uid=USER_A,
                      output=monitor_log)
    ts.wait_for(lambda: "on the bus" in open(monitor_log, errors="replace").read(), 10,
                "shimmerctl monitor")
    path = h.write_profile("authfail", hostile_profile(h, hostile_server, challenge=None))
    name = "auth-fail"
    code, out, err = ctl_bytes(h, "import", path, "--name", name)
    assert code == 0, err
    try:
        # AUTH_FAILED,<reason>: connect --wait says why it failed.
        code, out, err = ctl_bytes(h, "connect", name, "--wait", "--verbose",
                                   input=b"alice\nwrong\n", timeout=40)
        assert code == 1, out + err
        assert b"Connection failed" in err, err
        assert_terminal_safe(out + err, "shimmerctl connect --wait (AUTH_FAILED)")
        assert_shown(err, "shimmerctl connect --wait (AUTH_FAILED)")
        profile = h.ctl_json("show", name)["Path"]
        ts.wait_for(lambda: h.session_of(profile) is None, 15, "the failed session to go")

        # A dynamic challenge: its text in CredentialsRequested.
        code, out, err = ctl_bytes(h, "connect", name, "--wait",
                                   input=b"alice\ncrv1\n42\n", timeout=40)
        assert code == 1, out + err
        assert_terminal_safe(out + err, "shimmerctl connect --wait (a challenge)")
        ts.wait_for(lambda: h.session_of(profile) is None, 15, "the failed session to go")

        # status of a failed session shows its StateReason: one that lingers.
        code, out, err = ctl_bytes(h, "status")
        assert_terminal_safe(out + err, "shimmerctl status")
    finally:
        code, out, err = ctl_bytes(h, "remove", name)
        monitor.send_signal(signal.SIGINT)
        monitor.wait(10)
    seen = open(monitor_log, "rb").read()
    assert b"credentials requested" in seen, seen
    assert b"StateReason=" in seen, seen
    assert_terminal_safe(seen, "shimmerctl monitor")
    # The reason as StateReason and in the session's log; the challenge.
    assert_shown(seen, "shimmerctl monitor")
    assert b"code \\x1b[31mhere\\u009b\\u202e" in seen, seen
