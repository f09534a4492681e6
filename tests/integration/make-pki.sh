#!/usr/bin/env bash
# Writes a throwaway PKI for the TLS tests into DIR: ca.pem/ca.key, server.pem/server.key
# (CN localhost, SAN IP:127.0.0.1 and DNS:localhost), client.pem/client.key (CN ops-client,
# clientAuth), and other-client.pem/.key signed by a second CA the daemon does not trust.
set -euo pipefail
dir=$1
cd "$dir"
umask 077
subj() { echo "/O=sriovd tests/CN=$1"; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "$(subj test-ca)" \
  -keyout ca.key -out ca.pem 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "$(subj other-ca)" \
  -keyout other-ca.key -out other-ca.pem 2>/dev/null
issue() {  # name cn ca extensions
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$(subj "$2")" \
    -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$4" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days 2 -extfile "$1.ext" \
    -out "$1.pem" 2>/dev/null
}
issue server localhost ca "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth"
issue client ops-client ca "extendedKeyUsage=clientAuth"
issue other-client intruder other-ca "extendedKeyUsage=clientAuth"
chmod 0600 ./*.key
