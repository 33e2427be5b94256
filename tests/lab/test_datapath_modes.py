"""Shimmer's data path in each of its modes, against the real OpenVPN 2.6
server and against Shimmer's own server (which then runs in the same mode):
with every offload on, and with each one turned off the way a kernel that
refuses it would leave it ($SHIMMER_DATAPATH: no-udp-gso, no-udp-gro,
no-tun-offload, no-multiqueue), with one worker and with several. In each
mode bulk TCP transfers cross intact both ways and every UDP payload size
up to the MTU is echoed back; the data path's own counters (logged when the
session ends) show that the path under test was the one taken (GRO is seen
with Shimmer's server, whose GSO sends arrive glued). With several workers:
packets of each flow arrive in order, neither end's replay window drops
anything, and a renegotiation in the middle of bulk traffic loses nothing.
Over TCP too.

shimmerd only (these are its internals); skips when it is not built.
"""
import re
import time

import pytest

import lab as labmod
from test_datapath import sweep
from test_interop import RECEIVER, SENDER


def shimmerd(mode):
    base = labmod.shimmerd_command()
    if base is None:
        pytest.skip("shimmerd not built (no _build/*/service/shimmerd; set $SHIMMERD)")
    argv = ("env", "SHIMMER_DATAPATH=" + mode) + tuple(base.argv)
    return labmod.ClientCommand("shimmerd", argv, ready=base.ready,
                                auth_failed=base.auth_failed)


COUNTERS = re.compile(
    r"data path counters: tun reads (\d+) \(super-packets (\d+), segments (\d+)\), "
    r"tun writes (\d+) \(glued (\d+), packets (\d+)\), UDP sends (\d+) calls \((\d+) datagrams, "
    r"GSO buffers (\d+)\), UDP receives (\d+) calls \((\d+) datagrams, GRO buffers (\d+)\), "
    r"TCP writes (\d+), TCP reads (\d+), to the main loop (\d+), no peer (\d+), "
    r"refused (\d+), dropped (\d+)(?:, send-order waits timed out (\d+))?")
NAMES = ("tun_reads", "super_packets", "segments", "tun_writes", "glued", "tun_packets",
         "udp_send_calls", "udp_sent", "gso_buffers", "udp_recv_calls", "udp_received",
         "gro_buffers", "tcp_writes", "tcp_reads", "to_main", "no_peer", "refused", "dropped",
         "turn_timeouts")


def stop_and_count(cli):
    cli.stop()
    log = cli.read_log(whole=True)
    m = None
    for m in COUNTERS.finditer(log):
        pass
    assert m, "no data path counters in the log:\n" + cli.log_tail(20)
    return dict(zip(NAMES, (int(v or 0) for v in m.groups()))), log


def transfer(lab, sender_ns, receiver_ns, addr, size):
    """SIZE bytes of a seeded random stream over TCP from one namespace to
    the other through the tunnel; asserts both ends saw the same bytes."""
    rx_spawn = lab.spawn_in_server if receiver_ns == "server" else lab.spawn_in_client
    tx_run = lab.run_in_client if sender_ns == "client" else lab.run_in_server
    rx = rx_spawn(["/usr/bin/python3", "-c", RECEIVER, addr], name=lab._unique("receiver"))
    time.sleep(0.3)
    tx = tx_run(["/usr/bin/python3", "-c", SENDER, addr, str(size)], timeout=120)
    lab.wait_for(lambda: not rx.alive(), 60, what="the receiver to finish")
    sent = tx.stdout.split()
    got = rx.read_log(whole=True).split()
    assert sent[0] == str(size)
    assert got[:2] == sent[:2], "sent %s, received %s" % (sent, got)


SERVERS = ["openvpn", "shimmer"]


def start(lab, mode, server_impl="openvpn", server=None, client=None):
    opts = dict({"wrap": "tls-crypt"}, **(server or {}))
    if server_impl == "shimmer":
        shimmerd(mode)  # skips without a build
        srv = lab.start_shimmer_server(opts, env={"SHIMMER_DATAPATH": mode})
    else:
        srv = lab.start_openvpn_server(opts)
    cli = lab.start_client(lab.client_config(client), shimmerd(mode))
    dev = lab.route_dev(srv.tunnel_v4)
    assert dev and dev.startswith("tun"), "%s is routed via %s" % (srv.tunnel_v4, dev)
    return srv, cli


