#!/usr/bin/env bash
# What `make image` needs on this machine, installed only when missing: podman, runc (crun refuses this VM's hybrid
# cgroups: scripts/podman.sh runs podman with --runtime runc --cgroup-manager=cgroupfs) and debootstrap; and
# /etc/containers/containers.conf without default ulimits (setting rlimits is not permitted here), written when absent.
set -euo pipefail
missing=()
for tool in podman runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -e /etc/containers/containers.conf ]; then
  mkdir -p /etc/containers
  printf '[containers]\ndefault_ulimits = []\n' >/etc/containers/containers.conf
fi
