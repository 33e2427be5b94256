"""Proxies between the client and the real OpenVPN 2.6 server: tinyproxy for
HTTP CONNECT (no authentication, Basic from an authfile, `auto` with
http-proxy-user-pass, a wrong password), squid for Digest (`auto-nct`),
dante for SOCKS5 (TCP and UDP,
without authentication and with a user name and password), microsocks for
SOCKS5 TCP with a user name and password.

The proxies listen in the server namespace on a second address of its veth
(10.213.N.3); an nftables rule in the client namespace drops everything the
client sends to the server's own addresses, so the tunnel can only come up
through the proxy. Each test checks that the rule held (a direct probe is
dropped, and the client never tried the server directly) and that the proxy
logged the connection to the server.

Runs for every client in $LAB_CLIENTS, so each case also holds for OpenVPN's
own client (the reference). Needs root, tinyproxy, danted, microsocks and
nft, and squid for the Digest case (skips with the reason otherwise).
"""
import os
import pty
import pwd
import re
import shutil
import subprocess
import time

import pytest

import lab as labmod

pytestmark = pytest.mark.client

HTTP_PORT = 3128
SQUID_PORT = 3129
SOCKS_PORT = 1080


class ProxyLab:
    """A proxy address in the server namespace and the client's blocked
    direct way to the server."""

    def __init__(self, lab):
        self.lab = lab
        self.addr = "10.213.%d.3" % lab.n
        self.users = []
        labmod._ip("-n", lab.srv_ns, "addr", "add", self.addr + "/24", "dev", "lab-srv")
        rules = ("table inet shimmer_px {\n"
                 "  chain out {\n"
                 "    type filter hook output priority 0;\n"
                 "    ip daddr %s counter drop\n"
                 "    ip6 daddr %s counter drop\n"
                 "  }\n"
                 "}\n" % (lab.server_ip4, lab.server_ip6))
        lab.run_in_client(["nft", "-f", "-"], input=rules)
        # The rule works: a direct connection attempt goes nowhere.
        probe = lab.run_in_client(
            ["python3", "-c",
             "import socket,sys\n"
             "try:\n"
             "    socket.create_connection((sys.argv[1], 1194), timeout=1)\n"
             "except (socket.timeout, OSError) as e:\n"
             "    print('blocked', e)\n"
             "else:\n"
             "    print('REACHED')\n", lab.server_ip4], check=False)
        assert "blocked" in probe.stdout, probe.stdout
        self.baseline = self.dropped()
        assert self.baseline > 0, "the probe was not counted"

    def dropped(self):
        out = self.lab.run_in_client(["nft", "list", "chain", "inet", "shimmer_px", "out"]).stdout
        return sum(int(n) for n in re.findall(r"counter packets (\d+)", out))

    def assert_no_direct_traffic(self):
        assert self.dropped() == self.baseline, \
            "the client sent packets straight to the server (dropped by the rule)"

    def close(self):
        for u in self.users:
            subprocess.run(["userdel", u], check=False, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        self.users = []

    # -- proxies

    def tinyproxy(self, basic=None):
        conf = os.path.join(self.lab.dir, "tinyproxy.conf")
        lines = ["Port %d" % HTTP_PORT, "Listen " + self.addr, "Timeout 60", "LogLevel Info",
                 "MaxClients 20", "Allow 10.213.%d.0/24" % self.lab.n]
        if basic:
            lines.append("BasicAuth %s %s" % basic)
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        p = self.lab.spawn_in_server(["tinyproxy", "-d", "-c", conf], name="tinyproxy")
        p.wait_log(r"Starting main loop", 10)
        return p

    def squid(self, user, password):
        """squid asking for Digest authentication (qop auth) of one user.
        Its helpers run as the 'proxy' user: their files are in a directory
        of their own that user can reach."""
        d = os.path.join(self.lab.dir, "squid")
        os.mkdir(d, 0o755)
        os.chmod(self.lab.dir, 0o711)
        pw = pwd.getpwnam("proxy")
        os.chown(d, pw.pw_uid, pw.pw_gid)
        users = os.path.join(d, "digest-users")
        with open(users, "w") as f:
            f.write("%s:%s\n" % (user, password))
        os.chmod(users, 0o644)
        conf = os.path.join(d, "squid.conf")
        with open(conf, "w") as f:
            f.write("http_port %s:%d\n"
                    "visible_hostname shimmer-lab\n"
                    "pid_filename none\n"
                    "cache_effective_user proxy\n"
                    "cache deny all\n"
                    "cache_mem 8 MB\n"
                    "cache_log %s/cache.log\n"
                    "access_log stdio:%s/access.log\n"
                    "coredump_dir %s\n"
                    "pinger_enable off\n"
                    "dns_nameservers 127.0.0.1\n"
                    "shutdown_lifetime 0 seconds\n"
                    "auth_param digest program /usr/lib/squid/digest_file_auth %s\n"
                    "auth_param digest realm shimmer-lab\n"
                    "auth_param digest children 2\n"
                    "acl authed proxy_auth REQUIRED\n"
                    "acl CONNECT method CONNECT\n"
                    "http_access allow CONNECT authed\n"
                    "http_access deny all\n"
                    % (self.addr, SQUID_PORT, d, d, d, users))
        p = self.lab.spawn_in_server(["squid", "-N", "-f", conf], name="squid")
        p.access_log = os.path.join(d, "access.log")
        cache_log = os.path.join(d, "cache.log")
        labmod.wait_for(lambda: os.path.exists(cache_log) and
                        "Accepting HTTP Socket connections" in open(cache_log).read(), 15,
                        what="squid to listen")
        return p

    def danted(self, username=False):
        conf = os.path.join(self.lab.dir, "danted.conf")
        method = "username" if username else "none"
        with open(conf, "w") as f:
            f.write("logoutput: stderr\n"
                    "internal: %s port = %d\n"
                    "external: %s\n"
                    "socksmethod: %s\n"
                    "clientmethod: none\n"
                    "user.privileged: root\n"
                    "user.unprivileged: nobody\n"
                    "client pass {\n"
                    "    from: 10.213.%d.0/24 to: 0.0.0.0/0\n"
                    "    log: connect error\n"
                    "}\n"
                    "socks pass {\n"
                    "    from: 0.0.0.0/0 to: 0.0.0.0/0\n"
                    "    command: connect udpassociate udpreply\n"
                    "    log: connect error\n"
                    "}\n" % (self.addr, SOCKS_PORT, self.addr, method, self.lab.n))
        p = self.lab.spawn_in_server(["danted", "-f", conf, "-N", "1",
                                      "-p", os.path.join(self.lab.dir, "danted.pid")],
                                     name="danted")
        p.wait_log(r"running", 10)
        return p

    def microsocks(self, user, password):
        return self.lab.spawn_in_server(["microsocks", "-i", self.addr, "-p", str(SOCKS_PORT),
                                         "-u", user, "-P", password], name="microsocks")

    def system_user(self, password):
        """A throwaway system user (dante checks user names against the
        system's), removed when the test ends."""
        name = "shpx%d" % os.getpid()
        subprocess.run(["userdel", name], check=False, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        name], check=True)
        self.users.append(name)
        subprocess.run(["chpasswd"], input="%s:%s\n" % (name, password), text=True, check=True)
        return name

    def authfile(self, user, password):
        p = os.path.join(self.lab.dir, "proxy-auth.txt")
        with open(p, "w") as f:
            f.write("%s\n%s\n" % (user, password))
        os.chmod(p, 0o600)
        return p


