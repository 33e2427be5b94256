"""What the parser reads from real-world profiles, against the real OpenVPN
2.6 server: compression the server applies (comp-lzo, comp-lzo adaptive,
compress lz4, compress lz4-v2 with `allow-compression yes` on the server),
the peer-certificate checks ns-cert-type, remote-cert-ku and remote-cert-eku
on a server certificate that passes and one that fails, tls-cipher and
tls-ciphersuites pinning what is negotiated (the server's log says what it
got), and a CRL whose dates GnuTLS refuses (as a VPN provider's are).

Runs for every client in $LAB_CLIENTS, so each expectation also holds for
OpenVPN's own client.
"""
import importlib.util
import os
import re
import subprocess
import time

import pytest

import lab as labmod

pytestmark = pytest.mark.client

HERE = os.path.dirname(os.path.abspath(__file__))


def tun_address(lab):
    """The client's IPv4 address inside the tunnel."""
    out = lab.run_in_client("ip -o -4 addr show").stdout
    for line in out.splitlines():
        m = re.match(r"\d+:\s+((?:tun|shim)\S*)\s+inet (\S+)/", line)
        if m:
            return m.group(2)
    raise AssertionError("no tunnel address in:\n" + out)


# The server sends, the client receives: what the server compresses is what
# the client must decompress.
RECEIVER = r"""
import hashlib, socket, sys
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", 5202))
srv.listen(1)
srv.settimeout(30)
print("listening", flush=True)
c, _ = srv.accept()
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
kind, total = sys.argv[2], int(sys.argv[3])
rnd = random.Random(4242)
for attempt in range(50):
    try:
        s = socket.create_connection((sys.argv[1], 5202), timeout=30)
        break
    except OSError:
        time.sleep(0.1)
h = hashlib.sha256()
left = total
while left:
    n = min(left, 65536)
    chunk = bytes(n) if kind == "zeros" else rnd.randbytes(n)
    s.sendall(chunk)
    h.update(chunk)
    left -= n
s.close()
print(total, h.hexdigest(), flush=True)
"""


def transfer_to_client(lab, srv, kind, size):
    addr = tun_address(lab)
    rx = lab.spawn_in_client(["/usr/bin/python3", "-c", RECEIVER], name="receiver-" + kind)
    rx.wait_log(r"listening", 10)
    tx = lab.run_in_server(["/usr/bin/python3", "-c", SENDER, addr, kind, str(size)],
                           timeout=90)
    lab.wait_for(lambda: not rx.alive(), 60, what="the receiver to finish")
    sent = tx.stdout.split()
    got = rx.read_log(whole=True).split()[1:]
    assert sent[0] == str(size)
    assert got[:2] == sent[:2], "%s: sent %s, received %s" % (kind, sent, got)


@pytest.mark.parametrize("mode", ["comp-lzo", "comp-lzo adaptive", "compress lz4",
                                  "compress lz4-v2"])
def test_server_compresses(lab, client_cmd, mode):
    srv = lab.start_openvpn_server({"wrap": "tls-crypt",
                                    "extra": [mode, 'push "%s"' % mode,
                                              "allow-compression yes"]})
    lab.start_client(lab.client_config({"extra": [mode]}), client_cmd)
    dev = lab.route_dev(srv.tunnel_v4)
    assert dev and dev.startswith(("tun", "shim")), dev
    # Compressible: ping replies carry the request's zero pattern back,
    # large enough to be worth compressing for the server.
    for size in (1200, 1400):
        ping = lab.run_in_client("ping -c 3 -i 0.2 -s %d -p 00 -W 2 %s" % (size, srv.tunnel_v4),
                                 check=False)
        assert "3 received" in ping.stdout, ping.stdout
    # A TCP stream of zeros and one of random bytes, checksummed.
    transfer_to_client(lab, srv, "zeros", 4 * 1024 * 1024)
    transfer_to_client(lab, srv, "random", 4 * 1024 * 1024)
    if client_cmd.name == "shimmerd":
        # It did decompress (the warning comes with the first compressed
        # packet), and said so once.
        log = lab.logs(4000)
        assert len(re.findall(r"the server compresses the packets", log)) == 1, log


