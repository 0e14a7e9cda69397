#!/usr/bin/env bash
# Our message queue broker against NATS JetStream (Debian's nats-server), and
# librdkafka's rdkafka_performance against our broker, medians of interleaved runs.
#
# Usage: bench/compare-mq.sh path/to/hyperscale [records] [runs] [rdkafka_performance]
#   hyperscale  built with `cargo build --release -p hyperscale --features nats-bench`
#   records     per throughput run (default 1000000), runs  per configuration (default 3)
#   rdkafka_performance  path to librdkafka's example (optional). Built from the
#               source in the rdkafka-sys crate, linked to Debian's librdkafka:
#                 apt-get install librdkafka-dev   # and `cargo fetch` a crate needing rdkafka-sys 4.10
#                 cp -r ~/.cargo/registry/src/*/rdkafka-sys-4.10.0+2.12.1/librdkafka /tmp/rdk && cd /tmp/rdk
#                 ./configure --disable-ssl --disable-gssapi --disable-sasl --disable-curl --disable-zstd --disable-lz4-ext
#                 gcc -O2 -I src -o rdkafka_performance examples/rdkafka_performance.c -lrdkafka -lm -lpthread
#               (configure only writes the config.h its internal headers include)
#
# Pins each server to CPU 0 and the load generator to CPU 1 (taskset). Every
# measurement gets a fresh server and data directory; runs are interleaved
# (run 1 of every system, then run 2, ...) so machine noise spreads over all.
# Both sides are durable the same way: file storage, written to the OS on
# every append and fsynced later (ours: `--fsync os`; nats-server 2.9 has no
# per-message fsync: its file store syncs in the background). `ours-interval`
# (fsync every second, our default) is shown for reference.
# Configurations, 100-byte records, 1 producer, batches of 1000 records
# (NATS: 1000 pipelined publishes per acknowledgement wait), 5 in flight:
#   produce   1 producer, no consumer: producer throughput
#   pubsub    1 producer, 1 consumer: throughput and end-to-end latency
#   rate      1 producer, 1 consumer at 20000 records/s (linger 5 ms): latency
# Prints a markdown table of medians; servers are always killed on exit.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

bin=${1:?usage: compare-mq.sh path/to/hyperscale [records] [runs] [rdkafka_performance]}
records=${2:-1000000}
runs=${3:-3}
rdkafka=${4:-}
for tool in nats-server taskset python3; do
    command -v "$tool" >/dev/null || { echo "$tool not found (apt-get install nats-server util-linux python3)" >&2; exit 1; }
done
cpus=$(nproc)
server_cpu=0
client_cpu=$((cpus > 1 ? 1 : 0))
rate=20000
rate_records=$((rate * 5))

work=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# start_server NAME PORT: a fresh server pinned to the server CPU.
start_server() {
    local name=$1 port=$2 dir="$work/$1"
    rm -rf "$dir" && mkdir -p "$dir"
    case $name in
        ours-os) taskset -c "$server_cpu" "$bin" mq serve --bind "127.0.0.1:$port" --data-dir "$dir/data" --fsync os >"$dir/log" 2>&1 & ;;
        ours-interval) taskset -c "$server_cpu" "$bin" mq serve --bind "127.0.0.1:$port" --data-dir "$dir/data" --fsync interval >"$dir/log" 2>&1 & ;;
        nats) taskset -c "$server_cpu" nats-server -a 127.0.0.1 -p "$port" -js -sd "$dir/data" >"$dir/log" 2>&1 & ;;
    esac
    pid=$!
    wait_port "$port"
}

# bench NAME PORT CONFIG OUT: one `hyperscale bench mq` run, its JSON in OUT.
bench() {
    local name=$1 port=$2 config=$3 out=$4 target shape
    case $name in
        nats) target=(--system nats --nats-url "nats://127.0.0.1:$port") ;;
        *) target=(--bootstrap "127.0.0.1:$port" --acks 1) ;;
    esac
    case $config in
        produce) shape=(--consumers 0 --records "$records") ;;
        pubsub) shape=(--consumers 1 --records "$records") ;;
        rate) shape=(--consumers 1 --records "$rate_records" --rate "$rate" --linger-ms 5) ;;
    esac
    taskset -c "$client_cpu" "$bin" bench mq "${target[@]}" "${shape[@]}" \
        --producers 1 --record-size 100 --batch-size 1000 --in-flight 5 --json >"$out" 2>"$out.err" \
        || { echo "bench $name $config failed: $(tail -c 300 "$out.err")" >&2; rm -f "$out"; }
}

