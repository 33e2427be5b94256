#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""shimmer-watch: the core of a tray applet for shimmerd, on the terminal.

It follows every session of the daemon through the ObjectManager's
InterfacesAdded / InterfacesRemoved and PropertiesChanged signals (no
polling), shows state changes and the rates computed from BytesIn and
BytesOut, can connect a profile by name and disconnect a session, answers
CredentialsRequested (from flags, else by asking on the terminal, else one
line per field from standard input) and shows the session's log lines.

Only GLib's GDBus through PyGObject (Debian: python3-gi), no other D-Bus
binding. Everything happens on one GLib main loop: a tray applet keeps this
structure and replaces print() with its own widgets.

    shimmer-watch.py                         # follow everything until Ctrl-C
    shimmer-watch.py --connect work          # connect "work", then follow
    shimmer-watch.py --connect work --once   # exit 0 once connected, 1 if it failed
    shimmer-watch.py --disconnect work --once
    shimmer-watch.py --address unix:path=/tmp/bus.sock   # another bus (tests)

Exit status (like shimmerctl): 0 done, 1 the session failed or the call was
refused, 2 usage, 3 the daemon cannot be reached, 4 not authorized.
"""
import argparse
import os
import signal
import sys
import time

from gi.repository import Gio, GLib

BUS_NAME = "org.shimmervpn"
ROOT = "/org/shimmervpn"
MANAGER = "org.shimmervpn.Manager1"
PROFILE = "org.shimmervpn.Profile1"
SESSION = "org.shimmervpn.Session1"
PROPERTIES = "org.freedesktop.DBus.Properties"
OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager"
ENDED = ("disconnected", "failed")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_NOT_AUTHORIZED = range(5)

FIELD_LABELS = {
    "username": "Username",
    "password": "Password",
    "otp": "One-time code",
    "response": "Response",
    "key-passphrase": "Private key passphrase",
}


def safe(text):
    """TEXT with control, line-separator and bidirectional-override
    characters shown as escapes: profile names, reasons, log lines and
    challenges come from other users and from servers, and must not drive
    the terminal."""
    out = []
    for ch in str(text):
        u = ord(ch)
        if ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif u < 0x20 or u == 0x7F:
            out.append("\\x%02x" % u)
        elif (0x80 <= u <= 0x9F or u in (0x2028, 0x2029, 0x061C, 0x200E, 0x200F)
              or 0x202A <= u <= 0x202E or 0x2066 <= u <= 0x2069):
            out.append("\\u%04x" % u)
        else:
            out.append(ch)
    return "".join(out)


def human_rate(bytes_per_second):
    """1536 -> '1.5 KiB/s' (binary units, as shimmerctl prints them)."""
    value = float(bytes_per_second)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return ("%d %s/s" % (value, unit)) if unit == "B" else ("%.1f %s/s" % (value, unit))
        value /= 1024
    return "%.1f GiB/s" % value


def remote_error(error):
    """(D-Bus error name or "", the message without GDBus's prefix)."""
    name = Gio.DBusError.get_remote_error(error) or ""
    prefix = "GDBus.Error:%s: " % name
    message = error.message
    return name, message[len(prefix):] if name and message.startswith(prefix) else message


def say(text):
    print("%s %s" % (time.strftime("%H:%M:%S"), text), flush=True)


class Session:
    """What the watcher knows of one Session1 object."""

    def __init__(self, path, props):
        self.path = path
        self.props = dict(props)
        self.counters = None        # (monotonic time, bytes in, bytes out) of the last update
        self.rates = (0.0, 0.0)     # bytes per second, in and out
        self.idle = True

    @property
    def number(self):
        return self.path.rsplit("/", 1)[-1]


class Watcher:
    def __init__(self, bus, args):
        self.bus = bus
        self.args = args
        self.loop = GLib.MainLoop()
        self.exit_code = EXIT_OK
        self.profiles = {}          # path -> Profile1 properties
        self.sessions = {}          # path -> Session
        self.mine = set()           # sessions this watcher started (it answers their requests)
        self.connecting = False     # a Connect is in flight: its session path is not known yet
        self.early_requests = {}    # session path -> CredentialsRequested arguments, meanwhile
        self.action_done = False
        self.daemon_seen = False
        # Session1 signals by member name: one entry per signal the watcher
        # understands. Log and CredentialsRequested are sent only to the
        # session owner's bus names that have called the daemon (see start()).
        self.session_signals = {
            "CredentialsRequested": self.on_credentials_requested,
            "Log": self.on_log,
            # A server's web sign-in (WEB_AUTH / OPEN_URL): the request's
            # "url" is for the user to open (a tray applet would call
            # Gio.AppInfo.launch_default_for_uri()). Only the owner gets it.
            "WebAuthRequested": lambda path, params: self.show_web_sign_in(
                path, params.unpack()[0].get("url", "")),
            "ServerMessage": lambda path, params: say(
                "%s: the server says: %s" % (path, safe(params.unpack()[0]))),
        }

    # ---------------------------------------------------------- names

    def profile_name(self, path):
        props = self.profiles.get(path)
        return props.get("Name", path) if props else path

    def label(self, session):
        return "%s (session %s)" % (safe(self.profile_name(session.props.get("Profile", "/"))),
                                    session.number)

    # ---------------------------------------------------------- start

    def start(self):
        # Subscribe first, then read the tree: nothing that happens in
        # between is lost. A sender given as a well-known name matches
        # whichever process owns it.
        self.bus.signal_subscribe(BUS_NAME, OBJECT_MANAGER, None, ROOT, None,
                                  Gio.DBusSignalFlags.NONE, self.on_object_manager_signal)
        self.bus.signal_subscribe(BUS_NAME, PROPERTIES, "PropertiesChanged", None, None,
                                  Gio.DBusSignalFlags.NONE, self.on_properties_changed)
        self.bus.signal_subscribe(BUS_NAME, SESSION, None, None, None,
                                  Gio.DBusSignalFlags.NONE, self.on_session_signal)
        self.bus.signal_subscribe("org.freedesktop.DBus", "org.freedesktop.DBus",
                                  "NameOwnerChanged", "/org/freedesktop/DBus", BUS_NAME,
                                  Gio.DBusSignalFlags.NONE, self.on_name_owner_changed)
        GLib.timeout_add_seconds(1, self.on_tick)
        self.load()

    def load(self):
        """Reads the whole tree with GetManagedObjects (this starts shimmerd
        through D-Bus activation where it is installed so)."""
        self.bus.call(BUS_NAME, ROOT, OBJECT_MANAGER, "GetManagedObjects", None,
                      GLib.VariantType("(a{oa{sa{sv}}})"), Gio.DBusCallFlags.NONE, 30000, None,
                      self.on_managed_objects)

    def on_managed_objects(self, bus, result):
        try:
            objects = bus.call_finish(result).unpack()[0]
        except GLib.Error as e:
            say("shimmerd is not reachable: %s" % safe(remote_error(e)[1]))
            if self.args.once or self.args.connect or self.args.disconnect:
                self.quit(EXIT_UNREACHABLE)
            return
        self.daemon_seen = True
        for path, ifaces in sorted(objects.items()):
            self.add_object(path, ifaces, initial=True)
        say("watching %d profile(s) and %d session(s)" % (len(self.profiles), len(self.sessions)))
        # Any method call makes this bus name one that receives the owner's
        # Log and CredentialsRequested signals; ListSessions is the cheapest.
        self.call(ROOT, MANAGER, "ListSessions", None, lambda reply: None,
                  on_error=lambda e: say("note: ListSessions refused (%s): no log lines or "
                                         "credential requests will reach this watcher"
                                         % safe(e)))
        self.run_action()

    # ---------------------------------------------------------- the tree

    def add_object(self, path, ifaces, initial=False):
        if PROFILE in ifaces:
            self.profiles[path] = dict(ifaces[PROFILE])
        if SESSION in ifaces:
            session = Session(path, ifaces[SESSION])
            self.sessions[path] = session
            say("%s: session appeared, %s" % (self.label(session), self.describe_state(session)))

    def remove_object(self, path, ifaces):
        if PROFILE in ifaces:
            self.profiles.pop(path, None)
        if SESSION in ifaces and path in self.sessions:
            session = self.sessions.pop(path)
            say("%s: session is gone" % self.label(session))
            self.mine.discard(path)
            if self.args.once and self.args.disconnect and path == self.target_session:
                self.quit(EXIT_OK)

    def on_object_manager_signal(self, bus, sender, path, iface, member, params):
        if member == "InterfacesAdded":
            obj, ifaces = params.unpack()
            self.add_object(obj, ifaces)
        elif member == "InterfacesRemoved":
            obj, names = params.unpack()
            self.remove_object(obj, set(names))

    def on_properties_changed(self, bus, sender, path, iface, member, params):
        iface_name, changed, invalidated = params.unpack()
        if iface_name == PROFILE and path in self.profiles:
            self.profiles[path].update(changed)
        elif iface_name == SESSION and path in self.sessions:
            self.on_session_properties(self.sessions[path], changed)

    def on_name_owner_changed(self, bus, sender, path, iface, member, params):
        name, old, new = params.unpack()
        if new and not old:
            say("shimmerd is on the bus")
            self.load()
        elif old and not new:
            say("shimmerd left the bus")
            for session in list(self.sessions.values()):
                say("%s: session is gone" % self.label(session))
            self.sessions.clear()
            self.profiles.clear()
            if self.args.once:
                self.quit(EXIT_FAILED if self.args.connect else EXIT_OK)

    # ---------------------------------------------------------- a session

    def describe_state(self, session):
        p = session.props
        state = p.get("State", "?")
        text = state
        if state == "connected":
            details = []
            if p.get("Addresses"):
                details.append(", ".join(safe(a) for a in p["Addresses"]))
            if p.get("Interface"):
                details.append("on " + safe(p["Interface"]))
            if p.get("Cipher"):
                details.append(safe(p["Cipher"]))
            if details:
                text += " (%s)" % ", ".join(details)
        if p.get("StateReason"):
            text += ": " + safe(p["StateReason"])
        return text

    def on_session_properties(self, session, changed):
        session.props.update(changed)
        # Network details come before or with State (dbus/README.md): when
        # State says connected, the addresses are there to show.
        if "State" in changed or "StateReason" in changed:
            say("%s: %s" % (self.label(session), self.describe_state(session)))
        if "State" in changed:
            self.on_state(session)
        if "BytesIn" in changed or "BytesOut" in changed:
            self.update_rates(session)

    def update_rates(self, session):
        now = time.monotonic()
        b_in, b_out = session.props.get("BytesIn", 0), session.props.get("BytesOut", 0)
        if session.counters is not None:
            t0, in0, out0 = session.counters
            # The daemon looks at the counters once a second and announces
            # them only when they changed, so an update holds (at most) the
            # last second's traffic even when the update before it is older.
            window = min(max(now - t0, 0.2), 1.0)
            session.rates = (max(b_in - in0, 0) / window, max(b_out - out0, 0) / window)
            session.idle = False
            say("%s: in %s, out %s" % (self.label(session), human_rate(session.rates[0]),
                                       human_rate(session.rates[1])))
        session.counters = (now, b_in, b_out)

    def on_tick(self):
        # No counter update for a while means no traffic: show the rates
        # falling to zero once instead of keeping the last figures.
        now = time.monotonic()
        for session in self.sessions.values():
            if (not session.idle and session.counters is not None
                    and now - session.counters[0] > 2.5):
                session.idle = True
                session.rates = (0.0, 0.0)
                say("%s: idle (in 0 B/s, out 0 B/s)" % self.label(session))
        return GLib.SOURCE_CONTINUE

    def on_state(self, session):
        if not self.args.once or session.path != self.target_session:
            return
        state = session.props.get("State")
        if self.args.connect and state == "connected":
            self.quit(EXIT_OK)
        elif self.args.connect and state in ENDED:
            self.quit(EXIT_FAILED)
        elif self.args.disconnect and state in ENDED:
            self.quit(EXIT_OK)

    def on_session_signal(self, bus, sender, path, iface, member, params):
        handler = self.session_signals.get(member)
        if handler is not None:
            handler(path, params)

    def on_log(self, path, params):
        level, message = params.unpack()
        names = {0: "error", 1: "warning", 2: "info", 3: "debug"}
        session = self.sessions.get(path)
        who = self.label(session) if session else path
        say("%s: [%s] %s" % (who, names.get(level, str(level)), safe(message)))

    def show_web_sign_in(self, path, url):
        """Shows the address at which the user signs in for session PATH (a
        tray applet opens it with Gio.AppInfo.launch_default_for_uri());
        called for Session1.WebAuthRequested."""
        session = self.sessions.get(path)
        who = self.label(session) if session else path
        say("%s: sign in at %s" % (who, safe(url)))

    # ---------------------------------------------------------- credentials

    def on_credentials_requested(self, path, params):
        fields, prompt, echo = params.unpack()
        if path not in self.mine and not self.args.answer_all:
            if self.connecting:
                # The request can overtake Connect's reply: keep it until
                # the reply says whether the session is ours.
                self.early_requests[path] = (fields, prompt, echo)
            else:
                say("%s asks for %s (not answered: started elsewhere; see --answer-all)"
                    % (path, ", ".join(fields)))
            return
        self.answer(path, fields, prompt, echo)

    def answer(self, path, fields, prompt, echo):
        session = self.sessions.get(path)
        who = self.label(session) if session else path
        say("%s: credentials requested: %s" % (who, ", ".join(safe(f) for f in fields)))
        if prompt:
            say("%s: the server says: %s" % (who, safe(prompt)))
        answers = {}
        for field in fields:
            value = self.credential(field, prompt, echo)
            if value is None:
                say("%s: no answer for %s; disconnecting" % (who, safe(field)))
                self.call(path, SESSION, "Disconnect", None, lambda reply: None)
                return
            answers[field] = value
        self.call(path, SESSION, "ProvideCredentials", GLib.Variant("(a{ss})", (answers,)),
                  lambda reply: say("%s: credentials sent" % who),
                  on_error=lambda e: self.failed("%s: credentials refused: %s" % (who, e)))
        answers.clear()

    def credential(self, field, prompt, echo):
        """One answer: a flag, else the terminal, else a line of stdin."""
        if field == "username" and self.args.username is not None:
            return self.args.username
        files = {"password": self.args.password_file,
                 "key-passphrase": self.args.key_passphrase_file}
        if files.get(field):
            with open(files[field]) as f:
                return f.readline().rstrip("\n")
        label = FIELD_LABELS.get(field, field)
        shows = field == "username" or (field in ("otp", "response") and echo)
        if sys.stdin.isatty():
            import getpass
            try:
                return input(label + ": ") if shows else getpass.getpass(label + ": ")
            except EOFError:
                return None
        line = sys.stdin.readline()
        return line.rstrip("\n") if line else None

    # ---------------------------------------------------------- actions

    target_session = None

    def run_action(self):
        if self.action_done:
            return
        self.action_done = True
        if self.args.connect:
            self.connect(self.args.connect)
        elif self.args.disconnect:
            self.disconnect(self.args.disconnect)

    def find_profile(self, spec):
        """A profile path, Id or Name; among several of one name (other
        users'), the caller's own."""
        if spec in self.profiles:
            return spec
        by_id = [p for p, props in self.profiles.items() if props.get("Id") == spec]
        if by_id:
            return by_id[0]
        named = sorted(p for p, props in self.profiles.items() if props.get("Name") == spec)
        own = [p for p in named if self.profiles[p].get("Owner") == os.getuid()]
        return (own or named or [None])[0]

    def connect(self, spec):
        profile = self.find_profile(spec)
        if profile is None:
            return self.failed("no profile %s" % safe(spec), EXIT_FAILED)
        options = {}
        if self.args.username is not None:
            options["username"] = GLib.Variant("s", self.args.username)
        self.connecting = True

        def done(reply):
            self.connecting = False
            path = reply[0]
            self.mine.add(path)
            self.target_session = path
            say("connecting %s: %s" % (safe(self.profile_name(profile)), path))
            request = self.early_requests.pop(path, None)
            self.early_requests.clear()
            if request:
                self.answer(path, *request)
            if path in self.sessions:
                self.on_state(self.sessions[path])

        def error(message):
            self.connecting = False
            self.failed("connect %s: %s" % (safe(spec), message))

        self.call(profile, PROFILE, "Connect", GLib.Variant("(a{sv})", (options,)), done,
                  on_error=error)

    def disconnect(self, spec):
        session = spec if spec in self.sessions else None
        if session is None:
            by_number = [p for p in self.sessions if p.rsplit("/", 1)[-1] == spec]
            profile = self.find_profile(spec)
            active = self.profiles[profile].get("ActiveSession", "/") if profile else "/"
            session = by_number[0] if by_number else (active if active != "/" else None)
        if session is None:
            return self.failed("no session of %s" % safe(spec), EXIT_FAILED)
        self.target_session = session
        self.call(session, SESSION, "Disconnect", None,
                  lambda reply: say("disconnecting %s" % session),
                  on_error=lambda e: self.failed("disconnect %s: %s" % (session, e)))

    # ---------------------------------------------------------- plumbing

    def call(self, path, iface, method, params, on_reply, on_error=None):
        """An asynchronous method call of the daemon; the main loop goes on
        meanwhile. ALLOW_INTERACTIVE_AUTHORIZATION: polkit may ask the user
        (a password dialog of the desktop's agent) before it answers."""
        def finish(bus, result):
            try:
                reply = bus.call_finish(result).unpack()
            except GLib.Error as e:
                name, message = remote_error(e)
                if name == "org.shimmervpn.Error.NotAuthorized":
                    self.exit_code = EXIT_NOT_AUTHORIZED
                (on_error or (lambda m: self.failed("%s: %s" % (method, m))))(safe(message))
                return
            on_reply(reply)
        self.bus.call(BUS_NAME, path, iface, method, params, None,
                      Gio.DBusCallFlags.ALLOW_INTERACTIVE_AUTHORIZATION, 120000, None, finish)

    def failed(self, text, code=None):
        say(text)
        if code is None:
            code = self.exit_code if self.exit_code != EXIT_OK else EXIT_FAILED
        if self.args.once or self.args.connect or self.args.disconnect:
            self.quit(code)

    def quit(self, code):
        self.exit_code = code
        self.loop.quit()


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="shimmer-watch.py",
        description="Follow shimmerd's sessions (states, rates, logs) and answer their "
                    "credential requests.")
    parser.add_argument("--address", default=os.environ.get("SHIMMER_BUS_ADDRESS"),
                        help="the bus address (default: $SHIMMER_BUS_ADDRESS or the system bus)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--connect", metavar="PROFILE",
                        help="connect the profile (name, id or path), then follow")
    action.add_argument("--disconnect", metavar="SESSION",
                        help="disconnect a session (profile name or id, session path or number)")
    parser.add_argument("--once", action="store_true",
                        help="exit when --connect is connected (0) or failed (1), or when "
                             "--disconnect's session has ended")
    parser.add_argument("--username", help="answer requests for the user name with this")
    parser.add_argument("--password-file", metavar="FILE",
                        help="answer requests for the password with the first line of FILE")
    parser.add_argument("--key-passphrase-file", metavar="FILE",
                        help="answer requests for the private key's passphrase from FILE")
    parser.add_argument("--answer-all", action="store_true",
                        help="answer credential requests of every session of yours, not only "
                             "of the one --connect started (a tray applet does)")
    parser.add_argument("--timeout", type=float, default=0,
                        help="with --once: give up after this many seconds (exit 1)")
    args = parser.parse_args(argv)
    if args.once and not (args.connect or args.disconnect):
        parser.error("--once goes with --connect or --disconnect")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.address:
            bus = Gio.DBusConnection.new_for_address_sync(
                args.address,
                Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
                | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        else:
            bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
    except GLib.Error as e:
        print("shimmer-watch: cannot reach the bus: %s" % safe(e.message), file=sys.stderr)
        return EXIT_UNREACHABLE
    watcher = Watcher(bus, args)
    for signum in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, lambda: watcher.quit(EXIT_OK) or
                             GLib.SOURCE_REMOVE)
    if args.once and args.timeout > 0:
        GLib.timeout_add(int(args.timeout * 1000),
                         lambda: watcher.failed("timed out", EXIT_FAILED) or GLib.SOURCE_REMOVE)
    watcher.start()
    watcher.loop.run()
    return watcher.exit_code


if __name__ == "__main__":
    sys.exit(main())
