#!/usr/bin/env bash
# Load-tests POST /v1/verify against GET /healthz of the same server, in one run, and prints
# the throughput ratio. Both run on one machine with the same wrk settings, so the ratio holds
# even where absolute numbers are noisy.
#
#   scripts/load-verify.sh [seconds per run, default 5] [connections, default 32] [rounds, default 5]
#
# Healthz and verify runs alternate for several rounds so that a burst of noise from other work
# on the machine hits both; the ratio is reported per round and as the median.
#
# Needs wrk (Debian: apt-get install wrk; installed automatically when run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-5}
connections=${2:-32}
rounds=${3:-5}

if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null; else
    echo "wrk is required (apt-get install wrk)" >&2; exit 1; fi
fi
cargo build --release -q -p keyward
bin=target/release/keyward
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
export KEYWARD_URL="http://127.0.0.1:$port"
# The server gets core 0 and wrk core 1, so the two do not steal each other's cycles.
pin_server=(); pin_wrk=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  pin_server=(taskset -c 0); pin_wrk=(taskset -c 1)
  export TOKIO_WORKER_THREADS=1
fi
"${pin_server[@]}" "$bin" serve --listen "127.0.0.1:$port" --database-url "sqlite://$work/kw.db" --log-level warn >"$work/out" 2>"$work/err" &
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
ratios=()
for round in $(seq "$rounds"); do
  health=$("${pin_wrk[@]}" wrk -t1 -c"$connections" -d"${duration}s" "$KEYWARD_URL/healthz" | rps)
  verify=$("${pin_wrk[@]}" wrk -t1 -c"$connections" -d"${duration}s" -s "$work/verify.lua" "$KEYWARD_URL/v1/verify" | rps)
  ratio=$(python3 -c "print(f'{$verify / $health:.3f}')")
  ratios+=("$ratio")
  printf 'round %d: GET /healthz %9.0f req/s   POST /v1/verify %9.0f req/s   ratio %s\n' \
    "$round" "$health" "$verify" "$ratio"
done
python3 -c "import statistics,sys; r=[float(x) for x in sys.argv[1:]]; print(f'median verify / healthz = {statistics.median(r):.1%} (min {min(r):.1%}, max {max(r):.1%}, {len(r)} rounds)')" "${ratios[@]}"
