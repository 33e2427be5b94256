#!/usr/bin/python3
"""The README's main job: a real tunnel between Shimmer's own server and
Shimmer's client, driven through the D-Bus service as an administrator and
a user would.

Builds a lab of two network namespaces (nothing outside them is touched).
In one, shimmerd runs as a system service on a private system bus (a
dbus-daemon with the project's own bus policy, data/org.shimmervpn.conf)
and serves data/examples/server.conf: `shimmerctl import`, `shimmerctl
server start`. In the other, a second shimmerd on a bus of its own runs the
client, data/examples/client.ovpn: `shimmerctl import`, `shimmerctl connect
--wait`, a ping through the tunnel, `shimmerctl status`; the server shows
its client (`shimmerctl server clients`); then `shimmerctl disconnect`,
`shimmerctl server stop`, and the tun devices and their routes must be
gone on both sides. The examples' files are the test PKI (tests/data).

`--server openvpn` serves with Debian's OpenVPN 2.6 instead; `--foreground`
runs `shimmerd --config` (server and client) instead of the service.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lab as labmod  # noqa: E402
import privbus  # noqa: E402

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(SRC, "data", "examples")
# The examples' server, as the lab's client builder wants to know it.
SERVER_TUNNEL4 = "10.8.0.1"

def say(text):
    print("\n== " + text, flush=True)


def run(cmd, **kw):
    print("$ " + " ".join(os.path.basename(c) if i == 0 else c for i, c in enumerate(cmd)),
          flush=True)
    r = subprocess.run(cmd, text=True, **kw)
    return r


def main_service(lab, args, srv, profile, ctl):
    tmp = tempfile.mkdtemp(prefix="shimmer-demo-")
    bus = privbus.PrivateBus(tmp, policy="system",
                             includes=[os.path.join(SRC, "data", "org.shimmervpn.conf")])
    address = bus.address
    daemon = None
    ok = False
    try:
        say("shimmerd --system on a private system bus, in namespace %s" % lab.cli_ns)
        state_dir = os.path.join(tmp, "state")
        daemon = lab.spawn_in_client([args.shimmerd, "--bus-address", address,
                                      "--state-dir", state_dir], name="shimmerd")
        env = dict(os.environ, SHIMMER_BUS_ADDRESS=address)
        labmod.wait_for(lambda: subprocess.run([ctl, "list"], env=env, capture_output=True)
                        .returncode == 0, 10, what="shimmerd on the bus")
        print("shimmerd (pid %d) owns org.shimmervpn" % daemon.pid)

        say("import and connect")
        r = run([ctl, "import", profile, "--name", "demo"], env=env)
        assert r.returncode == 0
        start = time.monotonic()
        r = run([ctl, "connect", "demo", "--wait"], env=env)
        if r.returncode != 0:
            print("connect failed (exit %d)" % r.returncode)
            return False
        print("connected in %.0f ms" % ((time.monotonic() - start) * 1000))

        say("ping %s through the tunnel" % srv.tunnel_v4)
        ping = lab.ping_from_client(srv.tunnel_v4, count=3, through_tunnel=True)
        print(ping.output.strip())
        ok = ping.ok

        say("shimmerctl status")
        run([ctl, "status", "demo"], env=env)

        say("disconnect")
        r = run([ctl, "disconnect", "demo"], env=env)
        links = lab.run_in_client("ip -o link", check=False).stdout
        routes = lab.run_in_client("ip route", check=False).stdout
        clean = not re.search(r"\bshim\d+", links) and "10.99.0.0" not in routes
        print("tun device and routes %s" % ("removed" if clean else "LEFT BEHIND"))
        ok = ok and r.returncode == 0 and clean
    finally:
        if daemon is not None:
            daemon.signal(signal.SIGTERM)
            rc = daemon.wait_exit()
            print("shimmerd stopped (exit %s)" % rc)
        bus.stop()
        subprocess.run(["rm", "-rf", tmp])
    return ok


def main_foreground(lab, args, srv, profile):
    cmd = labmod.shimmerd_command(args.shimmerd)
    say("shimmerd --config %s   (in namespace %s)" % (os.path.basename(profile), lab.cli_ns))
    cli = lab.start_client(open(profile).read(), cmd)
    print(cli.read_log(whole=True).rstrip())
    print("connected in %.0f ms" % (cli.connect_time * 1000))
    say("ping %s through the tunnel" % srv.tunnel_v4)
    ping = lab.ping_from_client(srv.tunnel_v4, count=3)
    print(ping.output.rstrip())
    say("stopping shimmerd (SIGTERM)")
    cli.signal(signal.SIGTERM)
    rc = cli.wait_exit()
    links = lab.run_in_client("ip -o link", check=False).stdout
    clean = "tun0" not in links
    print("exit status %s; tun0 and its routes %s" % (rc, "removed" if clean else "LEFT BEHIND"))
    return ping.ok and rc == 0 and clean


# ------------------------------------------------------- Shimmer's own server

def example_files(lab, proto, wrap):
    """data/examples/server.conf and client.ovpn in directories of the lab,
    with the test PKI under the names they use, for PROTO and WRAP; their
    paths."""
    sdir, cdir = os.path.join(lab.dir, "office-server"), os.path.join(lab.dir, "office-client")
    os.makedirs(sdir)
    os.makedirs(cdir)
    for name in ("ca.crt", "server.crt", "server.key", "tc.key", "ta.key", "tc-v2-server.key"):
        shutil.copyfile(labmod.fixture(name), os.path.join(sdir, name))
    for name in ("ca.crt", "client.crt", "client.key", "tc.key", "ta.key", "tc-v2-client.key"):
        shutil.copyfile(labmod.fixture(name), os.path.join(cdir, name))
    for d in (sdir, cdir):
        for name in os.listdir(d):
            os.chmod(os.path.join(d, name), 0o600)
    server = open(os.path.join(EXAMPLES, "server.conf")).read()
    client = open(os.path.join(EXAMPLES, "client.ovpn")).read()
    wraps = {"tls-crypt": ("tls-crypt tc.key", "tls-crypt tc.key"),
             "tls-auth": ("tls-auth ta.key 0", "tls-auth ta.key 1"),
             "tls-crypt-v2": ("tls-crypt-v2 tc-v2-server.key", "tls-crypt-v2 tc-v2-client.key"),
             "none": ("", "")}
    server = server.replace("\ntls-crypt tc.key\n", "\n%s\n" % wraps[wrap][0])
    client = client.replace("\ntls-crypt tc.key\n", "\n%s\n" % wraps[wrap][1])
    server = server.replace("\nproto udp\n", "\nproto %s\n" % proto)
    client = client.replace("\nproto udp\n", "\nproto %s\n" % proto)
    # The lab's server side, and the name in the test PKI's certificate.
    client = client.replace("remote vpn.example.com 1194", "remote %s 1194" % lab.server_ip4)
    client = client.replace("verify-x509-name vpn.example.com name",
                            "verify-x509-name %s name" % labmod.SERVER_CN)
    paths = (os.path.join(sdir, "server.conf"), os.path.join(cdir, "client.ovpn"))
    for path, text in zip(paths, (server, client)):
        with open(path, "w") as f:
            f.write(text)
    return paths


def show_check(ctl, path):
    say("shimmerctl check %s" % os.path.relpath(path, os.path.dirname(os.path.dirname(path))))
    check = subprocess.run([ctl, "check", path], capture_output=True, text=True)
    print((check.stderr.strip() + "\n") if check.stderr.strip() else "", end="")
    print("usable (exit %d)" % check.returncode)
    return check.returncode == 0


def tun_left(lab, ns, pattern):
    links = lab._run(ns, ["ip", "-o", "link"], check=False).stdout
    return re.findall(pattern, links)


class Service:
    """shimmerd --system on a private bus of its own, in namespace NS."""

    def __init__(self, lab, args, ns, name):
        self.tmp = tempfile.mkdtemp(prefix="shimmer-demo-")
        os.chmod(self.tmp, 0o755)
        self.bus = privbus.PrivateBus(self.tmp, policy="system",
                                      includes=[os.path.join(SRC, "data", "org.shimmervpn.conf")])
        self.env = dict(os.environ, SHIMMER_BUS_ADDRESS=self.bus.address)
        self.daemon = lab._spawn(ns, [args.shimmerd, "--bus-address", self.bus.address,
                                      "--state-dir", os.path.join(self.tmp, "state")], name,
                                 None, None)
        self.ctl = os.path.join(os.path.dirname(args.shimmerd), "ctl", "shimmerctl")
        labmod.wait_for(lambda: subprocess.run([self.ctl, "list"], env=self.env,
                                               capture_output=True).returncode == 0
                        or not self.daemon.alive(), 10, what="shimmerd on the bus")
        print("shimmerd (pid %d) owns org.shimmervpn on its bus" % self.daemon.pid)

    def run(self, *args, **kw):
        return run([self.ctl] + list(args), env=self.env, **kw)

    def json(self, *args):
        r = subprocess.run([self.ctl] + list(args) + ["--json"], env=self.env,
                           capture_output=True, text=True)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def close(self):
        rc = None
        if self.daemon.alive():
            self.daemon.signal(signal.SIGTERM)
            rc = self.daemon.wait_exit(15)
        self.bus.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
        return rc


def main_shimmer_service(lab, args, server_conf, client_ovpn):
    server = client = None
    ok = False
    try:
        say("the server's side: shimmerd --system in namespace %s" % lab.srv_ns)
        server = Service(lab, args, lab.srv_ns, "shimmerd-server")
        if server.run("import", server_conf, "--name", "office").returncode != 0:
            return False
        if server.run("server", "start", "office").returncode != 0:
            return False
        server.run("server", "status", "office")

        say("the client's side: shimmerd --system in namespace %s" % lab.cli_ns)
        client = Service(lab, args, lab.cli_ns, "shimmerd-client")
        if client.run("import", client_ovpn, "--name", "office").returncode != 0:
            return False
        start = time.monotonic()
        if client.run("connect", "office", "--wait").returncode != 0:
            print("connect failed")
            return False
        print("connected in %.0f ms" % ((time.monotonic() - start) * 1000))

        say("ping %s through the tunnel" % SERVER_TUNNEL4)
        ping = lab.ping_from_client(SERVER_TUNNEL4, count=3, through_tunnel=True)
        print(ping.output.strip())
        ok = ping.ok

        say("the client's status, and the server's clients")
        client.run("status", "office")
        print()
        server.run("server", "clients", "office")
        ok = ok and len(server.json("server", "clients") or []) == 1

        say("disconnect, then stop the server")
        ok = client.run("disconnect", "office").returncode == 0 and ok
        gone = labmod.wait_for(lambda: server.json("server", "clients") == [], 10,
                               what="the server to see the client go")
        print("the server's client list is empty" if gone else "the client is still listed")
        ok = server.run("server", "stop", "office").returncode == 0 and ok
        left = tun_left(lab, lab.cli_ns, r"\bshim\d+") + tun_left(lab, lab.srv_ns, r"\bshimsrv\d+")
        routes = lab.run_in_client("ip route", check=False).stdout + \
            lab.run_in_server("ip route", check=False).stdout
        clean = not left and "10.8.0.0" not in routes
        print("tun devices and routes %s" % ("removed on both sides" if clean
                                               else "LEFT BEHIND: %s" % left))
        ok = ok and clean
    finally:
        for name, svc in (("client", client), ("server", server)):
            if svc is not None:
                print("shimmerd (%s side) stopped (exit %s)" % (name, svc.close()))
    return ok


def main_shimmer_foreground(lab, args, server_conf, client_ovpn):
    say("shimmerd --config server.conf   (in namespace %s)" % lab.srv_ns)
    srv = lab.spawn_in_server([args.shimmerd, "--config", server_conf], name="server")
    srv.wait_log(labmod.SHIMMER_SERVER_READY, 15)
    print(srv.read_log(whole=True).rstrip())
    cmd = labmod.shimmerd_command(args.shimmerd)
    say("shimmerd --config client.ovpn   (in namespace %s)" % lab.cli_ns)
    cli = lab.start_client(client_ovpn, cmd)
    print(cli.read_log(whole=True).rstrip())
    print("connected in %.0f ms" % (cli.connect_time * 1000))
    say("ping %s through the tunnel" % SERVER_TUNNEL4)
    ping = lab.ping_from_client(SERVER_TUNNEL4, count=3, through_tunnel=True)
    print(ping.output.rstrip())
    say("stopping the client, then the server (SIGTERM)")
    cli.signal(signal.SIGTERM)
    rc_cli = cli.wait_exit()
    srv.signal(signal.SIGTERM)
    rc_srv = srv.wait_exit()
    left = tun_left(lab, lab.cli_ns, r"\btun\d+") + tun_left(lab, lab.srv_ns, r"\btun\d+")
    clean = not left
    print("exit status %s (client), %s (server); tun devices %s"
          % (rc_cli, rc_srv, "removed" if clean else "LEFT BEHIND: %s" % left))
    return ping.ok and rc_cli == 0 and rc_srv == 0 and clean


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shimmerd", required=True)
    ap.add_argument("--proto", default="udp", choices=["udp", "tcp"])
    ap.add_argument("--wrap", default="tls-crypt",
                    choices=["none", "tls-auth", "tls-crypt", "tls-crypt-v2"])
    ap.add_argument("--foreground", action="store_true",
                    help="run shimmerd --config instead of the D-Bus service")
    ap.add_argument("--server", default="shimmer", choices=["shimmer", "openvpn"],
                    help="whose server the client connects to (default: Shimmer's own)")
    args = ap.parse_args()

    reason = labmod.preflight()
    if reason:
        print("demo: cannot run: " + reason, file=sys.stderr)
        return 2
    ctl = os.path.join(os.path.dirname(args.shimmerd), "ctl", "shimmerctl")
    if args.server == "shimmer":
        with labmod.Lab() as lab:
            server_conf, client_ovpn = example_files(lab, args.proto, args.wrap)
            ok = show_check(ctl, server_conf) and show_check(ctl, client_ovpn)
            if ok and args.foreground:
                ok = main_shimmer_foreground(lab, args, server_conf, client_ovpn)
            elif ok:
                ok = main_shimmer_service(lab, args, server_conf, client_ovpn)
        say("lab removed. %s" % ("Tunnel worked." if ok else "FAILED"))
        return 0 if ok else 1
    with labmod.Lab() as lab:
        say("OpenVPN 2.6 server in namespace %s (%s, %s)" % (lab.srv_ns, args.proto, args.wrap))
        srv = lab.start_openvpn_server({"proto": args.proto, "wrap": args.wrap,
                                        "push_routes": ["10.99.0.0/16"]})
        profile = lab.write_client_config({}, name="demo")
        print("server ready; client profile: %s" % profile)
        say("shimmerctl check %s" % os.path.basename(profile))
        check = subprocess.run([ctl, "check", profile], capture_output=True, text=True)
        print((check.stderr.strip() + "\n") if check.stderr.strip() else "", end="")
        print("usable (exit %d)" % check.returncode)
        if args.foreground:
            ok = main_foreground(lab, args, srv, profile)
        else:
            ok = main_service(lab, args, srv, profile, ctl)
    say("lab removed. %s" % ("Tunnel worked." if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
