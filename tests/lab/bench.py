#!/usr/bin/python3
"""The client benchmark behind scripts/bench.sh.

One OpenVPN 2.6 server (UDP, tls-crypt, AES-256-GCM) in the lab; for each
client implementation available (OpenVPN; Shimmer's shimmerd when built),
alternating, `--runs` times: start the client and time it from process start
to its ready line (connect time), run iperf3 TCP through the tunnel for
`--seconds` while sampling the client's VmRSS, stop the client. Then
`--connects` extra connect-only cycles per client. Prints a table with the
ratio shimmerd/openvpn per metric.
"""
import argparse
import json
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as labmod  # noqa: E402

IPERF_PORT = 5201


class RssSampler(threading.Thread):
    def __init__(self, proc, interval=0.05):
        super().__init__(daemon=True)
        self.proc, self.interval = proc, interval
        self.max_kb = 0
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            kb = self.proc.rss_kb()
            if kb:
                self.max_kb = max(self.max_kb, kb)
            self._halt.wait(self.interval)

    def finish(self):
        self._halt.set()
        self.join(2)
        return self.max_kb


def one_connect(lab, impl, profile, timeout):
    cli = lab.start_client(profile, impl, name=lab._unique(impl.name), timeout=timeout)
    return cli


def iperf(lab, addr, seconds, reverse, port=IPERF_PORT):
    cmd = ["iperf3", "-c", addr, "-p", str(port), "-t", str(seconds), "-J",
           "--connect-timeout", "3000"]
    if reverse:
        cmd.append("-R")
    r = lab.run_in_client(cmd, timeout=seconds + 20, check=False)
    try:
        data = json.loads(r.stdout)
    except ValueError:
        raise labmod.LabError("iperf3 output is not JSON (status %d):\n%s" % (r.returncode, r.stdout[-2000:]))
    if "error" in data:
        raise labmod.LabError("iperf3: %s" % data["error"])
    return data["end"]["sum_received"]["bits_per_second"]


