#!/usr/bin/env bash
# The main job (`make demo`): an RT cloud on this machine, asked for two RT servers on
# network `blue`, with their latency measured and reported.
#   1. inspect this host;
#   2. plan the CPU partition (housekeeping / RT vCPUs / data plane) and the kernel arguments;
#   3. check the host's real-time readiness against that plan (the doctor tells the truth:
#      "not ready" on a machine that is not an RT host is an answer, not a failure);
#   4. show the tuning the plan implies (a dry run: nothing is changed);
#   5. the RT data plane: the guest image, network blue's uplink (a namespace peer behind a
#      veth, or the NIC in RTKVM_DEMO_BLUE_UPLINK) and OVS-DPDK started by rtkvm;
#   6. the control plane (rtkvm up: API + this host's agent, SQLite), an RT flavor, network
#      blue; the cloud requires qualified hosts for RT servers, so an RT server is refused
#      until the admin qualifies the host (rtkvm cloud host qualify: probe servers on its free
#      RT pCPUs and on blue, measured, the API's verdict recorded as the host's proof); then
#      two RT servers on blue: the scheduler picks the host and the pCPUs. On a host
#      the doctor calls not ready, the admin's RT waiver (and, with fewer than two RT pCPUs,
#      pCPU sharing) is set first and said loudly: the servers' latency is then not assured;
#   7. proof: cyclictest in each server and the round trip between them on blue, measured by
#      the host's agent through the API, in one report (tables and histogram pictures); then
#      a round trip across hosts: a second host on this machine (its own agent process, on
#      the same libvirt and switch) serves its half from an ordinary server on blue while
#      demo-1's host runs the client, and the second host goes again;
#   8. an ordinary (non-RT, hw:cpu_policy=shared) server on the same host, on its housekeeping
#      CPUs only; power: demo-1 rebooted (a new QEMU, its RT settings checked again), demo-2
#      stopped and started, then its QEMU killed outside rtkvm, which the API shows as stopped;
#   9. the host reboots, played in the order systemd stops and starts rtkvm's units: the agent
#      stops, the guests go down with the host, the switch stops; the switch comes back with
#      its networks, the agent registers again and reconciles: the servers that were active
#      run again (new QEMUs, RT checked again), the stopped one stays stopped;
#  10. the tenant's own system: the probe servers make room, the Debian RT image (rtkvm image
#      build --kind debian-rt) is uploaded to the image store and two RT servers boot from
#      their own copy-on-write disks to a login prompt on a PREEMPT_RT kernel (read through
#      the console log), beside the ordinary server; cloud-init, from each server's NoCloud
#      seed, installs the tenant's key, sets its address on blue and runs its user-data,
#      which writes a file and says so; the tenant logs in as root on a serial console
#      through the API (rtkvm cloud server console, a websocket) and runs uname -v; the disk
#      is served by an I/O thread on housekeeping CPUs; cyclictest in one server and the
#      round trip between the two on the addresses their user gave run through their guest
#      agents, the guests running on (the same QEMUs, their uptimes go on); the tenant powers
#      one off from its console and the API shows it stopped (libvirt's event);
#      then everything is torn down.
# Output goes to $RTKVM_DEMO_DIR (default: ./demo-output); the last lines say where the report is.
# RTKVM_DEMO_VCPUS sizes the RT flavor (default 2: vCPU 0 housekeeping, vCPU 1 real-time).
# Any failed step ends the demo with a non-zero exit and a last line naming the step and its log;
# the summary is printed only when every step succeeded and names only files that exist.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
out=$(realpath -m "${RTKVM_DEMO_DIR:-$PWD/demo-output}")
mkdir -p "$out"
state="$out/allinone"
switch="$out/switch"
peer_ns=rtkvm-demo-blue
peer_if=rtkdemoblue
uplink=${RTKVM_DEMO_BLUE_UPLINK:-}
own_peer=$([[ -z "$uplink" ]] && echo 1 || true)

current_step="set-up"
current_log=""
step() { current_step="$1"; current_log="${2:-}"; printf '\n\033[1m== %s\033[0m\n' "$1"; }
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

cleanup() (
  # Whatever the demo made, gone again: servers (through the API, else their domains),
  # the control plane, the switch, blue's peer. Runs on success and on failure. A subshell,
  # so that its `set +e` cannot switch off the demo's own error checking.
  set +e
  # the status is read whole before it is searched: `rtkvm status | grep -q` under pipefail
  # fails when grep leaves early and rtkvm gets SIGPIPE, and the servers stayed behind
  shown=$(rtkvm status --state-dir "$state" 2>/dev/null)
  if [[ -f "$state/admin.token" ]] && grep -q "^api: running" <<<"$shown"; then
    export RTKVM_TOKEN=$(cat "$state/admin.token")
    export RTKVM_URL="http://127.0.0.1:$(json "$state/allinone.json" 'd["port"]')"
    # every server the API has, whatever its name or state (a refused create is one too)
    ids=$(rtkvm cloud server list --all-projects -f json 2>/dev/null \
          | python3 -c "import json,sys; print(' '.join(s['id'] for s in json.load(sys.stdin)))")
    if [[ -n "$ids" ]] && ! rtkvm cloud server delete $ids --wait --timeout 120 >/dev/null 2>"$out/delete.err"; then
      echo "demo clean-up: deleting the servers failed: $(cat "$out/delete.err")" >&2
    fi
    rm -f "$out/delete.err"
  fi
  if ! rtkvm down --state-dir "$state" --purge >/dev/null 2>"$out/down.err"; then
    echo "demo clean-up: rtkvm down --purge failed: $(cat "$out/down.err")" >&2
    rtkvm down --state-dir "$state" >/dev/null 2>&1
  fi
  rm -f "$out/down.err"
  for id in $(cat "$out/server-ids" 2>/dev/null); do
    rtkvm guest delete --force "rtkvm-$id" >/dev/null 2>&1
  done
  rm -f "$out/server-ids"
  if [[ -f "$state/agent-2.pid" ]]; then  # the second host's agent (step 7)
    kill "$(cat "$state/agent-2.pid")" 2>/dev/null
    rm -f "$state/agent-2.pid"
  fi
  [[ -d "$switch" ]] && rtkvm net down --rundir "$switch" >/dev/null 2>&1
  [[ -n "$own_peer" ]] && rtkvm net peer delete "$peer_ns" --uplink "$peer_if" >/dev/null 2>&1
  exit 0
)

