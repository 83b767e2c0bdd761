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
#   4. a second bin/authworker, the rotation worker, for the JWT check
#      (RotationIT: Spring Security's NimbusJwtDecoder follows the keys
#      through rotations), on a database, topics, group and port of its own,
#      signing with ES256 (Nimbus has no EdDSA) on a policy short enough to
#      rotate twice in a test: a key signs for 6 s, published 2.5 s before,
#      tokens live 4 s, the JWKS may be cached 1 s:
#        AUTH_REQUEST_TOPIC=auth.request.interop.rotation
#        AUTH_RESPONSE_TOPIC=AUTH_REPLY_TOPICS=auth.response.interop.rotation
#        AUTH_ISSUER=http://127.0.0.1:18081  HTTP_ADDR=127.0.0.1:18081
#        AUTH_CONSUMER_GROUP=authworker-interop-rotation  (and its own DLQ
#        and events topics)
#   5. a third bin/authworker, the recipes worker, for the README's
#      "Verifying tokens" recipes, on a database, topics, group and port of
#      its own, with tokens that live 10 s (so that an expired one is at
#      hand in seconds):
#        AUTH_REQUEST_TOPIC=auth.request.interop.recipes
#        AUTH_RESPONSE_TOPIC=AUTH_REPLY_TOPICS=auth.response.interop.recipes
#        AUTH_ISSUER=http://127.0.0.1:18082  HTTP_ADDR=127.0.0.1:18082
#        AUTH_AUDIENCE=api  AUTH_ACCESS_TOKEN_TTL=10s
#        AUTH_CLIENT_SIGNING_ALGS=recipes-eddsa=EdDSA,recipes-rs256=RS256
#      (the default algorithm, ES256, for every other client)
#   6. waits for /readyz 200 of all three (INTEROP_READY_TIMEOUT, 60 s);
#      then, for each (client id, algorithm) pair of RECIPE_PAIRS,
#      registers a user with bin/authctl and logs in once, keeping that
#      access token to be the expired one
#   7. mvn -f interop/spring/pom.xml test, with the same bootstrap, topics
#      and event source (environment), the rotation worker's issuer and
#      topics (INTEROP_ROTATION_*), and -Dauthworker.schemas naming this
#      checkout's schemas/ folder
#   8. the recipes, each run once per pair against the recipes worker, once
#      the pair's expired token is older than its lifetime plus the leeway
#      the tests give the verifiers (INTEROP_LEEWAY_SECONDS, 1 s):
#        java    mvn -f interop/java/pom.xml test (Spring Boot resource
#                server, plain Nimbus)
#        go      go test ./... in interop/go (the project's verifier;
#                golang-jwt + keyfunc), a module of its own
#        python  python -m unittest in interop/python, in a virtual
#                environment at .services/interop/venv made from
#                interop/python/requirements.txt
#        node    node --test in interop/node, after npm ci
#      Each test mints fresh tokens through scripts/interop-mint.sh
#      (bin/authctl login) and must accept a genuine one and refuse a
#      tampered one, an unsigned (alg none) one, the expired one and, with
#      another audience configured, a genuine one. Every recipe must pass
#      for every pair whose algorithm it verifies (RECIPE_ALGS).
#
# The events topic outlives the run (AUTH_EVENTS_RETENTION, 7 days), so it
# holds earlier runs' events too; the Java consumer picks its own by user id.
#
# The workers are always stopped on exit; the exit status is 0 only when
# the Spring interop check and every recipe passed. Safe to run twice. The
# workers' logs are .services/interop/authworker.log,
# authworker-rotation.log and authworker-recipes.log. The first run
# downloads the Maven dependencies (Spring Kafka, kafka-clients, Avro,
# JUnit, Spring Boot) into ~/.m2, the Go modules of interop/go, the Python
# packages and jose (npm); with those cached, the recipes add about half a
# minute to a run.
#
# Tunables (environment): INTEROP_HTTP_ADDR (127.0.0.1:18080),
# INTEROP_ROTATION_HTTP_ADDR (127.0.0.1:18081), INTEROP_RECIPES_HTTP_ADDR
# (127.0.0.1:18082), INTEROP_READY_TIMEOUT (60), MVN (mvn), MVN_FLAGS
# (-B -ntp), GO (go), PYTHON (python3), NODE (node), NPM (npm).

set -Eeuo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"

