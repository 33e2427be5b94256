# SPDX-License-Identifier: MIT
"""shimmerctl's prompts on a terminal (issue 9, item 3 and the prompt's
signals).

shimmerctl runs with a pseudo-terminal as its standard input, so it shows
its prompts and reads secrets with echo off, against a real shimmerd on a
private bus (the fixtures of test_service.py) and OpenVPN 2.6 servers:
  - a static challenge's text is shown escaped as the prompt, and with
    --wait the session asks for the user name, password and answer together
    (a password given to Connect would go without the answer).

    SHIMMERD=... SHIMMERCTL=... python3 -m pytest -q tests/dbus/test_ctl_prompt.py

Needs root; skips with the reason otherwise.
"""
import os
import select
import subprocess
import termios
import time

import test_service as ts
from test_service import env, h  # noqa: F401 (the fixtures, one set for this module)
from test_ctl_output import (  # noqa: F401 (hostile_server is a fixture)
    _needs_lab, assert_shown, assert_terminal_safe, ctl_bytes, hostile_profile, hostile_server)

SHIMMERCTL = ts.SHIMMERCTL
USER_A = ts.USER_A

class Pty:
    """shimmerctl with a pseudo-terminal as standard input (prompts are
    shown, answers read without echo) and pipes for its output."""

    def __init__(self, h, args, uid=USER_A):
        self.master, self.slave = os.openpty()
        os.fchown(self.slave, USER_A, -1)
        argv = ts.as_uid(uid, [SHIMMERCTL, "--bus-address", h.bus.address] + list(args))
        self.proc = subprocess.Popen(argv, stdin=self.slave, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, preexec_fn=ts._pdeathsig,
                                     env=dict(os.environ, LC_ALL="C"))
        self.err = b""

    def echo_on(self):
        return bool(termios.tcgetattr(self.slave)[3] & termios.ECHO)

    def _read_err(self, wait):
        ready, _, _ = select.select([self.proc.stderr], [], [], wait)
        if ready:
            chunk = os.read(self.proc.stderr.fileno(), 4096)
            self.err += chunk
            return bool(chunk)
        return True

    def read_until(self, needle, count=1, timeout=20):
        """Reads standard error until NEEDLE was shown COUNT times; whether
        it was."""
        deadline = time.monotonic() + timeout
        while self.err.count(needle) < count and time.monotonic() < deadline:
            if not self._read_err(0.2):
                break
        return self.err.count(needle) >= count

    def answer(self, text, secret=True, timeout=10):
        """Types TEXT once the prompt reads it: for a secret, once echo is
        off (the prompt flushes what was typed before that)."""
        if secret:
            ts.wait_for(lambda: not self.echo_on() or self.proc.poll() is not None, timeout,
                        "the prompt to turn echo off")
        os.write(self.master, text.encode() + b"\n")

    def converse(self, answers, timeout=40):
        """Answers each prompt as it appears (ANSWERS: (what the prompt
        says, the answer, whether it is secret)) until shimmerctl exits or
        TIMEOUT; returns how often each was answered."""
        answered = {needle: 0 for needle, _, _ in answers}
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            if not self._read_err(0.2):
                break
            for needle, text, secret in answers:
                if self.err.count(needle) > answered[needle]:
                    answered[needle] += 1
                    self.answer(text, secret)
        return answered

    def finish(self, timeout=30):
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate(timeout=5)
            raise AssertionError("shimmerctl still runs after %ds; stderr %r"
                                 % (timeout, self.err + err))
        self.err += err
        return self.proc.returncode, out, self.err

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


@_needs_lab()
def test_static_challenge_prompt_on_a_terminal_is_escaped(h, hostile_server):  # noqa: F811
    # The static challenge's text is the prompt of the answer, asked for
    # after the user name and password: all three go to the session.
    path = h.write_profile("prompted", hostile_profile(h, hostile_server))
    code, out, err = ctl_bytes(h, "import", path, "--name", "prompted")
    assert code == 0, err
    t = Pty(h, ["connect", "prompted", "--wait"])
    try:
        answered = t.converse([(b"Username: ", "alice", False), (b"Password: ", "wrong", True),
                               (b"\\u202ec ", "123456", True)])
        code, out, err = t.finish()
        assert answered[b"\\u202ec "] >= 1, err
        assert code == 1, out + err
        # The server got the password with the answer (SCRV1:...).
        with open(os.path.join(h.lab.dir, "hostile-auth.seen")) as f:
            assert f.read().split()[-1] == "scrv1"
        assert_terminal_safe(out + err, "shimmerctl connect --wait on a terminal")
        assert_shown(err, "shimmerctl connect --wait on a terminal")
    finally:
        t.close()
        h.remove_profile("prompted")

