#!/usr/bin/env bash
# Our 3-node kv cluster (N=3) against a 3-master Redis Cluster
# (Debian redis-server 7.0, --cluster-replicas 0), same load generator:
# redis-benchmark SET and GET, `--cluster` for Redis (it sends each key to
# its slot's master), one node of ours (any node coordinates). All six
# servers pinned to CPU 0, redis-benchmark to CPU 1; neither side persists
# (Redis: no RDB/AOF; ours: --fsync no). Medians of `runs` runs.
#
# Usage: bench/kv-cluster-vs-redis-cluster.sh path/to/hyperscale [requests] [clients] [runs] [wr]
#   wr: our W/R, e.g. "2 2" (default) or "1 1"
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

bin=${1:?usage: kv-cluster-vs-redis-cluster.sh path/to/hyperscale [requests] [clients] [runs] [wr]}
requests=${2:-50000}
clients=${3:-50}
runs=${4:-3}
read -r w r <<<"${5:-2 2}"
dir=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# rps TEST ARGS...: one redis-benchmark run of TEST, its requests per second.
rps() {
    local test=$1
    shift
    taskset -c 1 redis-benchmark "$@" -t "$test" -n "$requests" -c "$clients" -r 100000 -q --csv 2>/dev/null |
        awk -F'","' '/^"[A-Z]/ && !/^"test"/ {print $2}' | tr -d '"' | head -1
}

report() { # NAME ARGS...
    local name=$1
    shift
    for test in set get; do
        local all=()
        for _ in $(seq "$runs"); do all+=("$(rps "$test" "$@")"); done
        echo "$name $test: runs ${all[*]} median $(printf '%s\n' "${all[@]}" | median)"
    done
}

echo "load before: $(uptime)"
# Redis Cluster.
rports=()
for i in 1 2 3; do
    # Redis's cluster bus listens on port + 10000: keep both in range.
    port=$(free_port)
    while [ "$port" -gt 55000 ]; do port=$(free_port); done
    rports+=("$port")
    mkdir "$dir/redis$i"
    taskset -c 0 redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
        --cluster-config-file "$dir/redis$i/nodes.conf" --dir "$dir/redis$i" \
        --save '' --appendonly no --logfile "$dir/redis$i/log" &
    pids+=($!)
    wait_port "$port"
done
redis-cli --cluster create "127.0.0.1:${rports[0]}" "127.0.0.1:${rports[1]}" "127.0.0.1:${rports[2]}" \
    --cluster-replicas 0 --cluster-yes >/dev/null
for _ in $(seq 100); do
    redis-cli -p "${rports[0]}" cluster info | grep -q 'cluster_state:ok' && break
    sleep 0.1
done
report "redis-cluster(3 masters)" --cluster -h 127.0.0.1 -p "${rports[0]}"
for p in "${pids[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
pids=()

# Ours: three nodes, N=3.
echo "a shared secret of the bench cluster" >"$dir/secret"
ports=() peers=()
for i in 1 2 3; do
    ports+=("$(free_port)")
    peers+=("$(free_port)")
done
for i in 0 1 2; do
    seeds=()
    for j in 0 1 2; do [ "$j" != "$i" ] && seeds+=("127.0.0.1:${peers[$j]}"); done
    taskset -c 0 "$bin" kv serve --fsync no --bind "127.0.0.1:${ports[$i]}" \
        --data-dir "$dir/node$i" --cluster-bind "127.0.0.1:${peers[$i]}" \
        --seeds "$(IFS=,; echo "${seeds[*]}")" --node-id $((i + 1)) \
        --replicas 3 --write-quorum "$w" --read-quorum "$r" \
        --cluster-secret-file "$dir/secret" >/dev/null 2>&1 &
    pids+=($!)
done
for i in 0 1 2; do
    wait_port "${ports[$i]}"
    for _ in $(seq 100); do
        redis-cli -p "${ports[$i]}" KV.STATUS | grep -q '"formed":true' && break
        sleep 0.1
    done
done
report "ours(3 nodes, N=3 W=$w R=$r, via node 1)" -h 127.0.0.1 -p "${ports[0]}"
echo "load after: $(uptime)"
