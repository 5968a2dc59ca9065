#!/usr/bin/env bash
# Builds the runtime images without a container registry: a Debian root filesystem made by mmdebstrap
# from this machine's own apt sources, piped into `docker import`.
#   python=<image>  Debian's python3
#   deno=<image>    the Deno binary from the npm package @deno/linux-x64-glibc (pinned below)
#   systemd-test=<image>  Debian booting systemd, for test/systemd.test.ts (not a runtime image)
#   swarm-node=<image>    Debian running its own dockerd, a nested swarm node for test/swarm-multinode.test.ts
# An image named outside lowcode-faas/ is taken to be an official one and pulled instead.
# Usage: scripts/build-images.sh python=lowcode-faas/python:3.11 deno=lowcode-faas/deno:2.9.6
set -euo pipefail
cd "$(dirname "$0")/.."

DENO_VERSION=2.9.6

SETUP_LOG=${SETUP_LOG:-$(mkdir -p "${LOWCODE_FAAS_DATA:-data}" && cd "${LOWCODE_FAAS_DATA:-data}" && pwd)/setup.log}
# shellcheck source=scripts/steps.sh
. scripts/steps.sh

[ $# -gt 0 ] || die "usage: $0 python=IMAGE deno=IMAGE"

# shellcheck source=/dev/null
codename() { . /etc/os-release && echo "${VERSION_CODENAME:-bookworm}"; }

# Prints one "deb [signed-by=…] URI SUITE COMPONENTS" line per Debian source configured on this machine
# (deb822 .sources files and the one-line format), keeping only suites of this release.
apt_sources() {
  local release=$1
  shopt -s nullglob
  local files=(/etc/apt/sources.list.d/*.sources)
  if [ ${#files[@]} -gt 0 ]; then
    awk -v rel="$release" '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && enabled != "no" && uris != "")
          for (i = 1; i <= split(suites, s, " "); i++)
            if (s[i] == rel || index(s[i], rel "-") == 1)
              for (j = 1; j <= split(uris, u, " "); j++)
                printf "deb %s%s %s %s\n", (key != "" ? "[signed-by=" key "] " : ""), u[j], s[i], comps
        types = uris = suites = comps = key = enabled = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      { field = tolower($1); sub(/:$/, "", field); $1 = ""; sub(/^ +/, "")
        if (field == "types") types = $0; else if (field == "uris") uris = $0
        else if (field == "suites") suites = $0; else if (field == "components") comps = $0
        else if (field == "signed-by") key = $0; else if (field == "enabled") enabled = tolower($0) }
      END { flush() }
    ' "${files[@]}"
  fi
  local lists=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list)
  for f in "${lists[@]}"; do
    [ -f "$f" ] || continue
    awk -v rel="$release" '$1 == "deb" {
        i = 2; opts = ""
        if ($2 ~ /^\[/) { while ($i !~ /\]$/) { opts = opts $i " "; i++ } opts = opts $i " "; i++ }
        if ($(i+1) == rel || index($(i+1), rel "-") == 1) {
          line = "deb " opts $i " " $(i+1)
          for (k = i + 2; k <= NF; k++) line = line " " $k
          print line
        }
      }' "$f"
  done
}

ensure_mmdebstrap() {
  command -v mmdebstrap >/dev/null && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then die "mmdebstrap is missing: apt-get install mmdebstrap"; fi
  step "refreshing the package lists" apt-get update -q
  step "installing mmdebstrap" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mmdebstrap
}

# import_debian RELEASE IMAGE [mmdebstrap options...]: a minimal Debian imported as IMAGE, with the
# image config from the CHANGES array (docker import --change).
import_debian() {
  local release=$1 image=$2
  shift 2
  local sources
  mapfile -t sources < <(apt_sources "$release")
  [ ${#sources[@]} -gt 0 ] || die "no Debian $release source found in /etc/apt/sources.list{,.d}"
  # Imported under a temporary tag and renamed only when complete: a build cut short never passes
  # for the image.
  local partial="${image%%:*}:partial-$$"
  if ! step "building $image from the configured Debian mirror" debian_tar_import "$partial" "$release" "$@" "${sources[@]}"; then
    docker rmi "$partial" >/dev/null 2>&1 || true
    die "building $image failed"
  fi
  docker tag -- "$partial" "$image"
  docker rmi "$partial" >/dev/null
}

# debian_tar_import TAG RELEASE [mmdebstrap options and sources...]
debian_tar_import() {
  local tag=$1 release=$2
  shift 2
  local opts=() arg
  for arg in "$@"; do [[ $arg == --* ]] && opts+=("$arg"); done
  local srcs=()
  for arg in "$@"; do [[ $arg == --* ]] || srcs+=("$arg"); done
  # Docs, man pages and locales are dead weight in a function's image. The single quotes are meant:
  # mmdebstrap expands "$1" (the root being built) in its hooks.
  # shellcheck disable=SC2016
  mmdebstrap --quiet --variant=minbase --format=tar \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    "${opts[@]}" "$release" - "${srcs[@]}" \
    | docker import "${CHANGES[@]/#/--change=}" \
        --message "lowcode-faas runtime image, built by scripts/build-images.sh" - "$tag"
}

build_python() {
  CHANGES=('CMD ["python3"]' 'WORKDIR /' 'ENV PYTHONUNBUFFERED=1' 'ENV PYTHONDONTWRITEBYTECODE=1')
  import_debian "$(codename)" "$1" --include=python3
}

# A global, not a local: the EXIT trap runs after build_deno has returned, when its locals are gone
# (under set -u a trap naming a local died with "tmp: unbound variable" on the first run).
deno_tmp=
trap '[ -z "$deno_tmp" ] || rm -rf "$deno_tmp"' EXIT

build_deno() {
  deno_tmp=$(mktemp -d)
  local tmp=$deno_tmp
  # shellcheck disable=SC2016 # $1 and $2 are the inner shell's arguments
  step "fetching @deno/linux-x64-glibc@$DENO_VERSION from the npm registry" \
    sh -c 'cd "$1" && npm pack --silent "@deno/linux-x64-glibc@$2" && tar -xzf ./*.tgz' sh "$tmp" "$DENO_VERSION"
  [ -x "$tmp/package/deno" ] || die "the npm package did not contain a deno binary"
  # DENO_DIR in /tmp: a function's root filesystem may be mounted read-only.
  CHANGES=('CMD ["deno"]' 'WORKDIR /' 'ENV DENO_DIR=/tmp/deno' 'ENV DENO_NO_UPDATE_CHECK=1' 'ENV NO_COLOR=1')
  # shellcheck disable=SC2016 # "$1" is expanded by mmdebstrap: the root it builds
  import_debian "$(codename)" "$1" \
    --customize-hook="copy-in $tmp/package/deno /usr/local/bin" \
    --customize-hook='chmod 0755 "$1/usr/local/bin/deno"'
  rm -rf "$deno_tmp"
  deno_tmp=
}

# A Debian that boots systemd as PID 1, where test/systemd.test.ts installs and starts the unit. iptables
# for the unit's firewall step; node, the docker CLI and the project are bound in from the host by the test.
build_systemd_test() {
  CHANGES=('CMD ["/sbin/init"]' 'ENV container=docker')
  import_debian "$(codename)" "$1" --include=systemd,systemd-sysv,dbus,iptables
}

# A Docker engine in a container: a second swarm node on this machine, for test/swarm-multinode.test.ts.
# iproute2 and iptables are what dockerd needs for its bridges and overlay networks.
build_swarm_node() {
  CHANGES=('CMD ["dockerd"]')
  import_debian "$(codename)" "$1" --include=docker.io,iproute2,iptables
}

for spec in "$@"; do
  lang=${spec%%=*}
  image=${spec#*=}
  case "$image" in
    lowcode-faas/*) ;;
    *)
      say "pulling $image"
      docker pull -- "$image" >&2 || die "could not pull $image: build a local image or set LOWCODE_FAAS_${lang^^}_IMAGE"
      continue ;;
  esac
  ensure_mmdebstrap
  case "$lang" in
    python) build_python "$image" ;;
    deno) build_deno "$image" ;;
    systemd-test) build_systemd_test "$image" ;;
    swarm-node) build_swarm_node "$image" ;;
    *) die "unknown language: $lang" ;;
  esac
done
