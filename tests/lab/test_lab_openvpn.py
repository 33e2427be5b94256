"""Proves the lab with the real OpenVPN 2.6 as server and (by default) as the
client. Every test takes `client_cmd` (see conftest.py): run with
LAB_CLIENTS=openvpn,shimmerd to put Shimmer's daemon through the same tests.

    sudo python3 -m pytest -v tests/lab/
"""
import re
import time

import pytest

pytestmark = pytest.mark.client  # every test here runs against a client implementation

PROTOS = ["udp", "tcp"]
WRAPS = ["none", "tls-auth", "tls-crypt", "tls-crypt-v2"]


def connect_and_ping(lab, client_cmd, server_opts, client_opts=None, target=None):
    srv = lab.start_openvpn_server(server_opts)
    cli = lab.start_client(lab.client_config(client_opts), client_cmd)
    ping = lab.ping_from_client(target or srv.tunnel_v4, count=3)
    assert ping.ok, "no reply through the tunnel:\n" + ping.output
    return srv, cli


@pytest.mark.parametrize("wrap", WRAPS)
@pytest.mark.parametrize("proto", PROTOS)
def test_connect(lab, client_cmd, proto, wrap):
    srv, cli = connect_and_ping(lab, client_cmd, {"proto": proto, "wrap": wrap})
    assert cli.connect_time < 10
    assert cli.stop() is not None
    assert srv.alive()
    srv.stop()


def test_auth_user_pass_accepted(lab, client_cmd):
    opts = {"wrap": "tls-crypt", "auth_user_pass": ("alice", "s3cret pass")}
    srv, cli = connect_and_ping(lab, client_cmd, opts)
    srv.wait_log(r"TLS: Username/Password authentication succeeded for username 'alice'", 5)


def test_auth_user_pass_refused(lab, client_cmd):
    srv = lab.start_openvpn_server({"wrap": "tls-crypt", "auth_user_pass": ("alice", "s3cret pass")})
    cli = lab.start_client(lab.client_config({"auth_user_pass": ("alice", "wrong")}),
                           client_cmd, wait=False)
    cli.wait_log(client_cmd.auth_failed, timeout=15)
    assert not re.search(client_cmd.ready, cli.read_log())
    srv.wait_log(r"Auth Username/Password verification failed", 5)


@pytest.mark.parametrize("proto", PROTOS)
def test_ipv6_transport(lab, client_cmd, proto):
    srv, cli = connect_and_ping(lab, client_cmd, {"proto": proto, "wrap": "tls-crypt"},
                                {"remote": "ipv6"})
    assert ("%s6" % proto) in open(cli.config).read()
    # The server saw the client's IPv6 address.
    lab.wait_for(lambda: lab.client_ip6 in srv.status(), 5, what="client in the status file")


def test_ipv6_inside_tunnel(lab, client_cmd):
    srv, cli = connect_and_ping(lab, client_cmd, {"wrap": "tls-crypt"}, target=None)
    ping6 = lab.ping_from_client(srv.tunnel_v6, count=3)
    assert ping6.ok, ping6.output


def test_inline_profile(lab, client_cmd):
    opts = {"wrap": "tls-crypt-v2", "auth_user_pass": ("bob", "pw")}
    srv = lab.start_openvpn_server(opts)
    text = lab.client_config({"inline": True})
    assert "<tls-crypt-v2>" in text and "<auth-user-pass>" in text and "/tests/data/" not in text
    lab.start_client(text, client_cmd)
    assert lab.ping_from_client(srv.tunnel_v4).ok


def test_tls_auth_inline_key_direction(lab, client_cmd):
    srv = lab.start_openvpn_server({"wrap": "tls-auth", "proto": "tcp"})
    lab.start_client(lab.client_config({"inline": True}), client_cmd)
    assert lab.ping_from_client(srv.tunnel_v4).ok


def test_builder_options(lab, client_cmd):
    """net30, a single non-default cipher, TLS 1.3 only, pushed routes and
    redirect-gateway def1: the client installs what the server pushes."""
    srv, cli = connect_and_ping(lab, client_cmd, {
        "topology": "net30", "cipher": "CHACHA20-POLY1305",
        "tls_version_min": "1.3", "tls_version_max": "1.3",
        "push_routes": ["10.99.0.0/16", "fd5e:99::/64"], "redirect_gateway": "def1 ipv6",
        "wrap": "tls-crypt"})
    routes4 = lab.run_in_client("ip -4 route").stdout
    routes6 = lab.run_in_client("ip -6 route").stdout
    # OpenVPN routes via the tunnel's gateway address, Shimmer straight into
    # the tun device: both send the traffic into the tunnel.
    assert re.search(r"^10\.99\.0\.0/16 (via|dev)", routes4, re.M), routes4
    assert re.search(r"^0\.0\.0\.0/1 (via|dev)", routes4, re.M), routes4
    assert re.search(r"^128\.0\.0\.0/1 (via|dev)", routes4, re.M), routes4
    assert re.search(r"^fd5e:99::/64 ", routes6, re.M), routes6
    # IPv6 redirect: OpenVPN adds ::/3 and 2000::/4 (and more), Shimmer ::/1 and 8000::/1.
    assert (re.search(r"^::/3 ", routes6, re.M) or re.search(r"^2000::/4 ", routes6, re.M)
            or re.search(r"^::/1 ", routes6, re.M)), routes6
    # The transport still reaches the server, and the server agreed on the cipher.
    assert lab.ping_from_client(lab.server_ip4, count=2).ok
    srv.wait_log(r"Data Channel: cipher 'CHACHA20-POLY1305'", 5)
    srv.wait_log(r"Control Channel: TLSv1\.3", 5)


def test_renegotiation(lab, client_cmd):
    srv, cli = connect_and_ping(lab, client_cmd, {"wrap": "tls-crypt", "reneg_sec": 2})
    # A second TLS handshake (from either side: both have reneg-sec 2), then
    # traffic still flows under the new data channel keys.
    lab.wait_for(lambda: len(re.findall(r"Control Channel: TLS", srv.read_log())) >= 2,
                 8, what="a second handshake")
    time.sleep(0.5)
    assert lab.ping_from_client(srv.tunnel_v4).ok


def test_server_restart(lab, client_cmd):
    srv, cli = connect_and_ping(lab, client_cmd, {"proto": "tcp", "wrap": "tls-crypt"})
    old = srv.pid
    srv.restart()
    assert srv.pid != old and srv.alive()
    # Over TCP the client notices the reset and reconnects on its own.
    srv.wait_log(r"Peer Connection Initiated", 20)
    lab.wait_for(lambda: lab.ping_from_client(srv.tunnel_v4, count=1).ok, 15,
                 interval=0.2, what="the tunnel to come back")
