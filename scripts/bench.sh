#!/usr/bin/env bash
# The standard load scenario (`make bench`): authctl bench against a real
# worker, started the way `make run` starts one, writing the figures the
# README quotes.
#
#   1. scripts/services.sh up        PostgreSQL, Redis, Kafka (installs/starts)
#   2. make build
#   3. bin/authworker in the background with the settings `make run` uses
#      (AUTH_WORKERS, AUTH_ARGON2_* and the rest at their defaults, or as the
#      environment sets them), on a fresh database of its own (dropped on
#      exit) with a key-encryption key made for the run, and on DEDICATED
#      topics with its own group and port, so that a `make run` worker on
#      the default topics neither answers these requests nor is disturbed,
#      nor is the bench of another checkout on the same machine (ID is a
#      checksum of this checkout's path):
#        AUTH_REQUEST_TOPIC=auth.request.bench-ID
#        AUTH_RESPONSE_TOPIC=AUTH_REPLY_TOPICS=auth.response.bench-ID
#        AUTH_DLQ_TOPIC=auth.request.bench-ID.dlq  AUTH_EVENTS_TOPIC=auth.events.bench-ID
#        AUTH_NOTIFICATIONS_TOPIC=auth.notifications.bench-ID
#        AUTH_CONSUMER_GROUP=authworker-bench-ID
#        HTTP_ADDR=127.0.0.1:PORT, the first free port from 18090 to 18099
#   4. waits for /readyz 200 (BENCH_READY_TIMEOUT, 60 s)
#   5. the scenarios, each `bin/authctl bench` with -worker-pid:
#        login-max       closed loop, 16 callers, logins only: the most
#                        logins/s the worker serves (argon2id-bound)
#        login-latency   open loop at half that rate, logins only
#        mixed           open loop at half that rate: register 5, login 40,
#                        wrong-password 10, refresh 20, introspect 25
#        cheap-alone     open loop, 200/s of introspect and refresh
#        refresh-max     closed loop, 32 callers, refreshes only: the most
#                        refreshes/s the worker serves (CPU-bound)
#        introspect-max  the same for introspect
#        cheap-in-flood  the same while a closed loop of 16 callers floods
#                        the worker with logins (its own report:
#                        login-flood); the measured run starts first and
#                        the flood during its warm-up
#   6. writes bench/results.json (every report, by scenario) and
#      bench/results.md (the same as Markdown), which the README quotes.
#
# The worker is always stopped on exit. One run at a time (a lock). Every
# load goes to 127.0.0.1 only and ends by itself. The figures are this
# machine's at this moment: other work on it shows in each report's load
# averages.
#
# Tunables (environment): BENCH_DURATION (20s), BENCH_WARMUP (5s), both in
# whole seconds written Ns,
# BENCH_USERS (50), BENCH_CHEAP_RATE (200), BENCH_HTTP_ADDR (a free one
# of 127.0.0.1:18090-18099), BENCH_READY_TIMEOUT (60), BENCH_OUT (bench).

set -Eeuo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"

STATE="$ROOT/.services/bench"
LOG="$STATE/authworker.log"
PIDFILE="$STATE/authworker.pid"
HTTP_ADDR=${BENCH_HTTP_ADDR:-}
ID=$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)
READY_TIMEOUT=${BENCH_READY_TIMEOUT:-60}
DURATION=${BENCH_DURATION:-20s}
WARMUP=${BENCH_WARMUP:-5s}
USERS=${BENCH_USERS:-50}
CHEAP_RATE=${BENCH_CHEAP_RATE:-200}
OUT=${BENCH_OUT:-$ROOT/bench}

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

