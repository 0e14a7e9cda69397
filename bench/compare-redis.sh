#!/usr/bin/env bash
# Our kv server against Redis (Debian's redis-server) with redis-benchmark.
#
# Usage: bench/compare-redis.sh path/to/hyperscale [requests] [runs] [tests] [pairs]
#   requests  per test (default 200000), runs  per configuration (default 3),
#   tests     redis-benchmark -t list (default: its whole default list),
#   pairs     "memory durable" (default), or one of them
#
# Pins each server to CPU 0 and redis-benchmark to CPU 1 (taskset), runs
# `redis-benchmark -t TESTS -n N -c 50 --csv`, without and with
# `-P 16`, `runs` times each, and prints a markdown table of medians with our/Redis
# ratios. Two pairs are compared:
#   memory:  `hyperscale kv serve --engine memory`  vs  redis-server (no persistence)
#   durable: `hyperscale kv serve --engine lsm --fsync everysec`
#            vs  redis-server --appendonly yes --appendfsync everysec
# Servers are always killed on exit.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

bin=${1:?usage: compare-redis.sh path/to/hyperscale [requests] [runs]}
requests=${2:-200000}
runs=${3:-3}
tests=${4:-ping_inline,ping_mbulk,set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange,mset}
pairs=${5:-memory durable}
for tool in redis-server redis-benchmark redis-cli taskset python3; do
    command -v "$tool" >/dev/null || { echo "$tool not found (apt-get install redis-server redis-tools util-linux python3)" >&2; exit 1; }
done
cpus=$(nproc)
server_cpu=0
client_cpu=$((cpus > 1 ? 1 : 0))

work=$(mktemp -d)
pid=""
cleanup() {
    stop_server
    rm -rf "$work"
}
trap cleanup EXIT

# start_server NAME PORT: starts one of the four servers pinned to the server CPU.
start_server() {
    local name=$1 port=$2 dir="$work/$1"
    rm -rf "$dir" && mkdir -p "$dir"
    case $name in
        redis-memory) taskset -c "$server_cpu" redis-server --port "$port" --save '' --appendonly no --dir "$dir" >"$dir/log" 2>&1 & ;;
        redis-durable) taskset -c "$server_cpu" redis-server --port "$port" --save '' --appendonly yes --appendfsync everysec --dir "$dir" >"$dir/log" 2>&1 & ;;
        ours-memory) taskset -c "$server_cpu" "$bin" kv serve --engine memory --bind "127.0.0.1:$port" >"$dir/log" 2>&1 & ;;
        ours-durable) taskset -c "$server_cpu" "$bin" kv serve --engine lsm --fsync everysec --data-dir "$dir/data" --bind "127.0.0.1:$port" >"$dir/log" 2>&1 & ;;
    esac
    pid=$!
    wait_port "$port"
}

results="$work/results.csv"
echo "server,pipeline,run,test,rps,p50,p99" >"$results"
# Runs alternate between Redis and ours (run 1 of each, then run 2...), so
# a change in the machine's load hits both sides alike.
for pair in $pairs; do
    for pipeline in 1 16; do
        for run in $(seq "$runs"); do
            for side in redis ours; do
                name="$side-$pair"
                port=$(free_port)
                start_server "$name" "$port"
                echo "$name -P $pipeline run $run" >&2
                taskset -c "$client_cpu" redis-benchmark -p "$port" -t "$tests" -n "$requests" -c 50 -P "$pipeline" --csv \
                    2>/dev/null | tail -n +2 | tr -d '"' | while IFS=, read -r test rps _avg _min p50 _p95 p99 _max; do
                        echo "$name,$pipeline,$run,$test,$rps,$p50,$p99" >>"$results"
                    done
                stop_server
            done
        done
    done
done

python3 - "$results" "$requests" "$runs" <<'PY'
import csv, statistics, sys
from collections import defaultdict
path, requests, runs = sys.argv[1], sys.argv[2], sys.argv[3]
data = defaultdict(list)
order = []
for row in csv.DictReader(open(path)):
    data[(row["server"], row["pipeline"], row["test"])].append(row)
    if row["test"] not in order:
        order.append(row["test"])
def med(rows, field):
    return statistics.median(float(r[field]) for r in rows)
print(f"redis-benchmark -c 50 -n {requests}, median of {runs} runs; server on CPU 0, client on CPU 1\n")
print("| pair | test | pipeline | Redis ops/s | ours ops/s | ratio | Redis p50 / p99 ms | ours p50 / p99 ms |")
print("|---|---|---|---:|---:|---:|---|---|")
for pair in ["memory", "durable"]:
    for pipeline in ["1", "16"]:
        for test in order:
            r = data.get((f"redis-{pair}", pipeline, test))
            o = data.get((f"ours-{pair}", pipeline, test))
            if not r or not o:
                continue
            rr, orps = med(r, "rps"), med(o, "rps")
            print(f"| {pair} | {test} | {pipeline} | {rr:,.0f} | {orps:,.0f} | {orps / rr:.2f}x | "
                  f"{med(r, 'p50'):.3f} / {med(r, 'p99'):.3f} | {med(o, 'p50'):.3f} / {med(o, 'p99'):.3f} |")
PY
