#!/usr/bin/env bash
# Instructions per request of our kv server and of Redis under the same
# redis-benchmark load, counted by callgrind: a measure the machine's load
# does not distort (wall-clock rates on a shared 2-core machine swing by 2x).
#
# Usage: bench/callgrind-kv.sh path/to/hyperscale [requests] [pipelines] [tests] [engine]
#   requests   per measured test (default 20000)
#   pipelines  space-separated -P values (default "1 16")
#   tests      redis-benchmark -t list (default: its whole default list)
#   engine     memory (default; vs redis-server without persistence) or
#              lsm (--fsync everysec; vs Redis AOF everysec)
#
# For each server, pipeline and test: a fresh server under
# `valgrind --tool=callgrind`, pinned to CPU 0 (so ours picks its
# single-threaded runtime, as in bench/compare-redis.sh); a warm-up run of the
# test (2,000 requests) and, for the pops, a fill of the list; then the
# counters are zeroed (`callgrind_control -z`), the test runs `requests`
# times with 50 clients, and the counters are dumped. Ir (instructions) of
# that interval / requests is the figure printed. Keep the dump files with
# KEEP=dir to read them with callgrind_annotate.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

bin=${1:?usage: callgrind-kv.sh path/to/hyperscale [requests] [pipelines] [tests] [engine]}
requests=${2:-20000}
pipelines=${3:-"1 16"}
tests=${4:-ping_inline,ping_mbulk,set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,lrange_300,lrange_500,lrange_600,mset}
engine=${5:-memory}
warmup=2000
for tool in valgrind callgrind_control redis-server redis-benchmark taskset python3; do
    command -v "$tool" >/dev/null || { echo "$tool not found" >&2; exit 1; }
done
work=$(mktemp -d)
pid=""
cleanup() {
    stop_server
    rm -rf "$work"
}
trap cleanup EXIT

start() { # start SIDE PORT OUT: a server under callgrind writing its dumps to OUT
    local side=$1 port=$2 out=$3 dir="$work/data-$1"
    rm -rf "$dir" && mkdir -p "$dir"
    local cg=(taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$out" --dump-instr=no)
    case $side-$engine in
        redis-memory) "${cg[@]}" redis-server --port "$port" --save '' --appendonly no --dir "$dir" >"$work/log" 2>&1 & ;;
        redis-lsm) "${cg[@]}" redis-server --port "$port" --save '' --appendonly yes --appendfsync everysec --dir "$dir" >"$work/log" 2>&1 & ;;
        ours-memory) "${cg[@]}" "$bin" kv serve --engine memory --bind "127.0.0.1:$port" >"$work/log" 2>&1 & ;;
        ours-lsm) "${cg[@]}" "$bin" kv serve --engine lsm --fsync everysec --data-dir "$dir/db" --bind "127.0.0.1:$port" >"$work/log" 2>&1 & ;;
    esac
    pid=$!
    for _ in $(seq 600); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "server did not start" >&2
    return 1
}

bench() { # bench PORT TEST N PIPELINE
    taskset -c 1 redis-benchmark -p "$1" -t "$2" -n "$3" -c 50 -P "$4" -q >/dev/null 2>&1
}

# The pops and LRANGE read a list that the matching push fills first.
fill_test() {
    case $1 in
        lpop | rpop | lrange*) echo lpush ;;
        *) echo "" ;;
    esac
}

echo "| test | pipeline | Redis Ir/request | ours Ir/request | Redis / ours |"
echo "|---|---:|---:|---:|---:|"
for pipeline in $pipelines; do
    for test in ${tests//,/ }; do
        declare -A ir=()
        for side in redis ours; do
            port=$(free_port)
            out="$work/cg.$side.$test.$pipeline"
            start "$side" "$port" "$out"
            fill=$(fill_test "$test")
            case $test in
                lrange*) bench "$port" lpush 600 1 ;;
                *) if [ -n "$fill" ]; then bench "$port" "$fill" $((2 * (requests + warmup))) 16; fi ;;
            esac
            bench "$port" "$test" "$warmup" "$pipeline"
            callgrind_control -z "$pid" >/dev/null 2>&1
            bench "$port" "$test" "$requests" "$pipeline"
            callgrind_control -d "$pid" >/dev/null 2>&1
            dump="$out.1" # the first dump: the measured interval only
            for _ in $(seq 100); do [ -s "$dump" ] && break; sleep 0.1; done
            stop_server
            total=$(grep -m1 '^summary:\|^totals:' "$dump" | awk '{print $2}')
            ir[$side]=$((total / requests))
            if [ -n "${KEEP:-}" ]; then
                mkdir -p "$KEEP" && cp "$dump" "$KEEP/callgrind.$side.$test.P$pipeline"
            fi
        done
        python3 -c "import sys; r, o = int(sys.argv[1]), int(sys.argv[2]); print(f'| {sys.argv[3]} | {sys.argv[4]} | {r:,} | {o:,} | {r / o:.2f}x |')" \
            "${ir[redis]}" "${ir[ours]}" "$test" "$pipeline"
        unset ir
    done
done
