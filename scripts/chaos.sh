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

# name, budget in seconds (about 3x the time measured on a quiet 2-core machine: model 33, crash 32, gateways 13,
# rolling 43, ha 85), command. At the budget the stage's process group gets SIGTERM, so its traps run (the HA stage
# tears its cluster down: up to ~25 s); whatever still runs GRACE seconds later is SIGKILLed. Worst case, all stages:
# 750 s of budgets + 5 x 45 s of grace.
STAGES=(
  "model 150 mocha test/chaos/model/model.test.ts"
  "crash 120 mocha test/chaos/crash-points.test.ts"
  "gateways 60 mocha test/integration/gateway-faults.test.ts"
  "rolling 150 bash test/chaos/rolling/run.sh"
  "ha 270 bash test/chaos/ha/run.sh"
)
GRACE=45
wanted=" ${*:-model crash gateways rolling ha} "
summary=()
failed=0
# timeout runs the stage in a process group of its own, which a signal to ours does not reach: on SIGTERM or SIGINT
# we pass it on to timeout (which sends it to the stage's group and SIGKILLs GRACE s later), wait, and stop there
stage_pid='' interrupted=''
trap 'interrupted=1; [[ -n $stage_pid ]] && kill -TERM "$stage_pid" 2>/dev/null' TERM INT
for stage in "${STAGES[@]}"; do
  read -r name budget command <<<"$stage"
  [[ $wanted == *" $name "* ]] || continue
  echo "== chaos: $name (budget $budget s)"
  start=$SECONDS
  timeout --kill-after="$GRACE" "$budget" bash -c "$(declare -f mocha); $command" &
  stage_pid=$!
  # a trapped signal ends `wait` early: wait again until the stage has really ended, then take its status
  while kill -0 "$stage_pid" 2>/dev/null; do wait "$stage_pid"; done
  wait "$stage_pid"
  rc=$?
  stage_pid=''
  took=$((SECONDS - start))
  if [[ -n $interrupted ]]; then
    result="interrupted ($rc)"
  else
    case $rc in
      0) result=ok ;;
      124 | 137) result="over its budget" ;;
      *) result="failed ($rc)" ;;
    esac
  fi
  [[ $rc -eq 0 ]] || failed=1
  summary+=("$name: $result in $took s")
  [[ -z $interrupted ]] || { failed=130; break; }
done
echo "== chaos summary"
printf '  %s\n' "${summary[@]}"
exit $failed
