#!/usr/bin/env bash
# Validate the deployment artefacts offline (no Docker engine, no cluster, no schema download at run time):
#   1. docker-compose.yaml: loaded exactly as `docker compose config` does, by compose-go (interpolation,
#      merge keys, compose-spec JSON schema); also by `docker compose config` itself when the plugin exists.
#   2. infra/k8s: every Kustomize target rendered (kustomize) and checked against the Kubernetes 1.33 OpenAPI
#      schemas in strict mode (kubeconform; unknown or misspelt fields fail). The schemas are made once under
#      .local/k8s-schemas from the release's own OpenAPI document (the k8s.io/kubernetes Go module).
#   3. The policy tests (test/deploy): network isolation, secrets as files, hardening, probes, env names.
# Usage: scripts/validate-deploy.sh            everything (tools are installed on first use, then cached)
#        scripts/validate-deploy.sh --render-only   steps 1-2 and the JSON renderings the tests read
# Output: .local/deploy/{compose.json,k8s-<target>.yaml,k8s-<target>.json}
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

KUBECONFORM_VERSION=v0.7.0
KUSTOMIZE_VERSION=v5.7.1
K8S_VERSION=1.33.0
TARGETS=(base overlays/staging overlays/production)

BIN="$ROOT/.local/bin"
OUT="$ROOT/.local/deploy"
SCHEMAS="$ROOT/.local/k8s-schemas/v$K8S_VERSION-standalone-strict"
mkdir -p "$BIN" "$OUT"
export PATH="$BIN:$PATH"

log() { printf '[validate-deploy] %s\n' "$*"; }
die() { printf '[validate-deploy] FAILED: %s\n' "$*" >&2; exit 1; }

# A Go tool at a pinned version, installed once into .local/bin (the Go module proxy is reachable).
ensure_go_tool() {
  local name=$1 pkg=$2 version=$3 stamp="$BIN/.$1.version"
  if [[ -x $BIN/$name && -f $stamp && $(<"$stamp") == "$version" ]]; then return; fi
  command -v go >/dev/null || die "go is needed to install $name"
  log "installing $name $version"
  GOBIN="$BIN" GOFLAGS=-mod=mod go install "$pkg@$version"
  echo "$version" >"$stamp"
}

# compose-check is this repo's own Go program (test/deploy/compose-check); go build is incremental.
ensure_compose_check() {
  (cd test/deploy/compose-check && go build -o "$BIN/compose-check" .)
}

# Kubernetes JSON schemas from the OpenAPI document of the pinned Kubernetes release: the k8s.io/kubernetes Go
# module (api/openapi-spec/swagger.json) through the Go module proxy, converted once into one standalone,
# strict schema per kind (test/deploy/k8s-schemas.mjs, kubeconform's openapi2jsonschema rules).
ensure_schemas() {
  local stamp="k8s.io/kubernetes@v$K8S_VERSION $(sha256sum test/deploy/k8s-schemas.mjs | cut -c1-16)"
  [[ -f $SCHEMAS/.ready && $(<"$SCHEMAS/.ready") == "$stamp" ]] && return
  command -v go >/dev/null || die "go is needed to fetch the Kubernetes $K8S_VERSION OpenAPI document"
  log "preparing Kubernetes $K8S_VERSION schemas from k8s.io/kubernetes@v$K8S_VERSION"
  local dir
  dir="$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | node -e \
    'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const m=JSON.parse(s);if(m.Error)throw new Error(m.Error);console.log(m.Dir)})')" \
    || die "go mod download k8s.io/kubernetes@v$K8S_VERSION"
  rm -rf "$SCHEMAS" && mkdir -p "$SCHEMAS"
  local count
  count="$(node test/deploy/k8s-schemas.mjs "$dir/api/openapi-spec/swagger.json" "$SCHEMAS")" || die "schema conversion"
  log "$count kind schemas written to ${SCHEMAS#"$ROOT"/}"
  echo "$stamp" >"$SCHEMAS/.ready"
}

render_only=false
[[ ${1:-} == --render-only ]] && render_only=true

start=$SECONDS
ensure_go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"
ensure_go_tool kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION"
ensure_compose_check
ensure_schemas

# ---- 1. docker-compose.yaml
if docker compose version >/dev/null 2>&1; then
  docker compose -f docker-compose.yaml config --quiet || die "docker compose config refused docker-compose.yaml"
  log "docker compose config: ok"
else
  log "docker compose plugin not installed: compose-go (the library behind it) validates instead"
fi
compose-check compose docker-compose.yaml >"$OUT/compose.json" || die "docker-compose.yaml does not load (see above)"
log "docker-compose.yaml: valid compose-spec ($(grep -c '"image"' "$OUT/compose.json") services)"

# ---- 2. Kubernetes manifests
for target in "${TARGETS[@]}"; do
  name="${target##*/}"
  kustomize build "infra/k8s/$target" >"$OUT/k8s-$name.yaml" || die "kustomize build infra/k8s/$target"
  kubeconform -strict -summary -kubernetes-version "$K8S_VERSION" \
    -schema-location "file://$SCHEMAS/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
    "$OUT/k8s-$name.yaml" || die "infra/k8s/$target does not match the Kubernetes $K8S_VERSION schemas"
  compose-check yaml2json "$OUT/k8s-$name.yaml" >"$OUT/k8s-$name.json"
done
log "rendered and schema-checked in $((SECONDS - start))s"

$render_only && exit 0

# ---- 3. policy tests on the renderings
SOMA_DEPLOY_RENDERED=1 npx vitest run --project integration test/deploy
log "all deployment checks passed in $((SECONDS - start))s"
