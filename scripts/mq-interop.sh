#!/usr/bin/env bash
# Runs kafka-python (PyPI kafka-python) against `hyperscale mq serve`: its
# default producer and an idempotent one (enable_idempotence=True) each send
# 10 keyed records, a KafkaConsumer in a group reads all 20 back and commits,
# and `hyperscale mq groups describe` must then show the commit with lag 0.
#
# Usage: scripts/mq-interop.sh path/to/hyperscale
# Starts the broker on a free loopback port, always kills it on exit.
set -euo pipefail

bin=${1:?usage: mq-interop.sh path/to/hyperscale}
python3 -c 'import kafka' 2>/dev/null || { echo "kafka-python not found: pip install kafka-python" >&2; exit 1; }

work=$(mktemp -d)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
bootstrap="127.0.0.1:$port"
"$bin" mq serve --bind "$bootstrap" --data-dir "$work/data" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
    "$bin" mq topics list --bootstrap "$bootstrap" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; echo "broker exited" >&2; exit 1; }
    sleep 0.1
done

timeout 120 python3 - "$bootstrap" <<'PY'
import sys
from kafka import KafkaConsumer, KafkaProducer

bootstrap, topic = sys.argv[1], "interop"

def produce(tag, **settings):
    producer = KafkaProducer(bootstrap_servers=bootstrap, **settings)
    sent = [producer.send(topic, key=b"k%d" % i, value=b"%s-%d" % (tag, i)) for i in range(10)]
    for future in sent:
        future.get(timeout=30)
    producer.close()

produce(b"default")
produce(b"idempotent", enable_idempotence=True)
consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id="interop",
                         auto_offset_reset="earliest", enable_auto_commit=False,
                         consumer_timeout_ms=15000)
got = []
for message in consumer:
    got.append(message.value)
    if len(got) == 20:
        break
consumer.commit()
consumer.close()
want = sorted(b"%s-%d" % (tag, i) for tag in (b"default", b"idempotent") for i in range(10))
if sorted(got) != want:
    sys.exit("round trip mismatch: got %r" % sorted(got))
print("ok   kafka-python: 20 records round-trip (default and idempotent producers), group commit")
PY

described=$("$bin" mq groups describe interop --bootstrap "$bootstrap" --json)
echo "$described" | python3 -c '
import json, sys
d = json.load(sys.stdin)
parts = d["partitions"]
assert parts and all(p["lag"] == 0 for p in parts), d
assert sum(p["committed_offset"] for p in parts) == 20, d
print("ok   hyperscale mq groups describe: kafka-python commit seen, lag 0")'
