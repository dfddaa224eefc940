#!/usr/bin/env bash
# Installs Debian 12's patroni, etcd-server and haproxy when missing (idempotent, noninteractive), and makes sure their
# packages leave no default service running: the HA stage runs its own etcd and HAProxy on other ports.
set -euo pipefail

packages=(patroni etcd-server haproxy)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
[[ $(id -u) -eq 0 ]] || { echo "install-packages: ${missing[*]} missing and not root" >&2; exit 1; }

# postinst scripts start services through invoke-rc.d; policy-rc.d answering 101 forbids it. Ours only if none exists.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
  trap 'rm -f "$policy"' EXIT
fi

export DEBIAN_FRONTEND=noninteractive
apt=(apt-get -q -y -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
# update only when the lists do not know a package yet (a fresh CI image)
apt-cache show "${missing[@]}" >/dev/null 2>&1 || "${apt[@]}" update
"${apt[@]}" install --no-install-recommends "${missing[@]}"

# belt and braces: should a default service have started anyway (a policy that allows it), stop it
for svc in etcd haproxy patroni; do
  if [[ -x /etc/init.d/$svc ]] && service "$svc" status >/dev/null 2>&1; then service "$svc" stop || true; fi
done
