#!/usr/bin/env bash
# Real VMs with devices sriovd hands out, on the lab's real kernel (run through run.sh):
#   guest.sh SRIOVD SRIOVD_CLI
# The guest runs a libvirtd of its own (vm/libvirt.sh) and sriovd drives it through
# --libvirt-uri. Every domain is a diskless q35 guest started paused: QEMU opens and maps the
# assigned device through VFIO at start, which is what is checked (the fds QEMU holds, and the
# device QEMU shows its guest, in its device tree: see vm_pci_ids). Covered:
#   - a vfio lease of an NVMe VF attached to a defined domain's config, the domain started, and
#     refusals while it runs, each answered within 10 s without touching the device: release
#     409 naming the domain, unbind 409;
#     then destroy, release, the function reset seen by the kernel, the VF free in its pool;
#   - a VF put in a domain's XML by hand (no lease): a lease of it, its unbind and a VF count
#     change are refused naming the domain; its pool does not count it free meanwhile;
#   - live attach to a running domain, and a live detach the guest never acknowledges (no OS):
#     409 "being attached or detached" meanwhile, a clear error after the deadline, and
#     `virsh destroy` then a detach to finish;
#   - the NVMe PF passed through whole (0 VFs) as <hostdev>;
#   - an igb VF as <interface type='hostdev'> with the lease's MAC and VLAN, set by libvirt at
#     start and read back with `ip -d link`; after release the VF is back as it was.
. "$(dirname "${BASH_SOURCE[0]}")/../smoke/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/libvirt.sh"

sriovd=${1:?usage: guest.sh SRIOVD SRIOVD_CLI}
cli_bin=${2:?}
state=/tmp/sriovd-vm-state
log=${LAB_OUT:-/tmp}/sriovd-vm.log
. "$(dirname "${BASH_SOURCE[0]}")/../daemon/lib.sh"

NVME=0000:02:00.0
IGB=0000:01:00.0
PF_IF=eth1
MAC_VM=52:54:00:00:00:41

trace=/sys/kernel/tracing
reset_probe() {
  mountpoint -q $trace || mount -t tracefs nodev $trace || { fail "cannot mount tracefs"; return; }
  echo 'r:sriovd_lab_reset pci_reset_function ret=$retval:s32' > $trace/kprobe_events &&
    echo 1 > $trace/events/kprobes/sriovd_lab_reset/enable || fail "cannot set the kretprobe on pci_reset_function"
}
resets_ok() { awk '/reset_store.*<- pci_reset_function/ && $NF == "ret=0" { n++ } END { print n + 0 }' $trace/trace; }

lease_json=""
alloc_json() { local desc=$1; shift; run_cli "$desc" 0 --json alloc "$@"; lease_json=$cli_out; }
# holds_group NAME ADDRESS: "yes" when the domain's QEMU holds the device's /dev/vfio/<group>.
holds_group() { local pid; pid=$(qemu_pid "$1"); [ -n "$pid" ] && qemu_holds "$pid" "/dev/vfio/$(group_of "$2")" || echo no; }
ids_of() { printf '%s:%s' "$(sed 's/^0x//' "/sys/bus/pci/devices/$1/vendor")" "$(sed 's/^0x//' "/sys/bus/pci/devices/$1/device")"; }
# vm_shows NAME ADDRESS: "yes" when the VM's device tree has a vfio-pci device with the device's
# vendor:device (vm_pci_ids).
vm_shows() {
  local ids; ids=$(vm_pci_ids "$1")
  grep -qx "$(ids_of "$2")" <<< "$ids" && { echo yes; return; }
  echo "no (vfio-pci devices in the qtree: $(tr '\n' ' ' <<< "$ids"))"
}
# timed_status METHOD PATH [BODY]: the HTTP status in $st and the seconds it took in $took.
st=""
took=""
timed_status() { t_mark; st=$(http_status "$@"); took=$(t_since_mark); }
# refused DESC STATUS: $st is STATUS, answered within 10 s (the daemon never waits on the VM).
refused() {
  expect "$1" "$2" "$st"
  if awk -v t="$took" 'BEGIN { exit !(t < 10) }'; then pass "$1: answered in $took s"
  else fail "$1: answered in $took s (limit 10 s)"; fi
}
problem() { curl -s --unix-socket "$sock" -X "$1" -H 'Content-Type: application/json' ${3:+--data "$3"} "http://sriovd$2" | jq -r .detail; }

