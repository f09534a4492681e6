#include "sim/sriov.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>

#include "pci/decode.h"
#include "sim/driver_core.h"
#include "sim/drivers.h"
#include "sim/eswitch.h"
#include "sim/file_io.h"
#include "sim/hotplug.h"
#include "sim/kstrtox.h"
#include "sim/netdevs.h"
#include "sim/reboot.h"
#include "sim/sim_tree.h"
#include "sim/stores.h"
#include "sim/vfio.h"

namespace sriovd::kernel::sim {

using namespace simio;

Result<void> disable_sriov(Call& cx, const Dev& pf) {
  // Removing a VF bound to vfio-pci waits for its users to close it (sim/vfio.h); every VF is
  // waited for before the first goes, so a wait that gives up leaves the VFs as they were.
  for (const auto& [i, vf] : cx.virtfns(pf))
    if (auto vd = cx.dev(vf); vd && cx.driver_of(*vd) == std::string("vfio-pci"))
      if (auto g = cx.iommu_group_of(*vd))
        if (auto r = wait_until_closed(cx.root(), *g, vd->name()); !r) return r;
  for (const auto& [i, vf] : cx.virtfns(pf)) {
    // pci_stop_and_remove_bus_device(): the VF's netdevs and driver go, then the device.
    if (auto vd = cx.dev(vf)) {
      cx.net_uevents("remove", *vd);
      if (cx.driver_of(*vd)) cx.uevent("unbind", vd->dir, "pci");
      cx.pci_uevent("remove", *vd);
    }
    if (auto r = simtree::remove_function(cx.root(), vf); !r) return r;
  }
  // No "change" for the PF: only sriov_enable() sends one; the VFs' own events say they went.
  if (auto r = simtree::write_numvfs(cx.root(), pf.addr, 0); !r) return r;
  if (auto r = sync_representors(cx, pf); !r) return r;  // switchdev: the VFs' representors go too
  cx.sriov_disabled = true;  // then ssleep(1) with VF Enable cleared: SimKernel::write_attr waits
  if (auto r = cx.clear_vfs_attrs(pf); !r) return r;
  // igb_disable_sriov() runs from igb_sriov_reinit(), which closes and reopens the PF netdev.
  if (cx.driver_of(pf) == std::string("igb")) return reinit_link(cx, pf);
  return ok();
}

Result<void> enable_sriov(Call& cx, const Dev& pf, unsigned n) {
  if (auto r = cx.clear_vfs_attrs(pf); !r) return r;
  simtree::VfOptions o;
  const auto group = cx.iommu_group_of(pf);
  o.iommu_groups = group.has_value();
  // drivers/iommu/iommu.c pci_device_group(): a VF's group is found by walking up from its bus
  // to the first bridge with ACS (pci_acs_path_enabled); a bridge without it has its group
  // returned. The PF went through the same walk, so a PF sharing its upstream bridge's group
  // says the path lacks ACS: its VFs join that group too instead of getting groups of their own.
  if (group)
    if (auto up = PciAddress::parse(pf.dir.parent_path().filename().string()))
      if (auto ud = cx.dev(*up); ud && cx.iommu_group_of(*ud) == group) o.shared_iommu_group = group;
  if (group)
    if (auto t = read_text(cx.abs(fs::path("kernel/iommu_groups") / std::to_string(*group) / "type")))
      if (!trim(*t).empty()) o.iommu_group_type = trim(*t);
  const Ids pids = cx.ids_of(pf);
  if (const BootDevice* b = cx.boot().find(pf.addr); b && b->vf_subsystem_device) {
    o.subsystem_device = b->vf_subsystem_device;
  } else if (auto vfdev = read_text(pf.in("sriov_vf_device"))) {
    if (auto id = pci::parse_bare_hex16(*vfdev))
      if (const KnownVf* k = known_vf(pids.vendor, *id); k && k->subsystem_device >= 0)
        o.subsystem_device = static_cast<uint16_t>(k->subsystem_device);
  }
  auto vfs = simtree::add_vfs(cx.root(), pf.addr, n, o);
  if (!vfs) return std::move(vfs).error();
  if (auto r = simtree::write_numvfs(cx.root(), pf.addr, n); !r) return r;
  const auto pf_driver = cx.driver_of(pf);
  for (unsigned i = 0; i < vfs->size(); ++i) {
    const PciAddress& a = (*vfs)[i];
    auto vd = cx.dev(a);
    if (!vd) return std::move(vd).error();
    if (pf_driver == "vfio-pci")  // vfio_pci_bus_notifier: "Captured SR-IOV VF ... driver_override"
      if (auto r = write_text(vd->in("driver_override"), "vfio-pci\n"); !r) return r;
    cx.pci_uevent("add", *vd);
    // pci_iov_sysfs_link(): the "add" went out before the virtfnN/physfn links existed; a
    // "change" follows once they do, before any driver probes the VF.
    cx.pci_uevent("change", *vd);
    if (auto r = attach(cx, *vd, i); !r) return std::move(r).error();
  }
  cx.pci_uevent("change", pf);  // sriov_enable(): kobject_uevent(KOBJ_CHANGE) once the VFs are added
  if (auto r = sync_representors(cx, pf); !r) return r;  // switchdev: a representor per new VF
  if (pf_driver == "igb") return reinit_link(cx, pf);    // igb_sriov_reinit(): the link goes and comes back
  return ok();
}

std::optional<std::string> no_sriov_configure(Call& cx, const std::string& drv) {
  if (drv == "pci-stub" || drv == "uio_pci_generic" || drv == "igb_uio")
    return "driver does not support SR-IOV configuration via sysfs";
  if (drv == "vfio-pci") {
    auto t = read_text(cx.abs("module/vfio_pci/parameters/enable_sriov"));
    bool on = false;
    if (t) kstrtobool(c_str_of(*t).c_str(), &on);
    if (!on) return "vfio-pci: SR-IOV needs the enable_sriov module parameter";
  }
  return std::nullopt;
}

Result<void> store_sriov_numvfs(Call& cx, const Dev& pf, const std::string& buf) {
  unsigned long long v = 0;
  if (kstrtoull(buf.c_str(), 0, &v) < 0 || v > 0xffff)  // kstrtou16 < 0 → -EINVAL
    return Error::sys(EINVAL, pf.name() + ": sriov_numvfs \"" + trim(buf) + "\" is not a number");
  const auto want = static_cast<unsigned>(v);
  const unsigned total = cx.read_uint(pf, "sriov_totalvfs");
  if (want > total)
    return Error::sys(
        ERANGE, pf.name() + ": " + std::to_string(want) + " VFs requested, sriov_totalvfs is " + std::to_string(total));
  const unsigned cur = cx.num_vfs(pf);
  if (want == cur) return ok();
  const auto drv = cx.driver_of(pf);
  if (!drv) return Error::sys(ENOENT, pf.name() + ": no driver bound to device; cannot configure SR-IOV");
  if (auto why = no_sriov_configure(cx, *drv)) return Error::sys(ENOENT, pf.name() + ": " + *why);
  if (want == 0) return disable_sriov(cx, pf);
  if (cur != 0)
    return Error::sys(EBUSY, pf.name() + ": " + std::to_string(cur) + " VFs already enabled. Disable before enabling " +
                                 std::to_string(want) + " VFs");
  return enable_sriov(cx, pf, want);
}

Result<void> store_sriov_drivers_autoprobe(const Dev& pf, const std::string& buf) {
  bool on = false;
  if (kstrtobool(buf.c_str(), &on) < 0)
    return Error::sys(EINVAL, pf.name() + ": sriov_drivers_autoprobe \"" + trim(buf) + "\" is not a boolean");
  return write_text(pf.in("sriov_drivers_autoprobe"), on ? "1\n" : "0\n");
}

}  // namespace sriovd::kernel::sim