on_exit() {
  local status=$?
  trap - EXIT
  cleanup
  if (( status != 0 )); then
    if [[ -s "$current_log" ]]; then  # the why: the end of the failed step's output
      printf '\nlast lines of %s:\n' "$current_log" >&2
      tail -n 5 "$current_log" | sed 's/^/  /' >&2
    fi
    printf '\nmake demo FAILED in step "%s" (exit status %d)%s\n' \
      "$current_step" "$status" "${current_log:+; its output: $current_log}" >&2
  fi
  exit "$status"
}

# A server in error, a failed measurement or a report that was not written are failures too.
require_file() {
  [[ -s "$1" ]] || { echo "demo: $2 ($1 was not written)" >&2; exit 1; }
}

trap on_exit EXIT
step "1/10 Host inspection (rtkvm host inspect)" "$out/inspect.txt"
rtkvm host inspect | tee "$out/inspect.txt"
rtkvm host inspect -f json > "$out/inspect.json"
cores=$(json "$out/inspect.json" 'len(d["topology"]["cores"])')
if (( cores < 2 )); then
  echo "this host has $cores core(s): no CPU can be isolated for an RT vCPU; stopping here" >&2
  exit 1
fi

step "2/10 CPU partition plan (rtkvm host plan)" "$out/plan.txt"
rt_cores=$(( cores > 2 ? cores / 2 : 1 ))
plan_args=(--rt-cores "$rt_cores")
(( cores >= 4 )) && plan_args+=(--dataplane-cores 1)
rtkvm host plan "${plan_args[@]}" | tee "$out/plan.txt"
rtkvm host plan "${plan_args[@]}" -f json > "$out/plan.json"
rt_cpus=$(json "$out/plan.json" 'd["rt_vcpu"]')
dp_cpus=$(json "$out/plan.json" 'd["dataplane"]')
rt_count=$(python3 -c 'import sys; from rtkvm.cpuset import CpuSet; print(len(CpuSet.parse(sys.argv[1])))' "$rt_cpus")

step "3/10 RT readiness doctor (rtkvm host doctor --plan)" "$out/doctor.txt"
set +e
rtkvm host doctor --plan "$out/plan.json" | tee "$out/doctor.txt"
status=${PIPESTATUS[0]}
rtkvm host doctor --plan "$out/plan.json" -f json > "$out/doctor.json"
set -e
case $status in
  0) verdict="ready" ;;
  1) verdict="not ready" ;;
  *) echo "rtkvm host doctor failed with status $status" >&2; exit "$status" ;;
esac

step "4/10 Tuning the plan implies (rtkvm host tune, a dry run: nothing is changed)" "$out/tune.txt"
rtkvm host tune --plan "$out/plan.json" | tee "$out/tune.txt"

cleanup  # leftovers of an interrupted earlier run

step "5/10 RT data plane: libvirt, guest image, network blue's uplink, OVS-DPDK (rtkvm runtime, image, net)" "$out/net-up.txt"
rtkvm runtime up
rtkvm image build
rtkvm image build --kind debian-rt | tee "$out/image-debian-rt.txt"
if [[ -n "$own_peer" ]]; then
  rtkvm net peer add "$peer_ns" --uplink "$peer_if" --address 169.254.77.254/24
  uplink=$peer_if
fi
printf '[[network]]\nname = "blue"\nphysnet = "physblue"\n' > "$out/networks.toml"
printf '[[uplink]]\nphysnet = "physblue"\ninterface = "%s"\n' "$uplink" > "$out/wiring.toml"
net_args=(--plan "$out/plan.json" --networks "$out/networks.toml" --wiring "$out/wiring.toml")
if [[ -z "$dp_cpus" ]]; then
  # No core to spare for the data plane: the PMD shares the RT vCPUs' CPUs (net up says so).
  net_args+=(--dataplane-cpus "$rt_cpus" --share-with-rt-vcpus)
fi
rtkvm net up --rundir "$switch" "${net_args[@]}" | tee "$out/net-up.txt"

