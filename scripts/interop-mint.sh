#!/usr/bin/env bash
# Prints a fresh access token of the interop recipes worker, asked for under
# INTEROP_CLIENT_ID: `bin/authctl login` as the user scripts/interop.sh
# registered for that client. It is the INTEROP_MINT of every recipe test.
#
# Environment (set by scripts/interop.sh): AUTHCTL, KAFKA_BOOTSTRAP_SERVERS,
# INTEROP_CLIENT_ID, INTEROP_REQUEST_TOPIC, INTEROP_REPLY_TOPIC,
# INTEROP_EMAIL, INTEROP_PASSWORD_FILE.
#
# Only the access token reaches standard output; authctl's reply, which
# holds a refresh token too, is never printed.
set -Eeuo pipefail

reply=$("$AUTHCTL" -bootstrap "$KAFKA_BOOTSTRAP_SERVERS" -client-id "$INTEROP_CLIENT_ID" \
  -request-topic "$INTEROP_REQUEST_TOPIC" -reply-topic "$INTEROP_REPLY_TOPIC" \
  login -email "$INTEROP_EMAIL" <"$INTEROP_PASSWORD_FILE")
token=$(sed -n 's/^ *"AccessToken": "\([^"]*\)",\{0,1\}$/\1/p' <<<"$reply")
if [[ -z "$token" ]]; then
  echo "interop-mint: authctl's login reply has no AccessToken" >&2
  exit 1
fi
printf '%s\n' "$token"
