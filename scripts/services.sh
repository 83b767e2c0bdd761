#!/usr/bin/env bash
# Local backing services for authworker: PostgreSQL, Redis and a single-node
# Apache Kafka 4.x broker (KRaft). Used by `make services|test|run` and CI.
#
#   scripts/services.sh [up]   install what is missing, start what is not
#                              running, wait until each is ready, print where
#                              each listens (default)
#   scripts/services.sh down   stop what this script started
#   scripts/services.sh env    print `export VAR=value` lines only:
#                                eval "$(scripts/services.sh env)"
#
# Idempotent and safe to run twice (runs are serialised with a lock; a second
# run just finds everything up). Anything already serving on a port is reused.
# Every failure exits non-zero naming the service (always, CI=true included).
# Progress goes to stderr; `up` prints the summary on stdout.
#
# State lives in .services/ at the repository root (git-ignored):
#   .services/kafka/{libs,data,cluster.id,server.properties,server.log,kafka.pid}
#   .services/redis/{redis.log,redis.pid}
#   .services/postgres/cluster   (Debian cluster this script started)
#
# Tunables (environment): SERVICES_KAFKA_TIMEOUT (90), SERVICES_PG_TIMEOUT (60),
# SERVICES_REDIS_TIMEOUT (30) seconds; KAFKA_HEAP_OPTS (-Xms256m -Xmx768m);
# JAVA (java binary, default: $JAVA_HOME/bin/java or `java`, must be >= 17).

set -Eeuo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
SVC="$ROOT/.services"

# ---- fixed endpoints (other code depends on these exact values) -------------
readonly PG_HOST=127.0.0.1 PG_PORT=5432 PG_ROLE=authworker PG_PASSWORD=authworker PG_DB=authworker
readonly REDIS_HOST=127.0.0.1 REDIS_PORT=6379
readonly KAFKA_HOST=127.0.0.1 KAFKA_PORT=9092 KAFKA_CONTROLLER_PORT=9093
readonly DATABASE_URL="postgres://${PG_ROLE}:${PG_PASSWORD}@${PG_HOST}:${PG_PORT}/${PG_DB}?sslmode=disable"
readonly REDIS_URL="redis://${REDIS_HOST}:${REDIS_PORT}/0"
readonly KAFKA_BOOTSTRAP_SERVERS="${KAFKA_HOST}:${KAFKA_PORT}"

PG_TIMEOUT=${SERVICES_PG_TIMEOUT:-60}
REDIS_TIMEOUT=${SERVICES_REDIS_TIMEOUT:-30}
KAFKA_TIMEOUT=${SERVICES_KAFKA_TIMEOUT:-90}
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}

KAFKA_DIR="$SVC/kafka"
KAFKA_LIBS="$KAFKA_DIR/libs"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_PROPS="$KAFKA_DIR/server.properties"
KAFKA_CLIENT_PROPS="$KAFKA_DIR/client.properties"
KAFKA_PIDFILE="$KAFKA_DIR/kafka.pid"
KAFKA_POM="$ROOT/scripts/kafka/pom.xml"
KAFKA_PROPS_IN="$ROOT/scripts/kafka/server.properties.in"
KAFKA_LOG4J="$ROOT/scripts/kafka/log4j2.properties"
REDIS_DIR="$SVC/redis"
REDIS_PIDFILE="$REDIS_DIR/redis.pid"
PG_DIR="$SVC/postgres"
PG_MARKER="$PG_DIR/cluster"

# Lines of a log shown on failure (more in CI, where nobody can look later).
if [[ "${CI:-}" == "true" ]]; then TAIL_LINES=80; else TAIL_LINES=30; fi

CURRENT="services"          # service being worked on, named in errors
declare -A STATE=()         # service -> "started" | "reused"
APT_UPDATED=0
KAFKA_NOTE=""

# ---- helpers -----------------------------------------------------------------
log() { printf '[services] %s\n' "$*" >&2; }
die() {
  printf '[services] ERROR (%s): %s\n' "$CURRENT" "$*" >&2
  exit 1
}
on_err() {
  local rc=$1 line=$2 cmd=$3
  printf '[services] ERROR (%s): command failed with exit %s at %s:%s: %s\n' \
    "$CURRENT" "$rc" "${BASH_SOURCE[0]}" "$line" "$cmd" >&2
  exit "$rc"
}
trap 'on_err $? $LINENO "$BASH_COMMAND"' ERR

