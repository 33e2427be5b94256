"""Interoperability of the client under test with the real OpenVPN 2.6 server,
beyond the lab's smoke tests: each data cipher alone, TLS 1.2 forced,
renegotiation under load without loss, the server restarted, packets at the
tunnel MTU, a bulk transfer checked end to end, the network configuration
removed on exit, and the exit notification.

Runs for every client in $LAB_CLIENTS (meson's 'interop' suite sets it to
"shimmerd,openvpn", so each check also holds for OpenVPN itself).
"""
import hashlib
import os
import re
import signal
import time

import pytest

import lab as labmod

pytestmark = pytest.mark.client


def assert_tunnel_route(lab, addr):
    # The client namespace could reach the server's tunnel address over the
    # veth too: make sure this traffic really goes through the tun.
    dev = lab.route_dev(addr)
    assert dev and dev.startswith("tun"), "%s is routed via %s" % (addr, dev)


def start(lab, client_cmd, server_opts, client_opts=None):
    srv = lab.start_openvpn_server(server_opts)
    cli = lab.start_client(lab.client_config(client_opts), client_cmd)
    return srv, cli


@pytest.mark.parametrize("cipher", ["AES-128-GCM", "AES-192-GCM", "AES-256-GCM",
                                    "CHACHA20-POLY1305"])
def test_single_server_cipher(lab, client_cmd, cipher):
    # The client offers all four; the server allows only one.
    srv, cli = start(lab, client_cmd, {"wrap": "tls-crypt", "cipher": cipher},
                     {"cipher": "AES-256-GCM:AES-128-GCM:AES-192-GCM:CHACHA20-POLY1305"})
    assert lab.ping_from_client(srv.tunnel_v4, count=3).ok
    srv.wait_log(r"Data Channel: cipher '%s'" % cipher, 5)


def test_tls12_forced_by_server(lab, client_cmd):
    srv, cli = start(lab, client_cmd, {"wrap": "tls-auth", "tls_version_max": "1.2"},
                     {"tls_version_max": None})
    assert lab.ping_from_client(srv.tunnel_v4, count=2).ok
    srv.wait_log(r"Control Channel: TLSv1\.2", 5)


def test_server_without_x25519(lab, client_cmd):
    # Shimmer's client offers one key share, X25519's (as OpenSSL's does):
    # a server that allows only P-384 asks for that one (a TLS 1.3
    # HelloRetryRequest), and the handshake goes on.
    srv, cli = start(lab, client_cmd, {"wrap": "tls-crypt", "extra": ["tls-groups secp384r1"]})
    assert lab.ping_from_client(srv.tunnel_v4, count=2).ok
    if client_cmd.name == "shimmerd":
        cli.wait_log(r"TLS handshake done \(key 0\): \(TLS1\.3\)-\(ECDHE-SECP384R1\)", 5)


def test_renegotiation_under_load_loses_nothing(lab, client_cmd):
    # Both sides renegotiate every 3 s; pings every 100 ms across several
    # renegotiations must all come back.
    srv, cli = start(lab, client_cmd, {"wrap": "tls-crypt", "reneg_sec": 3})
    assert_tunnel_route(lab, srv.tunnel_v4)
    ping = lab.run_in_client("ping -c 100 -i 0.1 -W 1 %s" % srv.tunnel_v4, timeout=40,
                             check=False)
    handshakes = len(re.findall(r"Control Channel: TLS", srv.read_log()))
    assert handshakes >= 3, "expected several renegotiations, saw %d handshakes" % handshakes
    m = re.search(r"(\d+) packets transmitted, (\d+) received", ping.stdout)
    assert m and m.group(1) == m.group(2) == "100", ping.stdout


def test_server_restart_udp(lab, client_cmd):
    # keepalive 1 4: the server pushes ping 1 / ping-restart 4 (doubled locally).
    srv, cli = start(lab, client_cmd, {"wrap": "tls-crypt", "keepalive": (1, 4)})
    assert lab.ping_from_client(srv.tunnel_v4, count=1).ok
    srv.restart()
    lab.wait_for(lambda: lab.ping_from_client(srv.tunnel_v4, count=1, timeout=1).ok, 30,
                 interval=0.5, what="the tunnel to come back after the server restart")
    assert cli.alive()


