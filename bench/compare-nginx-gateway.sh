#!/usr/bin/env bash
# Our API gateway against nginx `proxy_pass`, both in front of the same
# upstream (an nginx `return 200` server), driven by wrk in turn.
#
# Part 1, proxying: requests/s, p50, p99 and the ours/nginx ratio.
# Part 2, rate limiting at 1,000 req/s on one key: the admitted rate (2xx
# per second) of our sliding window log, our token bucket and nginx
# `limit_req`, against the configured limit.
# Part 3, failover: our gateway in front of two upstreams, one killed with
# SIGKILL a third into a wrk run; counts the requests that failed.
#
# Usage: bench/compare-nginx-gateway.sh [seconds-per-run] [runs] [connections]
# Needs: nginx, wrk (apt-get install nginx wrk), a release build
# (cargo build --release -p hyperscale, or HYPERSCALE_BIN=path).
# Pinning: the proxy under test (nginx with one worker, or our gateway
# single-threaded, `workers = 1`) on CPU 0; the upstream and wrk on CPU 1.
# Access logs are off on both sides. Each figure is the median of `runs` runs.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
runs=${2:-3}
connections=${3:-50}
limit=1000
bin=${HYPERSCALE_BIN:-target/release/hyperscale}
for tool in nginx wrk taskset curl python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install nginx wrk util-linux curl python3" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "no $bin: run cargo build --release -p hyperscale first (or set HYPERSCALE_BIN)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

# start_nginx NAME CPU SERVER-BLOCKS [HTTP-EXTRA] [MASTER]: one nginx, one
# worker, pinned. MASTER=off runs a single process (so SIGKILL is a crash).
start_nginx() {
    local name=$1 cpu=$2 servers=$3 extra=${4:-} master=${5:-on}
    mkdir -p "$work/$name"
    cat > "$work/$name/nginx.conf" <<NGINX
master_process $master;
worker_processes 1;
pid $work/$name/nginx.pid;
error_log $work/$name/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    $extra
    $servers
}
NGINX
    taskset -c "$cpu" nginx -c "$work/$name/nginx.conf" -p "$work/$name" -g 'daemon off;' &
    pids+=($!)
}

# The shared upstream: 13 bytes, like a small API answer.
upstream=$(free_port)
start_nginx upstream 1 "server { listen 127.0.0.1:$upstream; keepalive_requests 1000000; location / { return 200 'hello, world\n'; } }"
wait_port "$upstream"

