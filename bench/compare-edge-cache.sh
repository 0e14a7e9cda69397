#!/usr/bin/env bash
# The gateway's edge cache against nginx `proxy_cache` and Varnish, all
# three in front of the same origin (an nginx serving `/obj/<n>` with
# `Cache-Control: max-age=3600`), driven by wrk in turn.
#
# Part 1, cache hits: 100 objects of 1 KiB, all cached after a warm-up
# pass; wrk picks one at random per request (bench/edge-cache-objects.lua).
# Requests/s, p50, p99, medians of `runs` alternating runs, ratios to nginx
# and Varnish.
# Part 2, hit ratio under a Zipf workload (s = 1.0 over 10,000 objects of
# 3.5 KiB, bench/edge-cache-zipf.lua) with each cache bounded to about
# 1,000 objects: our memory tier to 1,000 x the measured bytes per object,
# nginx to `max_size` = 1,000 x 4 KiB (one 4 KiB file-system block per
# cached file). Hit ratio = 1 - origin requests / client requests, the
# origin requests counted in the origin's access log, after a warm-up run.
#
# Usage: bench/compare-edge-cache.sh [seconds-per-run] [runs] [connections]
# Needs: nginx, varnish, wrk (apt-get install nginx varnish wrk), a release
# build (cargo build --release -p hyperscale, or HYPERSCALE_BIN=path; or
# GATEWAY_BIN=target/release/examples/serve after
# cargo build --release -p gateway --example serve, the same gateway
# without the rest of the binary, much quicker to build).
# Pinning: the cache under test (nginx with one worker, Varnish, or our
# gateway with `workers = 1`) on CPU 0; the origin and wrk on CPU 1.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
runs=${2:-3}
connections=${3:-50}
bin=${HYPERSCALE_BIN:-target/release/hyperscale}
for tool in nginx varnishd wrk taskset curl python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install nginx varnish wrk util-linux curl python3" >&2; exit 1; }
done
[ -n "${GATEWAY_BIN:-}" ] || [ -x "$bin" ] || { echo "no $bin: run cargo build --release -p hyperscale first (or set HYPERSCALE_BIN)" >&2; exit 1; }

work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
stop_last() { kill "${pids[-1]}" 2>/dev/null || true; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'; }

start_nginx() { # NAME CPU HTTP-BODY
    mkdir -p "$work/$1"
    cat > "$work/$1/nginx.conf" <<NGINX
worker_processes 1;
pid $work/$1/nginx.pid;
error_log $work/$1/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    $3
}
NGINX
    taskset -c "$2" nginx -c "$work/$1/nginx.conf" -p "$work/$1" -g 'daemon off;' &
    pids+=($!)
}

# The origin: /obj/<n> answers a body of `size` bytes, cacheable for an hour;
# its access log counts what reached it.
origin=$(free_port)
small=$(head -c 1024 /dev/zero | tr '\0' 'a')
large=$(head -c 3584 /dev/zero | tr '\0' 'b')
start_nginx origin 1 "
    log_format bare '\$request_uri';
    server {
        listen 127.0.0.1:$origin;
        keepalive_requests 1000000;
        location = / { return 200 'ok'; }   # health checks, not logged
        location /small/ { access_log $work/origin/access.log bare; add_header Cache-Control 'max-age=3600'; return 200 '$small'; }
        location /large/ { access_log $work/origin/access.log bare; add_header Cache-Control 'max-age=3600'; return 200 '$large'; }
    }"
wait_port "$origin"
origin_requests() { wc -l < "$work/origin/access.log"; }

nginx_cache() { # NAME PORT MAX-SIZE
    start_nginx "$1" 0 "
    proxy_cache_path $work/$1/cache levels=1:2 keys_zone=edge:64m max_size=$3 inactive=1h use_temp_path=off;
    upstream backend { server 127.0.0.1:$origin; keepalive 64; keepalive_requests 1000000; }
    server {
        listen 127.0.0.1:$2;
        keepalive_requests 1000000;
        location / {
            proxy_cache edge;
            proxy_cache_lock on;
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            add_header X-Cache \$upstream_cache_status;
        }
    }"
    wait_port "$2"
}

