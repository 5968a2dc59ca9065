#!/usr/bin/env bash
# Idempotent set-up behind `npm start` and `npm test`: on a fresh Debian machine it installs and starts
# the Docker engine, installs dependencies, builds, and builds the runtime images; when everything is
# in place it only checks, and returns in well under two seconds. Each step it takes prints one line
# with its time; what the tools print goes to a log file, shown in part only when a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

data=${LOWCODE_FAAS_DATA:-data}
mkdir -p "$data"
SETUP_LOG=${SETUP_LOG:-$(cd "$data" && pwd)/setup.log}
export SETUP_LOG

# shellcheck source=scripts/steps.sh
. scripts/steps.sh

is_root() { [ "$(id -u)" = 0 ]; }
can_apt() { is_root && command -v apt-get >/dev/null; }

apt_install() {
  # A fresh machine has stale or empty package lists; refresh them once per run.
  if [ -z "${APT_UPDATED:-}" ]; then
    step "refreshing the package lists" apt-get update -q
    APT_UPDATED=1
  fi
  step "installing $*" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

engine_up() { timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

ensure_docker() {
  if ! command -v dockerd >/dev/null && ! engine_up; then
    can_apt || die "no Docker engine: install Docker (Debian: apt-get install docker.io) and start it, then retry"
    apt_install docker.io
  fi
  engine_up && return 0
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    step "starting docker.service" systemctl start docker || true
  elif is_root && command -v dockerd >/dev/null; then
    # No init system here (a container or CI sandbox): run dockerd detached, logging under /var/log.
    clear_stale_pidfile /var/run/docker.pid
    clear_stale_pidfile /var/run/docker/containerd/containerd.pid
    say "starting dockerd (its log: /var/log/lowcode-faas-dockerd.log)"
    setsid nohup dockerd >>/var/log/lowcode-faas-dockerd.log 2>&1 </dev/null &
    dockerd_pid=$!
  else
    die "the Docker engine is not running and cannot be started from here: start it (systemctl start docker)"
  fi
  for _ in $(seq 1 150); do
    engine_up && return 0
    if [ -n "${dockerd_pid:-}" ] && ! kill -0 "$dockerd_pid" 2>/dev/null; then
      tail -n 3 /var/log/lowcode-faas-dockerd.log >&2 || true
      die "dockerd exited at start; see /var/log/lowcode-faas-dockerd.log"
    fi
    sleep 0.2
  done
  die "dockerd did not answer within 30 s; see /var/log/lowcode-faas-dockerd.log or journalctl -u docker"
}

# A daemon killed hard leaves its pid file; dockerd refuses to start while the pid in it lives, and a
# zombie or a recycled pid counts as living. Drop the file unless it names a running dockerd/containerd.
clear_stale_pidfile() {
  local file=$1 pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file" 2>/dev/null || true)
  if [ -n "$pid" ] && grep -qs '^State:[[:space:]]*[^Z]' "/proc/$pid/status" &&
     grep -qsE '^(dockerd|containerd)' "/proc/$pid/comm"; then
    return 0
  fi
  rm -f "$file"
}

ensure_node_modules() {
  # npm ci only when the lock file changed since the last install.
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    step "installing npm dependencies" npm ci --no-audit --no-fund
    touch node_modules/.package-lock.json
  fi
}


ensure_build() {
  local stamp=dist/.build-stamp
  if [ ! -f "$stamp" ] || [ -n "$(find src test bench tsconfig.json package.json -newer "$stamp" -print -quit 2>/dev/null)" ]; then
    step "building (tsc)" bash scripts/build.sh
    touch "$stamp"
  fi
}

ensure_images() {
  local images
  images=$(node --input-type=module -e '
    const { loadConfig } = await import("./dist/src/config.js");
    const c = loadConfig(process.env);
    console.log(c.images.python + " " + c.images.deno);
  ') || die "invalid configuration (see above)"
  read -r python_image deno_image <<<"$images"
  local need=()
  docker image inspect -- "$python_image" >/dev/null 2>&1 || need+=("python=$python_image")
  docker image inspect -- "$deno_image" >/dev/null 2>&1 || need+=("deno=$deno_image")
  [ ${#need[@]} -eq 0 ] && return 0
  STEPS_TAKEN=1
  bash scripts/build-images.sh "${need[@]}"
}

# The suite lints the shell scripts; the linter is Debian's.
ensure_shellcheck() {
  [ -n "${SETUP_FOR_TESTS:-}" ] || return 0
  command -v shellcheck >/dev/null && return 0
  can_apt || { say "shellcheck is missing (apt-get install shellcheck); the lint test will fail"; return 0; }
  apt_install shellcheck
}

# The console's tests drive a real browser: Debian's Chromium, headless (playwright-core downloads none).
ensure_chromium() {
  [ -n "${SETUP_FOR_TESTS:-}" ] || return 0
  [ -x "${LOWCODE_FAAS_CHROMIUM:-/usr/bin/chromium}" ] && return 0
  can_apt || die "the console tests need Chromium: apt-get install chromium (or set LOWCODE_FAAS_CHROMIUM)"
  apt_install chromium
}

ensure_docker
ensure_shellcheck
ensure_chromium
ensure_node_modules
ensure_build
ensure_images
if [ -n "$STEPS_TAKEN" ]; then say "done; what the tools printed is in $SETUP_LOG"; fi
