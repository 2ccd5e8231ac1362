#!/usr/bin/env bash
# Runs every C test binary in BUILD/tests and prints one closing line.
set -u
build=${1:-build}
pass=0; fail=0; failed=()
for t in "$build"/tests/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  start=$(date +%s)
  if "$t" > "$build/tests/$name.log" 2>&1; then
    pass=$((pass+1)); echo "ok   $name ($(( $(date +%s) - start ))s)"
  else
    fail=$((fail+1)); failed+=("$name"); echo "FAIL $name"; tail -30 "$build/tests/$name.log"
  fi
done
# The alternative SGEMM (OpenBLAS, ANTIBODY_BLAS=openblas): the kernels' gradient checks and
# the model tests again through it.
for name in test_gradcheck test_model; do
  t="$build/tests/$name"
  [ -x "$t" ] || continue
  if ANTIBODY_BLAS=openblas "$t" > "$build/tests/$name.openblas.log" 2>&1; then
    pass=$((pass+1)); echo "ok   $name with ANTIBODY_BLAS=openblas"
  else
    fail=$((fail+1)); echo "FAIL $name with ANTIBODY_BLAS=openblas"; tail -30 "$build/tests/$name.openblas.log"
  fi
done
# Three threads (more than CI's two cores): the tests that compare runs bit for bit (rho = 0
# against SFT, resumed against uninterrupted) catch a sum whose order follows the threads'
# arrival (with two threads such a sum often commutes and hides).
for name in test_defenses test_train test_reliability; do
  t="$build/tests/$name"
  [ -x "$t" ] || continue
  if OMP_NUM_THREADS=3 "$t" > "$build/tests/$name.threads3.log" 2>&1; then
    pass=$((pass+1)); echo "ok   $name with OMP_NUM_THREADS=3"
  else
    fail=$((fail+1)); echo "FAIL $name with OMP_NUM_THREADS=3"; tail -30 "$build/tests/$name.threads3.log"
  fi
done
# The whole model (the real checkpoint's fixtures, generation) again through each other
# instruction set test_isa found this CPU runs (ANTIBODY_ISA; the default run used the best).
isas=$(sed -n 's/^\(.*\): checked$/\1/p' "$build/tests/test_isa.log" 2>/dev/null | head -n -1)
for isa in $isas; do
  for name in test_model test_eval; do
    t="$build/tests/$name"
    [ -x "$t" ] || continue
    if ANTIBODY_ISA=$isa "$t" > "$build/tests/$name.$isa.log" 2>&1; then
      pass=$((pass+1)); echo "ok   $name with ANTIBODY_ISA=$isa"
    else
      fail=$((fail+1)); echo "FAIL $name with ANTIBODY_ISA=$isa"; tail -30 "$build/tests/$name.$isa.log"
    fi
  done
done
# The folder layering docs/engine.md states (each folder includes only those below it),
# and that the check itself finds planted violations.
here=$(dirname "$0")
if bash "$here/check_layers.sh" && bash "$here/check_layers.sh" --self-test; then
  pass=$((pass+1)); echo "ok   check_layers"
else
  fail=$((fail+1)); echo "FAIL check_layers"
fi
echo "unit ($build): $pass passed, $fail failed"
[ $fail -eq 0 ]
