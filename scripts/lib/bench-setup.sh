# Shared by the benchmark scripts (sourced, not run): starts a release keyward on a fresh
# SQLite file and creates the tokens the benchmarks verify. KEYWARD_BIN names a built binary to
# run instead of building target/release/keyward (to compare two builds).
#
#   start_keyward [command prefix…]   sets $bin, $work, $port, $server, KEYWARD_URL, KEYWARD_TOKEN
#   realistic_token [token create flags…]   prints a new token's secret
#   policy_tokens                     sets $plain and $policy (see load-verify.sh)
#   verify_body TOKEN IP              prints a verify request body
#   wrk_script FILE BODY [BEARER]     writes a wrk script POSTing BODY

if [ -z "${KEYWARD_BIN:-}" ]; then
  cargo build --release -q -p keyward
fi
bin=${KEYWARD_BIN:-target/release/keyward}
work=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
export KEYWARD_URL="http://127.0.0.1:$port"

start_keyward() {
  # The admin may hand out the 1,000,000/min limits the load needs (no token gives more
  # than its own).
  KEYWARD_POLICY__INTERNAL_NETWORKS=10.255.255.0/24 KEYWARD_CACHE__TTL_SECS=3600 \
    KEYWARD_TOKENS__ADMIN_RATE_LIMIT_PER_MINUTE=1000000 \
    "$@" "$bin" serve --listen "127.0.0.1:$port" --database-url "sqlite://$work/kw.db" \
    --log-level warn >"$work/out" 2>"$work/err" &
  server=$!
  trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
  for _ in $(seq 300); do grep -q 'kw_' "$work/out" 2>/dev/null && break; sleep 0.2; done
  KEYWARD_TOKEN=$(grep -o 'kw_[A-Za-z0-9]*' "$work/out" | head -1)
  export KEYWARD_TOKEN
}

field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$1"; }

# A realistic integration token of the current workspace: a role of several patterns,
# metadata, and a rate limit high enough not to refuse during the run. Extra flags go to
# `token create`; the role gets $role_ips.
realistic_token() {
  for p in orders:read orders:write cart:read cart:write customers:read invoices:read; do
    "$bin" permission put "$p" >/dev/null
  done
  local role user
  role=$("$bin" role create --name Integration --kind api --scope workspace \
    --permission 'orders:*' --permission 'cart:*' --permission customers:read \
    --permission invoices:read ${role_ips:+--ip-allowlist "$role_ips"} --json | field "['id']")
  user=$("$bin" user create --kind service --name erp --role "$role" --json | field "['id']")
  "$bin" token create --owner "$user" --name load --metadata '{"env":"bench"}' \
    --rate-limit 1000000 "$@" --json | field "['secret']"
}

# 1,000 entries: the client's 127.0.0.1 and 999 random /24s in 100.64.0.0/10.
cidrs() { python3 -c "
import random; r = random.Random($1)
print(','.join(['127.0.0.1'] + [f'100.{r.randrange(64, 128)}.{r.randrange(256)}.0/24' for _ in range(999)]))"; }

# $plain: a second workspace with no lists, verified from an internal address (no rate limit,
# no brute-force guard). $policy: 1,000-entry lists at all three levels, rate limited.
policy_tokens() {
  local plain_admin
  plain_admin=$("$bin" workspace create --name Plain --json | field "['admin_token']['secret']")
  plain=$(KEYWARD_TOKEN=$plain_admin; export KEYWARD_TOKEN; realistic_token)
  "$bin" workspace update --ip-allowlist "$(cidrs 1)" >/dev/null
  policy=$(role_ips=$(cidrs 2) realistic_token --ip-allowlist "$(cidrs 3)")
}

# A wrk script that POSTs BODY as JSON with a bearer (by default the admin's, $KEYWARD_TOKEN).
wrk_script() { # file body [bearer]
  cat >"$1" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer ${3:-$KEYWARD_TOKEN}"
wrk.body = '$2'
LUA
}

verify_body() { printf '{"token":"%s","ip":"%s","permissions":["orders:write"]}' "$1" "$2"; }
