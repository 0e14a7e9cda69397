#!/usr/bin/env bash
# Runs the real redis-cli and redis-benchmark (Debian package redis-tools)
# and redis-py (PyPI) against `hyperscale kv serve`, asserting every reply;
# redis-benchmark's whole default test list runs on both engines.
#
# Usage: scripts/kv-interop.sh path/to/hyperscale [benchmark-requests]
# Starts the server on a free loopback port with the memory engine, always
# kills it on exit, and fails on the first unexpected reply or benchmark error.
set -euo pipefail

bin=${1:?usage: kv-interop.sh path/to/hyperscale [requests]}
requests=${2:-10000}
command -v redis-cli >/dev/null || { echo "redis-cli not found: apt-get install redis-tools" >&2; exit 1; }
command -v redis-benchmark >/dev/null || { echo "redis-benchmark not found: apt-get install redis-tools" >&2; exit 1; }

work=$(mktemp -d)
server_pid=""
sub_pid=""
lsm_pid=""
cleanup() {
    [ -n "$sub_pid" ] && kill "$sub_pid" 2>/dev/null || true
    [ -n "$lsm_pid" ] && kill "$lsm_pid" 2>/dev/null || true
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
"$bin" kv serve --engine memory --bind "127.0.0.1:$port" --data-dir "$work/data" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
    redis-cli -p "$port" PING 2>/dev/null | grep -q PONG && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; echo "server exited" >&2; exit 1; }
    sleep 0.1
done

failures=0
total=0
check() { # check "description" "expected" actual...
    local what=$1 expected=$2
    total=$((total + 1))
    shift 2
    local actual
    actual=$("$@" 2>&1) || true
    if [ "$actual" != "$expected" ]; then
        echo "FAIL $what: expected [$expected] got [$actual]" >&2
        failures=$((failures + 1))
    else
        echo "ok   $what"
    fi
}
cli() { redis-cli -p "$port" "$@"; }

check "SET" "OK" cli SET greeting hello
check "GET" "hello" cli GET greeting
check "EXPIRE" "1" cli EXPIRE greeting 100
check "TTL" "100" cli TTL greeting
check "INCR" "1" cli INCR counter
check "MSET/MGET" $'OK\n1\n2' bash -c "redis-cli -p $port MSET a 1 b 2 && redis-cli -p $port MGET a b"
check "unknown command" "ERR unknown command 'NOSUCH', with args beginning with: 'x' " cli NOSUCH x
check "wrong arity" "ERR wrong number of arguments for 'get' command" cli GET
check "WRONG integer" "ERR value is not an integer or out of range" cli INCR greeting
check "MULTI/EXEC" $'OK\nQUEUED\nQUEUED\n2\n3' bash -c "printf 'MULTI\nINCR counter\nINCR counter\nEXEC\n' | redis-cli -p $port"
check "HELLO 3" "proto 3" bash -c "redis-cli -3 -p $port HELLO 3 | grep '^proto'"
check "inline PING" "+PONG" bash -c "exec 3<>/dev/tcp/127.0.0.1/$port; printf 'PING\r\n' >&3; head -c 7 <&3 | tr -d '\r\n'"

# SUBSCRIBE in one redis-cli, PUBLISH from another.
redis-cli -p "$port" SUBSCRIBE news >"$work/sub.out" 2>&1 &
sub_pid=$!
for _ in $(seq 100); do
    [ "$(redis-cli -p "$port" PUBSUB NUMSUB news | sed -n 2p)" = "1" ] && break
    sleep 0.1
done
check "PUBLISH" "1" cli PUBLISH news "breaking"
for _ in $(seq 100); do grep -q breaking "$work/sub.out" && break; sleep 0.1; done
check "SUBSCRIBE receives" $'subscribe\nnews\n1\nmessage\nnews\nbreaking' cat "$work/sub.out"
kill "$sub_pid" 2>/dev/null || true
sub_pid=""

# redis-py (PyPI), a second-language client with its own reply parsers.
total=$((total + 1))
if python3 "$(dirname "$0")/kv_redis_py.py" "$port"; then
    echo "ok   redis-py suite"
else
    echo "FAIL redis-py suite" >&2
    failures=$((failures + 1))
fi

# redis-benchmark's whole default test list must complete without errors
# on both engines. bench_engine NAME PORT
bench_engine() {
    local name=$1 bench_port=$2 out="$work/bench-$1.out"
    echo "redis-benchmark (default tests) -n $requests -q against the $name engine"
    if ! timeout 900 redis-benchmark -p "$bench_port" -n "$requests" -q >"$out" 2>&1; then
        failures=$((failures + 1))
        echo "FAIL redis-benchmark exited non-zero ($name)" >&2
    fi
    tr '\r' '\n' <"$out" | grep "requests per second" || true
    for test in PING_INLINE PING_MBULK SET GET INCR LPUSH RPUSH LPOP RPOP SADD HSET SPOP ZADD ZPOPMIN \
        "LPUSH (needed to benchmark LRANGE)" "LRANGE_100 (first 100 elements)" "LRANGE_300 (first 300 elements)" \
        "LRANGE_500 (first 500 elements)" "LRANGE_600 (first 600 elements)" "MSET (10 keys)"; do
        total=$((total + 1))
        if tr '\r' '\n' <"$out" | grep -F "$test: " | grep -q "requests per second"; then
            echo "ok   redis-benchmark $test ($name)"
        else
            echo "FAIL redis-benchmark $test did not complete ($name)" >&2
            failures=$((failures + 1))
        fi
    done
    if tr '\r' '\n' <"$out" | grep -qi "error"; then
        echo "FAIL redis-benchmark reported errors ($name):" >&2
        tr '\r' '\n' <"$out" | grep -i error | head -5 >&2
        failures=$((failures + 1))
    fi
}
bench_engine memory "$port"

lsm_port=$(free_port)
"$bin" kv serve --engine lsm --fsync everysec --bind "127.0.0.1:$lsm_port" --data-dir "$work/lsm" >"$work/lsm.log" 2>&1 &
lsm_pid=$!
for _ in $(seq 100); do
    redis-cli -p "$lsm_port" PING 2>/dev/null | grep -q PONG && break
    sleep 0.1
done
bench_engine lsm "$lsm_port"
kill "$lsm_pid" 2>/dev/null || true
wait "$lsm_pid" 2>/dev/null || true
lsm_pid=""

kill -0 "$server_pid" 2>/dev/null || { echo "FAIL server died" >&2; failures=$((failures + 1)); }
passed=$((total - failures))
echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
