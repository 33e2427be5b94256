# SPDX-License-Identifier: MIT
"""A small client of OpenVPN's management interface for a server that
defers every login (`management-client-auth`), as an SSO backend would:
it sees each >CLIENT:CONNECT with its environment and answers with
client-pending-auth (a web sign-in or a CR_TEXT challenge), client-auth-nt
or client-deny, and sees the >CLIENT:CR_RESPONSE a client sends.

    m = Management(path_of_the_unix_socket, policy)   # policy(m, event) -> None
    m.wait(lambda ev: ev["type"] == "CONNECT", 20)
    m.approve(cid, kid)

The server's config needs `management PATH unix` and
`management-client-auth` (server_lines() gives them). The socket is a file,
so the test reaches it from the root namespace whatever namespace the
server runs in. Standard library only.
"""
import base64
import os
import socket
import threading
import time


def server_lines(sock_path):
    return ["management %s unix" % sock_path, "management-client-auth"]


class Management:
    """Reads the management socket in a thread; EVENTS holds every client
    notification as a dict: type (CONNECT, REAUTH, CR_RESPONSE, ESTABLISHED,
    DISCONNECT), cid, kid (None where absent), env {name: value}, and for
    CR_RESPONSE the decoded response. POLICY(m, event) is called for each
    (from the reader thread) and may send commands."""

    def __init__(self, path, policy=None, timeout=15):
        self.path = path
        self.policy = policy
        self.events = []
        self.sent = []
        self.replies = []
        self.errors = []
        self._cond = threading.Condition()
        self._sock = None
        deadline = time.monotonic() + timeout
        while True:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(path)
                self._sock = s
                break
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._file = self._sock.makefile("r", encoding="utf-8", errors="replace", newline="\n")
        self._closed = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    # -- commands

    def send(self, line):
        with self._cond:
            self.sent.append(line)
        self._sock.sendall((line + "\n").encode())

    def pending_web(self, cid, kid, url, timeout, kind="WEB_AUTH", flags=""):
        extra = ("OPEN_URL:%s" % url) if kind == "OPEN_URL" else "WEB_AUTH:%s:%s" % (flags, url)
        self.send('client-pending-auth %s %s "%s" %d' % (cid, kid, extra, timeout))

    def pending_cr_text(self, cid, kid, text, timeout, flags="E,R"):
        self.send('client-pending-auth %s %s "CR_TEXT:%s:%s" %d' % (cid, kid, flags, text,
                                                                     timeout))

    def approve(self, cid, kid):
        self.send("client-auth-nt %s %s" % (cid, kid))

    def deny(self, cid, kid, reason, client_reason=None):
        self.send('client-deny %s %s "%s" "%s"' % (cid, kid, reason, client_reason or reason))

    def kill(self, cid, message="RESTART"):
        self.send("client-kill %s %s" % (cid, message))

    # -- events

    def wait(self, predicate, timeout, what="a management event"):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for ev in self.events:
                    if predicate(ev):
                        return ev
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise TimeoutError("no %s in %.0f s; events %s" % (what, timeout,
                                                                       self.events))
                self._cond.wait(left)

    def count(self, kind):
        with self._cond:
            return sum(1 for ev in self.events if ev["type"] == kind)

    def close(self):
        self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._thread.join(5)

    # -- the reader

    def _read(self):
        current = None
        try:
            for raw in self._file:
                line = raw.rstrip("\r\n")
                if line.startswith(">CLIENT:ENV,"):
                    body = line[len(">CLIENT:ENV,"):]
                    if current is None:
                        continue
                    if body == "END":
                        self._deliver(current)
                        current = None
                    else:
                        name, _, value = body.partition("=")
                        current["env"][name] = value
                elif line.startswith(">CLIENT:"):
                    head = line[len(">CLIENT:"):].split(",")
                    ev = {"type": head[0], "cid": head[1] if len(head) > 1 else None,
                          "kid": head[2] if len(head) > 2 and head[0] != "ADDRESS" else None,
                          "env": {}}
                    if head[0] == "CR_RESPONSE" and len(head) > 3:
                        ev["response"] = base64.b64decode(head[3]).decode(errors="replace")
                    if head[0] == "ADDRESS":
                        self._deliver(ev)
                    else:
                        current = ev
                elif line.startswith(("SUCCESS:", "ERROR:")):
                    with self._cond:
                        self.replies.append(line)
                        if line.startswith("ERROR:"):
                            self.errors.append(line)
                        self._cond.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    def _deliver(self, ev):
        with self._cond:
            self.events.append(ev)
            self._cond.notify_all()
        if self.policy is not None:
            self.policy(self, ev)


def socket_path(directory, name="mgmt"):
    # sun_path is at most 107 bytes.
    path = os.path.join(directory, name + ".sock")
    if len(path) > 100:
        raise ValueError("socket path too long: %s" % path)
    return path
