#!/usr/bin/env bash
# Runs every benchmark on this machine and rewrites bench/RESULTS.md. Each figure is compared
# with its peer measured in the same run; the commands are recorded next to the figures.
#   bench/run.sh [BUILD_DIR]        (default: build; run scripts/build.sh first)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
cd "$here"
for tool in hyperfine wrk nginx lspci; do
  command -v "$tool" >/dev/null || { echo "bench: $tool missing (scripts/install-deps.sh --test)" >&2; exit 1; }
done
sriovd="$build/daemon/sriovd"
fakehost="$build/tests/fixtures/sriovd-fakehost"
work=$(mktemp -d /dev/shm/sriovd-bench.XXXXXX 2>/dev/null || mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
chmod 0755 "$work"  # nginx workers run as an unprivileged user
"$fakehost" --profile large --out "$work/sys" >/dev/null
out="$work/RESULTS.md"
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.2f}')" "$1" "$2"; }
json_field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['results'][int(sys.argv[2])][sys.argv[3]])" "$@"; }

{
  echo "# Benchmark results"
  echo
  echo "Written by \`bench/run.sh\` on $(date -u +%Y-%m-%d) on this project's machine ($(nproc) cores, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at the start). The simulated host is the \`large\` profile: 16 PFs x 63 VFs + 16 root ports = 1,040 PCI functions, on tmpfs. Ratios are ours / peer, measured in the same run."
} > "$out"

