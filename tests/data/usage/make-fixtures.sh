#!/bin/sh
# Regenerates the certificates that test the peer certificate usage checks
# (ns-cert-type, remote-cert-ku, remote-cert-eku, remote-cert-tls) and the
# CRL fixtures signed by the same throwaway CA. The CA key is deleted at the
# end: these certificates protect nothing. Run from anywhere.
set -eu
cd "$(dirname "$0")"
days=36500
ext() { printf '%s\n' "$@" > ext.tmp; }

openssl ecparam -name prime256v1 -genkey -noout -out ca.key.tmp
openssl req -new -x509 -key ca.key.tmp -days $days -subj "/O=Shimmer Test/CN=Shimmer Usage CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out ca.crt

serial=16
mk() { # name, then the extension lines
    name=$1
    shift
    serial=$((serial + 1))
    openssl ecparam -name prime256v1 -genkey -noout -out "$name.key.tmp"
    openssl req -new -key "$name.key.tmp" -subj "/O=Shimmer Test/CN=$name.shimmer.test" \
        -out "$name.csr.tmp"
    ext "basicConstraints=CA:FALSE" "$@"
    openssl x509 -req -in "$name.csr.tmp" -CA ca.crt -CAkey ca.key.tmp -set_serial $serial \
        -days $days -extfile ext.tmp -out "$name.crt" 2>/dev/null
    rm -f "$name.csr.tmp"
    rm -f "$name.key.tmp"
}
# Netscape certificate types only.
mk ns-server "nsCertType=server"
mk ns-client "nsCertType=client"
# No usage extension at all: OpenSSL's purpose check has nothing to refuse.
mk no-usage "subjectKeyIdentifier=hash"
# What easy-rsa writes for a server and a client.
mk server "keyUsage=digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth"
mk client "keyUsage=digitalSignature,keyAgreement" "extendedKeyUsage=clientAuth"
# A key usage no TLS server can use.
mk certsign-only "keyUsage=keyCertSign" "extendedKeyUsage=serverAuth"
# An old server certificate: Netscape says server, the EKU says client.
mk ns-server-eku-client "nsCertType=server" "extendedKeyUsage=clientAuth"
# Netscape says client, key usage and EKU say server.
mk ns-client-eku-server "nsCertType=client" "keyUsage=digitalSignature" \
    "extendedKeyUsage=serverAuth"
# An EKU only OpenSSL's name for it or the OID can match.
mk codesign "keyUsage=digitalSignature" "extendedKeyUsage=codeSigning"
# A client certificate the CRLs below revoke.
mk revoked "keyUsage=digitalSignature,keyAgreement" "extendedKeyUsage=clientAuth"

# A DER-correct CRL from OpenSSL revoking "revoked", and the hand-made
# non-DER ones (make-crls.py).
mkdir -p ca.db.tmp && : > ca.db.tmp/index.txt && echo 01 > ca.db.tmp/crlnumber
cat > ca.cnf.tmp <<CNF
[ca]
default_ca = d
[d]
database = ca.db.tmp/index.txt
crlnumber = ca.db.tmp/crlnumber
default_md = sha256
default_crl_days = $days
CNF
openssl ca -config ca.cnf.tmp -keyfile ca.key.tmp -cert ca.crt -revoke revoked.crt 2>/dev/null
openssl ca -config ca.cnf.tmp -keyfile ca.key.tmp -cert ca.crt -gencrl -out crl-der.pem 2>/dev/null
./make-crls.py ca.key.tmp ca.crt

rm -rf ext.tmp ca.key.tmp ca.srl ca.cnf.tmp ca.db.tmp
