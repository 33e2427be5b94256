#!/usr/bin/python3
"""The server benchmark behind `scripts/bench.sh --server`: Shimmer's
server (`shimmerd --config`) against OpenVPN 2.6's, in the same lab and the
same run. Figures, not pass/fail.

1. Memory per connected client: the server's RSS with N clients of the load
   tool (tests/load-clients.c, `shimmer-load`: Shimmer's client engine, one
   UDP socket each, in one process) minus its RSS idle, over N, for
   N = 1,000 and 10,000; both servers with the same 20 real OpenVPN 2.6
   clients (each in a network namespace of its own); OpenVPN's server also
   with 1,000 load clients.
2. New-client handshakes per second: the load tool starts N clients at once
   against each server (first-packet rate limits lifted on both:
   connect-freq-initial), connected / (last connect - start).
3. A flood of spoofed first packets (valid hard resets from random source
   addresses, a raw socket in the client namespace; the servers' default
   rate limits): clients already connected keep pinging through the
   tunnel; their echo loss with and without the flood, and the server's
   RSS before, during and after it.

Both servers: UDP, AES-256-GCM, no IPv6 in the tunnel, keepalive 10 120,
4 MiB socket buffers (Shimmer's own; OpenVPN's rcvbuf/sndbuf); tls-crypt
for 1 and 2, no wrapping for 3 (so that every spoofed reset is a valid
first packet). Needs root; everything stays in the lab's namespaces.
"""
import argparse
import hashlib
import json
import os
import re
import signal
import ssl
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as labmod  # noqa: E402

BIG_NET = "10.224.0.0/16"   # tunnel network for thousands of clients
SPOOF_NET = "10.230.0.0/16"  # where the flood claims to come from

FLOODER = r"""
import os, random, socket, struct, sys, time
dst, port, rate, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
dst_b = socket.inet_aton(dst)
sent = 0
t0 = time.monotonic()
end = t0 + seconds
rnd = random.Random(1194)
while True:
    now = time.monotonic()
    if now >= end:
        break
    due = int((now - t0) * rate) - sent
    if due <= 0:
        time.sleep(0.001)
        continue
    for _ in range(min(due, 512)):
        # P_CONTROL_HARD_RESET_CLIENT_V2, key 0: a random session id, no
        # acks, packet id 0 (what a client's first packet is without
        # control-channel wrapping).
        payload = bytes([7 << 3]) + rnd.randbytes(8) + b"\x00" + b"\x00\x00\x00\x00"
        src = bytes([10, 230, rnd.randrange(256), rnd.randrange(1, 255)])
        sport = rnd.randrange(1024, 65535)
        udp = struct.pack("!HHHH", sport, port, 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, src, dst_b)
        try:
            s.sendto(ip + udp, (dst, 0))
            sent += 1
        except OSError:
            pass
print("flood: %d packets in %.1f s" % (sent, time.monotonic() - t0), flush=True)
"""


def say(text):
    print(text, flush=True)


def sanitized(path):
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


def server_fingerprint():
    """SHA-256 of the lab server's certificate, as peer-fingerprint wants it."""
    with open(os.path.join(labmod.REPO, "tests", "data", "server.crt")) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return ":".join("%02X" % b for b in hashlib.sha256(der).digest())


def find_binaries(shimmerd, load):
    """shimmerd and shimmer-load of one build, preferring a build without
    sanitizers (their shadow memory would be measured)."""
    if shimmerd:
        cands = [shimmerd]
    else:
        base = os.path.join(labmod.REPO, "_build")
        cands = sorted((os.path.join(base, d, "service", "shimmerd") for d in
                        (os.listdir(base) if os.path.isdir(base) else [])),
                       key=lambda p: os.path.getmtime(p) if os.path.exists(p) else 0,
                       reverse=True)
        cands = [p for p in cands if os.access(p, os.X_OK)]
        plain = [p for p in cands if not sanitized(p)]
        cands = plain or cands
    if not cands:
        return None, None
    shimmerd = cands[0]
    load = load or os.path.join(os.path.dirname(os.path.dirname(shimmerd)), "tests",
                                "shimmer-load")
    return shimmerd, (load if os.access(load, os.X_OK) else None)


class RssSampler(threading.Thread):
    def __init__(self, proc, interval=0.1):
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


def settled_rss(proc, seconds=1.5):
    """The server's RSS once it stopped moving (at most SECONDS of samples)."""
    samples = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        kb = proc.rss_kb()
        if kb:
            samples.append(kb)
        time.sleep(0.1)
    return max(samples) if samples else None


