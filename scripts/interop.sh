#!/usr/bin/env bash
# Interop check (`make interop`): a real Spring Kafka ReplyingKafkaTemplate
# (interop/spring, a Maven project) calls a real authworker, proving the
# README's "a Spring ReplyingKafkaTemplate calls the worker unchanged".
#
#   1. scripts/services.sh up        PostgreSQL, Redis, Kafka (installs/starts)
#   2. make build
#   3. bin/authworker in the background on a fresh database of its own
#      (dropped on exit) with a key-encryption key made for the run, and on
#      DEDICATED topics with its own group and port, so a `make run` worker
#      on the default topics neither answers these requests nor is
#      disturbed, and whatever keys the shared database holds do not matter:
#        AUTH_REQUEST_TOPIC=auth.request.interop
#        AUTH_RESPONSE_TOPIC=AUTH_REPLY_TOPICS=auth.response.interop
#        AUTH_DLQ_TOPIC=auth.request.interop.dlq
#        AUTH_EVENTS_TOPIC=auth.events.interop
#        AUTH_EVENT_SOURCE=https://auth.interop.test  (ce_source of its events)
#        AUTH_CONSUMER_GROUP=authworker-interop  HTTP_ADDR=127.0.0.1:18080
#   4. waits for /readyz 200 (INTEROP_READY_TIMEOUT, 60 s)
#   5. mvn -f interop/spring/pom.xml test, with the same bootstrap, topics
#      and event source (environment), and -Dauthworker.schemas naming this
#      checkout's schemas/ folder
#
# The events topic outlives the run (AUTH_EVENTS_RETENTION, 7 days), so it
# holds earlier runs' events too; the Java consumer picks its own by user id.
#
# The worker is always stopped on exit; the exit status is Maven's. Safe to
# run twice. The worker's log is .services/interop/authworker.log. The first
# run downloads the Maven dependencies (Spring Kafka, kafka-clients, Avro,
# JUnit) into ~/.m2.
#
# Tunables (environment): INTEROP_HTTP_ADDR (127.0.0.1:18080),
# INTEROP_READY_TIMEOUT (60), MVN (mvn), MVN_FLAGS (-B -ntp).

set -Eeuo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"

STATE="$ROOT/.services/interop"
LOG="$STATE/authworker.log"
PIDFILE="$STATE/authworker.pid"
HTTP_ADDR=${INTEROP_HTTP_ADDR:-127.0.0.1:18080}
READY_TIMEOUT=${INTEROP_READY_TIMEOUT:-60}
MVN=${MVN:-mvn}
read -r -a MVN_FLAGS <<<"${MVN_FLAGS:--B -ntp}"

log() { printf '[interop] %s\n' "$*" >&2; }
die() { printf '[interop] ERROR: %s\n' "$*" >&2; exit 1; }

show_log() {
  if [[ -s "$LOG" ]]; then
    printf '[interop] ---- last 40 lines of %s ----\n' "$LOG" >&2
    tail -n 40 "$LOG" >&2 || true
    printf '[interop] ----\n' >&2
  fi
}

# Is pid a bin/authworker that this script started?
is_our_worker() {
  [[ "$1" =~ ^[0-9]+$ ]] && kill -0 "$1" 2>/dev/null \
    && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$ROOT/bin/authworker"
}

