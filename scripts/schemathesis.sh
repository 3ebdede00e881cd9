#!/usr/bin/env bash
# Checks a live keyward (SQLite, debug build) against its own OpenAPI document with
# schemathesis: no server errors, every response as the document says.
#
#   scripts/schemathesis.sh [max examples per operation, default 30]
#
# Installs schemathesis into .venv-schemathesis (PyPI) when it is missing. The admin token it
# uses can do everything, at up to 1,000,000 requests a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-30}
venv=${SCHEMATHESIS_VENV:-.venv-schemathesis}
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'schemathesis>=4,<5'
fi
cargo build -q -p keyward
bin=$PWD/target/debug/keyward
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
(cd "$work" && KEYWARD_TOKENS__ADMIN_RATE_LIMIT_PER_MINUTE=1000000 exec "$bin" serve --listen 127.0.0.1:0 >"$work/out" 2>"$work/log") &
server=$!
for _ in $(seq 100); do grep -q 'export KEYWARD_TOKEN=' "$work/out" 2>/dev/null && break; sleep 0.1; done
KEYWARD_URL=$(sed -n 's/.*export KEYWARD_URL=//p' "$work/out" | head -1)
KEYWARD_TOKEN=$(sed -n 's/.*export KEYWARD_TOKEN=//p' "$work/out" | head -1)
export KEYWARD_URL KEYWARD_TOKEN
[ -n "$KEYWARD_TOKEN" ] || { echo "keyward did not start:"; cat "$work/log"; exit 1; }
"$venv/bin/schemathesis" run "$KEYWARD_URL/openapi.json" \
  --header "Authorization: Bearer $KEYWARD_TOKEN" \
  --checks not_a_server_error,response_schema_conformance,content_type_conformance \
  --phases examples,coverage,fuzzing \
  --max-examples "$examples" --workers 2 --no-color \
  --suppress-health-check all --warnings off
echo "server log lines at WARN or above:"
! grep -E ' (WARN|ERROR) ' "$work/log"
