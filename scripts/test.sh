#!/usr/bin/env bash
# Runs the unit tests under dist/test/unit with no Docker reachable (DOCKER_HOST names a socket that does
# not exist: they must not need it), then every other uvu test file under dist/test (built from test/),
# against the real engine, and ends with the plain "N passed, N failed" line that CI reads.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
DOCKER_HOST=unix:///nonexistent/lowcode-faas-no-docker.sock node_modules/.bin/uvu dist/test/unit '\.test\.js$' 2>&1 | tee "$log"
unit=${PIPESTATUS[0]}
node_modules/.bin/uvu dist/test '\.test\.js$' -i unit 2>&1 | tee -a "$log"
status=${PIPESTATUS[0]}
sum() { sed -n "s/^ *$1: *\([0-9]*\).*/\1/p" "$log" | awk '{ n += $1 } END { print n + 0 }'; }
total=$(sum Total)
passed=$(sum Passed)
skipped=$(sum Skipped)
echo "$passed passed, $((total - passed - skipped)) failed, $skipped skipped"
[ "$unit" -eq 0 ] && exit "$status"
exit "$unit"