def cpu_seconds(proc):
    """User + system CPU seconds PROC has used so far, or None."""
    try:
        with open("/proc/%d/stat" % proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, TypeError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Bench:
    def __init__(self, lab, args):
        self.lab, self.a = lab, args
        self.results = {}
        self.notes = []
        self.seq = 0

    def server(self, kind, clients, wrap="tls-crypt", freq=None, net=BIG_NET):
        self.seq += 1
        extra = ["duplicate-cn", "max-clients %d" % clients]
        if freq:
            extra.append("connect-freq-initial %d 1" % freq)
        if kind == "openvpn":
            # The socket buffers Shimmer's server asks for (4 MiB): with
            # OpenVPN's default (208 KiB) a burst of first packets
            # overflows it.
            extra += ["rcvbuf 4194304", "sndbuf 4194304"]
        opts = {"wrap": wrap, "ipv6": False, "tunnel_v4": net, "keepalive": (10, 120),
                "verb": 1 if kind == "openvpn" else 3, "extra": extra}
        name = "b%d" % self.seq
        if kind == "openvpn":
            srv = self.lab.start_openvpn_server(opts, name=name)
        else:
            srv = self.lab.start_shimmer_server(opts, name=name, shimmerd=self.a.shimmerd)
        time.sleep(0.5)
        return srv

    def stop(self, srv):
        srv.stop(timeout=10)

    def load(self, srv, n, ping, duration, name, by_fingerprint=False):
        opts = {"verify_x509_name": None}
        if by_fingerprint:
            # The load clients check the server by its certificate's
            # fingerprint instead of its chain: one signature check less
            # each, on the processors the servers share with them. What
            # the servers do is the same.
            opts.update(ca=None, extra=["peer-fingerprint " + server_fingerprint()])
        prof = self.lab.write_client_config(opts, srv)
        return self.lab.spawn_in_client(
            [self.a.load, "--config", prof, "-n", str(n), "--rate", "0", "--duration",
             str(duration), "--ping", str(ping), "--json"], name=name)

    @staticmethod
    def progress(load):
        m = re.findall(r"s: \d+ started, (\d+) connected, (\d+) failed", load.read_log())
        return (int(m[-1][0]), int(m[-1][1])) if m else (0, 0)

    @staticmethod
    def summary(load):
        m = re.findall(r"^\{.*\}$", load.read_log(whole=True), re.M)
        return json.loads(m[-1]) if m else None

    def wait_connected(self, load, n, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ok, failed = self.progress(load)
            if ok >= n or not load.alive():
                break
            time.sleep(0.5)
        return self.progress(load)

    def finish_load(self, load, timeout=30):
        load.signal(signal.SIGINT)
        try:
            load.wait_exit(timeout)
        except TimeoutError:
            load.stop()
        return self.summary(load)

    # ---- 1. memory per client

    def memory_load(self, kind, n):
        srv = self.server(kind, n + 100, freq=1000000)
        try:
            idle = settled_rss(srv)
            t0 = time.monotonic()
            load = self.load(srv, n, 5, 600, "load-%s-%d" % (kind, n))
            ok, failed = self.wait_connected(load, n, self.a.connect_timeout)
            took = time.monotonic() - t0
            time.sleep(3)
            loaded = settled_rss(srv, 2)
            s = self.finish_load(load)
            per = (loaded - idle) / ok if ok else None
            r = {"server": kind, "clients": n, "connected": ok, "failed": failed,
                 "idle_rss_kb": idle, "rss_kb": loaded, "kib_per_client": per,
                 "connect_seconds": took, "load": s}
            say("  %-8s %6d load clients: %6d connected in %5.1f s; RSS %7d -> %7d KiB: "
                "%s KiB per client" % (kind, n, ok, took, idle, loaded,
                                       "%.1f" % per if per is not None else "-"))
            return r
        finally:
            self.stop(srv)

    def memory_real(self, kind, n, namespaces):
        srv = self.server(kind, n + 10, net=BIG_NET)
        clients = []
        try:
            idle = settled_rss(srv)
            for ns, c4, c6, s4, s6 in namespaces:
                prof = self.lab.client_config({"remote": s4, "dev": "tun"}, srv)
                clients.append(self.lab.start_client(prof, labmod.OPENVPN, ns=ns, wait=False))
            for c in clients:
                c.wait_log(labmod.OPENVPN_READY, 60)
            time.sleep(2)
            loaded = settled_rss(srv, 2)
            per = (loaded - idle) / n
            say("  %-8s %6d OpenVPN 2.6 clients (one namespace each): RSS %7d -> %7d KiB: "
                "%.1f KiB per client" % (kind, n, idle, loaded, per))
            return {"server": kind, "clients": n, "real": True, "idle_rss_kb": idle,
                    "rss_kb": loaded, "kib_per_client": per}
        finally:
            for c in clients:
                c.stop()
            self.stop(srv)

    # ---- 2. handshakes per second

    def handshakes(self, kind, n):
        srv = self.server(kind, n + 100, freq=1000000)
        try:
            cpu0 = cpu_seconds(srv)
            load = self.load(srv, n, 0, 600, "hs-%s-%d" % (kind, n), by_fingerprint=True)
            ok, failed = self.wait_connected(load, n, self.a.connect_timeout)
            cpu1 = cpu_seconds(srv)
            load_cpu = cpu_seconds(load)
            s = self.finish_load(load)
            rate = s["handshakes_per_s"] if s else None
            # The load tool shares this machine's processors with the
            # server: the wall-clock rate is bounded by both. Handshakes per
            # second of the server's own CPU time is its capacity alone.
            cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
            per_cpu = ok / cpu if cpu else None
            say("  %-8s %6d clients at once: %d connected, %.0f handshakes/s (median connect "
                "%.2f s); server CPU %.2f s: %.0f handshakes per CPU second; load tool CPU "
                "%.2f s" % (kind, n, ok, rate or 0, (s or {}).get("connect_median_s", 0), cpu or 0,
                            per_cpu or 0, load_cpu or 0))
            return {"server": kind, "clients": n, "connected": ok, "handshakes_per_s": rate,
                    "server_cpu_s": cpu, "handshakes_per_cpu_s": per_cpu,
                    "load_cpu_s": load_cpu, "load": s}
        finally:
            self.stop(srv)

    # ---- 3. flood of spoofed first packets

    def flood(self, kind, n, rate, seconds):
        # Default rate limits; no wrapping, so that each spoofed reset is a
        # valid first packet the server would answer.
        srv = self.server(kind, n + 100, wrap="none")
        flooder = os.path.join(self.lab.dir, "flood.py")
        with open(flooder, "w") as f:
            f.write(FLOODER)
        # Answers to the spoofed addresses go back into the client
        # namespace (and die there), as a reflection would.
        self.lab.run_in_server(["ip", "route", "replace", SPOOF_NET, "via", self.lab.client_ip4])
        out = {"server": kind, "clients": n, "flood_pps": rate, "flood_seconds": seconds}
        try:
            for phase in ("baseline", "flood"):
                load = self.load(srv, n, 0.2, 600, "flood-%s-%s" % (kind, phase))
                ok, failed = self.wait_connected(load, n, 60)
                time.sleep(1)
                before = settled_rss(srv, 1)
                sampler = RssSampler(srv)
                sampler.start()
                if phase == "flood":
                    fl = self.lab.spawn_in_client(
                        ["/usr/bin/python3", flooder, self.lab.server_ip4, str(srv.port),
                         str(rate), str(seconds)], name="flooder-%s" % kind)
                    fl.wait_exit(seconds + 30)
                    out["flood_sent"] = fl.read_log().strip()
                else:
                    time.sleep(seconds)
                peak = sampler.finish()
                after = settled_rss(srv, 1)
                s = self.finish_load(load)
                sent = s["echo_sent"] if s else 0
                replies = s["echo_replies"] if s else 0
                loss = 100.0 * (sent - replies) / sent if sent else None
                out[phase] = {"connected": ok, "echo_sent": sent, "echo_replies": replies,
                              "loss_percent": loss, "rss_before_kb": before,
                              "rss_peak_kb": peak, "rss_after_kb": after}
                say("  %-8s %s: %d clients pinging 5/s, echo %d/%d (%.2f%% lost); RSS %d, "
                    "peak %d, after %d KiB" % (kind, phase, ok, replies, sent, loss or 0,
                                               before, peak, after))
            say("  %-8s %s" % (kind, out.get("flood_sent", "")))
            return out
        finally:
            self.lab.run_in_server(["ip", "route", "del", SPOOF_NET], check=False)
            self.stop(srv)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shimmerd", default=os.environ.get("SHIMMERD"))
    ap.add_argument("--load", default=os.environ.get("SHIMMER_LOAD"))
    ap.add_argument("--counts", default="1000,10000",
                    help="load clients for the memory figures (comma-separated)")
    ap.add_argument("--real-clients", type=int, default=20)
    ap.add_argument("--handshake-clients", type=int, default=1000)
    ap.add_argument("--handshake-rounds", type=int, default=5,
                    help="rounds of the handshake figure, each one run of either server "
                         "back to back (the order alternating)")
    ap.add_argument("--flood-clients", type=int, default=100)
    ap.add_argument("--flood-rate", type=float, default=20000, help="spoofed packets per second")
    ap.add_argument("--flood-seconds", type=float, default=10)
    ap.add_argument("--connect-timeout", type=float, default=240,
                    help="seconds to wait for the load clients to connect")
    ap.add_argument("--sections", default="memory,handshakes,flood")
    ap.add_argument("--json", help="also write the raw results here")
    a = ap.parse_args(argv)

    if os.geteuid() != 0:
        print("bench_server: needs root (network namespaces, tun devices)", file=sys.stderr)
        return 2
    why = labmod.preflight()
    if why:
        print("bench_server: " + why, file=sys.stderr)
        return 2
    a.shimmerd, a.load = find_binaries(a.shimmerd, a.load)
    if not a.shimmerd or not a.load:
        print("bench_server: shimmerd and tests/shimmer-load of one build are needed "
              "(meson compile; or set SHIMMERD and SHIMMER_LOAD)", file=sys.stderr)
        return 2
    if sanitized(a.shimmerd):
        print("bench_server: warning: %s is a sanitizer build: memory figures are "
              "meaningless" % a.shimmerd, flush=True)
    sections = set(a.sections.split(","))
    counts = [int(c) for c in a.counts.split(",") if c]
    say("shimmerd: %s; load tool: %s" % (a.shimmerd, a.load))
    results = {"memory": [], "handshakes": [], "flood": []}
    with labmod.Lab() as lab:
        b = Bench(lab, a)
        if "memory" in sections:
            say("\n1. memory per connected client")
            for n in counts:
                results["memory"].append(b.memory_load("shimmer", n))
            results["memory"].append(b.memory_load("openvpn", min(counts)))
            if a.real_clients:
                namespaces = [lab.add_client_namespace() for _ in range(a.real_clients)]
                for kind in ("openvpn", "shimmer"):
                    results["memory"].append(b.memory_real(kind, a.real_clients, namespaces))
        if "handshakes" in sections:
            say("\n2. new-client handshakes per second (load tool, all at once)")
            # This machine's speed drifts (other guests share its
            # processors): each round runs both servers back to back and
            # yields a ratio; the figure is the median of those ratios.
            for rnd in range(a.handshake_rounds):
                order = ("shimmer", "openvpn") if rnd % 2 == 0 else ("openvpn", "shimmer")
                pair = {kind: b.handshakes(kind, a.handshake_clients) for kind in order}
                results["handshakes"] += [pair[k] for k in order]
                rates = [pair[k].get("handshakes_per_s") for k in ("shimmer", "openvpn")]
                if all(rates):
                    results.setdefault("handshake_ratios", []).append(rates[0] / rates[1])
        if "flood" in sections:
            say("\n3. spoofed first packets (%.0f/s for %.0f s) while %d clients ping"
                % (a.flood_rate, a.flood_seconds, a.flood_clients))
            for kind in ("shimmer", "openvpn"):
                results["flood"].append(b.flood(kind, a.flood_clients, a.flood_rate,
                                                a.flood_seconds))
    print_table(results)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


def print_table(r):
    say("\nsummary")
    for m in r["memory"]:
        what = "%d %s" % (m["clients"], "OpenVPN 2.6 clients" if m.get("real") else
                          "load clients")
        per = m.get("kib_per_client")
        say("  memory   %-8s %-24s %8s KiB per client" % (
            m["server"], what, "%.1f" % per if per is not None else "-"))
    for key, label in (("handshakes_per_s", "handshakes/s"),
                       ("handshakes_per_cpu_s", "handshakes per server CPU s")):
        hs = {}
        for h in r["handshakes"]:
            if h.get(key):
                hs.setdefault(h["server"], []).append(h[key])
        for kind, v in hs.items():
            say("  %s %-8s median of %d: %.0f" % (label, kind, len(v), statistics.median(v)))
        if "shimmer" in hs and "openvpn" in hs:
            say("  %s Shimmer/OpenVPN: %.2f" % (label, statistics.median(hs["shimmer"]) /
                                                statistics.median(hs["openvpn"])))
    ratios = r.get("handshake_ratios")
    if ratios:
        say("  handshakes/s Shimmer/OpenVPN per round: %s; median %.2f" % (
            ", ".join("%.2f" % x for x in ratios), statistics.median(ratios)))
    for f in r["flood"]:
        base, fl = f.get("baseline", {}), f.get("flood", {})
        say("  flood    %-8s loss %.2f%% (baseline %.2f%%); RSS %s -> peak %s -> %s KiB" % (
            f["server"], fl.get("loss_percent") or 0, base.get("loss_percent") or 0,
            fl.get("rss_before_kb"), fl.get("rss_peak_kb"), fl.get("rss_after_kb")))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
