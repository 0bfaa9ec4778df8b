# shellcheck shell=bash
# infra/local/lib.sh: shared helpers for infra/local/{up,down,status,logs,install}.
# Sourced by those scripts, never executed. Needs bash >= 4.4, Linux /proc, procps, util-linux.
#
# Every server runs on loopback from the repo's ignored .local/ folder:
#   .local/bin            go-installed binaries (opa, openfga, ghz)
#   .local/kafka/libs     Kafka + log4j jars copied from Maven Central (infra/kafka/pom.xml)
#   .local/data/<server>  data (the working directory of each server process)
#   .local/logs/<s>.log   logs
#   .local/run/<s>.pid    pid files (postgres' unix socket lives in .local/run/postgres/)
# A process belongs to us when its pid is alive, its command name is the expected one and its
# working directory is .local/data/<server>; that is how `up` twice does nothing and how
# `down` finds a server whose pid file was lost.

# ---------------------------------------------------------------- layout
SOMA_ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)"
LOCAL_DIR="$SOMA_ROOT/.local"
BIN_DIR="$LOCAL_DIR/bin"
DATA_ROOT="$LOCAL_DIR/data"
LOG_DIR="$LOCAL_DIR/logs"
RUN_DIR="$LOCAL_DIR/run"
KAFKA_HOME="$LOCAL_DIR/kafka"
KAFKA_LIBS="$KAFKA_HOME/libs"
KAFKA_POM="$SOMA_ROOT/infra/kafka/pom.xml"
KAFKA_TEMPLATE="$SOMA_ROOT/infra/kafka/server.properties.template"
KAFKA_LOG4J="$SOMA_ROOT/infra/kafka/log4j2.properties"

ALL_SERVERS=(postgres redis kafka opa openfga)
ALL_TOOLS=(postgres redis kafka opa openfga ghz kcat)

# ---------------------------------------------------------------- pinned versions
# (Kafka/log4j are also pinned in infra/kafka/pom.xml; keep both in step.)
POSTGRES_MAJOR=15
KAFKA_VERSION=4.1.1
KAFKA_SCALA=2.13
LOG4J_VERSION=2.25.3
OPA_VERSION=v1.22.4
OPA_MODULE=github.com/open-policy-agent/opa
OPA_PKG=$OPA_MODULE
OPENFGA_VERSION=v1.22.1
OPENFGA_MODULE=github.com/openfga/openfga
OPENFGA_PKG=$OPENFGA_MODULE/cmd/openfga
GHZ_VERSION=v0.93.0
GHZ_MODULE=github.com/bojand/ghz
GHZ_PKG=$GHZ_MODULE/cmd/ghz

# ---------------------------------------------------------------- settings (env overridable)
LOCAL_HOST=127.0.0.1
POSTGRES_PORT="${POSTGRES_PORT:-5432}"
POSTGRES_USER="${POSTGRES_USER:-soma}"
POSTGRES_PASSWORD="${POSTGRES_PASSWORD:-soma-local-dev-password}"
POSTGRES_DB="${POSTGRES_DB:-soma}"
POSTGRES_OPENFGA_DB="${POSTGRES_OPENFGA_DB:-openfga}"
POSTGRES_BIN_DIR="${POSTGRES_BIN_DIR:-/usr/lib/postgresql/$POSTGRES_MAJOR/bin}"
REDIS_PORT="${REDIS_PORT:-6379}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
OPA_PORT="${OPA_PORT:-20009}"
OPA_POLICY_DIR="${OPA_POLICY_DIR:-$SOMA_ROOT/infra/policy}"
OPA_LOG_LEVEL="${OPA_LOG_LEVEL:-info}"
OPA_REQUEST_LOG_LEVEL="${OPA_REQUEST_LOG_LEVEL:-debug}"  # access logs only show when <= OPA_LOG_LEVEL
OPENFGA_HTTP_PORT="${OPENFGA_HTTP_PORT:-8080}"
OPENFGA_GRPC_PORT="${OPENFGA_GRPC_PORT:-8081}"
OPENFGA_METRICS_PORT="${OPENFGA_METRICS_PORT:-2112}"   # "off" disables the metrics listener
OPENFGA_DATASTORE="${OPENFGA_DATASTORE:-memory}"       # memory | postgres
OPENFGA_LOG_LEVEL="${OPENFGA_LOG_LEVEL:-info}"
INFRA_STOP_TIMEOUT="${INFRA_STOP_TIMEOUT:-30}"          # seconds of graceful stop before SIGKILL
# INFRA_UP_TIMEOUT (seconds) overrides every server's start-up bound below.
declare -A UP_TIMEOUT=([postgres]=60 [redis]=30 [kafka]=120 [opa]=60 [openfga]=60)

PG_SOCKET_DIR="$RUN_DIR/postgres"

# ---------------------------------------------------------------- messages
info() { printf '[infra] %s\n' "$*" >&2; }
warn() { printf '[infra] WARNING: %s\n' "$*" >&2; }
err()  { printf '[infra] ERROR: %s\n' "$*" >&2; }
die()  { err "$@"; exit 1; }

have() { command -v "$1" >/dev/null 2>&1; }
is_root() { [[ $EUID -eq 0 ]]; }

# Print the last lines of a log file, indented, to stderr.
show_log_tail() {
  local file=$1 n=${2:-40}
  if [[ -s $file ]]; then
    printf '[infra] --- last %s lines of %s ---\n' "$n" "$file" >&2
    tail -n "$n" -- "$file" | sed 's/^/    | /' >&2
    printf '[infra] ---\n' >&2
  else
    printf '[infra] (%s is empty or missing)\n' "$file" >&2
  fi
}

