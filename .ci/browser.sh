#!/usr/bin/env bash
# What the API reference test needs (test/integration/reference.test.ts): Debian's chromium, which playwright-core
# drives, and fonts-noto-cjk, without which the screenshot shows Chinese as boxes. Installs only what is missing.
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
dpkg-query -W -f='${Status}' fonts-noto-cjk 2>/dev/null | grep -q 'ok installed' || missing+=(fonts-noto-cjk)

if [ ${#missing[@]} -eq 0 ]; then
  echo "browser: chromium and fonts-noto-cjk already installed"
  exit 0
fi

echo "browser: installing ${missing[*]}"
started=$SECONDS
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "browser: installed ${missing[*]} in $((SECONDS - started)) s: $(/usr/bin/chromium --version 2>/dev/null)"
