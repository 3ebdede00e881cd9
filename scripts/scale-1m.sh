#!/usr/bin/env bash
# keyward with 1,000,000 tokens in the store: how long `keyward serve` takes from its start to
# the first VALID verify, and the latency of cold verifies (tokens never verified before, so
# each one is a cache miss that loads the token from the store), on SQLite and PostgreSQL.
#
#   scripts/scale-1m.sh [sqlite|postgres|both, default both] [tokens, default 1000000] [cold verifies, default 5000]
#
# For each backend: a release keyward starts on a fresh store (a SQLite file; a fresh schema of
# the PostgreSQL at $KEYWARD_SCALE_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test),
# a role, a service user and one token are made through the CLI, and the server stops. Then
# the token's row is cloned in SQL once per generated token (scripts/lib/scale.py writes real
# secrets in keyward's format and their SHA-256 hashes; sqlite3's .import or psql's \copy loads
# them), and the server starts again on the full store: the time from that start to the first
# VALID answer for a token never verified is the start-up; then the sampled tokens are verified
# one by one on one keep-alive connection (cold), and once more (cached), timed by the client
# (Python's http.client, whose own overhead the cached pass shows); then the same on a second
# sample with usage records off (`[usage] enabled = false`). The PostgreSQL schema is
# dropped at the end. Set KEYWARD_BIN to use a built binary instead of building one, and
# KEYWARD_SCALE_LOG to a log filter (e.g. `sqlx=debug`) to keep the measured server's log in
# /tmp/keyward-scale-<backend>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-both}
tokens=${2:-1000000}
sample=${3:-5000}
pg_url=${KEYWARD_SCALE_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
case "$which" in sqlite|postgres|both) ;; *) echo "backend must be sqlite, postgres or both" >&2; exit 2;; esac

if [ -z "${KEYWARD_BIN:-}" ]; then
  cargo build --release -q -p keyward
  KEYWARD_BIN=target/release/keyward
fi
bin=$KEYWARD_BIN
work=$(mktemp -d)
server=
schema=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  [ -n "$schema" ] && psql -q "$pg_url" -c "DROP SCHEMA IF EXISTS \"$schema\" CASCADE" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$1"; }
now() { date +%s.%N; }

# start_server DATABASE_URL [NAME=VALUE…]: starts keyward in the background, with those
# variables set (sets $server, $port, KEYWARD_URL).
start_server() {
  port=$((20000 + RANDOM % 20000))
  export KEYWARD_URL="http://127.0.0.1:$port"
  env KEYWARD_CACHE__TTL_SECS=3600 "${@:2}" "$bin" serve --listen "127.0.0.1:$port" --database-url "$1" \
    --log-level "${KEYWARD_SCALE_LOG:-warn}" >"$work/out" 2>"$work/err" &
  server=$!
}
stop_server() { kill "$server"; wait "$server" 2>/dev/null || true; server=; }

