#!/usr/bin/env bash
# Leases on the real kernel, one boot of two (run by tests/lab/two_boots.sh through run.sh):
#   guest.sh boot1|boot2 SRIOVD SRIOVD_CLI
# boot1: pools over NVMe VFs (vfio) and, with igb, over igb VFs (netdev and vfio, with VF
#        attributes); leases taken and checked on sysfs, /dev/vfio and `ip -d link`; the
#        interlocks (VF count of a PF with a leased VF, a group that is not viable, an igb VF's
#        netdev with an address and a route: refused naming them, then forced); releases
#        checked for driver, VF attributes and the function reset. One NVMe lease and the igb
#        vfio lease are kept.
# boot2: a fresh kernel: the daemon restores the kept leases (VFs recreated, vfio-pci, VF
#        attributes), and releasing them then gives the VFs back to their host drivers.
# The function reset is seen from the kernel's side: a kretprobe on pci_reset_function counts the
# calls that came through the `reset` attribute (reset_store) and what they returned.
. "$(dirname "${BASH_SOURCE[0]}")/../smoke/lib.sh"

phase=${1:?usage: guest.sh boot1|boot2 SRIOVD SRIOVD_CLI}
sriovd=${2:?}
cli_bin=${3:?}
state=/lab/state/sriovd
kept=/lab/state/kept-leases
log=${LAB_OUT:-/tmp}/sriovd-leases-$phase.log
. "$(dirname "${BASH_SOURCE[0]}")/../daemon/lib.sh"

NVME=0000:02:00.0
IGB=0000:01:00.0
PF_IF=eth1            # igb's netdev: no udev renames it in the lab
MAC_NET=52:54:00:00:00:31
MAC_VFIO=52:54:00:00:00:32
MAC_FOUND=52:54:00:00:00:30   # set by hand on VF0 before its lease: the release gives it back
MAC_OWN=02:00:00:00:00:99     # set by the consumer during the lease, as a DPDK application does
CLEAN_VF='link/ether 00:00:00:00:00:00 brd ff:ff:ff:ff:ff:ff, spoof checking on, link-state auto, trust off$'
VFQ='.vf_config | "\(.mac) \(.vlan) \(.qos) \(.spoofchk) \(.trust)"'

igb_present=${LAB_IGB:-0}
[ -d /sys/bus/pci/devices/$IGB ] || igb_present=0
[ "$igb_present" = 1 ] || left_out "the igb checks: no igb in this QEMU (needs QEMU >= 8: bookworm-backports)"