# 1. Cold inventory vs lspci on the same tree (whole processes), on every scale layout: the
# scan's parallel split must not depend on the tree's shape. Three hyperfine runs per layout,
# because on this shared 2-core machine one run's ratio moves by several hundredths.
layouts=(large switches one-bus scale)
declare -A functions=() lspci_median=()
for p in switches one-bus scale; do "$fakehost" --profile "$p" --out "$work/$p" >/dev/null; done
tree() { if [ "$1" = large ]; then echo "$work/sys"; else echo "$work/$1"; fi; }
rows=""
worst=0
for p in "${layouts[@]}"; do
  root=$(tree "$p")
  functions[$p]=$(ls "$root/bus/pci/devices" | wc -l)
  runs=40
  [ "${functions[$p]}" -gt 2000 ] && runs=15
  ratios=() lspcis=() ourss=() cpus=()
  for i in 1 2 3; do
    hyperfine -N -w 3 -r "$runs" --export-json "$work/inv-$p-$i.json" \
      "lspci -vmm -D -k -A linux-sysfs -O sysfs.path=$root/bus/pci" "$sriovd inventory --sysfs-root $root" >/dev/null 2>&1
    lspci_ms=$(python3 -c "import json; print(json.load(open('$work/inv-$p-$i.json'))['results'][0]['median']*1000)")
    ours_ms=$(python3 -c "import json; print(json.load(open('$work/inv-$p-$i.json'))['results'][1]['median']*1000)")
    cpus+=("$(python3 -c "import json; r=json.load(open('$work/inv-$p-$i.json'))['results'][1]; print(f\"{(r['user']+r['system'])/r['mean']:.2f}\")")")
    ratios+=("$(ratio "$ours_ms" "$lspci_ms")")
    lspcis+=("$lspci_ms")
    ourss+=("$ours_ms")
  done
  mid() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
  r=$(mid "${ratios[@]}")
  lspci_median[$p]=$(mid "${lspcis[@]}")
  rows+=$(printf '| %s | %s | %.1f ms | %.1f ms | %s CPUs | %s | **%sx** |' "$p" "${functions[$p]}" "${lspci_median[$p]}" \
    "$(mid "${ourss[@]}")" "$(mid "${cpus[@]}")" "$(IFS=' '; echo "${ratios[*]}")" "$r")$'\n'
  worst=$(python3 -c "print(max($worst, $r))")
done
{
  echo
  echo "## Cold inventory vs lspci on every layout (target <= 0.25x)"
  echo
  echo "\`lspci -vmm -D -k -A linux-sysfs -O sysfs.path=<root>/bus/pci\` vs \`sriovd inventory --sysfs-root <root>\` (both print every function with names and drivers); \`hyperfine -N -w 3 -r 40\` (15 on the 4,128-function host), three runs per layout; medians. Layouts (\`sriovd-fakehost --profile NAME\`): \`large\` 16 root ports each with one PF and 63 VFs; \`switches\` the same NICs behind two levels of PCIe switches, five bridges deep; \`one-bus\` 16 PFs as functions of two devices on one bus, their VFs on four other buses; \`scale\` 16 PFs x 256 VFs. CPUs: sriovd's CPU time over its wall time."
  echo
  echo "| layout | functions | lspci | sriovd inventory | sriovd CPUs | ratios of the three runs | median ratio |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s' "$rows"
  echo
  echo "Worst layout: **${worst}x**."
} >> "$out"

# 2. GET /v1/devices/{address} with wrk vs nginx serving the same bytes from a file.
port=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
nport=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
"$sriovd" serve --sysfs-root "$work/sys" --state-dir "$work/state" --listen "unix:$work/s.sock" \
  --listen "tcp:127.0.0.1:$port" 2>"$work/sriovd.log" &
pids+=($!)
"$build/cli/sriovd-cli" --socket "$work/s.sock" --wait 10 host >/dev/null
addr=$(curl -s "http://127.0.0.1:$port/v1/devices?physfn=$("$build/cli/sriovd-cli" --socket "$work/s.sock" --json devices --class-id 02 | python3 -c 'import json,sys; print([d["address"] for d in json.load(sys.stdin)["devices"] if d["kind"]=="pf"][0])')" | python3 -c 'import json,sys; print(json.load(sys.stdin)["devices"][5]["address"])')
mkdir -p "$work/www/v1/devices" "$work/nginx"
curl -s "http://127.0.0.1:$port/v1/devices/$addr" > "$work/www/v1/devices/$addr"
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:$nport;
    location / { root $work/www; default_type application/json; }
  }
}
CONF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
pids+=($!)
curl -sf --retry 50 --retry-connrefused --retry-delay 0 --retry-max-time 10 "http://127.0.0.1:$nport/v1/devices/$addr" >/dev/null
cmp <(curl -s "http://127.0.0.1:$nport/v1/devices/$addr") <(curl -s "http://127.0.0.1:$port/v1/devices/$addr")
wrk_rps() { wrk -t2 -c64 -d8s "$1" | awk '/Requests\/sec/ {print $2}'; }
wrk -t2 -c64 -d2s "http://127.0.0.1:$port/v1/devices/$addr" >/dev/null
wrk -t2 -c64 -d2s "http://127.0.0.1:$nport/v1/devices/$addr" >/dev/null
nginx_rps=$(wrk_rps "http://127.0.0.1:$nport/v1/devices/$addr")
ours_rps=$(wrk_rps "http://127.0.0.1:$port/v1/devices/$addr")
rest_ratio=$(ratio "$ours_rps" "$nginx_rps")
{
  echo
  echo "## GET /v1/devices/{address} vs nginx serving the same bytes (target >= 0.8x)"
  echo
  echo "\`wrk -t2 -c64 -d8s\` on loopback; nginx with 1 worker, keep-alive, the identical JSON body from a file."
  echo
  echo "| server | requests/s |"
  echo "|---|---|"
  echo "| nginx | $nginx_rps |"
  echo "| sriovd | $ours_rps |"
  echo
  echo "Ratio: **${rest_ratio}x**."
} >> "$out"
kill "${pids[@]}" 2>/dev/null || true
wait 2>/dev/null || true
pids=()

# 3. Daemon footprint: start to READY=1 and RSS once ready; as a client sees it, exec to
# /readyz 200 against lspci's time on the same tree (section 1), and RSS after a full device list.
foot_rows=""
for p in large scale; do
  runs=15
  [ "$p" = scale ] && runs=7
  foot=$("$build/bench/sriovd-bench-startup" "$sriovd" "$(tree "$p")" "$runs")
  f() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$foot" "$1"; }
  mib() { python3 -c "print(f'{$1/1024:.1f}')"; }
  foot_rows+=$(printf '| %s (%s functions) | %s ms | %s MiB | %s ms | %.1f ms | **%sx** | **%s MiB** (%s KiB of JSON) |' "$p" "${functions[$p]}" \
    "$(f start_to_ready_ms)" "$(mib "$(f rss_kib)")" "$(f readyz_from_exec_ms)" "${lspci_median[$p]}" \
    "$(ratio "$(f readyz_from_exec_ms)" "${lspci_median[$p]}")" "$(mib "$(f rss_after_devices_kib)")" \
    "$(( $(f devices_bytes) / 1024 ))")$'\n'