def fmt(v, _key=None):
    return "-" if v is None else "%.1f" % v


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5, help="iperf3 duration per run")
    ap.add_argument("--connects", type=int, default=5, help="extra connect-only cycles per client")
    ap.add_argument("--shimmerd", default=None, help="path (default: $SHIMMERD or _build/*/service/shimmerd)")
    ap.add_argument("--ready", default=None, help="shimmerd ready regex (default: $SHIMMERD_READY or 'connected')")
    ap.add_argument("--reverse", action="store_true", help="iperf3 -R (server sends)")
    ap.add_argument("--no-baseline", action="store_true", help="skip iperf3 over the bare veth")
    ap.add_argument("--budget", type=float, default=170, help="stop starting new runs after this many seconds")
    ap.add_argument("--json", help="also write the raw results here")
    a = ap.parse_args(argv)

    why = labmod.preflight()
    if why:
        print("bench: " + why, file=sys.stderr)
        return 2
    t0 = time.monotonic()
    impls = [labmod.OPENVPN]
    shim = labmod.shimmerd_command(a.shimmerd, a.ready)
    if shim is None:
        shim_note = ("shimmerd not found (set SHIMMERD=/path/to/shimmerd or build "
                     "_build/*/service/shimmerd): OpenVPN figures only")
    else:
        impls.append(shim)
        shim_note = "shimmerd: %s (ready marker /%s/)" % (shim.argv[0], shim.ready)
    res = {i.name: {"connect_s": [], "bps": [], "rss_kb": []} for i in impls}
    notes = []

    with labmod.Lab() as lab:
        srv = lab.start_openvpn_server({"proto": "udp", "wrap": "tls-crypt", "cipher": "AES-256-GCM"},
                                       name="bench")
        profile = lab.write_client_config(name="bench-client")
        lab.spawn_in_server(["iperf3", "-s", "-B", srv.tunnel_v4, "-p", str(IPERF_PORT)],
                            name="iperf3-server")
        lab.wait_for(lambda: (":%d" % IPERF_PORT) in lab.run_in_server(
            ["ss", "-Hltn", "sport", "= :%d" % IPERF_PORT]).stdout, 10, what="iperf3 -s")

        print("lab: server %s (pid %d) in %s, clients in %s; tunnel %s"
              % (srv.tunnel_v4, srv.pid, lab.srv_ns, lab.cli_ns, srv.tunnel_net4), flush=True)
        print("server: UDP, tls-crypt, AES-256-GCM; iperf3 TCP %s, %d s x %d runs"
              % ("server->client" if a.reverse else "client->server", a.seconds, a.runs), flush=True)
        print(shim_note, flush=True)
        baseline = None
        if not a.no_baseline:
            # Context: the same transfer over the bare veth, no tunnel.
            lab.spawn_in_server(["iperf3", "-s", "-B", lab.server_ip4, "-p", str(IPERF_PORT + 1)],
                                name="iperf3-veth")
            lab.wait_for(lambda: (":%d" % (IPERF_PORT + 1)) in lab.run_in_server(
                ["ss", "-Hltn", "sport", "= :%d" % (IPERF_PORT + 1)]).stdout, 10, what="iperf3 -s")
            baseline = iperf(lab, lab.server_ip4, 2, a.reverse, IPERF_PORT + 1)
            print("bare veth, no tunnel (2 s): %.1f Mbit/s" % (baseline / 1e6), flush=True)

        per_run = len(impls) * (a.seconds + 3)
        for run in range(a.runs):
            if time.monotonic() - t0 + per_run > a.budget:
                notes.append("stopped after %d of %d runs (time budget %.0fs)" % (run, a.runs, a.budget))
                break
            order = impls if run % 2 == 0 else list(reversed(impls))
            for impl in order:
                cli = one_connect(lab, impl, profile, timeout=20)
                # The ready line says the tunnel is up; make sure packets pass.
                lab.wait_for(lambda: lab.ping_from_client(srv.tunnel_v4, count=1, timeout=2).ok,
                             10, interval=0.1, what="the tunnel")
                sampler = RssSampler(cli)
                sampler.start()
                try:
                    bps = iperf(lab, srv.tunnel_v4, a.seconds, a.reverse)
                finally:
                    rss = sampler.finish()
                alive = cli.alive()
                cli.stop()
                if not alive:
                    raise labmod.LabError("%s exited during the run:\n%s" % (impl.name, cli.log_tail()))
                r = res[impl.name]
                r["connect_s"].append(cli.connect_time)
                r["bps"].append(bps)
                r["rss_kb"].append(rss)
                print("run %d %-9s connect %6.1f ms  iperf3 %8.1f Mbit/s  RSS max %6.1f MiB"
                      % (run + 1, impl.name, cli.connect_time * 1e3, bps / 1e6, rss / 1024), flush=True)

        for k in range(a.connects):
            if time.monotonic() - t0 + 5 > a.budget:
                notes.append("stopped the extra connects after %d (time budget)" % k)
                break
            order = impls if k % 2 == 0 else list(reversed(impls))
            for impl in order:
                cli = one_connect(lab, impl, profile, timeout=20)
                res[impl.name]["connect_s"].append(cli.connect_time)
                cli.stop()

    def summary(name):
        r = res[name]
        return {
            "connect_ms": statistics.median(r["connect_s"]) * 1e3 if r["connect_s"] else None,
            "mbps": statistics.median(r["bps"]) / 1e6 if r["bps"] else None,
            "rss_mib": max(r["rss_kb"]) / 1024 if r["rss_kb"] else None,
        }

    sums = {i.name: summary(i.name) for i in impls}
    rows = [("connect time, median (ms)", "connect_ms"),
            ("iperf3 TCP, median (Mbit/s)", "mbps"),
            ("client RSS, max (MiB)", "rss_mib")]
    print()
    ov = sums["openvpn"]
    nconn = len(res["openvpn"]["connect_s"])
    if "shimmerd" in sums:
        sh = sums["shimmerd"]
        print("%-30s %12s %12s %16s" % ("metric", "openvpn", "shimmerd", "shimmerd/openvpn"))
        for label, key in rows:
            ratio = (sh[key] / ov[key]) if (sh[key] is not None and ov[key]) else None
            print("%-30s %12s %12s %16s" % (label, fmt(ov[key], key), fmt(sh[key], key),
                                            "-" if ratio is None else "%.2f" % ratio))
    else:
        print("%-30s %12s" % ("metric", "openvpn"))
        for label, key in rows:
            print("%-30s %12s" % (label, fmt(ov[key], key)))
        print("\nshimmerd is not built: OpenVPN's figures only (no ratio).")
    print("(connect time: %d samples per client; throughput: %d runs of %d s; "
          "took %.0f s)" % (nconn, len(res["openvpn"]["bps"]), a.seconds, time.monotonic() - t0))
    for n in notes:
        print("note: " + n)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"raw": res, "summary": sums, "notes": notes,
                       "veth_bps": baseline}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