@pytest.fixture
def px(lab):
    for tool in ("nft", "tinyproxy", "danted", "microsocks"):
        if shutil.which(tool) is None:
            pytest.skip("%s is not installed (scripts/install-deps.sh)" % tool)
    p = ProxyLab(lab)
    try:
        yield p
    finally:
        p.close()


def connect(lab, client_cmd, px, proto, proxy_lines, timeout=20):
    srv = lab.start_openvpn_server({"proto": proto, "wrap": "tls-crypt"})
    cli = lab.start_client(lab.client_config({"extra": proxy_lines}), client_cmd,
                           timeout=timeout)
    assert lab.ping_from_client(srv.tunnel_v4, count=3).ok
    px.assert_no_direct_traffic()
    return srv, cli


def wait_refused(cli, shimmer_says, seconds=6):
    """The client does not come up; Shimmer's says why."""
    time.sleep(0.2)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert not re.search(cli.client_cmd.ready, cli.read_log(whole=True)), \
            "the tunnel came up"
        if cli.client_cmd.name == "shimmerd" and re.search(shimmer_says, cli.read_log(True)):
            return
        time.sleep(0.1)
    if cli.client_cmd.name == "shimmerd":
        pytest.fail("shimmerd did not say %r:\n%s" % (shimmer_says, cli.log_tail(20)))


# ---------------------------------------------------------------- HTTP