reset_probe
start_libvirtd || { lab_done; exit 1; }
start_daemon --libvirt-uri "$LIBVIRT_URI"
for d in vm1 vm2 vm3; do define_vm $d || fail "define $d"; done

# --- 1. a vfio lease of an NVMe VF, in the config of a domain that is then started -----------
run_cli "2 NVMe VFs, autoprobe off" 0 vfs $NVME 2 --autoprobe off
run_cli "vfio pool over the NVMe VFs" 0 pool create nvme --vendor 1b36
# The time from the lease to the domain started (QEMU up with the VF open; started paused: the
# domain has no OS) is printed as a TIMING line for bench/lab_lease_to_running.sh.
uptime_s() { local u _; read -r u _ < /proc/uptime; echo "$u"; }
t_lease=$(uptime_s)
alloc_json "NVMe lease" nvme --name vm1 --consumer vm
lease=$(jq -r .id <<< "$lease_json"); vf=$(jq -r .address <<< "$lease_json")
t_leased=$(uptime_s)
run_cli "attach to vm1's definition" 0 attach "$lease" vm1 --config --no-live
t_attached=$(uptime_s)
t_mark
if virsh_ start vm1 --paused >/dev/null; then pass "vm1 started with the VF ($(t_since_mark)s)"; else fail "vm1 did not start"; tail -20 /var/log/libvirt/qemu/vm1.log; fi
t_started=$(uptime_s)
awk -v a="$t_lease" -v b="$t_leased" -v c="$t_attached" -v d="$t_started" \
  'BEGIN { printf "TIMING lease_to_started_s=%.2f lease_s=%.2f attach_s=%.2f start_s=%.2f\n", d - a, b - a, c - b, d - c }'
expect "vm1's QEMU holds /dev/vfio/$(group_of "$vf")" yes "$(holds_group vm1 "$vf")"
expect "vm1's guest sees the VF ($(ids_of "$vf")) in its device tree" yes "$(vm_shows vm1 "$vf")"

timed_status DELETE "/v1/allocations/$lease"
refused "release while vm1 runs" 409
expect_match "the refusal names the domain and QEMU" "domain\(s\) vm1.*held open by qemu" "$(problem DELETE "/v1/allocations/$lease")"
timed_status PUT "/v1/devices/$vf/driver" '{"driver": "host"}'
refused "unbind while vm1 runs" 409
expect "the VF still on vfio-pci" vfio-pci "$(driver_of "$vf")"
expect "the lease still active" active "$(cli --json lease "$lease" | jq -r .state)"

virsh_ destroy vm1 >/dev/null
before=$(resets_ok)
run_cli "release once vm1 is stopped" 0 release "$lease"
expect "one more function reset, returned 0" "$((before + 1))" "$(resets_ok)"
expect "the VF back without a driver" none "$(driver_of "$vf")"
expect "the VF free in its pool" 2 "$(cli --json pool show nvme | jq -r .free)"
expect "vm1's definition no longer has the VF" 0 "$(virsh_ dumpxml vm1 --inactive | grep -c "<hostdev")"