show_tail() { # file [title]
  local f=$1
  if [[ -s "$f" ]]; then
    printf '[services] ---- last %s lines of %s ----\n' "$TAIL_LINES" "$f" >&2
    tail -n "$TAIL_LINES" "$f" >&2 || true
    printf '[services] ----\n' >&2
  fi
}

now() { date +%s; }

port_open() { # host port
  # shellcheck disable=SC2016 # $1/$2 expand in the child bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

who_listens() { # port -> short description of the listener, if any
  command -v ss >/dev/null 2>&1 || return 0
  ss -Hltnp "sport = :$1" 2>/dev/null | awk '{print $4, $6}' | head -n 3 || true
}

pid_alive() { # pid [cmdline-substring]
  local pid=$1 want=${2:-}
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ -z "$want" ]] && return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$want"
}

read_pid() { if [[ -s "$1" ]]; then tr -dc '0-9' <"$1"; fi; }

pid_gone() { ! kill -0 "$1" 2>/dev/null; }

can_root() { [[ $(id -u) -eq 0 ]] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else die "needs root (or passwordless sudo) to run: $*"
  fi
}

as_postgres() { # run as the postgres OS user, from / (its cwd must be readable)
  if [[ $(id -u) -eq 0 ]]; then (cd / && runuser -u postgres -- "$@")
  elif command -v sudo >/dev/null 2>&1; then (cd / && sudo -n -u postgres -- "$@")
  else return 1
  fi
}

apt_install() { # packages/options...; output goes to .services/apt.log
  can_root || die "cannot install '$*': needs root or passwordless sudo"
  local logf="$SVC/apt.log"
  if [[ $APT_UPDATED -eq 0 ]]; then
    log "apt-get update"
    as_root apt-get update -q >>"$logf" 2>&1 9>&- </dev/null \
      || { show_tail "$logf"; die "apt-get update failed"; }
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >>"$logf" 2>&1 9>&- </dev/null \
    || { show_tail "$logf"; die "apt-get install $* failed"; }
}

wait_until() { # timeout-seconds command...; polls every 0.5 s
  local limit=$1; shift
  local deadline=$(( $(now) + limit ))
  until "$@"; do
    (( $(now) < deadline )) || return 1
    sleep 0.5
  done
}

# ---- PostgreSQL ----------------------------------------------------------------
pg_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2 >/dev/null 2>&1; }

pg_tcp_login() {
  PGCONNECT_TIMEOUT=5 psql -X -A -t -q -c 'select 1' "$DATABASE_URL" 2>/dev/null | grep -qx 1
}

pg_newest_version() {
  local v
  v=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/postgres' 2>/dev/null \
      | awk -F/ '{print $5}' | sort -V | tail -n 1)
  printf '%s' "$v"
}

pg_cluster_on_port() { # prints "version name status logfile" of the newest cluster on PG_PORT
  pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3 == p {print $1, $2, $4, $7}' | sort -V | tail -n 1
}

pg_ensure_role_db() { # idempotent; needs the postgres OS user (root or sudo)
  as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres >>"$PG_DIR/psql.log" 2>&1 <<SQL
SET password_encryption = 'scram-sha-256';
SELECT format('CREATE ROLE %I LOGIN CREATEDB', '$PG_ROLE')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$PG_ROLE')\gexec
ALTER ROLE "$PG_ROLE" WITH LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
SELECT format('CREATE DATABASE %I OWNER %I', '$PG_DB', '$PG_ROLE')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$PG_DB')\gexec
ALTER DATABASE "$PG_DB" OWNER TO "$PG_ROLE";
SQL
}