def test_http_proxy(lab, client_cmd, px):
    tp = px.tinyproxy()
    connect(lab, client_cmd, px, "tcp", ["http-proxy %s %d" % (px.addr, HTTP_PORT)])
    tp.wait_log(r"CONNECT %s:1194" % re.escape(lab.server_ip4), 5)


def test_http_proxy_basic_authfile(lab, client_cmd, px):
    tp = px.tinyproxy(basic=("alice", "s3cret-pass"))
    auth = px.authfile("alice", "s3cret-pass")
    srv, cli = connect(lab, client_cmd, px, "tcp",
                       ["http-proxy %s %d %s basic" % (px.addr, HTTP_PORT, auth),
                        "http-proxy-option VERSION 1.1",
                        "http-proxy-option AGENT ShimmerLab/1.0",
                        "http-proxy-option CUSTOM-HEADER X-Lab yes"])
    tp.wait_log(r"CONNECT %s:1194 HTTP/1\.1" % re.escape(lab.server_ip4), 5)
    if client_cmd.name == "shimmerd":
        assert "s3cret" not in cli.read_log(whole=True)
        assert re.search(r"authentication basic", cli.read_log(whole=True))


def test_http_proxy_auto(lab, client_cmd, px):
    # `auto`: the first request goes without credentials; tinyproxy's 407
    # names Basic; the second connection carries them.
    tp = px.tinyproxy(basic=("bob", "pw-bob"))
    srv, cli = connect(lab, client_cmd, px, "tcp",
                       ["http-proxy %s %d auto" % (px.addr, HTTP_PORT),
                        "<http-proxy-user-pass>", "bob", "pw-bob", "</http-proxy-user-pass>"])
    log = tp.read_log(whole=True)
    assert len(re.findall(r"CONNECT %s:1194" % re.escape(lab.server_ip4), log)) >= 2, log
    if client_cmd.name == "shimmerd":
        assert re.search(r"asks for basic authentication", cli.read_log(whole=True))


def test_http_proxy_wrong_password(lab, client_cmd, px):
    px.tinyproxy(basic=("alice", "right"))
    lab.start_openvpn_server({"proto": "tcp", "wrap": "tls-crypt"})
    auth = px.authfile("alice", "wrong")
    cli = lab.start_client(lab.client_config(
        {"extra": ["http-proxy %s %d %s" % (px.addr, HTTP_PORT, auth)]}), client_cmd,
        wait=False)
    # tinyproxy answers a wrong password with 401, not 407.
    wait_refused(cli, r"refused the user name or password \(Basic authentication\): "
                      r"'HTTP/1\.0 40[17] ")
    if client_cmd.name == "shimmerd":
        assert "wrong" not in cli.read_log(whole=True)
    px.assert_no_direct_traffic()


def test_http_proxy_digest(lab, client_cmd, px):
    # auto-nct: squid's 407 offers Digest, which needs no clear text.
    if shutil.which("squid") is None:
        pytest.skip("squid is not installed (scripts/install-deps.sh)")
    sq = px.squid("dave", "d1gest-pw")
    srv, cli = connect(lab, client_cmd, px, "tcp",
                       ["http-proxy %s %d auto-nct" % (px.addr, SQUID_PORT),
                        "<http-proxy-user-pass>", "dave", "d1gest-pw",
                        "</http-proxy-user-pass>"])
    # squid logs a tunnel when it closes: its first answer was the 407...
    log = labmod.wait_for(lambda: open(sq.access_log).read() if os.path.exists(sq.access_log)
                          else None, 5, what="squid's access log")
    assert re.search(r"TCP_DENIED/407 \d+ CONNECT %s:1194 " % re.escape(lab.server_ip4), log), log
    # ...and the tunnel runs over squid's connection to the server.
    ss = lab.run_in_server(["ss", "-Htnp", "state", "established", "( dport = :1194 )"]).stdout
    assert "squid" in ss, ss
    if client_cmd.name == "shimmerd":
        assert re.search(r"authentication digest", cli.read_log(whole=True))
        assert "d1gest-pw" not in cli.read_log(whole=True)