step "6/10 Control plane: rtkvm up, flavor, network blue, the host qualified, two RT servers (rtkvm cloud)" "$out/cloud.txt"
# RT servers only on hosts qualified in the last day, for the plan and wiring they have now
export RTKVM_REQUIRE_QUALIFIED_WITHIN=86400
up_args=(--state-dir "$state" --plan "$out/plan.json" --wiring "$out/wiring.toml"
         --switch-rundir "$switch" --accel "${RTKVM_DEMO_ACCEL:-auto}" --stop-timeout 5)
if [[ $verdict != ready ]]; then
  up_args+=(--rt-waiver "make demo on a host the doctor calls not RT-ready ($out/doctor.txt)")
  (( rt_count < 2 )) && up_args+=(--pcpu-share 2)
elif (( rt_count < 2 )); then
  echo "this RT-ready host has $rt_count RT pCPU: the two servers need two" >&2
  exit 1
fi
rtkvm up "${up_args[@]}" | tee "$out/up.txt"
export RTKVM_URL="http://127.0.0.1:$(json "$state/allinone.json" 'd["port"]')"
export RTKVM_TOKEN="$(cat "$state/admin.token")"
{
  rtkvm cloud host list
  rtkvm cloud flavor create rt-small --vcpus "${RTKVM_DEMO_VCPUS:-2}" --ram 256 --property hw:cpu_policy=mixed \
    --property hw:cpu_realtime=yes --property hw:cpu_realtime_mask=^0 \
    --property hw:mem_page_size=4k
  rtkvm cloud network create blue --provider-physical-network physblue --share
  rtkvm cloud host list -f json > "$out/hosts.json"
  host_name=$(json "$out/hosts.json" 'd[0]["name"]')
  if rtkvm cloud server create demo-early --flavor rt-small > "$out/refused-unqualified.txt" 2>&1; then
    echo "demo: an RT server was placed on a host that was never qualified" >&2; exit 1
  fi
  echo "before the host is qualified, an RT server is refused: $(tail -n 1 "$out/refused-unqualified.txt")"
  rtkvm cloud server delete demo-early  # the refused create's record
  asked=$(date +%s.%N)
  rtkvm cloud host qualify "$host_name" --flavor rt-small --loops 2000 --rtt-seconds 5 \
    --save "$out/qualify.json"
  echo "host $host_name qualified in $(python3 -c "import sys,time; print(f'{time.time()-float(sys.argv[1]):.1f}')" "$asked") s: $(json "$out/qualify.json" 'd["state"], "worst", d["proof"]["worst_us"], "us on pCPUs", d["free_pcpus"], "emulated" if d["proof"]["emulated"] else "KVM"')"
  rtkvm cloud host show "$host_name" -f json > "$out/host-qualified.json"
  [[ $(json "$out/host-qualified.json" 'd["qualified"]') == True ]] || { echo "demo: host $host_name does not show as qualified" >&2; exit 1; }
  # Unmanaged networks have no DHCP: each server's address on blue is the user's own.
  for name in demo-1 demo-2; do
    rtkvm cloud server create "$name" --flavor rt-small --network "blue,ip=192.0.2.1${name#demo-}/24" \
      --wait -f json > "$out/$name.json"
    json "$out/$name.json" 'd["id"]' >> "$out/server-ids"
  done
  rtkvm cloud server list
} 2>&1 | tee "$out/cloud.txt"

for name in demo-1 demo-2; do
  state_of=$(json "$out/$name.json" 'd["state"]')
  [[ $state_of == active ]] || { echo "demo: server $name is $state_of, not active" >&2; exit 1; }
  # the guest set the user's address on eth0 at boot: its console, read through the API
  # as a tenant would (rtkvm cloud server console-log), says so
  console="$out/console-$name.txt"
  address=$(json "$out/$name.json" 'd["networks"][0]["address"]')
  for _ in $(seq 1 30); do
    rtkvm cloud server console-log "$name" > "$console"
    grep -aq "RTKVM-NET ip=$address" "$console" && break
    sleep 1
  done
  grep -aq "RTKVM-NET ip=$address" "$console" \
    || { echo "demo: $name did not set its address $address on eth0 (its console log: $console)" >&2; exit 1; }
  echo "$name: eth0 has $address, the address its user gave (console-log: $(grep -a "RTKVM-NET" "$console" | tail -n 1))" | tee -a "$out/cloud.txt"
done

step "7/10 Proof: cyclictest in each server, round trip demo-1 -> demo-2 on blue between their own addresses (rtkvm cloud measure)" "$out/report-build.txt"
for name in demo-1 demo-2; do
  rtkvm cloud measure cyclictest "$name" --loops 3000 --interval 1000 --buckets 2000 \
    --save "$out/measure-cyclictest-$name.json"
done
rtkvm cloud measure rtt demo-1 demo-2 --network blue --seconds 10 --mps 1000 \
  --save "$out/measure-rtt-blue.json"
rtkvm report build "$out"/measure-*.json -o "$out/report" --doctor "$out/doctor.json" \
  --qualification "$out/qualify.json" \
  --title "rtkvm demo: two RT servers on blue" | tee "$out/report-build.txt"
require_file "$out/report/report.txt" "the report was not written"

