#!/usr/bin/env bash
# Runs `npm run test:unit` N times in a row (default 3) while one CPU hog (`yes > /dev/null`) per
# core keeps every core busy, to shake out timing assumptions in the tests. Prints each run's
# result and duration; exits non-zero if any run failed. The hogs are killed on exit, however the
# script ends (their PIDs only, never by name).
#
#   scripts/test-under-load.sh [N]     (npm run test:load [-- N]; also TEST_LOAD_RUNS=N)
#
# Each run's output goes to .tmp/test-load/run-<i>.log; the last lines of a failed run are shown.
set -uo pipefail
cd "$(dirname "$0")/.."

runs=${1:-${TEST_LOAD_RUNS:-3}}
if ! [[ "$runs" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/test-under-load.sh [N]   (N: number of runs, a positive integer; got '$runs')" >&2
  exit 2
fi
cores=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
logs=.tmp/test-load
mkdir -p "$logs"
rm -f "$logs"/run-*.log

hogs=()
run_pid=
stop_hogs() {
  if [ "${#hogs[@]}" -gt 0 ]; then
    kill "${hogs[@]}" 2>/dev/null
    wait "${hogs[@]}" 2>/dev/null
    hogs=()
  fi
}
cleanup() {
  # Interrupted mid-run: stop that run too (npm passes the signal on to the test runner).
  if [ -n "$run_pid" ]; then
    kill -TERM "$run_pid" 2>/dev/null
    wait "$run_pid" 2>/dev/null
  fi
  stop_hogs
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for ((c = 0; c < cores; c++)); do
  yes >/dev/null &
  hogs+=($!)
done
echo "test:load: $runs run(s) of npm run test:unit with $cores CPU hog(s) (pids ${hogs[*]})"

failed=0
for ((i = 1; i <= runs; i++)); do
  log="$logs/run-$i.log"
  start=$(date +%s)
  # In the background and waited for, so that a signal reaches the traps at once.
  npm run --silent test:unit >"$log" 2>&1 &
  run_pid=$!
  if wait "$run_pid"; then result=pass; else result=FAIL; failed=$((failed + 1)); fi
  run_pid=
  took=$(($(date +%s) - start))
  echo "run $i/$runs: $result in ${took}s (log: $log)"
  if [ "$result" = FAIL ]; then
    grep -E '^# (tests|pass|fail|cancelled)' "$log" | sed 's/^/    /'
    grep -nE '^not ok|^ *not ok' "$log" | head -20 | sed 's/^/    /'
  fi
done

stop_hogs
echo "test:load: $((runs - failed)) of $runs run(s) passed"
[ "$failed" -eq 0 ]
