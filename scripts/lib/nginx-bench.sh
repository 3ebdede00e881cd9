# Shared by the benchmark scripts that put nginx beside keyward (sourced, not run): installs
# nginx and wrk when missing (as root), pins keyward and nginx to core 0 and wrk to core 1, and
# runs an nginx of its own in a temporary prefix.
#
#   pin_server / pin_wrk        command prefixes (taskset), empty on one core
#   free_port                   prints a free loopback port
#   nginx_dirs DIR              makes nginx's prefix DIR (logs, temporary files)
#   nginx_http_head DIR         prints the main configuration's head (up to `http {`)
#   start_nginx DIR             runs nginx with DIR/nginx.conf, sets $nginx, waits for URL $2
#   expect STATUS PORT [TOKEN]  fails unless GET /orders/7 on PORT (with TOKEN) answers STATUS
#   compare A_NAME A_PORT B_NAME B_PORT   rounds of wrk on both (with $secret), B/A per round
#                                         and its median; uses $connections, $duration, $rounds

need=()
command -v wrk >/dev/null || need+=(wrk)
[ -x /usr/sbin/nginx ] || need+=(nginx)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; else
    echo "needs: ${need[*]} (apt-get install ${need[*]})" >&2; exit 1; fi
fi
pin_server=(); pin_wrk=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  pin_server=(taskset -c 0); pin_wrk=(taskset -c 1)
  export TOKIO_WORKER_THREADS=1
fi

nginx_dirs() { mkdir -p "$1/logs" "$1/tmp"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

nginx_http_head() {
  echo "worker_processes 1; error_log $1/logs/error.log warn; pid $1/nginx.pid;"
  echo "events { worker_connections 4096; }"
  echo "http { access_log off; client_body_temp_path $1/tmp; proxy_temp_path $1/tmp;"
  echo "  fastcgi_temp_path $1/tmp; uwsgi_temp_path $1/tmp; scgi_temp_path $1/tmp;"
}

start_nginx() { # dir, a URL it serves
  "${pin_server[@]}" /usr/sbin/nginx -p "$1" -c "$1/nginx.conf" -g 'daemon off;' &
  nginx=$!
  for _ in $(seq 50); do curl -fsS -o /dev/null "$2" 2>/dev/null && return 0; sleep 0.1; done
  echo "nginx did not start:" >&2; cat "$1/logs/error.log" >&2; return 1
}

rps() { awk '/Requests/ && /sec/ {print $2}'; }
median() { # label, ratios…
  python3 -c "import statistics,sys; r=[float(x) for x in sys.argv[2:]]; print(f'median {sys.argv[1]} = {statistics.median(r):.1%} (min {min(r):.1%}, max {max(r):.1%}, {len(r)} rounds)')" "$@"
}

expect() { # status, port, token (optional)
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' ${3:+-H "Authorization: Bearer $3"} "http://127.0.0.1:$2/orders/7")
  [ "$code" = "$1" ] || { echo "port $2 answered $code, not $1" >&2; cat "$work/err" "$work/nginx/logs/error.log" >&2 2>/dev/null; exit 1; }
}

compare() { # a name, a port, b name, b port
  local ratios=() a b round
  run() { "${pin_wrk[@]}" wrk -t1 -c"$connections" -d"${duration}s" -H "Authorization: Bearer $secret" "http://127.0.0.1:$1/orders/7" | rps; }
  for round in $(seq "$rounds"); do
    a=$(run "$2"); b=$(run "$4")
    ratios+=("$(python3 -c "print(f'{$b / $a:.3f}')")")
    printf 'round %d: %s %8.0f req/s   %s %8.0f req/s\n' "$round" "$1" "$a" "$3" "$b"
  done
  median "$3 / $1" "${ratios[@]}"
}
