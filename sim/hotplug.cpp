#include "sim/hotplug.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>

#include "pci/decode.h"
#include "sim/driver_core.h"
#include "sim/drivers.h"
#include "sim/file_io.h"
#include "sim/kstrtox.h"
#include "sim/netdevs.h"
#include "sim/reboot.h"
#include "sim/sim_tree.h"
#include "sim/sriov.h"
#include "sim/stores.h"

namespace sriovd::kernel::sim {

using namespace simio;

std::vector<fs::path> footprint(Call& cx, const Dev& d) {
  std::vector<fs::path> out{d.dir, fs::path("bus/pci/devices") / d.name()};
  if (auto drv = cx.driver_of(d)) out.push_back(fs::path("bus/pci/drivers") / *drv / d.name());
  if (auto g = cx.iommu_group_of(d)) out.push_back(fs::path("kernel/iommu_groups") / std::to_string(*g));
  if (auto unit = read_link(d.in("iommu")))
    out.push_back(fs::path("devices/virtual/iommu") / fs::path(*unit).filename() / "devices" / d.name());
  for (const auto& n : cx.netdevs_of(d)) out.push_back(fs::path("class/net") / n);
  if (auto pf = cx.physfn_of(d))
    if (auto pfd = cx.dev(*pf))
      if (auto i = cx.vf_index_of(*pfd, d.addr)) out.push_back(pfd->dir / ("virtfn" + std::to_string(*i)));
  return out;
}

void capture(Call& cx, const fs::path& rel, json& out) {
  const fs::path p = cx.abs(rel);
  struct stat st;
  if (::lstat(p.c_str(), &st) != 0) return;
  if (S_ISLNK(st.st_mode)) {
    if (auto t = read_link(p)) out.push_back({{"path", rel.string()}, {"link", *t}});
  } else if (S_ISDIR(st.st_mode)) {
    out.push_back({{"path", rel.string()}, {"dir", true}});
    for (const auto& n : list_names(p))
      if (n != kVfDir) capture(cx, rel / n, out);
  } else if (auto t = read_text(p)) {
    out.push_back({{"path", rel.string()}, {"file", json::binary_t(std::vector<uint8_t>(t->begin(), t->end()))}});
  }
}

fs::path removed_record(const PciAddress& a) { return fs::path(kStateDir) / "removed" / (a.to_string() + ".json"); }

Result<void> hot_remove(Call& cx, const PciAddress& a) {
  auto d = cx.dev(a);
  if (!d) return Error::sys(ENODEV, "no PCI function " + a.to_string());
  if (cx.is_pf(*d) && (cx.num_vfs(*d) > 0 || !cx.virtfns(*d).empty()))
    return Error::sys(EBUSY, a.to_string() + " has VFs enabled: disable them (sriov_numvfs 0) before removing it");
  if ((cx.ids_of(*d).cls >> 8) == 0x0604)
    return Error::sys(EINVAL, a.to_string() + " is a bridge: only endpoints are hot-removed by the simulator");
  json entries = json::array();
  for (const auto& f : footprint(cx, *d)) capture(cx, f, entries);
  std::error_code ec;
  fs::create_directories(cx.abs(removed_record(a).parent_path()), ec);
  if (ec) return Error::sys(ec.value(), "creating " + removed_record(a).parent_path().string());
  std::vector<uint8_t> packed = json::to_cbor(json{{"address", a.to_string()}, {"entries", entries}});
  if (auto r = write_atomic(cx.abs(removed_record(a)), std::string(packed.begin(), packed.end())); !r) return r;
  cx.net_uevents("remove", *d);
  if (cx.driver_of(*d)) cx.pci_uevent("unbind", *d);
  cx.pci_uevent("remove", *d);
  return simtree::remove_function(cx.root(), a);
}

Result<void> hot_add(Call& cx, const PciAddress& a) {
  if (cx.dev(a)) return Error::sys(EEXIST, a.to_string() + " is present");
  auto t = read_text(cx.abs(removed_record(a)));
  if (!t) return Error::sys(ENOENT, a.to_string() + " was not removed by the simulator (no record of it)");
  json rec = json::from_cbor(*t, true, false);
  if (rec.is_discarded() || !rec.contains("entries"))
    return Error::sys(EINVAL, "unreadable record of " + a.to_string());
  // Directories (parents first, by path order), then files and links, skipping what exists
  // (an IOMMU group another member kept).
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& e : rec["entries"]) {
      const fs::path rel = e["path"].get<std::string>();
      const bool is_dir_entry = e.contains("dir");
      if ((pass == 0) != is_dir_entry) continue;
      const fs::path p = cx.abs(rel);
      if (lexists(p)) continue;
      if (is_dir_entry) {
        if (::mkdir(p.c_str(), 0755) != 0 && errno != EEXIST) return Error::sys(errno, "creating " + rel.string());
      } else if (e.contains("link")) {
        if (::symlink(e["link"].get<std::string>().c_str(), p.c_str()) != 0)
          return Error::sys(errno, "linking " + rel.string());
      } else {
        const auto& bin = e["file"].get_binary();
        if (auto r = write_text(p, std::string(bin.begin(), bin.end())); !r) return r;
      }
    }
  }
  std::error_code ec;
  fs::remove(cx.abs(removed_record(a)), ec);
  auto d = cx.dev(a);
  if (!d) return std::move(d).error();
  cx.pci_uevent("add", *d);
  if (cx.driver_of(*d)) cx.pci_uevent("bind", *d);
  cx.net_uevents("add", *d);
  return ok();
}

}  // namespace sriovd::kernel::sim