# A round trip across hosts: a second host on this machine, with its own agent process (its
# own token, guest directory and log) on the same libvirt and switch (a switch of its own
# needs a PMD CPU of its own: this machine has one CPU besides housekeeping). Its server is
# an ordinary one (no RT pCPU to spare for it). The peer's agent serves first, demo-1's
# agent runs the client once it does, both halves are kept; then the host goes again.
current_log="$out/rtt-across-hosts.txt"
{
  rtkvm cloud host enroll demo-host-2 -f json > "$out/host-2.json"
  (umask 077; json "$out/host-2.json" 'd["agent_token"]' > "$state/host-2.token")
  mkdir -p "$state/host-2-guests"
  # the first agent's command line, with the second host's token and a guest directory
  python3 - "$(cat "$state/agent.pid")" "$state" > "$state/agent-2.argv" <<'PY'
import sys
pid, state = sys.argv[1:]
argv = open(f"/proc/{pid}/cmdline", "rb").read().decode().split("\0")[:-1]
if "--token-file" not in argv:
    sys.exit(f"demo: the first agent's command line has no --token-file: {argv}")
own = {"--token-file": f"{state}/host-2.token", "--guest-dir": f"{state}/host-2-guests"}
out = [own.get(argv[i - 1], a) if i else a for i, a in enumerate(argv)]
if "--guest-dir" not in argv:
    out += ["--guest-dir", own["--guest-dir"]]
sys.stdout.write("\0".join(out) + "\0")
PY
  mapfile -d '' agent2_argv < "$state/agent-2.argv"
  "${agent2_argv[@]}" > "$out/agent-2.log" 2>&1 &
  echo $! > "$state/agent-2.pid"
  echo "second host demo-host-2: its own agent (pid $(cat "$state/agent-2.pid"), log $out/agent-2.log)"
  wired=False
  for _ in $(seq 1 90); do
    kill -0 "$(cat "$state/agent-2.pid")" 2>/dev/null \
      || { echo "demo: the second host's agent exited: $(tail -n 3 "$out/agent-2.log")" >&2; exit 1; }
    rtkvm cloud host show demo-host-2 -f json > "$out/host-2-shown.json"
    wired=$(json "$out/host-2-shown.json" 'd["registered_at"] is not None and "physblue" in d["physnets"]')
    [[ $wired == True ]] && break
    sleep 1
  done
  [[ $wired == True ]] || { echo "demo: demo-host-2 did not register wired to physblue in 90 s (its agent's log: $out/agent-2.log)" >&2; exit 1; }
  rtkvm cloud flavor create peer-plain --vcpus 1 --ram 128 --property hw:cpu_policy=shared
  rtkvm cloud server create demo-peer --flavor peer-plain --host demo-host-2 \
    --network "blue,ip=192.0.2.19/24" --wait -f json > "$out/demo-peer.json"
  json "$out/demo-peer.json" 'd["id"]' >> "$out/server-ids"
  [[ $(json "$out/demo-peer.json" 'd["state"], d["host"]') == "active demo-host-2" ]] \
    || { echo "demo: demo-peer is $(json "$out/demo-peer.json" 'd["state"], d["host"]'), not active on demo-host-2" >&2; exit 1; }
  asked=$(date +%s.%N)
  rtkvm cloud measure rtt demo-1 demo-peer --network blue --seconds 5 --mps 1000 \
    --save "$out/rtt-across-hosts.json"
  echo "round trip across hosts in $(python3 -c "import sys,time; print(f'{time.time()-float(sys.argv[1]):.1f}')" "$asked") s: $(json "$out/rtt-across-hosts.json" 'd["host"], "->", d["peer_host"], d["result"]["samples"], "samples, p99", d["result"]["percentiles"]["99.0"], "p99.99", d["result"]["percentiles"]["99.99"], "max", d["result"]["max_us"], "us; serving half", d["peer_state"], d["peer_result"]') (TCG: not RT figures)"
  [[ $(json "$out/rtt-across-hosts.json" 'd["state"], d["peer_state"]') == "done done" ]] \
    || { echo "demo: the round trip across hosts is $(json "$out/rtt-across-hosts.json" 'd["state"], d["peer_state"]')" >&2; exit 1; }
  rtkvm cloud server delete demo-peer --wait
  kill "$(cat "$state/agent-2.pid")"
  for _ in $(seq 1 30); do kill -0 "$(cat "$state/agent-2.pid")" 2>/dev/null || break; sleep 1; done
  ! kill -0 "$(cat "$state/agent-2.pid")" 2>/dev/null || { echo "demo: the second agent did not stop on SIGTERM" >&2; exit 1; }
  rm -f "$state/agent-2.pid" "$state/host-2.token"
  rtkvm cloud host delete demo-host-2
  echo "second host demo-host-2: its server deleted, its agent stopped, the host removed"
} 2>&1 | tee "$out/rtt-across-hosts.txt"