# ---------------------------------------------------------------- validation
check_port_value() {
  local name=$1 value=$2
  if ! [[ $value =~ ^[0-9]{1,5}$ ]] || ((10#$value < 1 || 10#$value > 65535)); then
    die "$name must be a TCP port number (1-65535), got '$value'"
  fi
}

validate_settings() {
  local v
  for v in POSTGRES_PORT REDIS_PORT KAFKA_PORT KAFKA_CONTROLLER_PORT OPA_PORT OPENFGA_HTTP_PORT OPENFGA_GRPC_PORT; do
    check_port_value "$v" "${!v}"
  done
  [[ $OPENFGA_METRICS_PORT == off ]] || check_port_value OPENFGA_METRICS_PORT "$OPENFGA_METRICS_PORT"
  case $OPENFGA_DATASTORE in memory | postgres) ;; *) die "OPENFGA_DATASTORE must be 'memory' or 'postgres', got '$OPENFGA_DATASTORE'" ;; esac
  [[ $INFRA_STOP_TIMEOUT =~ ^[0-9]+$ ]] || die "INFRA_STOP_TIMEOUT must be a number of seconds"
  if [[ -n ${INFRA_UP_TIMEOUT:-} ]]; then
    [[ $INFRA_UP_TIMEOUT =~ ^[0-9]+$ ]] || die "INFRA_UP_TIMEOUT must be a number of seconds"
    local s
    for s in "${ALL_SERVERS[@]}"; do UP_TIMEOUT[$s]=$INFRA_UP_TIMEOUT; done
  fi
  [[ $SOMA_ROOT != *[$'\n"\'']* ]] || die "the repo path must not contain quotes or newlines: $SOMA_ROOT"
  [[ $POSTGRES_PASSWORD != *"'"* ]] || die "POSTGRES_PASSWORD must not contain a single quote"
}

# Parse server names into the global array SELECTED (canonical order, no duplicates).
# Default: every server.
select_servers() {
  local -A want=()
  local a s
  for a in "$@"; do
    [[ $a == all ]] && { for s in "${ALL_SERVERS[@]}"; do want[$s]=1; done; continue; }
    local ok=0
    for s in "${ALL_SERVERS[@]}"; do [[ $a == "$s" ]] && ok=1; done
    ((ok)) || die "unknown server '$a' (known: ${ALL_SERVERS[*]})"
    want[$a]=1
  done
  SELECTED=()
  for s in "${ALL_SERVERS[@]}"; do
    if (($# == 0)) || [[ -n ${want[$s]:-} ]]; then SELECTED+=("$s"); fi
  done
}

ensure_layout() {
  mkdir -p "$BIN_DIR" "$DATA_ROOT" "$LOG_DIR" "$RUN_DIR" "$KAFKA_HOME"
}

# Serialise up/down/install between concurrent callers. fd 9 must NOT leak into the servers:
# every launch below closes it (9>&-), otherwise a server would hold the lock forever.
acquire_lock() {
  ensure_layout
  exec 9>"$RUN_DIR/.lock"
  if ! flock -n 9; then
    info "another infra/local command is running; waiting for it (up to 15 min)"
    flock -w 900 9 || die "could not get $RUN_DIR/.lock"
  fi
}

# ---------------------------------------------------------------- installing packages
APT_UPDATED=0
apt_install() {
  is_root || die "need root to run: apt-get install $* (or install those packages yourself)"
  if ((APT_UPDATED == 0)); then
    info "apt-get update"
    apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || die "apt-get update failed"
    APT_UPDATED=1
  fi
  info "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "$@" >&2 \
    || die "apt-get install $* failed"
}

ensure_cmd() { # ensure_cmd <command> <apt package>
  have "$1" || apt_install "$2"
  have "$1" || die "'$1' still missing after installing $2"
}

# The module version a Go binary was built from ("" when unknown).
go_bin_version() {
  local bin=$1 module=$2
  have go || return 0
  go version -m "$bin" 2>/dev/null | awk -v m="$module" '$1 == "mod" && $2 == m { print $3; exit }'
}

go_install() { # go_install <name> <package> <module> <version>
  local name=$1 pkg=$2 module=$3 version=$4 bin="$BIN_DIR/$1" have_v=
  if [[ -x $bin ]]; then
    if ! have go; then
      info "$name: using $bin (no Go toolchain to check its version)"
      return 0
    fi
    have_v=$(go_bin_version "$bin" "$module")
    [[ $have_v == "$version" ]] && return 0
    info "$name: $bin is ${have_v:-of unknown version}, want $version: reinstalling"
  fi
  have go || die "$name: the Go toolchain is needed to build $name $version (go install). Install Go >= 1.24 (Debian 12's golang-go is too old) and retry."
  ensure_layout
  local log="$LOG_DIR/install-$name.log" t0=$SECONDS
  info "$name: go install $pkg@$version -> $BIN_DIR (log $log; minutes on a cold Go cache)"
  if ! GOBIN="$BIN_DIR" go install "$pkg@$version" >"$log" 2>&1; then
    show_log_tail "$log"
    die "$name: go install failed"
  fi
  have_v=$(go_bin_version "$bin" "$module")
  [[ $have_v == "$version" ]] || die "$name: installed binary reports version '${have_v}', expected $version"
  info "$name: installed $version in $((SECONDS - t0))s"
}

install_postgres() {
  if [[ ! -x $POSTGRES_BIN_DIR/pg_ctl || ! -x $POSTGRES_BIN_DIR/initdb ]]; then
    apt_install postgresql
  fi
  local b
  for b in initdb pg_ctl postgres pg_isready psql; do
    [[ -x $POSTGRES_BIN_DIR/$b ]] || die "postgres: $POSTGRES_BIN_DIR/$b not found (PostgreSQL $POSTGRES_MAJOR expected; set POSTGRES_BIN_DIR)"
  done
}

install_redis() {
  if ! have redis-server || ! have redis-cli; then apt_install redis-server; fi
  if ! have redis-server || ! have redis-cli; then die "redis: redis-server/redis-cli missing after apt-get install"; fi
}

kafka_runtime_stamp() {
  printf 'kafka_%s-%s log4j-%s pom-sha256=%s\n' "$KAFKA_SCALA" "$KAFKA_VERSION" "$LOG4J_VERSION" \
    "$(sha256sum "$KAFKA_POM" | cut -d' ' -f1)"
}

install_kafka() {
  ensure_cmd java default-jre-headless
  local stamp_file="$KAFKA_LIBS/.soma-runtime" want
  want=$(kafka_runtime_stamp)
  if [[ -f $stamp_file && $(cat "$stamp_file") == "$want" \
    && -f $KAFKA_LIBS/kafka_$KAFKA_SCALA-$KAFKA_VERSION.jar && -f $KAFKA_LIBS/log4j-core-$LOG4J_VERSION.jar ]]; then
    return 0
  fi
  ensure_cmd mvn maven
  ensure_layout
  local tmp="$KAFKA_HOME/libs.tmp" log="$LOG_DIR/install-kafka.log" t0=$SECONDS
  rm -rf -- "$tmp"
  info "kafka: mvn dependency:copy-dependencies (Kafka $KAFKA_VERSION, log4j $LOG4J_VERSION) -> $KAFKA_LIBS (log $log)"
  if ! mvn -B -q -Dstyle.color=never -f "$KAFKA_POM" dependency:copy-dependencies -DoutputDirectory="$tmp" >"$log" 2>&1; then
    show_log_tail "$log"
    die "kafka: Maven could not fetch the broker jars"
  fi
  local j
  for j in "kafka_$KAFKA_SCALA-$KAFKA_VERSION.jar" "kafka-clients-$KAFKA_VERSION.jar" "log4j-core-$LOG4J_VERSION.jar" \
    "log4j-slf4j2-impl-$LOG4J_VERSION.jar"; do
    [[ -f $tmp/$j ]] || die "kafka: $j missing from the copied dependencies (see $log)"
  done
  printf '%s\n' "$want" >"$tmp/.soma-runtime"
  rm -rf -- "$KAFKA_LIBS"
  mv -- "$tmp" "$KAFKA_LIBS"
  info "kafka: $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars installed in $((SECONDS - t0))s"
}

install_opa()     { go_install opa "$OPA_PKG" "$OPA_MODULE" "$OPA_VERSION"; }
install_openfga() { go_install openfga "$OPENFGA_PKG" "$OPENFGA_MODULE" "$OPENFGA_VERSION"; }
install_ghz()     { go_install ghz "$GHZ_PKG" "$GHZ_MODULE" "$GHZ_VERSION"; }
install_kcat()    { ensure_cmd kcat kcat; }

install_tool() {
  case $1 in
    postgres | redis | kafka | opa | openfga | ghz | kcat) "install_$1" ;;
    *) die "unknown tool '$1' (known: ${ALL_TOOLS[*]})" ;;
  esac
  # health checks of opa/openfga use curl
  case $1 in opa | openfga) ensure_cmd curl curl ;; esac
}

