#!/usr/bin/env bash
# Runs the real redis-cli and redis-benchmark (Debian package redis-tools)
# against `hyperscale kv serve`, asserting every reply.
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
cleanup() {
    [ -n "$sub_pid" ] && kill "$sub_pid" 2>/dev/null || true
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

echo "redis-benchmark -t ping,set,get,incr,mset -n $requests -q"
if ! timeout 600 redis-benchmark -p "$port" -t ping,set,get,incr,mset -n "$requests" -q >"$work/bench.out" 2>&1; then
    failures=$((failures + 1))
    echo "FAIL redis-benchmark exited non-zero" >&2
fi
tr '\r' '\n' <"$work/bench.out" | grep "requests per second" || true
for test in PING_INLINE PING_MBULK SET GET INCR "MSET (10 keys)"; do
    total=$((total + 1))
    if tr '\r' '\n' <"$work/bench.out" | grep -q "^$test: .* requests per second"; then
        echo "ok   redis-benchmark $test"
    else
        echo "FAIL redis-benchmark $test did not complete" >&2
        failures=$((failures + 1))
    fi
done
if tr '\r' '\n' <"$work/bench.out" | grep -qi "error"; then
    echo "FAIL redis-benchmark reported errors:" >&2
    tr '\r' '\n' <"$work/bench.out" | grep -i error >&2
    failures=$((failures + 1))
fi

kill -0 "$server_pid" 2>/dev/null || { echo "FAIL server died" >&2; failures=$((failures + 1)); }
passed=$((total - failures))
echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
