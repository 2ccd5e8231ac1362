#!/usr/bin/env bash
# make test: every suite (unit, demo, sanitizers, oracle, crash, fuzz where clang is present), each reporting "N passed, N failed"; exits non-zero if any failed.
set -u
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
failed=()
run() { local name=$1; shift; echo "== $name"; "$@" || failed+=("$name"); }
run unit bash tests/run_unit.sh "$build"
run demo bash tests/run_demo.sh "$build"
run sanitizers make --no-print-directory test-asan
run oracle bash tests/run_oracle.sh "$build"
run crash bash tests/run_crash.sh "$build"
n=5
# the fuzz harnesses a few seconds each, where clang is installed (make fuzz installs it)
if command -v clang > /dev/null; then
  run fuzz bash -c "make --no-print-directory fuzz > build-fuzz.log 2>&1 || { tail -20 build-fuzz.log; exit 1; }; bash tests/fuzz/run.sh build-fuzz 3"
  n=6
fi
echo "suites: $((n - ${#failed[@]})) passed, ${#failed[@]} failed${failed:+ (${failed[*]})}"
[ ${#failed[@]} -eq 0 ]
