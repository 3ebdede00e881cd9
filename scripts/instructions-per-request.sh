#!/usr/bin/env bash
# Counts the server's user-space instructions per request (valgrind callgrind) for
# GET /healthz and for POST /v1/verify with a cached token. Instruction counts do not depend
# on what else the machine is doing, so this ratio is repeatable where wrk's is noisy; it
# leaves out the kernel's share (sockets), which wrk's figure includes.
#
#   scripts/instructions-per-request.sh [requests per endpoint, default 2000]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
command -v valgrind >/dev/null || { echo "valgrind is required" >&2; exit 1; }
cargo build --release -q -p keyward
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
KEYWARD_CACHE__TTL_SECS=3600 TOKIO_WORKER_THREADS=1 valgrind --tool=callgrind \
  --callgrind-out-file="$work/cg" target/release/keyward serve --listen "127.0.0.1:$port" \
  --database-url "sqlite://$work/kw.db" --log-level warn >"$work/out" 2>"$work/err" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 200); do grep -q 'kw_' "$work/out" 2>/dev/null && break; sleep 0.3; done
token=$(grep -o 'kw_[A-Za-z0-9]*' "$work/out" | head -1)

drive() { # kind count
  python3 - "$1" "$2" "$port" "$token" <<'PY'
import http.client, json, sys
kind, n, port, token = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
body = json.dumps({"token": token, "permissions": ["keyward.tokens:read"]})
for _ in range(n):
    if kind == "health":
        c.request("GET", "/healthz")
    else:
        c.request("POST", "/v1/verify", body, {"content-type": "application/json"})
    r = c.getresponse(); data = r.read()
    assert r.status == 200 and (kind == "health" or b'"valid":true' in data), data
PY
}
measure() { # kind -> instructions for n requests
  callgrind_control -z "$server" >/dev/null
  drive "$1" "$n"
  callgrind_control -d "$server" >/dev/null
  sleep 1
  local last; last=$(ls -t "$work"/cg.* | head -1)
  awk '/^summary:/ {print $2}' "$last"
}
drive verify 20   # warm the cache and the connection paths
health=$(measure health)
verify=$(measure verify)
python3 - "$health" "$verify" "$n" <<'PY'
import sys
h, v, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
print(f"GET /healthz:    {h / n:8.0f} instructions/request")
print(f"POST /v1/verify: {v / n:8.0f} instructions/request")
print(f"verify costs {v / h:.2f}x healthz in user-space instructions")
PY