def test_packets_at_tunnel_mtu(lab, client_cmd):
    srv, cli = start(lab, client_cmd, {"wrap": "tls-crypt"})
    assert_tunnel_route(lab, srv.tunnel_v4)
    # 1472 bytes of ICMP payload + 28 bytes of headers = the 1500-byte tun MTU,
    # with fragmentation forbidden: the packet must cross whole.
    ping = lab.run_in_client("ping -c 3 -M do -s 1472 -W 2 %s" % srv.tunnel_v4, check=False)
    assert re.search(r"3 received", ping.stdout), ping.stdout + ping.stderr
    # One byte more does not fit the tun and is refused locally, not mangled.
    big = lab.run_in_client("ping -c 1 -M do -s 1473 -W 2 %s" % srv.tunnel_v4, check=False)
    assert big.returncode != 0


RECEIVER = r"""
import hashlib, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 5201))
s.listen(1)
s.settimeout(30)
c, _ = s.accept()
c.settimeout(30)
h = hashlib.sha256()
n = 0
while True:
    d = c.recv(65536)
    if not d:
        break
    h.update(d)
    n += len(d)
print(n, h.hexdigest(), flush=True)
"""

SENDER = r"""
import hashlib, random, socket, sys, time
rnd = random.Random(20261125)
total = int(sys.argv[2])
for attempt in range(50):
    try:
        s = socket.create_connection((sys.argv[1], 5201), timeout=30)
        break
    except OSError:
        time.sleep(0.1)
h = hashlib.sha256()
left = total
while left:
    chunk = rnd.randbytes(min(left, 65536))
    s.sendall(chunk)
    h.update(chunk)
    left -= len(chunk)
s.close()
print(total, h.hexdigest(), flush=True)
"""


def test_bulk_transfer_arrives_intact(lab, client_cmd):
    srv, cli = start(lab, client_cmd, {"wrap": "tls-crypt"})
    assert_tunnel_route(lab, srv.tunnel_v4)
    size = 32 * 1024 * 1024
    rx = lab.spawn_in_server(["/usr/bin/python3", "-c", RECEIVER, srv.tunnel_v4], name="receiver")
    time.sleep(0.3)
    tx = lab.run_in_client(["/usr/bin/python3", "-c", SENDER, srv.tunnel_v4, str(size)],
                           timeout=60)
    lab.wait_for(lambda: not rx.alive(), 30, what="the receiver to finish")
    sent = tx.stdout.split()
    got = rx.read_log(whole=True).split()
    assert sent[0] == str(size)
    assert got[:2] == sent[:2], "sent %s, received %s" % (sent, got)


def test_routes_and_tun_removed_on_exit(lab, client_cmd):
    srv, cli = start(lab, client_cmd, {"wrap": "tls-crypt", "push_routes": ["10.99.0.0/16"],
                                       "redirect_gateway": "def1"})
    assert lab.ping_from_client(srv.tunnel_v4, count=1).ok
    before = lab.run_in_client("ip -4 route").stdout
    assert re.search(r"^10\.99\.0\.0/16 ", before, re.M), before
    assert re.search(r"^0\.0\.0\.0/1 ", before, re.M), before
    # The server itself stays reachable outside the tunnel (a host route or
    # the connected veth network).
    assert lab.ping_from_client(lab.server_ip4, count=1).ok
    cli.signal(signal.SIGTERM)
    assert cli.wait_exit() == 0
    after = lab.run_in_client("ip -4 route").stdout
    for pattern in (r"^10\.99\.0\.0/16 ", r"^0\.0\.0\.0/1 ", r"^128\.0\.0\.0/1 ", r"tun"):
        assert not re.search(pattern, after, re.M), after
    links = lab.run_in_client("ip -o link").stdout
    assert "tun" not in links, links


def test_explicit_exit_notify(lab, client_cmd):
    srv, cli = start(lab, client_cmd, {"wrap": "tls-crypt"}, {"extra": ["explicit-exit-notify 2"]})
    assert lab.ping_from_client(srv.tunnel_v4, count=1).ok
    cli.signal(signal.SIGTERM)
    assert cli.wait_exit() == 0
    # The server drops the client at once instead of waiting for ping-restart.
    srv.wait_log(r"(CC-EEN exit message|remote-exit|exit notification)", 5)