trace=/sys/kernel/tracing
reset_probe() {
  mountpoint -q $trace || mount -t tracefs nodev $trace || { fail "cannot mount tracefs"; return; }
  echo 'r:sriovd_lab_reset pci_reset_function ret=$retval:s32' > $trace/kprobe_events &&
    echo 1 > $trace/events/kprobes/sriovd_lab_reset/enable || fail "cannot set the kretprobe on pci_reset_function"
}
# resets: "OK FAILED": pci_reset_function calls from reset_store since reset_probe, by result.
resets() {
  awk '/reset_store.*<- pci_reset_function/ { if ($NF == "ret=0") ok++; else bad++ }
       END { printf "%d %d\n", ok, bad }' $trace/trace
}
# expect_reset DESC BEFORE: one more successful reset through `reset` than BEFORE, no failed one.
expect_reset() {
  local ok bad b_ok b_bad
  read -r b_ok b_bad <<< "$2"; read -r ok bad <<< "$(resets)"
  expect "$1: function reset written, kernel returned 0" "$((b_ok + 1)) $b_bad" "$ok $bad"
}
# vf_line N: VF N's line of `ip -d link show` on the igb PF.
vf_line() { ip -d link show $PF_IF | grep "^ *vf $1 "; }
dev_vfio() { [ -c "/dev/vfio/$(group_of "$1")" ] && echo yes || echo no; }
# alloc_json DESC ARGS...: a lease through `sriovd-cli --json alloc`; its JSON in $lease_json.
lease_json=""
alloc_json() {
  local desc=$1; shift
  run_cli "$desc" 0 --json alloc "$@"
  lease_json=$cli_out
}
# expect_active DESC ID ADDRESS: `lease ID` (table) shows it active on ADDRESS; the device
# names it.
expect_active() {
  local line
  line=$(cli lease "$2" | grep "^$2 ")
  expect_match "$1: \`lease\` shows it active" "^$2 .* $3 .* active " "$line"
  expect "$1: the device carries the lease (--json device)" "$2" "$(jdev "$3" .lease)"
}
# release_checked DESC ID ADDRESS DRIVER: `release ID` answers, the lease is gone, the device is
# back on DRIVER (none: no driver), and the function was reset.
release_checked() {
  local before; before=$(resets)
  t_mark
  run_cli "$1: release" 0 --json release "$2"
  release_json=$cli_out
  echo "    $(t_since_mark)s: $(jq -c .lease.release_report <<< "$release_json")"
  expect "$1: the release report says every attribute is back" true "$(jq .lease.release_report.clean <<< "$release_json")"
  expect "$1: back on its previous driver (sysfs)" "$4" "$(driver_of "$3")"
  local want=$4; [ "$want" = none ] && want=null
  expect "$1: back on its previous driver (--json device)" "$want" "$(jdev "$3" .driver)"
  expect "$1: no driver_override left" "(null)" "$(cat "/sys/bus/pci/devices/$3/driver_override")"
  expect "$1: the device has no lease" null "$(jdev "$3" .lease)"
  run_cli "$1: the lease is gone" 1 lease "$2"
  expect_reset "$1" "$before"
}