step "8/10 An ordinary server beside the RT ones; power: reboot, stop, start, a QEMU killed outside rtkvm (rtkvm cloud server)" "$out/power.txt"
# The probe image has no ACPI daemon: a stop waits --stop-timeout (5 s here), then powers off.
qemu_pid() { pgrep -f "guest=rtkvm-$1," | head -n 1 || true; }
server_json() { rtkvm cloud server show "$1" -f json > "$out/$2"; }
{
  hk=$(json "$out/plan.json" 'd["housekeeping"]')
  rtkvm cloud flavor create plain --vcpus 1 --ram 128 --property hw:cpu_policy=shared
  rtkvm cloud server create demo-plain --flavor plain --wait -f json > "$out/demo-plain.json"
  json "$out/demo-plain.json" 'd["id"]' >> "$out/server-ids"
  idp=$(json "$out/demo-plain.json" 'd["id"]')
  floats=$(json "$out/demo-plain.json" 'd["floating_cpus"]')
  echo "demo-plain: no RT pCPU ($(json "$out/demo-plain.json" 'd["rt_cores"]')), its vCPU floats on CPUs $floats; housekeeping CPUs: $hk"
  [[ "$floats" == "$hk" ]] || { echo "demo: demo-plain floats on $floats, not on the housekeeping CPUs $hk" >&2; exit 1; }
  virsh -c qemu:///system vcpupin "rtkvm-$idp" | tee "$out/demo-plain-vcpupin.txt"
  virsh -c qemu:///system emulatorpin "rtkvm-$idp" | tee -a "$out/demo-plain-vcpupin.txt"
  for _ in $(seq 1 20); do  # the agent checks a new guest right after it starts
    server_json demo-plain power-demo-plain.json
    [[ $(json "$out/power-demo-plain.json" 'd["rt_state"]') != unverified ]] && break
    sleep 1
  done
  echo "demo-plain's check: $(json "$out/power-demo-plain.json" 'd["rt_state"], d["rt_reasons"]')"
  id1=$(json "$out/demo-1.json" 'd["id"]')
  id2=$(json "$out/demo-2.json" 'd["id"]')
  before=$(qemu_pid "$id1")
  asked=$(date +%s.%N)
  rtkvm cloud server reboot demo-1 --wait
  after=$(qemu_pid "$id1")
  echo "demo-1 rebooted in $(python3 -c "import sys,time; print(f'{time.time()-float(sys.argv[1]):.1f}')" "$asked") s: QEMU pid ${before:-none} -> ${after:-none}"
  [[ -n "$before" && -n "$after" && "$before" != "$after" ]] || { echo "demo: demo-1 has no new QEMU after its reboot" >&2; exit 1; }
  server_json demo-1 power-demo-1.json
  checked=$(json "$out/power-demo-1.json" 'd["rt_checked_at"] or 0')
  python3 -c "import sys; sys.exit(float(sys.argv[1]) < float(sys.argv[2]))" "$checked" "$asked" \
    || { echo "demo: demo-1's RT settings were not checked again after its reboot" >&2; exit 1; }
  echo "demo-1: $(json "$out/power-demo-1.json" 'd["state"], d["rt_state"]') (checked again after the start)"
  rtkvm cloud server stop demo-2 --wait
  server_json demo-2 power-demo-2-stopped.json
  [[ $(json "$out/power-demo-2-stopped.json" 'd["state"]') == stopped ]] || { echo "demo: demo-2 did not stop" >&2; exit 1; }
  [[ -z "$(qemu_pid "$id2")" ]] || { echo "demo: demo-2 is stopped but its QEMU runs" >&2; exit 1; }
  rtkvm cloud server start demo-2 --wait
  virsh -c qemu:///system destroy "rtkvm-$id2"  # outside rtkvm: as if QEMU had died
  for _ in $(seq 1 30); do
    server_json demo-2 power-demo-2-killed.json
    [[ $(json "$out/power-demo-2-killed.json" 'd["state"]') == stopped ]] && break
    sleep 1
  done
  [[ $(json "$out/power-demo-2-killed.json" 'd["state"]') == stopped ]] || { echo "demo: demo-2's QEMU was killed but the API does not show it stopped" >&2; exit 1; }
  echo "demo-2 after its QEMU was killed: stopped: $(json "$out/power-demo-2-killed.json" 'd["fault"]')"
  rtkvm cloud server list
} 2>&1 | tee "$out/power.txt"

