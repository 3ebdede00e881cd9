#!/usr/bin/env bash
# Load-tests keyward's gateway mode against nginx proxying the same upstream, in one run
# (rounds alternate, so noise hits both), and prints the throughput ratio:
#
#   gateway  client → keyward serve --upstream (route table, token check, streaming proxy) → upstream
#   nginx    client → nginx proxy_pass (no check at all) → the same upstream
#
# The upstream is a static nginx location (`return 200`).
#
#   scripts/load-gateway.sh [seconds per run, default 5] [connections, default 32] [rounds, default 5]
#
# Needs nginx and wrk (Debian packages; installed when run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-5}
connections=${2:-32}
rounds=${3:-5}

. scripts/lib/nginx-bench.sh
. scripts/lib/bench-setup.sh
up=$(free_port); plain=$(free_port); gw=$(free_port)

nginx_dirs "$work/nginx"
{
  nginx_http_head "$work/nginx"
  cat <<NGINX
  upstream app { server 127.0.0.1:$up; keepalive 64; }
  server { listen 127.0.0.1:$up; location / { return 200 'ok'; } }
  server { listen 127.0.0.1:$plain;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}
NGINX
} >"$work/nginx/nginx.conf"
start_nginx "$work/nginx" "http://127.0.0.1:$up/"

cat >"$work/keyward.toml" <<TOML
[gateway]
upstream = "http://127.0.0.1:$up"
listen = "127.0.0.1:$gw"
[[edge.routes]]
route = "GET /orders/{id}"
permissions = ["orders:read"]
TOML
KEYWARD_CONFIG="$work/keyward.toml" start_keyward "${pin_server[@]}"
trap 'kill $server $nginx 2>/dev/null; wait $server $nginx 2>/dev/null; rm -rf "$work"' EXIT
secret=$(realistic_token)

for p in "$plain" "$gw"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $secret" "http://127.0.0.1:$p/orders/7")
  [ "$code" = 200 ] || { echo "port $p answered $code, not 200" >&2; cat "$work/err" >&2; exit 1; }
done
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$gw/orders/7")
[ "$code" = 401 ] || { echo "the gateway without a token answered $code, not 401" >&2; exit 1; }

run() { "${pin_wrk[@]}" wrk -t1 -c"$connections" -d"${duration}s" -H "Authorization: Bearer $secret" "http://127.0.0.1:$1/orders/7" | rps; }
ratios=()
for round in $(seq "$rounds"); do
  n=$(run "$plain"); g=$(run "$gw")
  ratios+=("$(python3 -c "print(f'{$g / $n:.3f}')")")
  printf 'round %d: nginx proxy %8.0f req/s   keyward gateway %8.0f req/s\n' "$round" "$n" "$g"
done
median "keyward gateway / nginx proxy" "${ratios[@]}"