stop_worker() { # pid: SIGTERM, wait for the graceful shutdown, then SIGKILL
  local pid=$1 i
  is_our_worker "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 40; i++)); do # AUTH_SHUTDOWN_TIMEOUT is 15 s
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.5
  done
  log "worker $pid did not stop in 20 s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

WORKER_PID=""
DB_NAME=""
ADMIN_URL=""
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  local rc=$?
  if [[ -n "$WORKER_PID" ]]; then
    log "stopping worker (pid $WORKER_PID)"
    stop_worker "$WORKER_PID"
    wait "$WORKER_PID" 2>/dev/null || true
    rm -f "$PIDFILE"
  fi
  if [[ -n "$DB_NAME" ]]; then
    psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$DB_NAME\"" >/dev/null 2>&1 \
      || log "could not drop database $DB_NAME"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

command -v "$MVN" >/dev/null 2>&1 || die "Maven ('$MVN') not found; install it (Debian: apt-get install maven)"
command -v curl >/dev/null 2>&1 || die "curl not found"
command -v flock >/dev/null 2>&1 || die "flock not found (Debian: util-linux)"
command -v psql >/dev/null 2>&1 || die "psql not found (Debian: postgresql-client)"

# 1. Services.
scripts/services.sh up >/dev/null
eval "$(scripts/services.sh env)"

# 2. Binaries.
log "make build"
make --no-print-directory -s build

mkdir -p "$STATE"
# One run at a time: runs share the worker's group, port and pid file.
exec 8>"$STATE/lock"
flock -n 8 || die "another scripts/interop.sh is running (lock $STATE/lock)"
# A worker left over from an interrupted run (killed without its trap).
if [[ -s "$PIDFILE" ]]; then
  old=$(tr -dc '0-9' <"$PIDFILE")
  if is_our_worker "$old"; then
    log "stopping the interop worker left by an earlier run (pid $old)"
    stop_worker "$old"
  fi
  rm -f "$PIDFILE"
fi
if curl -s -o /dev/null --max-time 2 "http://$HTTP_ADDR/healthz"; then
  die "something already serves http://$HTTP_ADDR; stop it or set INTEROP_HTTP_ADDR to a free address"
fi

# 3. The worker, on a database of its own and dedicated topics.
ADMIN_URL=$DATABASE_URL
DB_NAME="authworker_interop_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
psql -q "$ADMIN_URL" -c "CREATE DATABASE \"$DB_NAME\"" >/dev/null
export DATABASE_URL="${ADMIN_URL%%\?*}"
DATABASE_URL="${DATABASE_URL%/*}/$DB_NAME"
[[ "$ADMIN_URL" == *\?* ]] && DATABASE_URL+="?${ADMIN_URL#*\?}"
export AUTH_REQUEST_TOPIC=auth.request.interop
export AUTH_RESPONSE_TOPIC=auth.response.interop
export AUTH_REPLY_TOPICS=auth.response.interop
export AUTH_DLQ_TOPIC=auth.request.interop.dlq
export AUTH_EVENTS_TOPIC=auth.events.interop
export AUTH_EVENT_SOURCE=https://auth.interop.test
log "starting bin/authworker on $AUTH_REQUEST_TOPIC -> $AUTH_RESPONSE_TOPIC, events on $AUTH_EVENTS_TOPIC (http $HTTP_ADDR, log $LOG)"
AUTH_KEY_ENCRYPTION_KEY="$(head -c 32 /dev/urandom | base64)" \
AUTH_CONSUMER_GROUP=authworker-interop \
HTTP_ADDR="$HTTP_ADDR" \
  "$ROOT/bin/authworker" >"$LOG" 2>&1 </dev/null 8>&- &
WORKER_PID=$!
echo "$WORKER_PID" >"$PIDFILE"

# 4. Ready?
deadline=$(( $(date +%s) + READY_TIMEOUT ))
until curl -sf -o /dev/null --max-time 2 "http://$HTTP_ADDR/readyz"; do
  if ! kill -0 "$WORKER_PID" 2>/dev/null; then
    show_log
    die "the worker exited during start-up"
  fi
  if (( $(date +%s) >= deadline )); then
    show_log
    curl -s --max-time 2 "http://$HTTP_ADDR/readyz" >&2 || true
    die "the worker was not ready within ${READY_TIMEOUT}s (http://$HTTP_ADDR/readyz)"
  fi
  sleep 0.5
done
log "worker ready"

# 5. The Spring client.
MVN_ARGS=("${MVN_FLAGS[@]}" -f interop/spring/pom.xml "-Dauthworker.schemas=$ROOT/schemas" test)
log "$MVN ${MVN_ARGS[*]}"
set +e
"$MVN" "${MVN_ARGS[@]}" 8>&-
rc=$?
set -e
if (( rc == 0 )); then
  log "PASS: Spring ReplyingKafkaTemplate <-> authworker"
else
  show_log
  log "FAIL: mvn exited $rc (Spring output above, worker log: $LOG)"
fi
exit "$rc"