step "9/10 The host reboots: agent, guests and switch stop as systemd stops them, then the switch and the agent come back and reconcile (rtkvm net up, rtkvm up)" "$out/reboot.txt"
# Played without systemd, in its order (rtkvm host units): rtkvm-agent.service stops first
# (SIGTERM), the guests' QEMUs go with the host, rtkvm-switch.service's ExecStop is
# `rtkvm net down`; at boot its ExecStart is `rtkvm net up` with the same plan, networks and
# wiring, then the agent starts (here `rtkvm up` starts it again beside the running API).
id1=$(json "$out/demo-1.json" 'd["id"]')
id2=$(json "$out/demo-2.json" 'd["id"]')
idp=$(json "$out/demo-plain.json" 'd["id"]')
{
  agent_pid=$(cat "$state/agent.pid")
  kill -TERM "$agent_pid"
  for _ in $(seq 1 30); do kill -0 "$agent_pid" 2>/dev/null || break; sleep 1; done
  ! kill -0 "$agent_pid" 2>/dev/null || { echo "demo: the agent (pid $agent_pid) did not stop on SIGTERM" >&2; exit 1; }
  echo "the agent (pid $agent_pid) stopped"
  went_down=$(date +%s.%N)
  for id in "$id1" "$idp"; do virsh -c qemu:///system destroy "rtkvm-$id"; done
  rtkvm net down --rundir "$switch"
  echo "--- the host is down: no agent, no guest QEMU, no switch; it boots again ---"
  rtkvm net up --rundir "$switch" "${net_args[@]}"
  rtkvm up "${up_args[@]}"
  for name in demo-1 demo-plain; do
    for _ in $(seq 1 60); do
      server_json "$name" "reboot-$name.json"
      checked=$(json "$out/reboot-$name.json" 'd["rt_checked_at"] or 0')
      python3 -c "import sys; sys.exit(float(sys.argv[1]) < float(sys.argv[2]))" "$checked" "$went_down" && break
      sleep 1
    done
    python3 -c "import sys; sys.exit(float(sys.argv[1]) < float(sys.argv[2]))" "$checked" "$went_down" \
      || { echo "demo: $name was not checked again after the host came back" >&2; exit 1; }
    id=$(json "$out/$name.json" 'd["id"]')
    [[ -n "$(qemu_pid "$id")" ]] || { echo "demo: $name is not running after the host came back" >&2; exit 1; }
    echo "$name after the reboot: $(json "$out/reboot-$name.json" 'd["state"], d["rt_state"]'), QEMU pid $(qemu_pid "$id")"
  done
  echo "back $(python3 -c "import sys,time; print(f'{time.time()-float(sys.argv[1]):.1f}')" "$went_down") s after the host went down: switch, agent, guests running and checked"
  server_json demo-2 reboot-demo-2.json
  [[ $(json "$out/reboot-demo-2.json" 'd["state"]') == stopped && -z "$(qemu_pid "$id2")" ]] \
    || { echo "demo: demo-2 was stopped before the reboot and is not stopped after it" >&2; exit 1; }
  echo "demo-2 after the reboot: stopped, as before it"
  grep "reconciled:" "$state/agent.log" | tail -n 1
  rtkvm net status --rundir "$switch"
  rtkvm cloud host list -f json > "$out/reboot-hosts.json"
  rtkvm cloud host list
  rtkvm cloud server list
} 2>&1 | tee "$out/reboot.txt"

