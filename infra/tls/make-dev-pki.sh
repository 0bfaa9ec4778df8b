#!/usr/bin/env bash
# A throw-away certificate authority and one certificate per service, for docker compose and for trying the
# Kubernetes manifests on a laptop. Production certificates come from your CA or cert-manager (docs/deployment.md).
#   infra/tls/make-dev-pki.sh [out-dir]      default .local/tls; existing files are kept (delete the folder to renew)
# Writes ca.pem (+ ca.key, the CA's key: keep it out of every image and secret), <svc>.pem and <svc>.key for
# auth authz secrets audit retention. Each certificate serves both ends of mutual TLS (serverAuth + clientAuth)
# and names the service as compose (auth), Kubernetes (soma-auth, soma-auth.soma.svc[.cluster.local]) and a
# laptop (localhost, 127.0.0.1) reach it. P-256 keys, 397 days (the CA: 5 years).
set -euo pipefail
OUT="${1:-.local/tls}"
SERVICES=(auth authz secrets audit retention)
DAYS="${SOMA_TLS_DAYS:-397}"
# The services run as uid 1000 in the image; compose bind-mounts secret files with their host owner and mode.
RUNTIME_UID="${SOMA_RUNTIME_UID:-1000}"

command -v openssl >/dev/null || { echo "make-dev-pki: openssl is required" >&2; exit 1; }
mkdir -p "$OUT"
umask 077

if [[ ! -f $OUT/ca.pem ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 1826 \
    -keyout "$OUT/ca.key" -out "$OUT/ca.pem" -subj "/O=Soma/CN=Soma development CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  echo "make-dev-pki: CA $OUT/ca.pem"
fi

for svc in "${SERVICES[@]}"; do
  [[ -f $OUT/$svc.pem && -f $OUT/$svc.key ]] && continue
  ext="$(mktemp)"
  cat >"$ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:$svc,DNS:soma-$svc,DNS:soma-$svc.soma.svc,DNS:soma-$svc.soma.svc.cluster.local,DNS:localhost,IP:127.0.0.1
EXT
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$OUT/$svc.key" -out "$OUT/$svc.csr" \
    -subj "/O=Soma/CN=$svc" 2>/dev/null
  openssl x509 -req -sha256 -in "$OUT/$svc.csr" -CA "$OUT/ca.pem" -CAkey "$OUT/ca.key" -CAcreateserial \
    -days "$DAYS" -out "$OUT/$svc.pem" -extfile "$ext" 2>/dev/null
  rm -f "$ext" "$OUT/$svc.csr"
  echo "make-dev-pki: $svc $OUT/$svc.pem"
done
rm -f "$OUT/ca.srl"

chmod 0644 "$OUT"/ca.pem "$OUT"/*.pem
chmod 0400 "$OUT"/ca.key
for svc in "${SERVICES[@]}"; do
  chmod 0400 "$OUT/$svc.key"
  # Readable by the service user only (root can hand it over; otherwise run: sudo chown 1000 <key>).
  if [[ $(id -u) -eq 0 ]]; then chown "$RUNTIME_UID" "$OUT/$svc.key"; fi
done
chmod 0755 "$OUT"