case "$phase" in
boot1)
  rm -rf "$state" "$kept"
  reset_probe
  if [ "$igb_present" = 1 ]; then
    # igbvf probes each VF as it is created; with the PF's link up its mailbox answers sooner
    # (~2 s a VF instead of ~4 s).
    modprobe igbvf && ip link set $PF_IF up || fail "igbvf / $PF_IF up"
  fi
  start_daemon

  # --- NVMe VFs in a vfio pool -------------------------------------------------------------
  run_cli "4 NVMe VFs, autoprobe off" 0 vfs $NVME 4 --autoprobe off
  run_cli "vfio pool over the NVMe VFs" 0 pool create nvme --vendor 1b36
  expect "the pool holds the 4 VFs, all free" "4 4" "$(cli --json pool show nvme | jq -r '"\(.capacity) \(.free)"')"
  t_mark
  alloc_json "NVMe lease A" nvme --name vm-a --consumer vm
  echo "    $(t_since_mark)s"
  lease_a=$(jq -r .id <<< "$lease_json"); vf_a=$(jq -r .address <<< "$lease_json")
  expect "lease A is active" active "$(jq -r .state <<< "$lease_json")"
  expect "lease A: its VF on vfio-pci (sysfs)" vfio-pci "$(driver_of "$vf_a")"
  expect "lease A: /dev/vfio/$(group_of "$vf_a") exists" yes "$(dev_vfio "$vf_a")"
  expect_match "lease A: libvirt XML names the VF" "<hostdev mode=.subsystem. type=.pci." "$(jq -r .libvirt_xml <<< "$lease_json")"
  expect_active "lease A" "$lease_a" "$vf_a"

  alloc_json "NVMe lease B" nvme --name vm-b --consumer vm
  lease_b=$(jq -r .id <<< "$lease_json"); vf_b=$(jq -r .address <<< "$lease_json")
  expect "lease B: another VF" yes "$([ "$vf_b" != "$vf_a" ] && echo yes || echo no)"
  expect "lease B: its VF on vfio-pci (sysfs)" vfio-pci "$(driver_of "$vf_b")"
  expect_active "lease B" "$lease_b" "$vf_b"
  release_checked "lease B" "$lease_b" "$vf_b" none

  # --- a function reset the kernel refuses: the release completes and says so ----------------
  # With every reset method disabled (an empty reset_method), pci_reset_function answers ENOTTY.
  alloc_json "NVMe lease E" nvme --name vm-e --consumer vm
  lease_e=$(jq -r .id <<< "$lease_json"); vf_e=$(jq -r .address <<< "$lease_json")
  echo > "/sys/bus/pci/devices/$vf_e/reset_method"
  before=$(resets)
  run_cli "lease E: release with no reset method" 0 --json release "$lease_e"
  expect "lease E: the answer says the reset failed" failed "$(jq -r .lease.reset <<< "$cli_out")"
  expect_match "lease E: the answer gives the kernel's reason" "no reset method worked" "$(jq -r .lease.reset_error <<< "$cli_out")"
  read -r b_ok b_bad <<< "$before"; read -r ok bad <<< "$(resets)"
  expect "lease E: the kernel refused one reset through \`reset\`" "$b_ok $((b_bad + 1))" "$ok $bad"
  expect "lease E: back without a driver (sysfs)" none "$(driver_of "$vf_e")"
  expect "lease E: the device has no lease" null "$(jdev "$vf_e" .lease)"
  echo default > "/sys/bus/pci/devices/$vf_e/reset_method"

  # --- interlock: the VF count of a PF with a leased VF ---------------------------------------
  expect "num_vfs change with a leased VF: HTTP status" 409 "$(http_status PUT /v1/devices/$NVME/sriov '{"num_vfs": 2}')"
  run_cli "num_vfs change with a leased VF refused" 1 vfs $NVME 2
  echo "    refusal: $cli_out"
  expect_match "the refusal names the leased VF" "leased VFs: $vf_a" "$cli_out"
  expect "NVMe still 4 VFs (sysfs)" 4 "$(cat /sys/bus/pci/devices/$NVME/sriov_numvfs)"
  expect "lease A's VF still on vfio-pci" vfio-pci "$(driver_of "$vf_a")"

  # --- interlock: a device whose IOMMU group is not viable ------------------------------------
  # The q35 chipset's functions (00:1f.0 LPC, 00:1f.2 SATA, 00:1f.3 SMBus) have no ACS and share
  # one group; with i2c_i801 on the SMBus function, the SATA function cannot be handed out.
  sata=0000:00:1f.2; smbus=0000:00:1f.3
  if [ -e /sys/bus/pci/devices/$sata ] && [ -e /sys/bus/pci/devices/$smbus ] &&
     [ "$(group_of $sata)" = "$(group_of $smbus)" ]; then
    modprobe i2c_i801
    expect "SMBus function bound to its host driver" i801_smbus "$(driver_of $smbus)"
    body='{"address": "'$sata'", "consumer": {"kind": "vm", "name": "vm-x"}}'
    expect "lease in a group that is not viable: HTTP status" 409 "$(http_status POST /v1/allocations "$body")"
    run_cli "lease in a group that is not viable refused" 1 alloc --address $sata --name vm-x
    echo "    refusal: $cli_out"
    expect_match "the refusal names the group and its member on a host driver" \
      "IOMMU group $(group_of $sata) .*not viable.*$smbus \(i801_smbus\)" "$cli_out"
    expect_match "the refusal says the group goes whole" "VFIO hands a group to one user whole" "$cli_out"
    expect "the SATA function left alone" none "$(driver_of $sata)"
  else
    echo "note: no IOMMU group shared by 00:1f.2 and 00:1f.3 in this machine: the non-viable group check is left out"
  fi

  # --- igb VFs: a netdev pool and a vfio pool, with VF attributes ----------------------------
  if [ "$igb_present" = 1 ]; then
    # An altname on the PF (as a distribution's naming policy adds them): pf_names match it. It
    # is read with the PF, which the VF count change below reads again.
    ip link property add dev $PF_IF altname enp1s0f0np0 || fail "ip link property add dev $PF_IF altname"
    t_mark
    run_cli "2 igb VFs (igbvf takes them)" 0 vfs $IGB 2
    echo "    $(t_since_mark)s"
    ivf0=$(vf_addr $IGB 0); ivf1=$(vf_addr $IGB 1)
    expect "igb VF0 on igbvf" igbvf "$(driver_of "$ivf0")"
    expect "igb VF1 on igbvf" igbvf "$(driver_of "$ivf1")"
    expect "igb PF altname (--json device)" enp1s0f0np0 "$(jdev $IGB '.altnames[0]')"
    run_cli "pool by the PF's altname" 0 pool create igbalt --pf enp1s0f0np0
    expect "the altname's pool holds both igb VFs" 2 "$(cli --json pool show igbalt | jq .capacity)"
    run_cli "pool by altname deleted" 0 pool delete igbalt
    run_cli "pool by the PF's address" 0 pool create igbaddr --pf-address "$IGB#1"
    expect "the address pool holds VF1" "$ivf1" "$(cli --json pool show igbaddr | jq -r '.devices[0].address')"
    run_cli "pool by address deleted" 0 pool delete igbaddr
    expect "igb PF link type (--json device)" "ether false" "$(jdev $IGB '"\(.link_type) \(.rdma)"')"
    run_cli "pool of Ethernet VFs without RDMA" 0 pool create igbeth --pf $PF_IF --link-type ether --rdma no
    expect "it holds both igb VFs" 2 "$(cli --json pool show igbeth | jq .capacity)"
    run_cli "pool of Ethernet VFs deleted" 0 pool delete igbeth
    run_cli "pool of RDMA VFs" 0 pool create igbrdma --pf $PF_IF --rdma yes
    expect "igb has no RDMA: the pool is empty" 0 "$(cli --json pool show igbrdma | jq .capacity)"
    run_cli "pool of RDMA VFs deleted" 0 pool delete igbrdma
    run_cli "netdev pool over VF0" 0 pool create igbnet --pf "$PF_IF#0" --mode netdev
    run_cli "vfio pool over VF1" 0 pool create igbvfio --pf "$PF_IF#1"

    # MTU: the PF's through sriovd (IFLA_MTU), kept for the reboot; a VF's never above it.
    run_cli "igb PF MTU 9000" 0 mtu $IGB 9000
    expect "igb PF MTU (sysfs)" 9000 "$(cat /sys/class/net/$PF_IF/mtu)"
    expect "igb PF MTU (--json device)" 9000 "$(jdev $IGB .mtu)"
    run_cli "VF1 MTU above the PF's refused" 1 vf "$ivf1" --mtu 9100
    expect_match "the refusal names the VF and the PF" "mtu 9100 of VF $ivf1 is above the MTU 9000 of its PF $IGB" "$cli_out"
    expect "igb PF MTU above igb's maximum: HTTP status" 422 "$(http_status PUT /v1/devices/$IGB/mtu '{"mtu": 9500}')"
    vnet0=$(ls "/sys/bus/pci/devices/$ivf0/net" 2>/dev/null | head -1)
    found_mtu=$(cat "/sys/class/net/$vnet0/mtu")
    # What the operator left on VF0 by hand (no uevent tells the daemon): the lease notes it.
    ip link set $PF_IF vf 0 mac $MAC_FOUND spoofchk off || fail "ip link set $PF_IF vf 0"
    alloc_json "igb netdev lease C" igbnet --name pod-c --consumer pod --mac $MAC_NET --vlan 10 --qos 3 \
      --spoofchk off --trust on --mtu 9000
    expect "lease C: VF0's netdev MTU (sysfs)" 9000 "$(cat "/sys/class/net/$vnet0/mtu")"
    run_cli "igb PF MTU below the leased VF0's refused" 1 mtu $IGB 1500
    expect_match "the refusal names VF0" "below the MTU of its VFs $ivf0" "$cli_out"
    expect "igb PF MTU unchanged (sysfs)" 9000 "$(cat /sys/class/net/$PF_IF/mtu)"
    expect "lease C: what VF0 had is noted (found_vf_config)" "$MAC_FOUND false false" \
      "$(jq -r '.found_vf_config | "\(.mac) \(.spoofchk) \(.trust)"' <<< "$lease_json")"
    lease_c=$(jq -r .id <<< "$lease_json")
    expect "lease C is VF0" "$ivf0" "$(jq -r .address <<< "$lease_json")"
    expect "lease C: VF0 keeps igbvf (netdev mode)" igbvf "$(driver_of "$ivf0")"
    expect "lease C: VF0 vf_config (--json device)" "$MAC_NET 10 3 false true" "$(jdev "$ivf0" "$VFQ")"
    echo "    $(vf_line 0)"
    expect_match "lease C: VF0 read back by ip" "link/ether $MAC_NET .*vlan 10, qos 3.*spoof checking off.*trust on" "$(vf_line 0)"
    expect_active "lease C" "$lease_c" "$ivf0"

    # A netdev lease keeps the VF on its host driver: only the lease interlock stops this.
    expect "igb num_vfs change with a leased VF: HTTP status" 409 "$(http_status PUT /v1/devices/$IGB/sriov '{"num_vfs": 1}')"
    run_cli "igb num_vfs change with a leased VF refused" 1 vfs $IGB 1
    expect_match "the refusal names the leased VF" "leased VFs: $ivf0" "$cli_out"
    expect "igb still 2 VFs (sysfs)" 2 "$(cat /sys/bus/pci/devices/$IGB/sriov_numvfs)"

    t_mark
    alloc_json "igb vfio lease D" igbvfio --name vm-d --consumer vm --mac $MAC_VFIO --vlan 20
    echo "    $(t_since_mark)s"
    lease_d=$(jq -r .id <<< "$lease_json")
    expect "lease D is VF1" "$ivf1" "$(jq -r .address <<< "$lease_json")"
    expect "lease D: VF1 on vfio-pci (sysfs)" vfio-pci "$(driver_of "$ivf1")"
    expect "lease D: /dev/vfio/$(group_of "$ivf1") exists" yes "$(dev_vfio "$ivf1")"
    expect_match "lease D: VF1 read back by ip" "link/ether $MAC_VFIO .*vlan 20,.*spoof checking on.*trust off" "$(vf_line 1)"
    expect_active "lease D" "$lease_d" "$ivf1"

    # The consumer changes the MAC itself during the lease; the release undoes that too.
    ip link set $PF_IF vf 0 mac $MAC_OWN || fail "ip link set $PF_IF vf 0 mac $MAC_OWN"
    release_checked "lease C" "$lease_c" "$ivf0" igbvf
    echo "    $(vf_line 0)"
    expect_match "lease C: VF0 as it was found (ip)" \
      "link/ether $MAC_FOUND brd ff:ff:ff:ff:ff:ff, spoof checking off, link-state auto, trust off$" "$(vf_line 0)"
    expect "lease C: VF0 vf_config as found (--json device)" "$MAC_FOUND 0 0 false false" "$(jdev "$ivf0" "$VFQ")"
    expect "lease C: the report's MAC" "restored $MAC_OWN $MAC_FOUND" \
      "$(jq -r '.lease.release_report.attributes.mac | "\(.status) \(.before) \(.now)"' <<< "$release_json")"
    expect "lease C: the report's VLAN" "restored 10 0" \
      "$(jq -r '.lease.release_report.attributes.vlan | "\(.status) \(.before) \(.now)"' <<< "$release_json")"
    expect "lease C: VF0's netdev MTU given back (sysfs)" "$found_mtu" "$(cat "/sys/class/net/$vnet0/mtu")"
    expect "lease C: the report's MTU" "restored 9000 $found_mtu" \
      "$(jq -r '.lease.release_report.attributes.mtu | "\(.status) \(.before) \(.now)"' <<< "$release_json")"
    expect "lease C: the report's spoofchk (the lease set what was there)" unchanged \
      "$(jq -r .lease.release_report.attributes.spoofchk.status <<< "$release_json")"
    expect "sriovd_lease_releases_total: no release came back unclean" 0 \
      "$(curl -s --unix-socket "$sock" http://sriovd/metrics | awk '/^sriovd_lease_releases_total\{result="differs"\}/ {print $2}')"

    # The "netdev in use" interlock on a real VF netdev: with an address and a route on it, an
    # unbind is refused naming them, and goes through with force.
    vnet=$(ls "/sys/bus/pci/devices/$ivf0/net" 2>/dev/null | head -1)
    expect_match "VF0 has a netdev on igbvf" "." "$vnet"
    { ip addr add 192.0.2.10/24 dev "$vnet" && ip link set "$vnet" up &&
        ip route add 198.51.100.0/24 via 192.0.2.1 dev "$vnet"; } || fail "address and route on $vnet"
    expect "unbind of VF0 in use: HTTP status" 409 "$(http_status PUT "/v1/devices/$ivf0/driver" '{"driver": "vfio-pci"}')"
    run_cli "unbind of VF0 in use refused" 1 bind "$ivf0" vfio-pci
    echo "    refusal: $cli_out"
    expect_match "the refusal names the netdev, its address and routes" \
      "netdev $vnet of $ivf0 is up with addresses 192\.0\.2\.10/24 and [0-9]+ route" "$cli_out"
    expect "VF0 still on igbvf after the refusal" igbvf "$(driver_of "$ivf0")"
    run_cli "unbind of VF0 with force" 0 bind "$ivf0" vfio-pci --force
    expect "VF0 on vfio-pci after force" vfio-pci "$(driver_of "$ivf0")"
    run_cli "VF0 back to its host driver" 0 bind "$ivf0" host
    expect "VF0 back on igbvf" igbvf "$(driver_of "$ivf0")"
    printf 'lease_d=%s\nivf1=%s\n' "$lease_d" "$ivf1" >> "$kept"
  fi
  printf 'lease_a=%s\nvf_a=%s\n' "$lease_a" "$vf_a" >> "$kept"
  expect "drift empty (--json host)" "[]" "$(cli --json host | jq -c .drift)"
  stop_daemon
  ;;
