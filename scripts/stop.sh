#!/usr/bin/env bash
# npm stop: stop the five services, then the local infrastructure (`--services` stops only the services).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SOMA_ROOT"
for svc in "${SOMA_SERVICES[@]}"; do
  pidfile=".local/run/$svc.pid"
  [[ -f "$pidfile" ]] || continue
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && { log "$svc did not stop in 10 s; SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
  fi
  rm -f "$pidfile"
  log "$svc stopped"
done
[[ "${1:-}" == "--services" ]] || infra/local/down
