#!/usr/bin/env bash
# Fuzzes the parsers of untrusted input (fuzz/fuzz_targets/) with cargo-fuzz and libFuzzer.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Runs each target (default: all of them) for SECONDS (default 600) of fuzzing, one after the
# other, and prints a table: target, runs, execs per second, coverage gained, new corpus
# units, crashes. Exits non-zero if any target crashed (or failed to run); crash inputs stay
# in fuzz/artifacts/<target>/ with the command that reproduces them.
#
# Corpora: fuzz/seeds/<target>/ is committed (rebuilt from the tests by fuzz/seed.py) and only
# read; what the fuzzer finds goes to fuzz/corpus/<target>/, which is ignored by git and kept
# between runs so later runs start where earlier ones stopped.
#
# Works with the stable toolchain: cargo-fuzz passes nightly-only `-Z` flags to rustc and
# cargo, which stable accepts with RUSTC_BOOTSTRAP=1 (set here, for these commands only).
#
# Environment:
#   FUZZ_SANITIZER  address (default) or none. AddressSanitizer checks the instrumented Rust
#                   code (unsafe code in dependencies; std is not rebuilt); `none` skips that
#                   instrumentation. If the address build fails and FUZZ_SANITIZER is unset,
#                   the script falls back to none and says so.
#   G3_FUZZ_KNOWN   comma-separated known issues the targets should look past while they are
#                   open (names in fuzz/fuzz_targets/*.rs, e.g. attachment-order); unset, every
#                   check is strict.
#   FUZZ_TIMEOUT    seconds one input may take before it counts as a hang (default 10).
#   FUZZ_RSS_MB     memory limit in MB (default 2048).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
fuzz="$root/fuzz"

die() { printf 'error: %s\n' "$*" >&2; exit 2; }
step() { printf '\n==> %s\n' "$*" >&2; }

seconds=${1:-600}
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || die "SECONDS must be a positive integer, got '$seconds'"
shift || true

export RUSTC_BOOTSTRAP=1

command -v cargo >/dev/null || die "cargo is not installed (install Rust with rustup)"
if ! cargo fuzz --version >/dev/null 2>&1; then
  step "installing cargo-fuzz (first run only)"
  cargo install cargo-fuzz --locked
fi

mapfile -t all_targets < <(cd "$fuzz" && cargo fuzz list)
if [[ $# -gt 0 ]]; then
  targets=("$@")
  for t in "${targets[@]}"; do
    printf '%s\n' "${all_targets[@]}" | grep -qx -- "$t" ||
      die "unknown target '$t' (targets: ${all_targets[*]})"
  done
else
  targets=("${all_targets[@]}")
fi

sanitizer=${FUZZ_SANITIZER:-address}
case $sanitizer in address | none) ;; *) die "FUZZ_SANITIZER must be address or none" ;; esac

build() {
  (cd "$fuzz" && cargo fuzz build --sanitizer "$sanitizer" "$@")
}
step "building ${targets[*]} (sanitizer: $sanitizer)"
built=true
for t in "${targets[@]}"; do
  build "$t" || { built=false; break; }
done
if ! $built; then
  if [[ -z ${FUZZ_SANITIZER:-} && $sanitizer == address ]]; then
    printf 'warning: the AddressSanitizer build failed; building without a sanitizer\n' >&2
    sanitizer=none
    for t in "${targets[@]}"; do build "$t"; done
  else
    die "build failed"
  fi
fi

triple=$(rustc -vV | sed -n 's/^host: //p')
bin_dir="$fuzz/target/$triple/release"

# Longest input libFuzzer makes for each target: room for a realistic message or body.
max_len() {
  case $1 in
    ingest_batch) echo 65536 ;;
    sellapp_event) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

# Numbers from a libFuzzer log: `stat::NAME: N` lines of -print_final_stats, else progress lines.
stat() { grep -oE "^stat::$2: *[0-9]+" "$1" | tail -n1 | grep -oE '[0-9]+$' || true; }
last_cov() { grep -oE '^#[0-9]+.* cov: [0-9]+' "$1" | tail -n1 | grep -oE '[0-9]+$' || true; }
inited_cov() { grep -oE '^#[0-9]+[[:space:]]+INITED cov: [0-9]+' "$1" | head -n1 | grep -oE '[0-9]+$' || true; }
artifacts_of() { find "$fuzz/artifacts/$1" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) 2>/dev/null | sort; }

mkdir -p "$fuzz/logs"
rows=()
failed=0
repro=()
for t in "${targets[@]}"; do
  mkdir -p "$fuzz/corpus/$t" "$fuzz/artifacts/$t"
  log="$fuzz/logs/$t.log"
  before=$(artifacts_of "$t")
  step "fuzzing $t for ${seconds}s (log: ${log#"$root"/})"
  rc=0
  # The binary built above, run directly (what `cargo fuzz run` does after building), so that
  # source edits made meanwhile do not rebuild between targets. The first corpus directory
  # receives new inputs; the seeds are only read.
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_odr_violation=0" \
    "$bin_dir/$t" -artifact_prefix="$fuzz/artifacts/$t/" \
    -max_total_time="$seconds" -max_len="$(max_len "$t")" \
    -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb="${FUZZ_RSS_MB:-2048}" \
    -print_final_stats=1 "$fuzz/corpus/$t" "$fuzz/seeds/$t" >"$log" 2>&1 || rc=$?
  after=$(artifacts_of "$t")
  new=$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | sed '/^$/d')
  crashes=$(printf '%s' "$new" | grep -c . || true)
  runs=$(stat "$log" number_of_executed_units)
  eps=$(stat "$log" average_exec_per_sec)
  units=$(stat "$log" new_units_added)
  c0=$(inited_cov "$log")
  c1=$(last_cov "$log")
  gained=$([[ -n $c0 && -n $c1 ]] && echo "+$((c1 - c0)) ($c1)" || echo "?")
  status=ok
  if [[ $crashes -gt 0 ]]; then
    status=CRASH
    failed=1
    while IFS= read -r a; do
      repro+=("$t: ${a#"$root"/}" "    reproduce: (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer $sanitizer $t ${a#"$fuzz"/})")
    done <<<"$new"
    grep -m1 -A3 -E "panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer" "$log" >&2 || true
  elif [[ $rc -ne 0 ]]; then
    status="FAILED (exit $rc, see log)"
    failed=1
    tail -n 20 "$log" >&2
  fi
  rows+=("$(printf '%-16s %12s %10s %16s %9s %8s  %s' "$t" "${runs:-?}" "${eps:-?}" "$gained" "${units:-?}" "$crashes" "$status")")
done

printf '\nfuzzed %ss per target, sanitizer: %s\n' "$seconds" "$sanitizer"
printf '%-16s %12s %10s %16s %9s %8s  %s\n' target runs exec/s "cov gained (now)" "new units" crashes status
printf '%s\n' "${rows[@]}"
if [[ ${#repro[@]} -gt 0 ]]; then
  printf '\ncrash inputs (kept in fuzz/artifacts/, ignored by git):\n'
  printf '  %s\n' "${repro[@]}"
  printf '  minimise one with: (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz tmin --sanitizer %s TARGET artifacts/TARGET/crash-...)\n' "$sanitizer"
fi
exit "$failed"
