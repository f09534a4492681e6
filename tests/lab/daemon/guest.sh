#!/usr/bin/env bash
# The daemon in the lab guest, one boot of two (run by tests/lab/two_boots.sh through run.sh):
#   guest.sh boot1|boot2 SRIOVD SRIOVD_CLI
# boot1: changes the host through sriovd-cli only (NVMe VFs, one bound to vfio-pci, igb VFs and
#        VF0's attributes), checks every answer and two refusals, stops the daemon with SIGTERM.
# boot2: a fresh kernel (no VFs): the daemon alone must bring the host back to the desired state
#        kept in /lab/state/sriovd, and report no drift.
. "$(dirname "${BASH_SOURCE[0]}")/../smoke/lib.sh"

phase=${1:?usage: guest.sh boot1|boot2 SRIOVD SRIOVD_CLI}
sriovd=${2:?}
cli_bin=${3:?}
state=/lab/state/sriovd
NVME=0000:02:00.0
IGB=0000:01:00.0
MAC=52:54:00:00:00:11
log=${LAB_OUT:-/tmp}/sriovd-$phase.log
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

igb_present=${LAB_IGB:-0}
[ -d /sys/bus/pci/devices/$IGB ] || igb_present=0
[ "$igb_present" = 1 ] || left_out "the igb checks: no igb in this QEMU (needs QEMU >= 8: bookworm-backports)"

