#!/usr/bin/env bash
# authz: compile infra/policy to WebAssembly (.local/policy/policy.wasm) for AUTHZ_POLICY_MODE=wasm and
# the wasm/server equivalence test. Skipped when the wasm is newer than every .rego file.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
wasm="$root/.local/policy/policy.wasm"
if [[ -f $wasm ]] && [[ -z $(find "$root/infra/policy" -name '*.rego' -newer "$wasm" -print -quit) ]]; then exit 0; fi
exec "$root/infra/policy/build-wasm.sh"
