# SPDX-License-Identifier: MIT
"""One caller of the D-Bus fuzzer for shimmerd (tests/dbus/test_bus_fuzz.py
runs several, as root and as unprivileged users): random calls to
org.shimmervpn on the bus at ADDRESS, drawn from random.Random(SEED).

    busfuzz.py --address ADDR --seed N --calls N --spec FILE

SPEC (JSON, written by the test from dbus/*.xml): {"interfaces": {name:
{"methods": {name: [in signatures]}, "properties": {name: [type, access]}}},
"profile": a usable inline profile, "options": Connect/Import option names,
"credentials": what the server asks for, if it does}.

Each call is one of: a method of the interfaces with its signature and
random values; the same with a wrong signature; Properties Get/Set/GetAll
with real and made-up names; unknown interfaces and members; the state
machine with valid arguments (import, connect, restart, credentials,
disconnect, rename, remove); deep variants and large strings; random object
paths; and now and then a hand-made message with invalid UTF-8 on a
connection of its own (a conforming bus refuses it and drops that
connection: shimmerd must not notice). Prints one JSON line: counts per
outcome. Exits 0 unless the fuzzer itself broke; "timeouts" are calls
shimmerd did not answer in time (the test fails on those).
"""
import argparse
import json
import os
import random
import socket
import struct
import sys
import time

from gi.repository import Gio, GLib

BUS_NAME = "org.shimmervpn"
ROOT = "/org/shimmervpn"
STANDARD = {
    "org.freedesktop.DBus.Properties": {
        "methods": {"Get": ["s", "s"], "GetAll": ["s"], "Set": ["s", "s", "v"]},
        "properties": {}},
    "org.freedesktop.DBus.Introspectable": {"methods": {"Introspect": []}, "properties": {}},
    "org.freedesktop.DBus.Peer": {"methods": {"Ping": [], "GetMachineId": []},
                                  "properties": {}},
    "org.freedesktop.DBus.ObjectManager": {"methods": {"GetManagedObjects": []},
                                           "properties": {}},
}
BASIC = "ybnqiuxtdsog"   # no "h": a file descriptor needs a descriptor list
CALL_TIMEOUT_MS = 15000

WEIRD_STRINGS = [
    "", " ", "a", "-", "--", ".", "..", "/", "\\", "*", "?", "~", "%s%s%n%x", "${HOME}", "$(id)",
    "../../../../etc/shadow", "/etc/shadow", "name\nremote 203.0.113.9 1194", "\r\n\t",
    "\x01\x02\x1b[31mred\x1b[0m", "\u202etxt.exe", "\u0301\u0301\u0301", "\U0001f600" * 40,
    "\ufffd", "\uffff\ufffe", "\ud7ff", "\u00a0", "é" * 300, "x" * 128, "x" * 129,
    "-----BEGIN PRIVATE KEY-----", "<ca>\n</ca>", "username", "password", "otp", "response",
    "key-passphrase", "bound-to-caller", "persistent", "configure-network", "connected",
    "org.shimmervpn.Manager1", "org.shimmervpn.Profile1", "org.shimmervpn.Session1",
    "CRV1::st::x", "SCRV1:Zm9v:YmFy", "AUTH_FAILED", "0", "-1", "1e999", "true",
]
NAMES = ["Name", "Id", "Owner", "State", "Version", "DnsBackend", "Remotes", "NetworkConfig",
         "Interface", "BytesIn", "Persistent", "ActiveSession", "Nope", "", "x" * 300]


