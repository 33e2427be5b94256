# SPDX-License-Identifier: MIT
"""A stand-in for systemd-resolved's link API, for tests on a private bus.

    /usr/bin/python3 resolved_mock.py --address ADDRESS [--lifetime SECONDS]

Owns org.freedesktop.resolve1 on the bus at ADDRESS and serves, at
/org/freedesktop/resolve1, the part of org.freedesktop.resolve1.Manager that
Shimmer uses: SetLinkDNS(i, a(iay)), SetLinkDomains(i, a(sb)),
SetLinkDefaultRoute(i, b), SetLinkDNSSEC(i, s), SetLinkDNSOverTLS(i, s) and
RevertLink(i). With --no-extras the DNSSEC and DNS-over-TLS calls are not
there and get UnknownMethod, as from an older resolved. Arguments are checked the way
resolved checks them (the link must exist on this machine, address family
and length must agree, a domain is a name without "~"); bad ones get the
errors resolved gives.

Every call that got through the signature check is recorded. The test reads
and steers the stand-in through org.shimmervpn.test.ResolvedMock on the same
object:

    GetCalls() -> a(sv)        (method name, its arguments) in order
    Reset()                    forgets the calls and the links' settings
    GetLinks() -> a{iv}        ifindex -> (a(iay) a(sb) b) as now set
    FailNext(s method, s error_name, s message)
                               the next call of METHOD fails with that error

It prints "READY" once it owns the name, and exits when the bus goes away,
on SIGTERM, or after --lifetime seconds (60 by default), so that a crashed
test cannot leave it behind for long.
"""
import argparse
import re
import signal
import socket
import sys

from gi.repository import Gio, GLib

NAME = "org.freedesktop.resolve1"
PATH = "/org/freedesktop/resolve1"
MANAGER = "org.freedesktop.resolve1.Manager"
CONTROL = "org.shimmervpn.test.ResolvedMock"

XML = """
<node>
  <interface name="org.freedesktop.resolve1.Manager">
    <method name="SetLinkDNS">
      <arg name="ifindex" type="i" direction="in"/>
      <arg name="addresses" type="a(iay)" direction="in"/>
    </method>
    <method name="SetLinkDomains">
      <arg name="ifindex" type="i" direction="in"/>
      <arg name="domains" type="a(sb)" direction="in"/>
    </method>
    <method name="SetLinkDefaultRoute">
      <arg name="ifindex" type="i" direction="in"/>
      <arg name="enable" type="b" direction="in"/>
    </method>
    <method name="RevertLink">
      <arg name="ifindex" type="i" direction="in"/>
    </method>
    <method name="SetLinkDNSSEC">
      <arg name="ifindex" type="i" direction="in"/>
      <arg name="mode" type="s" direction="in"/>
    </method>
    <method name="SetLinkDNSOverTLS">
      <arg name="ifindex" type="i" direction="in"/>
      <arg name="mode" type="s" direction="in"/>
    </method>
  </interface>
  <interface name="org.shimmervpn.test.ResolvedMock">
    <method name="GetCalls">
      <arg name="calls" type="a(sv)" direction="out"/>
    </method>
    <method name="Reset"/>
    <method name="GetLinks">
      <arg name="links" type="a{iv}" direction="out"/>
    </method>
    <method name="FailNext">
      <arg name="method" type="s" direction="in"/>
      <arg name="error_name" type="s" direction="in"/>
      <arg name="message" type="s" direction="in"/>
    </method>
  </interface>
</node>
"""

FAMILY_LENGTH = {socket.AF_INET: 4, socket.AF_INET6: 16}


class Error(Exception):
    def __init__(self, name, message):
        super().__init__(message)
        self.name = name
        self.message = message


def invalid(message):
    return Error("org.freedesktop.DBus.Error.InvalidArgs", message)


