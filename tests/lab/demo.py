#!/usr/bin/python3
"""The README's main job: a real tunnel from Shimmer to OpenVPN 2.6, driven
through the D-Bus service as a user would.

Builds a lab of two network namespaces (nothing outside them is touched),
starts Debian's OpenVPN 2.6 server in one; in the other runs shimmerd as a
system service on a private system bus (a dbus-daemon with the project's own
bus policy, data/org.shimmervpn.conf), then: `shimmerctl import`,
`shimmerctl connect --wait`, a ping through the tunnel, `shimmerctl status`,
`shimmerctl disconnect`, and checks that the tun device and its routes are
gone. `--foreground` runs `shimmerd --config` instead of the service.
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lab as labmod  # noqa: E402
import privbus  # noqa: E402

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shimmerd", required=True)
    ap.add_argument("--proto", default="udp", choices=["udp", "tcp"])
    ap.add_argument("--wrap", default="tls-crypt",
                    choices=["none", "tls-auth", "tls-crypt", "tls-crypt-v2"])
    ap.add_argument("--foreground", action="store_true",
                    help="run shimmerd --config instead of the D-Bus service")
    args = ap.parse_args()

    reason = labmod.preflight()
    if reason:
        print("demo: cannot run: " + reason, file=sys.stderr)
        return 2
    ctl = os.path.join(os.path.dirname(args.shimmerd), "ctl", "shimmerctl")
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
