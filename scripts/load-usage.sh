#!/usr/bin/env bash
# What usage records cost, and whether any is lost at full speed. Two servers of the same
# release build on fresh SQLite files, one with usage records on (the default) and one with
# `[usage] enabled = false`; wrk alternates between them for several rounds on the same cached
# VALID verify, and the ratio is reported per round and as the median. Then one long run at
# full speed against the usage-on server, after which every answered verify must be in the
# token's usage report (and `keyward_usage_records_dropped_total` must be 0).
#
#   scripts/load-usage.sh [seconds per round, default 5] [connections, default 32] [rounds, default 5] [seconds of the long run, default 60]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-5}
connections=${2:-32}
rounds=${3:-5}
long=${4:-60}
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }
pin_server=(); pin_wrk=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  pin_server=(taskset -c 0); pin_wrk=(taskset -c 1)
  export TOKIO_WORKER_THREADS=1
fi
. scripts/lib/bench-setup.sh

# The usage-off server first; one trap below stops both.
KEYWARD_USAGE__ENABLED=false start_keyward "${pin_server[@]}"
off_url=$KEYWARD_URL; off_server=$server; off_work=$work
off_secret=$(realistic_token)
work=$(mktemp -d); port=$((port + 1)); export KEYWARD_URL="http://127.0.0.1:$port"
start_keyward "${pin_server[@]}"
trap 'kill $server $off_server 2>/dev/null; wait $server $off_server 2>/dev/null; rm -rf "$work" "$off_work"' EXIT
on_url=$KEYWARD_URL
on_secret=$(realistic_token)

# Each server's admin token verifies its own tokens.
off_admin=$(grep -o 'kw_[A-Za-z0-9]*' "$off_work/out" | head -1)
wrk_script "$work/off.lua" "$(verify_body "$off_secret" 198.51.100.7)" "$off_admin"
wrk_script "$work/on.lua" "$(verify_body "$on_secret" 198.51.100.7)"
for pair in "$off_url off" "$on_url on"; do
  set -- $pair
  body=$(sed -n "s/^wrk.body = '\(.*\)'$/\1/p" "$work/$2.lua")
  bearer=$(sed -n 's/^wrk.headers\["Authorization"\] = "Bearer \(.*\)"$/\1/p' "$work/$2.lua")
  curl -fsS -X POST -H 'content-type: application/json' -H "authorization: Bearer $bearer" \
    -d "$body" "$1/v1/verify" | grep -q '"valid":true' || { echo "$2: not VALID" >&2; exit 1; }
done

rps() { awk '/Requests\/sec/ {print $2}'; }
ratios=()
for round in $(seq "$rounds"); do
  off=$("${pin_wrk[@]}" wrk -t1 -c"$connections" -d"${duration}s" -s "$work/off.lua" "$off_url/v1/verify" | rps)
  on=$("${pin_wrk[@]}" wrk -t1 -c"$connections" -d"${duration}s" -s "$work/on.lua" "$on_url/v1/verify" | rps)
  ratio=$(python3 -c "print(f'{$on / $off:.3f}')")
  ratios+=("$ratio")
  printf 'round %d: usage off %9.0f req/s   usage on %9.0f req/s   ratio %s\n' "$round" "$off" "$on" "$ratio"
done
python3 -c "import statistics,sys; r=[float(x) for x in sys.argv[1:]]; print(f'median usage on / usage off = {statistics.median(r):.1%} (min {min(r):.1%}, max {max(r):.1%}, {len(r)} rounds)')" "${ratios[@]}"

# The long run, on the same token: what it adds to the token's count.
long_id=$("$bin" token list --json | python3 -c "
import json,sys; items=json.load(sys.stdin)
items = items['items'] if isinstance(items, dict) else items
print([t['id'] for t in items if t['name'] == 'load'][-1])")
sleep 1   # the rounds' last batch (flush_interval_ms is 200)
before=$("$bin" token usage "$long_id" --json | field "['total']")
out=$("${pin_wrk[@]}" wrk -t1 -c"$connections" -d"${long}s" -s "$work/on.lua" "$on_url/v1/verify")
answered=$(awk '/requests in/ {print $1}' <<<"$out")
non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out"); non2xx=${non2xx:-0}
sleep 2
after=$("$bin" token usage "$long_id" --json | field "['total']")
counted=$((after - before))
dropped=$(curl -fsS "$on_url/metrics" | awk '/^keyward_usage_records_dropped_total / {print $2}')
echo "long run: ${long}s at full speed, $answered verifies answered ($non2xx not 2xx), $counted counted in the usage report, $dropped dropped"
# wrk does not count the answers still in flight when it stops (at most one per connection).
python3 -c "import sys; a,c,d=map(int,sys.argv[1:]); sys.exit(0 if d == 0 and a <= c <= a + $connections else 1)" \
  "$answered" "$counted" "${dropped%.*}" && echo "every answered verify was counted" \
  || { echo "usage lost or miscounted" >&2; exit 1; }
