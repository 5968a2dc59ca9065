#!/usr/bin/env bash
# Runs every uvu test file under dist/test (built from test/) and ends with the plain
# "N passed, N failed" line that CI reads.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
node_modules/.bin/uvu dist/test '\.test\.js$' "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
total=$(sed -n 's/^ *Total: *\([0-9]*\).*/\1/p' "$log" | tail -1)
passed=$(sed -n 's/^ *Passed: *\([0-9]*\).*/\1/p' "$log" | tail -1)
skipped=$(sed -n 's/^ *Skipped: *\([0-9]*\).*/\1/p' "$log" | tail -1)
if [ -n "$total" ] && [ -n "$passed" ]; then
  echo "$passed passed, $((total - passed - ${skipped:-0})) failed, ${skipped:-0} skipped"
fi
exit "$status"
