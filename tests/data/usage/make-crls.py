#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes CRLs whose time fields are valid BER but not DER (as some VPN
providers' CRLs are: UTCTime without seconds, GeneralizedTime with a
fraction), signed by the throwaway CA of make-fixtures.sh.

Usage: make-crls.py CA_KEY CA_CERT   (run by make-fixtures.sh)

The DER is built by hand here; only the signature comes from `openssl dgst`.
"""

import base64
import os
import subprocess
import sys
import tempfile


def tlv(tag, body):
    n = len(body)
    if n < 0x80:
        head = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, 'big')
        head = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + head + body


def seq(*parts):
    return tlv(0x30, b''.join(parts))


def integer(v):
    b = v.to_bytes(max(1, (v.bit_length() + 8) // 8), 'big')
    return tlv(0x02, b)


def oid(dotted):
    arcs = [int(x) for x in dotted.split('.')]
    out = bytes([40 * arcs[0] + arcs[1]])
    for a in arcs[2:]:
        chunk = [a & 0x7f]
        a >>= 7
        while a:
            chunk.append(0x80 | (a & 0x7f))
            a >>= 7
        out += bytes(reversed(chunk))
    return tlv(0x06, out)


def utctime(text):
    return tlv(0x17, text.encode())


def gentime(text):
    return tlv(0x18, text.encode())


def read_tlv(data, pos):
    """(tag, start of body, end of body) of the TLV at POS."""
    tag = data[pos]
    n = data[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7f
        n = int.from_bytes(data[pos:pos + k], 'big')
        pos += k
    return tag, pos, pos + n


def cert_der(path):
    with open(path) as f:
        lines = [l.strip() for l in f if l.strip() and not l.startswith('-----')]
    return base64.b64decode(''.join(lines))


def subject_and_serial(der):
    """The raw subject Name and the serial number of a certificate."""
    _, body, _ = read_tlv(der, 0)                # Certificate
    _, pos, end = read_tlv(der, body)            # TBSCertificate
    fields = []
    while pos < end:
        tag, b, e = read_tlv(der, pos)
        fields.append((tag, pos, b, e))
        pos = e
    if fields[0][0] == 0xa0:                     # [0] version
        fields = fields[1:]
    serial = int.from_bytes(der[fields[0][2]:fields[0][3]], 'big')
    subj = fields[4]                             # serial, sig, issuer, validity, subject
    return der[subj[1]:subj[3]], serial


def sign(key, tbs):
    with tempfile.TemporaryDirectory() as d:
        tp = os.path.join(d, 'tbs')
        sp = os.path.join(d, 'sig')
        with open(tp, 'wb') as f:
            f.write(tbs)
        subprocess.run(['openssl', 'dgst', '-sha256', '-sign', key, '-out', sp, tp], check=True)
        with open(sp, 'rb') as f:
            return f.read()


ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'))


def crl(key, issuer, this_update, next_update, revoked, mangle=False):
    entries = b''.join(seq(integer(s), when) for s, when in revoked)
    tbs = seq(integer(1), ECDSA_SHA256, issuer, this_update, next_update,
              seq(entries) if revoked else b'')
    sig = sign(key, tbs)
    if mangle:
        sig = sig[:-1] + bytes([sig[-1] ^ 1])
    der = seq(tbs, ECDSA_SHA256, tlv(0x03, b'\x00' + sig))
    b64 = base64.b64encode(der).decode()
    body = '\n'.join(b64[i:i + 64] for i in range(0, len(b64), 64))
    return '-----BEGIN X509 CRL-----\n%s\n-----END X509 CRL-----\n' % body


def main():
    key, ca = sys.argv[1], sys.argv[2]
    here = os.path.dirname(os.path.abspath(ca))
    issuer, _ = subject_and_serial(cert_der(ca))
    _, revoked_serial = subject_and_serial(cert_der(os.path.join(here, 'revoked.crt')))
    _, client_serial = subject_and_serial(cert_der(os.path.join(here, 'client.crt')))
    no_seconds = utctime('2601010000Z')            # YYMMDDHHMMZ: BER, not DER
    fraction = gentime('21260101000000.500Z')      # a fraction: fine in BER
    offset = utctime('2601010100+0100')            # a zone offset: BER only
    files = {
        # What some providers ship: the time fields without seconds.
        'crl-nonder.pem': crl(key, issuer, no_seconds, fraction,
                              [(revoked_serial, no_seconds), (0x1234567890, offset)]),
        # The same CRL with its signature broken.
        'crl-nonder-badsig.pem': crl(key, issuer, no_seconds, fraction,
                                     [(revoked_serial, no_seconds)], mangle=True),
        # Expired (nextUpdate 2020), non-DER too.
        'crl-nonder-expired.pem': crl(key, issuer, utctime('1901010000Z'),
                                      utctime('2001010000Z'), [(client_serial, no_seconds)]),
        # Revokes nothing.
        'crl-nonder-empty.pem': crl(key, issuer, no_seconds, fraction, []),
    }
    for name, text in files.items():
        with open(os.path.join(here, name), 'w') as f:
            f.write(text)


if __name__ == '__main__':
    main()
