# SPDX-License-Identifier: MIT
"""nm-shimmer-auth-dialog through the real binary, the way NetworkManager's
secret agents run it: arguments -u/-n/-s/-i/-r/-t/--external-ui-mode, the
connection's vpn.data and vpn.secrets on stdin (DATA_KEY=/DATA_VAL=/
SECRET_KEY=/SECRET_VAL=, DONE), and its answer on stdout: a key file parsed
here with GLib.KeyFile (external UI mode), or NAME/VALUE lines then a QUIT
handshake (the older line protocol).

SHIMMER_NM_AUTH_DIALOG names the built binary.
"""
import os
import select
import subprocess
import time

import pytest
from gi.repository import GLib

DIALOG = os.environ.get("SHIMMER_NM_AUTH_DIALOG", "nm-shimmer-auth-dialog")
SERVICE = "org.freedesktop.NetworkManager.shimmer"
UI = "VPN Plugin UI"
NAME = "Work VPN"

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def request(data, secrets=None, trailer="QUIT\n"):
    """The text an agent writes: every item, a multi-line value as "="
    continuation lines (as nmcli does), DONE, then TRAILER."""
    out = []

    def item(tag, key, value):
        lines = value.split("\n")
        out.append("%s_KEY=%s\n" % (tag, key))
        out.append("%s_VAL=%s\n" % (tag, lines[0]))
        out.extend("=%s\n" % line for line in lines[1:])
        out.append("\n")

    for k, v in data.items():
        item("DATA", k, v)
    for k, v in (secrets or {}).items():
        item("SECRET", k, v)
    out.append("DONE\n")
    out.append(trailer)
    return "".join(out)


def run(args, data=None, secrets=None, name=NAME, service=SERVICE, stdin=None):
    argv = [DIALOG]
    if name is not None:
        argv += ["-u", "5f1cbf6e-0000-4000-8000-000000000001", "-n", name]
    if service is not None:
        argv += ["-s", service]
    argv += args
    if stdin is None:
        stdin = request(data if data is not None else {"remote": "vpn.example.com"}, secrets)
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=20)


def external(data, secrets=None, hints=(), extra=("-i",)):
    args = ["--external-ui-mode", *extra]
    for h in hints:
        args += ["-t", h]
    p = run(args, data, secrets)
    assert p.returncode == 0, p.stderr
    for value in (secrets or {}).values():
        assert value not in p.stderr
    kf = GLib.KeyFile()
    raw = p.stdout.encode()
    kf.load_from_data(p.stdout, len(raw), GLib.KeyFileFlags.NONE)
    groups, _ = kf.get_groups()
    # nmcli insists on the UI group first; GNOME Shell on Version=2.
    assert groups[0] == UI
    assert kf.get_integer(UI, "Version") == 2
    assert kf.get_string(UI, "Title")
    assert NAME in kf.get_string(UI, "Description")
    fields = {}
    for g in groups[1:]:
        # GNOME Shell reads these four from every group, nmcli ForceEcho.
        fields[g] = {
            "Value": kf.get_string(g, "Value"),
            "Label": kf.get_string(g, "Label"),
            "IsSecret": kf.get_boolean(g, "IsSecret"),
            "ShouldAsk": kf.get_boolean(g, "ShouldAsk"),
            "ForceEcho": kf.get_boolean(g, "ForceEcho"),
        }
        assert fields[g]["Label"]
    return kf, groups[1:], fields


def asked(fields):
    return [g for g, f in fields.items() if f["ShouldAsk"]]


# ---------- external UI mode ----------

def test_password_not_stored_is_asked():
    _, groups, f = external({"username": "alice", "password-flags": "1", "ca": CA})
    assert groups == ["password"]
    assert f["password"] == {"Value": "", "Label": "Password", "IsSecret": True,
                             "ShouldAsk": True, "ForceEcho": False}


def test_missing_username_is_asked_shown_while_typed():
    kf, groups, f = external({"password-flags": "1"})
    assert groups == ["username", "password"]
    assert asked(f) == ["username", "password"]
    # IsSecret=true: nmcli drops groups with IsSecret=false; ForceEcho shows
    # the user name while it is typed.
    assert f["username"]["IsSecret"] and f["username"]["ForceEcho"]
    assert not f["password"]["ForceEcho"]
    assert "user name" in kf.get_string(UI, "Description")


def test_stored_password_nothing_asked():
    kf, groups, f = external({"username": "alice", "password-flags": "0"}, {"password": "pw 1"})
    assert groups == ["password"]
    assert asked(f) == []
    # Listed with its value: GNOME Shell hands back what is not asked.
    assert f["password"]["Value"] == "pw 1"
    assert "nothing more" in kf.get_string(UI, "Description")


def test_reprompt_asks_again_and_no_interaction_asks_nothing():
    data = {"username": "alice", "password-flags": "1"}
    _, _, f = external(data, {"password": "old"}, extra=("-i", "-r"))
    assert asked(f) == ["password"]
    assert f["password"]["Value"] == "old"
    _, _, f = external(data, {}, extra=())
    assert asked(f) == []


def test_static_challenge():
    kf, groups, f = external({"username": "alice", "password-flags": "1",
                              "static-challenge": '"Enter PIN" 1', "otp-flags": "2"})
    assert groups == ["password", "otp"]
    assert asked(f) == ["password", "otp"]
    assert f["otp"]["Label"] == "Enter PIN"
    assert f["otp"]["ForceEcho"] and f["otp"]["IsSecret"]
    assert "Enter PIN" in kf.get_string(UI, "Description")
    # Echo 0: hidden.
    _, _, f = external({"static-challenge": "Token 0", "otp-flags": "2"})
    assert asked(f) == ["otp"] and not f["otp"]["ForceEcho"]


