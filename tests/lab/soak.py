#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Soak: shimmerd (`--config`; --client openvpn for the reference) against OpenVPN 2.6's server in the lab
(tests/lab/lab.py) for MINUTES, with the data key renegotiated every
RENEG seconds, under a constant iperf3 UDP load at RATE through the tunnel.
Every INTERVAL seconds (10): shimmerd's RSS and fds, the server's RSS, the
interval's UDP loss (iperf3's own sequence numbers) and a ping through the
tunnel. Loss can be induced on the path (--loss PCT: nftables in both
namespaces, each direction); what exceeds it is reported. A summary table
at the end; --json FILE writes every sample. Not part of CI (scripts/soak.sh
runs it).

    sudo /usr/bin/python3 tests/lab/soak.py --minutes 30 [--rate 50M] [--reneg 10]
        [--loss 0] [--shimmerd PATH | --client openvpn] [--json FILE]

Exits 1 when shimmerd died, the tunnel stopped passing traffic, or loss
beyond the induced one exceeded --max-excess (percentage points, 0.5) in
the whole run.
"""
import argparse
import json
import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import impair  # noqa: E402
import lab as labmod  # noqa: E402


def slope_per_hour(points):
    """Least-squares slope of [(seconds, value)] per hour."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    var = sum((p[0] - mx) ** 2 for p in points)
    if var == 0:
        return 0.0
    return sum((p[0] - mx) * (p[1] - my) for p in points) / var * 3600


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--rate", default="50M", help="iperf3 UDP rate through the tunnel")
    ap.add_argument("--reneg", type=int, default=10, help="reneg-sec of both ends")
    ap.add_argument("--loss", type=int, default=0, help="induced loss on the path, percent")
    ap.add_argument("--interval", type=float, default=10)
    ap.add_argument("--max-excess", type=float, default=0.5,
                    help="loss beyond the induced one that fails the run, percentage points")
    ap.add_argument("--shimmerd", default=None)
    ap.add_argument("--client", default="shimmerd", choices=["shimmerd", "openvpn"],
                    help="the client under test (openvpn: the reference)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)

    reason = labmod.preflight()
    if reason:
        print("soak: cannot run: %s" % reason, file=sys.stderr)
        return 2
    for tool in ("iperf3",) + (("nft",) if a.loss else ()):
        if not shutil.which(tool):
            print("soak: %s is not installed" % tool, file=sys.stderr)
            return 2
    cmd = labmod.OPENVPN if a.client == "openvpn" else labmod.shimmerd_command(a.shimmerd)
    if cmd is None:
        print("soak: shimmerd not found (build it or give --shimmerd)", file=sys.stderr)
        return 2

    samples = []
    status = 0
    with labmod.Lab() as lab:
        srv = lab.start_openvpn_server({"wrap": "tls-crypt", "reneg_sec": a.reneg,
                                        "keepalive": (10, 60)})
        cli = lab.start_client(lab.client_config({"reneg_sec": a.reneg}), cmd, timeout=20)
        if a.loss:
            for ns in (lab.cli_ns, lab.srv_ns):
                impair.Nft(lab, ns).loss(a.loss)
        iperf = lab.spawn_in_server(["iperf3", "-s", "-B", srv.tunnel_v4, "-p", "5202"],
                                    name="iperf3-server")
        time.sleep(0.5)
        print("soak: %s pid %d, server pid %d, %s min, UDP %s, reneg-sec %d, "
              "induced loss %d%%; lab %s" % (cmd.name, cli.pid, srv.pid, a.minutes, a.rate,
                                              a.reneg, a.loss, lab.dir), flush=True)
        print("%8s %9s %5s %9s %10s %8s %7s %6s" % ("t(s)", "RSS(KiB)", "fds", "srvRSS",
                                                    "udp pkts", "lost", "lost%", "ping"),
              flush=True)
        t_start = time.monotonic()
        deadline = t_start + a.minutes * 60
        while time.monotonic() < deadline:
            if not cli.alive():
                print("soak: %s exited (%s):\n%s" % (cmd.name, cli.returncode, cli.log_tail(40)))
                status = 1
                break
            secs = max(1, int(min(a.interval, deadline - time.monotonic())))
            r = lab.run_in_client(["iperf3", "-c", srv.tunnel_v4, "-p", "5202", "-u",
                                   "-b", a.rate, "-l", "1200", "-t", str(secs), "-J"],
                                  timeout=secs + 30, check=False)
            try:
                s = json.loads(r.stdout)["end"]["sum"]
                pkts, lost = s["packets"], s["lost_packets"]
            except (ValueError, KeyError):
                pkts, lost = 0, None
            ping = lab.ping_from_client(srv.tunnel_v4, count=1, timeout=2)
            sample = {"t": round(time.monotonic() - t_start, 1), "rss_kib": cli.rss_kb(),
                      "fds": cli.fd_count(), "server_rss_kib": srv.rss_kb(),
                      "udp_packets": pkts, "udp_lost": lost, "ping": ping.ok}
            samples.append(sample)
            pct = 100.0 * lost / pkts if pkts and lost is not None else float("nan")
            print("%8.0f %9s %5s %9s %10d %8s %7.3f %6s"
                  % (sample["t"], sample["rss_kib"], sample["fds"], sample["server_rss_kib"],
                     pkts, lost, pct, "ok" if ping.ok else "LOST"), flush=True)
        iperf.stop()
        log = cli.read_log(whole=True)
        if cmd.name == "openvpn":
            renegs = len(re.findall(r"Control Channel: TLS", log)) - 1
            restarts = len(re.findall(r"SIGUSR1\[", log))
        else:
            renegs = len(re.findall(r"TLS handshake done \(key \d+\)", log)) - 1
            restarts = len(re.findall(r"restarting:", log))
        cli_alive = cli.alive()

    if not samples:
        print("soak: no samples")
        return 1
    rss = [s["rss_kib"] for s in samples if s["rss_kib"]]
    warm = [(s["t"], s["rss_kib"]) for s in samples if s["t"] >= 60 and s["rss_kib"]]
    measured = [s for s in samples if s["udp_lost"] is not None and s["udp_packets"]]
    total = sum(s["udp_packets"] for s in measured)
    lost = sum(s["udp_lost"] for s in measured)
    # iperf3 counts the datagrams from client to server: of the induced loss
    # only the client side's rule applies to them.
    loss_pct = 100.0 * lost / total if total else float("nan")
    excess = loss_pct - a.loss
    worst = max((100.0 * s["udp_lost"] / s["udp_packets"] for s in measured), default=0.0)
    failed_runs = len(samples) - len(measured)
    pings = sum(1 for s in samples if s["ping"])
    fds = sorted({s["fds"] for s in samples})
    summary = [
        ("duration", "%.1f min, %d samples every %.0f s" % (samples[-1]["t"] / 60, len(samples),
                                                            a.interval)),
        ("client", cmd.name),
        ("client RSS", "first %d KiB, min %d, max %d, last %d KiB" % (rss[0], min(rss),
                                                                         max(rss), rss[-1])),
        ("RSS growth", "%+d KiB after the first minute (%+.0f KiB/hour, least squares)"
         % ((warm[-1][1] - warm[0][1]) if warm else 0, slope_per_hour(warm))),
        ("client fds", ", ".join(map(str, fds))),
        ("renegotiations", "%d (reneg-sec %d), restarts %d" % (renegs, a.reneg, restarts)),
        ("UDP through the tunnel", "%d packets at %s, %d lost (%.4f%%), worst interval %.3f%%"
         % (total, a.rate, lost, loss_pct, worst)),
        ("loss beyond induced", "%+.4f percentage points (induced %d%%)" % (excess, a.loss)),
        ("iperf3 runs that failed", str(failed_runs)),
        ("pings through the tunnel", "%d of %d" % (pings, len(samples))),
        ("client at the end", "running" if cli_alive else "EXITED"),
    ]
    width = max(len(k) for k, _ in summary)
    print("\n---- soak summary ----")
    for k, v in summary:
        print("%-*s  %s" % (width, k, v))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), "samples": samples, "summary": dict(summary)}, f,
                      indent=1)
    if not cli_alive or pings == 0 or failed_runs > len(samples) // 10 or excess > a.max_excess:
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
