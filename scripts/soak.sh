#!/usr/bin/env bash
# npm run soak: the long form of the soak (test/soak/soak.test.ts). Starts what is missing (infrastructure, build,
# topics, schema), then runs all five services as their own processes under mixed traffic at a steady rate for
# SOAK_SECONDS (default 300) on loopback, and stops by itself. Prints operation, event and RSS counts.
#   SOAK_SECONDS=600 SOAK_RATE=60 npm run soak
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SOMA_ROOT"

export SOAK_SECONDS="${SOAK_SECONDS:-300}"
export SOAK_RATE="${SOAK_RATE:-25}"
[[ "$SOAK_SECONDS" =~ ^[0-9]+$ && "$SOAK_SECONDS" -ge 10 ]] || { log "SOAK_SECONDS must be a whole number of seconds >= 10"; exit 2; }
[[ "$SOAK_RATE" =~ ^[0-9]+$ && "$SOAK_RATE" -ge 1 ]] || { log "SOAK_RATE must be a whole number of operations per second >= 1"; exit 2; }

ensure_node_modules
infra/local/up
build_all
prepare_runtime
log "soak: ${SOAK_SECONDS} s at ${SOAK_RATE} operations/s"
# The test sizes its own timeouts from SOAK_SECONDS; dist/ was just built.
SOMA_E2E_SKIP_BUILD=1 exec npx vitest run test/soak/soak.test.ts