done
{
  echo
  echo "## Daemon footprint (targets: /readyz from exec <= 0.6x lspci; RSS after a full device list <= 16 MiB at 1,040 functions, <= 24 MiB at 4,128)"
  echo
  echo "\`build/bench/sriovd-bench-startup build/daemon/sriovd <root> RUNS\` (15 runs, 7 on \`scale\`), medians: exec to READY=1 over sd_notify and RSS then; exec to the first 200 from \`GET /readyz\` on the daemon's socket, asked every millisecond without NOTIFY_SOCKET, against lspci's median on the same tree from the inventory runs above; then one \`GET /v1/devices\` and VmRSS (the largest of the runs)."
  echo
  echo "| host | start to READY=1 | RSS when ready | exec to /readyz 200 | lspci | ratio | RSS after GET /v1/devices |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s' "$foot_rows"
} >> "$out"

# 4. sriovd-k8s: resident memory with a 128-VF pool, driven by the kubelet simulator.
k8s_rc=0
/usr/bin/python3 "$here/bench/k8s_footprint.py" "$build" > "$work/k8s.md" 2>"$work/k8s.err" || k8s_rc=$?
{
  echo
  if [ -s "$work/k8s.md" ]; then cat "$work/k8s.md"; else
    echo "## sriovd-k8s footprint with a 128-VF pool (target: RSS <= 16 MiB)"
    echo
    echo "Not measured in this run: \`bench/k8s_footprint.py\` exited $k8s_rc:"
    echo
    echo '```'
    tail -n 20 "$work/k8s.err"
    echo '```'
  fi
} >> "$out"

# 5. Hotplug: a VF hot-removed / added back on the simulated host to its event on GET /v1/events.
hot=$("$build/bench/sriovd-bench-hotplug" "$sriovd" 200)
hotf() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$hot" "$1"; }
{
  echo
  echo "## Hotplug to REST on the 1,040-function host (target <= 10 ms)"
  echo
  echo "\`build/bench/sriovd-bench-hotplug build/daemon/sriovd 200\`: \`sriovd serve --sim\` on the \`large\` host; a VF ($(hotf device)) is hot-removed and added back 100 times with \`SimKernel::hot_remove/hot_add\` (the tree changes, then kernel-format uevents go to the daemon's socket); each time until its \`device.removed\`/\`device.added\` event arrives on \`GET /v1/events\` (published after the new snapshot; a GET checks REST agrees). Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "| figure | from the uevent sent | from the start of the change (tree + uevent) |"
  echo "|---|---|---|"
  echo "| p50 | $(hotf p50_ms) ms | $(hotf p50_with_tree_ms) ms |"
  echo "| p99 | $(hotf p99_ms) ms | $(hotf p99_with_tree_ms) ms |"
  echo "| max | $(hotf max_ms) ms | |"
} >> "$out"

