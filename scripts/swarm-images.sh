#!/usr/bin/env bash
# Readies a swarm node for LOWCODE_FAAS_BACKEND=swarm, from the manager: copies the runtime images to it
# (there is no registry: `docker save | docker load`), makes its config-only network that turns traffic
# between function containers off, and labels it as holding these exact images, which is what services
# are constrained to and what /readyz checks.
#   scripts/swarm-images.sh NODE [ENGINE]
# NODE is the node's name in `docker node ls`; ENGINE is how to reach its Docker engine (default
# ssh://NODE; e.g. tcp://10.0.0.5:2376, or "exec:CONTAINER" for a node that is a container here).
set -euo pipefail
cd "$(dirname "$0")/.."

node=${1:?usage: scripts/swarm-images.sh NODE [ENGINE]}
engine=${2:-ssh://$node}
python_image=${LOWCODE_FAAS_PYTHON_IMAGE:-lowcode-faas/python:3.11}
deno_image=${LOWCODE_FAAS_DENO_IMAGE:-lowcode-faas/deno:2.9.6}
network=${LOWCODE_FAAS_NETWORK:-lowcode-faas}-swarm-config

# The node's own docker CLI: over DOCKER_HOST, or inside a container of this engine.
on_node() {
  if [[ $engine == exec:* ]]; then docker exec -i "${engine#exec:}" docker "$@"; else docker -H "$engine" "$@"; fi
}

ids=()
for image in "$python_image" "$deno_image"; do
  id=$(docker image inspect --format '{{.Id}}' -- "$image") || { echo "swarm-images: $image is not on this engine; build it with: npm run setup" >&2; exit 1; }
  ids+=("$id")
done
# The same label as src/swarm-nodes.ts imagesLabel(): the images' ids, hashed.
label="lowcode-faas.images.$(printf '%s,%s' "${ids[0]}" "${ids[1]}" | sha256sum | cut -c1-12)"

start=$(date +%s)
docker save -- "$python_image" "$deno_image" | on_node load >/dev/null
echo "swarm-images: images loaded on $node in $(($(date +%s) - start)) s"
if ! on_node network inspect -- "$network" >/dev/null 2>&1; then
  on_node network create --config-only --opt com.docker.network.bridge.enable_icc=false -- "$network" >/dev/null
fi
docker node update --label-add "$label=1" -- "$node" >/dev/null
echo "swarm-images: $node labelled $label; functions may run there"
