#!/usr/bin/env bash
# Benchmarks: builds with optimisations, runs every scenario against the real code paths on
# this machine and prints a table (ops/s, p50, p99, goal, result, how; footnotes say how each
# row is measured). The bot's and the tracker's rows run their binaries built here beside
# the bench.
# Extra flags go to the bench binary, e.g. `./scripts/bench.sh --signals 20000` for a quicker
# run, or `--only web-filters,bot` for some rows (`--help` lists the groups).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "building benchmarks, the bot and the tracker (release) ..." >&2
cargo build --locked --profile bench-release -p bench -p bot -p tracker
exec ./target/bench-release/bench "$@"
