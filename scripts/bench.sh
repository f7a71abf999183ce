#!/usr/bin/env bash
# Benchmarks: builds with optimisations, runs every scenario against the real code paths on
# this machine and prints a table (ops/s, p50, p99, goal, result). Extra flags go to the bench
# binary, e.g. `./scripts/bench.sh --docs 20000` for a quicker run.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "building benchmarks (release) ..." >&2
cargo build --locked --profile bench-release -p bench
exec ./target/bench-release/bench "$@"