def test_refused_login_exits_nonzero(lab, client_cmd):
    srv = lab.start_openvpn_server({"wrap": "tls-crypt", "auth_user_pass": ("alice", "right")})
    cli = lab.start_client(lab.client_config({"auth_user_pass": ("alice", "wrong")}), client_cmd,
                           wait=False)
    if client_cmd.name != "shimmerd":
        pytest.skip("OpenVPN retries a refused login unless told otherwise")
    rc = cli.wait_exit()
    assert rc not in (0, None)
    assert re.search(r"authentication failed", cli.read_log(whole=True))


def profile_with(lab, options, replace=None, add=()):
    """A client profile for the last server, with whole lines replaced: REPLACE
    maps a directive name to its new lines (or [] to drop it)."""
    lines = lab.client_config(options).splitlines()
    out = []
    for line in lines:
        name = line.split(" ", 1)[0]
        if replace and name in replace:
            out += replace.pop(name)
        else:
            out.append(line)
    return "\n".join(out + list(add)) + "\n"


@pytest.mark.parametrize("mode", ["comp-lzo no", "compress", "compress stub-v2"])
def test_compression_framing(lab, client_cmd, mode):
    # The server wants compression framing; nothing is ever compressed.
    srv = lab.start_openvpn_server({"wrap": "tls-crypt",
                                    "extra": [mode, 'push "%s"' % mode, "allow-compression asym"]})
    lab.start_client(profile_with(lab, {}, add=[mode]), client_cmd)
    assert_tunnel_route(lab, srv.tunnel_v4)
    ping = lab.run_in_client("ping -c 3 -i 0.2 -s 1200 -W 2 %s" % srv.tunnel_v4, check=False)
    assert "3 received" in ping.stdout, ping.stdout


def test_pkcs12_identity(lab, client_cmd):
    srv = lab.start_openvpn_server({"wrap": "tls-crypt"})
    text = profile_with(lab, {}, replace={"cert": ["pkcs12 " + labmod.fixture("client.p12")],
                                          "key": []})
    lab.start_client(text, client_cmd)
    assert lab.ping_from_client(srv.tunnel_v4, count=2).ok


def test_encrypted_key_with_askpass(lab, client_cmd):
    srv = lab.start_openvpn_server({"wrap": "tls-auth"})
    text = profile_with(lab, {}, replace={"key": ["key " + labmod.fixture("client-enc.key")]},
                        add=["askpass " + labmod.fixture("client-enc.pass")])
    lab.start_client(text, client_cmd)
    assert lab.ping_from_client(srv.tunnel_v4, count=2).ok


@pytest.mark.parametrize("check,good", [
    ("verify-x509-name server.shimmer.test name", True),
    ("verify-x509-name server.shimmer name-prefix", True),
    ("verify-x509-name 'O=Shimmer Test, CN=server.shimmer.test' subject", True),
    ("verify-x509-name impostor.shimmer.test name", False),
])
def test_verify_x509_name(lab, client_cmd, check, good):
    srv = lab.start_openvpn_server({"wrap": "tls-crypt"})
    cli = lab.start_client(profile_with(lab, {"verify_x509_name": None},
                                        add=[check, "connect-retry-max 1"]), client_cmd,
                           wait=good)
    if good:
        assert lab.ping_from_client(srv.tunnel_v4, count=1).ok
    else:
        time.sleep(3)
        assert not re.search(client_cmd.ready, cli.read_log(whole=True))
        assert not lab.ping_from_client(srv.tunnel_v4, count=1, timeout=1).ok


def _server_fingerprint():
    import subprocess
    out = subprocess.run(["openssl", "x509", "-in", labmod.fixture("server.crt"), "-noout",
                          "-fingerprint", "-sha256"], capture_output=True, text=True, check=True)
    return out.stdout.strip().split("=", 1)[1]