class Gen:
    def __init__(self, rng, paths):
        self.r = rng
        self.paths = paths

    # -- signatures

    def complete_type(self, depth=0):
        r = self.r
        k = r.random()
        if depth > 3 or k < 0.55:
            return r.choice(BASIC)
        if k < 0.7:
            return "a" + self.complete_type(depth + 1)
        if k < 0.8:
            return "a{%s%s}" % (r.choice(BASIC), self.complete_type(depth + 1))
        if k < 0.9:
            return "(" + "".join(self.complete_type(depth + 1)
                                 for _ in range(r.randint(1, 3))) + ")"
        return "v"

    def signature(self, max_args=4):
        return [self.complete_type() for _ in range(self.r.randint(0, max_args))]

    # -- values (PyGObject's forms for GLib.Variant(type, value))

    def string(self):
        r = self.r
        k = r.random()
        if k < 0.45:
            return r.choice(WEIRD_STRINGS)
        if k < 0.55:
            # large: up to 2 MiB (ImportProfile takes at most 1 MiB)
            return r.choice("xyé\n#") * r.choice([1024, 65536, 1024 * 1024, 1024 * 1024 + 1,
                                                   2 * 1024 * 1024])
        if k < 0.8:
            return "".join(chr(r.randint(0x20, 0x7e)) for _ in range(r.randint(0, 40)))
        cps = []
        for _ in range(r.randint(0, 30)):
            c = r.randint(1, 0x10FFFF)
            if 0xD800 <= c <= 0xDFFF:
                c = 0xFFFD
            cps.append(chr(c))
        return "".join(cps)

    def path(self):
        r = self.r
        k = r.random()
        if k < 0.5 and self.paths:
            return r.choice(self.paths)
        if k < 0.6:
            return r.choice(["/", ROOT, ROOT + "/profile", ROOT + "/session"])
        if k < 0.8:
            base = r.choice([ROOT + "/profile/", ROOT + "/session/"])
            return base + r.choice(["0", "1", "999999", "0" * 32, "f" * 32, "a_b", "x" * 200,
                                    "%032x" % r.getrandbits(128), str(r.randint(0, 1 << 31))])
        return "/" + "/".join("".join(r.choice("abcXYZ019_") for _ in range(r.randint(1, 8)))
                              for _ in range(r.randint(1, 12)))

    def value(self, t, depth=0):
        r = self.r
        c = t[0]
        if c == "y":
            return r.choice([0, 1, 127, 128, 255, r.randint(0, 255)])
        if c == "b":
            return r.random() < 0.5
        if c in "nqiuxt":
            bits = {"n": 16, "q": 16, "i": 32, "u": 32, "x": 64, "t": 64}[c]
            signed = c in "nix"
            lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
            return r.choice([lo, hi, 0, 1, -1 if signed else 2, r.randint(lo, hi)])
        if c == "d":
            return r.choice([0.0, -0.0, 1e308, -1e308, float("inf"), float("-inf"), float("nan"),
                             r.uniform(-1e9, 1e9)])
        if c == "s":
            return self.string()
        if c == "o":
            return self.path()
        if c == "g":
            return "".join(self.complete_type() for _ in range(r.randint(0, 3)))
        if c == "v":
            return self.variant(depth + 1)
        if c == "a":
            inner = t[1:]
            if inner.startswith("{"):
                k, v = split_dict(inner)
                n = r.choice([0, 1, 2, 5]) if depth < 6 else 0
                out = {}
                for _ in range(n):
                    key = self.dict_key(k)
                    out[key] = self.value(v, depth + 1)
                return out
            n = r.choice([0, 1, 3, 8]) if depth < 6 else 0
            if inner in ("y", "u", "i") and r.random() < 0.1:
                n = r.choice([1000, 65536])
            return [self.value(inner, depth + 1) for _ in range(n)]
        if c == "(":
            return tuple(self.value(x, depth + 1) for x in split_struct(t))
        raise ValueError(t)

    def dict_key(self, k):
        if k == "s" and self.r.random() < 0.6:
            return self.r.choice(["persistent", "bound-to-caller", "configure-network",
                                  "username", "password", "key-passphrase", "otp", "response",
                                  "", "nope", "x" * 300])
        return self.value(k)

    def variant(self, depth=0):
        r = self.r
        if depth < 60 and r.random() < (0.35 if depth < 4 else 0.9 if depth > 20 else 0.5):
            return GLib.Variant("v", self.variant(depth + 1))
        t = self.complete_type()
        return GLib.Variant(t, self.value(t, depth))


def split_dict(t):
    """'{sv}' -> ('s', 'v')."""
    body = t[1:-1]
    return body[0], body[1:]


def split_struct(t):
    """'(sa{sv}i)' -> ['s', 'a{sv}', 'i']."""
    body = t[1:-1]
    out, i = [], 0
    while i < len(body):
        j = end_of(body, i)
        out.append(body[i:j])
        i = j
    return out


def end_of(s, i):
    c = s[i]
    if c == "a":
        return end_of(s, i + 1)
    if c in "({":
        close = ")" if c == "(" else "}"
        depth, j = 0, i
        while True:
            if s[j] in "({":
                depth += 1
            elif s[j] in ")}":
                depth -= 1
                if depth == 0:
                    return j + 1
            j += 1
    return i + 1


