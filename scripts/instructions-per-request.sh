#!/usr/bin/env bash
# Counts the server's user-space instructions per request (valgrind callgrind) for two
# requests of the same server. Instruction counts do not depend on what else the machine is
# doing, so these ratios are repeatable where wrk's are noisy; they leave out the kernel's
# share (sockets), which wrk's figures include.
#
# The count is the whole process's, so it includes the usage batch writer, whose cost per
# record depends on how many records a batch holds (small with this script's serial client).
#
#   scripts/instructions-per-request.sh [health|policy] [requests per kind, default 2000]
#
#   health  GET /healthz against POST /v1/verify with a cached, realistic token.
#   policy  plain verify against verify with 1,000-entry allowlists at three levels and
#           rate limiting (the tokens of scripts/load-verify.sh policy).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-health}
n=${2:-2000}
case "$mode" in health|policy) ;; *) echo "mode must be health or policy" >&2; exit 2;; esac
command -v valgrind >/dev/null || { echo "valgrind is required" >&2; exit 1; }
. scripts/lib/bench-setup.sh
TOKIO_WORKER_THREADS=1 start_keyward valgrind --tool=callgrind --callgrind-out-file="$work/cg"

if [ "$mode" = health ]; then
  a_name="GET /healthz"; a_body=""
  b_name="POST /v1/verify"; b_body=$(verify_body "$(realistic_token)" 198.51.100.7)
else
  policy_tokens
  a_name="plain verify"; a_body=$(verify_body "$plain" 10.255.255.1)
  b_name="policy verify"; b_body=$(verify_body "$policy" 127.0.0.1)
fi

drive() { # body count (an empty body means GET /healthz)
  python3 - "$1" "$2" "$port" "$KEYWARD_TOKEN" <<'PY'
import http.client, sys
body, n, port, bearer = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for _ in range(n):
    if not body:
        c.request("GET", "/healthz")
    else:
        c.request("POST", "/v1/verify", body, {"content-type": "application/json",
                                                "authorization": "Bearer " + bearer})
    r = c.getresponse(); data = r.read()
    assert r.status == 200 and (not body or b'"valid":true' in data), data
PY
}
measure() { # body -> instructions for n requests
  callgrind_control -z "$server" >/dev/null
  drive "$1" "$n"
  callgrind_control -d "$server" >/dev/null
  sleep 1
  local last; last=$(ls -t "$work"/cg.* | head -1)
  awk '/^summary:/ {print $2}' "$last"
}
drive "$a_body" 20; drive "$b_body" 20   # warm the cache and the connection paths
a=$(measure "$a_body")
b=$(measure "$b_body")
python3 - "$a" "$b" "$n" "$a_name" "$b_name" <<'PY'
import sys
a, b, n, an, bn = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
print(f"{an:16} {a / n:8.0f} instructions/request")
print(f"{bn:16} {b / n:8.0f} instructions/request")
print(f"{bn} costs {b / a:.2f}x {an} in user-space instructions")
PY