pg_fix_hba() { # make sure host/127.0.0.1/scram is accepted, then reload
  local hba rule="host    all             all             127.0.0.1/32            scram-sha-256"
  hba=$(as_postgres psql -X -A -t -q -p "$PG_PORT" -d postgres -c 'show hba_file' 2>/dev/null) || return 1
  [[ -n "$hba" ]] || return 1
  if as_root grep -Eq '^[[:space:]]*host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+scram-sha-256' "$hba"; then
    return 1 # rule already there; the failure is something else
  fi
  log "adding '$rule' at the top of $hba"
  as_root sed -i "0,/^[[:space:]]*[^#[:space:]]/s||${rule}\n&|" "$hba"
  as_postgres psql -X -q -p "$PG_PORT" -d postgres -c 'select pg_reload_conf()' >/dev/null
}

up_postgres() {
  CURRENT="postgresql"
  mkdir -p "$PG_DIR"
  local can_admin=1 cl ver name status logfile
  can_root || can_admin=0

  if command -v pg_isready >/dev/null 2>&1 && pg_ready; then
    if [[ -s "$PG_MARKER" ]]; then
      log "PostgreSQL: cluster $(cat "$PG_MARKER") already up on $PG_HOST:$PG_PORT, reusing it"
    else
      log "PostgreSQL: something already answers on $PG_HOST:$PG_PORT, reusing it"
    fi
    STATE[postgresql]=reused
  else
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || [[ -z "$(pg_newest_version)" ]]; then
      apt_install postgresql
    fi
    if pg_ready; then # the package's postinst may have started its cluster
      log "PostgreSQL: started by the package install, reusing it"
      STATE[postgresql]=reused
    else
      cl=$(pg_cluster_on_port)
      if [[ -z "$cl" ]]; then
        ver=$(pg_newest_version)
        [[ -n "$ver" ]] || die "no PostgreSQL server binaries found under /usr/lib/postgresql"
        name=main
        [[ -e "/etc/postgresql/$ver/main" ]] && name=authworker
        log "PostgreSQL: creating cluster $ver/$name on port $PG_PORT"
        as_root pg_createcluster --port "$PG_PORT" "$ver" "$name" >>"$PG_DIR/pg_ctlcluster.log" 2>&1 9>&- </dev/null \
          || { show_tail "$PG_DIR/pg_ctlcluster.log"; die "pg_createcluster $ver $name failed"; }
        cl=$(pg_cluster_on_port)
        [[ -n "$cl" ]] || die "cluster $ver/$name was created but is not listed on port $PG_PORT"
      fi
      read -r ver name status logfile <<<"$cl"
      if [[ "$status" == online* ]]; then
        die "cluster $ver/$name is online but does not answer on $PG_HOST:$PG_PORT (check listen_addresses; log: $logfile)"
      fi
      log "PostgreSQL: starting cluster $ver/$name"
      as_root pg_ctlcluster "$ver" "$name" start >>"$PG_DIR/pg_ctlcluster.log" 2>&1 9>&- </dev/null || {
        show_tail "$PG_DIR/pg_ctlcluster.log"; [[ -n "${logfile:-}" ]] && show_tail "$logfile"
        die "pg_ctlcluster $ver $name start failed"
      }
      printf '%s %s\n' "$ver" "$name" >"$PG_MARKER"
      STATE[postgresql]=started
      if ! wait_until "$PG_TIMEOUT" pg_ready; then
        [[ -n "${logfile:-}" ]] && show_tail "$logfile"
        die "not ready on $PG_HOST:$PG_PORT after ${PG_TIMEOUT}s"
      fi
    fi
  fi

  if [[ $can_admin -eq 1 ]] && id postgres >/dev/null 2>&1; then
    if ! pg_ensure_role_db; then
      show_tail "$PG_DIR/psql.log"
      if [[ "${STATE[postgresql]}" == started ]]; then
        die "could not create role/database '$PG_ROLE'"
      fi
      log "PostgreSQL: could not manage roles on the reused server (see above); checking login anyway"
    fi
  fi

  if ! pg_tcp_login; then
    if [[ $can_admin -eq 1 ]] && pg_fix_hba && pg_tcp_login; then
      :
    else
      PGCONNECT_TIMEOUT=5 psql -X -c 'select 1' "$DATABASE_URL" >&2 || true
      die "cannot log in as '$PG_ROLE' with password over TCP ($DATABASE_URL)"
    fi
  fi
  log "PostgreSQL: ready, password login as '$PG_ROLE' over TCP works"
}

