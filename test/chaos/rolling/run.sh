#!/usr/bin/env bash
# The two-instances rolling-restart stage of `make chaos` (issue #19): HAProxy (installed from Debian when missing)
# round-robins a mixed partner load over two bindcard instances while each in turn gets SIGTERM and is started again.
# Exits 0 only when every check holds; the last line is the summary. Ports: HAProxy 16000 (stats 16001), instances
# 16101-16104. Needs a PostgreSQL server: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) names the
# server the throwaway database is made on. ROLLING_KEEP=1 keeps the run's folder (logs) after a pass too.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
cd "$repo"

"$here/install-haproxy.sh"

export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
ROLLING_DIR=$(mktemp -d /tmp/bindcard-rolling.XXXXXX)
export ROLLING_DIR
db_url=''
status=1

teardown() {
  # whatever the driver left running (it ends its own processes on the way out; this is for a crash or a signal)
  if [ -f "$ROLLING_DIR/pids" ]; then
    while read -r pid; do
      if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -Eq 'src/main\.ts|haproxy'; then
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done <"$ROLLING_DIR/pids"
  fi
  if [ -n "$db_url" ]; then
    node --import tsx test/setup/throwaway-database.ts drop "$db_url" || echo "rolling: could not drop $db_url" >&2
  fi
  if [ "$status" = 0 ] && [ -z "${ROLLING_KEEP:-}" ]; then
    rm -rf "$ROLLING_DIR"
  else
    echo "rolling: logs kept in $ROLLING_DIR (a.log, b.log, haproxy.log)" >&2
  fi
}
trap teardown EXIT
trap 'kill -TERM "${driver:-}" 2>/dev/null; exit 130' INT TERM

db_url=$(node --import tsx test/setup/throwaway-database.ts create bindcard_rolling)
export ROLLING_DATABASE_URL=$db_url

# in the background, so a signal to this script runs the trap at once instead of after the driver
node --import tsx "$here/rolling.ts" &
driver=$!
set +e
wait "$driver"
status=$?
set -e
exit "$status"
