#!/usr/bin/env bash
# Load-tests keyward behind a real nginx, with the shipped docs/proxies/nginx.conf, and prints
# throughput ratios measured in one run (rounds alternate, so noise hits every variant):
#
#   auth     nginx auth_request → keyward /auth → a static upstream (nginx `return 200`)
#   bare     the same nginx auth_request → a bare 204 endpoint (nginx `return 204`) → the same upstream
#
# (Not keyward's own /healthz as the bare endpoint: it answers with a body, which nginx does not
# read from an auth subrequest, so it closes the kept-alive connection after every request.)
#
#   scripts/load-forward-auth.sh [seconds per run, default 5] [connections, default 32] [rounds, default 5]
#
# The ratio auth / bare is what putting keyward in front costs against the cheapest possible
# auth subrequest. Both nginx configurations are the shipped docs/proxies/nginx.conf.
# Needs nginx and wrk (Debian packages; installed when run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-5}
connections=${2:-32}
rounds=${3:-5}

. scripts/lib/nginx-bench.sh
. scripts/lib/bench-setup.sh
cat >"$work/keyward.toml" <<TOML
[policy]
trusted_proxies = ["127.0.0.1"]
[[edge.routes]]
route = "GET /orders/{id}"
permissions = ["orders:read"]
TOML
KEYWARD_CONFIG="$work/keyward.toml" start_keyward "${pin_server[@]}"
secret=$(realistic_token)

up=$(free_port); auth=$(free_port); bare=$(free_port); stub=$(free_port)
kw=127.0.0.1:$port
# Two copies of the shipped configuration, differing only in what the auth subrequest asks
# (each with its own kept-alive upstream).
snippet() { # listen, auth address, auth path
  sed -e "s/LISTEN_ADDR/127.0.0.1:$1/" -e "s/KEYWARD_ADDR/$2/" -e "s/UPSTREAM_ADDR/127.0.0.1:$up/" \
      -e 's/"KEYWARD_PROXY_SECRET"/""/' -e "s/upstream keyward {/upstream keyward_$1 {/" \
      -e "s/keyward_protected_app/app_$1/g" \
      -e "s#http://keyward/auth;#http://keyward_$1$3;#" docs/proxies/nginx.conf
}
nginx_dirs "$work/nginx"
{
  nginx_http_head "$work/nginx"
  echo "  server { listen 127.0.0.1:$up; location / { return 200 'ok'; } }"
  echo "  server { listen 127.0.0.1:$stub; location / { return 204; } }"
  snippet "$auth" "$kw" /auth
  snippet "$bare" "127.0.0.1:$stub" /
  echo "}"
} >"$work/nginx/nginx.conf"
start_nginx "$work/nginx" "http://127.0.0.1:$up/"
trap 'kill $server $nginx 2>/dev/null; wait $server $nginx 2>/dev/null; rm -rf "$work"' EXIT

# Both variants must let the request through before they are measured (and warm the cache).
expect 200 "$auth" "$secret"
expect 200 "$bare" "$secret"
expect 401 "$auth"
compare "nginx→bare 204" "$bare" "nginx→keyward /auth" "$auth"
