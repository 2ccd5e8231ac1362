#!/usr/bin/env bash
# Runs every fuzz harness for SECONDS each (default 3) on its seed corpus plus what
# earlier runs found (FUZZ_BUILD/found/<harness>), one at a time; prints one line per
# harness with its executions and a closing "N passed, N failed" line.
# A crash, leak, sanitizer report, timeout or allocation over the limit fails the harness
# and leaves the input in FUZZ_BUILD/crashes/<harness>/.
set -u
fb=${1:-build-fuzz}
secs=${2:-3}
only=${3:-}
export OMP_NUM_THREADS=1 ANTIBODY_PROGRESS=0
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 UBSAN_OPTIONS=print_stacktrace=1
pass=0; fail=0
for bin in "$fb"/fuzz_*; do
  case $bin in *.log) continue ;; esac
  h=${bin##*/fuzz_}
  [ -n "$only" ] && [ "$only" != "$h" ] && continue
  mkdir -p "$fb/found/$h" "$fb/crashes/$h"
  log=$fb/fuzz_$h.log
  "$bin" -max_total_time="$secs" -timeout=20 -rss_limit_mb=3072 -malloc_limit_mb=1024 -max_len=1200000 \
    -print_final_stats=1 -artifact_prefix="$fb/crashes/$h/" "$fb/found/$h" "$fb/corpus/$h" > "$log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  if [ $rc -eq 0 ]; then
    pass=$((pass+1)); echo "ok   fuzz_$h (${execs:-?} executions in ${secs}s)"
  else
    fail=$((fail+1)); echo "FAIL fuzz_$h (exit $rc; input in $fb/crashes/$h/)"; grep -A12 -m1 'ERROR\|==ERROR\|runtime error\|deadly signal\|out-of-memory\|malloc(' "$log" | head -20
  fi
done
echo "fuzz ($fb, ${secs}s each): $pass passed, $fail failed"
[ $fail -eq 0 ]
