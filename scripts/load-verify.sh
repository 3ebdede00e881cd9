#!/usr/bin/env bash
# Load-tests POST /v1/verify against GET /healthz of the same server, in one run, and prints
# the throughput ratio. Both run on one machine with the same wrk settings, so the ratio holds
# even where absolute numbers are noisy.
#
#   scripts/load-verify.sh [seconds per endpoint, default 10] [connections, default 32]
#
# Needs wrk (Debian: apt-get install wrk; installed automatically when run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
connections=${2:-32}

if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null; else
    echo "wrk is required (apt-get install wrk)" >&2; exit 1; fi
fi
cargo build --release -q -p keyward
bin=target/release/keyward
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
export KEYWARD_URL="http://127.0.0.1:$port"
"$bin" serve --listen "127.0.0.1:$port" --database-url "sqlite://$work/kw.db" --log-level warn >"$work/out" 2>"$work/err" &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do grep -q 'kw_' "$work/out" 2>/dev/null && break; sleep 0.1; done
export KEYWARD_TOKEN=$(grep -o 'kw_[A-Za-z0-9]*' "$work/out" | head -1)

# A realistic integration token: a role of several patterns, a narrowing, metadata.
for p in orders:read orders:write cart:read cart:write customers:read invoices:read; do
  "$bin" permission put "$p" >/dev/null
done
role=$("$bin" role create --name Integration --kind api --scope workspace \
  --permission 'orders:*' --permission 'cart:*' --permission customers:read --permission invoices:read --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
user=$("$bin" user create --kind service --name erp --role "$role" --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
secret=$("$bin" token create --owner "$user" --name load --metadata '{"env":"bench"}' --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')

cat >"$work/verify.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"token":"$secret","permissions":["orders:write"]}'
LUA
# Warm the cache (and check the answer) before measuring.
curl -fsS -X POST -H 'content-type: application/json' \
  -d "{\"token\":\"$secret\",\"permissions\":[\"orders:write\"]}" "$KEYWARD_URL/v1/verify" | grep -q '"valid":true'

rps() { awk '/Requests\/sec/ {print $2}'; }
health=$(wrk -t2 -c"$connections" -d"${duration}s" "$KEYWARD_URL/healthz" | tee "$work/health" | rps)
verify=$(wrk -t2 -c"$connections" -d"${duration}s" -s "$work/verify.lua" "$KEYWARD_URL/v1/verify" | tee "$work/verify" | rps)
echo "GET /healthz:     $health req/s  (p50 $(awk '/Latency/ {print $2}' "$work/health"))"
echo "POST /v1/verify:  $verify req/s  (p50 $(awk '/Latency/ {print $2}' "$work/verify"))"
python3 -c "print(f'verify / healthz = {$verify / $health:.1%}')"