def split_signature(sig):
    out, i = [], 0
    while i < len(sig):
        j = end_of(sig, i)
        out.append(sig[i:j])
        i = j
    return out


# ---------------------------------------------------------------- raw messages

def _pad(buf, n):
    buf.extend(b"\0" * ((-len(buf)) % n))


def _string(buf, s, sig=False):
    if sig:
        buf.append(len(s))
        buf.extend(s)
        buf.append(0)
        return
    _pad(buf, 4)
    buf.extend(struct.pack("<I", len(s)))
    buf.extend(s)
    buf.append(0)


def raw_message(serial, path, iface, member, dest, sig, body):
    fields = bytearray()
    for code, typ, val in ((1, b"o", path), (2, b"s", iface), (3, b"s", member),
                           (6, b"s", dest), (8, b"g", sig)):
        _pad(fields, 8)
        fields.append(code)
        _string(fields, typ, sig=True)
        _string(fields, val, sig=(typ == b"g"))
    head = bytearray(b"l\x01\x00\x01")
    head.extend(struct.pack("<II", len(body), serial))
    head.extend(struct.pack("<I", len(fields)))
    _pad(head, 8)
    head.extend(fields)
    _pad(head, 8)
    return bytes(head) + body


def send_invalid_utf8(address, rng):
    """A method call whose string argument is not UTF-8, on a raw connection
    of its own. Returns what became of it: "dropped" (the bus closed the
    connection), "refused" (an error came back) or "answered"."""
    path = dict(kv.split("=", 1) for kv in address.split(":", 1)[1].split(","))["path"]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(path)
        s.sendall(b"\0AUTH EXTERNAL " + str(os.getuid()).encode().hex().encode() + b"\r\n")
        if not s.recv(256).startswith(b"OK"):
            return "auth-refused"
        s.sendall(b"BEGIN\r\n")
        s.sendall(raw_message(1, b"/org/freedesktop/DBus", b"org.freedesktop.DBus", b"Hello",
                              b"org.freedesktop.DBus", b"", b""))
        bad = rng.choice([b"\xff\xfe", b"\xc3\x28", b"abc\xed\xa0\x80", b"\xf8\x88\x80\x80\x80",
                          b"\xc0\xaf", b"name\x80"])
        body = bytearray()
        _string(body, bad)
        target = rng.choice([(ROOT.encode(), b"org.shimmervpn.Manager1", b"CheckConfig"),
                             (ROOT.encode() + b"/profile/" + b"0" * 32,
                              b"org.shimmervpn.Profile1", b"Rename")])
        s.sendall(raw_message(2, target[0], target[1], target[2], BUS_NAME.encode(), b"s",
                              bytes(body)))
        data = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                return "dropped"
            data += chunk
            if b"org.shimmervpn" in data or b"Error" in data and len(data) > 200:
                break
        return "refused" if b"Error" in data else "answered"
    except (ConnectionResetError, BrokenPipeError):
        return "dropped"
    finally:
        s.close()


# ---------------------------------------------------------------- the caller

# BUS_FUZZ_SEND_UNREADABLE=1: send bodies GDBus cannot read back too.
SEND_UNREADABLE = os.environ.get("BUS_FUZZ_SEND_UNREADABLE") == "1"


def glib_reads_back(body):
    """Whether GDBus parses the D-Bus serialization of BODY into BODY again
    (it does not for some valid messages: an array of 8-aligned elements
    whose last element is at most 4 bytes long, e.g. a{gn}, can lose that
    element, and what follows is misread)."""
    m = Gio.DBusMessage.new_method_call(BUS_NAME, ROOT, "org.shimmervpn.Manager1", "X")
    m.set_body(body)
    try:
        blob = m.to_blob(Gio.DBusCapabilityFlags.NONE)
        back = Gio.DBusMessage.new_from_blob(blob, Gio.DBusCapabilityFlags.NONE).get_body()
    except GLib.Error:
        return False
    return back is not None and back.print_(True) == body.print_(True)


