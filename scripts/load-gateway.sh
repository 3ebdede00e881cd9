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

expect 200 "$plain" "$secret"
expect 200 "$gw" "$secret"
expect 401 "$gw"
compare "nginx proxy" "$plain" "keyward gateway" "$gw"
