#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 300), then prints
# the executions per target. Exits non-zero if any target crashed; the
# crashing input is in tests/fuzz/artifacts/<target>/ (reproduce with
# `cargo +nightly fuzz run --fuzz-dir tests/fuzz -s none <target> <file>`).
#
# New inputs libFuzzer finds go to tests/fuzz/target/corpus/<target>/ (not
# committed); the committed seeds in tests/fuzz/corpus/<target>/ are only
# read. Needs the nightly toolchain and cargo-fuzz (.ci/install sets both up).
set -uo pipefail
secs=${1:-300}
cd "$(dirname "$0")/../.."
export PATH="$HOME/.cargo/bin:$PATH"
fz=(cargo +nightly fuzz)
# bondd-core is #![forbid(unsafe_code)]: AddressSanitizer would find nothing
# the bounds checks do not, and costs about half the executions. Debug
# assertions (overflow checks) stay on (cargo-fuzz's default).
opts=(--fuzz-dir tests/fuzz -s none)

"${fz[@]}" build "${opts[@]}" || exit 1
failed=()
summary=()
for t in $("${fz[@]}" list --fuzz-dir tests/fuzz); do
  work=tests/fuzz/target/corpus/$t
  mkdir -p "$work"
  log=tests/fuzz/target/$t.log
  echo "== $t: ${secs}s"
  "${fz[@]}" run "${opts[@]}" "$t" "$work" "tests/fuzz/corpus/$t" -- \
    -max_total_time="$secs" -timeout=10 -print_final_stats=1 2>&1 | tee "$log" \
    | grep -E '^(INFO: seed corpus|#[0-9]+[[:space:]]+(INITED|DONE))|panicked|ERROR|SUMMARY' || true
  rc=${PIPESTATUS[0]}
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  summary+=("$t: ${execs:-?} executions, exit $rc")
  ((rc == 0)) || failed+=("$t")
done
printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "fuzz: crashed: ${failed[*]} (inputs in tests/fuzz/artifacts/)" >&2
  exit 1
fi
