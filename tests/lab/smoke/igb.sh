#!/usr/bin/env bash
# Lab smoke (d): igb (82576, QEMU >= 8): 7 PCI VFs bound by igbvf, VF attributes over netlink.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ "${LAB_IGB:-0}" = 1 ] || skip_test "this QEMU has no igb device (needs QEMU >= 8: bookworm-backports)"
pf=$(pci_by_id 0x8086 0x10c9) || { fail "no 82576 PF although LAB_IGB=1"; lab_done; exit; }
P=/sys/bus/pci/devices/$pf
expect "PF driver" igb "$(driver_of "$pf")"
dev=$(ls "$P/net" | head -n1)
echo "igb PF $pf, netdev $dev, group $(group_of "$pf")"
expect "sriov_totalvfs" 7 "$(cat "$P/sriov_totalvfs")"

modprobe igbvf || fail "modprobe igbvf"
expect "PF up" OK "$(iplink set "$dev" up)"
# Autoprobe off: igbvf's probe waits ~2 s per VF for the PF's mailbox ("PF still resetting"), so
# binding all 7 costs 15-50 s of TCG time; one VF shows igbvf binds.
expect "autoprobe off" OK "$(sysfs_write 0 "$P/sriov_drivers_autoprobe")"
expect "7 VFs" OK "$(sysfs_write 7 "$P/sriov_numvfs")"
expect "7 virtfn links" 7 "$(ls -d "$P"/virtfn* | wc -l)"
groups=()
for i in $(seq 0 6); do
  vf=$(basename "$(readlink -f "$P/virtfn$i")")
  [ "$(driver_of "$vf")" = none ] || fail "virtfn$i bound to $(driver_of "$vf") despite autoprobe=0"
  groups+=("$(group_of "$vf")")
done
expect "VFs in 7 distinct IOMMU groups" 7 "$(printf '%s\n' "${groups[@]}" | sort -u | wc -l)"
vf0=$(basename "$(readlink -f "$P/virtfn0")")
expect "driver_override=igbvf on virtfn0" OK "$(sysfs_write igbvf "/sys/bus/pci/devices/$vf0/driver_override")"
expect "drivers_probe virtfn0" OK "$(sysfs_write "$vf0" /sys/bus/pci/drivers_probe)"
expect "virtfn0 bound by igbvf" igbvf "$(driver_of "$vf0")"
expect "virtfn0 has a netdev" 1 "$(ls "/sys/bus/pci/devices/$vf0/net" 2>/dev/null | wc -l)"

# Enabling VFs resets the PF link; max_tx_rate is EINVAL until carrier is back.
t=0; while [ "$(cat "/sys/class/net/$dev/carrier" 2>/dev/null)" != 1 ] && [ $t -lt 100 ]; do sleep 0.1; t=$((t + 1)); done
expect "PF carrier back after VF enable (waited ${t}00 ms)" 1 "$(cat "/sys/class/net/$dev/carrier" 2>/dev/null)"

expect "vf 1 mac" OK "$(iplink set "$dev" vf 1 mac 02:00:00:00:01:01)"
expect "vf 1 vlan 42 qos 3" OK "$(iplink set "$dev" vf 1 vlan 42 qos 3)"
expect "vf 1 max_tx_rate 100" OK "$(iplink set "$dev" vf 1 max_tx_rate 100)"
expect "vf 1 spoofchk off" OK "$(iplink set "$dev" vf 1 spoofchk off)"
expect "vf 1 trust on" OK "$(iplink set "$dev" vf 1 trust on)"
vf1=$(ip -d link show "$dev" | grep '^ *vf 1 ')
echo "  $vf1"
expect_match "vf 1 mac read back" "link/ether 02:00:00:00:01:01" "$vf1"
expect_match "vf 1 vlan/qos read back" "vlan 42, qos 3" "$vf1"
expect_match "vf 1 max_tx_rate read back" "max_tx_rate 100Mbps" "$vf1"
expect_match "vf 1 spoofchk off" "spoof checking off" "$vf1"
expect_match "vf 1 trust on" "trust on" "$vf1"

expect "min_tx_rate rejected" EINVAL "$(iplink set "$dev" vf 2 min_tx_rate 10)"
expect "link state rejected" EOPNOTSUPP "$(iplink set "$dev" vf 2 state enable)"
expect "802.1ad rejected" EPROTONOSUPPORT "$(iplink set "$dev" vf 2 vlan 5 proto 802.1ad)"
expect "VF 7 (out of range) rejected" EINVAL "$(iplink set "$dev" vf 7 mac 02:00:00:00:00:07)"

# max_tx_rate needs the PF's link (E1000_STATUS_LU): EINVAL while the PF is down.
expect "PF down" OK "$(iplink set "$dev" down)"
expect "max_tx_rate with the PF down" EINVAL "$(iplink set "$dev" vf 2 max_tx_rate 100)"
expect "PF up again" OK "$(iplink set "$dev" up)"
expect "vf 0 mac under a bound igbvf" OK "$(iplink set "$dev" vf 0 mac 02:00:00:00:00:10)"
expect_match "igb asks for a VF driver reload" "Reload the VF driver to make this change effective" "$(dmesg | tail -n 5)"
expect "unbind virtfn0" OK "$(sysfs_write "$vf0" /sys/bus/pci/drivers/igbvf/unbind)"
expect "clear driver_override" OK "$(sysfs_write "" "/sys/bus/pci/devices/$vf0/driver_override")"
expect "VFs off" OK "$(sysfs_write 0 "$P/sriov_numvfs")"
expect "virtfn links gone" 0 "$(ls -d "$P"/virtfn* 2>/dev/null | wc -l)"
expect "restore autoprobe" OK "$(sysfs_write 1 "$P/sriov_drivers_autoprobe")"
lab_done
