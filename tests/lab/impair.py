#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Link impairments for the lab (tests/lab/lab.py): this kernel has no netem,
so loss on a whole path and MTU black holes are nftables rules inside the
lab's namespaces, and reordering, duplication, loss and delay of one UDP
flow are a relay of our own between the client and the server. Python 3
standard library only.

    from impair import Nft, start_relay, start_sink, run_source

    nft = Nft(lab, lab.cli_ns)                 # a table of ours in that namespace
    nft.drop_udp_over(1200)                    # MTU black hole (IP length > 1200) into NS
    nft.drop_all()                             # the link is dead
    nft.flush()                                # healthy again (nft.delete() on close)

    relay = start_relay(lab, server, seed=7, loss=5, reorder=5, dup=1)
    prof = lab.client_config({"remote": lab.server_ip4, "port": relay.port})

The relay runs in the server namespace: it listens on the server's veth
address, port RELAY_PORT (+k), and forwards each client's datagrams to the
server from a socket of its own on 127.0.0.1, the answers back the same way.
Each direction draws the fate of each datagram from its own
random.Random(seed, direction), so the Nth datagram of a direction meets the
same fate for the same seed. It holds at most MAX_QUEUE datagrams, serves at
most MAX_FLOWS clients and exits after --lifetime seconds: bounded.

The command line (used by the helpers above; also by hand):

    impair.py relay --listen ADDR:PORT --to ADDR:PORT [--seed N] [--loss PCT]
                    [--reorder PCT] [--dup PCT] [--delay-ms MS] [--stats FILE]
    impair.py sink --listen ADDR:PORT --out FILE     # one TCP connection: bytes, sha256
    impair.py source --to ADDR:PORT --bytes N --seed S [--bind ADDR]