# ---------------------------------------------------------------- processes
pid_file() { printf '%s/%s.pid' "$RUN_DIR" "$1"; }
data_dir() { printf '%s/%s' "$DATA_ROOT" "$1"; }
log_file() { printf '%s/%s.log' "$LOG_DIR" "$1"; }

expected_comm() {
  case $1 in
    postgres) echo postgres ;;
    redis) echo redis-server ;;
    kafka) echo java ;;
    opa) echo opa ;;
    openfga) echo openfga ;;
  esac
}

pid_alive() {
  local p=${1:-} st
  [[ $p =~ ^[0-9]+$ ]] || return 1
  st=$(ps -o stat= -p "$p" 2>/dev/null) || return 1
  [[ -n $st && $st != Z* ]]
}

# True when pid $2 is server $1's main process (alive, right command, cwd = its data dir).
owns_pid() {
  local s=$1 p=$2 comm cwd
  pid_alive "$p" || return 1
  comm=$(cat "/proc/$p/comm" 2>/dev/null) || return 1
  [[ $comm == "$(expected_comm "$s")" ]] || return 1
  cwd=$(readlink "/proc/$p/cwd" 2>/dev/null) || return 1
  [[ $cwd == "$(data_dir "$s")" ]]
}

read_pid_file() {
  local f p
  f=$(pid_file "$1")
  [[ -s $f ]] || return 1
  p=$(head -n1 -- "$f" | tr -dc '0-9')
  [[ -n $p ]] && printf '%s\n' "$p"
}

# Print the pid of server $1 if it runs (re-creating a lost pid file), else return 1.
find_pid() {
  local s=$1 p d comm cwd sid
  if p=$(read_pid_file "$s") && owns_pid "$s" "$p"; then
    printf '%s\n' "$p"
    return 0
  fi
  if [[ $s == postgres ]]; then
    local pmfile
    pmfile="$(data_dir postgres)/postmaster.pid"
    p=$(head -n1 -- "$pmfile" 2>/dev/null | tr -dc '0-9') || true
    if [[ -n $p ]] && owns_pid postgres "$p"; then
      printf '%s\n' "$p" >"$(pid_file postgres)"
      printf '%s\n' "$p"
      return 0
    fi
    return 1
  fi
  comm=$(expected_comm "$s")
  d=$(data_dir "$s")
  for p in $(pgrep -x -- "$comm" 2>/dev/null); do
    cwd=$(readlink "/proc/$p/cwd" 2>/dev/null) || continue
    [[ $cwd == "$d" ]] || continue
    sid=$(ps -o sid= -p "$p" 2>/dev/null | tr -dc '0-9')
    [[ $sid == "$p" ]] || continue # the session leader we started, not a helper
    printf '%s\n' "$p" >"$(pid_file "$s")"
    printf '%s\n' "$p"
    return 0
  done
  return 1
}