class Caller:
    def __init__(self, address, spec, rng):
        self.address, self.spec, self.r = address, spec, rng
        self.ifaces = dict(STANDARD)
        self.ifaces.update(spec["interfaces"])
        self.paths = [ROOT]
        self.conn = None
        self.counts = {}
        self.serial = 0

    def count(self, key):
        self.counts[key] = self.counts.get(key, 0) + 1

    def connect(self):
        self.conn = Gio.DBusConnection.new_for_address_sync(
            self.address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
            | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)

    def call(self, path, iface, member, sig, values, timeout_ms=CALL_TIMEOUT_MS):
        if self.conn is None or self.conn.is_closed():
            self.count("reconnects")
            self.connect()
        try:
            args = GLib.Variant("(" + "".join(sig) + ")", tuple(values)) if sig else None
        except (TypeError, ValueError, OverflowError, GLib.Error):
            self.count("unbuildable")
            return None
        if args is not None and not SEND_UNREADABLE and not glib_reads_back(args):
            # GDBus (GLib 2.74) misreads some valid bodies and then drops
            # the whole connection: test_bus_fuzz.py has the case on its
            # own. Not sent, so that the fuzzer looks for other trouble.
            self.count("not sent: GDBus cannot read it back")
            return None
        try:
            r = self.conn.call_sync(BUS_NAME, path, iface, member, args, None,
                                    Gio.DBusCallFlags.NO_AUTO_START, timeout_ms, None)
            self.count("ok")
            return r
        except GLib.Error as e:
            name = Gio.DBusError.get_remote_error(e)
            if name is None and e.matches(Gio.io_error_quark(), Gio.IOErrorEnum.TIMED_OUT):
                self.count("timeouts")
                self.counts.setdefault("timed_out_calls", []).append(
                    "%s %s.%s(%s)" % (path, iface, member, "".join(sig)))
            elif name is None and e.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CLOSED):
                self.count("closed")
            else:
                self.count("error " + (name or e.message[:60]))
            return None

    def refresh_paths(self):
        r = self.call(ROOT, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", [], [])
        if r is not None:
            self.paths = [ROOT] + sorted(str(p) for p in r.unpack()[0])

    # -- one random call

    def one(self, gen):
        r = self.r
        k = r.random()
        ifaces = [i for i in self.ifaces]
        if k < 0.35:
            iface = r.choice(ifaces)
            methods = self.ifaces[iface]["methods"]
            if not methods:
                return
            member = r.choice(sorted(methods))
            sig = methods[member]
            self.call(self.path_for(iface, gen), iface, member, sig, [gen.value(t) for t in sig])
        elif k < 0.5:
            iface = r.choice(ifaces)
            methods = self.ifaces[iface]["methods"]
            member = r.choice(sorted(methods)) if methods else "Nope"
            sig = gen.signature()
            self.call(gen.path(), iface, member, sig, [gen.value(t) for t in sig])
        elif k < 0.62:
            iface = r.choice(ifaces + ["", "org.shimmervpn.Nope", "x" * 200])
            props = self.ifaces.get(iface, {}).get("properties", {})
            name = r.choice(sorted(props) + NAMES) if props else r.choice(NAMES)
            what = r.random()
            if what < 0.4:
                self.call(gen.path(), "org.freedesktop.DBus.Properties", "Get", ["s", "s"],
                          [iface, name])
            elif what < 0.7:
                self.call(gen.path(), "org.freedesktop.DBus.Properties", "GetAll", ["s"],
                          [iface])
            else:
                self.call(gen.path(), "org.freedesktop.DBus.Properties", "Set", ["s", "s", "v"],
                          [iface, name, gen.variant()])
        elif k < 0.67:
            member = r.choice(["Nope", "Connect", "Remove", "Ping", "Introspect", "_", "a" * 255])
            iface = r.choice(["org.shimmervpn.Nope", "org.shimmervpn.Manager2",
                              "org.freedesktop.DBus.Nope", "org.shimmervpn.Profile1"])
            sig = gen.signature(2)
            self.call(gen.path(), iface, member, sig, [gen.value(t) for t in sig])
        elif k < 0.92:
            self.state_machine(gen)
        elif k < 0.97:
            # deep variants and big containers, where the interfaces take a{sv} / v
            target = r.choice([(ROOT, "org.shimmervpn.Manager1", "ImportProfile"),
                               (gen.path(), "org.shimmervpn.Profile1", "Connect"),
                               (gen.path(), "org.freedesktop.DBus.Properties", "Set")])
            deep = gen.variant(depth=r.randint(10, 60))
            if target[2] == "ImportProfile":
                self.call(target[0], target[1], target[2], ["s", "s", "a{sv}"],
                          [gen.string(), gen.string(), {"persistent": deep}])
            elif target[2] == "Connect":
                self.call(target[0], target[1], target[2], ["a{sv}"],
                          [{"username": deep, "password": gen.variant()}])
            else:
                self.call(target[0], target[1], target[2], ["s", "s", "v"],
                          ["org.shimmervpn.Profile1", "Name", deep])
        else:
            if r.random() < 0.3:
                self.count("raw " + send_invalid_utf8(self.address, r))
            else:
                self.call(ROOT, "org.freedesktop.DBus.Introspectable", "Introspect", [], [])

    def path_for(self, iface, gen):
        """Mostly an object that has IFACE, so that calls get past the
        dispatch; else any path."""
        objs = {"org.shimmervpn.Manager1": [ROOT], "org.shimmervpn.Profile1": self.profiles(),
                "org.shimmervpn.Session1": self.sessions()}.get(iface, self.paths)
        if objs and self.r.random() < 0.75:
            return self.r.choice(objs)
        return gen.path()

    def profiles(self):
        return [p for p in self.paths if p.startswith(ROOT + "/profile/")]

    def sessions(self):
        return [p for p in self.paths if p.startswith(ROOT + "/session/")]

    def state_machine(self, gen):
        """Valid calls in random order: what a client does, interleaved
        with everyone else's."""
        r = self.r
        k = r.random()
        opts = self.spec["options"]
        if k < 0.2:
            persistent = r.random() < 0.3
            self.call(ROOT, "org.shimmervpn.Manager1", "ImportProfile", ["s", "s", "a{sv}"],
                      ["fz-%d" % r.randint(0, 5), self.spec["profile"],
                       {"persistent": GLib.Variant("b", persistent)}])
            self.refresh_paths()
        elif k < 0.25:
            self.call(ROOT, "org.shimmervpn.Manager1", "CheckConfig", ["s"],
                      [self.spec["profile"] if r.random() < 0.5 else gen.string()])
        elif k < 0.45 and self.profiles():
            o = {}
            for name in r.sample(opts, r.randint(0, 3)):
                o[name] = (GLib.Variant("b", r.random() < 0.5)
                           if name in ("bound-to-caller", "configure-network", "persistent")
                           else GLib.Variant("s", gen.string()))
            if r.random() < 0.3:
                # the right ones, for the server that asks
                for k, v in self.spec.get("credentials", {}).items():
                    o[k] = GLib.Variant("s", v)
            self.call(r.choice(self.profiles()), "org.shimmervpn.Profile1", "Connect", ["a{sv}"],
                      [o])
            self.refresh_paths()
        elif k < 0.6 and self.sessions():
            member = r.choice(["Disconnect", "Restart", "ProvideCredentials"])
            s = r.choice(self.sessions())
            if member == "ProvideCredentials":
                creds = {r.choice(["username", "password", "otp", "response", "key-passphrase",
                                   "nope"]): gen.string() for _ in range(r.randint(0, 3))}
                if r.random() < 0.4:
                    creds = dict(self.spec.get("credentials", {}))
                self.call(s, "org.shimmervpn.Session1", member, ["a{ss}"], [creds])
            else:
                self.call(s, "org.shimmervpn.Session1", member, [], [])
        elif k < 0.7 and self.profiles():
            self.call(r.choice(self.profiles()), "org.shimmervpn.Profile1", "Rename", ["s"],
                      [r.choice(["fz-%d" % r.randint(0, 5), gen.string()])])
        elif k < 0.78 and self.profiles():
            self.call(r.choice(self.profiles()), "org.shimmervpn.Profile1", "Remove", [], [])
            self.refresh_paths()
        elif k < 0.85 and self.profiles():
            self.call(r.choice(self.profiles()), "org.shimmervpn.Profile1", "GetConfiguration",
                      [], [])
        elif k < 0.92:
            self.call(ROOT, "org.shimmervpn.Manager1",
                      r.choice(["ListProfiles", "ListSessions"]), [], [])
        else:
            self.refresh_paths()


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", required=True)
    ap.add_argument("--seed", required=True)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--spec", required=True)
    a = ap.parse_args(argv)
    with open(a.spec) as f:
        spec = json.load(f)
    rng = random.Random(a.seed)
    caller = Caller(a.address, spec, rng)
    gen = Gen(rng, caller.paths)
    caller.connect()
    caller.refresh_paths()
    t0 = time.monotonic()
    for i in range(a.calls):
        gen.paths = caller.paths
        caller.one(gen)
        if i % 25 == 24:
            caller.refresh_paths()
    caller.counts["seconds"] = round(time.monotonic() - t0, 2)
    print(json.dumps(caller.counts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
