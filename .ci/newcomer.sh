#!/usr/bin/env bash
# A newcomer on a laptop: clone, npm ci, npm start (embedded database, no DATABASE_URL), the README's walk-through,
# stop, start again: the card is still listed; a second start on the same folder is refused; stop.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill -TERM -- "-$pid" 2>/dev/null; sleep 1; rm -rf "$dir"; }
trap cleanup EXIT
git clone -q "$src" "$dir/bindcard"
cd "$dir/bindcard"
source .ci/listening.sh
npm ci --no-audit --no-fund --loglevel=error
unset DATABASE_URL

start() {
  # its own process group, so a stop reaches node behind npm as Ctrl-C would
  PORT=0 ADMIN_PORT=0 setsid npm start --silent >"$dir/out.log" 2>&1 &
  pid=$!
  base=$(listening_url "$dir/out.log" "$pid" newcomer)
  head -1 "$dir/out.log"
}
stop() {
  kill -TERM -- "-$pid"
  wait "$pid" || true
  pid=""
  for _ in $(seq 1 60); do [ -e data/bindcard.pid ] || return 0; sleep 0.5; done
  echo "newcomer: the service did not release its data folder" >&2; exit 1
}

start
scripts/walkthrough.sh "$base"
echo "== a second start on the same data folder"
if PORT=0 ADMIN_PORT=0 npm start --silent >"$dir/second.log" 2>&1; then echo "newcomer: a second start was not refused" >&2; exit 1; fi
cat "$dir/second.log"
grep -q 'already running' "$dir/second.log"
stop
echo "== start again: the card is still there"
start
# the first call now answers BOUND straight away, and the card list still shows the card
out=$(scripts/walkthrough.sh "$base")
echo "$out"
grep -q '"status":"BOUND"' <<<"$(sed -n 2p <<<"$out")" || { echo "newcomer: the binding did not survive the restart" >&2; exit 1; }
stop
echo
echo "newcomer: ok"