down_postgres() {
  CURRENT="postgresql"
  local ver name
  if [[ -s "$PG_MARKER" ]]; then
    read -r ver name <"$PG_MARKER"
    log "PostgreSQL: stopping cluster $ver/$name"
    if as_root pg_ctlcluster "$ver" "$name" stop >>"$PG_DIR/pg_ctlcluster.log" 2>&1 9>&- </dev/null; then
      rm -f "$PG_MARKER"
    elif ! pg_ready; then
      rm -f "$PG_MARKER" # was already down
    else
      show_tail "$PG_DIR/pg_ctlcluster.log"; die "pg_ctlcluster $ver $name stop failed"
    fi
  elif command -v pg_isready >/dev/null 2>&1 && pg_ready; then
    log "PostgreSQL: not started by this script, leaving it running"
  else
    log "PostgreSQL: not running"
  fi
}

# ---- Redis ---------------------------------------------------------------------
redis_ping() {
  if command -v redis-cli >/dev/null 2>&1; then
    [[ "$(timeout 3 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
  else # raw RESP, for a box where only someone else's redis exists
    # shellcheck disable=SC2016 # $1/$2/$l expand in the child bash
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2" && printf "PING\r\n" >&3 && IFS= read -r l <&3 && [[ $l == "+PONG"* ]]' \
      _ "$REDIS_HOST" "$REDIS_PORT" 2>/dev/null
  fi
}

up_redis() {
  CURRENT="redis"
  mkdir -p "$REDIS_DIR"
  if redis_ping; then
    log "Redis: $REDIS_HOST:$REDIS_PORT answers PONG, reusing it"
    STATE[redis]=reused
    return 0
  fi
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    apt_install --no-install-recommends redis-server redis-tools
    if redis_ping; then # the package's postinst started its own service: fine
      log "Redis: started by the package install, reusing it"
      STATE[redis]=reused
      return 0
    fi
  fi
  if port_open "$REDIS_HOST" "$REDIS_PORT"; then
    die "port $REDIS_PORT is in use but does not answer PING with PONG: $(who_listens "$REDIS_PORT")"
  fi
  log "Redis: starting redis-server on $REDIS_HOST:$REDIS_PORT"
  : >"$REDIS_DIR/redis.log"
  redis-server --daemonize yes --bind "$REDIS_HOST" --port "$REDIS_PORT" \
    --dir "$REDIS_DIR" --logfile "$REDIS_DIR/redis.log" --pidfile "$REDIS_PIDFILE" \
    --save '' --appendonly no --protected-mode yes \
    >"$REDIS_DIR/redis.start.log" 2>&1 9>&- </dev/null \
    || { show_tail "$REDIS_DIR/redis.start.log"; show_tail "$REDIS_DIR/redis.log"; die "redis-server failed to start"; }
  STATE[redis]=started
  if ! wait_until "$REDIS_TIMEOUT" redis_ping; then
    show_tail "$REDIS_DIR/redis.log"
    die "not answering PING on $REDIS_HOST:$REDIS_PORT after ${REDIS_TIMEOUT}s"
  fi
  log "Redis: ready"
}

down_redis() {
  CURRENT="redis"
  local pid
  pid=$(read_pid "$REDIS_PIDFILE")
  if [[ -n "$pid" ]] && pid_alive "$pid" redis-server; then
    log "Redis: stopping pid $pid"
    kill -TERM "$pid"
    wait_until 15 pid_gone "$pid" || {
      log "Redis: pid $pid did not stop in 15s, killing it"; kill -KILL "$pid" 2>/dev/null || true; }
    rm -f "$REDIS_PIDFILE"
  else
    rm -f "$REDIS_PIDFILE"
    if port_open "$REDIS_HOST" "$REDIS_PORT"; then
      log "Redis: not started by this script, leaving it running"
    else
      log "Redis: not running"
    fi
  fi
}

# ---- Kafka ---------------------------------------------------------------------
ensure_java() {
  if [[ -z "${JAVA:-}" ]]; then
    if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then JAVA="$JAVA_HOME/bin/java"
    elif command -v java >/dev/null 2>&1; then JAVA=java
    else
      apt_install --no-install-recommends openjdk-17-jre-headless
      JAVA=java
    fi
  fi
  local major
  major=$("$JAVA" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}' | awk -F. '{print ($1 == "1") ? $2 : $1}')
  [[ "$major" =~ ^[0-9]+$ ]] || die "cannot tell the version of '$JAVA'"
  (( major >= 17 )) || die "Kafka 4 needs Java >= 17, '$JAVA' is Java $major"
}

ensure_kafka_libs() { # resolve jars with Maven only when missing or the pom changed
  local want stamp="$KAFKA_DIR/libs.stamp"
  want=$(sha256sum "$KAFKA_POM" | awk '{print $1}')
  if [[ -d "$KAFKA_LIBS" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]] \
     && compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || apt_install --no-install-recommends maven
  log "Kafka: resolving broker jars with Maven (first run or pom changed)"
  rm -rf "$KAFKA_LIBS.tmp"
  if ! mvn -q -B -Dstyle.color=never -f "$KAFKA_POM" dependency:copy-dependencies \
        -DoutputDirectory="$KAFKA_LIBS.tmp" -DincludeScope=runtime \
        >"$KAFKA_DIR/mvn.log" 2>&1 9>&- </dev/null; then
    show_tail "$KAFKA_DIR/mvn.log"
    die "mvn could not resolve the Kafka jars from scripts/kafka/pom.xml"
  fi
  compgen -G "$KAFKA_LIBS.tmp/kafka_2.13-*.jar" >/dev/null || die "Maven ran but no kafka_2.13 jar was copied"
  local pid
  pid=$(read_pid "$KAFKA_PIDFILE")
  if pid_alive "$pid" kafka.Kafka; then # never swap jars under a running JVM
    log "Kafka: jars changed, restarting our broker (pid $pid) on the new ones"
    kafka_stop_pid "$pid"
  fi
  rm -rf "$KAFKA_LIBS"
  mv "$KAFKA_LIBS.tmp" "$KAFKA_LIBS"
  printf '%s\n' "$want" >"$stamp"
}

kafka_tool() { # seconds class args... ; short-lived JVM on the broker classpath
  local secs=$1; shift
  timeout "$secs" "$JAVA" -Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j2.level=ERROR -cp "$KAFKA_LIBS/*" "$@" 9>&- </dev/null
}

kafka_serves() { # the broker answers a real metadata request (list topics)
  local secs=${1:-30}
  kafka_tool "$secs" org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --command-config "$KAFKA_CLIENT_PROPS" --list \
    >/dev/null 2>&1
}

kafka_render_config() {
  local tmp
  mkdir -p "$KAFKA_DATA"
  [[ "$KAFKA_DATA" != *'|'* ]] || die "path $KAFKA_DATA contains '|'"
  tmp=$(mktemp "$KAFKA_DIR/.server.properties.XXXXXX")
  sed "s|@KAFKA_DATA_DIR@|$KAFKA_DATA|g" "$KAFKA_PROPS_IN" >"$tmp"
  mv "$tmp" "$KAFKA_PROPS"
  cat >"$KAFKA_CLIENT_PROPS" <<'EOF'
# used by scripts/services.sh readiness checks
request.timeout.ms=5000
default.api.timeout.ms=10000
socket.connection.setup.timeout.ms=2000
socket.connection.setup.timeout.max.ms=4000
EOF
}

kafka_format_once() {
  local idf="$KAFKA_DIR/cluster.id" id existing
  if [[ -s "$KAFKA_DATA/meta.properties" ]]; then
    existing=$(sed -n 's/^cluster\.id=//p' "$KAFKA_DATA/meta.properties")
    if [[ -n "$existing" && "$existing" != "$(cat "$idf" 2>/dev/null)" ]]; then
      printf '%s\n' "$existing" >"$idf"
    fi
    return 0
  fi
  if [[ ! -s "$idf" ]]; then
    id=$(kafka_tool 60 kafka.tools.StorageTool random-uuid 2>>"$KAFKA_DIR/format.log" \
         | grep -E '^[A-Za-z0-9_-]{22}$' | tail -n 1) || true
    [[ -n "$id" ]] || { show_tail "$KAFKA_DIR/format.log"; die "could not generate a cluster id"; }
    printf '%s\n' "$id" >"$idf"
  fi
  id=$(tr -d '[:space:]' <"$idf")
  log "Kafka: formatting storage in $KAFKA_DATA (cluster id $id)"
  if ! kafka_tool 120 kafka.tools.StorageTool format --standalone -t "$id" -c "$KAFKA_PROPS" \
        >>"$KAFKA_DIR/format.log" 2>&1; then
    show_tail "$KAFKA_DIR/format.log"
    die "kafka-storage format failed"
  fi
}

kafka_wait_ready() { # pid; 0 ready, 2 the process exited first (dies on timeout)
  local pid=$1 deadline left
  deadline=$(( $(now) + KAFKA_TIMEOUT ))
  while :; do
    pid_alive "$pid" kafka.Kafka || return 2
    left=$(( deadline - $(now) ))
    (( left > 0 )) || break
    if port_open "$KAFKA_HOST" "$KAFKA_PORT" && kafka_serves $(( left < 30 ? left : 30 )); then
      return 0
    fi
    sleep 1
  done
  show_tail "$KAFKA_DIR/kafka.out"; show_tail "$KAFKA_DIR/server.log"
  die "broker not serving metadata on $KAFKA_BOOTSTRAP_SERVERS after ${KAFKA_TIMEOUT}s (pid $pid left running; see $KAFKA_DIR/server.log, stop it with: scripts/services.sh down)"
}

kafka_wait_ports_free() { # seconds; a broker of a just-ended session may still hold them
  local deadline=$(( $(now) + $1 ))
  while port_open "$KAFKA_HOST" "$KAFKA_PORT" || port_open "$KAFKA_HOST" "$KAFKA_CONTROLLER_PORT"; do
    (( $(now) < deadline )) || return 1
    sleep 1
  done
}

kafka_start() { # starts the JVM in the background, prints its pid
  local heap
  read -r -a heap <<<"$KAFKA_HEAP_OPTS"
  : >"$KAFKA_DIR/kafka.out"
  (
    cd "$KAFKA_DIR"
    exec setsid nohup "$JAVA" "${heap[@]}" -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
      -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$KAFKA_LOG4J" -Dkafka.logs.dir="$KAFKA_DIR" \
      -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_PROPS"
  ) >>"$KAFKA_DIR/kafka.out" 2>&1 9>&- </dev/null &
  printf '%s\n' "$!"
}

up_kafka() {
  CURRENT="kafka"
  mkdir -p "$KAFKA_DIR"
  ensure_java
  ensure_kafka_libs
  kafka_render_config

  local pid
  pid=$(read_pid "$KAFKA_PIDFILE")
  if pid_alive "$pid" kafka.Kafka; then
    log "Kafka: our broker (pid $pid) is running, checking it serves"
    if ! kafka_wait_ready "$pid"; then
      show_tail "$KAFKA_DIR/kafka.out"; show_tail "$KAFKA_DIR/server.log"
      die "broker process $pid exited before becoming ready"
    fi
    STATE[kafka]=reused
    KAFKA_NOTE=" (controller $KAFKA_HOST:$KAFKA_CONTROLLER_PORT, log $KAFKA_DIR/server.log)"
    log "Kafka: ready"
    return 0
  fi
  if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
    if kafka_serves 30; then
      log "Kafka: $KAFKA_BOOTSTRAP_SERVERS already serves Kafka, reusing it"
      STATE[kafka]=reused
      return 0
    fi
    die "port $KAFKA_PORT is in use but does not answer as a Kafka broker: $(who_listens "$KAFKA_PORT")"
  fi
  if port_open "$KAFKA_HOST" "$KAFKA_CONTROLLER_PORT"; then
    die "controller port $KAFKA_CONTROLLER_PORT is already in use: $(who_listens "$KAFKA_CONTROLLER_PORT")"
  fi

  kafka_format_once

  # A broker that exits during start-up is started again, up to three times:
  # the ports of a broker that a just-ended session is still shutting down
  # pass the checks above and then refuse the bind.
  local attempt
  for attempt in 1 2 3; do
    log "Kafka: starting broker on $KAFKA_BOOTSTRAP_SERVERS (controller $KAFKA_HOST:$KAFKA_CONTROLLER_PORT)"
    pid=$(kafka_start)
    printf '%s\n' "$pid" >"$KAFKA_PIDFILE"
    STATE[kafka]=started
    kafka_wait_ready "$pid" && break
    show_tail "$KAFKA_DIR/kafka.out"; show_tail "$KAFKA_DIR/server.log"
    (( attempt < 3 )) || die "broker process $pid exited before becoming ready, three times"
    log "Kafka: broker process $pid exited before becoming ready (attempt $attempt of 3); starting it again once ports $KAFKA_PORT and $KAFKA_CONTROLLER_PORT are free"
    kafka_wait_ports_free 60 || die "ports $KAFKA_PORT/$KAFKA_CONTROLLER_PORT still in use after 60s: $(who_listens "$KAFKA_PORT") $(who_listens "$KAFKA_CONTROLLER_PORT")"
  done
  KAFKA_NOTE=" (controller $KAFKA_HOST:$KAFKA_CONTROLLER_PORT, log $KAFKA_DIR/server.log)"
  log "Kafka: ready (pid $pid)"
}

kafka_stop_pid() { # pid; controlled shutdown, SIGKILL after 60 s
  local pid=$1
  log "Kafka: stopping broker pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_until 60 pid_gone "$pid"; then
    log "Kafka: pid $pid did not stop in 60s, killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait_until 10 pid_gone "$pid" || true
  fi
  rm -f "$KAFKA_PIDFILE"
}

down_kafka() {
  CURRENT="kafka"
  local pid
  pid=$(read_pid "$KAFKA_PIDFILE")
  if [[ -n "$pid" ]] && pid_alive "$pid" kafka.Kafka; then
    kafka_stop_pid "$pid"
  elif port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
    log "Kafka: not started by this script, leaving it running"
  else
    log "Kafka: not running"
  fi
  rm -f "$KAFKA_PIDFILE"
}

# ---- commands ----------------------------------------------------------------
take_lock() {
  mkdir -p "$SVC"
  exec 9>"$SVC/.lock"
  if ! flock -n 9; then
    log "another services.sh run holds $SVC/.lock, waiting for it"
    flock -w 900 9 || die "timed out waiting for $SVC/.lock"
  fi
}

# Each line keeps a value already in the caller's environment, so tests and
# the worker can be pointed at other services.
cmd_env() {
  local name
  for name in DATABASE_URL REDIS_URL KAFKA_BOOTSTRAP_SERVERS; do
    printf 'export %s="${%s:-%s}"\n' "$name" "$name" "${!name}"
  done
}

cmd_up() {
  local t0=$SECONDS
  take_lock
  up_postgres
  up_redis
  up_kafka
  CURRENT="services"
  log "all services ready in $(( SECONDS - t0 ))s"
  printf '%-10s %-16s %-8s %s\n' \
    postgresql "$PG_HOST:$PG_PORT" "${STATE[postgresql]}" "DATABASE_URL=$DATABASE_URL" \
    redis "$REDIS_HOST:$REDIS_PORT" "${STATE[redis]}" "REDIS_URL=$REDIS_URL" \
    kafka "$KAFKA_BOOTSTRAP_SERVERS" "${STATE[kafka]}" "KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS${KAFKA_NOTE:-}"
}

cmd_down() {
  take_lock
  down_kafka
  down_redis
  down_postgres
  CURRENT="services"
  log "down"
}

usage() {
  cat >&2 <<'EOF'
usage: scripts/services.sh [up|down|env]
  up    install, start and wait for PostgreSQL, Redis and Kafka (default)
  down  stop what this script started
  env   print export lines: eval "$(scripts/services.sh env)"
EOF
}

main() {
  case "${1:-up}" in
    up) cmd_up ;;
    down) cmd_down ;;
    env) cmd_env ;;
    -h|--help|help) usage ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
