#!/usr/bin/env bash
# hyperscale's crawler against Scrapy on the same synthetic test web, and the
# flat-RSS check (peak RSS with 100k and 1M URLs queued): the code of
# `hyperscale bench crawler` (crates/crawler/src/bench.rs), run from the
# small release example so it does not need a release build of all of
# `hyperscale`. Prints every run on stderr and the report (medians, ratios,
# load before/after) as JSON.
#
# Usage: bench/crawler-vs-scrapy.sh [hosts] [pages] [concurrency] [runs] [queued,queued] [queued-pages]
# Needs: python3 with scrapy (python3 -m pip install scrapy).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p crawler --example crawl_bench
exec "${CARGO_TARGET_DIR:-target}/release/examples/crawl_bench" "$@"
