#!/usr/bin/env bash
# The main job (`make demo`): what rtkvm can do on this machine today, end to end.
#   1. inspect this host and check its real-time readiness (the doctor tells the truth,
#      including "not ready" on a machine that is not an RT host: that is not a failure);
#   2. plan the CPU partition (housekeeping / RT vCPUs / data plane) and the kernel arguments;
#   3. check the host against that plan;
#   4. show what tuning the plan would apply (nothing is changed: no --apply);
#   5. build the PREEMPT_RT guest image, create an RT guest from the plan on libvirt, boot it,
#      verify its vCPU threads' policy, priority and affinity from /proc, run cyclictest in
#      it and report the latency histogram; then delete the guest;
#   6. run the control plane on this machine (rtkvm up: API + this host's agent, SQLite),
#      ask it for an RT server, and show the scheduler's answer; then rtkvm down.
# Reports are written to $RTKVM_DEMO_DIR (default: ./demo-output) and summarised at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
out=${RTKVM_DEMO_DIR:-$PWD/demo-output}
mkdir -p "$out"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1/6 Host inspection (rtkvm host inspect)"
rtkvm host inspect | tee "$out/inspect.txt"
rtkvm host inspect -f json > "$out/inspect.json"

step "2/6 CPU partition plan (rtkvm host plan)"
cores=$(rtkvm host inspect -f json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["topology"]["cores"]))')
rt_cores=$(( cores > 2 ? cores / 2 : 1 ))
if (( cores < 2 )); then
  echo "this host has $cores core(s): nothing can be isolated; skipping the plan"
else
  rtkvm host plan --rt-cores "$rt_cores" | tee "$out/plan.txt"
  rtkvm host plan --rt-cores "$rt_cores" -f json > "$out/plan.json"
fi

step "3/6 RT readiness doctor (rtkvm host doctor)"
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

guest_line="not run (this host has no CPU for an RT vCPU)"
if [[ -f "$out/plan.json" ]]; then
  step "4/6 Tuning the plan implies (rtkvm host tune, a dry run: nothing is changed)"
  rtkvm host tune --plan "$out/plan.json" | tee "$out/tune.txt"

  step "5/6 RT guest: image, create, boot, verify, cyclictest (rtkvm image / rtkvm guest)"
  rtkvm image build
  name=rtkvm-demo
  rtkvm guest delete "$name" >/dev/null 2>&1 || true
  trap 'rtkvm guest delete "$name" >/dev/null 2>&1 || true' EXIT
  rtkvm guest create "$name" --plan "$out/plan.json" | tee "$out/guest-create.txt"
  rtkvm guest measure "$name" --loops 3000 --interval 1000 --buckets 2000 \
    --save "$out/cyclictest.json" | tee "$out/cyclictest.txt"
  rtkvm guest delete "$name"
  trap - EXIT
  rtkvm report histogram "$out/cyclictest.json" -o "$out/cyclictest-histogram.svg"
  guest_line="$out/cyclictest.{txt,json}, picture $out/cyclictest-histogram.svg"
fi

step "6/6 Control plane on this machine (rtkvm up, rtkvm cloud, rtkvm down)"
state="$out/allinone"
cloud_line="not run"
if [[ -f "$out/plan.json" ]]; then
  rtkvm down --state-dir "$state" --purge >/dev/null 2>&1 || true
  trap 'rtkvm down --state-dir "$state" >/dev/null 2>&1 || true' EXIT
  rtkvm up --state-dir "$state" --plan "$out/plan.json" --accel tcg | tee "$out/up.txt"
  port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$state/allinone.json")
  export RTKVM_URL="http://127.0.0.1:$port" RTKVM_TOKEN="$(cat "$state/admin.token")"
  {
    rtkvm cloud host list
    rtkvm cloud flavor create rt-small --vcpus 2 --ram 256 --property hw:cpu_policy=mixed \
      --property hw:cpu_realtime=yes --property hw:cpu_realtime_mask=^0 --property hw:mem_page_size=4k
    # The scheduler places RT servers only on RT-ready hosts; this one is not (see 3/6),
    # so the expected answer here is a refusal that says why.
    rtkvm cloud server create demo-1 --flavor rt-small || true
    rtkvm cloud server list
    for id in $(rtkvm cloud server list -f json | python3 -c 'import json,sys; print(" ".join(s["id"] for s in json.load(sys.stdin)))'); do
      rtkvm cloud server delete "$id"
    done
  } 2>&1 | tee "$out/cloud.txt"
  rtkvm down --state-dir "$state" --purge
  trap - EXIT
  cloud_line="$out/{up,cloud}.txt"
fi

step "Summary"
echo "host verdict:  $verdict"
echo "host reports:  $out/{inspect,plan,doctor,tune}.{txt,json}"
echo "guest latency: $guest_line"
echo "control plane: $cloud_line"
