#!/usr/bin/env bash
# The shortener's redirect path against nginx answering a static redirect
# (`return 302`) on the same machine: nginx is the physical floor for "read a
# request, write a Location header" here, so the ratio says how much our
# lookup (cache, store, analytics enqueue) costs on top.
#
# Usage: bench/compare-nginx-redirect.sh [seconds-per-run] [runs] [connections]
# Needs: nginx, wrk (apt-get install nginx wrk), a release build
# (cargo build --release). Server pinned to CPU 0, wrk to CPU 1.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
runs=${2:-3}
connections=${3:-50}
bin=${HYPERSCALE_BIN:-target/release/hyperscale}
for tool in nginx wrk taskset curl; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install nginx wrk util-linux curl" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "no $bin: run cargo build --release first" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid" 2>/dev/null)" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

ours=$(free_port)
taskset -c 0 "$bin" shortener serve --bind "127.0.0.1:$ours" --data-dir "$work/data" >/dev/null 2>&1 &
pids+=($!)
wait_port "$ours"
code=$(curl -s -XPOST "127.0.0.1:$ours/api/v1/data/shorten" -d '{"longUrl":"https://example.com/landing"}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])')

theirs=$(free_port)
cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    server {
        listen 127.0.0.1:$theirs;
        location = /$code { return 302 https://example.com/landing; }
    }
}
NGINX
taskset -c 0 nginx -c "$work/nginx.conf" -p "$work" -g 'daemon off;' &
pids+=($!)
wait_port "$theirs"

run_wrk() { # url → "requests/s p99_ms"
    taskset -c 1 wrk -t1 -c"$connections" -d"${seconds}s" --latency "$1" | awk '
        /Requests\/sec/ { rps = $2 }
        $1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms/, "", v) } else if (v ~ /s$/) { sub(/s/, "", v); v *= 1000 }; p99 = v }
        END { printf "%.0f %.3f\n", rps, p99 }'
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# Runs alternate between the two servers, so noise from other work on the
# machine falls on both.
declare -A rps p99
: > "$work/ours.txt"
: > "$work/nginx.txt"
for run in $(seq "$runs"); do
    for target in ours nginx; do
        port=$ours; [ "$target" = nginx ] && port=$theirs
        result=$(run_wrk "http://127.0.0.1:$port/$code")
        echo "$target run $run: $result" >&2
        echo "$result" >> "$work/$target.txt"
    done
done
for target in ours nginx; do
    rps[$target]=$(cut -d' ' -f1 "$work/$target.txt" | median)
    p99[$target]=$(cut -d' ' -f2 "$work/$target.txt" | median)
done
ratio=$(awk -v a="${rps[ours]}" -v b="${rps[nginx]}" 'BEGIN { printf "%.2f", a / b }')
printf '%-28s %12s %10s\n' "server (median of $runs)" "requests/s" "p99 ms"
printf '%-28s %12s %10s\n' "hyperscale shortener (302)" "${rps[ours]}" "${p99[ours]}"
printf '%-28s %12s %10s\n' "nginx return 302" "${rps[nginx]}" "${p99[nginx]}"
echo "ratio ours/nginx: $ratio"
