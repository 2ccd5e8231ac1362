#!/usr/bin/env bash
# make test: every suite, each reporting "N passed, N failed"; exits non-zero if any failed.
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
n=4
echo "suites: $((n - ${#failed[@]})) passed, ${#failed[@]} failed${failed:+ (${failed[*]})}"
[ ${#failed[@]} -eq 0 ]
