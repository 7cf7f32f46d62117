#!/usr/bin/env bash
# Bounded fuzzing of every cargo-fuzz target in fuzz/ (`make test` runs it
# with 60 s per target, `make fuzz` with 300): installs cargo-fuzz when it
# is missing, writes the seed corpus (core/examples/fuzz_seeds.rs: frames of
# both families, ICMP and ICMPv6 errors, extension headers, fragments), and
# runs each target with AddressSanitizer from the seeds and the corpus it
# grew before (fuzz/corpus/, not committed). A crash, a failed assertion or
# a leak stops it non-zero, with the input in fuzz/artifacts/TARGET/.
#
# Stable Rust: RUSTC_BOOTSTRAP=1 lets it take the -Z flags cargo-fuzz
# passes (sanitizer, coverage); the sanitizer runtimes ship with stable.
set -euo pipefail
secs=${1:-60}
cd "$(dirname "$0")/.."
if ! command -v cargo-fuzz >/dev/null; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked --version 0.13.2
fi
seeds=$PWD/target/fuzz-seeds
cargo run -q -p sluice-core --example fuzz_seeds --no-default-features -- "$seeds" >/dev/null
export RUSTC_BOOTSTRAP=1
cd fuzz
for t in $(cargo fuzz list); do
  mkdir -p "corpus/$t"
  echo "fuzz: $t for ${secs}s"
  log=$PWD/../target/fuzz-$t.log
  status=0
  cargo fuzz run "$t" "corpus/$t" "$seeds" -- \
    -max_total_time="$secs" -rss_limit_mb=4096 -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E "^stat::(number_of_executed_units|peak_rss_mb)|ERROR|panicked|SUMMARY|artifact" "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -40 "$log" >&2
    echo "fuzz: $t failed (status $status); the input is in fuzz/artifacts/$t/, the log in $log" >&2
    exit "$status"
  fi
done
