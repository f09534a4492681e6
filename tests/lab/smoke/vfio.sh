#!/usr/bin/env bash
# Lab smoke (b): binding an NVMe VF to vfio-pci through driver_override, and back.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pf=$(pci_by_id 0x1b36 0x0010) || { fail "no QEMU NVMe controller"; lab_done; exit; }
P=/sys/bus/pci/devices/$pf
expect "vfio-pci driver registered" yes "$([ -d /sys/bus/pci/drivers/vfio-pci ] && echo yes || echo no)"
expect "/dev/vfio/vfio exists" yes "$([ -c /dev/vfio/vfio ] && echo yes || echo no)"
expect "autoprobe off" OK "$(sysfs_write 0 "$P/sriov_drivers_autoprobe")"
expect "2 VFs" OK "$(sysfs_write 2 "$P/sriov_numvfs")"
vf=$(basename "$(readlink -f "$P/virtfn1")")
V=/sys/bus/pci/devices/$vf
g=$(group_of "$vf")
echo "VF $vf, IOMMU group $g"
expect "VF unbound" none "$(driver_of "$vf")"
expect "no /dev/vfio/$g yet" no "$([ -e "/dev/vfio/$g" ] && echo yes || echo no)"

expect "driver_override=vfio-pci" OK "$(sysfs_write vfio-pci "$V/driver_override")"
expect "drivers_probe" OK "$(sysfs_write "$vf" /sys/bus/pci/drivers_probe)"
expect "VF bound to vfio-pci" vfio-pci "$(driver_of "$vf")"
expect "/dev/vfio/$g appears" yes "$([ -c "/dev/vfio/$g" ] && echo yes || echo no)"
# Opening the group file works (the container/device ioctls are the daemon's business).
if { exec 3<>"/dev/vfio/$g"; } 2>/dev/null; then exec 3>&-; pass "open /dev/vfio/$g"; else fail "open /dev/vfio/$g"; fi
other=$(basename "$(readlink -f "$P/virtfn0")")
expect "the other VF stays unbound" none "$(driver_of "$other")"

expect "unbind from vfio-pci" OK "$(sysfs_write "$vf" /sys/bus/pci/drivers/vfio-pci/unbind)"
expect "VF unbound again" none "$(driver_of "$vf")"
expect "/dev/vfio/$g gone" no "$([ -e "/dev/vfio/$g" ] && echo yes || echo no)"
expect "clear driver_override" OK "$(sysfs_write "" "$V/driver_override")"
expect "driver_override reads (null)" "(null)" "$(cat "$V/driver_override")"
expect "remove VFs" OK "$(sysfs_write 0 "$P/sriov_numvfs")"
expect "restore autoprobe" OK "$(sysfs_write 1 "$P/sriov_drivers_autoprobe")"
lab_done