start_gateway() { # NAME PORT MEMORY-BYTES
    mkdir -p "$work/$1"
    cat > "$work/$1/gateway.toml" <<TOML
bind = "127.0.0.1:$2"
access_log = false
workers = 1
[cache]
memory_bytes_max = $3
[[routes]]
prefix = "/"
pool = "origin"
[routes.cache]
object_bytes_max = 65536
[pools.origin]
upstreams = ["127.0.0.1:$origin"]
TOML
    if [ -n "${GATEWAY_BIN:-}" ]; then
        taskset -c 0 "$GATEWAY_BIN" "$work/$1/gateway.toml" >"$work/$1/log" 2>&1 &
    else
        taskset -c 0 "$bin" gateway serve --config "$work/$1/gateway.toml" >"$work/$1/log" 2>&1 &
    fi
    pids+=($!)
    wait_port "$2"
}

start_varnish() { # PORT
    mkdir -p "$work/varnish"
    taskset -c 0 varnishd -F -j none -n "$work/varnish" -a "127.0.0.1:$1" -b "127.0.0.1:$origin" \
        -s malloc,256m -p thread_pools=1 >"$work/varnish/log" 2>&1 &
    pids+=($!)
    wait_port "$1"
}

run_wrk() { # url script → "requests/s p50_ms p99_ms"
    taskset -c 1 wrk -t1 -c"$connections" -d"${seconds}s" --latency -s "$2" "$1" | awk '
        function ms(v) { if (v ~ /us$/) { sub(/us/, "", v); return v / 1000 } if (v ~ /ms$/) { sub(/ms/, "", v); return v } sub(/s/, "", v); return v * 1000 }
        /Requests\/sec/ { rps = $2 }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        / requests in / { total = $1 }
        END { printf "%.0f %.3f %.3f %d\n", rps, p50, p99, total }'
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
col() { cut -d' ' -f"$2" "$work/$1.txt" | median; }
measure() { # name url script
    result=$(run_wrk "$2" "$3")
    echo "$1: $result" >&2
    echo "$result" >> "$work/$1.txt"
}
warm() { for n in $(seq 0 99); do curl -sf -o /dev/null "$1/small/$n" || { echo "warm-up failed: $1/small/$n: $(curl -s -i "$1/small/$n" | head -20)" >&2; [ -f "$work/ours/log" ] && tail -5 "$work/ours/log" >&2; exit 1; }; done; }

echo "== hits: 100 x 1 KiB objects, wrk -c$connections ${seconds}s x $runs, alternating ==" >&2
ours_port=$(free_port); nginx_port=$(free_port); varnish_port=$(free_port)
start_gateway ours "$ours_port" $((64 << 20))
nginx_cache nginx "$nginx_port" 256m
start_varnish "$varnish_port"
for base in "http://127.0.0.1:$ours_port" "http://127.0.0.1:$nginx_port" "http://127.0.0.1:$varnish_port"; do
    warm "$base"; warm "$base"
done
echo "after warm-up: $(curl -s -o /dev/null -D - "http://127.0.0.1:$ours_port/small/1" | grep -i x-cache | tr -d '\r') (ours)," \
    "$(curl -s -o /dev/null -D - "http://127.0.0.1:$nginx_port/small/1" | grep -i x-cache | tr -d '\r') (nginx)" >&2
before=$(origin_requests)
for run in $(seq "$runs"); do
    measure ours "http://127.0.0.1:$ours_port" bench/edge-cache-objects.lua
    measure nginx "http://127.0.0.1:$nginx_port" bench/edge-cache-objects.lua
    measure varnish "http://127.0.0.1:$varnish_port" bench/edge-cache-objects.lua
done
hit_run_origin=$(( $(origin_requests) - before ))
stop_last; stop_last; stop_last

echo "== Zipf: 10,000 x 3.5 KiB objects, caches bounded to ~1,000 objects ==" >&2
# Our bytes per object: fill 100 objects into an unbounded cache, read the gauges.
probe_port=$(free_port)
start_gateway probe "$probe_port" $((64 << 20))
for n in $(seq 0 99); do curl -sf -o /dev/null "http://127.0.0.1:$probe_port/large/$n"; done
per_object=$(curl -s "http://127.0.0.1:$probe_port/metrics" | awk '/^hyperscale_gateway_cache_stored_bytes\{tier="memory"\}/ { b = $2 } /^hyperscale_gateway_cache_objects\{tier="memory"\}/ { o = $2 } END { printf "%d", b / o }')
stop_last
echo "our bytes per 3.5 KiB object: $per_object" >&2
zipf_ours=$(free_port); zipf_nginx=$(free_port)
start_gateway zipf_ours "$zipf_ours" $((per_object * 1000))
nginx_cache zipf_nginx "$zipf_nginx" 4000k
zipf_run() { # name url → hit ratio over one measured run after one warm-up run
    run_wrk "$2" bench/edge-cache-zipf.lua > /dev/null
    local before sent
    before=$(origin_requests)
    result=$(run_wrk "$2" bench/edge-cache-zipf.lua)
    sent=$(echo "$result" | cut -d' ' -f4)
    awk -v o="$(( $(origin_requests) - before ))" -v s="$sent" -v r="$result" -v n="$1" \
        'BEGIN { printf "%s: %s, origin %d, hit ratio %.4f\n", n, r, o, 1 - o / s }' | tee -a "$work/zipf.txt" >&2
}
zipf_run ours "http://127.0.0.1:$zipf_ours"
zipf_run nginx "http://127.0.0.1:$zipf_nginx"
nginx_files=$(find "$work/zipf_nginx/cache" -type f | wc -l)
nginx_bytes=$(du -sk "$work/zipf_nginx/cache" | cut -f1)
our_objects=$(curl -s "http://127.0.0.1:$zipf_ours/metrics" | awk '/^hyperscale_gateway_cache_objects\{tier="memory"\}/ { print $2 }')

echo
echo "Cache hits (median of $runs runs, wrk -t1 -c$connections -d${seconds}s, 100 x 1 KiB objects)"
printf '| %-30s | %10s | %8s | %8s |\n' "cache" "requests/s" "p50 ms" "p99 ms"
printf '|%s|%s|%s|%s|\n' "--------------------------------" "------------" "----------" "----------"
printf '| %-30s | %10s | %8s | %8s |\n' "hyperscale gateway (workers=1)" "$(col ours 1)" "$(col ours 2)" "$(col ours 3)"
printf '| %-30s | %10s | %8s | %8s |\n' "nginx proxy_cache (1 worker)" "$(col nginx 1)" "$(col nginx 2)" "$(col nginx 3)"
printf '| %-30s | %10s | %8s | %8s |\n' "varnish (malloc, 1 pool)" "$(col varnish 1)" "$(col varnish 2)" "$(col varnish 3)"
echo "ratio ours/nginx: $(awk -v a="$(col ours 1)" -v b="$(col nginx 1)" 'BEGIN { printf "%.2f", a / b }')," \
     "ours/varnish: $(awk -v a="$(col ours 1)" -v b="$(col varnish 1)" 'BEGIN { printf "%.2f", a / b }')"
echo "origin requests during the hit runs (all three): $hit_run_origin"
for name in ours nginx varnish; do echo "$name runs: $(cut -d' ' -f1 "$work/$name.txt" | tr '\n' ' ')"; done
echo
echo "Zipf hit ratio (s = 1.0, 10,000 objects, ~1,000 fit; one ${seconds}s run after a warm-up run)"
cat "$work/zipf.txt"
echo "objects held at the end: ours $our_objects (memory_bytes_max $((per_object * 1000))), nginx $nginx_files files, ${nginx_bytes} KiB on disk (max_size 4000k, enforced by its cache manager between checks)"
