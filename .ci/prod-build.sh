#!/usr/bin/env bash
# The compiled build as production runs it: `npm run build`, then dist/ with the files it reads and the production
# dependencies only (no tsx, no TypeScript: nothing could transpile) in a folder of its own; `npm run start:prod` there
# on a throwaway database; the README's walk-through; the CLIs from dist/; SIGTERM, exit 0.
# CI runs it in a clean clone after npm ci, with DATABASE_URL set: the server the throwaway database is made on.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/listening.sh
: "${DATABASE_URL:?set DATABASE_URL: the PostgreSQL server to make a throwaway database on}"
prod=$(mktemp -d)
db=""
pid=""
cleanup() {
  [ -n "$pid" ] && kill -TERM -- "-$pid" 2>/dev/null
  [ -n "$db" ] && node --import tsx test/setup/throwaway-database.ts drop "$db"
  rm -rf "$prod"
}
trap cleanup EXIT

echo "== npm run build"
time npm run build --silent
# dist/ is src/ compiled and nothing else (no test/, scripts/, examples/)
(cd dist && find . -name '*.js') | while read -r f; do test -f "src/${f%.js}.ts" || { echo "prod-build: dist/$f is not from src/" >&2; exit 1; }; done
du -sh --exclude=.tsc dist

echo "== a production folder: dist/, what it reads, production dependencies"
cp -r dist openapi package.json package-lock.json "$prod/"
rm -r "$prod/dist/.tsc" # the build's bookkeeping (tsconfig.build.json), nothing that runs
mkdir "$prod/generated"
cp generated/reference.html "$prod/generated/"
cp -a node_modules "$prod/" # a copy, not hard links: npm rewrites node_modules/.package-lock.json in place
(cd "$prod" && npm prune --omit=dev --offline --no-audit --no-fund --loglevel=error)
for dev in tsx typescript esbuild; do
  if [ -e "$prod/node_modules/$dev" ]; then echo "prod-build: $dev is installed in the production folder" >&2; exit 1; fi
done
if [ -n "$(find "$prod" -path "$prod/node_modules" -prune -o -name '*.ts' -print)" ]; then
  echo "prod-build: TypeScript source in the production folder" >&2
  exit 1
fi

echo "== npm run start:prod on a throwaway database"
db=$(node --import tsx test/setup/throwaway-database.ts create bindcard_prod)
# its own session, so a failure stops npm and node together; NODE_OPTIONS empty, so nothing is preloaded
(cd "$prod" && DATABASE_URL="$db" PORT=0 ADMIN_PORT=0 NODE_OPTIONS='' exec setsid npm run start:prod --silent >out.log 2>&1) &
pid=$!
base=$(listening_url "$prod/out.log" "$pid" prod-build)
head -1 "$prod/out.log"
node=$(pgrep -s "$pid" -x node)
echo "the service: $(tr '\0' ' ' </proc/"$node"/cmdline)· NODE_OPTIONS='$(tr '\0' '\n' </proc/"$node"/environ | sed -n 's/^NODE_OPTIONS=//p')'"
admin=$(grep -o 'admin http://127.0.0.1:[0-9]*' "$prod/out.log" | sed 's/admin //')

scripts/walkthrough.sh "$base"
echo "== the files dist/ reads at run time are found"
for url in "$base/docs" "$base/openapi.yaml" "$admin/healthz" "$admin/readyz"; do
  echo "$url: $(curl -sS -o /dev/null -w '%{http_code}' "$url")"
  curl -sSf -o /dev/null "$url"
done

echo "== the CLIs from dist/"
(
  cd "$prod"
  export DATABASE_URL="$db" NODE_OPTIONS=''
  npm run migrate:prod --silent
  npm run channel:prod --silent -- list
  npm run callbacks:prod --silent -- list
  npm run rotate-keys:prod --silent
)

echo "== SIGTERM: exit 0"
kill -TERM "$node"
rc=0
wait "$pid" || rc=$?
pid=""
tail -2 "$prod/out.log"
[ "$rc" = 0 ] || { echo "prod-build: start:prod exited $rc after SIGTERM" >&2; exit 1; }
echo "prod-build: ok"
