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

need=()
command -v wrk >/dev/null || need+=(wrk)
[ -x /usr/sbin/nginx ] || need+=(nginx)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; else
    echo "needs: ${need[*]} (apt-get install ${need[*]})" >&2; exit 1; fi
fi
# keyward and nginx share core 0, wrk gets core 1.
pin_server=(); pin_wrk=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  pin_server=(taskset -c 0); pin_wrk=(taskset -c 1)
  export TOKIO_WORKER_THREADS=1
fi
. scripts/lib/bench-setup.sh
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
up=$(free_port); plain=$(free_port); gw=$(free_port)

mkdir -p "$work/nginx/logs" "$work/nginx/tmp"
cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes 1; error_log $work/nginx/logs/error.log warn; pid $work/nginx/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off; client_body_temp_path $work/nginx/tmp; proxy_temp_path $work/nginx/tmp;
  fastcgi_temp_path $work/nginx/tmp; uwsgi_temp_path $work/nginx/tmp; scgi_temp_path $work/nginx/tmp;
  upstream app { server 127.0.0.1:$up; keepalive 64; }
  server { listen 127.0.0.1:$up; location / { return 200 'ok'; } }
  server { listen 127.0.0.1:$plain;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}
NGINX
"${pin_server[@]}" /usr/sbin/nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
nginx=$!

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

rps() { awk '/Requests\/sec/ {print $2}'; }
run() { "${pin_wrk[@]}" wrk -t1 -c"$connections" -d"${duration}s" -H "Authorization: Bearer $secret" "http://127.0.0.1:$1/orders/7" | rps; }
ratios=()
for round in $(seq "$rounds"); do
  n=$(run "$plain"); g=$(run "$gw")
  ratios+=("$(python3 -c "print(f'{$g / $n:.3f}')")")
  printf 'round %d: nginx proxy %8.0f req/s   keyward gateway %8.0f req/s\n' "$round" "$n" "$g"
done
python3 -c "import statistics,sys; r=[float(x) for x in sys.argv[1:]]; print(f'median keyward gateway / nginx proxy = {statistics.median(r):.1%} (min {min(r):.1%}, max {max(r):.1%}, {len(r)} rounds)')" "${ratios[@]}"
