#!/usr/bin/env bash
# Dependency audit of the production dependency tree: npm audit --omit=dev --audit-level=high.
# Exit 0: no high or critical advisory. 1: at least one (listed). 75: the audit could not be obtained (the
# registry's advisory endpoint refused or was unreachable) -- reported as NOT CHECKED; a failure instead when
# SOMA_REQUIRE_DEP_AUDIT=1. Why: docs/adr/0604-dependency-audit.md. Registry: npm's own (npm_config_registry).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
json="$(npm audit --omit=dev --audit-level=high --json 2>/dev/null)"
printf '%s' "$json" | node -e '
let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
  const say = (m) => console.log(`[audit-deps] ${m}`);
  let r;
  try { r = JSON.parse(s); } catch { r = { error: { summary: "npm audit printed no JSON" } }; }
  const counts = r.metadata && r.metadata.vulnerabilities;
  if (r.error || !counts) {
    const why = String(r.message || (r.error && (r.error.summary || r.error.code)) || "no audit report").split("\n")[0];
    say(`dependency audit NOT CHECKED: ${why}`);
    process.exit(process.env.SOMA_REQUIRE_DEP_AUDIT === "1" ? 1 : 75);
  }
  const bad = Object.values(r.vulnerabilities || {}).filter((v) => v.severity === "high" || v.severity === "critical");
  for (const v of bad) {
    const via = (v.via || []).map((x) => (typeof x === "string" ? `via ${x}` : `${x.title} ${x.url || ""}`.trim())).join("; ");
    say(`${v.severity.toUpperCase()} ${v.name} ${v.range || ""}: ${via}${v.fixAvailable ? " (fix available)" : ""}`);
  }
  say(`production dependencies: ${counts.critical} critical, ${counts.high} high, ${counts.moderate} moderate, ${counts.low} low`);
  process.exit(bad.length ? 1 : 0);
});'
