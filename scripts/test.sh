#!/usr/bin/env bash
# npm test: the same provisioning as npm start (infrastructure, build, topics, schema), then every suite:
# type check, lint (module boundaries), Rego tests, unit tests, integration tests against the real servers.
# Ends with one line `N passed, N failed` summing every test that ran. The infrastructure is left running.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SOMA_ROOT"
mkdir -p .local/test-results
rm -f .local/test-results/*.json

ensure_node_modules || exit 1
infra/local/up || { log "infrastructure did not start"; echo "0 passed, 1 failed"; exit 1; }
build_all || { echo "0 passed, 1 failed"; exit 1; }
prepare_runtime || { log "preparing topics/schema/policies failed"; echo "0 passed, 1 failed"; exit 1; }

passed=0; failed=0
step() { # a named gate that counts as one test
  local name="$1"; shift
  log "check: $name"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); log "FAILED: $name"; fi
}
step "typecheck" npx tsc -p tsconfig.json
step "lint (module boundaries, domain purity)" bash -c 'npx nx show projects >/dev/null && npx eslint apps libs test'
# Dependency audit (npm audit --omit=dev --audit-level=high): counted like a step when npm's advisory service
# answers; exit 75 = the audit could not be obtained, reported NOT CHECKED and not counted (docs/adr/0604).
log "check: dependency audit"; scripts/audit-deps.sh; rc=$?
if ((rc == 0)); then passed=$((passed + 1)); elif ((rc != 75)); then failed=$((failed + 1)); log "FAILED: dependency audit"; fi

if [[ -d infra/policy ]] && compgen -G "infra/policy/*_test.rego" >/dev/null; then
  log "rego: opa test infra/policy"
  .local/bin/opa test infra/policy --format=json >.local/test-results/opa.json 2>.local/test-results/opa.err
  read -r p f < <(node -e '
    const r = JSON.parse(require("fs").readFileSync(".local/test-results/opa.json","utf8") || "[]");
    const fail = r.filter(t => t.fail || t.error).length;
    for (const t of r.filter(t => t.fail || t.error)) console.error(`rego FAIL ${t.package}.${t.name}`);
    console.log(r.length - fail, fail);' 2>&2 || echo "0 1")
  passed=$((passed + p)); failed=$((failed + f))
fi

log "vitest: unit and integration"
npx vitest run --reporter=default --reporter=json --outputFile.json=.local/test-results/vitest.json
read -r p f < <(node -e '
  try {
    const r = JSON.parse(require("fs").readFileSync(".local/test-results/vitest.json","utf8"));
    // A file whose setup failed counts as one more failure: its tests did not run (they show as skipped).
    const broken = r.testResults.filter(t => t.status === "failed" && !t.assertionResults.some(a => a.status === "failed")).length;
    // The suite has no skipped tests by rule: one that is skipped or todo (outside a broken file) counts as failed.
    const skipped = r.testResults.filter(t => t.status !== "failed").flatMap(t => t.assertionResults)
      .filter(a => a.status === "skipped" || a.status === "pending" || a.status === "todo");
    for (const a of skipped) console.error(`skipped (counted as failed): ${a.fullName}`);
    console.log(r.numPassedTests, r.numFailedTests + broken + skipped.length);
  } catch { console.log(0, 1); }')
passed=$((passed + p)); failed=$((failed + f))

echo "${passed} passed, ${failed} failed"
[[ $failed -eq 0 ]]
