# Helpers shared by the bench/compare-*.sh scripts (source it; needs python3).
# A script sets `pid` to the server it started; `stop_server` stops it.

# free_port: a free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_port PORT: waits up to 10 s for a server to accept on 127.0.0.1:PORT.
wait_port() {
    for _ in $(seq 200); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "server on port $1 did not start" >&2
    return 1
}

# stop_server: kills and reaps the server in $pid.
stop_server() {
    if [ -n "${pid:-}" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    pid=""
}
