#!/usr/bin/env bash
# Usage: make-cert.sh [OUTDIR]   (default: ./certs)
# Creates a throwaway CA (ca.pem / ca-key.pem) and a server certificate for
# IP 127.0.0.1 (+ DNS localhost) signed by it (cert.pem / key.pem).
# Clients trust ca.pem as a CA file; the server uses cert.pem + key.pem.
set -euo pipefail
OUT="${1:-./certs}"
mkdir -p "$OUT"
cd "$OUT"

openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
  -keyout ca-key.pem -out ca.pem \
  -subj "/CN=exo test OIDC provider CA (throwaway)" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

openssl req -newkey rsa:2048 -nodes -sha256 \
  -keyout key.pem -out server.csr \
  -subj "/CN=127.0.0.1" 2>/dev/null

cat > server.ext <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
EXT

openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
  -out cert.pem -days 825 -sha256 -extfile server.ext 2>/dev/null

rm -f server.csr server.ext ca.srl
openssl verify -CAfile ca.pem cert.pem >/dev/null
echo "wrote $(pwd)/{ca.pem,ca-key.pem,cert.pem,key.pem}"