# --- 2. a VF put in a domain's XML by hand --------------------------------------------------
vf2=$(vf_addr $NVME 1)
run_cli "bind VF1 to vfio-pci" 0 bind "$vf2" vfio-pci
bus=$(cut -d: -f2 <<< "$vf2"); slot=$(cut -d: -f3 <<< "$vf2" | cut -d. -f1); fn=${vf2##*.}
cat > /tmp/hand.xml <<XML
<hostdev mode='subsystem' type='pci' managed='no'><source><address domain='0x0000' bus='0x$bus' slot='0x$slot' function='0x$fn'/></source></hostdev>
XML
virsh_ attach-device vm2 /tmp/hand.xml --config >/dev/null || fail "hand attach to vm2"
virsh_ start vm2 --paused >/dev/null || fail "vm2 did not start"
expect "vm2's QEMU holds the hand-attached VF" yes "$(holds_group vm2 "$vf2")"
# The pool does not offer it: GET /v1/pools shows it held, from the kernel's open files.
expect "the pool counts the held VF out" 1 "$(cli --json pool show nvme | jq -r .free)"
expect_match "the pool names what holds it" "in use outside sriovd: /dev/vfio/[0-9]+ held open by qemu" \
  "$(cli --json pool show nvme | jq -r --arg a "$vf2" '.devices[] | select(.address == $a) | .reason')"
timed_status POST /v1/allocations '{"address": "'$vf2'", "consumer": {"kind": "vm", "name": "x"}}'
refused "a lease of the VF vm2 runs with" 409
expect_match "the refusal names vm2" "vm2" "$(problem POST /v1/allocations '{"address": "'$vf2'", "consumer": {"kind": "vm", "name": "x"}}')"
timed_status PUT "/v1/devices/$vf2/driver" '{"driver": "host"}'
refused "unbind of the VF vm2 runs with" 409
expect_match "the refusal names vm2" "vm2" "$(problem PUT "/v1/devices/$vf2/driver" '{"driver": "host"}')"
timed_status PUT "/v1/devices/$NVME/sriov" '{"num_vfs": 0}'
refused "the VF count change that would remove it" 409
expect_match "the refusal names vm2 and QEMU" "vm2.*held open by qemu" "$(problem PUT "/v1/devices/$NVME/sriov" '{"num_vfs": 0}')"
expect "the NVMe PF keeps its 2 VFs" 2 "$(cat /sys/bus/pci/devices/$NVME/sriov_numvfs)"
expect "the VF still on vfio-pci" vfio-pci "$(driver_of "$vf2")"
virsh_ destroy vm2 >/dev/null
virsh_ detach-device vm2 /tmp/hand.xml --config >/dev/null || fail "hand detach from vm2"
run_cli "unbind once vm2 is stopped" 0 bind "$vf2" host
expect "the VF is free in its pool again" 2 "$(cli --json pool show nvme | jq -r .free)"

# --- 3. live attach, and a live detach the guest never acknowledges --------------------------
virsh_ start vm3 --paused >/dev/null || fail "vm3 did not start"
alloc_json "NVMe lease for live attach" nvme --name vm3 --consumer vm
lease3=$(jq -r .id <<< "$lease_json"); vf3=$(jq -r .address <<< "$lease_json")
run_cli "live attach to the running vm3" 0 attach "$lease3" vm3
expect "vm3's QEMU holds the VF" yes "$(holds_group vm3 "$vf3")"
expect "vm3's guest sees the VF" yes "$(vm_shows vm3 "$vf3")"
read -r detach_t0 _ < /proc/uptime   # (timed_status below moves t_mark)
cli detach "$lease3" > /tmp/detach.out 2>&1 &
detach_pid=$!
# While the detach waits for the guest, the lease is busy. A DELETE sent before the detach has
# begun would itself detach first (and wait for the guest), so the start is seen with a request
# that changes nothing either way: an attach to vm3, refused as "attached already" before and as
# "being attached or detached" once the detach runs.
busy=""
for _ in $(seq 1 100); do
  busy=$(problem POST "/v1/allocations/$lease3/attach" '{"domain": "vm3"}')
  [[ $busy == *"being attached or detached"* ]] && break
  sleep 0.1
done
expect_match "the detach has begun: the lease is busy" "being attached or detached" "$busy"
timed_status DELETE "/v1/allocations/$lease3"
refused "release during the detach" 409
expect_match "the refusal says the lease is being detached" "detach" "$(problem DELETE "/v1/allocations/$lease3")"
rc=0; wait $detach_pid || rc=$?
read -r now _ < /proc/uptime
echo "    detach answered after $(awk_free_sub "$now" "$detach_t0")s: $(cat /tmp/detach.out)"
expect "the unacknowledged live detach fails (exit 1)" 1 "$rc"
expect "the lease is still attached to vm3" vm3 "$(cli --json lease "$lease3" | jq -r '.attached_to.domain')"
expect "the VF still on vfio-pci" vfio-pci "$(driver_of "$vf3")"
virsh_ destroy vm3 >/dev/null
run_cli "detach once vm3 is destroyed" 0 detach "$lease3"
run_cli "release" 0 release "$lease3"
expect "the VF back without a driver" none "$(driver_of "$vf3")"

# --- 4. the NVMe PF whole --------------------------------------------------------------------
run_cli "NVMe back to 0 VFs" 0 vfs $NVME 0
run_cli "pool delete" 0 pool delete nvme
alloc_json "the NVMe PF whole" --address $NVME --name vm1 --consumer vm
leasep=$(jq -r .id <<< "$lease_json")
expect "the PF on vfio-pci" vfio-pci "$(driver_of $NVME)"
run_cli "attach the PF to vm1's definition" 0 attach "$leasep" vm1 --config --no-live
virsh_ start vm1 --paused >/dev/null || fail "vm1 did not start with the PF"
expect "vm1's QEMU holds the PF's group" yes "$(holds_group vm1 $NVME)"
expect "vm1's guest sees the PF" yes "$(vm_shows vm1 $NVME)"
virsh_ destroy vm1 >/dev/null
run_cli "release the PF" 0 release "$leasep"
expect "the PF back on nvme" nvme "$(driver_of $NVME)"

# --- 5. an igb VF as <interface type='hostdev'> with the lease's MAC and VLAN ----------------
if [ "${LAB_IGB:-0}" = 1 ]; then
  modprobe igbvf; ip link set $PF_IF up
  run_cli "1 igb VF" 0 vfs $IGB 1
  ivf=$(vf_addr $IGB 0)
  vf_line() { ip -d link show $PF_IF | grep "^ *vf 0 "; }
  before_line=$(vf_line)
  run_cli "vfio pool over the igb VF" 0 pool create igb --pf "$PF_IF#0"
  alloc_json "igb lease with MAC and VLAN" igb --name vm2 --consumer vm --mac $MAC_VM --vlan 42
  leasei=$(jq -r .id <<< "$lease_json")
  expect_match "the lease's XML is an <interface type='hostdev'>" "<interface type=.hostdev." "$(jq -r .libvirt_xml <<< "$lease_json")"
  run_cli "attach to vm2's definition" 0 attach "$leasei" vm2 --config --no-live
  virsh_ start vm2 --paused >/dev/null || fail "vm2 did not start with the igb VF"
  expect "vm2's QEMU holds the igb VF" yes "$(holds_group vm2 "$ivf")"
  echo "    $(vf_line)"
  expect_match "the PF shows the VF's MAC and VLAN as libvirt set them" "link/ether $MAC_VM .*vlan 42" "$(vf_line)"
  virsh_ destroy vm2 >/dev/null
  run_cli "release the igb lease" 0 release "$leasei"
  expect "the VF's attributes are back as they were" "$before_line" "$(vf_line)"
else
  if [ "${CI:-}" = true ]; then fail "this QEMU has no igb NIC: the igb <interface type='hostdev'> checks cannot run"
  else echo "note: no igb in this QEMU: the igb interface checks are left out"; fi
fi

expect "no leases left" 0 "$(cli --json leases | jq '.allocations | length')"
stop_daemon
stop_libvirtd
[ "$lab_failures" = 0 ] || { show_log; tail -30 "$vm_dir/libvirtd.log" 2>/dev/null; }
lab_done
