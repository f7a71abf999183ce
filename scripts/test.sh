#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, Rust tests (nextest), the scale-out test,
# the conformance tests that drive the Appwrite emulator with Appwrite's official Node and
# Python SDKs, the collector's tests and its run against ingest, the dashboard in headless
# Chromium, a short fuzz of every fuzz target, and the container images with the compose stack.
# Installs what a fresh machine lacks (cargo-nextest, cargo-fuzz, npm packages, Chromium,
# docker.io). Safe to re-run.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
started=$SECONDS

# Installs below run unattended (CI has no standard input).
export DEBIAN_FRONTEND=noninteractive

step() { printf '\n==> [%4ss] %s\n' "$((SECONDS - started))" "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# --- tools a new machine may lack -------------------------------------------------------------
step "checking tools"
command -v cargo >/dev/null || die "cargo is not installed (install Rust with rustup)"
if ! cargo nextest --version >/dev/null 2>&1; then
  step "installing cargo-nextest (first run only)"
  cargo install cargo-nextest --locked
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  step "installing Node.js and npm from Debian's packages (first run only)"
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq nodejs npm >/dev/null; fi
fi
if ! command -v python3 >/dev/null; then
  step "installing Python 3 from Debian's packages (first run only)"
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq python3 python3-venv >/dev/null; fi
fi
echo "cargo: $(cargo --version)"; echo "python: $(python3 --version)"; echo "nextest: $(cargo nextest --version | head -1)"; echo "node: $(node --version)"
# A clean run leaves about 11 GB in target/ and 1.3 GB in fuzz/target/; the docker test needs
# 5 GB more at its peak.
echo "disk: $(df -Ph . | awk 'NR == 2 { print $4 }') free here"

# The read-only shared folder (Appwrite's OpenAPI specs, Sell.app examples) sits beside the repo.
export G3_SHARED_DIR="${G3_SHARED_DIR:-$root/../shared}"
[ -f "$G3_SHARED_DIR/reference/appwrite/open-api3-1.8.1-server.json" ] \
  || die "shared reference not found at $G3_SHARED_DIR (set G3_SHARED_DIR)"

# npm packages of the TypeScript parts, installed when missing or when the lock file changed.
for dir in tests/conformance apps/collector; do
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    step "installing npm packages in $dir (npm ci)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done

# --- static checks --------------------------------------------------------------------------------
step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# --- tests ----------------------------------------------------------------------------------------
step "Rust tests (cargo nextest)"
cargo nextest run --workspace --locked --no-fail-fast

step "scale-out: 2 web, 2 webhook and 2 bot processes on one Appwrite, kill -9 mid-run"
# The test runs the services' binaries. Built with the test targets selected, so features
# resolve as in the nextest build above and nothing is compiled twice.
cargo build --locked --workspace --all-targets
cargo nextest run --locked -p scaleout --run-ignored ignored-only --no-capture

if [ -f tests/conformance/package.json ]; then
  step "conformance: Appwrite's Node SDK against the emulator"
  cargo build --locked -p appwrite-emulator --bin appwrite-emulator
  EMULATOR_BIN="$root/target/debug/appwrite-emulator" node --test --test-reporter=spec \
    tests/conformance/
fi

if [ -f tests/conformance-python/requirements.txt ]; then
  step "conformance: Appwrite's Python SDK (appwrite 15.3.0) against the emulator"
  cargo build --locked -p appwrite-emulator --bin appwrite-emulator
  EMULATOR_BIN="$root/target/debug/appwrite-emulator" tests/conformance-python/run.sh -q
fi

step "collector (Vencord plugin): build, type check against @vencord/types, Vencord lint, node tests"
(cd apps/collector && npm test)

step "collector against the real ingest service (devstack on free ports)"
./scripts/collector-e2e.sh

step "web dashboard in headless Chromium (devstack on free ports; screenshots in artifacts/browser)"
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi
fi
if [ ! -d tests/browser/node_modules ] || [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
(cd tests/browser && npm test)

step "fuzz smoke: every fuzz target for 10 s from its seeds (cargo-fuzz, no sanitizer; longer runs: scripts/fuzz.sh)"
# Builds the targets (they are their own workspace, in fuzz/target) and fuzzes each briefly:
# a target that no longer builds, or an input of the committed seeds that now fails, fails
# here. A crash leaves its input in fuzz/artifacts/ with the command that reproduces it.
FUZZ_SANITIZER=none ./scripts/fuzz.sh 10

step "container images + compose stack, offline (own dockerd, debootstrap base)"
./scripts/docker-test.sh

step "all tests passed in $((SECONDS - started))s"
