# Shared by scripts/*.sh. Sourced, not run.
SOMA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SOMA_SERVICES=(auth authz secrets audit retention)

log() { printf '\033[1m[soma]\033[0m %s\n' "$*" >&2; }

# node_modules present and matching the lock file, else a clean install.
ensure_node_modules() {
  if [[ ! -d "$SOMA_ROOT/node_modules" || "$SOMA_ROOT/package-lock.json" -nt "$SOMA_ROOT/node_modules/.package-lock.json" ]]; then
    log "installing npm dependencies (npm ci)"
    (cd "$SOMA_ROOT" && npm ci --no-audit --no-fund)
  fi
}

# Build everything (services, libs, CLI) into dist/.
build_all() {
  log "building (tsc)"
  (cd "$SOMA_ROOT" && npm run --silent build)
}

# Load a service's dev.env (KEY=VALUE lines) into the environment of the caller, without overriding what is set.
load_dev_env() {
  local file="$SOMA_ROOT/apps/$1/dev.env" line key value
  [[ -f "$file" ]] || return 0
  while IFS= read -r line || [[ -n "$line" ]]; do
    [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
    key="${line%%=*}"; value="${line#*=}"
    [[ "$key" =~ ^[A-Z_][A-Z0-9_]*$ ]] || { log "ignoring malformed line in $file"; continue; }
    [[ -n "${!key+x}" ]] || export "$key=$value"
  done < "$file"
}

# Prepare what services and tests need on the running infrastructure: topics, schema, policies.
prepare_runtime() {
  (cd "$SOMA_ROOT" && node scripts/dev-secrets.mjs)
  (cd "$SOMA_ROOT" && node bin/soma.js kafka ensure-topics >/dev/null)
  if node "$SOMA_ROOT/bin/soma.js" --help | grep -q '^  db '; then
    (cd "$SOMA_ROOT" && set -a && load_dev_env audit && set +a && node bin/soma.js db migrate)
  fi
  local hook
  for hook in "$SOMA_ROOT"/scripts/prepare.d/*.sh; do
    [[ -e "$hook" ]] || continue
    log "prepare: $(basename "$hook")"
    bash "$hook"
  done
}
