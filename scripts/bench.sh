#!/usr/bin/env bash
# npm run bench [-- --quick] [--only case,…] [--out dir] [--cpu-prof] …: every hot path beside its baseline.
# Starts what it needs (infrastructure, load generators, dist/), then bench/run.mjs starts each service
# as its own process on free ports. Results: bench/results/latest.{json,md}. See docs/performance.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SOMA_ROOT"

ensure_node_modules
infra/local/up
# ghz (gRPC load) through the infrastructure installer; vegeta (HTTP load, for the OPA/OpenFGA baselines)
# from the Go module proxy into the same ignored folder, pinned.
[[ -x .local/bin/ghz ]] || infra/local/install ghz
if [[ ! -x .local/bin/vegeta ]]; then
  log "installing vegeta (go install, into .local/bin)"
  GOBIN="$SOMA_ROOT/.local/bin" go install github.com/tsenart/vegeta/v12@v12.13.0
fi
command -v redis-benchmark >/dev/null || { log "redis-benchmark missing (Debian package redis-tools)"; exit 1; }
if [[ "${BENCH_SKIP_BUILD:-}" != 1 ]]; then build_all; fi
prepare_runtime
exec node bench/run.mjs "$@"
