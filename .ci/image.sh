#!/usr/bin/env bash
# The container image as operators run it: built by `make image` (warm base after the first run on a machine), then run
# with a read-only root filesystem against a fresh database on the machine's PostgreSQL (host network):
#   1. production settings without keys: refuses to start, naming the missing key (no key is baked into the image);
#   2. production settings with keys: ready on /readyz, /metrics, the partner port answers, runs as uid 1000, SIGTERM
#      (an unknown channel's 404), after the 5 s drain exits 0;
#   3. sandbox settings: the README's walk-through, SIGTERM, exit 0.
# Prints the image's size, the build time and the start-up to ready. Needs DATABASE_URL: the server to make the
# database on.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATABASE_URL:?set DATABASE_URL: the PostgreSQL server to make a throwaway database on}"
source scripts/podman.sh
bash .ci/container-tools.sh
name=bindcard-ci-$$
port=18080
admin=19464
db=""
cleanup() {
  podman rm -f "$name" >/dev/null 2>&1 || true
  [ -n "$db" ] && node --import tsx test/setup/throwaway-database.ts drop "$db"
}
trap cleanup EXIT
fail() { { podman logs "$name" 2>&1 | tail -20; } || true; echo "image: $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v from="$1" -v to="$(now)" 'BEGIN { printf "%.1f", to - from }'; }

echo "== make image"
t0=$(now)
image=$(scripts/image.sh | tail -1)
built=$(since "$t0")
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "image $image: $((size / 1000000)) MB, built in $built s"

echo "== nothing secret or local in the image"
found=$(podman run --rm --read-only --network=none --user 0 --entrypoint sh "$image" -c \
  'find / -xdev \( -name ".env*" -o -name "*.pem" -o -name "*.key" -o -name ".npmrc" -o -name ".git" -o -path /app/data -o -path /app/src \) -print 2>/dev/null | grep -v "^/usr/\(share\|lib\)/\|^/etc/ssl/" || true')
[ -z "$found" ] || { echo "$found"; echo "image: files that must not be in it" >&2; exit 1; }
out=$(podman run --rm --read-only --network=host "$image" 2>&1 || true)
grep -q 'required in production' <<<"$out" || { echo "$out"; echo "image: started in production without keys" >&2; exit 1; }
echo "production without keys: $out"
# informative: the local base is made again when a week old; a newer Debian update waits for that (or BASE_MAX_AGE_DAYS=0)
pending=$(timeout 180 podman run --rm --network=host --user 0 --entrypoint sh "$image" -c \
  'apt-get update -qq --error-on=any >/dev/null 2>&1 || exit 1; out=$(apt-get -s full-upgrade) || exit 1
   printf "%s\n" "$out" | grep -c "^Inst" || true') || pending="unknown (apt failed)"
echo "Debian updates not in the image: $pending"

db=$(node --import tsx test/setup/throwaway-database.ts create bindcard_image)
key() { head -c 32 /dev/urandom | base64; }
run() {
  podman run -d --name "$name" --read-only --network=host -e PORT=$port -e ADMIN_PORT=$admin -e DATABASE_URL="$db" "$@" "$image" >/dev/null
}
ready() {
  for _ in $(seq 1 200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin/readyz")" = 200 ] && return 0
    [ "$(podman inspect --format '{{.State.Running}}' "$name")" = true ] || fail "exited before it was ready"
    sleep 0.1
  done
  fail "not ready within 20 s"
}
stop() { # SIGTERM; exit 0 within the drain time and 5 s
  local limit=$1 t rc
  t=$(now)
  podman kill --signal TERM "$name" >/dev/null
  rc=$(timeout "$limit" podman wait "$name") || fail "still running ${limit} s after SIGTERM"
  [ "$rc" = 0 ] || fail "exit code $rc after SIGTERM"
  echo "SIGTERM: exit 0 in $(since "$t") s"
  podman rm "$name" >/dev/null
}

echo "== production settings, read-only root filesystem"
t0=$(now)
run -e DATA_KEYS="k1:$(key)" -e HASH_KEY="$(key)" \
  -e CARD_AUTH_URL=https://card-auth.invalid -e CARD_AUTH_SECRET=ci-card-auth-secret \
  -e SMS_URL=https://sms.invalid -e SMS_SECRET=ci-sms-gateway-secret
ready
echo "start-up to ready: $(since "$t0") s"
user=$(podman top "$name" user | tail -1 | tr -d ' ')
[ "$user" = node ] || fail "runs as '$user', not node"
echo "runs as: $(podman exec "$name" id)"
curl -sf "http://127.0.0.1:$admin/healthz" >/dev/null || fail "/healthz"
# read whole before matching: `curl | grep -q` under pipefail fails when grep exits first and curl gets SIGPIPE
metrics=$(curl -sf "http://127.0.0.1:$admin/metrics") || fail "/metrics"
samples=$(grep -c '^bindcard_' <<<"$metrics") || fail "/metrics has no bindcard_ series"
echo "/metrics: $samples bindcard_ samples"
# no channel is registered (production has no DEMO): the documented 404 in the documented JSON
answer=$(curl -s -XPOST "http://127.0.0.1:$port/demochannel/bindCard?r_c=DEMO" -H 'content-type: application/json' -d '{}')
grep -q '"code":404' <<<"$answer" || fail "a request for an unknown channel got $answer"
echo "partner port: $answer"
stop 10 # the production drain is 5 s

echo "== sandbox settings, read-only root filesystem: the walk-through"
run -e NODE_ENV=development -e SHUTDOWN_DRAIN_MS=1000
ready
scripts/walkthrough.sh "http://127.0.0.1:$port"
rss=$(curl -sf "http://127.0.0.1:$admin/metrics" | sed -n 's/^process_resident_memory_bytes \([0-9.e+]*\).*/\1/p')
echo "resident memory after the walk-through: $(awk -v b="$rss" 'BEGIN { printf "%.0f", b / 1e6 }') MB"
stop 6
echo "image: ok · $((size / 1000000)) MB · built in $built s"