case "$phase" in
boot1)
  rm -rf "$state"
  start_daemon

  t_mark
  # autoprobe off: nvme must not probe the VFs (it fails on QEMU's VFs: "Device not ready").
  run_cli "4 NVMe VFs, autoprobe off" 0 vfs $NVME 4 --autoprobe off
  expect "NVMe PF autoprobe (sysfs)" 0 "$(cat /sys/bus/pci/devices/$NVME/sriov_drivers_autoprobe)"
  echo "    $(t_since_mark)s"
  expect "NVMe num_vfs (--json device)" 4 "$(jdev $NVME .sriov.num_vfs)"
  expect "NVMe num_vfs (sysfs)" 4 "$(cat /sys/bus/pci/devices/$NVME/sriov_numvfs)"
  nvf1=$(vf_addr $NVME 1)
  expect "second NVMe VF is VF 1 of the PF" "$NVME 1" "$(jdev "$nvf1" '"\(.physfn) \(.vf_index)"')"
  t_mark
  run_cli "bind second NVMe VF $nvf1" 0 bind "$nvf1" vfio-pci
  echo "    $(t_since_mark)s"
  grp=$(jdev "$nvf1" .iommu_group)
  expect "VF driver (--json device)" vfio-pci "$(jdev "$nvf1" .driver)"
  expect "VF driver (sysfs)" vfio-pci "$(driver_of "$nvf1")"
  expect "iommu group matches sysfs" "$(group_of "$nvf1")" "$grp"
  expect "/dev/vfio/$grp exists" yes "$([ -c "/dev/vfio/$grp" ] && echo yes || echo no)"

  # Whole-group binding on the real kernel: every member of the third VF's IOMMU group moves to
  # vfio-pci and back (each NVMe VF has a group of its own behind the intel-iommu).
  nvf2=$(vf_addr $NVME 2)
  run_cli "bind the IOMMU group of $nvf2 to vfio-pci" 0 bind "$nvf2" vfio-pci --group
  expect "group member on vfio-pci (sysfs)" vfio-pci "$(driver_of "$nvf2")"
  expect "/dev/vfio/$(group_of "$nvf2") exists" yes "$([ -c "/dev/vfio/$(group_of "$nvf2")" ] && echo yes || echo no)"
  run_cli "the group back to its host driver (none: autoprobe off)" 0 bind "$nvf2" host --group
  expect "group member back to no driver (sysfs)" none "$(driver_of "$nvf2")"

  run_cli "change of NVMe VF count refused while a VF is on vfio-pci" 1 vfs $NVME 3
  expect_match "refusal names vfio-pci and the VF" "vfio-pci.*$nvf1" "$cli_out"
  echo "    refusal: $cli_out"
  expect "NVMe still 4 VFs" 4 "$(cat /sys/bus/pci/devices/$NVME/sriov_numvfs)"
  expect "VF still on vfio-pci" vfio-pci "$(driver_of "$nvf1")"

  if [ "$igb_present" = 1 ]; then
    # The host's network configuration has the PF up (networkd would; this guest has none).
    ip link set eth1 up
    t_mark
    run_cli "2 igb VFs" 0 vfs $IGB 2
    echo "    $(t_since_mark)s"
    expect "igb num_vfs (--json device)" 2 "$(jdev $IGB .sriov.num_vfs)"
    ivf0=$(vf_addr $IGB 0)
    t_mark
    # Right after the VF count change: igb_sriov_reinit has reset the PF's link, and igb refuses
    # VF rates until it is back; the agent waits for the link (RTNLGRP_LINK) and sets the rate.
    echo "    eth1 carrier before the rate: $(cat /sys/class/net/eth1/carrier 2>/dev/null || echo none)"
    run_cli "igb VF0 $ivf0 attributes" 0 vf "$ivf0" --mac $MAC --vlan 10 --qos 3 --spoofchk off --trust on --max-rate 100
    echo "    $(t_since_mark)s"
    expect "VF0 max_tx_rate (--json device)" 100 "$(jdev "$ivf0" .vf_config.max_tx_rate_mbps)"
    expect_match "VF0 max_tx_rate read back by ip" "max_tx_rate 100Mbps" "$(ip -d link show eth1 | grep '^ *vf 0 ')"
    want='52:54:00:00:00:11 10 3 false true'
    q='.vf_config | "\(.mac) \(.vlan) \(.qos) \(.spoofchk) \(.trust)"'
    expect "VF0 vf_config (--json device)" "$want" "$(jdev "$ivf0" "$q")"
    line=$(ip -d link show eth1 | grep '^ *vf 0 ')
    echo "    $line"
    expect_match "VF0 read back by ip" "link/ether $MAC.*vlan 10, qos 3.*spoof checking off.*trust on" "$line"

    run_cli "min rate on igb refused" 1 vf "$ivf0" --min-rate 10
    echo "    refusal: $cli_out"
    expect_match "refusal carries the kernel's EINVAL" "Invalid argument|EINVAL" "$cli_out"
    expect "VF0 MAC unchanged after the refusal" $MAC "$(jdev "$ivf0" .vf_config.mac)"
    expect_match "VF0 MAC unchanged (ip)" "link/ether $MAC" "$(ip -d link show eth1 | grep '^ *vf 0 ')"

    # igb refuses max_tx_rate while the PF has no link (igb_ndo_set_vf_bw: EINVAL): the agent
    # names the field and the reason, and the MAC sent in the same request is taken back.
    ip link set eth1 down
    run_cli "max rate on igb refused while the PF is down" 1 vf "$ivf0" --mac 52:54:00:00:00:99 --max-rate 200
    echo "    refusal: $cli_out"
    expect_match "refusal names max_tx_rate and the missing link" "max_tx_rate: eth1 has no link" "$cli_out"
    expect_match "VF0 MAC unchanged after the rate refusal (ip)" "link/ether $MAC" "$(ip -d link show eth1 | grep '^ *vf 0 ')"
    ip link set eth1 up
  fi
  expect "drift empty (--json host)" "[]" "$(cli --json host | jq -c .drift)"
  stop_daemon
  ;;
