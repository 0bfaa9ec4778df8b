#!/usr/bin/env bash
# Compile the tool policy to WebAssembly for AUTHZ_POLICY_MODE=wasm (and the equivalence test).
# Output: .local/policy/policy.wasm (+ data.json). Usage: infra/policy/build-wasm.sh [OPA_BIN]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
opa="${1:-${OPA_BIN:-$root/.local/bin/opa}}"
[ -x "$opa" ] || opa="$(command -v opa || true)"
[ -n "$opa" ] || { echo "build-wasm: no opa binary (run infra/local/install or set OPA_BIN)" >&2; exit 1; }
out="$root/.local/policy"
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# The whole policy folder (tests left out); only what tool_policy/allow reaches is compiled.
"$opa" build -t wasm -e tool_policy/allow --ignore "*_test.rego" -o "$tmp/bundle.tar.gz" "$root/infra/policy"
tar -xzf "$tmp/bundle.tar.gz" -C "$tmp" /policy.wasm /data.json 2>/dev/null || tar -xzf "$tmp/bundle.tar.gz" -C "$tmp"
# Replace atomically so a running authz never reads a half-written file.
cp "$tmp/policy.wasm" "$out/policy.wasm.tmp" && mv "$out/policy.wasm.tmp" "$out/policy.wasm"
if [ -f "$tmp/data.json" ]; then cp "$tmp/data.json" "$out/data.json.tmp" && mv "$out/data.json.tmp" "$out/data.json"; fi
echo "build-wasm: $out/policy.wasm"
