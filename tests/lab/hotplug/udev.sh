#!/usr/bin/env bash
# The daemon's udev hotplug source on the real kernel (one boot; run through run.sh):
#   udev.sh SRIOVD SRIOVD_CLI
# systemd-udevd runs in the guest (its /run/udev on the guest's tmpfs /run); `sriovd serve` starts
# with the automatic source choice and must pick udev. Then the host is changed behind its back
# with plain sysfs writes (VFs created and destroyed, a VF bound to vfio-pci and unbound, the NVMe
# PF removed and found again by a bus rescan) and, with igb, udev renames the PF's netdev; each
# change must reach `sriovd-cli events` and `sriovd-cli device(s)` within a deadline, and one
# change made while udevd is stopped must wait for udevd.
# (Without udevd the daemon follows the kernel's own uevents: lab_daemon_reboot checks that.)
. "$(dirname "${BASH_SOURCE[0]}")/../smoke/lib.sh"

sriovd=${1:?usage: udev.sh SRIOVD SRIOVD_CLI}
cli_bin=${2:?}
state=/run/sriovd-state   # the guest's tmpfs: nothing is kept after this boot
log=${LAB_OUT:-/tmp}/sriovd-udev.log
. "$(dirname "${BASH_SOURCE[0]}")/../daemon/lib.sh"

NVME=0000:02:00.0
IGB=0000:01:00.0
udevd=/lib/systemd/systemd-udevd
[ -x $udevd ] || skip_test "no $udevd (the udev package: scripts/install-deps.sh --test)"
# udevadm leaves trigger, settle and control alone when it finds itself in a chroot (its / is not
# PID 1's); the lab's command runs in one, with the guest's own /proc, /sys, /dev and /run.
export SYSTEMD_IGNORE_CHROOT=1


# Events are taken in order from a cursor: the id of the last event looked at.
cursor=0
ev=""
# next_event DESC TYPE ADDRESS JQ_TEST: the next event of TYPE about ADDRESS ("" for any) after
# the cursor, within 20 s, must satisfy JQ_TEST; the cursor moves past it. Its JSON in $ev.
next_event() {
  local desc=$1 type=$2 address=$3 test=$4 args=(--json events --since "$cursor" --type "$2" --count 1)
  [ -n "$address" ] && args+=(--address "$address")
  t_mark
  ev=$(timeout 20 "$cli_bin" --socket "$sock" "${args[@]}")
  if [ -z "$ev" ]; then fail "$desc: no $type event${address:+ about $address} within 20 s"; return 1; fi
  cursor=$(jq -r .id <<< "$ev")
  if jq -e "$test" <<< "$ev" >/dev/null; then pass "$desc, $(t_since_mark)s: $(jq -c 'del(.time)' <<< "$ev")"
  else fail "$desc: $ev does not satisfy $test"; fi
}

# --- udevd ------------------------------------------------------------------------------------------
t_mark
$udevd >"${LAB_OUT:-/tmp}/udevd.log" 2>&1 &
udevd_pid=$!
if until_true 10 'udevadm control --ping 2>/dev/null'; then pass "systemd-udevd answers in $(t_since_mark)s"
else fail "systemd-udevd not answering within 10 s"; sed 's/^/    /' "${LAB_OUT:-/tmp}/udevd.log"; lab_done; exit 1; fi

# --- the daemon, with the source chosen automatically ---------------------------------------------
start_daemon
expect_match "hotplug source is udev (udevd runs)" "hotplug: following udev events" "$(cat "$log")"
expect "NVMe PF present with no VFs" 0 "$(jdev $NVME .sriov.num_vfs)"

# --- udev renames the igb PF's netdev (a netdev is renamed only while it is down) -----------------
if [ "${LAB_IGB:-0}" = 1 ] && [ -d /sys/bus/pci/devices/$IGB ]; then
  expect "igb netdev as the kernel named it" '["eth1"]' "$(jdev $IGB .netdevs | jq -c .)"
  udevadm trigger --action=add --subsystem-match=net --sysname-match=eth1
  udevadm settle -t 20
  name=$(ls /sys/bus/pci/devices/$IGB/net)
  expect "udev gave eth1 another name" yes "$([ "$name" != eth1 ] && echo yes || echo no)"
  next_event "rename seen as an event" device.changed $IGB ".changes.netdevs.to == [\"$name\"]"
  expect "rename seen in REST" "[\"$name\"]" "$(jdev $IGB .netdevs | jq -c .)"
else
  left_out "the netdev rename: no igb in this QEMU (needs QEMU >= 8: bookworm-backports)"
fi

