#!/usr/bin/env bash
# Lab smoke (c): netdevsim VFs and their netlink attributes (RTM_SETLINK IFLA_VFINFO_LIST).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

D=/sys/bus/netdevsim/devices/netdevsim1
[ -d "$D" ] || { fail "no netdevsim1 (init should have created it)"; lab_done; exit; }
dev=$(ls "$D"/net 2>/dev/null | head -n1)
dev=${dev:-$(ls /sys/class/net | grep -v lo | head -n1)}
expect "port netdev is eth0" eth0 "$dev"
expect "max_vfs raised to 64" 64 "$(cat /sys/kernel/debug/netdevsim/netdevsim1/max_vfs)"
expect "8 VFs" OK "$(sysfs_write 8 "$D/sriov_numvfs")"
expect "sriov_numvfs reads 8" 8 "$(cat "$D/sriov_numvfs")"
expect "write 4 while 8 are enabled" EBUSY "$(sysfs_write 4 "$D/sriov_numvfs")"
expect "ip shows 8 VFs" 8 "$(ip -d link show "$dev" | grep -c '^ *vf [0-9]')"

expect "vf 3 mac" OK "$(iplink set "$dev" vf 3 mac 02:00:00:00:03:03)"
expect "vf 3 vlan 100 qos 5 proto 802.1ad" OK "$(iplink set "$dev" vf 3 vlan 100 qos 5 proto 802.1ad)"
expect "vf 3 max_tx_rate 1000 min_tx_rate 100" OK "$(iplink set "$dev" vf 3 max_tx_rate 1000 min_tx_rate 100)"
expect "vf 3 spoofchk off trust on state disable" OK "$(iplink set "$dev" vf 3 spoofchk off trust on state disable)"
expect "vf 5 rate 300 (legacy)" OK "$(iplink set "$dev" vf 5 rate 300)"
expect "vf 6 query_rss on" OK "$(iplink set "$dev" vf 6 query_rss on)"
show=$(ip -d link show "$dev")
vf3=$(echo "$show" | grep '^ *vf 3 ')
echo "  $vf3"
expect_match "vf 3 mac read back" "link/ether 02:00:00:00:03:03" "$vf3"
expect_match "vf 3 vlan/qos/proto read back" "vlan 100, qos 5, vlan protocol 802.1ad" "$vf3"
expect_match "vf 3 rates read back" "max_tx_rate 1000Mbps, min_tx_rate 100Mbps" "$vf3"
expect_match "vf 3 spoofchk off" "spoof checking off" "$vf3"
expect_match "vf 3 link-state disable" "link-state disable" "$vf3"
expect_match "vf 3 trust on" "trust on" "$vf3"
expect_match "vf 5 rate" "max_tx_rate 300Mbps" "$(echo "$show" | grep '^ *vf 5 ')"
expect_match "vf 6 query_rss on" "query_rss on" "$(echo "$show" | grep '^ *vf 6 ')"

expect "qos 8 rejected" EINVAL "$(iplink set "$dev" vf 2 vlan 10 qos 8)"
expect "multicast MAC rejected" EINVAL "$(iplink set "$dev" vf 2 mac 01:00:5e:00:00:01)"
expect "VF 8 (out of range) rejected" EINVAL "$(iplink set "$dev" vf 8 mac 02:00:00:00:00:08)"
expect_match "vf 2 unchanged" "link/ether 00:00:00:00:00:00" "$(ip -d link show "$dev" | grep '^ *vf 2 ')"
# One RTM_SETLINK, applied in order: the MAC before the bad qos sticks.
expect "mac + bad qos in one message" EINVAL "$(iplink set "$dev" vf 4 mac 02:00:00:00:04:04 vlan 10 qos 8)"
expect_match "its mac stayed applied" "link/ether 02:00:00:00:04:04" "$(ip -d link show "$dev" | grep '^ *vf 4 ')"

expect "VFs off" OK "$(sysfs_write 0 "$D/sriov_numvfs")"
# netdevsim (6.1) answers ENOMEM, not ERANGE, above its debugfs max_vfs.
expect "max_vfs cap holds (65 > 64)" ENOMEM "$(sysfs_write 65 "$D/sriov_numvfs")"
lab_done
