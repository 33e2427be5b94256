# SPDX-License-Identifier: MIT
"""shimmerctl's prompts on a terminal (issue 9, item 3 and the prompt's
signals).

shimmerctl runs with a pseudo-terminal as its standard input, so it shows
its prompts and reads secrets with echo off, against a real shimmerd on a
private bus (the fixtures of test_service.py) and OpenVPN 2.6 servers:
  - a static challenge's text is shown escaped as the prompt, and with
    --wait the session asks for the user name, password and answer together
    (a password given to Connect would go without the answer);
  - SIGTERM during a prompt, before the main loop and inside it, ends the
    prompt with the terminal's echo back on (it used to kill shimmerctl
    with echo off, or to be restarted and ignored);
  - Ctrl-Z gives the terminal back with echo on while shimmerctl is
    stopped, and the prompt asks again once it is resumed; under a small
    job-control parent that makes the pty the controlling terminal, so the
    keys go through the line discipline as a person's would.

    SHIMMERD=... SHIMMERCTL=... python3 -m pytest -q tests/dbus/test_ctl_prompt.py

Needs root; skips with the reason otherwise.
"""
import os
import select
import signal
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


# ------------------------------------------------------------------ signals

def _wait_exit(t, timeout=10):
    """shimmerctl's exit status once it has ended by itself within TIMEOUT;
    fails (and kills it) otherwise."""
    try:
        return t.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        t.proc.kill()
        t.proc.wait(5)
        raise AssertionError("shimmerctl still waits %ds after the signal; stderr %r"
                             % (timeout, t.err))


@_needs_lab()
def test_sigterm_during_the_password_prompt_gives_echo_back(h):
    # The profile asks for the password before Connect, outside the main loop.
    h.import_profile("termed")
    t = Pty(h, ["connect", "termed", "--wait"])
    try:
        assert t.read_until(b"Username: "), t.err
        t.answer(ts.USERNAME, secret=False)
        assert t.read_until(b"Password: "), t.err
        ts.wait_for(lambda: not t.echo_on(), 10, "the password prompt to turn echo off")
        t.proc.send_signal(signal.SIGTERM)
        code = _wait_exit(t)
        assert t.echo_on(), "shimmerctl left the terminal without echo"
        assert code == 1, (code, t.err)
        t.finish()
        assert b"Interrupted" in t.err, t.err
    finally:
        t.close()
        h.remove_profile("termed")


@_needs_lab()
def test_sigterm_during_a_prompt_in_the_main_loop_disconnects(h):
    # The key's passphrase is asked when the session requests it, from
    # inside the main loop, whose SIGTERM handler restarts a read().
    profile = h.import_profile("termloop", key="client-enc.key")
    t = Pty(h, ["connect", "termloop", "--wait"])
    try:
        assert t.read_until(b"Username: "), t.err
        t.answer(ts.USERNAME, secret=False)
        assert t.read_until(b"Password: "), t.err
        t.answer(ts.PASSWORD)
        assert t.read_until(b"passphrase: "), t.err
        ts.wait_for(lambda: not t.echo_on(), 10, "the passphrase prompt to turn echo off")
        t.proc.send_signal(signal.SIGTERM)
        code = _wait_exit(t)
        assert t.echo_on(), "shimmerctl left the terminal without echo"
        assert code == 1, (code, t.err)
        t.finish()
        assert b"disconnecting" in t.err, t.err
        ts.wait_for(lambda: h.session_of(profile) is None, 15, "the session to end")
    finally:
        t.close()
        h.remove_profile("termloop")