MODES = {
    "default": "",
    "no-udp-gso": "no-udp-gso",
    "no-udp-gro": "no-udp-gro",
    "no-tun-offload": "no-tun-offload",
    "no-multiqueue": "workers=2,no-multiqueue",
    "one-worker": "workers=1",
    "four-workers": "workers=4",
    "all-off": "workers=1,no-udp-gso,no-udp-gro,no-tun-offload,no-multiqueue",
}


@pytest.mark.parametrize("server_impl", SERVERS)
@pytest.mark.parametrize("name", list(MODES))
def test_mode(lab, name, server_impl):
    mode = MODES[name]
    srv, cli = start(lab, mode, server_impl)
    transfer(lab, "client", "server", srv.tunnel_v4, 24 * 1024 * 1024)
    # The other way the server is the sender: the receiver listens in the
    # client namespace on the client's tunnel address.
    addr = re.search(r"inet (10\.214\.\d+\.\d+)/", lab.run_in_client("ip -4 addr show dev tun0").stdout)
    transfer(lab, "server", "client", addr.group(1), 24 * 1024 * 1024)
    sweep(lab, srv.tunnel_v4, 0, 1472)
    c, log = stop_and_count(cli)
    desc = re.search(r"data path: (.*)", log).group(1)
    workers = int(re.search(r"workers=(\d+)", mode).group(1)) if "workers=" in mode else None
    if workers:
        assert desc.startswith("%d worker" % workers), desc
    offload = "no-tun-offload" not in mode
    if offload:
        # The kernel handed over TCP super-packets and took glued writes.
        assert "virtio-net header" in desc, desc
        assert c["super_packets"] > 0 and c["segments"] > c["super_packets"], c
        assert c["glued"] > 0 and c["tun_packets"] > c["tun_writes"], c
    else:
        assert "plain" in desc, desc
        assert c["super_packets"] == 0 and c["glued"] == 0, c
    if "no-udp-gso" in mode:
        assert "GSO off" in desc and c["gso_buffers"] == 0, c
    else:
        assert "GSO on" in desc and c["gso_buffers"] > 0, c
    if "no-udp-gro" in mode:
        assert "GRO off" in desc and c["gro_buffers"] == 0, c
    elif server_impl == "shimmer" and "no-udp-gso" not in mode:
        # The server's GSO buffers come through the veth whole.
        assert c["gro_buffers"] > 0, c
    if "no-multiqueue" in mode:
        assert "1 queue," in desc, desc
    elif workers and workers > 1:
        assert "%d queues" % workers in desc, desc
    assert c["dropped"] == 0, c
    assert c["turn_timeouts"] == 0, c
    if server_impl == "shimmer":
        s, _ = stop_and_count(srv)
        assert s["dropped"] == 0, s


# F flows of numbered datagrams sent interleaved; the receiver checks each
# flow's numbers only ever rise (a lost datagram is allowed, one overtaken
# is not). Bounded: it stops 3 s after the last datagram.
ORDER_RECEIVER = r"""
import socket, sys, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind((sys.argv[1], 7008))
print("ready", flush=True)
last, got, back = {}, {}, 0
s.settimeout(30)
while True:
    try:
        d, a = s.recvfrom(2048)
    except socket.timeout:
        break
    s.settimeout(3)
    flow, seq = struct.unpack("!II", d[:8])
    key = (a, flow)
    if key in last and seq <= last[key]:
        back += 1
    last[key] = max(seq, last.get(key, 0))
    got[key] = got.get(key, 0) + 1
print("flows", len(got), "received", sum(got.values()), "backwards", back, flush=True)
"""

ORDER_SENDER = r"""
import socket, sys, struct, time
addr, flows, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(flows)]
for seq in range(1, n + 1):
    for f, s in enumerate(socks):
        s.sendto(struct.pack("!II", f, seq) + b"x" * (200 + 40 * f), (addr, 7008))
    if seq % 25 == 0:
        time.sleep(0.002)
print("sent", flows * n, flush=True)
"""


