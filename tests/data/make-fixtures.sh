#!/bin/sh
# Regenerates the throwaway test PKI and static keys in this directory.
# These keys protect nothing: they exist only so that tests have real,
# well-formed material. Run from anywhere: ./make-fixtures.sh
set -eu
cd "$(dirname "$0")"
days=36500
ext() { printf '%s\n' "$@" > ext.tmp; }

openssl ecparam -name prime256v1 -genkey -noout -out ca.key.tmp
openssl req -new -x509 -key ca.key.tmp -days $days -subj "/O=Shimmer Test/CN=Shimmer Test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.crt

mk() { # name cn eku
    openssl ecparam -name prime256v1 -genkey -noout -out "$1.key.ec"
    openssl pkcs8 -topk8 -nocrypt -in "$1.key.ec" -out "$1.key"
    rm -f "$1.key.ec"
    openssl req -new -key "$1.key" -subj "/O=Shimmer Test/CN=$2" -out "$1.csr"
    ext "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyAgreement" \
        "extendedKeyUsage=$3" "subjectAltName=DNS:$2"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key.tmp -CAcreateserial -days $days \
        -extfile ext.tmp -out "$1.crt"
    rm -f "$1.csr"
}
mk server server.shimmer.test serverAuth
mk client client.shimmer.test clientAuth
mk revoked revoked.shimmer.test clientAuth

# An encrypted PKCS#8 copy of the client key; passphrase in client-enc.pass.
printf 'shimmer-test\n' > client-enc.pass
openssl pkcs8 -topk8 -v2 aes-256-cbc -passout pass:shimmer-test -in client.key -out client-enc.key
# A traditional RSA (PKCS#1) key, for format coverage.
openssl genrsa -traditional -out rsa.key 2048 2>/dev/null
# PKCS#12 of the client, no password and with a password.
openssl pkcs12 -export -in client.crt -inkey client.key -certfile ca.crt -passout pass: -out client.p12
openssl pkcs12 -export -in client.crt -inkey client.key -certfile ca.crt -passout pass:shimmer-test \
    -out client-enc.p12
base64 -w 64 client.p12 > client.p12.b64

# A CRL revoking "revoked".
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
openssl ca -config ca.cnf.tmp -keyfile ca.key.tmp -cert ca.crt -gencrl -out crl.pem 2>/dev/null

openssl dhparam -dsaparam -out dh.pem 1024 2>/dev/null

openvpn --genkey tls-auth ta.key
openvpn --genkey tls-crypt tc.key
openvpn --genkey tls-crypt-v2-server tc-v2-server.key
openvpn --tls-crypt-v2 tc-v2-server.key --genkey tls-crypt-v2-client tc-v2-client.key

rm -rf ext.tmp ca.cnf.tmp ca.db.tmp ca.srl ca.key.tmp