"""
import argparse
import hashlib
import heapq
import json
import os
import random
import select
import signal
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = sys.executable or "/usr/bin/python3"

RELAY_PORT = 11940
MAX_QUEUE = 20000
MAX_FLOWS = 64


# ---------------------------------------------------------------- nftables

class Nft:
    """An nftables table of our own (inet shimmer_imp_PID) in namespace NS of
    LAB, with an output-hook chain (what goes out of that namespace's
    interfaces) and a prerouting one (what comes in through the lab's veth).
    Only the lab's namespaces are ever touched.

    Rules on sizes or on a share of packets must see the datagrams as the
    path carries them. A UDP GSO send (Shimmer's data path) is one buffer of
    up to 64 datagrams until a device cuts it, and the veth passes it whole:
    on output, and on input too, one rule would meet the whole batch (a
    "datagram over 1200 bytes" of 70 KB). So those rules go on the way in,
    and the veth that sends into NS cuts every GSO buffer first
    (gso_max_segs 1, put back by delete()), as a real link would."""

    def __init__(self, lab, ns, table=None):
        if ns not in (lab.srv_ns, lab.cli_ns):
            raise ValueError("%s is not one of this lab's namespaces" % ns)
        self.lab, self.ns = lab, ns
        self.table = table or "shimmer_imp_%d" % os.getpid()
        self._segmented = None
        self._nft("add table inet %s" % self.table)
        self._nft("add chain inet %s out { type filter hook output priority 0 ; }"
                  % self.table)
        self._nft("add chain inet %s in { type filter hook prerouting priority 0 ; }"
                  % self.table)

    def _peer_veth(self):
        return ((self.lab.cli_ns, "lab-cli") if self.ns == self.lab.srv_ns
                else (self.lab.srv_ns, "lab-srv"))

    def _segment_arrivals(self):
        """The veth that sends into NS cuts GSO buffers into datagrams."""
        if self._segmented is not None:
            return
        ns, dev = self._peer_veth()
        out = self.lab._run(ns, ["ip", "-d", "-j", "link", "show", "dev", dev]).stdout
        import json
        self._segmented = json.loads(out)[0].get("gso_max_segs", 65535)
        self.lab._run(ns, ["ip", "link", "set", "dev", dev, "gso_max_segs", "1"])

    def rule_in(self, text):
        """Appends a rule to the prerouting chain, datagrams cut apart."""
        self._segment_arrivals()
        self._nft("add rule inet %s in %s" % (self.table, text))

    def _nft(self, command):
        r = self.lab._run(self.ns, ["nft"] + command.split(), check=False)
        if r.returncode != 0:
            raise RuntimeError("nft %s (in %s): %s" % (command, self.ns, r.stdout.strip()))
        return r.stdout

    def rule(self, text):
        """Appends a rule to the output chain, e.g.
        "meta l4proto udp numgen random mod 100 < 5 drop"."""
        self._nft("add rule inet %s out %s" % (self.table, text))

    def drop_udp_over(self, length, dev="lab-"):
        """An MTU black hole: UDP datagrams whose IP packet is longer than
        LENGTH bytes vanish silently (no ICMP) on their way into NS."""
        self.rule_in('iifname "%s*" meta l4proto udp meta length > %d drop' % (dev, length))

    def drop_all(self, dev="lab-"):
        """Everything that leaves through the lab's veth is lost."""
        self.rule('oifname "%s*" drop' % dev)

    def loss(self, percent, proto="udp", dev="lab-"):
        """PERCENT of the datagrams coming into NS are lost."""
        self.rule_in('iifname "%s*" meta l4proto %s numgen random mod 100 < %d drop'
                     % (dev, proto, percent))

    def flush(self):
        self._nft("flush chain inet %s out" % self.table)
        self._nft("flush chain inet %s in" % self.table)

    def listing(self):
        return self._nft("list table inet %s" % self.table)

    def delete(self):
        self.lab._run(self.ns, ["nft", "delete", "table", "inet", self.table], check=False)
        if self._segmented is not None:
            ns, dev = self._peer_veth()
            self.lab._run(ns, ["ip", "link", "set", "dev", dev, "gso_max_segs",
                               str(self._segmented)], check=False)
            self._segmented = None


def nft_available():
    import shutil
    return shutil.which("nft") is not None


# ---------------------------------------------------------------- the relay (helpers)

class Relay:
    """A relay process (a lab.Proc) and where it listens."""

    def __init__(self, proc, host, port, stats):
        self.proc, self.host, self.port, self.stats_file = proc, host, port, stats

    def _read(self):
        try:
            with open(self.stats_file) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def stats(self, timeout=5):
        """The relay's counters now (it writes them on SIGUSR1)."""
        gen = self._read().get("gen", -1)
        self.proc.signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self._read()
            if s.get("gen", -1) > gen:
                return s
            time.sleep(0.01)
        raise TimeoutError("the relay wrote no statistics; log:\n" + self.proc.log_tail())

    def stop(self):
        self.proc.stop()


def start_relay(lab, server, seed, loss=0.0, reorder=0.0, dup=0.0, delay_ms=0.0,
                reorder_ms=(4, 30), port=None, lifetime=900, log_fates=False):
    """Starts impair.py relay in LAB's server namespace in front of SERVER
    (a UDP OpenVPNServer) and waits until it listens. Percentages are per
    datagram and per direction."""
    port = port or RELAY_PORT + len([p for p in lab._procs if "relay" in p.argv])
    stats = os.path.join(lab.dir, "relay-%d.json" % port)
    argv = [PYTHON, os.path.join(HERE, "impair.py"), "relay",
            "--listen", "%s:%d" % (lab.server_ip4, port),
            "--to", "127.0.0.1:%d" % server.port,
            "--seed", str(seed), "--loss", str(loss), "--reorder", str(reorder),
            "--dup", str(dup), "--delay-ms", str(delay_ms),
            "--reorder-ms", "%s,%s" % reorder_ms,
            "--lifetime", str(lifetime), "--stats", stats] + (["--log-fates"] if log_fates else [])
    proc = lab.spawn_in_server(argv, name="relay-%d" % port)
    proc.wait_log(r"relay: listening", 10)
    return Relay(proc, lab.server_ip4, port, stats)


def start_sink(lab, host, port=5201, side="server", timeout=120):
    """A TCP sink for one connection on HOST:PORT in the lab's SIDE
    namespace ("server" or "client"); returns (proc, result file) (see
    read_sink)."""
    out = os.path.join(lab.dir, "sink-%s-%d.json" % (side, port))
    if os.path.exists(out):
        os.unlink(out)
    spawn = lab.spawn_in_server if side == "server" else lab.spawn_in_client
    proc = spawn([PYTHON, os.path.join(HERE, "impair.py"), "sink",
                  "--listen", "%s:%d" % (host, port), "--out", out, "--timeout", str(timeout)],
                 name=lab._unique("sink-%s-%d" % (side, port)))
    proc.wait_log(r"sink: listening", 10)
    return proc, out


def run_source(lab, host, port, nbytes, seed, timeout, side="client"):
    """Sends NBYTES of seeded pseudo-random data from the lab's SIDE
    namespace to HOST:PORT over TCP and waits until the sink has it all;
    returns {"bytes", "sha256", "seconds"} or raises with the output."""
    run = lab.run_in_client if side == "client" else lab.run_in_server
    r = run([PYTHON, os.path.join(HERE, "impair.py"), "source",
             "--to", "%s:%d" % (host, port), "--bytes", str(nbytes),
             "--seed", str(seed), "--timeout", str(timeout)],
            timeout=timeout + 10, check=False)
    if r.returncode != 0:
        raise RuntimeError("source failed (%d): %s" % (r.returncode, r.stdout[-2000:]))
    return json.loads(r.stdout.strip().splitlines()[-1])


def read_sink(out, timeout):
    """The sink's result once the connection ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(out) as f:
                return json.load(f)
        except (OSError, ValueError):
            time.sleep(0.05)
    raise TimeoutError("the sink wrote no result in %ss" % timeout)


def pattern(seed, nbytes):
    """The bytes source sends for SEED (the same on both ends)."""
    return random.Random(seed).randbytes(nbytes)


# ---------------------------------------------------------------- the relay (process)

def _addr(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


class _Direction:
    def __init__(self, name, seed, loss, reorder, dup, delay, reorder_s):
        self.name = name
        # One stream per direction: the fate of the Nth datagram depends on
        # the seed and N only, not on how the two directions interleave.
        self.rng = random.Random("%s/%s" % (seed, name))
        self.loss, self.reorder, self.dup = loss / 100.0, reorder / 100.0, dup / 100.0
        self.delay, self.reorder_s = delay, reorder_s
        self.stats = {"in": 0, "out": 0, "lost": 0, "reordered": 0, "duplicated": 0,
                      "overflow": 0, "bytes": 0}

    def fates(self):
        """Delays (seconds) at which copies of the next datagram go out:
        [] lost, one normally, two when duplicated."""
        r = self.rng
        lost = r.random() < self.loss
        late = r.random() < self.reorder
        twice = r.random() < self.dup
        extra = r.uniform(*self.reorder_s)
        gap = r.uniform(0.0005, 0.005)
        self.stats["in"] += 1
        if lost:
            self.stats["lost"] += 1
            return []
        d = self.delay
        if late:
            self.stats["reordered"] += 1
            d += extra
        out = [d]
        if twice:
            self.stats["duplicated"] += 1
            out.append(d + gap)
        return out


def _relay_main(a):
    listen = _addr(a.listen)
    to = _addr(a.to)
    lo, hi = (float(x) / 1000.0 for x in a.reorder_ms.split(","))
    up = _Direction("up", a.seed, a.loss, a.reorder, a.dup, a.delay_ms / 1000.0, (lo, hi))
    down = _Direction("down", a.seed, a.loss, a.reorder, a.dup, a.delay_ms / 1000.0, (lo, hi))
    fam = socket.AF_INET6 if ":" in listen[0] else socket.AF_INET
    front = socket.socket(fam, socket.SOCK_DGRAM)
    front.bind(listen)
    front.setblocking(False)
    flows = {}        # client address -> upstream socket
    backs = {}        # upstream socket fd -> (socket, client address)
    last_used = {}
    queue = []        # (due, seq, socket, data, destination)
    seq = 0
    end = time.monotonic() + a.lifetime
    stop = []
    asked = []
    gen = [0]
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    signal.signal(signal.SIGUSR1, lambda *_: asked.append(1))

    def write_stats():
        if not a.stats:
            return
        gen[0] += 1
        tmp = a.stats + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"seed": a.seed, "gen": gen[0], "up": up.stats, "down": down.stats,
                       "flows": len(flows)}, f)
        os.replace(tmp, a.stats)

    def schedule(direction, sock, data, dest, now):
        nonlocal seq
        fates = direction.fates()
        if a.log_fates:
            print("relay: %.3f %s #%d %dB op%d %s" % (
                now, direction.name, direction.stats["in"], len(data), data[0] >> 3,
                "lost" if not fates else " ".join("+%.0fms" % (d * 1000) for d in fates)),
                flush=True)
        for d in fates:
            if len(queue) >= MAX_QUEUE:
                direction.stats["overflow"] += 1
                continue
            seq += 1
            heapq.heappush(queue, (now + d, seq, sock, data, dest, direction))

    print("relay: listening on %s:%d, to %s:%d, seed %s, loss %s%% reorder %s%% dup %s%%"
          % (listen[0], listen[1], to[0], to[1], a.seed, a.loss, a.reorder, a.dup), flush=True)
    next_stats = 0.0
    while not stop:
        now = time.monotonic()
        if now >= end:
            print("relay: lifetime over", flush=True)
            break
        while queue and queue[0][0] <= now:
            _, _, sock, data, dest, direction = heapq.heappop(queue)
            try:
                sock.sendto(data, dest)
                direction.stats["out"] += 1
                direction.stats["bytes"] += len(data)
            except OSError:
                pass
        if now >= next_stats or asked:
            asked.clear()
            write_stats()
            next_stats = now + 1.0
        timeout = 0.2
        if queue:
            timeout = max(0.0, min(timeout, queue[0][0] - now))
        rlist = [front] + [s for s, _ in backs.values()]
        try:
            ready, _, _ = select.select(rlist, [], [], timeout)
        except InterruptedError:
            continue
        now = time.monotonic()
        for sock in ready:
            for _ in range(64):
                try:
                    data, src = sock.recvfrom(65535)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break  # ICMP errors surface here: ignore them, as a path would
                if sock is front:
                    back = flows.get(src)
                    if back is None:
                        if len(flows) >= MAX_FLOWS:
                            oldest = min(last_used, key=last_used.get)
                            old = flows.pop(oldest)
                            backs.pop(old.fileno(), None)
                            last_used.pop(oldest, None)
                            old.close()
                        back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        back.bind(("127.0.0.1", 0))
                        back.setblocking(False)
                        flows[src] = back
                        backs[back.fileno()] = (back, src)
                    last_used[src] = now
                    schedule(up, back, data, to, now)
                else:
                    client = backs[sock.fileno()][1]
                    schedule(down, front, data, client, now)
    write_stats()
    return 0


# ---------------------------------------------------------------- transfer ends

def _sink_main(a):
    host, port = _addr(a.listen)
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    srv = socket.socket(fam, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(1)
    srv.settimeout(a.timeout)
    print("sink: listening on %s:%d" % (host, port), flush=True)
    conn, peer = srv.accept()
    conn.settimeout(a.timeout)
    # The MSS this end sends with: the peer's SYN announced it, after any
    # clamping on the way (a tunnel's mssfix).
    mss = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
    h = hashlib.sha256()
    n = 0
    t0 = time.monotonic()
    while True:
        chunk = conn.recv(1 << 16)
        if not chunk:
            break
        h.update(chunk)
        n += len(chunk)
    conn.close()
    res = {"bytes": n, "sha256": h.hexdigest(), "seconds": time.monotonic() - t0,
           "peer": peer[0], "mss": mss}
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(res, f)
    os.replace(tmp, a.out)
    print("sink: %s" % json.dumps(res), flush=True)
    return 0


def _source_main(a):
    host, port = _addr(a.to)
    data = pattern(a.seed, a.bytes)
    t0 = time.monotonic()
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(a.timeout)
    s.connect((host, port))
    view = memoryview(data)
    deadline = t0 + a.timeout
    while view:
        if time.monotonic() > deadline:
            raise TimeoutError("sent %d of %d bytes in %ss" % (len(data) - len(view), len(data),
                                                               a.timeout))
        n = s.send(view[:1 << 16])
        view = view[n:]
    s.shutdown(socket.SHUT_WR)
    # Wait for the sink to close: then everything has arrived.
    s.recv(1)
    s.close()
    print(json.dumps({"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                      "seconds": time.monotonic() - t0}), flush=True)
    return 0


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("relay")
    r.add_argument("--listen", required=True)
    r.add_argument("--to", required=True)
    r.add_argument("--seed", default="0")
    r.add_argument("--loss", type=float, default=0.0)
    r.add_argument("--reorder", type=float, default=0.0)
    r.add_argument("--dup", type=float, default=0.0)
    r.add_argument("--delay-ms", type=float, default=0.0)
    r.add_argument("--reorder-ms", default="4,30", help="extra delay of a reordered datagram")
    r.add_argument("--lifetime", type=float, default=900)
    r.add_argument("--stats")
    r.add_argument("--log-fates", action="store_true",
                   help="print each datagram's fate (time, direction, index, size, opcode)")
    s = sub.add_parser("sink")
    s.add_argument("--listen", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--timeout", type=float, default=120)
    c = sub.add_parser("source")
    c.add_argument("--to", required=True)
    c.add_argument("--bytes", type=int, required=True)
    c.add_argument("--seed", type=int, required=True)
    c.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args(argv)
    return {"relay": _relay_main, "sink": _sink_main, "source": _source_main}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