STATE="$ROOT/.services/interop"
LOG="$STATE/authworker.log"
PIDFILE="$STATE/authworker.pid"
ROT_LOG="$STATE/authworker-rotation.log"
ROT_PIDFILE="$STATE/authworker-rotation.pid"
HTTP_ADDR=${INTEROP_HTTP_ADDR:-127.0.0.1:18080}
ROT_HTTP_ADDR=${INTEROP_ROTATION_HTTP_ADDR:-127.0.0.1:18081}
REC_LOG="$STATE/authworker-recipes.log"
REC_PIDFILE="$STATE/authworker-recipes.pid"
REC_HTTP_ADDR=${INTEROP_RECIPES_HTTP_ADDR:-127.0.0.1:18082}
REC_STATE="$STATE/recipes" # per-pair passwords and expired tokens, 0700
READY_TIMEOUT=${INTEROP_READY_TIMEOUT:-60}
MVN=${MVN:-mvn}
read -r -a MVN_FLAGS <<<"${MVN_FLAGS:--B -ntp}"
GO=${GO:-go}
PYTHON=${PYTHON:-python3}
NODE=${NODE:-node}
NPM=${NPM:-npm}

# The recipes of the README's "Verifying tokens" run once for each (client
# id, algorithm) pair: the worker signs the tokens asked for under that
# client id with that algorithm, and the tests check the alg they get.
# The default client gets the default algorithm (ES256); the others are
# given theirs by the worker's AUTH_CLIENT_SIGNING_ALGS, built from this
# list.
RECIPE_PAIRS=("recipes-es256=ES256" "recipes-eddsa=EdDSA" "recipes-rs256=RS256")
# The algorithms each recipe verifies: a pair of another algorithm is not
# run through it, and the run says so. Nimbus (so Spring) has no EdDSA
# without extra code (README).
declare -A RECIPE_ALGS=(
  [java]="ES256 RS256"
  [go]="EdDSA ES256 RS256"
  [python]="EdDSA ES256 RS256"
  [node]="EdDSA ES256 RS256"
)
RECIPES=(java go python node)
RECIPE_TTL=10 # seconds: AUTH_ACCESS_TOKEN_TTL of the recipes worker
LEEWAY=1      # seconds of leeway the tests give the verifiers

log() { printf '[interop] %s\n' "$*" >&2; }
die() { printf '[interop] ERROR: %s\n' "$*" >&2; exit 1; }