# 6. Configuring 64 netdevsim VFs in the QEMU lab guest: LinuxKernel::set_vf vs a loop of ip link.
lab_rc=0
"$here/bench/lab_vf_config.sh" "$build" > "$work/labvf.txt" 2>&1 || lab_rc=$?
{
  echo
  echo "## Configuring 64 netdevsim VFs: sriovd's netlink path vs ip link and ip -batch (target ≥ 20x against the loop)"
  echo
  if [ "$lab_rc" = 0 ] && grep -q '^RESULT .*verified=yes' "$work/labvf.txt"; then
    res=$(grep '^RESULT ' "$work/labvf.txt" | tail -n1)
    field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$res"; }
    echo "\`bench/lab_vf_config.sh build\` (\`build/bench/sriovd-bench-lab-vf-config\` in the lab guest: Debian's 6.1 kernel under QEMU TCG). In one boot, each round resets the 64 VFs (\`sriov_numvfs\` 0, then 64) and sets mac, vlan + qos, max_tx_rate, spoofchk off and trust on on every VF: through \`kernel::LinuxKernel\` (one \`get_vfs\`, then one \`set_vf\` per attribute group per VF as \`Agent::apply_vf_config\` sends them: 320 RTM_SETLINK) or with one \`ip link set eth0 vf N mac … vlan … qos … max_tx_rate … spoofchk off trust on\` process per VF, or with one \`ip -batch\` process carrying those 64 commands (one socket, one RTM_SETLINK per VF: iproute2 at its fastest); every result is checked with \`get_vfs\` and \`ip -d link show eth0\`. Medians of $(field rounds) alternating rounds."
    echo
    echo "| path | median for 64 VFs |"
    echo "|---|---|"
    echo "| 64 × \`ip link set eth0 vf N …\` | $(field ip_ms) ms |"
    echo "| one \`ip -batch\` of 64 \`link set eth0 vf N …\` | $(field batch_ms) ms |"
    echo "| sriovd \`LinuxKernel::set_vf\` (5 per VF) | $(field sriovd_ms) ms |"
    echo
    echo "Ratio (ip loop / sriovd): **$(field ratio)x**; ip -batch / sriovd: **$(field batch_ratio)x** (above 1: sriovd is faster)."
    echo
    echo '```'
    grep '^round ' "$work/labvf.txt"
    echo '```'
  else
    echo "Not measured in this run: \`bench/lab_vf_config.sh\` exited $lab_rc ($( [ "$lab_rc" = 77 ] && echo "the QEMU lab is unavailable here; see tests/lab/README.md" || echo "see its output below"))."
    echo
    echo '```'
    tail -n 20 "$work/labvf.txt"
    echo '```'
  fi
} >> "$out"

# 6b. For information: lease to the domain started, in the QEMU lab guest (lab_vm_passthrough).
lease_rc=0
"$here/bench/lab_lease_to_running.sh" "$build" 3 > "$work/leasevm.txt" 2>&1 || lease_rc=$?
{
  echo
  echo "## Lease to domain started in the lab (for information, no target)"
  echo
  if [ "$lease_rc" = 0 ] && grep -q '^RESULT ' "$work/leasevm.txt"; then
    res=$(grep '^RESULT ' "$work/leasevm.txt" | tail -n1)
    lfield() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$res"; }
    echo "\`bench/lab_lease_to_running.sh build 3\`: lab_vm_passthrough's first case, $(lfield runs) runs. In the lab guest (Debian's 6.1 kernel under QEMU TCG, a libvirtd of its own), \`sriovd-cli alloc\` leases an NVMe VF from a vfio pool (bound to vfio-pci), \`sriovd-cli attach --config\` puts it in a defined domain's XML, and \`virsh start --paused\` starts the domain: QEMU, itself under TCG inside the guest, opens the VF through VFIO (the domain has no OS, so it stays paused). Medians:"
    echo
    echo "| step | median |"
    echo "|---|---|"
    echo "| lease (allocate, bind to vfio-pci) | $(lfield lease_s) s |"
    echo "| attach to the domain's configuration | $(lfield attach_s) s |"
    echo "| domain start (QEMU opens the VF) | $(lfield start_s) s |"
    echo "| lease to domain started | $(lfield lease_to_started_s) s |"
    echo
    echo '```'
    grep '^run ' "$work/leasevm.txt"
    echo '```'
  else
    echo "Not measured in this run: \`bench/lab_lease_to_running.sh\` exited $lease_rc."
    echo
    echo '```'
    tail -n 20 "$work/leasevm.txt"
    echo '```'
  fi
} >> "$out"

# 7. Durable allocate + release cycles over REST on the simulated host.
"$here/bench/alloc_cycles.sh" "$build" >> "$out"

# The systemd unit's exposure (systemd-analyze security --offline).
"$here/bench/unit_security.sh" "$build" >> "$out"

# The sections of the before/after comparison (bench/compare_builds.sh), the long request fuzzing
# run (bench/request_fuzz.sh), the soak (bench/soak.sh) and the fuzzing campaign (scripts/fuzz.sh)
# come from their own runs: keep them.
for section in compare requests soak fuzz; do
  if grep -q "^<!-- $section:begin" "$here/bench/RESULTS.md" 2>/dev/null; then
    { echo; awk -v s="$section" '$0 ~ "^<!-- " s ":begin" { on = 1 } on { print } $0 ~ "^<!-- " s ":end -->" { on = 0 }' "$here/bench/RESULTS.md"; } >>"$out"
  fi
done
cp "$out" "$here/bench/RESULTS.md"
cat "$here/bench/RESULTS.md"
