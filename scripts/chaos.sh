#!/usr/bin/env bash
# `make chaos`: the fault and high-availability stages of docs/operations.md "Faults", each under a time budget.
# Needs PostgreSQL (DATABASE_URL, default the local server); the last two install HAProxy, Patroni and etcd from
# Debian when missing and run as root (the HA stage runs PostgreSQL as the `postgres` user).
#   scripts/chaos.sh [stage…]   stages: model crash gateways rolling ha (default: all, in that order)
#   MODEL_RUNS=1000 MODEL_STEPS=50 scripts/chaos.sh model   more sequences on demand; MODEL_SEED=… replays one
set -uo pipefail
cd "$(dirname "$0")/.."
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
mocha() { npx mocha --config test/chaos/mocharc.json "$@"; }

# name, budget in seconds, command
STAGES=(
  "model 420 npx mocha --config test/chaos/model/mocharc.json"
  "crash 300 mocha test/chaos/crash-points.test.ts"
  "gateways 180 mocha test/integration/gateway-faults.test.ts"
  "rolling 240 bash test/chaos/rolling/run.sh"
  "ha 420 bash test/chaos/ha/run.sh"
)
wanted=" ${*:-model crash gateways rolling ha} "
summary=()
failed=0
for stage in "${STAGES[@]}"; do
  read -r name budget command <<<"$stage"
  [[ $wanted == *" $name "* ]] || continue
  echo "== chaos: $name (budget $budget s)"
  start=$SECONDS
  # shellcheck disable=SC2086 # the command is words
  timeout --kill-after=10 "$budget" bash -c "$(declare -f mocha); $command"
  rc=$?
  took=$((SECONDS - start))
  case $rc in
    0) result=ok ;;
    124 | 137) result="over its budget"; failed=1 ;;
    *) result="failed ($rc)"; failed=1 ;;
  esac
  summary+=("$name: $result in $took s")
done
echo "== chaos summary"
printf '  %s\n' "${summary[@]}"
exit $failed
