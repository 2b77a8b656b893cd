#!/usr/bin/env bash
# The main job (`make demo`): what rtkvm can do on this machine today, end to end.
#   1. inspect this host and check its real-time readiness (the doctor tells the truth,
#      including "not ready" on a machine that is not an RT host: that is not a failure);
#   2. plan the CPU partition (housekeeping / RT vCPUs / data plane) and the kernel arguments;
#   3. check the host against that plan.
# Reports are written to $RTKVM_DEMO_DIR (default: ./demo-output) and summarised at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
out=${RTKVM_DEMO_DIR:-$PWD/demo-output}
mkdir -p "$out"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1/3 Host inspection (rtkvm host inspect)"
rtkvm host inspect | tee "$out/inspect.txt"
rtkvm host inspect -f json > "$out/inspect.json"

step "2/3 CPU partition plan (rtkvm host plan)"
cores=$(rtkvm host inspect -f json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["topology"]["cores"]))')
rt_cores=$(( cores > 2 ? cores / 2 : 1 ))
if (( cores < 2 )); then
  echo "this host has $cores core(s): nothing can be isolated; skipping the plan"
else
  rtkvm host plan --rt-cores "$rt_cores" | tee "$out/plan.txt"
  rtkvm host plan --rt-cores "$rt_cores" -f json > "$out/plan.json"
fi

step "3/3 RT readiness doctor (rtkvm host doctor)"
doctor_args=()
[[ -f "$out/plan.json" ]] && doctor_args=(--plan "$out/plan.json")
set +e
rtkvm host doctor "${doctor_args[@]}" | tee "$out/doctor.txt"
status=${PIPESTATUS[0]}
rtkvm host doctor "${doctor_args[@]}" -f json > "$out/doctor.json"
set -e
case $status in
  0) verdict="ready" ;;
  1) verdict="not ready (see the fixes above)" ;;
  *) echo "rtkvm host doctor failed with status $status" >&2; exit "$status" ;;
esac

step "Summary"
echo "host verdict: $verdict"
echo "reports: $out/{inspect,plan,doctor}.{txt,json}"
