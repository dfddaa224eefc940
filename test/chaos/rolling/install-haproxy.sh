#!/usr/bin/env bash
# Installs Debian's HAProxy (2.6 on Debian 12) when it is missing, and leaves no default instance running: the rolling
# stage starts its own haproxy with its own configuration. Safe to run when another job holds apt's lock (it waits).
set -euo pipefail

if command -v haproxy >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-haproxy: haproxy is missing and installing it needs root (apt-get install -y haproxy)" >&2
  exit 2
fi
apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o DPkg::Lock::Timeout=300 haproxy >/dev/null
}
if ! apt_install; then
  DEBIAN_FRONTEND=noninteractive apt-get update -q -o DPkg::Lock::Timeout=300 >/dev/null
  apt_install
fi
# Without systemd the package's init script may start a default instance (unless policy-rc.d forbids it): stop that
# one only, by its pid file, after checking it is the default configuration's process.
pidfile=/run/haproxy.pid
if [ -s "$pidfile" ]; then
  pid=$(head -1 "$pidfile")
  if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q '/etc/haproxy/haproxy.cfg'; then
    kill "$pid" 2>/dev/null || true
  fi
fi
command -v update-rc.d >/dev/null 2>&1 && update-rc.d haproxy disable >/dev/null 2>&1 || true
haproxy -v | sed -n 1p
