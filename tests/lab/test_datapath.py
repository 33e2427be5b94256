"""The data path against the real OpenVPN 2.6 server: packets of every size
up to the tunnel MTU cross whole in both directions, with the default MTU
and with jumbo tun-mtu values on both ends (issue 9, item 10: a tun-mtu
above 2048 used to lose every packet larger than 2048 bytes).

Runs for every client in $LAB_CLIENTS, so each check also holds for OpenVPN.
"""
import re

import pytest

pytestmark = pytest.mark.client

ECHO_PORT = 7007

# A UDP echo service in the server namespace: every datagram goes back as it
# came. Bounded: it exits after 120 s without a datagram.
ECHO = r"""
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(120)
print("ready", flush=True)
while True:
    try:
        d, a = s.recvfrom(65535)
    except socket.timeout:
        break
    s.sendto(d, a)
"""

# Sends one datagram of every payload size in [lo, hi] to the echo service
# and checks that the same bytes come back (up to 3 tries each, so a lost
# packet is not mistaken for a size that never passes). Prints the sizes
# that never came back intact, then "done N".
SWEEP = r"""
import socket, sys
addr, port, lo, hi = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.connect((addr, port))
s.settimeout(0.5)
bad = []
for n in range(lo, hi + 1):
    payload = bytes((n * 7 + i) & 0xFF for i in range(n)) if n < 64 else \
        (bytes(range(256)) * (n // 256 + 1))[n % 251:n % 251 + n]
    ok = False
    for attempt in range(3):
        s.send(payload)
        try:
            while True:
                d = s.recv(65535)
                if d == payload:
                    ok = True
                    break
        except socket.timeout:
            pass
        except OSError:
            break
        if ok:
            break
    if not ok:
        bad.append(n)
print("bad", " ".join(map(str, bad[:50])), flush=True)
print("done", hi - lo + 1, flush=True)
"""


def start(lab, client_cmd, mtu=None):
    extra = ["tun-mtu %d" % mtu] if mtu else []
    srv = lab.start_openvpn_server({"wrap": "tls-crypt", "extra": extra})
    cli = lab.start_client(lab.client_config({"extra": extra}), client_cmd)
    dev = lab.route_dev(srv.tunnel_v4)
    assert dev and dev.startswith("tun"), "%s is routed via %s" % (srv.tunnel_v4, dev)
    return srv, cli, dev


def link_mtu(lab, dev):
    r = lab.run_in_client(["cat", "/sys/class/net/%s/mtu" % dev])
    return int(r.stdout.strip())


def sweep(lab, srv_addr, lo, hi):
    echo = lab.spawn_in_server(["/usr/bin/python3", "-c", ECHO, srv_addr, str(ECHO_PORT)],
                               name=lab._unique("echo"))
    echo.wait_log("ready", 10)
    try:
        r = lab.run_in_client(["/usr/bin/python3", "-c", SWEEP, srv_addr, str(ECHO_PORT),
                               str(lo), str(hi)], timeout=600, check=False)
    finally:
        echo.stop()
    assert re.search(r"^done %d$" % (hi - lo + 1), r.stdout, re.M), r.stdout
    bad = re.search(r"^bad ?(.*)$", r.stdout, re.M).group(1).split()
    assert not bad, "payload sizes that did not come back intact: %s" % " ".join(bad)


def ping(lab, addr, size, dont_fragment=True):
    cmd = "ping -n -c 2 -i 0.2 -W 2 %s-s %d %s" % ("-M do " if dont_fragment else "", size, addr)
    if ":" in addr:
        cmd = cmd.replace("ping ", "ping -6 ")
    return lab.run_in_client(cmd, check=False, timeout=15)


@pytest.mark.parametrize("mtu", [3000, 9000])
def test_jumbo_tun_mtu(lab, client_cmd, mtu):
    # tun-mtu above 2048 on both ends: pings right below, at and above the
    # old 2048-byte limit and at the MTU cross whole (IPv4 and IPv6); one
    # byte more than the MTU is refused locally, not mangled.
    srv, cli, dev = start(lab, client_cmd, mtu)
    assert link_mtu(lab, dev) == mtu
    for size in (2000, 2020, 2021, 2100, 2500, mtu - 28):
        r = ping(lab, srv.tunnel_v4, size)
        assert re.search(r"\b2 received", r.stdout), "size %d: %s" % (size, r.stdout)
    for size in (2500, mtu - 48):
        r = ping(lab, srv.tunnel_v6, size)
        assert re.search(r"\b2 received", r.stdout), "v6 size %d: %s" % (size, r.stdout)
    assert ping(lab, srv.tunnel_v4, mtu - 27).returncode != 0


@pytest.mark.parametrize("mtu", [None, 3000, 9000])
def test_every_size_up_to_the_mtu(lab, client_cmd, mtu):
    # Every UDP payload from 0 bytes to what fills the MTU (IP packets of 28
    # bytes to the MTU), through the tunnel and back, over IPv4; IPv6 at its
    # lower and upper end.
    srv, cli, dev = start(lab, client_cmd, mtu)
    m = link_mtu(lab, dev)
    assert m == (mtu or 1500)
    sweep(lab, srv.tunnel_v4, 0, m - 28)
    sweep(lab, srv.tunnel_v6, 0, 64)
    sweep(lab, srv.tunnel_v6, m - 48 - 64, m - 48)