show_log() {
  if [[ -s "$LOG" ]]; then
    printf '[bench] ---- last 40 lines of %s ----\n' "$LOG" >&2
    tail -n 40 "$LOG" >&2 || true
    printf '[bench] ----\n' >&2
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
CHEAP_PID=""
FLOOD_PID=""
TMP=""
DB_NAME=""
ADMIN_URL=""
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  local rc=$?
  if [[ -n "$TMP" ]]; then rm -rf "$TMP"; fi
  local pid
  for pid in "$CHEAP_PID" "$FLOOD_PID"; do # authctl runs of ours still going
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
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

command -v curl >/dev/null 2>&1 || die "curl not found"
command -v flock >/dev/null 2>&1 || die "flock not found (Debian: util-linux)"
command -v psql >/dev/null 2>&1 || die "psql not found (Debian: postgresql-client)"

# 1. Services.
scripts/services.sh up >/dev/null
eval "$(scripts/services.sh env)"

# 2. Binaries.
log "make build"
make --no-print-directory -s build

mkdir -p "$STATE" "$OUT"
exec 8>"$STATE/lock"
flock -n 8 || die "another scripts/bench.sh is running (lock $STATE/lock)"
if [[ -s "$PIDFILE" ]]; then
  old=$(tr -dc '0-9' <"$PIDFILE")
  if is_our_worker "$old"; then
    log "stopping the bench worker left by an earlier run (pid $old)"
    stop_worker "$old"
  fi
  rm -f "$PIDFILE"
fi
# serves ADDR: does anything accept connections there?
serves() { curl -s -o /dev/null --max-time 2 "http://$1/" 2>/dev/null || [[ $? -ne 7 ]]; }
if [[ -z "$HTTP_ADDR" ]]; then
  for port in {18090..18099}; do
    serves "127.0.0.1:$port" || { HTTP_ADDR="127.0.0.1:$port"; break; }
  done
  [[ -n "$HTTP_ADDR" ]] || die "ports 18090 to 18099 are all taken; set BENCH_HTTP_ADDR to a free address"
elif serves "$HTTP_ADDR"; then
  die "something already serves http://$HTTP_ADDR; stop it or set BENCH_HTTP_ADDR to a free address"
fi

# 3. The worker, on a database of its own and dedicated topics.
ADMIN_URL=$DATABASE_URL
DB_NAME="authworker_bench_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
psql -q "$ADMIN_URL" -c "CREATE DATABASE \"$DB_NAME\"" >/dev/null
export DATABASE_URL="${ADMIN_URL%%\?*}"
DATABASE_URL="${DATABASE_URL%/*}/$DB_NAME"
[[ "$ADMIN_URL" == *\?* ]] && DATABASE_URL+="?${ADMIN_URL#*\?}"
export AUTH_REQUEST_TOPIC=auth.request.bench-$ID
export AUTH_RESPONSE_TOPIC=auth.response.bench-$ID
export AUTH_REPLY_TOPICS=auth.response.bench-$ID
export AUTH_DLQ_TOPIC=auth.request.bench-$ID.dlq
export AUTH_EVENTS_TOPIC=auth.events.bench-$ID
export AUTH_NOTIFICATIONS_TOPIC=auth.notifications.bench-$ID
log "starting bin/authworker on $AUTH_REQUEST_TOPIC -> $AUTH_RESPONSE_TOPIC (http $HTTP_ADDR, log $LOG)"
AUTH_KEY_ENCRYPTION_KEY="$(head -c 32 /dev/urandom | base64)" \
AUTH_CONSUMER_GROUP="authworker-bench-$ID" \
AUTH_EVENTS_RETENTION=1h \
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
    die "the worker was not ready within ${READY_TIMEOUT}s (http://$HTTP_ADDR/readyz)"
  fi
  sleep 0.5
done
log "worker ready (pid $WORKER_PID)"

# 5. The scenarios.
TMP=$(mktemp -d)
authctl=("$ROOT/bin/authctl" -request-topic "$AUTH_REQUEST_TOPIC" -reply-topic "$AUTH_RESPONSE_TOPIC" -client-id bench)
SCENARIOS=()

# section NAME TITLE COMMAND: the results.md section of a finished run,
# which wrote $TMP/NAME.md and $TMP/NAME.json.
section() {
  { printf '### %s\n\n`authctl bench %s`\n\n' "$2" "$3"; cat "$TMP/$1.md"; printf '\n'; } >"$TMP/$1.section.md"
  SCENARIOS+=("$1")
}

# scenario NAME TITLE ARGS...: one bench run in the foreground.
scenario() {
  local name=$1 title=$2
  shift 2
  log "scenario $name: authctl bench $*"
  "${authctl[@]}" bench -worker-pid "$WORKER_PID" -users "$USERS" -warmup "$WARMUP" -duration "$DURATION" \
    -out "$TMP/$name.json" -markdown "$@" 8>&- >"$TMP/$name.md"
  section "$name" "$title" "$*"
}

# okPerSecond of the first operation of a report (the only one in a
# login-only run), from its JSON.
first_ok_rate() {
  sed -n 's/^ *"okPerSecond": \([0-9.e+-]*\),*$/\1/p' "$1" | head -n 1
}

scenario login-max "Login saturation (closed loop)" -mix login=100 -concurrency 16
max_rate=$(first_ok_rate "$TMP/login-max.json")
half_rate=$(awk -v r="$max_rate" 'BEGIN { h = r / 2; if (h < 1) h = 1; printf "%.0f", h }')
log "logins served at most: $max_rate/s; open-loop runs at $half_rate/s"
scenario login-latency "Logins at half that rate (open loop)" -mix login=100 -rate "$half_rate"
scenario mixed "A mix at the same rate (open loop)" \
  -mix register=5,login=40,wrong-password=10,refresh=20,introspect=25 -rate "$half_rate"
scenario cheap-alone "Introspect and refresh alone (open loop)" -mix introspect=50,refresh=50 -rate "$CHEAP_RATE"
# The most the cheap operations serve: closed loops of 32 callers over 64
# accounts (a refresh waits for its account's last one: each rotates its
# session's token).
scenario refresh-max "Refresh saturation (closed loop)" -mix refresh=100 -concurrency 32 -users 64 -argon2 0
scenario introspect-max "Introspect saturation (closed loop)" -mix introspect=100 -concurrency 32 -users 64 -argon2 0

# Introspect and refresh during a login flood. The measured run starts
# first, so that its setup (a session for each account) is not slowed by
# the flood; the flood starts once its warm-up has, and outlasts its
# measurement. Neither measures argon2id: that would compete with the
# other's load.
cheap_warmup=20
flood_secs=$(( cheap_warmup + ${DURATION%s} + 10 ))
log "scenario cheap-in-flood: authctl bench -mix introspect=50,refresh=50 -rate $CHEAP_RATE -warmup ${cheap_warmup}s (in the background)"
"${authctl[@]}" bench -worker-pid "$WORKER_PID" -users "$USERS" -warmup "${cheap_warmup}s" -duration "$DURATION" \
  -mix introspect=50,refresh=50 -rate "$CHEAP_RATE" -argon2 0 -out "$TMP/cheap-in-flood.json" -markdown 8>&- \
  >"$TMP/cheap-in-flood.md" 2>"$TMP/cheap-in-flood.progress" &
CHEAP_PID=$!
for ((i = 0; i < 240; i++)); do
  grep -q 'warm-up:' "$TMP/cheap-in-flood.progress" 2>/dev/null && break
  kill -0 "$CHEAP_PID" 2>/dev/null || break
  sleep 0.5
done
log "scenario login-flood: authctl bench -mix login=100 -concurrency 16 (${flood_secs}s measured, in the background)"
"${authctl[@]}" bench -worker-pid "$WORKER_PID" -users 10 -warmup 3s -duration "${flood_secs}s" \
  -mix login=100 -concurrency 16 -argon2 0 -progress 0 -out "$TMP/login-flood.json" -markdown 8>&- \
  >"$TMP/login-flood.md" &
FLOOD_PID=$!
wait "$CHEAP_PID"
CHEAP_PID=""
cat "$TMP/cheap-in-flood.progress" >&2
wait "$FLOOD_PID"
FLOOD_PID=""
section cheap-in-flood "Introspect and refresh during a login flood (open loop)" \
  "-mix introspect=50,refresh=50 -rate $CHEAP_RATE -argon2 0 -warmup ${cheap_warmup}s"
section login-flood "The login flood beside it (closed loop)" \
  "-mix login=100 -concurrency 16 -argon2 0 -users 10 -warmup 3s -duration ${flood_secs}s"

# 6. The results.
{
  printf '# authctl bench: the standard scenario\n\n'
  printf 'Written by `make bench` (scripts/bench.sh) on %s, against one worker with\n' "$(date -u +%Y-%m-%dT%H:%MZ)"
  printf 'the default settings, the broker, PostgreSQL and Redis on this machine\n'
  printf '(%s CPUs); the client runs here too. Latencies are in milliseconds,\n' "$(nproc)"
  printf 'from when each request was due (open loop) or sent (closed loop).\n\n'
  for name in "${SCENARIOS[@]}"; do cat "$TMP/$name.section.md"; done
} >"$OUT/results.md"
{
  printf '[\n'
  sep=""
  for name in "${SCENARIOS[@]}"; do
    printf '%s{"scenario": "%s", "report": ' "$sep" "$name"
    cat "$TMP/$name.json"
    printf '}'
    sep=$',\n'
  done
  printf '\n]\n'
} >"$OUT/results.json"
log "wrote $OUT/results.md and $OUT/results.json"
