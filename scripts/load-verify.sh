#!/usr/bin/env bash
# Load-tests keyward's verify API with wrk, comparing two endpoints or requests of the same
# server in one run and printing the throughput ratio, which holds where absolute numbers are
# noisy. Runs of the two alternate for several rounds so a burst of noise from other work on
# the machine hits both; the ratio is reported per round and as the median.
#
#   scripts/load-verify.sh [health|policy] [seconds per run, default 5] [connections, default 32] [rounds, default 5]
#
#   health  POST /v1/verify (a realistic token, rate limiting on) against GET /healthz.
#   policy  verify with a 1,000-CIDR allowlist at each of the three levels and rate limiting on,
#           against plain verify (no allowlist, from an internal network: no rate limit step).
#
# Needs wrk (Debian: apt-get install wrk; installed automatically when run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-health}
duration=${2:-5}
connections=${3:-32}
rounds=${4:-5}
case "$mode" in health|policy) ;; *) echo "mode must be health or policy" >&2; exit 2;; esac

if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null; else
    echo "wrk is required (apt-get install wrk)" >&2; exit 1; fi
fi
# The server gets core 0 and wrk core 1, so the two do not steal each other's cycles.
pin_server=(); pin_wrk=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  pin_server=(taskset -c 0); pin_wrk=(taskset -c 1)
  export TOKIO_WORKER_THREADS=1
fi
. scripts/lib/bench-setup.sh
start_keyward "${pin_server[@]}"

if [ "$mode" = health ]; then
  wrk_script "$work/b.lua" "$(verify_body "$(realistic_token)" 198.51.100.7)"
  a_name="GET /healthz"; a_args=("$KEYWARD_URL/healthz")
  b_name="POST /v1/verify"; b_args=(-s "$work/b.lua" "$KEYWARD_URL/v1/verify")
else
  policy_tokens
  wrk_script "$work/a.lua" "$(verify_body "$plain" 10.255.255.1)"
  wrk_script "$work/b.lua" "$(verify_body "$policy" 127.0.0.1)"
  a_name="plain verify"; a_args=(-s "$work/a.lua" "$KEYWARD_URL/v1/verify")
  b_name="policy verify"; b_args=(-s "$work/b.lua" "$KEYWARD_URL/v1/verify")
fi
# Check both requests before measuring (and warm the cache).
for f in a b; do
  [ -f "$work/$f.lua" ] || continue
  body=$(sed -n "s/^wrk.body = '\(.*\)'$/\1/p" "$work/$f.lua")
  curl -fsS -X POST -H 'content-type: application/json' \
    -H "authorization: Bearer $KEYWARD_TOKEN" -d "$body" "$KEYWARD_URL/v1/verify" |
    grep -q '"valid":true' || { echo "request $f is not VALID" >&2; exit 1; }
done

rps() { awk '/Requests\/sec/ {print $2}'; }
ratios=()
for round in $(seq "$rounds"); do
  a=$("${pin_wrk[@]}" wrk -t1 -c"$connections" -d"${duration}s" "${a_args[@]}" | rps)
  b=$("${pin_wrk[@]}" wrk -t1 -c"$connections" -d"${duration}s" "${b_args[@]}" | rps)
  ratio=$(python3 -c "print(f'{$b / $a:.3f}')")
  ratios+=("$ratio")
  printf 'round %d: %s %9.0f req/s   %s %9.0f req/s   ratio %s\n' \
    "$round" "$a_name" "$a" "$b_name" "$b" "$ratio"
done
python3 -c "import statistics,sys; r=[float(x) for x in sys.argv[2:]]; print(f'median {sys.argv[1]} = {statistics.median(r):.1%} (min {min(r):.1%}, max {max(r):.1%}, {len(r)} rounds)')" "$b_name / $a_name" "${ratios[@]}"
