#!/usr/bin/python3
"""The tunnel benchmark behind scripts/bench.sh.

Four pairs, client -> server, each through a UDP / tls-crypt / AES-256-GCM
tunnel in the lab's two namespaces: Shimmer <-> Shimmer, OpenVPN <->
OpenVPN, Shimmer's client <-> OpenVPN's server, OpenVPN's client <->
Shimmer's server (pairs whose programs are missing are left out with a
note). Runs alternate between the pairs (the order reversed every other
run), so that a machine busy with something else hurts them alike.

Per pair and run: iperf3 TCP with 1 stream and with 4 streams (client to
server), ping every 50 ms during the 4-stream run (latency under load),
iperf3 UDP at a fixed rate and the share of datagrams lost, and the CPU time
both ends' processes used per GB moved over the TCP runs. Beside them: the
crypto limit (bench-datachan: AES-256-GCM seal + open in place on one core)
and iperf3 over the bare veth.

Prints one table of medians over the runs, and with --markdown FILE the same
table for the README.
"""
import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as labmod  # noqa: E402

IPERF_PORT = 5201
SERVER_OPTS = {"proto": "udp", "wrap": "tls-crypt", "cipher": "AES-256-GCM"}


def cpu_seconds(pid):
    """utime + stime of the whole process (all its threads)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def iperf(lab, addr, seconds, streams=1, udp_rate=None, port=IPERF_PORT):
    cmd = ["iperf3", "-c", addr, "-p", str(port), "-t", str(seconds), "-J",
           "--connect-timeout", "3000"]
    if streams > 1:
        cmd += ["-P", str(streams)]
    if udp_rate:
        # 4 MB socket buffers at both ends: with the default, iperf3's own
        # receiving socket overflows on a busy machine, which measures
        # iperf3 rather than the tunnel.
        cmd += ["-u", "-b", udp_rate, "-l", "1400", "-w", "4M"]
    r = lab.run_in_client(cmd, timeout=seconds + 30, check=False)
    try:
        # stderr comes in the same stream: a warning may precede the JSON.
        start = r.stdout.index("{")
        data, _ = json.JSONDecoder().raw_decode(r.stdout[start:])
    except ValueError:
        raise labmod.LabError("iperf3 output is not JSON (status %d):\n%s"
                              % (r.returncode, r.stdout[-2000:]))
    if "error" in data:
        raise labmod.LabError("iperf3: %s" % data["error"])
    end = data["end"]
    if udp_rate:
        s = end["sum"]
        return {"bps": s["bits_per_second"], "lost_percent": s.get("lost_percent", 0.0),
                "bytes": s["bytes"]}
    s = end["sum_received"]
    return {"bps": s["bits_per_second"], "bytes": s["bytes"],
            "retransmits": end.get("sum_sent", {}).get("retransmits")}


def ping_times(output):
    return [float(m) for m in re.findall(r"time=([\d.]+) ms", output)]


class Impl:
    def __init__(self, name, client_cmd, start_server):
        self.name, self.client_cmd, self.start_server = name, client_cmd, start_server


def start_iperf_server(lab, addr, port):
    proc = lab.spawn_in_server(["iperf3", "-s", "-B", addr, "-p", str(port)],
                               name=lab._unique("iperf3-s"))
    lab.wait_for(lambda: (":%d" % port) in lab.run_in_server(
        ["ss", "-Hltn", "sport", "= :%d" % port]).stdout, 10, what="iperf3 -s")
    return proc


def measure_pair(lab, cli_impl, srv_impl, a):
    """One run of one pair: the server, the client, the measurements."""
    srv = srv_impl.start_server(lab)
    iperf_srv = None
    cli = None
    try:
        profile = lab.write_client_config(server=srv, name=lab._unique("bench-client"))
        cli = lab.start_client(profile, cli_impl.client_cmd, name=lab._unique(cli_impl.name),
                               timeout=20)
        lab.wait_for(lambda: lab.ping_from_client(srv.tunnel_v4, count=1, timeout=2).ok,
                     10, interval=0.1, what="the tunnel")
        iperf_srv = start_iperf_server(lab, srv.tunnel_v4, IPERF_PORT)
        res = {"connect_ms": cli.connect_time * 1e3}
        cpu_c0, cpu_s0 = cpu_seconds(cli.pid), cpu_seconds(srv.pid)
        one = iperf(lab, srv.tunnel_v4, a.seconds)
        res["tcp1_mbps"] = one["bps"] / 1e6
        ping = lab.spawn_in_client(["ping", "-n", "-i", "0.05", "-w", str(a.seconds + 1),
                                    srv.tunnel_v4], name=lab._unique("ping"))
        four = iperf(lab, srv.tunnel_v4, a.seconds, streams=4)
        res["tcp4_mbps"] = four["bps"] / 1e6
        cpu_c1, cpu_s1 = cpu_seconds(cli.pid), cpu_seconds(srv.pid)
        ping.wait_exit(a.seconds + 10)
        times = ping_times(ping.read_log(whole=True))
        res["ping_ms"] = statistics.median(times) if times else None
        gb = (one["bytes"] + four["bytes"]) / 1e9
        if None not in (cpu_c0, cpu_c1, cpu_s0, cpu_s1) and gb > 0:
            res["cpu_client_s_per_gb"] = (cpu_c1 - cpu_c0) / gb
            res["cpu_server_s_per_gb"] = (cpu_s1 - cpu_s0) / gb
        udp = iperf(lab, srv.tunnel_v4, a.seconds, udp_rate=a.udp_rate)
        res["udp_loss_percent"] = udp["lost_percent"]
        res["udp_mbps"] = udp["bps"] / 1e6
        if not cli.alive() or not srv.alive():
            raise labmod.LabError("%s exited during the run:\n%s"
                                  % ("the client" if not cli.alive() else "the server",
                                     (cli if not cli.alive() else srv).log_tail()))
        return res
    finally:
        if iperf_srv is not None:
            iperf_srv.stop()
        if cli is not None:
            cli.stop()
        srv.stop()


def crypto_limit(shimmerd_path):
    """bench-datachan's in-place AES-256-GCM line, from the build shimmerd
    came from (or any build)."""
    cands = []
    if shimmerd_path:
        cands.append(os.path.join(os.path.dirname(os.path.dirname(shimmerd_path)), "tests",
                                  "bench-datachan"))
    cands += sorted(glob.glob(os.path.join(labmod.REPO, "_build", "*", "tests", "bench-datachan")))
    for exe in cands:
        if os.access(exe, os.X_OK):
            r = subprocess.run([exe, "1", "--aes-256-gcm"], capture_output=True, text=True,
                               timeout=60)
            m = re.search(r"AES-256-GCM in place \((\w+)\): (\d+) Mbit/s", r.stdout)
            if m:
                return float(m.group(2)), m.group(1)
    return None, None


def fmt(v, digits=0):
    if v is None:
        return "-"
    return ("%." + str(digits) + "f") % v


COLUMNS = [
    # key, header, digits
    ("tcp1_mbps", "TCP 1 stream Mbit/s", 0),
    ("tcp4_mbps", "TCP 4 streams Mbit/s", 0),
    ("udp_loss_percent", "UDP {rate} loss %", 1),
    ("cpu_client_s_per_gb", "client CPU s/GB", 2),
    ("cpu_server_s_per_gb", "server CPU s/GB", 2),
    ("ping_ms", "ping under load ms", 2),
    ("connect_ms", "connect ms", 0),
]


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--seconds", type=int, default=5, help="seconds per iperf3 run")
    ap.add_argument("--udp-rate", default="300M", help="iperf3 -b for the UDP test")
    ap.add_argument("--shimmerd", default=None,
                    help="path (default: $SHIMMERD or the newest _build/*/service/shimmerd)")
    ap.add_argument("--ready", default=None, help="shimmerd's ready regex")
    ap.add_argument("--pairs", default="all",
                    help="comma list of shimmer-shimmer, openvpn-openvpn, shimmer-openvpn, "
                         "openvpn-shimmer (client-server)")
    ap.add_argument("--budget", type=float, default=900,
                    help="stop starting new runs after this many seconds")
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--markdown", help="also write the table as Markdown here")
    a = ap.parse_args(argv)

    why = labmod.preflight()
    if why:
        print("bench: " + why, file=sys.stderr)
        return 2
    t0 = time.monotonic()
    notes = []
    shim_cmd = labmod.shimmerd_command(a.shimmerd, a.ready)
    shimmerd_path = shim_cmd.argv[0] if shim_cmd else None

    def openvpn_server(lab):
        return lab.start_openvpn_server(SERVER_OPTS, name="bench")

    def shimmer_server(lab):
        return lab.start_shimmer_server(SERVER_OPTS, name="bench", shimmerd=shimmerd_path)

    openvpn = Impl("openvpn", labmod.OPENVPN, openvpn_server)
    shimmer = Impl("shimmer", shim_cmd, shimmer_server)
    has_server = shim_cmd is not None and hasattr(labmod.Lab, "start_shimmer_server")
    pairs = []
    wanted = None if a.pairs == "all" else set(a.pairs.split(","))
    for c, s in ((shimmer, shimmer), (openvpn, openvpn), (shimmer, openvpn), (openvpn, shimmer)):
        key = "%s-%s" % (c.name, s.name)
        if wanted is not None and key not in wanted:
            continue
        if c is shimmer and shim_cmd is None:
            notes.append("%s left out: shimmerd is not built" % key)
            continue
        if s is shimmer and not has_server:
            notes.append("%s left out: this shimmerd has no server role yet" % key)
            continue
        pairs.append((c, s))
    if not pairs:
        print("bench: no pair to measure (%s)" % "; ".join(notes), file=sys.stderr)
        return 2

    results = {"%s-%s" % (c.name, s.name): [] for c, s in pairs}
    limit_mbps, backend = crypto_limit(shimmerd_path)
    veth = None
    with labmod.Lab() as lab:
        print("lab: server namespace %s, client namespace %s" % (lab.srv_ns, lab.cli_ns),
              flush=True)
        print("tunnels: UDP, tls-crypt, AES-256-GCM; iperf3 client -> server, %d s per test, "
              "%d run(s); UDP at %s" % (a.seconds, a.runs, a.udp_rate), flush=True)
        if shim_cmd:
            print("shimmerd: %s%s" % (shimmerd_path,
                                      " (SHIMMER_DATAPATH=%s)" % os.environ["SHIMMER_DATAPATH"]
                                      if os.environ.get("SHIMMER_DATAPATH") else ""), flush=True)
        veth_srv = start_iperf_server(lab, lab.server_ip4, IPERF_PORT + 1)
        veth = iperf(lab, lab.server_ip4, 2, port=IPERF_PORT + 1)["bps"] / 1e6
        veth_srv.stop()
        print("bare veth, no tunnel (iperf3 TCP, 1 stream, 2 s): %.0f Mbit/s" % veth, flush=True)
        if limit_mbps:
            print("crypto limit (bench-datachan: AES-256-GCM seal + open in place, 1400-byte "
                  "packets, one core, %s): %.0f Mbit/s" % (backend, limit_mbps), flush=True)
        per_run = len(pairs) * (3 * a.seconds + 12)
        for run in range(a.runs):
            if run > 0 and time.monotonic() - t0 + per_run > a.budget:
                notes.append("stopped after %d of %d runs (time budget %.0f s)"
                             % (run, a.runs, a.budget))
                break
            order = pairs if run % 2 == 0 else list(reversed(pairs))
            for c, s in order:
                key = "%s-%s" % (c.name, s.name)
                r = measure_pair(lab, c, s, a)
                results[key].append(r)
                print("run %d %-16s TCP1 %6.0f  TCP4 %6.0f Mbit/s  UDP loss %5.1f%%  "
                      "CPU s/GB %5s/%5s  ping %5s ms"
                      % (run + 1, key, r["tcp1_mbps"], r["tcp4_mbps"], r["udp_loss_percent"],
                         fmt(r.get("cpu_client_s_per_gb"), 2),
                         fmt(r.get("cpu_server_s_per_gb"), 2), fmt(r.get("ping_ms"), 2)),
                      flush=True)

    def med(key, col):
        vals = [r[col] for r in results[key] if r.get(col) is not None]
        return statistics.median(vals) if vals else None

    base = "openvpn-openvpn" if "openvpn-openvpn" in results else None
    headers = [h.format(rate=a.udp_rate) for _, h, _ in COLUMNS]
    rows = []
    for c, s in pairs:
        key = "%s-%s" % (c.name, s.name)
        row = [key.replace("-", " -> ")] + [fmt(med(key, col), d) for col, _, d in COLUMNS]
        if base:
            ratios = []
            for col in ("tcp1_mbps", "tcp4_mbps"):
                v, b = med(key, col), med(base, col)
                ratios.append("%.2f" % (v / b) if v and b else "-")
            row.append(" / ".join(ratios))
        rows.append(row)
    headers = ["client -> server"] + headers + (["x OpenVPN (TCP 1 / 4)"] if base else [])

    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print()
    print("  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(headers, widths))))
    for r in rows:
        print("  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths))))
    print("medians of %d run(s); bare veth %.0f Mbit/s%s; took %.0f s"
          % (max(len(v) for v in results.values()), veth or 0,
             "; crypto limit %.0f Mbit/s per core" % limit_mbps if limit_mbps else "",
             time.monotonic() - t0))
    for n in notes:
        print("note: " + n)

    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write("| " + " | ".join(headers) + " |\n")
            f.write("|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|\n")
            for r in rows:
                f.write("| " + " | ".join(r) + " |\n")
            f.write("\nBare veth, no tunnel: %.0f Mbit/s (iperf3 TCP, 1 stream)." % (veth or 0))
            if limit_mbps:
                f.write(" Crypto limit: %.0f Mbit/s (AES-256-GCM seal + open of 1400-byte "
                        "packets in place on one core, bench-datachan)." % limit_mbps)
            f.write("\n")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"runs": results, "veth_mbps": veth, "crypto_limit_mbps": limit_mbps,
                       "notes": notes}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