# run BACKEND DATABASE_URL SQL_SHELL…: the whole measurement on one store.
run() {
  local backend=$1 url=$2; shift 2
  local sql=("$@")
  echo "== $backend: $tokens tokens"
  start_server "$url"
  for _ in $(seq 300); do grep -q 'kw_' "$work/out" 2>/dev/null && break; sleep 0.1; done
  KEYWARD_TOKEN=$(grep -o 'kw_[A-Za-z0-9]*' "$work/out" | head -1)
  export KEYWARD_TOKEN
  [ -n "$KEYWARD_TOKEN" ] || { cat "$work/err" >&2; exit 1; }
  "$bin" permission put orders:read >/dev/null
  local role user template
  role=$("$bin" role create --name Reader --kind api --scope workspace --permission 'orders:*' \
    --json | field "['id']")
  user=$("$bin" user create --kind service --name erp --role "$role" --json | field "['id']")
  template=$("$bin" token create --owner "$user" --name load --metadata '{"env":"bench"}' \
    --json | field "['token']['id']")
  # Stored as a plain UUID (the API shows it as tok_<32 hex>).
  template=$(python3 -c "import sys, uuid; print(uuid.UUID(sys.argv[1].split('_')[-1]))" "$template")
  stop_server

  local t=$SECONDS
  python3 scripts/lib/scale.py gen "$tokens" $((2 * sample)) "$work"
  echo "generated $tokens secrets and hashes in $((SECONDS - t)) s"
  t=$SECONDS
  # Every column of the template row but the three that differ per token, as `t.col, …`.
  local cols tcols
  if [ "$backend" = sqlite ]; then
    cols=$("${sql[@]}" "SELECT group_concat(name, ', ') FROM pragma_table_info('tokens') WHERE name NOT IN ('id', 'hash', 'start')")
  else
    cols=$("${sql[@]}" "SELECT string_agg(column_name, ', ' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'tokens' AND column_name NOT IN ('id', 'hash', 'start')")
  fi
  tcols=$(echo "$cols" | sed 's/[a-z_][a-z_]*/t.&/g')
  if [ "$backend" = sqlite ]; then
    sqlite3 "${url#sqlite://}" <<SQL
CREATE TABLE scale_gen (id TEXT, hash TEXT, start TEXT);
.mode csv
.import $work/rows.csv scale_gen
BEGIN;
INSERT INTO tokens (id, hash, start, $cols)
  SELECT g.id, g.hash, g.start, $tcols
  FROM scale_gen g CROSS JOIN (SELECT * FROM tokens WHERE id = '$template') t;
COMMIT;
DROP TABLE scale_gen;
ANALYZE;
SQL
  else
    "${sql[@]}" "CREATE TABLE scale_gen (id TEXT, hash TEXT, start TEXT)" >/dev/null
    psql -q "$pg_url" -c "SET search_path TO \"$schema\"" -c "\\copy scale_gen FROM '$work/rows.csv' WITH (FORMAT csv)"
    "${sql[@]}" "INSERT INTO tokens (id, hash, start, $cols)
      SELECT g.id, g.hash, g.start, $tcols
      FROM scale_gen g CROSS JOIN (SELECT * FROM tokens WHERE id = '$template') t" >/dev/null
    "${sql[@]}" "DROP TABLE scale_gen" >/dev/null
    "${sql[@]}" "VACUUM ANALYZE tokens" >/dev/null
  fi
  echo "inserted in $((SECONDS - t)) s: $("${sql[@]}" "SELECT count(*) FROM tokens") token rows"

  local probe t0 startup
  probe=$(head -1 "$work/sample.txt")
  sed -n "2,$((sample + 1))p" "$work/sample.txt" >"$work/cold.txt"
  sed -n "$((sample + 2)),\$p" "$work/sample.txt" >"$work/cold2.txt"
  t0=$(now)
  start_server "$url"
  startup=$(python3 scripts/lib/scale.py startup "$KEYWARD_URL" "$KEYWARD_TOKEN" "$probe" "$t0" 60)
  echo "start-up to the first VALID verify: $startup s"
  python3 scripts/lib/scale.py cold "$KEYWARD_URL" "$KEYWARD_TOKEN" "$work/cold.txt"
  echo "server RSS after: $(awk '/VmRSS/ {print $2 / 1024 " MiB"}' "/proc/$server/status")"
  stop_server
  # The same with usage records off (other never-verified tokens): what the usage writer's
  # batches, sharing the pool and the cores, add to the cold latency.
  start_server "$url" KEYWARD_USAGE__ENABLED=false
  python3 scripts/lib/scale.py startup "$KEYWARD_URL" "$KEYWARD_TOKEN" "$probe" "$(now)" 60 >/dev/null
  echo "usage records off:"
  python3 scripts/lib/scale.py cold "$KEYWARD_URL" "$KEYWARD_TOKEN" "$work/cold2.txt"
  stop_server
  if [ -n "${KEYWARD_SCALE_LOG:-}" ]; then cp "$work/err" "/tmp/keyward-scale-$backend.log"; fi
}

if [ "$which" != postgres ]; then
  db="$work/kw.db"
  run sqlite "sqlite://$db" sqlite3 "$db"
fi
if [ "$which" != sqlite ]; then
  schema="kwscale_$$_$RANDOM"
  export KEYWARD_DATABASE__SCHEMA=$schema
  KEYWARD_AUDIT__CHAIN_KEY=$(python3 -c "import os; print(os.urandom(32).hex())")
  export KEYWARD_AUDIT__CHAIN_KEY
  pgsql() { psql -qtA "$pg_url" -c "SET search_path TO \"$schema\"" -c "$1"; }
  run postgres "$pg_url" pgsql
fi