# rdkafka PORT OUT: rdkafka_performance producing to our broker, as JSON in OUT.
rdkafka() {
    local port=$1 out=$2
    "$bin" mq topics create perf --partitions 1 --bootstrap "127.0.0.1:$port" >/dev/null
    taskset -c "$client_cpu" "$rdkafka" -P -t perf -p 0 -b "127.0.0.1:$port" -s 100 -c "$records" -a 1 \
        -X linger.ms=5 -X batch.num.messages=1000 >"$out.txt" 2>&1 || true
    python3 - "$out.txt" >"$out" <<'PY' || rm -f "$out"
import json, re, sys
text = open(sys.argv[1]).read()
m = re.search(r"(\d+) messages produced .* in (\d+)ms: (\d+) msgs/s and ([\d.]+) MB/s", text)
if not m:
    sys.exit(1)
print(json.dumps({"produced": int(m[1]), "produce_records_per_sec": float(m[3]), "produce_mb_per_sec": float(m[4])}))
PY
}

echo "load before: $(uptime)" >&2
res="$work/res"
mkdir -p "$res"
for run in $(seq "$runs"); do
    for config in produce pubsub rate; do
        for name in ours-os nats ours-interval; do
            [ "$name" = ours-interval ] && [ "$config" != pubsub ] && continue
            port=$(free_port)
            start_server "$name" "$port"
            echo "run $run: $config on $name" >&2
            bench "$name" "$port" "$config" "$res/$config.$name.$run.json"
            stop_server
        done
    done
    if [ -n "$rdkafka" ]; then
        port=$(free_port)
        start_server ours-os "$port"
        echo "run $run: rdkafka_performance on ours-os" >&2
        rdkafka "$port" "$res/produce.rdkafka_performance-ours-os.$run.json"
        stop_server
    fi
done
echo "load after: $(uptime)" >&2

python3 - "$res" <<'PY'
import glob, json, os, statistics, sys
res = sys.argv[1]
runs = {}
for path in glob.glob(os.path.join(res, "*.json")):
    config, name, _run, _ = os.path.basename(path).split(".")
    try:
        runs.setdefault((config, name), []).append(json.load(open(path)))
    except ValueError:
        pass
def med(config, name, field):
    values = [r[field] for r in runs.get((config, name), []) if field in r]
    return statistics.median(values) if values else None
fmt = lambda v, spec: "-" if v is None else format(v, spec)
print("| config | system | runs | produce rec/s | produce MB/s | consume rec/s | ack p50 ms | ack p99 ms | e2e p50 ms | e2e p99 ms |")
print("|---|---|---|---|---|---|---|---|---|---|")
order = ["ours-os", "nats", "ours-interval", "rdkafka_performance-ours-os"]
for config in ["produce", "pubsub", "rate"]:
    for name in order:
        if (config, name) not in runs:
            continue
        m = lambda f: med(config, name, f)
        consumed = config != "produce"
        consume = m("consume_records_per_sec") if consumed else None
        e2e50, e2e99 = (m("e2e_p50_ms"), m("e2e_p99_ms")) if consumed else (None, None)
        print(f"| {config} | {name} | {len(runs[(config, name)])} | {fmt(m('produce_records_per_sec'), ',.0f')} | "
              f"{fmt(m('produce_mb_per_sec'), '.1f')} | {fmt(consume, ',.0f')} | {fmt(m('ack_p50_ms'), '.2f')} | "
              f"{fmt(m('ack_p99_ms'), '.2f')} | {fmt(e2e50, '.2f')} | {fmt(e2e99, '.2f')} |")
print()
for config in ["produce", "pubsub"]:
    ours, nats = med(config, "ours-os", "produce_records_per_sec"), med(config, "nats", "produce_records_per_sec")
    if ours and nats:
        print(f"- {config}: ours/JetStream produce throughput = {ours / nats:.2f}x")
ours, rdk = med("produce", "ours-os", "produce_records_per_sec"), med("produce", "rdkafka_performance-ours-os", "produce_records_per_sec")
if ours and rdk:
    print(f"- produce to our broker: rdkafka_performance/hyperscale bench mq = {rdk / ours:.2f}x")
PY
