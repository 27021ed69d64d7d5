#!/usr/bin/env bash
# Writes a private CA (ca.pem) and a server certificate for 127.0.0.1 and localhost that
# it signed (srv.pem, srv.key) into DIR, for the HTTPS benchmarks. The server certificate
# is not a CA itself: WebPKI rules refuse a CA certificate as a server's own.
#
#   scripts/make-test-ca.sh DIR
set -euo pipefail
dir=$1
command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl >/dev/null; }
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=bench CA" \
  -addext basicConstraints=critical,CA:TRUE -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$dir/srv.key" -out "$dir/srv.csr" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$dir/ext"
openssl x509 -req -in "$dir/srv.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
  -days 2 -extfile "$dir/ext" -out "$dir/srv.pem" 2>/dev/null
