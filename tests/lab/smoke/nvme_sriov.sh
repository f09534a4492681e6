#!/usr/bin/env bash
# Lab smoke (a): NVMe SR-IOV on the real kernel — VFs, links, IOMMU groups, the kernel's errnos.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pf=$(pci_by_id 0x1b36 0x0010) || { fail "no QEMU NVMe controller"; lab_done; exit; }
P=/sys/bus/pci/devices/$pf
total=$(cat "$P/sriov_totalvfs")
echo "NVMe PF $pf (driver $(driver_of "$pf")), sriov_totalvfs=$total"
expect "TotalVFs matches LAB_NVME_VFS" "${LAB_NVME_VFS:-16}" "$total"
expect "no VFs at boot" 0 "$(cat "$P/sriov_numvfs")"

expect "sriov_drivers_autoprobe=0" OK "$(sysfs_write 0 "$P/sriov_drivers_autoprobe")"
expect "write 8 to sriov_numvfs" OK "$(sysfs_write 8 "$P/sriov_numvfs")"
expect "sriov_numvfs reads 8" 8 "$(cat "$P/sriov_numvfs")"

links=$(ls -d "$P"/virtfn* 2>/dev/null | wc -l)
expect "8 virtfnN links" 8 "$links"
groups=()
for i in $(seq 0 7); do
  vf=$(basename "$(readlink -f "$P/virtfn$i")")
  phys=$(basename "$(readlink -f "/sys/bus/pci/devices/$vf/physfn")")
  [ "$phys" = "$pf" ] || fail "virtfn$i ($vf): physfn is $phys"
  [ "$(driver_of "$vf")" = none ] || fail "virtfn$i ($vf) bound to $(driver_of "$vf") despite autoprobe=0"
  g=$(group_of "$vf")
  [ "$g" != "$(group_of "$pf")" ] || fail "virtfn$i shares the PF's IOMMU group $g"
  [ "$(ls "/sys/kernel/iommu_groups/$g/devices" | wc -l)" = 1 ] || fail "group $g has more than $vf"
  groups+=("$g")
  echo "  virtfn$i -> $vf group $g vendor $(cat "/sys/bus/pci/devices/$vf/vendor") device $(cat "/sys/bus/pci/devices/$vf/device")"
done
expect "8 distinct IOMMU groups" 8 "$(printf '%s\n' "${groups[@]}" | sort -u | wc -l)"
pass "every VF has physfn -> $pf, no driver, its own group"

expect "write 4 while 8 are enabled" EBUSY "$(sysfs_write 4 "$P/sriov_numvfs")"
expect "write above TotalVFs" ERANGE "$(sysfs_write $((total + 1)) "$P/sriov_numvfs")"
expect "write 8 again (same value)" OK "$(sysfs_write 8 "$P/sriov_numvfs")"
expect_match "dmesg explains EBUSY" "8 VFs already enabled. Disable before enabling 4 VFs" "$(dmesg | tail -n 20)"
expect "write 0" OK "$(sysfs_write 0 "$P/sriov_numvfs")"
expect "sriov_numvfs reads 0" 0 "$(cat "$P/sriov_numvfs")"
expect "virtfn links gone" 0 "$(ls -d "$P"/virtfn* 2>/dev/null | wc -l)"
expect "write $total (all)" OK "$(sysfs_write "$total" "$P/sriov_numvfs")"
expect "virtfn links for all" "$total" "$(ls -d "$P"/virtfn* 2>/dev/null | wc -l)"
expect "write 0 again" OK "$(sysfs_write 0 "$P/sriov_numvfs")"
expect "restore sriov_drivers_autoprobe=1" OK "$(sysfs_write 1 "$P/sriov_drivers_autoprobe")"
lab_done