# Pids of $1 and its descendants (postgres children call setsid(), so the group is not enough).
tree_pids() {
  local p=$1 c
  printf '%s\n' "$p"
  for c in $(pgrep -P "$p" 2>/dev/null); do tree_pids "$c"; done
}

# Which of the given pids are still alive (same command name as recorded)?
alive_of() { # alive_of <pid:comm>...
  local e p comm
  for e in "$@"; do
    p=${e%%:*}
    comm=${e#*:}
    pid_alive "$p" && [[ $(cat "/proc/$p/comm" 2>/dev/null) == "$comm" ]] && printf '%s ' "$p"
  done
  # our servers lead their process group; anything else left in it counts too (zombies do not:
  # pid 1 reaps orphans on its own schedule)
  for p in $(pgrep -g "${1%%:*}" 2>/dev/null); do pid_alive "$p" && printf '%s ' "$p"; done
  return 0
}

wait_gone() { # wait_gone <seconds> <pid:comm>...
  local deadline=$((SECONDS + $1))
  shift
  while [[ -n $(alive_of "$@") ]]; do
    ((SECONDS >= deadline)) && return 1
    sleep 0.2
  done
}

# Graceful stop of server $1 whose main pid $2 leads its process group: SIGTERM to the group,
# then SIGKILL to the group and to every recorded descendant after INFRA_STOP_TIMEOUT seconds.
stop_group() {
  local s=$1 pid=$2 p
  local -a procs=()
  for p in $(tree_pids "$pid"); do procs+=("$p:$(cat "/proc/$p/comm" 2>/dev/null || echo '?')"); done
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$INFRA_STOP_TIMEOUT" "${procs[@]}"; then
    warn "$s (pid $pid) still running after ${INFRA_STOP_TIMEOUT}s: SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || true
    for p in $(alive_of "${procs[@]}"); do kill -KILL "$p" 2>/dev/null || true; done
    wait_gone 10 "${procs[@]}" || { err "$s: processes survive SIGKILL: $(alive_of "${procs[@]}")"; return 1; }
  fi
}

# Start "$@" detached in its own session, cwd $2, output appended to log $3; pid saved for server $1.
# setsid does not fork here (the background child is never a group leader), so $! is the server.
launch() {
  local s=$1 cwd=$2 log=$3
  shift 3
  (cd -- "$cwd" && exec setsid "$@") </dev/null >>"$log" 2>&1 9>&- &
  local p=$!
  printf '%s\n' "$p" >"$(pid_file "$s")"
  LAUNCHED_PID=$p
}

# ---------------------------------------------------------------- ports
# Print "pid/command" of whatever listens on TCP port $1 (any address), nothing if free.
port_owner() {
  local port=$1 line
  line=$(ss -Hltnp "( sport = :$port )" 2>/dev/null | head -n1) || true
  [[ -n $line ]] || return 1
  if [[ $line =~ users:\(\(\"([^\"]+)\",pid=([0-9]+) ]]; then
    printf '%s/%s\n' "${BASH_REMATCH[2]}" "${BASH_REMATCH[1]}"
  else
    printf 'unknown\n'
  fi
}

# shellcheck disable=SC2016 # $1/$2 expand in the child bash, on purpose
tcp_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null; }

server_ports() {
  case $1 in
    postgres) echo "$POSTGRES_PORT" ;;
    redis) echo "$REDIS_PORT" ;;
    kafka) echo "$KAFKA_PORT $KAFKA_CONTROLLER_PORT" ;;
    opa) echo "$OPA_PORT" ;;
    openfga)
      echo "$OPENFGA_HTTP_PORT $OPENFGA_GRPC_PORT"
      [[ $OPENFGA_METRICS_PORT == off ]] || echo "$OPENFGA_METRICS_PORT"
      ;;
  esac
}

env_var_of_port() {
  local port=$1 v
  for v in POSTGRES_PORT REDIS_PORT KAFKA_PORT KAFKA_CONTROLLER_PORT OPA_PORT OPENFGA_HTTP_PORT OPENFGA_GRPC_PORT OPENFGA_METRICS_PORT; do
    [[ ${!v} == "$port" ]] && { echo "$v"; return; }
  done
  echo PORT
}

