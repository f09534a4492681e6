#include "sim/driver_core.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>

#include "pci/decode.h"
#include "sim/drivers.h"
#include "sim/file_io.h"
#include "sim/hotplug.h"
#include "sim/kstrtox.h"
#include "sim/netdevs.h"
#include "sim/reboot.h"
#include "sim/sim_tree.h"
#include "sim/sriov.h"
#include "sim/stores.h"
#include "sim/vfio.h"

namespace sriovd::kernel::sim {

using namespace simio;

constexpr size_t kPageSize = 4096;

bool static_match(Call& cx, const std::string& drv, const Ids& ids) {
  if (auto it = cx.boot().claims.find(drv); it != cx.boot().claims.end() && it->second.count({ids.vendor, ids.device}))
    return true;
  const KnownVf* k = known_vf(ids.vendor, ids.device);
  return k && drv == k->driver;
}

bool match_one(const DynId& id, const DynId& dev) {
  return (id.vendor == kAnyId || id.vendor == dev.vendor) && (id.device == kAnyId || id.device == dev.device) &&
         (id.subvendor == kAnyId || id.subvendor == dev.subvendor) &&
         (id.subdevice == kAnyId || id.subdevice == dev.subdevice) && !((id.cls ^ dev.cls) & id.cls_mask);
}

bool dynid_matches(const DynId& id, const Ids& d) {
  return match_one(id, DynId{d.vendor, d.device, d.subvendor, d.subdevice, d.cls, 0});
}

bool dynamic_match(Call& cx, const std::string& drv, const Ids& ids) {
  auto it = cx.state().dynids.find(drv);
  if (it == cx.state().dynids.end()) return false;
  return std::any_of(it->second.begin(), it->second.end(), [&](const DynId& id) { return dynid_matches(id, ids); });
}

bool matches(Call& cx, const std::string& drv, const Dev& d, const Ids& ids) {
  if (auto o = cx.override_of(d)) return *o == drv;
  return dynamic_match(cx, drv, ids) || static_match(cx, drv, ids);
}

std::vector<std::string> candidates(Call& cx, const Dev& d, const Ids& ids, bool ignore_override) {
  std::vector<std::string> out;
  auto add = [&](const std::string& drv) {
    if (cx.driver_loaded(drv) && std::find(out.begin(), out.end(), drv) == out.end()) out.push_back(drv);
  };
  if (!ignore_override)
    if (auto o = cx.override_of(d)) {
      add(*o);
      return out;
    }
  if (const BootDevice* b = cx.boot().find(d.addr);
      b && !b->driver.empty() && b->vendor == ids.vendor && b->device == ids.device)
    add(b->driver);
  if (const KnownVf* k = known_vf(ids.vendor, ids.device)) add(k->driver);
  for (const auto& [drv, claimed] : cx.boot().claims)
    if (claimed.count({ids.vendor, ids.device})) add(drv);
  for (const auto& [drv, list] : cx.state().dynids)
    if (std::any_of(list.begin(), list.end(), [&](const DynId& id) { return dynid_matches(id, ids); })) add(drv);
  return out;
}

std::optional<Refusal> probe_refusal(Call& cx, const std::string& drv, const Dev& d, const Ids& ids) {
  // pci_device_can_probe(): a VF probes only with its PF's sriov_drivers_autoprobe on or a
  // driver_override set.
  if (auto pf = cx.physfn_of(d)) {
    auto pfd = cx.dev(*pf);
    if (pfd && !cx.vf_autoprobe(*pfd) && !cx.override_of(d))
      return Refusal{ENODEV, "VF " + d.name() +
                                 " cannot probe: sriov_drivers_autoprobe is 0 on its PF and it "
                                 "has no driver_override"};
  }
  if (drv == "vfio-pci") {
    // vfio_pci_core_register_device(): type-0 headers only; no IOMMU group → vfio_group_find_or_alloc
    // fails (noiommu mode not modelled); a PF with VFs enabled is refused.
    if ((ids.cls >> 8) == 0x0604 || (ids.cls >> 8) == 0x0607)
      return Refusal{EINVAL, "vfio-pci " + d.name() + ": not a type-0 (endpoint) header"};
    if (!cx.iommu_group_of(d)) return Refusal{EINVAL, "vfio-pci " + d.name() + ": no IOMMU group"};
    if (cx.is_pf(d) && cx.num_vfs(d) > 0)
      return Refusal{EBUSY, "vfio-pci " + d.name() + ": Cannot bind to PF with SR-IOV enabled"};
  }
  return std::nullopt;
}

Result<void> bind_device(Call& cx, const std::string& drv, const Dev& d, const Ids& ids,
                         std::optional<unsigned> vf_index) {
  if (auto r = simtree::bind_driver(cx.root(), d.addr, drv); !r) return r;
  cx.pci_uevent("bind", d);
  return add_netdevs_for(cx, drv, d, ids, vf_index);
}

Result<void> unbind_device(Call& cx, const Dev& d) { return unbind_device(cx, d, cx.driver_of(d)); }

Result<void> unbind_device(Call& cx, const Dev& d, const std::optional<std::string>& drv) {
  // vfio_pci_remove waits until every user has closed the device (sim/vfio.h).
  if (drv == std::string("vfio-pci"))
    if (auto g = cx.iommu_group_of(d))
      if (auto r = wait_until_closed(cx.root(), *g, d.name()); !r) return r;
  if (cx.is_pf(d) && (cx.num_vfs(d) > 0 || !cx.virtfns(d).empty()) && drv && !leaves_sriov_on_remove(*drv))
    if (auto r = disable_sriov(cx, d); !r) return r;
  if (auto r = remove_netdevs(cx, d); !r) return r;
  if (auto r = simtree::unbind_driver(cx.root(), d.addr); !r) return r;
  cx.pci_uevent("unbind", d);
  return ok();
}

Result<bool> attach(Call& cx, const Dev& d, std::optional<unsigned> vf_index) {
  if (cx.driver_of(d)) return true;
  const Ids ids = cx.ids_of(d);
  for (const auto& drv : candidates(cx, d, ids)) {
    if (!matches(cx, drv, d, ids)) continue;
    if (probe_refusal(cx, drv, d, ids)) continue;
    if (auto r = bind_device(cx, drv, d, ids, vf_index); !r) return std::move(r).error();
    return true;
  }
  return false;
}

Result<void> store_driver_override(const Dev& d, std::string_view raw) {
  if (raw.size() >= kPageSize - 1) return Error::sys(EINVAL, d.name() + ": driver_override too long");
  std::string s = c_str_of(raw);
  const size_t nl = s.find('\n');
  if (nl != std::string::npos) s.resize(nl);
  return write_text(d.in("driver_override"), s.empty() ? "(null)\n" : s + "\n");
}

Result<void> store_bind(Call& cx, const std::string& drv, const std::string& buf) {
  const std::string name = device_name_of(buf);
  auto d = cx.find_dev(name);
  if (!d) return Error::sys(ENODEV, drv + ": bind: no PCI device \"" + name + "\"");
  const Ids ids = cx.ids_of(*d);
  if (!matches(cx, drv, *d, ids)) {
    if (auto o = cx.override_of(*d)) return Error::sys(ENODEV, drv + ": bind " + name + ": driver_override is " + *o);
    return Error::sys(ENODEV, drv + ": bind " + name + ": the driver does not claim " + hex(ids.vendor, 4) + ":" +
                                  hex(ids.device, 4) + " (no id table entry or new_id)");
  }
  if (auto cur = cx.driver_of(*d)) return Error::sys(EBUSY, drv + ": bind " + name + ": already bound to " + *cur);
  if (auto no = probe_refusal(cx, drv, *d, ids)) return Error::sys(no->errnum, drv + ": bind " + name + ": " + no->why);
  return bind_device(cx, drv, *d, ids);
}

Result<void> store_unbind(Call& cx, const std::string& drv, const std::string& buf) {
  const std::string name = device_name_of(buf);
  auto d = cx.find_dev(name);
  if (!d) return Error::sys(ENODEV, drv + ": unbind: no PCI device \"" + name + "\"");
  auto cur = cx.driver_of(*d);
  if (cur != drv)
    return Error::sys(ENODEV, drv + ": unbind " + name + ": " + (cur ? "bound to " + *cur : std::string("not bound")));
  return unbind_device(cx, *d, cur);
}

Result<void> store_drivers_probe(Call& cx, const std::string& buf) {
  const std::string name = device_name_of(buf);
  auto d = cx.find_dev(name);
  if (!d) return Error::sys(ENODEV, "drivers_probe: no PCI device \"" + name + "\"");
  auto r = attach(cx, *d);
  if (!r) return std::move(r).error();
  return ok();
}

Result<void> store_new_id(Call& cx, const std::string& drv, const std::string& buf) {
  uint32_t f[7] = {0, 0, kAnyId, kAnyId, 0, 0, 0};
  const int n = scan_hex_fields(buf.c_str(), 7, f);
  if (n < 2) return Error::sys(EINVAL, drv + ": new_id \"" + trim(buf) + "\": needs vendor and device");
  DynId id{f[0], f[1], f[2], f[3], f[4], f[5]};
  if (n != 7) {
    // The sim's static tables are vendor:device entries with any subsystem and class, so an
    // id with those ids matches one whatever else it says.
    if (id.vendor <= 0xffff && id.device <= 0xffff &&
        static_match(cx, drv, Ids{static_cast<uint16_t>(id.vendor), static_cast<uint16_t>(id.device), 0, 0, 0}))
      return Error::sys(EEXIST, drv + ": new_id " + hex(id.vendor, 4) + " " + hex(id.device, 4) +
                                    ": already in the driver's id table");
    // do_pci_add_dynid(check_dup)
    if (auto it = cx.state().dynids.find(drv); it != cx.state().dynids.end())
      for (const auto& e : it->second)
        if (match_one(e, id))
          return Error::sys(EEXIST,
                            drv + ": new_id " + hex(id.vendor, 4) + " " + hex(id.device, 4) + ": already a dynamic id");
  }
  cx.mutable_state().dynids[drv].push_back(id);
  // driver_attach() → __driver_attach() for every device: match, then probe if unbound.
  for (const auto& n2 : list_names(cx.abs("bus/pci/devices"))) {
    auto d = cx.find_dev(n2);
    if (!d || cx.driver_of(*d)) continue;
    const Ids ids = cx.ids_of(*d);
    if (!matches(cx, drv, *d, ids) || probe_refusal(cx, drv, *d, ids)) continue;
    if (auto r = bind_device(cx, drv, *d, ids); !r) return r;
  }
  return ok();
}

Result<void> store_remove_id(Call& cx, const std::string& drv, const std::string& buf) {
  uint32_t f[6] = {0, 0, kAnyId, kAnyId, 0, 0};
  const int n = scan_hex_fields(buf.c_str(), 6, f);
  if (n < 2) return Error::sys(EINVAL, drv + ": remove_id \"" + trim(buf) + "\": needs vendor and device");
  auto& all = cx.state().dynids;
  if (auto list = all.find(drv); list != all.end()) {
    for (auto it = list->second.begin(); it != list->second.end(); ++it) {
      if (it->vendor == f[0] && it->device == f[1] && (f[2] == kAnyId || it->subvendor == f[2]) &&
          (f[3] == kAnyId || it->subdevice == f[3]) && !((it->cls ^ f[4]) & f[5])) {
        cx.mutable_state();
        list->second.erase(it);
        if (list->second.empty()) all.erase(list);
        return ok();
      }
    }
  }
  return Error::sys(ENODEV, drv + ": remove_id " + trim(buf) + ": no such dynamic id");
}

}  // namespace sriovd::kernel::sim