def _openssl(directory, *args):
    subprocess.run(args, cwd=directory, check=True, capture_output=True)


def make_ca(directory):
    _openssl(directory, "openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout",
             "-out", "ca.key")
    _openssl(directory, "openssl", "req", "-new", "-x509", "-key", "ca.key", "-days", "2",
             "-subj", "/O=Shimmer Test/CN=Usage Test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "ca.crt")
    return os.path.join(directory, "ca.crt")


def make_server_cert(directory, name, extensions, serial):
    """A server certificate for server.shimmer.test signed by make_ca()'s CA
    with EXTENSIONS (openssl extension lines); (cert, key) paths."""
    _openssl(directory, "openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout",
             "-out", name + ".key")
    _openssl(directory, "openssl", "req", "-new", "-key", name + ".key", "-subj",
             "/O=Shimmer Test/CN=server.shimmer.test", "-out", name + ".csr")
    with open(os.path.join(directory, name + ".ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\n" + "\n".join(extensions) + "\n")
    _openssl(directory, "openssl", "x509", "-req", "-in", name + ".csr", "-CA", "ca.crt",
             "-CAkey", "ca.key", "-set_serial", str(serial), "-days", "2", "-extfile",
             name + ".ext", "-out", name + ".crt")
    return os.path.join(directory, name + ".crt"), os.path.join(directory, name + ".key")


def refused(lab, client_cmd, cli):
    time.sleep(3)
    log = cli.read_log(whole=True)
    assert not re.search(client_cmd.ready, log), log
    return log


USAGE_CASES = [
    # (the client's directive, the server certificate's extensions, accepted)
    ("ns-cert-type server", ["nsCertType=server", "keyUsage=digitalSignature"], True),
    ("ns-cert-type server", ["nsCertType=client", "keyUsage=digitalSignature"], False),
    ("remote-cert-ku 80", ["keyUsage=digitalSignature", "extendedKeyUsage=serverAuth"], True),
    ("remote-cert-ku 80 88", ["keyUsage=digitalSignature,keyAgreement",
                              "extendedKeyUsage=serverAuth"], True),
    ("remote-cert-ku 88", ["keyUsage=digitalSignature", "extendedKeyUsage=serverAuth"], False),
    ('remote-cert-eku "TLS Web Server Authentication"',
     ["keyUsage=digitalSignature", "extendedKeyUsage=serverAuth"], True),
    ("remote-cert-eku 1.3.6.1.5.5.7.3.3",
     ["keyUsage=digitalSignature", "extendedKeyUsage=serverAuth"], False),
]


@pytest.mark.parametrize("directive,extensions,good", USAGE_CASES,
                         ids=["%s-%s" % (c[0].split()[0], "pass" if c[2] else "fail")
                              + str(i) for i, c in enumerate(USAGE_CASES)])
def test_server_certificate_usage(lab, client_cmd, tmp_path, directive, extensions, good):
    d = str(tmp_path)
    ca = make_ca(d)
    cert, key = make_server_cert(d, "srv", extensions, 100)
    srv = lab.start_openvpn_server({"wrap": "tls-crypt", "cert": cert, "key": key})
    # remote-cert-tls would judge the EKU first: each case checks its own
    # directive alone.
    text = lab.client_config({"ca": ca}).replace("remote-cert-tls server\n", "")
    text += directive + "\nconnect-retry-max 1\n"
    cli = lab.start_client(text, client_cmd, wait=good)
    if good:
        assert lab.ping_from_client(srv.tunnel_v4, count=1).ok
        return
    log = refused(lab, client_cmd, cli)
    if client_cmd.name == "shimmerd":
        assert "the server's certificate: " in log, log


@pytest.mark.parametrize("tls,directive,want", [
    ("1.2", "tls-cipher TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256",
     r"TLSv1\.2, cipher TLSv1\.2 ECDHE-ECDSA-AES128-GCM-SHA256"),
    ("1.2", "tls-cipher ECDHE-ECDSA-CHACHA20-POLY1305",
     r"TLSv1\.2, cipher TLSv1\.2 ECDHE-ECDSA-CHACHA20-POLY1305"),
    ("1.3", "tls-ciphersuites TLS_CHACHA20_POLY1305_SHA256",
     r"TLSv1\.3, cipher TLSv1\.3 TLS_CHACHA20_POLY1305_SHA256"),
    ("1.3", "tls-ciphersuites TLS_AES_128_GCM_SHA256",
     r"TLSv1\.3, cipher TLSv1\.3 TLS_AES_128_GCM_SHA256"),
])
def test_tls_cipher_pinning(lab, client_cmd, tls, directive, want):
    srv = lab.start_openvpn_server({"wrap": "tls-crypt"})
    extra = [directive] + (["tls-version-max 1.2"] if tls == "1.2" else [])
    lab.start_client(lab.client_config({"extra": extra}), client_cmd)
    assert lab.ping_from_client(srv.tunnel_v4, count=1).ok
    srv.wait_log(r"Control Channel: " + want, 5)


def _crl_maker():
    spec = importlib.util.spec_from_file_location(
        "make_crls", os.path.join(HERE, "..", "data", "usage", "make-crls.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("revoked", [False, True])
def test_crl_with_non_der_dates(lab, client_cmd, tmp_path, revoked):
    # A CRL as a provider ships it: the revocation dates of its entries
    # are valid BER but not DER (a UTCTime without seconds, one with a zone
    # offset). OpenSSL reads it, GnuTLS refuses the whole CRL; Shimmer must
    # read (and enforce) it, never treat it as "nothing revoked".
    d = str(tmp_path)
    ca = make_ca(d)
    good_cert, good_key = make_server_cert(d, "good", ["keyUsage=digitalSignature",
                                                       "extendedKeyUsage=serverAuth"], 200)
    bad_cert, bad_key = make_server_cert(d, "bad", ["keyUsage=digitalSignature",
                                                    "extendedKeyUsage=serverAuth"], 201)
    m = _crl_maker()
    issuer, _ = m.subject_and_serial(m.cert_der(ca))
    _, bad_serial = m.subject_and_serial(m.cert_der(bad_cert))
    crl = m.crl(os.path.join(d, "ca.key"), issuer, m.utctime("200101000000Z"),
                m.gentime("21260101000000Z"),
                [(bad_serial, m.utctime("2001010000Z")),
                 (0x1234567890, m.utctime("2601010100+0100"))])
    crl_path = os.path.join(d, "crl.pem")
    with open(crl_path, "w") as f:
        f.write(crl)
    # GnuTLS indeed refuses it (else this test would prove nothing).
    r = subprocess.run(["certtool", "--crl-info", "--infile", crl_path], capture_output=True,
                       text=True)
    assert r.returncode != 0, r.stdout
    cert, key = (bad_cert, bad_key) if revoked else (good_cert, good_key)
    srv = lab.start_openvpn_server({"wrap": "tls-crypt", "cert": cert, "key": key})
    text = lab.client_config({"ca": ca}) + "crl-verify %s\nconnect-retry-max 1\n" % crl_path
    cli = lab.start_client(text, client_cmd, wait=not revoked)
    if not revoked:
        assert lab.ping_from_client(srv.tunnel_v4, count=1).ok
        return
    log = refused(lab, client_cmd, cli)
    if client_cmd.name == "shimmerd":
        assert re.search(r"is revoked by the CRL", log), log