# Fail clearly when a port server $1 needs is already taken by someone else.
check_ports_free() {
  local s=$1 port owner cwd pid var msg rc=0
  for port in $(server_ports "$s"); do
    owner=$(port_owner "$port") || continue
    var=$(env_var_of_port "$port")
    msg="$s: 127.0.0.1:$port is already in use by ${owner} (not a server started from $LOCAL_DIR)."
    pid=${owner%%/*}
    if [[ $s == postgres && $owner == */postgres* ]]; then
      cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null || true)
      if [[ $cwd == /var/lib/postgresql/* ]]; then
        msg+=" It is the Debian system cluster (data $cwd): stop it (pg_lsclusters; pg_ctlcluster <version> <name> stop) or"
      else
        msg+=" It is another PostgreSQL server${cwd:+ (data $cwd)}: stop it or"
      fi
    else
      msg+=" Stop it or"
    fi
    msg+=" choose another port, e.g. $var=$((port + 10000 > 65535 ? port - 1 : port + 10000)) infra/local/up $s"
    err "$msg"
    rc=1
  done
  return $rc
}

# ---------------------------------------------------------------- health (quick, for status)
health_postgres() { "$POSTGRES_BIN_DIR/pg_isready" -q -h "$LOCAL_HOST" -p "$POSTGRES_PORT" -t 2 >/dev/null 2>&1; }
health_redis() { [[ $(timeout 3 redis-cli -h "$LOCAL_HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }
health_kafka() {
  if have kcat; then
    timeout 10 kcat -b "$LOCAL_HOST:$KAFKA_PORT" -L -m 5 >/dev/null 2>&1
  else
    tcp_open "$LOCAL_HOST" "$KAFKA_PORT"
  fi
}
health_opa() { curl -fsS -m 2 -o /dev/null "http://$LOCAL_HOST:$OPA_PORT/health" 2>/dev/null; }
health_openfga() {
  local body
  body=$(curl -fsS -m 2 "http://$LOCAL_HOST:$OPENFGA_HTTP_PORT/healthz" 2>/dev/null) || return 1
  [[ $body == *SERVING* && $body != *NOT_SERVING* ]] && tcp_open "$LOCAL_HOST" "$OPENFGA_GRPC_PORT"
}

server_address() {
  case $1 in
    postgres) echo "$LOCAL_HOST:$POSTGRES_PORT  postgresql://$POSTGRES_USER:$POSTGRES_PASSWORD@$LOCAL_HOST:$POSTGRES_PORT/$POSTGRES_DB  (socket $PG_SOCKET_DIR)" ;;
    redis) echo "$LOCAL_HOST:$REDIS_PORT  redis://$LOCAL_HOST:$REDIS_PORT  (AOF everysec)" ;;
    kafka) echo "$LOCAL_HOST:$KAFKA_PORT  bootstrap $LOCAL_HOST:$KAFKA_PORT  (controller $LOCAL_HOST:$KAFKA_CONTROLLER_PORT)" ;;
    opa) echo "$LOCAL_HOST:$OPA_PORT  http://$LOCAL_HOST:$OPA_PORT  (policies $OPA_POLICY_DIR)" ;;
    openfga)
      local ds=$OPENFGA_DATASTORE
      local m="metrics off"
      [[ $OPENFGA_METRICS_PORT == off ]] || m="metrics $LOCAL_HOST:$OPENFGA_METRICS_PORT"
      echo "$LOCAL_HOST:$OPENFGA_HTTP_PORT  http://$LOCAL_HOST:$OPENFGA_HTTP_PORT  grpc $LOCAL_HOST:$OPENFGA_GRPC_PORT  (datastore $ds, $m)"
      ;;
  esac
}

# One status line; returns 0 when the server runs and answers.
status_line() {
  local s=$1 p state rc=1
  if p=$(find_pid "$s"); then
    if "health_$s"; then state=running; rc=0; else state=unhealthy; fi
  else
    p=-
    state=stopped
  fi
  printf '%-8s %-9s pid %-7s %s\n' "$s" "$state" "$p" "$(server_address "$s")"
  return $rc
}

# Wait until server $1 (pid $2) is ready, bounded; log tail on failure. $3 = optional readiness function.
wait_ready() {
  local s=$1 p=$2 ready=${3:-health_$1} timeout=${UP_TIMEOUT[$1]} log
  log=$(log_file "$s")
  local deadline=$((SECONDS + timeout))
  while :; do
    if "$ready"; then return 0; fi
    if ! pid_alive "$p"; then
      err "$s exited during start-up (pid $p)"
      show_log_tail "$log"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      err "$s did not answer within ${timeout}s (pid $p still running; raise INFRA_UP_TIMEOUT or see $log)"
      show_log_tail "$log"
      return 1
    fi
    sleep 0.5
  done
}

# ---------------------------------------------------------------- postgres
# Run a command as the OS user that owns the cluster (postgres when we are root; initdb refuses root).
as_pg() {
  if is_root; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}
pg_os_user() { if is_root; then echo postgres; else id -un; fi; }

pg_psql_super() { # psql as the cluster superuser over the unix socket
  as_pg "$POSTGRES_BIN_DIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$POSTGRES_PORT" -U postgres -d postgres "$@"
}

pg_write_conf() {
  local d=$1
  cat >"$d/soma-local.conf" <<EOF
# Written by infra/local/lib.sh on every start (included from postgresql.conf); edits are overwritten.
listen_addresses = '$LOCAL_HOST'
port = $POSTGRES_PORT
unix_socket_directories = '$PG_SOCKET_DIR'
unix_socket_permissions = 0777
max_connections = 200
password_encryption = 'scram-sha-256'

# Sized for a 2-core development box that also runs Kafka, Redis, OPA and OpenFGA.
shared_buffers = 256MB
effective_cache_size = 1GB
work_mem = 8MB
maintenance_work_mem = 64MB
wal_buffers = 16MB
min_wal_size = 80MB
max_wal_size = 1GB
checkpoint_completion_target = 0.9
random_page_cost = 1.1
effective_io_concurrency = 100
max_worker_processes = 4
max_parallel_workers = 2
max_parallel_workers_per_gather = 1
max_parallel_maintenance_workers = 1

# Durability stays on: tests rely on committed data surviving a restart or a kill.
fsync = on
synchronous_commit = on
full_page_writes = on

timezone = 'UTC'
log_timezone = 'UTC'
log_destination = 'stderr'
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
log_min_duration_statement = 1000
log_lock_waits = on
EOF
  chmod 644 "$d/soma-local.conf"
}

pg_init_cluster() {
  local d=$1 log=$2 osuser
  osuser=$(pg_os_user)
  if [[ -e $d && -n $(ls -A -- "$d" 2>/dev/null) ]]; then
    die "postgres: $d exists but holds no cluster (no PG_VERSION); remove it with: infra/local/down --purge postgres"
  fi
  info "postgres: initdb $d (first start)"
  mkdir -p -- "$d"
  is_root && chown postgres:postgres -- "$d"
  chmod 700 -- "$d"
  as_pg test -w "$d" || die "postgres: the '$osuser' OS user cannot write $d: every parent folder of $SOMA_ROOT must be world-traversable (chmod o+x)"
  if ! as_pg "$POSTGRES_BIN_DIR/initdb" -D "$d" -U postgres -E UTF8 --locale=C.UTF-8 \
    --auth-local=peer --auth-host=scram-sha-256 --no-instructions >>"$log" 2>&1; then
    show_log_tail "$log"
    die "postgres: initdb failed"
  fi
  cat >"$d/pg_hba.conf" <<EOF
# Written by infra/local/lib.sh at initdb time.
# TYPE  DATABASE  USER      ADDRESS        METHOD
local   all       postgres                 peer map=local
local   all       all                      scram-sha-256
host    all       all       127.0.0.1/32   scram-sha-256
host    all       all       ::1/128        scram-sha-256
EOF
  printf '# Written by infra/local/lib.sh: the OS user running the cluster may log in as postgres.\nlocal  %s  postgres\n' "$osuser" >"$d/pg_ident.conf"
  printf "\n# Local development settings (infra/local/lib.sh)\ninclude_if_exists = 'soma-local.conf'\n" >>"$d/postgresql.conf"
  is_root && chown postgres:postgres -- "$d/pg_hba.conf" "$d/pg_ident.conf"
  chmod 600 -- "$d/pg_hba.conf" "$d/pg_ident.conf"
  return 0
}

# Create the application role and databases when missing (cheap; runs on every start).
pg_ensure_roles() {
  pg_psql_super -v role="$POSTGRES_USER" -v pw="$POSTGRES_PASSWORD" -v db="$POSTGRES_DB" -v fgadb="$POSTGRES_OPENFGA_DB" <<'SQL'
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') AS need_role \gset
\if :need_role
  CREATE ROLE :"role" LOGIN SUPERUSER PASSWORD :'pw';
  \echo created role :role
\endif
SELECT NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') AS need_db \gset
\if :need_db
  CREATE DATABASE :"db" OWNER :"role";
  \echo created database :db
\endif
SELECT NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'fgadb') AS need_fgadb \gset
\if :need_fgadb
  CREATE DATABASE :"fgadb" OWNER :"role";
  \echo created database :fgadb
\endif
SQL
}

start_postgres() {
  local d log
  d=$(data_dir postgres)
  log=$(log_file postgres)
  touch -- "$log"
  if [[ ! -s $d/PG_VERSION ]]; then
    pg_init_cluster "$d" "$log"
  fi
  local major
  major=$(cat "$d/PG_VERSION")
  [[ $major == "$POSTGRES_MAJOR" ]] || die "postgres: $d is a PostgreSQL $major cluster, these scripts run $POSTGRES_MAJOR (down --purge postgres to recreate)"
  pg_write_conf "$d"
  mkdir -p -- "$PG_SOCKET_DIR"
  if is_root; then
    chown postgres:postgres -- "$PG_SOCKET_DIR" "$log"
  fi
  chmod 755 -- "$PG_SOCKET_DIR"
  # pg_ctl's child calls setsid(), so the postmaster leads its own process group. pg_ctl and the
  # postmaster both append to the same log.
  # shellcheck disable=SC2094
  if ! as_pg "$POSTGRES_BIN_DIR/pg_ctl" -D "$d" -l "$log" -w -t "${UP_TIMEOUT[postgres]}" -s start </dev/null >>"$log" 2>&1 9>&-; then
    err "postgres: pg_ctl start failed or timed out after ${UP_TIMEOUT[postgres]}s"
    show_log_tail "$log"
    return 1
  fi
  local p
  p=$(head -n1 -- "$d/postmaster.pid" | tr -dc '0-9')
  printf '%s\n' "$p" >"$(pid_file postgres)"
  wait_ready postgres "$p" || return 1
  if ! pg_ensure_roles 2>&1 | sed 's/^/[infra] postgres: /' >&2; then
    err "postgres: could not create role/databases"
    return 1
  fi
}

stop_postgres() {
  local p=$1 d c
  d=$(data_dir postgres)
  local -a procs=()
  for c in $(tree_pids "$p"); do procs+=("$c:$(cat "/proc/$c/comm" 2>/dev/null || echo '?')"); done
  if as_pg "$POSTGRES_BIN_DIR/pg_ctl" -D "$d" -m fast -w -t "$INFRA_STOP_TIMEOUT" -s stop </dev/null >/dev/null 2>&1 9>&- \
    && wait_gone 5 "${procs[@]}"; then
    return 0
  fi
  warn "postgres: pg_ctl stop -m fast did not finish in ${INFRA_STOP_TIMEOUT}s: SIGKILL"
  for c in $(alive_of "${procs[@]}"); do kill -KILL "$c" 2>/dev/null || true; done
  wait_gone 10 "${procs[@]}" || { err "postgres: processes survive SIGKILL: $(alive_of "${procs[@]}")"; return 1; }
}

# ---------------------------------------------------------------- redis
start_redis() {
  local d log conf
  d=$(data_dir redis)
  log=$(log_file redis)
  conf="$d/redis.conf"
  mkdir -p -- "$d"
  cat >"$conf" <<EOF
# Written by infra/local/lib.sh on every start; edits are overwritten.
bind $LOCAL_HOST
port $REDIS_PORT
protected-mode yes
daemonize yes
supervised no
pidfile "$(pid_file redis)"
logfile "$log"
loglevel notice
dir "$d"
# Persistence ON: token revocations and lockouts must survive a Redis restart.
appendonly yes
appendfsync everysec
appendfilename "appendonly.aof"
appenddirname "appendonlydir"
aof-use-rdb-preamble yes
save 3600 1 300 100 60 10000
dbfilename dump.rdb
# Never evict: a dropped revocation would silently re-validate a token.
maxmemory-policy noeviction
EOF
  rm -f -- "$(pid_file redis)"
  if ! (cd -- "$d" && exec redis-server "$conf") </dev/null >>"$log" 2>&1 9>&-; then
    err "redis: redis-server failed to start"
    show_log_tail "$log"
    return 1
  fi
  # daemonize: wait for the daemon's pid file
  local deadline=$((SECONDS + 10)) p=
  until p=$(read_pid_file redis) && pid_alive "$p"; do
    if ((SECONDS >= deadline)); then
      err "redis: no pid file $(pid_file redis) after 10s"
      show_log_tail "$log"
      return 1
    fi
    sleep 0.2
  done
  wait_ready redis "$p"
}

# ---------------------------------------------------------------- kafka
kafka_render_props() {
  local out=$1 text
  text=$(<"$KAFKA_TEMPLATE")
  text=${text//@KAFKA_PORT@/$KAFKA_PORT}
  text=${text//@KAFKA_CONTROLLER_PORT@/$KAFKA_CONTROLLER_PORT}
  text=${text//@KAFKA_LOG_DIRS@/$(data_dir kafka)/logs}
  printf '%s\n' "$text" >"$out"
}

# JVM options of the broker (heap from KAFKA_HEAP_OPTS, split on whitespace, never eval'd).
kafka_jvm_opts() {
  local -a heap
  read -r -a heap <<<"$KAFKA_HEAP_OPTS"
  KAFKA_JVM=("${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$KAFKA_LOG4J" -cp "$KAFKA_LIBS/*")
}

kafka_format_if_needed() {
  local d=$1 props=$2 log=$3 id
  [[ -f $d/logs/meta.properties ]] && return 0
  if [[ -s $d/cluster.id ]]; then
    id=$(<"$d/cluster.id")
  else
    id=$(java -Xmx256m -cp "$KAFKA_LIBS/*" -Dlog4j2.configurationFile="$KAFKA_LOG4J" kafka.tools.StorageTool random-uuid \
      2>>"$log" </dev/null 9>&- | grep -E '^[A-Za-z0-9_-]{22}$' | tail -n1) || true
    [[ $id =~ ^[A-Za-z0-9_-]{22}$ ]] || die "kafka: StorageTool random-uuid returned '$id' (see $log)"
    printf '%s\n' "$id" >"$d/cluster.id"
  fi
  info "kafka: formatting storage $d/logs (cluster id $id, standalone KRaft controller)"
  if ! (cd -- "$d" && java -Xmx256m -cp "$KAFKA_LIBS/*" -Dlog4j2.configurationFile="$KAFKA_LOG4J" \
    kafka.tools.StorageTool format -t "$id" -c "$props" --standalone) </dev/null >>"$log" 2>&1 9>&-; then
    show_log_tail "$log"
    die "kafka: storage format failed"
  fi
  printf 'controller_port=%s\n' "$KAFKA_CONTROLLER_PORT" >"$d/formatted-with"
}

start_kafka() {
  local d log props off
  d=$(data_dir kafka)
  log=$(log_file kafka)
  props="$d/server.properties"
  mkdir -p -- "$d/logs"
  kafka_render_props "$props"
  kafka_format_if_needed "$d" "$props" "$log"
  if [[ -s $d/formatted-with && $(<"$d/formatted-with") != "controller_port=$KAFKA_CONTROLLER_PORT" ]]; then
    warn "kafka: storage was formatted with $(<"$d/formatted-with"); the KRaft voter endpoint may not match KAFKA_CONTROLLER_PORT=$KAFKA_CONTROLLER_PORT (down --purge kafka if it does not start)"
  fi
  touch -- "$log"
  off=$(stat -c %s -- "$log")
  KAFKA_LOG_OFFSET=$off
  printf '\n===== %s infra/local/up kafka =====\n' "$(date -Is)" >>"$log"
  kafka_jvm_opts
  launch kafka "$d" "$log" java "${KAFKA_JVM[@]}" kafka.Kafka "$props"
  wait_ready kafka "$LAUNCHED_PID" kafka_ready
}

# Ready = the broker logged "Kafka Server started" in this run and answers a metadata request.
kafka_ready() {
  tail -c "+$((KAFKA_LOG_OFFSET + 1))" -- "$(log_file kafka)" 2>/dev/null | grep -q 'Kafka Server started' || return 1
  tcp_open "$LOCAL_HOST" "$KAFKA_PORT" || return 1
  health_kafka
}

# ---------------------------------------------------------------- opa
start_opa() {
  local d log
  d=$(data_dir opa)
  log=$(log_file opa)
  mkdir -p -- "$d"
  if [[ ! -d $OPA_POLICY_DIR ]]; then
    info "opa: $OPA_POLICY_DIR missing; creating it empty (OPA serves no policy until Rego lands there)"
    mkdir -p -- "$OPA_POLICY_DIR"
  fi
  printf '\n===== %s infra/local/up opa =====\n' "$(date -Is)" >>"$log"
  launch opa "$d" "$log" "$BIN_DIR/opa" run --server --addr "$LOCAL_HOST:$OPA_PORT" --watch \
    --log-level "$OPA_LOG_LEVEL" --log-level-request "$OPA_REQUEST_LOG_LEVEL" --log-format text "$OPA_POLICY_DIR"
  wait_ready opa "$LAUNCHED_PID"
}

# ---------------------------------------------------------------- openfga
openfga_pg_uri() {
  printf 'postgres://%s:%s@%s:%s/%s?sslmode=disable' "$POSTGRES_USER" "$POSTGRES_PASSWORD" "$LOCAL_HOST" "$POSTGRES_PORT" "$POSTGRES_OPENFGA_DB"
}

# The app's own OPENFGA_* variables (OPENFGA_API_URL, OPENFGA_ENABLED, ...) and ours share the prefix
# OpenFGA reads its configuration from: run it with none of them, configured by flags only.
openfga_env_cmd() {
  OPENFGA_ENV_CMD=(env)
  local v
  while IFS= read -r v; do
    [[ $v == OPENFGA_* ]] && OPENFGA_ENV_CMD+=(-u "$v")
  done < <(compgen -e)
  return 0
}

start_openfga() {
  local d log
  d=$(data_dir openfga)
  log=$(log_file openfga)
  mkdir -p -- "$d"
  local -a args=(run --http-addr "$LOCAL_HOST:$OPENFGA_HTTP_PORT" --grpc-addr "$LOCAL_HOST:$OPENFGA_GRPC_PORT"
    --playground-enabled=false --log-format text --log-level "$OPENFGA_LOG_LEVEL")
  if [[ $OPENFGA_METRICS_PORT == off ]]; then
    args+=(--metrics-enabled=false)
  else
    args+=(--metrics-enabled=true --metrics-addr "$LOCAL_HOST:$OPENFGA_METRICS_PORT")
  fi
  local -a envs=()
  if [[ $OPENFGA_DATASTORE == postgres ]]; then
    health_postgres || { err "openfga: OPENFGA_DATASTORE=postgres needs the local postgres (infra/local/up postgres)"; return 1; }
    info "openfga: openfga migrate (postgres database $POSTGRES_OPENFGA_DB)"
    printf '\n===== %s openfga migrate =====\n' "$(date -Is)" >>"$log"
    openfga_env_cmd
    if ! (cd -- "$d" && "${OPENFGA_ENV_CMD[@]}" OPENFGA_DATASTORE_URI="$(openfga_pg_uri)" "$BIN_DIR/openfga" migrate \
      --datastore-engine postgres --timeout 30s) </dev/null >>"$log" 2>&1 9>&-; then
      err "openfga: migrate failed"
      show_log_tail "$log"
      return 1
    fi
    args+=(--datastore-engine postgres)
    # the URI (it holds the password) goes through the environment, not the command line
    envs=(OPENFGA_DATASTORE_URI="$(openfga_pg_uri)")
  else
    args+=(--datastore-engine memory)
  fi
  printf '\n===== %s infra/local/up openfga (datastore %s) =====\n' "$(date -Is)" "$OPENFGA_DATASTORE" >>"$log"
  openfga_env_cmd
  launch openfga "$d" "$log" "${OPENFGA_ENV_CMD[@]}" "${envs[@]}" "$BIN_DIR/openfga" "${args[@]}"
  wait_ready openfga "$LAUNCHED_PID"
}

# ---------------------------------------------------------------- generic start/stop
start_server() {
  record_settings "$1"
  "start_$1"
}

stop_server() {
  local s=$1 p
  if ! p=$(find_pid "$s"); then
    rm -f -- "$(pid_file "$s")"
    info "$s: not running"
    return 0
  fi
  info "$s: stopping (pid $p)"
  if [[ $s == postgres ]]; then
    stop_postgres "$p" || return 1
  else
    stop_group "$s" "$p" || return 1
  fi
  rm -f -- "$(pid_file "$s")"
  rm -f -- "$RUN_DIR/$s.settings"
  info "$s: stopped"
}

# ---------------------------------------------------------------- settings a server was started with
# Recorded at start in .local/run/<server>.settings so that `status` reports (and checks) the ports
# a server really listens on, and `up` refuses to silently keep a server on other ports.
settings_vars() {
  case $1 in
    postgres) echo POSTGRES_PORT ;;
    redis) echo REDIS_PORT ;;
    kafka) echo KAFKA_PORT KAFKA_CONTROLLER_PORT ;;
    opa) echo OPA_PORT ;;
    openfga) echo OPENFGA_HTTP_PORT OPENFGA_GRPC_PORT OPENFGA_METRICS_PORT OPENFGA_DATASTORE ;;
  esac
}

record_settings() {
  local s=$1 v
  for v in $(settings_vars "$s"); do printf '%s=%s\n' "$v" "${!v}"; done >"$RUN_DIR/$s.settings"
}

# Print "NAME=recorded" for each setting that differs from the current environment.
settings_diff() {
  local s=$1 f="$RUN_DIR/$1.settings" name value
  [[ -f $f ]] || return 0
  while IFS='=' read -r name value; do
    [[ " $(settings_vars "$s") " == *" $name "* ]] || continue
    [[ ${!name} == "$value" ]] || printf '%s=%s ' "$name" "$value"
  done <"$f"
}

# Adopt the recorded settings of server $1 (call in a subshell). Only known names, never eval'd.
load_settings() {
  local s=$1 f="$RUN_DIR/$1.settings" name value
  [[ -f $f ]] || return 0
  while IFS='=' read -r name value; do
    [[ " $(settings_vars "$s") " == *" $name "* && $value =~ ^[A-Za-z0-9_]+$ ]] || continue
    printf -v "$name" '%s' "$value"
  done <"$f"
}

# status_line with the settings the server was started with (when it runs).
status_line_recorded() {
  local s=$1
  (
    find_pid "$s" >/dev/null 2>&1 && load_settings "$s"
    status_line "$s"
  )
}

# Sourceable connection settings for the app, refreshed by `up` (ports a running server was started
# with win over the current environment).
env_lines() {
  find_pid "$1" >/dev/null 2>&1 && load_settings "$1"
  case $1 in
    postgres)
      printf 'POSTGRES_HOST=%s\nPOSTGRES_PORT=%s\nPOSTGRES_USER=%s\nPOSTGRES_PASSWORD=%s\nPOSTGRES_DB=%s\n' \
        "$LOCAL_HOST" "$POSTGRES_PORT" "$POSTGRES_USER" "$POSTGRES_PASSWORD" "$POSTGRES_DB"
      ;;
    redis) printf 'REDIS_URL=redis://%s:%s\n' "$LOCAL_HOST" "$REDIS_PORT" ;;
    kafka) printf 'KAFKA_BROKERS=%s:%s\n' "$LOCAL_HOST" "$KAFKA_PORT" ;;
    opa) printf 'OPA_URL=http://%s:%s\n' "$LOCAL_HOST" "$OPA_PORT" ;;
    openfga) printf 'OPENFGA_API_URL=http://%s:%s\n' "$LOCAL_HOST" "$OPENFGA_HTTP_PORT" ;;
  esac
}

write_env_file() {
  local s
  {
    echo "# Written by infra/local/up: connection settings of the local servers (e.g. set -a; . .local/infra.env; set +a)."
    for s in "${ALL_SERVERS[@]}"; do (env_lines "$s"); done
  } >"$LOCAL_DIR/infra.env"
}