@pytest.mark.parametrize("good", [True, False])
def test_peer_fingerprint_without_ca(lab, client_cmd, good):
    srv = lab.start_openvpn_server({"wrap": "tls-crypt"})
    fp = _server_fingerprint()
    if not good:
        fp = ("00" if not fp.startswith("00") else "11") + fp[2:]
    text = profile_with(lab, {}, replace={"ca": [], "remote-cert-tls": []},
                        add=["peer-fingerprint " + fp, "connect-retry-max 1"])
    cli = lab.start_client(text, client_cmd, wait=good)
    if good:
        assert lab.ping_from_client(srv.tunnel_v4, count=1).ok
    else:
        time.sleep(3)
        assert not re.search(client_cmd.ready, cli.read_log(whole=True))


def test_failover_to_second_remote(lab, client_cmd):
    # Nothing listens on the first remote's port: the client moves on to the
    # second (at once on the ICMP error, or after server-poll-timeout).
    srv = lab.start_openvpn_server({"wrap": "tls-crypt"})
    first = "remote %s %d" % (lab.server_ip4, srv.port + 1000)
    text = profile_with(lab, {}, replace={"remote": [first, "remote %s %d" % (lab.server_ip4,
                                                                            srv.port)]},
                        add=["server-poll-timeout 2", "connect-retry 1"])
    cli = lab.start_client(text, client_cmd, timeout=20)
    assert lab.ping_from_client(srv.tunnel_v4, count=1).ok


def test_failover_after_server_poll_timeout(lab, client_cmd):
    # The first remote swallows packets without any answer (an address on
    # the server's link that nobody has), so only server-poll-timeout helps.
    srv = lab.start_openvpn_server({"wrap": "tls-crypt"})
    blackhole = "10.213.%d.99" % lab.n  # no host has it: ARP fails, packets vanish
    text = profile_with(lab, {}, replace={"remote": ["remote %s %d" % (blackhole, srv.port),
                                                     "remote %s %d" % (lab.server_ip4, srv.port)]},
                        add=["server-poll-timeout 2", "connect-retry 1"])
    cli = lab.start_client(text, client_cmd, timeout=25)
    if client_cmd.name == "shimmerd":
        # Shimmer waits server-poll-timeout on the silent remote (OpenVPN may
        # give up sooner on the ICMP host-unreachable of the failed ARP).
        assert cli.connect_time >= 1.5
    assert lab.ping_from_client(srv.tunnel_v4, count=1).ok