step "10/10 The tenant's own system: the Debian RT image uploaded, two RT servers booted from their own copy-on-write disks with their user's key, user-data and addresses on blue, logged into on a console, measured through their guest agents (rtkvm cloud image, keypair, server create --image, server console, measure)" "$out/tenant.txt"
{
  # the probe servers make room: the host's RT pCPU goes to the tenant's two RT servers
  rtkvm cloud server delete demo-1 demo-2 --wait
  sed -i "/^$id1\$/d;/^$id2\$/d" "$out/server-ids"
  rtkvm cloud flavor create tenant-rt --vcpus "${RTKVM_DEMO_VCPUS:-2}" --ram 512 \
    --property hw:cpu_policy=mixed --property hw:cpu_realtime=yes \
    --property hw:cpu_realtime_mask=^0 --property hw:mem_page_size=4k
  uploaded=$(date +%s.%N)
  rtkvm cloud image create debian-rt --file /var/lib/rtkvm/image/debian-rt/debian-rt.qcow2 -f json > "$out/image.json"
  echo "image debian-rt: $(json "$out/image.json" 'd["status"], d["disk_format"], d["size_bytes"], d["sha256"][:16]') uploaded and checked in $(python3 -c "import sys,time; print(f'{time.time()-float(sys.argv[1]):.1f}')" "$uploaded") s"
  rm -f "$out/tenant-key" "$out/tenant-key.pub"
  ssh-keygen -q -t ed25519 -N "" -C "tenant@demo" -f "$out/tenant-key"
  rtkvm cloud keypair create demo-key --public-key "$out/tenant-key.pub" -f json > "$out/keypair.json"
  # the tenant's user-data: a root password for the serial console (made here, used once by
  # the demo), a file written, then what the guest says of itself on its console
  password=$(python3 -c "import secrets; print(secrets.token_hex(12))")
  printf '#!/bin/sh\necho "root:%s" | chpasswd\n' "$password" > "$out/user-data.sh"
  cat >> "$out/user-data.sh" <<'USERDATA'
echo "written by user-data" > /var/tmp/rtkvm-user-data
key=$(ssh-keygen -lf /home/debian/.ssh/authorized_keys | awk '{print $2}')
eth0=$(ip -4 -o addr show dev eth0 | awk '{print $4}')
echo "RTKVM-USERDATA file=$(tr ' ' _ < /var/tmp/rtkvm-user-data) host=$(hostname) key=$key eth0=$eth0 kernel=$(uname -v | tr ' ' _)" > /dev/console
USERDATA
  asked=$(date +%s.%N)
  debian=(demo-debian demo-debian-2)
  declare -A address=([demo-debian]=192.0.2.13/24 [demo-debian-2]=192.0.2.14/24)
  for name in "${debian[@]}"; do
    rtkvm cloud server create "$name" --flavor tenant-rt --image debian-rt --disk 3 \
      --network "blue,ip=${address[$name]}" --key-name demo-key --user-data "$out/user-data.sh" \
      --wait -f json > "$out/$name.json"
    json "$out/$name.json" 'd["id"]' >> "$out/server-ids"
    echo "$name: active $(python3 -c "import sys,time; print(f'{time.time()-float(sys.argv[1]):.1f}')" "$asked") s after the first create (base fetched by the agent and checked, disk made), RT pCPUs $(json "$out/$name.json" 'd["rt_cores"], [p[1] for p in d["vcpu_pins"]]')"
  done
  idd=$(json "$out/demo-debian.json" 'd["id"]')
  idd2=$(json "$out/demo-debian-2.json" 'd["id"]')
  rtkvm cloud host show "$(json "$out/hosts.json" 'd[0]["name"]')" -f json > "$out/host-tenants.json"
  echo "the host's disk space: $(json "$out/host-tenants.json" 'd["disk_gb_used"], "GiB promised to its servers of", d["disk_gb_total"], "reported by its agent"')"
  for name in "${debian[@]}"; do  # both boot at once, under TCG: a few minutes
    console="$out/console-$name.txt"
    for _ in $(seq 1 100); do
      rtkvm cloud server console-log "$name" > "$console"
      grep -aq "login:" "$console" && break
      sleep 4
    done
    grep -aq "login:" "$console" || { echo "demo: $name showed no login prompt (its console log: $console)" >&2; exit 1; }
    echo "$name: login prompt $(python3 -c "import sys,time; print(f'{time.time()-float(sys.argv[1]):.1f}')" "$asked") s after the first create"
    for _ in $(seq 1 60); do  # cloud-init runs the user-data last
      grep -aq "RTKVM-USERDATA" "$console" && break
      sleep 4
      rtkvm cloud server console-log "$name" > "$console"
    done
    said=$(grep -a "RTKVM-USERDATA" "$console" | tail -n 1)
    [[ -n "$said" ]] || { echo "demo: $name's user-data did not run (its console log: $console)" >&2; exit 1; }
    echo "$name: user-data ran $(python3 -c "import sys,time; print(f'{time.time()-float(sys.argv[1]):.1f}')" "$asked") s after the first create: $said"
    fingerprint=$(json "$out/keypair.json" 'd["fingerprint"]')
    for want in "file=written_by_user-data" "host=$name " "key=$fingerprint" "eth0=${address[$name]}" "PREEMPT_RT"; do
      [[ "$said" == *"$want"* ]] || { echo "demo: $name's user-data line lacks $want: $said" >&2; exit 1; }
    done
  done
  console="$out/console-demo-debian.txt"
  grep -a "Linux version" "$console" | head -n 1
  # the tenant logs in on the serial console through the API (a websocket, with its token)
  session="$out/console-session-demo-debian.txt"
  opened=$(date +%s.%N)
  rtkvm cloud server console demo-debian --timeout 90 \
    --chat '' '\r' --chat 'login: ' 'root\r' --chat 'Password: ' "$password\\r" \
    --chat '# ' 'uname -v; cat /var/tmp/rtkvm-user-data; echo RTKVM-CONSOLE-$((40+2))\r' \
    --chat 'RTKVM-CONSOLE-42' 'exit\r' > "$session" \
    || { echo "demo: logging in on demo-debian's console failed (the session so far: $session)" >&2; exit 1; }
  echo "demo-debian: logged in as root on its serial console through the API in $(python3 -c "import sys,time; print(f'{time.time()-float(sys.argv[1]):.1f}')" "$opened") s (rtkvm cloud server console): uname -v and the user-data's file:"
  grep -a -E "PREEMPT_RT|written by user-data" "$session" | tr -d '\r'
  grep -aq "PREEMPT_RT" "$session" || { echo "demo: uname -v on demo-debian's console does not say PREEMPT_RT (the session: $session)" >&2; exit 1; }
  grep -aq "^written by user-data" "$session" || { echo "demo: the user-data's file is not on demo-debian (the session: $session)" >&2; exit 1; }
  grep -a "Linux version" "$console" | grep -q PREEMPT_RT || { echo "demo: demo-debian's kernel is not PREEMPT_RT (its console log: $console)" >&2; exit 1; }
  virsh -c qemu:///system dumpxml "rtkvm-$idd" > "$out/demo-debian.xml"
  disk=$(python3 -c "import sys,xml.etree.ElementTree as E; d=E.parse(sys.argv[1]).getroot().find('devices/disk'); print(d.find('source').get('file'), d.find('driver').attrib)" "$out/demo-debian.xml")
  pin=$(python3 -c "import sys,xml.etree.ElementTree as E; p=E.parse(sys.argv[1]).getroot().find('cputune/iothreadpin'); print(p.get('cpuset'))" "$out/demo-debian.xml")
  echo "demo-debian's disk: $disk; its I/O thread on CPUs $pin (housekeeping: $(json "$out/plan.json" 'd["housekeeping"]'))"
  [[ "$pin" == "$(json "$out/plan.json" 'd["housekeeping"]')" ]] || { echo "demo: demo-debian's I/O thread is not on the housekeeping CPUs" >&2; exit 1; }
  qemu-img info --force-share "/var/lib/rtkvm/guests/rtkvm-$idd.disk.qcow2" | grep -E "virtual size|backing file:"
  # measured running, through its guest agent: the same QEMU before and after, uptime goes on
  qemu_before=$(qemu_pid "$idd")
  rtkvm cloud measure cyclictest demo-debian --loops 2000 --interval 1000 --buckets 2000 \
    --save "$out/measure-guest-agent-demo-debian.json"
  qemu_after=$(qemu_pid "$idd")
  uptime=$(json "$out/measure-guest-agent-demo-debian.json" 'd["result"]["guest_uptime_s"]')
  echo "demo-debian measured through its guest agent: QEMU pid $qemu_before -> $qemu_after, guest uptime $uptime s, method $(json "$out/measure-guest-agent-demo-debian.json" 'd["result"]["method"]')"
  [[ -n "$qemu_before" && "$qemu_before" == "$qemu_after" ]] || { echo "demo: demo-debian's QEMU changed while it was measured" >&2; exit 1; }
  python3 -c "import sys,json; u=json.loads(sys.argv[1]); sys.exit(not u[1] > u[0] > 30)" "$uptime" \
    || { echo "demo: demo-debian's uptime did not go on through its measurement: $uptime" >&2; exit 1; }
  # the round trip between the two, on the addresses their user gave, through both guest
  # agents: sockperf pinned to each guest's RT vCPU; neither guest is rebooted
  pids_before="$(qemu_pid "$idd") $(qemu_pid "$idd2")"
  rtkvm cloud measure rtt demo-debian demo-debian-2 --network blue --seconds 5 --mps 1000 \
    --save "$out/measure-guest-agent-rtt.json"
  pids_after="$(qemu_pid "$idd") $(qemu_pid "$idd2")"
  echo "round trip demo-debian -> demo-debian-2 through their guest agents: $(json "$out/measure-guest-agent-rtt.json" 'd["result"]["path"], d["result"]["samples"], "samples, p99", d["result"]["percentiles"]["99.0"], "max", d["result"]["max_us"], "us; vCPUs", d["result"]["vcpus"], "uptimes", d["result"]["guest_uptime_s"]') (TCG: not RT figures); QEMU pids $pids_before -> $pids_after"
  [[ "$pids_before" == "$pids_after" ]] || { echo "demo: a tenant's QEMU changed during the round trip" >&2; exit 1; }
  python3 -c "import sys,json; u=json.loads(sys.argv[1]); sys.exit(not all(a > b > 30 for b, a in u.values()))" \
    "$(json "$out/measure-guest-agent-rtt.json" 'json.dumps(d["result"]["guest_uptime_s"])')" \
    || { echo "demo: a tenant's uptime did not go on through the round trip" >&2; exit 1; }
  # the tenant powers demo-debian-2 off from inside (poweroff on its console): libvirt's
  # event reaches the agent, and the API shows the server stopped without a stop through rtkvm
  asked=$(date +%s.%N)
  # (the session waits for the kernel's last words; the console may close first as QEMU
  # exits: the API's state is the proof)
  session="$out/console-session-demo-debian-2.txt"
  rtkvm cloud server console demo-debian-2 --timeout 120 \
    --chat '' '\r' --chat 'login: ' 'root\r' --chat 'Password: ' "$password\\r" \
    --chat '# ' 'poweroff\r' --chat 'reboot: Power down' '' > "$session" 2>&1 \
    || echo "the console session ended before the kernel's last words: $(tail -n 1 "$session" | tr -d '\r')"
  for _ in $(seq 1 120); do
    server_json demo-debian-2 demo-debian-2-poweroff.json
    [[ $(json "$out/demo-debian-2-poweroff.json" 'd["state"]') == stopped ]] && break
    sleep 1
  done
  [[ $(json "$out/demo-debian-2-poweroff.json" 'd["state"]') == stopped ]] || { echo "demo: demo-debian-2 was told to power off on its console but the API does not show it stopped (the session: $session, its end: $(tail -c 300 "$session" | tr -d '\r'))" >&2; exit 1; }
  echo "demo-debian-2 powered itself off (poweroff on its console): stopped $(python3 -c "import sys,time; print(f'{time.time()-float(sys.argv[1]):.1f}')" "$asked") s later: $(json "$out/demo-debian-2-poweroff.json" 'd["fault"]')"
  rtkvm cloud server delete "${debian[@]}" --wait
  for id in "$idd" "$idd2"; do
    sed -i "/^$id\$/d" "$out/server-ids"
    [[ ! -e "/var/lib/rtkvm/guests/rtkvm-$id.disk.qcow2" ]] || { echo "demo: server $id's disk outlived it" >&2; exit 1; }
    [[ ! -e "/var/lib/rtkvm/guests/rtkvm-$id.seed.img" ]] || { echo "demo: server $id's seed outlived it" >&2; exit 1; }
  done
  rtkvm cloud image delete debian-rt
  rtkvm cloud keypair delete demo-key
  echo "demo-debian and demo-debian-2, their disks and their seeds are gone; image debian-rt and keypair demo-key deleted"
} 2>&1 | tee "$out/tenant.txt"

step "Tear-down (rtkvm cloud server delete, rtkvm down, rtkvm net down)"
rtkvm cloud server delete demo-plain --wait
rm -f "$out/server-ids"
rtkvm down --state-dir "$state" --purge
rtkvm net down --rundir "$switch"
trap - EXIT
cleanup

step "Summary"
echo "host verdict: $verdict (doctor: $out/doctor.txt)"
reports=()
for f in "$out"/{inspect,plan,doctor,tune}.{txt,json}; do [[ -f $f ]] && reports+=("$f"); done
echo "host reports: ${reports[*]}"
pictures=("$out"/report/*.svg)
require_file "$out/report/report.json" "the report was not written"
echo "report:       $out/report/report.txt, report.md, report.json, ${#pictures[@]} SVG picture(s)"
echo "make demo: every step succeeded"
