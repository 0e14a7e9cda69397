#!/usr/bin/env bash
# Big collections on the lsm engine: a 1M-field hash and a 1M-member sorted
# set, against Redis with appendonly everysec (the durable anchor).
#
# Usage: bench/kv-collections.sh path/to/hyperscale [requests] [runs]
#   requests  per workload (default 1000000), runs  per server (default 3)
#
# Workloads (redis-benchmark, 50 clients, keyspace -r 1000000):
#   HSET big field:<rand> v   then   HGET big field:<rand>
#   ZADD bigz <rand> m:<rand> then   ZRANGEBYSCORE bigz <rand> +inf LIMIT 0 10
# plus the size of the hash and set afterwards (HLEN, ZCARD) and a DEL of
# each big key, timed (O(1) for the caller on our lsm engine: the subkeys
# are dropped by compaction later). Server on CPU 0, client on CPU 1.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

bin=${1:?usage: kv-collections.sh path/to/hyperscale [requests] [runs]}
requests=${2:-1000000}
runs=${3:-3}
for tool in redis-server redis-benchmark redis-cli taskset python3; do
    command -v "$tool" >/dev/null || { echo "$tool not found (apt-get install redis-server redis-tools util-linux python3)" >&2; exit 1; }
done
cpus=$(nproc)
client_cpu=$((cpus > 1 ? 1 : 0))
work=$(mktemp -d)
pid=""
cleanup() {
    stop_server
    rm -rf "$work"
}
trap cleanup EXIT
rps() { # rps PORT ARGS... -> requests per second
    local port=$1
    shift
    taskset -c "$client_cpu" redis-benchmark -p "$port" -n "$requests" -r 1000000 -c 50 --csv "$@" 2>/dev/null \
        | tail -n 1 | tr -d '"' | cut -d, -f2
}
ms() { # ms COMMAND... -> wall milliseconds of one redis-cli call
    local start end
    start=$(date +%s%N)
    redis-cli "$@" >/dev/null
    end=$(date +%s%N)
    echo $(((end - start) / 1000000))
}

echo "server,run,hset,hget,zadd,zrangebyscore,hlen,zcard,del_hash_ms,del_zset_ms"
for side in redis ours; do
    for run in $(seq "$runs"); do
        port=$(free_port)
        dir="$work/$side-$run"
        mkdir -p "$dir"
        case $side in
            redis) taskset -c 0 redis-server --port "$port" --save '' --appendonly yes --appendfsync everysec --dir "$dir" >"$dir/log" 2>&1 & ;;
            ours) taskset -c 0 "$bin" kv serve --engine lsm --fsync everysec --data-dir "$dir/data" --bind "127.0.0.1:$port" >"$dir/log" 2>&1 & ;;
        esac
        pid=$!
        wait_port "$port"
        hset=$(rps "$port" HSET big field:__rand_int__ v)
        hget=$(rps "$port" HGET big field:__rand_int__)
        zadd=$(rps "$port" ZADD bigz __rand_int__ m:__rand_int__)
        zrange=$(rps "$port" ZRANGEBYSCORE bigz __rand_int__ +inf LIMIT 0 10)
        hlen=$(redis-cli -p "$port" HLEN big)
        zcard=$(redis-cli -p "$port" ZCARD bigz)
        del_hash=$(ms -p "$port" DEL big)
        del_zset=$(ms -p "$port" DEL bigz)
        echo "$side,$run,$hset,$hget,$zadd,$zrange,$hlen,$zcard,$del_hash,$del_zset"
        stop_server
    done
done
