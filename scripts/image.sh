#!/usr/bin/env bash
# `make image`: the service's OCI image, built by podman from the Containerfile.
#
# BASE_IMAGE unset: a base equivalent to the official node:24-bookworm-slim is made on this machine (no image registry
# is reachable here) by scripts/image-base.sh and kept in podman's store for later runs: Debian 12 with its updates,
# Node at the version .node-version pins, npm, user `node`. It is made again once it is BASE_MAX_AGE_DAYS (7) old, so
# Debian's security updates reach the image within a week; if that fails, the older base is used, with a warning.
# BASE_IMAGE=docker.io/library/node:24-bookworm-slim scripts/image.sh uses that one instead.
# Prints the image's name last. Needs podman, runc and debootstrap (`.ci/container-tools.sh` installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/podman.sh
node_version=$(cat .node-version)
npm_version=11.19.1
image=${IMAGE:-localhost/bindcard:$(git rev-parse --short HEAD 2>/dev/null || echo dev)}

base=${BASE_IMAGE:-localhost/bindcard-base:bookworm-node$node_version-npm$npm_version}
age_days() { # of an image in podman's store; none: a large number
  local created
  created=$(podman image inspect -f '{{.Created.Unix}}' "$1" 2>/dev/null) || { echo 99999; return; }
  echo $((($(date +%s) - created) / 86400))
}
if [ -z "${BASE_IMAGE:-}" ] && [ "$(age_days "$base")" -ge "${BASE_MAX_AGE_DAYS:-7}" ]; then
  echo "== base $base: debootstrap, Debian's updates, Node $node_version, npm $npm_version" >&2
  old=$(podman image inspect -f '{{.Id}}' "$base" 2>/dev/null || true)
  if ! scripts/image-base.sh "$base" "$node_version" "$npm_version"; then
    [ -n "$old" ] || { echo "image: could not make the base" >&2; exit 1; }
    echo "image: WARNING: could not make a new base; using the one made $(age_days "$base") days ago" >&2
  elif [ -n "$old" ]; then
    podman rmi "$old" >/dev/null 2>&1 || true # the replaced base (kept while older images of ours use it)
  fi
fi
echo "== base $base: $(podman run --rm --network=none "$base" node --version)" >&2

echo "== image $image" >&2
# npm ci inside the build reaches the registry as this machine's npm does: host network, and the CA file npm is set to
# trust (a TLS-intercepting proxy's), as a build secret: mounted for that one step, in no layer
ca=$(npm config get cafile)
secret=()
[ -f "$ca" ] && secret=(--secret "id=ca,src=$ca")
podman build --network=host --build-arg BASE_IMAGE="$base" "${secret[@]}" \
  --label org.opencontainers.image.revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
  -t "$image" -t localhost/bindcard:latest -f Containerfile . >&2
echo "$image"