def _make_pki(directory):
    """A throwaway CA with one TLS server certificate, and a CRL of that CA
    that revokes it. Returns a dict of absolute paths."""
    import subprocess

    def run(*args):
        subprocess.run(args, cwd=directory, check=True, capture_output=True)
    run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key")
    run("openssl", "req", "-new", "-x509", "-key", "ca.key", "-days", "2", "-subj",
        "/CN=CRL Test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "ca.crt")
    run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "srv.key")
    run("openssl", "req", "-new", "-key", "srv.key", "-subj", "/CN=server.shimmer.test",
        "-out", "srv.csr")
    with open(os.path.join(directory, "ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", "srv.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "ext", "-out", "srv.crt")
    os.makedirs(os.path.join(directory, "db"))
    open(os.path.join(directory, "db", "index.txt"), "w").close()
    with open(os.path.join(directory, "db", "crlnumber"), "w") as f:
        f.write("01\n")
    with open(os.path.join(directory, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca=d\n[d]\ndatabase=db/index.txt\ncrlnumber=db/crlnumber\n"
                "default_md=sha256\ndefault_crl_days=2\n")
    run("openssl", "ca", "-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.crt",
        "-revoke", "srv.crt")
    run("openssl", "ca", "-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.crt",
        "-gencrl", "-out", "crl.pem")
    return {k: os.path.join(directory, v) for k, v in
            (("ca", "ca.crt"), ("cert", "srv.crt"), ("key", "srv.key"), ("crl", "crl.pem"))}


@pytest.mark.parametrize("with_crl", [False, True])
def test_crl_verify_rejects_revoked_server(lab, client_cmd, with_crl, tmp_path):
    pki = _make_pki(str(tmp_path))
    srv = lab.start_openvpn_server({"wrap": "tls-crypt", "cert": pki["cert"], "key": pki["key"]})
    add = ["connect-retry-max 1"] + (["crl-verify " + pki["crl"]] if with_crl else [])
    text = profile_with(lab, {}, replace={"ca": ["ca " + pki["ca"]]}, add=add)
    cli = lab.start_client(text, client_cmd, wait=not with_crl)
    if not with_crl:
        assert lab.ping_from_client(srv.tunnel_v4, count=1).ok
    else:
        time.sleep(3)
        assert not re.search(client_cmd.ready, cli.read_log(whole=True))
        assert not lab.ping_from_client(srv.tunnel_v4, count=1, timeout=1).ok


def test_client_certificate_is_not_a_server(lab, client_cmd):
    # A certificate made for clients (EKU clientAuth only) presented by the
    # server is refused, with or without remote-cert-tls.
    srv = lab.start_openvpn_server({"wrap": "tls-crypt", "cert": "revoked.crt",
                                    "key": "revoked.key"})
    text = profile_with(lab, {"verify_x509_name": None}, replace={"remote-cert-tls": []},
                        add=["connect-retry-max 1"])
    cli = lab.start_client(text, client_cmd, wait=False)
    time.sleep(3)
    assert not re.search(client_cmd.ready, cli.read_log(whole=True))


GARBAGE_SENDER = r"""
import os, random, socket, struct, sys
src, sport, dst, dport = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
rnd = random.Random(7)
# A raw socket: the client's UDP socket is connected to the server's
# address and port, so the garbage must appear to come from there.
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
def send(payload):
    hdr = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)  # checksum 0: none
    s.sendto(hdr + payload, (dst, 0))
opcodes = [3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 31]
for i in range(600):
    n = rnd.choice([0, 1, 2, 5, 9, 13, 14, 22, 25, 26, 40, 100, 1000, 1400])
    body = bytes(rnd.getrandbits(8) for _ in range(n))
    op = rnd.choice(opcodes)
    send(bytes([(op << 3) | rnd.randrange(8)]) + body)
print("sent", flush=True)
"""


def test_garbage_from_the_server_address_is_dropped(lab, client_cmd):
    # Datagrams with the server's address and port but garbage content: every
    # opcode, truncated and oversized. The session must carry on unharmed.
    srv, cli = start(lab, client_cmd, {"wrap": "tls-crypt"})
    assert lab.ping_from_client(srv.tunnel_v4, count=1).ok
    ss = lab.run_in_client("ss -Hnuap", check=False).stdout
    # The client's UDP socket: the first address:port on the line naming its pid.
    m = None
    for line in ss.splitlines():
        if "pid=%d," % cli.pid in line:
            m = re.search(r"\S*:(\d+)\s", line)
            break
    assert m, ss
    lab.run_in_server(["/usr/bin/python3", "-c", GARBAGE_SENDER, lab.server_ip4, str(srv.port),
                       lab.client_ip4, m.group(1)], timeout=30)
    ping = lab.ping_from_client(srv.tunnel_v4, count=5)
    assert ping.ok and ping.received == 5, ping.output
    assert cli.alive()


def test_route_to_a_host_name(lab, client_cmd):
    """`route NAME` in the profile: the client looks NAME up (here from the
    client namespace's hosts file) once the tunnel is up and routes its
    address through the tunnel; the ping only counts when it leaves by the
    tun device."""
    target = "10.215.%d.7" % lab.n
    lab.set_client_hosts({"intranet.shimmer.test": target})
    srv = lab.start_openvpn_server({"wrap": "tls-crypt"})
    lab.run_in_server(["ip", "addr", "add", target + "/32", "dev", "lo"])
    lab.start_client(lab.client_config(
        {"extra": ["route intranet.shimmer.test 255.255.255.255"]}), client_cmd)
    assert lab.ping_from_client(srv.tunnel_v4, count=2).ok
    lab.wait_for(lambda: (lab.route_dev(target) or "").startswith(("tun", "shim")), 10,
                 what="the route to intranet.shimmer.test")
    res = lab.ping_from_client(target, count=3, through_tunnel=True)
    assert res.ok, res.output
