# shellcheck shell=bash
# One line per step with its time, for setup.sh and build-images.sh; the tools' own output goes to
# $SETUP_LOG and its last lines are shown only when a step fails.

say() { echo "setup: $*" >&2; }

# Set once a step ran: the script then ends by saying where the tools' output went.
# shellcheck disable=SC2034 # read by the script that sources this file
STEPS_TAKEN=
die() { echo "setup: $*" >&2; exit 1; }

# step "what" COMMAND [ARG...]: runs COMMAND, its output appended to the log; returns its status
# (under set -e a failed step ends the script).
step() {
  local what=$1 started status
  shift
  started=$(date +%s.%N)
  printf 'setup: %s ...' "$what" >&2
  echo "=== $(date -Is) $what: $*" >>"$SETUP_LOG"
  status=0
  "$@" >>"$SETUP_LOG" 2>&1 </dev/null || status=$?
  local took
  took=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  # shellcheck disable=SC2034 # read by the script that sources this file
  STEPS_TAKEN=1
  if [ "$status" -ne 0 ]; then
    echo " failed after ${took} s (exit $status); the last lines of $SETUP_LOG:" >&2
    tail -n 15 "$SETUP_LOG" | sed 's/^/  | /' >&2
    return "$status"
  fi
  echo " done (${took} s)" >&2
}
