#!/usr/bin/env bash
# npm start: install what is missing, start the local infrastructure and the five services on loopback.
# Services run in the background (logs in .local/logs/<svc>.log); `npm stop` stops everything.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$SOMA_ROOT"

ensure_node_modules
infra/local/up
build_all
prepare_runtime
mkdir -p .local/logs .local/run

declare -A HTTP_PORT=([auth]=20021 [authz]=20031 [secrets]=20041 [audit]=20051 [retention]=20061)
declare -A GRPC_PORT=([auth]=20020 [authz]=20030 [secrets]=20040 [audit]=20050 [retention]=20060)

service_alive() {
  local pidfile=".local/run/$1.pid"
  [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

for svc in "${SOMA_SERVICES[@]}"; do
  if service_alive "$svc"; then
    log "$svc already running (pid $(cat ".local/run/$svc.pid"))"
    continue
  fi
  (
    load_dev_env "$svc"
    exec setsid nohup node "dist/apps/$svc/src/main.js" >>".local/logs/$svc.log" 2>&1 </dev/null
  ) &
  echo $! >".local/run/$svc.pid"
done

failed=0
for svc in "${SOMA_SERVICES[@]}"; do
  port_var="${svc^^}_HTTP_PORT"
  port="${!port_var:-${HTTP_PORT[$svc]}}"
  ok=0
  for _ in $(seq 1 60); do
    if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then ok=1; break; fi
    service_alive "$svc" || break
    sleep 0.5
  done
  if [[ $ok -ne 1 ]]; then
    failed=1
    log "$svc did not come up; last lines of .local/logs/$svc.log:"
    tail -n 15 ".local/logs/$svc.log" >&2 || true
  fi
done

printf '\n%-10s %-22s %-30s\n' service gRPC HTTP
for svc in "${SOMA_SERVICES[@]}"; do
  g="${svc^^}_GRPC_PORT"; h="${svc^^}_HTTP_PORT"
  printf '%-10s %-22s %-30s\n' "$svc" "127.0.0.1:${!g:-${GRPC_PORT[$svc]}}" "http://127.0.0.1:${!h:-${HTTP_PORT[$svc]}}"
done
printf '\ninfrastructure:\n'
infra/local/status || true
printf '\nlogs: .local/logs/<service>.log   stop: npm stop\n'
exit "$failed"