boot2)
  # shellcheck disable=SC1090
  . "$kept" || { fail "no leases kept by boot 1"; lab_done; exit 1; }
  reset_probe
  expect "fresh kernel: no NVMe VFs" 0 "$(cat /sys/bus/pci/devices/$NVME/sriov_numvfs)"
  if [ "$igb_present" = 1 ]; then
    expect "fresh kernel: no igb VFs" 0 "$(cat /sys/bus/pci/devices/$IGB/sriov_numvfs)"
    modprobe igbvf && ip link set $PF_IF up || fail "igbvf / $PF_IF up"
  fi
  t_mark
  start_daemon
  expect "lease A restored: NVMe VFs recreated (sysfs)" 4 "$(cat /sys/bus/pci/devices/$NVME/sriov_numvfs)"
  expect "lease A restored: its VF on vfio-pci (sysfs)" vfio-pci "$(driver_of "$vf_a")"
  expect "lease A restored: /dev/vfio/$(group_of "$vf_a") exists" yes "$(dev_vfio "$vf_a")"
  expect_active "lease A restored" "$lease_a" "$vf_a"
  if [ "$igb_present" = 1 ]; then
    expect "lease D restored: igb VFs recreated (sysfs)" 2 "$(cat /sys/bus/pci/devices/$IGB/sriov_numvfs)"
    expect "igb PF MTU set again at start (sysfs)" 9000 "$(cat /sys/class/net/$PF_IF/mtu)"
    expect "lease D restored: VF1 on vfio-pci (sysfs)" vfio-pci "$(driver_of "$ivf1")"
    echo "    $(vf_line 1)"
    expect_match "lease D restored: VF1 attributes (ip)" "link/ether $MAC_VFIO .*vlan 20," "$(vf_line 1)"
    expect_active "lease D restored" "$lease_d" "$ivf1"
    expect "VF0 (released before the reboot) on igbvf" igbvf "$(driver_of "$(vf_addr $IGB 0)")"
  fi
  expect "drift empty (--json host)" "[]" "$(cli --json host | jq -c .drift)"
  grep "reconcile: lease" "$log" | sed 's/^/  log: /'

  release_checked "lease A after the reboot" "$lease_a" "$vf_a" none
  if [ "$igb_present" = 1 ]; then
    release_checked "lease D after the reboot" "$lease_d" "$ivf1" igbvf
    echo "    $(vf_line 1)"
    expect_match "lease D: VF1 attributes reset (ip)" "$CLEAN_VF" "$(vf_line 1)"
  fi
  expect "no leases left" 0 "$(cli --json leases | jq '.allocations | length')"
  if [ "$igb_present" = 1 ]; then
    # PF-link health on the real kernel: the PF taken down and up again sends no uevent, only
    # rtnetlink link notifications, which the daemon follows.
    run_cli "igb pools of boot 1 deleted" 0 pool delete igbnet
    run_cli "igb vfio pool deleted" 0 pool delete igbvfio
    run_cli "pool of igb VFs with PF-link health" 0 pool create igbup --pf $PF_IF --pf-link-health
    ivf0=$(vf_addr $IGB 0)
    until_true 20 'test "$(jdev "$ivf0" .pf_link.carrier)" = true'
    expect "VF0 reports its PF's carrier (--json device)" "true up" "$(jdev "$ivf0" '"\(.pf_link.carrier) \(.pf_link.operstate)"')"
    expect "both members healthy" 0 "$(cli --json pool show igbup | jq .unhealthy)"
    t_mark
    ip link set $PF_IF down || fail "ip link set $PF_IF down"
    if until_true 10 'test "$(cli --json pool show igbup | jq .unhealthy)" = 2'; then
      pass "the PF down reached the pool in $(t_since_mark)s"
    else fail "members still healthy 10 s after $PF_IF went down"; fi
    expect "the reason names the PF" "its PF $PF_IF ($IGB) has no carrier (operstate down)" \
      "$(cli --json pool show igbup | jq -r '.devices[0].reason')"
    expect "the PF's link (--json device): no carrier to read while down" "null down" \
      "$(jdev $IGB '"\(.link.carrier) \(.link.operstate)"')"
    # igb's link comes back once its watchdog sees autonegotiation done: that wait is the
    # device's; the daemon's part is from the carrier to the pool.
    t_mark
    ip link set $PF_IF up || fail "ip link set $PF_IF up"
    if until_true 60 'test "$(cat /sys/class/net/$PF_IF/carrier 2>/dev/null)" = 1'; then
      pass "igb's carrier back (sysfs) in $(t_since_mark)s"
    else fail "$PF_IF has no carrier 60 s after it came up"; fi
    t_mark
    if until_true 10 'test "$(cli --json pool show igbup | jq .unhealthy)" = 0'; then
      pass "the carrier back reached the pool in $(t_since_mark)s"
    else fail "members not healthy 10 s after $PF_IF got its carrier: $(cli --json pool show igbup | jq -c .devices)"; fi
    expect "VF0's pf_link back up" "true up" "$(jdev "$ivf0" '"\(.pf_link.carrier) \(.pf_link.operstate)"')"
    expect_match "no hotplug failure logged" "^$" "$(grep -i "hotplug.*fail\|were lost" "$log")"
  fi
  stop_daemon
  ;;
*) echo "guest.sh: unknown phase $phase" >&2; exit 2 ;;
esac
echo "  kernel's record of the resets:"; grep -v '^#' $trace/trace | sed 's/^ */    /'
[ "$lab_failures" = 0 ] || show_log
lab_done
