#!/usr/bin/env bash
# The high-availability stage: installs patroni, etcd-server and haproxy when missing, starts a throwaway Patroni
# cluster (primary + synchronous standby, etcd, HAProxy on the leader) in a fresh folder, runs the failover check
# (failover.ts) against the service on HAProxy's address, and tears it all down, on failure too.
# Exit 0 only when every requirement held. Run as root from anywhere, after `npm ci`. HA_KEEP_DIR=1 keeps the logs.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
[[ $(id -u) -eq 0 ]] || { echo "ha: run as root (it installs packages and runs the cluster as postgres)" >&2; exit 1; }

for bin in /usr/lib/postgresql/15/bin/postgres psql curl; do
  command -v "$bin" >/dev/null || { echo "ha: $bin missing (PostgreSQL 15 server and client, curl)" >&2; exit 1; }
done
"$HERE/install-packages.sh"

# A run that was killed before its cleanup could finish (SIGKILL, a lost machine) leaves its cluster running, and the
# next `up` would find its ports taken: stop every cluster an earlier run left behind, and remove its folder (unless
# HA_KEEP_DIR kept it on purpose). Only the processes recorded in those folders are signalled (cluster.sh down).
for old in "${TMPDIR:-/tmp}"/bindcard-ha.*; do
  [[ -d $old ]] || continue
  echo "ha: stopping the leftover cluster in $old" >&2
  "$HERE/cluster.sh" down "$old" || true
  [[ -e $old/kept ]] || rm -rf "$old"
done

DIR=$(mktemp -d "${TMPDIR:-/tmp}/bindcard-ha.XXXXXX")
cleanup() {
  local rc=$?
  # a second signal must not cut the teardown short
  trap '' INT TERM
  for pid in ${upper:-} ${driver:-}; do
    if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" && wait "$pid" || true; fi
  done
  if ((rc != 0)); then
    "$HERE/cluster.sh" list "$DIR" >&2 || true
    # the tail of every log, for whoever reads the CI output
    for f in "$DIR"/*.log; do
      [[ -f $f ]] && { echo "── ${f##*/} (last 25 lines)"; tail -n 25 "$f"; } >&2
    done
  fi
  "$HERE/cluster.sh" down "$DIR" || true
  if [[ -n ${HA_KEEP_DIR:-} ]]; then touch "$DIR/kept"; echo "ha: logs kept in $DIR" >&2; else rm -rf "$DIR"; fi
  exit "$rc"
}
trap cleanup EXIT
# SIGTERM (chaos.sh's budget, or its own interruption) and SIGINT: exit, which runs cleanup (cluster.sh down)
trap 'exit 130' INT TERM

started=$SECONDS
# in the background, like the driver below, so a signal is acted on at once rather than after the cluster is up
"$HERE/cluster.sh" up "$DIR" &
upper=$!
wait "$upper"
upper=''
echo "ha: cluster up in $((SECONDS - started)) s" >&2
cd "$REPO"
# in the background, so a signal to this script runs the cleanup at once (which stops the driver, then the cluster)
HA_DIR=$DIR node --import tsx "$HERE/failover.ts" &
driver=$!
wait "$driver"
echo "ha: stage took $((SECONDS - started)) s" >&2