show_log() { # [log file]
  local f=${1:-$LOG}
  if [[ -s "$f" ]]; then
    printf '[interop] ---- last 40 lines of %s ----\n' "$f" >&2
    tail -n 40 "$f" >&2 || true
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
ROT_PID=""
REC_PID=""
DB_NAME=""
ROT_DB_NAME=""
REC_DB_NAME=""
ADMIN_URL=""
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  local rc=$? pid db
  for pid in "$WORKER_PID" "$ROT_PID" "$REC_PID"; do
    [[ -n "$pid" ]] || continue
    log "stopping worker (pid $pid)"
    stop_worker "$pid"
    wait "$pid" 2>/dev/null || true
  done
  [[ -n "$WORKER_PID" ]] && rm -f "$PIDFILE"
  [[ -n "$ROT_PID" ]] && rm -f "$ROT_PIDFILE"
  [[ -n "$REC_PID" ]] && rm -f "$REC_PIDFILE"
  rm -rf "$REC_STATE"
  for db in "$DB_NAME" "$ROT_DB_NAME" "$REC_DB_NAME"; do
    [[ -n "$db" ]] || continue
    psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 \
      || log "could not drop database $db"
  done
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

command -v "$MVN" >/dev/null 2>&1 || die "Maven ('$MVN') not found; install it (Debian: apt-get install maven)"
command -v curl >/dev/null 2>&1 || die "curl not found"
command -v flock >/dev/null 2>&1 || die "flock not found (Debian: util-linux)"
command -v psql >/dev/null 2>&1 || die "psql not found (Debian: postgresql-client)"
command -v "$GO" >/dev/null 2>&1 || die "Go ('$GO') not found"
command -v "$PYTHON" >/dev/null 2>&1 || die "Python ('$PYTHON') not found (Debian: python3 python3-venv)"
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || die "Python's venv module is missing (Debian: python3-venv)"
command -v "$NODE" >/dev/null 2>&1 || die "Node.js ('$NODE') not found (Debian: nodejs)"
command -v "$NPM" >/dev/null 2>&1 || die "npm ('$NPM') not found (Debian: npm)"

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
# Workers left over from an interrupted run (killed without its trap).
for f in "$PIDFILE" "$ROT_PIDFILE" "$REC_PIDFILE"; do
  [[ -s "$f" ]] || continue
  old=$(tr -dc '0-9' <"$f")
  if is_our_worker "$old"; then
    log "stopping the interop worker left by an earlier run (pid $old)"
    stop_worker "$old"
  fi
  rm -f "$f"
done
if curl -s -o /dev/null --max-time 2 "http://$HTTP_ADDR/healthz"; then
  die "something already serves http://$HTTP_ADDR; stop it or set INTEROP_HTTP_ADDR to a free address"
fi
if curl -s -o /dev/null --max-time 2 "http://$ROT_HTTP_ADDR/healthz"; then
  die "something already serves http://$ROT_HTTP_ADDR; stop it or set INTEROP_ROTATION_HTTP_ADDR to a free address"
fi
if curl -s -o /dev/null --max-time 2 "http://$REC_HTTP_ADDR/healthz"; then
  die "something already serves http://$REC_HTTP_ADDR; stop it or set INTEROP_RECIPES_HTTP_ADDR to a free address"
fi

# 3. The worker, on a database of its own and dedicated topics.
ADMIN_URL=$DATABASE_URL
new_db_name() { echo "authworker_interop_$1$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"; }
db_url() { # name: the URL of database name on the server of ADMIN_URL
  local u="${ADMIN_URL%%\?*}"
  u="${u%/*}/$1"
  [[ "$ADMIN_URL" == *\?* ]] && u+="?${ADMIN_URL#*\?}"
  echo "$u"
}
DB_NAME=$(new_db_name "")
psql -q "$ADMIN_URL" -c "CREATE DATABASE \"$DB_NAME\"" >/dev/null
DATABASE_URL=$(db_url "$DB_NAME")
export DATABASE_URL
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

# 4. The rotation worker: ES256, a short rotation policy, everything its own.
ROT_ISSUER="http://$ROT_HTTP_ADDR"
ROT_REQUEST_TOPIC=auth.request.interop.rotation
ROT_RESPONSE_TOPIC=auth.response.interop.rotation
ROT_DB_NAME=$(new_db_name "rotation_")
psql -q "$ADMIN_URL" -c "CREATE DATABASE \"$ROT_DB_NAME\"" >/dev/null
log "starting the rotation worker (ES256, a key every 6 s) on $ROT_REQUEST_TOPIC -> $ROT_RESPONSE_TOPIC (http $ROT_HTTP_ADDR, log $ROT_LOG)"
env DATABASE_URL="$(db_url "$ROT_DB_NAME")" \
  AUTH_KEY_ENCRYPTION_KEY="$(head -c 32 /dev/urandom | base64)" \
  AUTH_REQUEST_TOPIC="$ROT_REQUEST_TOPIC" \
  AUTH_RESPONSE_TOPIC="$ROT_RESPONSE_TOPIC" AUTH_REPLY_TOPICS="$ROT_RESPONSE_TOPIC" \
  AUTH_DLQ_TOPIC=auth.request.interop.rotation.dlq \
  AUTH_EVENTS_TOPIC=auth.events.interop.rotation \
  AUTH_EVENT_SOURCE=https://auth.interop.test/rotation \
  AUTH_CONSUMER_GROUP=authworker-interop-rotation \
  HTTP_ADDR="$ROT_HTTP_ADDR" AUTH_ISSUER="$ROT_ISSUER" AUTH_AUDIENCE=api \
  AUTH_SIGNING_ALG=ES256 \
  AUTH_KEY_ROTATION_PERIOD=6s AUTH_KEY_PREPUBLISH=2500ms AUTH_KEY_RELOAD_INTERVAL=1s \
  AUTH_JWKS_MAX_AGE=1s AUTH_ACCESS_TOKEN_TTL=4s \
  "$ROOT/bin/authworker" >"$ROT_LOG" 2>&1 </dev/null 8>&- &
ROT_PID=$!
echo "$ROT_PID" >"$ROT_PIDFILE"

# 5. The recipes worker: short-lived tokens, everything its own.
REC_ISSUER="http://$REC_HTTP_ADDR"
REC_REQUEST_TOPIC=auth.request.interop.recipes
REC_RESPONSE_TOPIC=auth.response.interop.recipes
REC_DB_NAME=$(new_db_name "recipes_")
psql -q "$ADMIN_URL" -c "CREATE DATABASE \"$REC_DB_NAME\"" >/dev/null
log "starting the recipes worker (tokens live ${RECIPE_TTL}s) on $REC_REQUEST_TOPIC -> $REC_RESPONSE_TOPIC (http $REC_HTTP_ADDR, log $REC_LOG)"
# Every pair but the first (the default, ES256) names its algorithm.
client_algs=$(IFS=,; echo "${RECIPE_PAIRS[*]:1}")
env DATABASE_URL="$(db_url "$REC_DB_NAME")" \
  AUTH_KEY_ENCRYPTION_KEY="$(head -c 32 /dev/urandom | base64)" \
  AUTH_REQUEST_TOPIC="$REC_REQUEST_TOPIC" \
  AUTH_RESPONSE_TOPIC="$REC_RESPONSE_TOPIC" AUTH_REPLY_TOPICS="$REC_RESPONSE_TOPIC" \
  AUTH_DLQ_TOPIC=auth.request.interop.recipes.dlq \
  AUTH_EVENTS_TOPIC=auth.events.interop.recipes \
  AUTH_EVENT_SOURCE=https://auth.interop.test/recipes \
  AUTH_CONSUMER_GROUP=authworker-interop-recipes \
  HTTP_ADDR="$REC_HTTP_ADDR" AUTH_ISSUER="$REC_ISSUER" AUTH_AUDIENCE=api \
  AUTH_CLIENT_SIGNING_ALGS="$client_algs" \
  AUTH_ACCESS_TOKEN_TTL="${RECIPE_TTL}s" \
  "$ROOT/bin/authworker" >"$REC_LOG" 2>&1 </dev/null 8>&- &
REC_PID=$!
echo "$REC_PID" >"$REC_PIDFILE"

# 6. Ready?
wait_ready() { # pid addr log
  local pid=$1 addr=$2 wlog=$3 deadline
  deadline=$(( $(date +%s) + READY_TIMEOUT ))
  until curl -sf -o /dev/null --max-time 2 "http://$addr/readyz"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      show_log "$wlog"
      die "the worker at $addr exited during start-up"
    fi
    if (( $(date +%s) >= deadline )); then
      show_log "$wlog"
      curl -s --max-time 2 "http://$addr/readyz" >&2 || true
      die "the worker was not ready within ${READY_TIMEOUT}s (http://$addr/readyz)"
    fi
    sleep 0.5
  done
}
wait_ready "$WORKER_PID" "$HTTP_ADDR" "$LOG"
wait_ready "$ROT_PID" "$ROT_HTTP_ADDR" "$ROT_LOG"
wait_ready "$REC_PID" "$REC_HTTP_ADDR" "$REC_LOG"
log "workers ready"

# A user for each pair, and the token that will have expired when the
# recipes run.
rm -rf "$REC_STATE"
mkdir -m 700 "$REC_STATE"
pair_env() { # client alg: the environment of a recipe test for the pair
  printf '%s\n' \
    "INTEROP_ISSUER=$REC_ISSUER" \
    "INTEROP_JWKS_URI=$REC_ISSUER/.well-known/jwks.json" \
    "INTEROP_AUDIENCE=api" \
    "INTEROP_CLIENT_ID=$1" "INTEROP_ALG=$2" \
    "INTEROP_LEEWAY_SECONDS=$LEEWAY" \
    "INTEROP_MINT=$ROOT/scripts/interop-mint.sh" \
    "INTEROP_EXPIRED_TOKEN_FILE=$REC_STATE/$1.expired" \
    "INTEROP_EMAIL=$(cat "$REC_STATE/$1.email")" \
    "INTEROP_PASSWORD_FILE=$REC_STATE/$1.password" \
    "INTEROP_REQUEST_TOPIC=$REC_REQUEST_TOPIC" "INTEROP_REPLY_TOPIC=$REC_RESPONSE_TOPIC" \
    "AUTHCTL=$ROOT/bin/authctl" \
    "AUTH_ISSUER=$REC_ISSUER" "AUTH_AUDIENCE=api" "AUTH_TOKEN_LEEWAY=${LEEWAY}s"
}
for pair in "${RECIPE_PAIRS[@]}"; do
  client=${pair%%=*}
  echo "recipes-$client-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')@example.com" >"$REC_STATE/$client.email"
  (umask 077 && head -c 24 /dev/urandom | base64 >"$REC_STATE/$client.password")
  mapfile -t penv < <(pair_env "$client" "${pair#*=}")
  "$ROOT/bin/authctl" -client-id "$client" \
    -request-topic "$REC_REQUEST_TOPIC" -reply-topic "$REC_RESPONSE_TOPIC" \
    register -email "$(cat "$REC_STATE/$client.email")" <"$REC_STATE/$client.password" >/dev/null \
    || die "could not register the recipes user of $client"
  (umask 077 && env "${penv[@]}" scripts/interop-mint.sh >"$REC_STATE/$client.expired") \
    || die "could not mint the expired token of $client"
done
EXPIRED_AT=$(( $(date +%s) + RECIPE_TTL ))

# 7. The Spring client.
export INTEROP_ROTATION_ISSUER="$ROT_ISSUER"
export INTEROP_ROTATION_REQUEST_TOPIC="$ROT_REQUEST_TOPIC"
export INTEROP_ROTATION_RESPONSE_TOPIC="$ROT_RESPONSE_TOPIC"
MVN_ARGS=("${MVN_FLAGS[@]}" -f interop/spring/pom.xml "-Dauthworker.schemas=$ROOT/schemas" test)
log "$MVN ${MVN_ARGS[*]}"
set +e
"$MVN" "${MVN_ARGS[@]}" 8>&-
rc=$?
set -e
if (( rc == 0 )); then
  log "PASS: Spring ReplyingKafkaTemplate <-> authworker; Spring Security's NimbusJwtDecoder through key rotations"
else
  show_log
  show_log "$ROT_LOG"
  log "FAIL: mvn exited $rc (Spring output above, worker logs: $LOG, $ROT_LOG)"
fi

# 8. The recipes of "Verifying tokens".
log "installing the recipes' dependencies"
VENV="$STATE/venv"
REQS=interop/python/requirements.txt
if ! cmp -s "$REQS" "$VENV/requirements.txt" 2>/dev/null; then
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQS"
  cp "$REQS" "$VENV/requirements.txt"
fi
(cd interop/node && "$NPM" ci --no-audit --no-fund --loglevel=error >/dev/null)

run_recipe() { # name
  case $1 in
    java) "$MVN" "${MVN_FLAGS[@]}" -f interop/java/pom.xml test ;;
    go) (cd interop/go && "$GO" test -count=1 ./...) ;;
    python) (cd interop/python && "$VENV/bin/python" -m unittest -v test_verify_token) ;;
    node) (cd interop/node && "$NODE" --test) ;;
  esac
}

