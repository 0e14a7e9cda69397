#!/usr/bin/env bash
# Big collections on the lsm engine: a 1M-field hash and a 1M-member sorted
# set, against Redis with appendonly everysec (the durable anchor).
#
# Usage: bench/kv-collections.sh path/to/hyperscale [size] [requests] [runs]
#   size      fields / members per collection (default 1000000)
#   requests  per random-access workload (default 200000)
#   runs      per server, Redis and ours alternating (default 3)
#
# Per run, on a fresh server (pinned to CPU 0; clients on CPU 1):
#   fill      `size` fields into hash `big` (HSET big f:<i> v, 1,000 pairs a
#             command) and `size` members into sorted set `bigz` (ZADD bigz
#             <i> m:<i>, 1,000 a command), piped with redis-cli --pipe and
#             timed: fields (members) per second;
#   then redis-benchmark, 50 clients, -r size (so every field it names exists):
#   HSET big f:<rand> v  (overwrites),  HGET big f:<rand>,
#   ZADD bigz <rand> m:<rand>  (moves a member),
#   ZRANGEBYSCORE bigz <rand> +inf LIMIT 0 10;
#   HLEN / ZCARD (checked to equal `size`), and DEL of each key, timed
#   (O(1) for the caller on our lsm engine: compaction drops the subkeys).
# Every step has a time limit (STEP_TIMEOUT_S, default 600): a run that
# hangs fails instead of holding the machine.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

bin=${1:?usage: kv-collections.sh path/to/hyperscale [size] [requests] [runs]}
size=${2:-1000000}
requests=${3:-200000}
runs=${4:-3}
limit=${STEP_TIMEOUT_S:-600}
for tool in redis-server redis-benchmark redis-cli taskset python3 timeout; do
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

# The fill commands, in RESP, generated once. Names are zero-padded to 12
# digits, as redis-benchmark writes __rand_int__.
python3 - "$size" "$work" <<'PY'
import sys
size, work = int(sys.argv[1]), sys.argv[2]
def resp(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)
with open(f"{work}/hash.resp", "wb") as h, open(f"{work}/zset.resp", "wb") as z:
    for start in range(0, size, 1000):
        ids = range(start, min(start + 1000, size))
        hargs = [b"HSET", b"big"]
        zargs = [b"ZADD", b"bigz"]
        for i in ids:
            hargs += [b"f:%012d" % i, b"v"]
            zargs += [b"%d" % i, b"m:%012d" % i]
        h.write(resp(hargs))
        z.write(resp(zargs))
PY

rps() { # rps PORT ARGS... -> requests per second
    local port=$1
    shift
    timeout "$limit" taskset -c "$client_cpu" redis-benchmark -p "$port" -n "$requests" -r "$size" -c 50 --csv "$@" 2>/dev/null \
        | tail -n 1 | tr -d '"' | cut -d, -f2
}
ms() { # ms COMMAND... -> wall milliseconds of one call
    local start end
    start=$(date +%s%N)
    timeout "$limit" "$@" >/dev/null
    end=$(date +%s%N)
    echo $(((end - start) / 1000000))
}
per_s() { # per_s COUNT MS -> COUNT per second
    python3 -c "import sys; print(round(int(sys.argv[1]) * 1000 / max(int(sys.argv[2]), 1)))" "$1" "$2"
}

echo "server,run,hash_fill_per_s,zset_fill_per_s,hset,hget,zadd,zrangebyscore,hlen,zcard,del_hash_ms,del_zset_ms"
for run in $(seq "$runs"); do
    for side in redis ours; do
        port=$(free_port)
        dir="$work/$side-$run"
        mkdir -p "$dir"
        case $side in
            redis) taskset -c 0 redis-server --port "$port" --save '' --appendonly yes --appendfsync everysec --dir "$dir" >"$dir/log" 2>&1 & ;;
            ours) taskset -c 0 "$bin" kv serve --engine lsm --fsync everysec --data-dir "$dir/data" --bind "127.0.0.1:$port" >"$dir/log" 2>&1 & ;;
        esac
        pid=$!
        wait_port "$port"
        cli=(taskset -c "$client_cpu" redis-cli -p "$port")
        hash_ms=$(ms "${cli[@]}" --pipe <"$work/hash.resp")
        zset_ms=$(ms "${cli[@]}" --pipe <"$work/zset.resp")
        hset=$(rps "$port" HSET big f:__rand_int__ v)
        hget=$(rps "$port" HGET big f:__rand_int__)
        zadd=$(rps "$port" ZADD bigz __rand_int__ m:__rand_int__)
        zrange=$(rps "$port" ZRANGEBYSCORE bigz __rand_int__ +inf LIMIT 0 10)
        hlen=$("${cli[@]}" HLEN big)
        zcard=$("${cli[@]}" ZCARD bigz)
        if [ "$hlen" != "$size" ] || [ "$zcard" != "$size" ]; then
            echo "$side run $run: HLEN $hlen, ZCARD $zcard, expected $size" >&2
            exit 1
        fi
        del_hash=$(ms "${cli[@]}" DEL big)
        del_zset=$(ms "${cli[@]}" DEL bigz)
        echo "$side,$run,$(per_s "$size" "$hash_ms"),$(per_s "$size" "$zset_ms"),$hset,$hget,$zadd,$zrange,$hlen,$zcard,$del_hash,$del_zset"
        stop_server
    done
done
