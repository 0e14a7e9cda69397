#!/usr/bin/env bash
# hyperscale's crawler against Scrapy on the same synthetic test web
# (`hyperscale crawler testweb`), politeness relaxed (no delay, no
# Crawl-delay), same concurrency, robots.txt obeyed by both, no cache; three
# runs each, medians of pages/s and peak RSS, and the ratios.
#
# Usage: bench/crawler-vs-scrapy.sh [hosts] [pages] [concurrency] [runs]
# Needs: python3 with scrapy (pip install scrapy) and the release build of
# the crawler's bench binary (cargo build --release -p crawler --example
# crawl_bench): the same library calls as `hyperscale crawler testweb` and
# `hyperscale crawler crawl --delay-ms 0 --scope same-domain --no-bodies`,
# without building all of `hyperscale` in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
hosts=${1:-50}
pages=${2:-20000}
concurrency=${3:-32}
runs=${4:-3}
bin=${CRAWL_BENCH_BIN:-${CARGO_TARGET_DIR:-target}/release/examples/crawl_bench}
[ -x "$bin" ] || { echo "no $bin: run cargo build --release -p crawler --example crawl_bench first" >&2; exit 1; }
python3 -c 'import scrapy' 2>/dev/null || { echo "missing scrapy: python3 -m pip install scrapy" >&2; exit 1; }

work=$(mktemp -d)
web=""
cleanup() {
    [ -n "$web" ] && kill "$web" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$bin" testweb "$hosts" "$pages" "$work/seeds.txt" >/dev/null 2>&1 &
web=$!
for _ in $(seq 100); do [ -s "$work/seeds.txt" ] && break; sleep 0.1; done
[ -s "$work/seeds.txt" ] || { echo "the test web did not start" >&2; exit 1; }

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for i in $(seq "$runs"); do
    rm -rf "$work/crawl"
    "$bin" crawl "$work/seeds.txt" "$work/crawl" "$concurrency" 2>/dev/null | tail -1 >>"$work/results.jsonl"
    python3 bench/crawler_scrapy.py "$work/seeds.txt" "$concurrency" 2>/dev/null | tail -1 \
        | python3 -c 'import json,sys; s=json.loads(sys.stdin.read()); s["system"]="scrapy"; print(json.dumps(s))' \
        >>"$work/results.jsonl"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

python3 - "$work/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = {}
print("| system | run | pages | seconds | pages/s | peak RSS MiB |")
print("|---|---|---|---|---|---|")
for system in ("hyperscale", "scrapy"):
    mine = [r for r in rows if r["system"] == system]
    for i, r in enumerate(mine, 1):
        print(f"| {system} | {i} | {r['pages']} | {r['seconds']:.2f} | {r['pages']/r['seconds']:.0f} | {r['peak_rss_kib']/1024:.0f} |")
    med[system] = (statistics.median(r["pages"] / r["seconds"] for r in mine), statistics.median(r["peak_rss_kib"] for r in mine) / 1024)
h, s = med["hyperscale"], med["scrapy"]
print()
print(f"median pages/s: hyperscale {h[0]:.0f}, scrapy {s[0]:.0f}, ratio {h[0]/s[0]:.2f}x")
print(f"median peak RSS: hyperscale {h[1]:.0f} MiB, scrapy {s[1]:.0f} MiB, ratio {h[1]/s[1]:.2f}x")
PY