class PtyProc(labmod.Proc):
    """A lab process whose standard input is a terminal the test types on
    (the proxy login of `http-proxy ... stdin` is asked there)."""

    def start(self):
        self.master, slave = pty.openpty()
        with open(self.log, "ab") as logf:
            self.started = time.monotonic()
            self.popen = subprocess.Popen(
                ["ip", "netns", "exec", self.ns] + self.argv, stdin=slave, stdout=logf,
                stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=labmod._child_setup)
        os.close(slave)
        self.pid = self.popen.pid
        self.lab._track(self)
        return self

    def type(self, text):
        os.write(self.master, text.encode())

    def stop(self, timeout=5.0):
        try:
            return super().stop(timeout)
        finally:
            if getattr(self, "master", None) is not None:
                os.close(self.master)
                self.master = None


def test_http_proxy_login_asked(lab, client_cmd, px):
    # `stdin`: the client asks for the proxy's login on its terminal.
    tp = px.tinyproxy(basic=("erin", "typed-pw"))
    srv = lab.start_openvpn_server({"proto": "tcp", "wrap": "tls-crypt"})
    profile = lab.write_client_config(
        {"extra": ["http-proxy %s %d stdin basic" % (px.addr, HTTP_PORT)]})
    cli = PtyProc(lab, lab.cli_ns, client_cmd.build(profile),
                  os.path.join(lab.dir, "asked-%s.log" % client_cmd.name)).start()
    cli.wait_log(r"(?i)proxy username:", 10)
    cli.type("erin\n")
    cli.wait_log(r"(?i)proxy password:", 10)
    cli.type("typed-pw\n")
    cli.wait_log(client_cmd.ready, 20)
    assert lab.ping_from_client(srv.tunnel_v4, count=2).ok
    px.assert_no_direct_traffic()
    tp.wait_log(r"CONNECT %s:1194" % re.escape(lab.server_ip4), 5)
    # The password was not echoed to the terminal or logged.
    assert "typed-pw" not in cli.read_log(whole=True)


# ---------------------------------------------------------------- SOCKS5

def test_socks_tcp(lab, client_cmd, px):
    d = px.danted()
    connect(lab, client_cmd, px, "tcp", ["socks-proxy %s %d" % (px.addr, SOCKS_PORT)])
    d.wait_log(r"tcp/connect", 5)


def test_socks_udp(lab, client_cmd, px):
    d = px.danted()
    srv, cli = connect(lab, client_cmd, px, "udp", ["socks-proxy %s %d" % (px.addr, SOCKS_PORT)])
    d.wait_log(r"udp/udpassociate", 5)
    # More than a handshake's worth of datagrams through the relay.
    ping = lab.run_in_client("ping -c 20 -i 0.05 -W 1 -s 1200 %s" % srv.tunnel_v4, timeout=20,
                             check=False)
    assert re.search(r"20 packets transmitted, 20 received", ping.stdout), ping.stdout


def test_socks_udp_username(lab, client_cmd, px):
    user = px.system_user("udp-pw-1")
    d = px.danted(username=True)
    auth = px.authfile(user, "udp-pw-1")
    connect(lab, client_cmd, px, "udp", ["socks-proxy %s %d %s" % (px.addr, SOCKS_PORT, auth)])
    d.wait_log(r"udp/udpassociate.*%s" % user, 5)


def test_socks_tcp_username(lab, client_cmd, px):
    px.microsocks("carol", "c-pass")
    auth = px.authfile("carol", "c-pass")
    srv, cli = connect(lab, client_cmd, px, "tcp",
                       ["socks-proxy %s %d %s" % (px.addr, SOCKS_PORT, auth)])
    if client_cmd.name == "shimmerd":
        assert re.search(r"authentication username/password", cli.read_log(whole=True))


def test_socks_needs_credentials(lab, client_cmd, px):
    px.microsocks("carol", "c-pass")
    lab.start_openvpn_server({"proto": "tcp", "wrap": "tls-crypt"})
    cli = lab.start_client(lab.client_config(
        {"extra": ["socks-proxy %s %d" % (px.addr, SOCKS_PORT)]}), client_cmd, wait=False)
    wait_refused(cli, r"accepts none of the offered methods")
    px.assert_no_direct_traffic()


def test_socks_wrong_password(lab, client_cmd, px):
    px.microsocks("carol", "c-pass")
    lab.start_openvpn_server({"proto": "tcp", "wrap": "tls-crypt"})
    auth = px.authfile("carol", "not-it")
    cli = lab.start_client(lab.client_config(
        {"extra": ["socks-proxy %s %d %s" % (px.addr, SOCKS_PORT, auth)]}), client_cmd,
        wait=False)
    wait_refused(cli, r"SOCKS proxy refused the user name or password")
    if client_cmd.name == "shimmerd":
        assert "not-it" not in cli.read_log(whole=True)