wait_s=$(( EXPIRED_AT + LEEWAY + 1 - $(date +%s) ))
if (( wait_s > 0 )); then
  log "waiting ${wait_s}s for the expired tokens to be past the leeway"
  sleep "$wait_s"
fi
results=()
recipes_failed=0
for pair in "${RECIPE_PAIRS[@]}"; do
  client=${pair%%=*} alg=${pair#*=}
  mapfile -t penv < <(pair_env "$client" "$alg")
  for recipe in "${RECIPES[@]}"; do
    if [[ " ${RECIPE_ALGS[$recipe]} " != *" $alg "* ]]; then
      results+=("not run: $recipe with $alg (it verifies ${RECIPE_ALGS[$recipe]})")
      continue
    fi
    log "recipe $recipe, client $client ($alg)"
    start=$(date +%s)
    set +e
    (export "${penv[@]}" && run_recipe "$recipe") 8>&-
    rrc=$?
    set -e
    if (( rrc == 0 )); then
      results+=("PASS: $recipe with $client ($alg), $(( $(date +%s) - start ))s")
    else
      results+=("FAIL: $recipe with $client ($alg): exit $rrc")
      recipes_failed=1
    fi
  done
done
for r in "${results[@]}"; do log "$r"; done
if (( recipes_failed )); then
  show_log "$REC_LOG"
  log "FAIL: a recipe of \"Verifying tokens\" failed (output above, worker log: $REC_LOG)"
  (( rc != 0 )) || rc=1
else
  log "PASS: every recipe of \"Verifying tokens\" accepted genuine tokens and refused tampered, unsigned, expired and wrong-audience ones"
fi
exit "$rc"