# A job-control parent, as a shell is: the pty becomes its controlling
# terminal, shimmerctl (argv[2:]) runs in a process group of its own in the
# foreground, with its output on our standard error; every stop and exit
# is reported on our standard output, and a line on standard input
# resumes a stopped shimmerctl in the foreground.
JOBCTL = r"""
import fcntl, os, signal, sys, termios
tty = int(sys.argv[1])
fcntl.ioctl(tty, termios.TIOCSCTTY, 0)
signal.signal(signal.SIGTTOU, signal.SIG_IGN)
pid = os.fork()
if pid == 0:
    os.setpgid(0, 0)
    for s in (signal.SIGTTOU, signal.SIGPIPE, signal.SIGINT):
        signal.signal(s, signal.SIG_DFL)
    os.dup2(tty, 0)
    os.dup2(2, 1)
    os.execvp(sys.argv[2], sys.argv[2:])
try:
    os.setpgid(pid, pid)
except OSError:
    pass
os.tcsetpgrp(tty, pid)
def say(what):
    os.write(1, (what + "\n").encode())
say("started %d" % pid)
while True:
    _, status = os.waitpid(pid, os.WUNTRACED)
    if os.WIFSTOPPED(status):
        os.tcsetpgrp(tty, os.getpgrp())
        say("stopped")
        sys.stdin.readline()
        os.tcsetpgrp(tty, pid)
        os.killpg(pid, signal.SIGCONT)
    else:
        say("exited %d" % os.waitstatus_to_exitcode(status))
        break
"""


class JobPty(Pty):
    """Pty, with shimmerctl in the foreground of a terminal it controls."""

    def __init__(self, h, args, uid=USER_A):
        self.master, self.slave = os.openpty()
        argv = ts.as_uid(uid, [SHIMMERCTL, "--bus-address", h.bus.address] + list(args))
        self.proc = subprocess.Popen([ts.PYTHON, "-c", JOBCTL, str(self.slave)] + argv,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, pass_fds=(self.slave,),
                                     start_new_session=True, preexec_fn=ts._pdeathsig,
                                     env=dict(os.environ, LC_ALL="C"))
        self.err = b""
        self.events = b""
        self.child = None
        started = self.event()
        assert started.startswith("started "), started
        self.child = int(started.split()[1])

    def close(self):
        # shimmerctl runs in a process group of its own: stop it by its pid.
        if self.child is not None:
            try:
                os.kill(self.child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        super().close()

    def event(self, timeout=10):
        """The job's next event: "started PID", "stopped", "exited CODE"."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.events:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(left, 0))
            assert ready, "no job event in %ds; stderr %r" % (timeout, self.err)
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            assert chunk, "the job-control parent ended; stderr %r" % self.err
            self.events += chunk
        line, self.events = self.events.split(b"\n", 1)
        return line.decode()

    def resume(self):
        self.proc.stdin.write(b"cont\n")
        self.proc.stdin.flush()


@_needs_lab()
def test_ctrl_z_during_the_password_prompt_gives_the_terminal_back(h):
    h.import_profile("stopped")
    t = JobPty(h, ["connect", "stopped", "--wait"])
    try:
        assert t.read_until(b"Username: "), t.err
        t.answer(ts.USERNAME, secret=False)
        assert t.read_until(b"Password: "), t.err
        ts.wait_for(lambda: not t.echo_on(), 10, "the password prompt to turn echo off")
        os.write(t.master, b"\x1a")   # Ctrl-Z, through the line discipline
        assert t.event() == "stopped"
        assert t.echo_on(), "shimmerctl is stopped with the terminal's echo off"
        t.resume()
        # Asked again, with echo off again, and the answer is taken.
        assert t.read_until(b"Password: ", count=2), t.err
        t.answer(ts.PASSWORD)
        event = t.event(timeout=40)
        while not event.startswith("exited"):
            event = t.event(timeout=40)
        t._read_err(0.5)
        assert event == "exited 0", (event, t.err)
        assert b"Connected" in t.err, t.err
        assert t.echo_on()
        r = h.ctl("disconnect", "stopped")
        assert r.returncode == 0, r.stderr
        h.wait_tunnel_gone()
    finally:
        t.close()
        h.remove_profile("stopped")