def server_data_drops(srv, server_impl):
    """Data packets the server dropped: for OpenVPN behind its replay window,
    or on a key it had not set up yet (verb 4 shows both); for Shimmer any
    its data path dropped."""
    if server_impl == "shimmer":
        s, _ = stop_and_count(srv)
        return ["%d dropped: %s" % (s["dropped"], s)] if s["dropped"] else []
    return re.findall(r".*(?:bad packet ID|not initialized \(yet\)).*", srv.read_log(whole=True))


@pytest.mark.parametrize("server_impl", SERVERS)
def test_order_per_flow_with_workers(lab, server_impl):
    # Four workers, four queues: the flows spread over them, and the
    # server's 64-packet replay window sees every packet in id order.
    srv, cli = start(lab, "workers=4", server_impl, {"verb": 4})
    rx = lab.spawn_in_server(["/usr/bin/python3", "-c", ORDER_RECEIVER, srv.tunnel_v4],
                             name=lab._unique("order"))
    rx.wait_log("ready", 10)
    tx = lab.run_in_client(["/usr/bin/python3", "-c", ORDER_SENDER, srv.tunnel_v4, "8", "4000"],
                           timeout=120)
    assert "sent 32000" in tx.stdout
    m = rx.wait_log(r"flows (\d+) received (\d+) backwards (\d+)", 60)
    flows, received, back = (int(v) for v in m.groups())
    assert flows == 8
    assert back == 0, "%d datagrams arrived behind a later one of their flow" % back
    # Loss is not the point here (a loaded machine drops at the tun queue or
    # at the server); order is.
    assert received > 32000 * 0.5, "only %d of 32000 arrived" % received
    c, _ = stop_and_count(cli)
    assert c["turn_timeouts"] == 0, c
    drops = server_data_drops(srv, server_impl)
    assert not drops, "\n".join(drops[:10])


@pytest.mark.parametrize("server_impl", SERVERS)
def test_renegotiation_under_bulk_load_with_workers(lab, server_impl):
    # reneg-sec 3 on both ends while 64 MB cross each way with four
    # workers: every byte arrives, the renegotiations happened, and the
    # server counted no replays.
    srv, cli = start(lab, "workers=4", server_impl, {"reneg_sec": 3, "verb": 4})
    t0 = time.monotonic()
    transfer(lab, "client", "server", srv.tunnel_v4, 64 * 1024 * 1024)
    addr = re.search(r"inet (10\.214\.\d+\.\d+)/",
                     lab.run_in_client("ip -4 addr show dev tun0").stdout).group(1)
    transfer(lab, "server", "client", addr, 64 * 1024 * 1024)
    if time.monotonic() - t0 < 7:
        time.sleep(7 - (time.monotonic() - t0))
        transfer(lab, "client", "server", srv.tunnel_v4, 8 * 1024 * 1024)
    c, log = stop_and_count(cli)
    keys = len(re.findall(r"data channel key \d+", log))
    assert keys >= 3, "expected renegotiations, the client installed %d keys" % keys
    assert c["turn_timeouts"] == 0, c
    assert c["dropped"] == 0, c
    drops = server_data_drops(srv, server_impl)
    assert not drops, "\n".join(drops[:10])


@pytest.mark.parametrize("server_impl", SERVERS)
@pytest.mark.parametrize("mode", ["workers=2", "workers=1,no-tun-offload"])
def test_tcp_transport(lab, mode, server_impl):
    srv, cli = start(lab, mode, server_impl, {"proto": "tcp"})
    transfer(lab, "client", "server", srv.tunnel_v4, 24 * 1024 * 1024)
    addr = re.search(r"inet (10\.214\.\d+\.\d+)/",
                     lab.run_in_client("ip -4 addr show dev tun0").stdout).group(1)
    transfer(lab, "server", "client", addr, 24 * 1024 * 1024)
    sweep(lab, srv.tunnel_v4, 0, 1472)
    c, _ = stop_and_count(cli)
    assert c["tcp_writes"] > 0 and c["tcp_reads"] > 0, c
    assert c["udp_sent"] == 0, c
    assert c["dropped"] == 0, c
    if server_impl == "shimmer":
        s, _ = stop_and_count(srv)
        assert s["tcp_writes"] > 0 and s["tcp_reads"] > 0 and s["dropped"] == 0, s