def test_dynamic_challenge_hints():
    data = {"username": "alice", "password-flags": "1", "cert-pass-flags": "1"}
    kf, groups, f = external(data, {"password": "pw"},
                             hints=["challenge-response", "x-vpn-message:Enter the code",
                                    "x-shimmer-echo"])
    assert groups == ["challenge-response"]
    assert asked(f) == ["challenge-response"]
    assert f["challenge-response"]["IsSecret"] and f["challenge-response"]["ForceEcho"]
    assert "Enter the code" in kf.get_string(UI, "Description")
    # Without the echo hint: hidden.
    _, _, f = external(data, hints=["challenge-response", "x-vpn-message:Code"])
    assert not f["challenge-response"]["ForceEcho"]
    # NetworkManager >= 1.46's tag: returned under the tagged name.
    _, groups, f = external(data, hints=["x-dynamic-challenge-echo:challenge-response",
                                         "x-vpn-message:Code"])
    assert groups == ["x-dynamic-challenge-echo:challenge-response"]
    assert f[groups[0]]["ShouldAsk"] and f[groups[0]]["ForceEcho"]


def test_metadata_hints_only_fall_back_to_profile():
    _, groups, f = external({"username": "alice", "password-flags": "1"},
                            hints=["x-vpn-message:Hello", "x-unknown", "http-proxy-password"])
    assert groups == ["password"] and asked(f) == ["password"]


def test_cert_pass_for_encrypted_key():
    _, groups, f = external({"cert-pass-flags": "1", "ca": CA}, {"key-pem": "PEM\nLINES"})
    assert groups == ["cert-pass"]
    assert f["cert-pass"]["ShouldAsk"] and not f["cert-pass"]["ForceEcho"]
    assert f["cert-pass"]["Label"] == "Private key passphrase"


def test_values_survive_key_file_escaping():
    value = "  lead\\back\ttab=x;y#z [g] trail  "
    _, _, f = external({"username": "alice", "password-flags": "0"}, {"password": value})
    assert f["password"]["Value"] == value


def test_exits_without_waiting_for_quit():
    # GNOME Shell reads the form until end of file, sends no QUIT and keeps
    # stdin open meanwhile.
    proc = subprocess.Popen([DIALOG, "-u", "u", "-n", NAME, "-s", SERVICE, "-i",
                             "--external-ui-mode"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        proc.stdin.write(request({"password-flags": "1", "username": "a"},
                                 trailer="\n").encode())
        proc.stdin.flush()
        assert proc.wait(timeout=10) == 0
        assert proc.stdout.read().startswith(b"[VPN Plugin UI]\n")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdin.close()


# ---------- refusals ----------

def test_wrong_service():
    p = run(["--external-ui-mode"], service="org.freedesktop.NetworkManager.openvpn")
    assert p.returncode == 1
    assert "org.freedesktop.NetworkManager.openvpn" in p.stderr
    assert SERVICE in p.stderr
    assert p.stdout == ""


@pytest.mark.parametrize("drop", ["-u", "-n", "-s"])
def test_missing_argument(drop):
    argv = ["-u", "u", "-n", NAME, "-s", SERVICE, "--external-ui-mode"]
    i = argv.index(drop)
    del argv[i:i + 2]
    p = subprocess.run([DIALOG, *argv], input=request({"a": "b"}), capture_output=True,
                       text=True, timeout=20)
    assert p.returncode == 1
    assert "Usage" in p.stderr
    assert p.stdout == ""


def test_unknown_option():
    p = run(["--bogus"])
    assert p.returncode == 1 and "Usage" in p.stderr


def test_nothing_on_stdin():
    p = run(["--external-ui-mode"], stdin="")
    assert p.returncode == 1
    assert "standard input" in p.stderr


# ---------- the line protocol (no external UI) ----------

def test_line_protocol_refuses_to_ask():
    p = run(["-i"], {"username": "alice", "password-flags": "1", "cert-pass-flags": "0"},
            {"cert-pass": "s3cr3t-pass"})
    assert p.returncode == 1
    assert "--external-ui-mode" in p.stderr
    assert "password" in p.stderr
    assert "s3cr3t-pass" not in p.stderr
    assert p.stdout == ""


def test_line_protocol_hands_back_and_waits_for_quit():
    argv = [DIALOG, "-u", "u", "-n", NAME, "-s", SERVICE, "-i"]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        data = {"username": "alice", "password-flags": "0", "cert-pass-flags": "1"}
        proc.stdin.write(request(data, {"password": "pw", "cert-pass": "cp",
                                        "key-pem": "PEM\nLINES"}, trailer="\n").encode())
        proc.stdin.flush()
        expected = b"password\npw\ncert-pass\ncp\n\n\n"
        got = b""
        deadline = time.monotonic() + 10
        while len(got) < len(expected) and time.monotonic() < deadline:
            r, _, _ = select.select([proc.stdout], [], [], 0.5)
            if r:
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                got += chunk
        assert got == expected
        time.sleep(0.3)
        assert proc.poll() is None, "exited before QUIT"
        proc.stdin.write(b"QUIT\n\n")
        proc.stdin.flush()
        assert proc.wait(timeout=10) == 0
        assert proc.stdout.read() == b""
        assert proc.stderr.read() == b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_line_protocol_without_interaction_hands_back_what_it_has():
    p = run([], {"username": "alice", "password-flags": "1", "cert-pass-flags": "0"},
            {"cert-pass": "cp"})
    assert p.returncode == 0
    assert p.stdout == "cert-pass\ncp\n\n\n"