proxy_block() { # port [location-extra]
    cat <<BLOCK
upstream backend { server 127.0.0.1:$upstream; keepalive 64; keepalive_requests 1000000; }
server {
    listen 127.0.0.1:$1;
    keepalive_requests 1000000;
    location / {
        ${2:-}
        proxy_pass http://backend;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
}
BLOCK
}

# start_gateway NAME [RULES-ALGORITHM] [EXTRA-TOML]: our gateway on CPU 0,
# single threaded; sets $port. (Not called in $(...): the pid must reach `pids`.)
start_gateway() {
    local name=$1 algorithm=${2:-} extra=${3:-}
    port=$(free_port)
    mkdir -p "$work/$name"
    cat > "$work/$name/gateway.toml" <<TOML
bind = "127.0.0.1:$port"
access_log = false
workers = 1
$extra
[[routes]]
prefix = "/"
pool = "bench"
[pools.bench]
upstreams = ["127.0.0.1:$upstream"]
TOML
    if [ -n "$algorithm" ]; then
        cat > "$work/$name/rules.yaml" <<YAML
domain: bench
descriptors:
  - key: path
    value: /
    rate_limit: { unit: second, requests_per_unit: $limit, algorithm: $algorithm }
YAML
        printf '[ratelimit]\nrules = "rules.yaml"\n' >> "$work/$name/gateway.toml"
    fi
    taskset -c 0 "$bin" gateway serve --config "$work/$name/gateway.toml" >"$work/$name/log" 2>&1 &
    pids+=($!)
    wait_port "$port"
}

stop_last() { kill "${pids[-1]}" 2>/dev/null || true; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'; }

run_wrk() { # url → "requests/s p50_ms p99_ms admitted/s"
    taskset -c 1 wrk -t1 -c"$connections" -d"${seconds}s" --latency "$1" | awk '
        function ms(v) { if (v ~ /us$/) { sub(/us/, "", v); return v / 1000 } if (v ~ /ms$/) { sub(/ms/, "", v); return v } sub(/s/, "", v); return v * 1000 }
        /Requests\/sec/ { rps = $2 }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        / requests in / { total = $1; secs = $4; sub(/s,?$/, "", secs) }
        /Non-2xx or 3xx responses/ { bad = $5 }
        END { printf "%.0f %.3f %.3f %.1f\n", rps, p50, p99, (total - bad) / secs }'
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
col() { cut -d' ' -f"$2" "$work/$1.txt" | median; }

measure() { # name url: one run appended to $work/name.txt
    result=$(run_wrk "$2")
    echo "$1: $result" >&2
    echo "$result" >> "$work/$1.txt"
}

echo "== proxying: wrk -c$connections ${seconds}s x $runs, alternating, medians ==" >&2
# Both proxies stay up and runs alternate, so noise from other work on the
# machine falls on both alike.
nginx_port=$(free_port)
start_nginx proxy 0 "$(proxy_block "$nginx_port")"
wait_port "$nginx_port"
start_gateway plain
relay_port=$port
# The same gateway with every request through hyper (`relay = false`): what
# the relay (crate::relay) adds, in the same run.
start_gateway hyper "" "relay = false"
hyper_port=$port
curl -sf -o /dev/null "http://127.0.0.1:$relay_port/" || true   # warm the upstream pools
curl -sf -o /dev/null "http://127.0.0.1:$hyper_port/" || true
for run in $(seq "$runs"); do
    measure nginx "http://127.0.0.1:$nginx_port/"
    measure ours "http://127.0.0.1:$relay_port/"
    measure ours_hyper "http://127.0.0.1:$hyper_port/"
done
stop_last
stop_last
stop_last

echo "== rate limit $limit req/s on one key ==" >&2
limited_port=$(free_port)
start_nginx limited 0 "$(proxy_block "$limited_port" "limit_req zone=one; limit_req_status 429;")" \
    "limit_req_zone \$server_port zone=one:1m rate=${limit}r/s;"
wait_port "$limited_port"
for run in $(seq "$runs"); do measure nginx_limit_req "http://127.0.0.1:$limited_port/"; done
stop_last
for algorithm in sliding_window_log token_bucket; do
    start_gateway "$algorithm" "$algorithm"
    for run in $(seq "$runs"); do measure "ours_$algorithm" "http://127.0.0.1:$port/"; done
    stop_last
done

echo "== failover: kill one of two upstreams during a run ==" >&2
second=$(free_port)
start_nginx second 1 "server { listen 127.0.0.1:$second; keepalive_requests 1000000; location / { return 200 'hello, world\n'; } }" "" off
second_pid=${pids[-1]}
wait_port "$second"
port=$(free_port)
mkdir -p "$work/failover"
cat > "$work/failover/gateway.toml" <<TOML
bind = "127.0.0.1:$port"
access_log = false
workers = 1
[[routes]]
prefix = "/"
pool = "bench"
[pools.bench]
upstreams = ["127.0.0.1:$upstream", "127.0.0.1:$second"]
[pools.bench.health]
interval_ms = 500
TOML
taskset -c 0 "$bin" gateway serve --config "$work/failover/gateway.toml" >"$work/failover/log" 2>&1 &
pids+=($!)
wait_port "$port"
taskset -c 1 wrk -t1 -c"$connections" -d"${seconds}s" "http://127.0.0.1:$port/" > "$work/failover/wrk.txt" &
wrk_pid=$!
sleep "$(awk -v s="$seconds" 'BEGIN { print s / 3 }')"
kill -9 "$second_pid" 2>/dev/null || true   # a crash: no graceful close
wait "$wrk_pid" || true
failover_total=$(awk '/ requests in / { print $1 }' "$work/failover/wrk.txt")
failover_bad=$(awk '/Non-2xx or 3xx responses/ { print $5 } END { }' "$work/failover/wrk.txt")
failover_errors=$(awk '/Socket errors/ { print }' "$work/failover/wrk.txt")
failover_up=$(curl -s "http://127.0.0.1:$port/metrics" | grep "upstream_up{" | grep "$second" || true)

ratio=$(awk -v a="$(col ours 1)" -v b="$(col nginx 1)" 'BEGIN { printf "%.2f", a / b }')
echo
echo "Proxying (median of $runs runs, wrk -t1 -c$connections -d${seconds}s)"
printf '| %-34s | %10s | %8s | %8s |\n' "proxy" "requests/s" "p50 ms" "p99 ms"
printf '|%s|%s|%s|%s|\n' "------------------------------------" "------------" "----------" "----------"
printf '| %-34s | %10s | %8s | %8s |\n' "hyperscale gateway (relay)" "$(col ours 1)" "$(col ours 2)" "$(col ours 3)"
printf '| %-34s | %10s | %8s | %8s |\n' "hyperscale gateway (relay = false)" "$(col ours_hyper 1)" "$(col ours_hyper 2)" "$(col ours_hyper 3)"
printf '| %-34s | %10s | %8s | %8s |\n' "nginx proxy_pass (keepalive 64)" "$(col nginx 1)" "$(col nginx 2)" "$(col nginx 3)"
echo "ratio ours/nginx (requests/s): $ratio"
echo
echo "Rate limit of $limit req/s on one key (admitted = 2xx per second)"
printf '| %-34s | %12s | %12s |\n' "limiter" "admitted/s" "vs limit"
printf '|%s|%s|%s|\n' "------------------------------------" "--------------" "--------------"
for name in ours_sliding_window_log ours_token_bucket nginx_limit_req; do
    admitted=$(col "$name" 4)
    printf '| %-34s | %12s | %11s%% |\n' "$name" "$admitted" "$(awk -v a="$admitted" -v l="$limit" 'BEGIN { printf "%+.1f", (a / l - 1) * 100 }')"
done
echo
echo "Failover (one of two upstreams SIGKILLed at ${seconds}s/3 into a ${seconds}s run)"
echo "requests: ${failover_total:-?}; non-2xx: ${failover_bad:-0}; ${failover_errors:-socket errors: none}"
echo "after: ${failover_up:-?}"