class Resolved:
    def __init__(self):
        self.calls = []
        self.links = {}
        self.fail_next = {}

    def link(self, ifindex):
        try:
            socket.if_indextoname(ifindex)
        except (OSError, OverflowError):
            raise Error("org.freedesktop.resolve1.NoSuchLink",
                        "Link %d not known" % ifindex) from None
        return self.links.setdefault(ifindex, {"dns": [], "domains": [], "default_route": None})

    # org.freedesktop.resolve1.Manager
    def SetLinkDNS(self, ifindex, addresses):
        link = self.link(ifindex)
        for family, address in addresses:
            if family not in FAMILY_LENGTH:
                raise invalid("Unknown address family %d" % family)
            if len(address) != FAMILY_LENGTH[family]:
                raise invalid("Invalid address size")
        link["dns"] = [(f, bytes(a)) for f, a in addresses]

    def SetLinkDomains(self, ifindex, domains):
        link = self.link(ifindex)
        for name, _routing in domains:
            if not name or name.startswith("~") or any(c.isspace() for c in name):
                raise invalid("Invalid search domain %s" % name)
        link["domains"] = list(domains)

    def SetLinkDefaultRoute(self, ifindex, enable):
        self.link(ifindex)["default_route"] = enable

    def SetLinkDNSSEC(self, ifindex, mode):
        link = self.link(ifindex)
        if mode not in ("", "yes", "no", "allow-downgrade"):
            raise invalid("Invalid DNSSEC setting: %s" % mode)
        link["dnssec"] = mode

    def SetLinkDNSOverTLS(self, ifindex, mode):
        link = self.link(ifindex)
        if mode not in ("", "yes", "no", "opportunistic"):
            raise invalid("Invalid DNSOverTLS setting: %s" % mode)
        link["dot"] = mode

    def RevertLink(self, ifindex):
        self.link(ifindex)
        self.links.pop(ifindex, None)

    # org.shimmervpn.test.ResolvedMock
    def GetCalls(self):
        return GLib.Variant("(a(sv))", (self.calls,))

    def Reset(self):
        self.calls = []
        self.links = {}
        self.fail_next = {}

    def GetLinks(self):
        out = {}
        for ifindex, link in self.links.items():
            out[ifindex] = GLib.Variant(
                "(a(iay)a(sb)b)",
                (link["dns"], link["domains"], bool(link["default_route"])))
        return GLib.Variant("(a{iv})", (out,))

    def FailNext(self, method, error_name, message):
        self.fail_next[method] = (error_name, message)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", required=True)
    ap.add_argument("--lifetime", type=float, default=60)
    ap.add_argument("--no-extras", action="store_true")
    args = ap.parse_args()

    loop = GLib.MainLoop()
    state = Resolved()
    xml = XML
    if args.no_extras:
        xml = re.sub(r'\s*<method name="SetLinkDNS(SEC|OverTLS)">.*?</method>', "", xml,
                     flags=re.S)
    node = Gio.DBusNodeInfo.new_for_xml(xml)
    conn = Gio.DBusConnection.new_for_address_sync(
        args.address,
        Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
        None, None)
    conn.set_exit_on_close(False)
    conn.connect("closed", lambda *_: loop.quit())

    def on_call(_conn, _sender, _path, iface, method, params, invocation):
        args_ = params.unpack()
        if iface == MANAGER:
            state.calls.append((method, params))
            failure = state.fail_next.pop(method, None)
            if failure is not None:
                invocation.return_dbus_error(*failure)
                return
        try:
            ret = getattr(state, method)(*args_)
        except Error as e:
            invocation.return_dbus_error(e.name, e.message)
            return
        invocation.return_value(ret)

    for iface in node.interfaces:
        conn.register_object(PATH, iface, on_call, None, None)

    def on_acquired(*_):
        print("READY", flush=True)

    def on_lost(*_):
        print("lost the name %s" % NAME, file=sys.stderr, flush=True)
        loop.quit()

    Gio.bus_own_name_on_connection(conn, NAME, Gio.BusNameOwnerFlags.DO_NOT_QUEUE,
                                   on_acquired, on_lost)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, lambda: loop.quit() or False)
    GLib.timeout_add(int(args.lifetime * 1000), lambda: loop.quit() or False)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
