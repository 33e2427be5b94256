#!/usr/bin/python3
"""The README's main job: a real tunnel from Shimmer to OpenVPN 2.6.

Builds a lab of two network namespaces (nothing outside them is touched),
starts Debian's OpenVPN 2.6 server in one, runs `shimmerd --config` in the
other, pings through the tunnel, shows the tunnel's addresses and routes,
stops the client and checks that everything it set up is gone.
"""
import argparse
import os
import re
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lab as labmod  # noqa: E402


def say(text):
    print("\n== " + text, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shimmerd", required=True)
    ap.add_argument("--proto", default="udp", choices=["udp", "tcp"])
    ap.add_argument("--wrap", default="tls-crypt",
                    choices=["none", "tls-auth", "tls-crypt", "tls-crypt-v2"])
    args = ap.parse_args()

    reason = labmod.preflight()
    if reason:
        print("demo: cannot run: " + reason, file=sys.stderr)
        return 2
    cmd = labmod.shimmerd_command(args.shimmerd)
    with labmod.Lab() as lab:
        say("OpenVPN 2.6 server in namespace %s (%s, %s)" % (lab.srv_ns, args.proto, args.wrap))
        srv = lab.start_openvpn_server({"proto": args.proto, "wrap": args.wrap,
                                        "push_routes": ["10.99.0.0/16"]})
        profile = lab.write_client_config({"inline": True}, name="demo")
        print("server ready; client profile: %s" % profile)
        ctl = os.path.join(os.path.dirname(args.shimmerd), "shimmerctl")
        if os.path.exists(ctl):
            say("shimmerctl check %s" % os.path.basename(profile))
            check = subprocess.run([ctl, "check", profile], capture_output=True, text=True)
            print((check.stderr.strip() + "\n") if check.stderr.strip() else "", end="")
            print("usable (exit %d)" % check.returncode)

        say("shimmerd --config %s   (in namespace %s)" % (os.path.basename(profile), lab.cli_ns))
        cli = lab.start_client(open(profile).read(), cmd)
        print(cli.read_log(whole=True).rstrip())
        print("connected in %.0f ms" % (cli.connect_time * 1000))

        say("ping %s through the tunnel" % srv.tunnel_v4)
        ping = lab.run_in_client("ping -c 3 -i 0.2 %s" % srv.tunnel_v4, check=False)
        print(ping.stdout.rstrip())
        ok = ping.returncode == 0

        say("the tunnel as the client namespace sees it")
        print(lab.run_in_client("ip -brief address show dev tun0", check=False).stdout.rstrip())
        print(lab.run_in_client("ip route show dev tun0", check=False).stdout.rstrip())

        say("stopping shimmerd (SIGTERM)")
        cli.signal(signal.SIGTERM)
        rc = cli.wait_exit()
        print("\n".join(cli.read_log(whole=True).splitlines()[-2:]))
        links = lab.run_in_client("ip -o link", check=False).stdout
        routes = lab.run_in_client("ip route", check=False).stdout
        clean = "tun0" not in links and not re.search(r"10\.99\.0\.0", routes)
        print("exit status %s; tun0 and its routes %s" % (rc, "removed" if clean else "LEFT BEHIND"))
        ok = ok and rc == 0 and clean
    say("lab removed. %s" % ("Tunnel worked." if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