# --- VFs created by hand --------------------------------------------------------------------------
# udevd hands events on as their rules finish, not in the kernel's order: a PF's "change" may come
# before its VFs' "add". So each event is looked for from the same mark.
mark=$cursor
echo 0 > /sys/bus/pci/devices/$NVME/sriov_drivers_autoprobe
echo 3 > /sys/bus/pci/devices/$NVME/sriov_numvfs
next_event "3 VFs by hand: the PF's change" device.changed $NVME '.changes.num_vfs == {"from": 0, "to": 3}'
vfs=()
for i in 0 1 2; do vfs+=("$(vf_addr $NVME $i)"); done
for i in 0 1 2; do
  cursor=$mark
  next_event "VF $i added" device.added "${vfs[$i]}" '.driver == null'
done
until_true 20 'test "$(cli --json devices --physfn $NVME | jq ".devices | length")" = 3' \
  && pass "sriovd-cli devices lists the 3 VFs" || fail "sriovd-cli devices: $(cli devices --physfn $NVME)"
expect "VF 2 as REST shows it" "$NVME 2" "$(jdev "${vfs[2]}" '"\(.physfn) \(.vf_index)"')"
out=$(cli devices)
expect_match "the devices table lists VF 1" "${vfs[1]}" "$out"

# --- a VF bound to vfio-pci by hand, then unbound ----------------------------------------------
# With udevd stopped (SIGSTOP) the bind does not reach the daemon, which the kernel's own uevents
# would have brought in well under a second: what the daemon follows is udevd's. Once udevd runs
# again, it does.
vf=${vfs[1]}
kill -STOP $udevd_pid
echo vfio-pci > /sys/bus/pci/devices/$vf/driver_override
echo "$vf" > /sys/bus/pci/drivers_probe
expect "VF on vfio-pci (sysfs)" vfio-pci "$(driver_of "$vf")"
until_true 2 'test "$(jdev "$vf" .driver)" != null'
expect "udevd stopped: the bind not seen by the daemon for 2 s" null "$(jdev "$vf" .driver)"
kill -CONT $udevd_pid
next_event "bind by hand seen once udevd runs again" device.changed "$vf" '.changes.driver == {"from": null, "to": "vfio-pci"}'
expect "bind by hand seen in REST" vfio-pci "$(jdev "$vf" .driver)"
echo "$vf" > /sys/bus/pci/drivers/vfio-pci/unbind
echo > /sys/bus/pci/devices/$vf/driver_override
next_event "unbind by hand seen" device.changed "$vf" '.changes.driver == {"from": "vfio-pci", "to": null}'
expect "unbind by hand seen in REST" null "$(jdev "$vf" .driver)"

# --- VFs destroyed by hand ----------------------------------------------------------------------
# A VF cannot be removed on its own: the kernel gives VFs no `remove` attribute.
expect "a VF has no remove attribute" no "$([ -e /sys/bus/pci/devices/$vf/remove ] && echo yes || echo no)"
# The kernel sends no uevent for the PF here (sriov_disable() has none): the daemon learns its
# new count from the VFs' "remove".
mark=$cursor
echo 0 > /sys/bus/pci/devices/$NVME/sriov_numvfs
next_event "VFs destroyed by hand: the PF's change" device.changed $NVME '.changes.num_vfs == {"from": 3, "to": 0}'
for i in 0 1 2; do
  cursor=$mark
  next_event "VF $i removed" device.removed "${vfs[$i]}" ".physfn == \"$NVME\""
done
run_cli "a removed VF is unknown" 1 device "${vfs[0]}"

# --- the PF hot-removed, then found by a rescan --------------------------------------------------
echo 1 > /sys/bus/pci/devices/$NVME/remove
# (Its driver goes first, with an "unbind" of its own: whether the removal event still names nvme
# depends on whether the daemon read the host between the two.)
next_event "PF removed by hand" device.removed $NVME '.physfn == null'
run_cli "the removed PF is unknown" 1 device $NVME
expect "the devices table no longer lists it" no "$(cli devices | grep -q "^$NVME " && echo yes || echo no)"
echo 1 > /sys/bus/pci/rescan
next_event "PF back after a rescan" device.added $NVME 'true'
until_true 20 'test "$(jdev $NVME .driver)" = nvme' && pass "the PF is back on nvme (REST)" \
  || fail "the PF's driver after the rescan: $(jdev $NVME .driver)"
expect "the PF back as a PF: total_vfs and autoprobe (REST)" "$LAB_NVME_VFS true" \
  "$(jdev $NVME '"\(.sriov.total_vfs) \(.sriov.drivers_autoprobe)"')"

stop_daemon
expect_match "no hotplug failure logged" "^$" "$(grep -i "hotplug.*fail\|uevents were lost" "$log")"
kill -TERM $udevd_pid; wait $udevd_pid
[ "$lab_failures" = 0 ] || show_log
lab_done