boot2)
  expect "fresh kernel: no NVMe VFs before the daemon" 0 "$(cat /sys/bus/pci/devices/$NVME/sriov_numvfs)"
  [ "$igb_present" = 1 ] && expect "fresh kernel: no igb VFs" 0 "$(cat /sys/bus/pci/devices/$IGB/sriov_numvfs)"
  echo "    NVMe PF sriov_drivers_autoprobe after the reboot: $(cat /sys/bus/pci/devices/$NVME/sriov_drivers_autoprobe)"
  [ "$igb_present" = 1 ] && ip link set eth1 up  # as networkd would at boot, before the daemon
  start_daemon
  expect "NVMe VFs restored (--json device)" 4 "$(jdev $NVME .sriov.num_vfs)"
  expect "NVMe VFs restored (sysfs)" 4 "$(cat /sys/bus/pci/devices/$NVME/sriov_numvfs)"
  nvf1=$(vf_addr $NVME 1)
  expect "second NVMe VF back on vfio-pci (--json device)" vfio-pci "$(jdev "$nvf1" .driver)"
  expect "second NVMe VF back on vfio-pci (sysfs)" vfio-pci "$(driver_of "$nvf1")"
  grp=$(group_of "$nvf1")
  expect "/dev/vfio/$grp exists" yes "$([ -c "/dev/vfio/$grp" ] && echo yes || echo no)"
  expect "NVMe PF autoprobe off again (sysfs)" 0 "$(cat /sys/bus/pci/devices/$NVME/sriov_drivers_autoprobe)"
  for i in 0 2 3; do expect "NVMe VF $i left without a driver" none "$(driver_of "$(vf_addr $NVME $i)")"; done
  if [ "$igb_present" = 1 ]; then
    expect "igb VFs restored" 2 "$(jdev $IGB .sriov.num_vfs)"
    ivf0=$(vf_addr $IGB 0)
    q='.vf_config | "\(.mac) \(.vlan) \(.qos) \(.spoofchk) \(.trust)"'
    expect "VF0 attributes restored (--json device)" '52:54:00:00:00:11 10 3 false true' "$(jdev "$ivf0" "$q")"
    line=$(ip -d link show eth1 | grep '^ *vf 0 ')
    echo "    $line"
    expect_match "VF0 restored (ip)" "link/ether $MAC.*vlan 10, qos 3.*spoof checking off.*trust on" "$line"
    # The VFs were made again at start, which reset igb's link: the rate waited for it.
    expect "VF0 max_tx_rate restored (--json device)" 100 "$(jdev "$ivf0" .vf_config.max_tx_rate_mbps)"
    expect_match "VF0 max_tx_rate restored (ip)" "max_tx_rate 100Mbps" "$line"
  fi
  drift=$(cli --json host | jq -c .drift)
  expect "drift empty (--json host)" "[]" "$drift"

  # Hotplug without udevd (busybox guest): the daemon follows the kernel's own uevents. A driver
  # bound and unbound behind its back shows up as device.changed events and in REST.
  expect_match "hotplug source is the kernel's (no udevd)" "hotplug: following kernel events" "$(cat "$log")"
  nvf0=$(vf_addr $NVME 0)
  # wait_event N: the Nth device.changed event of $nvf0 since the daemon started (up to 20 s).
  wait_event() { timeout 20 "$cli_bin" --socket "$sock" --json events --since 0 --type device.changed --address "$nvf0" --count "$1" | tail -n1; }
  t_mark
  echo vfio-pci > "/sys/bus/pci/devices/$nvf0/driver_override"
  echo "$nvf0" > /sys/bus/pci/drivers_probe
  ev=$(wait_event 1)
  echo "    $(t_since_mark)s: $ev"
  expect_match "bind by hand seen as an event" '"driver":\{"from":null,"to":"vfio-pci"\}' "$ev"
  expect "bind by hand seen in REST" vfio-pci "$(jdev "$nvf0" .driver)"
  echo "$nvf0" > /sys/bus/pci/drivers/vfio-pci/unbind
  echo > "/sys/bus/pci/devices/$nvf0/driver_override"
  ev=$(wait_event 2)
  expect_match "unbind by hand seen as an event" '"driver":\{"from":"vfio-pci","to":null\}' "$ev"
  expect "unbind by hand seen in REST" null "$(jdev "$nvf0" .driver)"
  stop_daemon
  ;;
*) echo "guest.sh: unknown phase $phase" >&2; exit 2 ;;
esac
[ "$lab_failures" = 0 ] || show_log
grep -i "reconcile\|ready in" "$log" | sed 's/^/  log: /'
lab_done
