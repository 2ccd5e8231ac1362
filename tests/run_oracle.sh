#!/usr/bin/env bash
# Interop tests against the real Hugging Face stack (pinned venv, cached outside
# the clone by tests/oracle/setup.sh) and Debian's python3 oracles.
# Each tests/oracle/test_*.py exits non-zero on a mismatch and prints its own counts.
set -u
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
py=$(bash "$root/tests/oracle/setup.sh") || { echo "oracle: venv set-up failed"; echo "oracle: 0 passed, 1 failed"; exit 1; }
export ANTIBODY_BUILD="$root/$build" ANTIBODY_ROOT="$root"
export ANTIBODY_SHARED=${ANTIBODY_SHARED:-$(cd "$root/.." && pwd)/shared}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
pass=0; fail=0
for t in "$root"/tests/oracle/test_*.py; do
  [ -f "$t" ] || continue
  name=$(basename "$t")
  start=$(date +%s)
  # Debian-only oracles (sentencepiece, regex) run under /usr/bin/python3.
  interp=$py; head -1 "$t" | grep -q 'debian-python' && interp=/usr/bin/python3
  if "$interp" "$t" > "$root/$build/$name.log" 2>&1; then
    pass=$((pass+1)); echo "ok   $name ($(( $(date +%s) - start ))s): $(tail -1 "$root/$build/$name.log")"
  else
    fail=$((fail+1)); echo "FAIL $name"; tail -40 "$root/$build/$name.log"
  fi
done
echo "oracle: $pass passed, $fail failed"
[ $fail -eq 0 ]
