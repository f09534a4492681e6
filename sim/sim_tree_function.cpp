#include <fcntl.h>
#include <unistd.h>

#include "base/fd.h"
#include "sim/sim_tree.h"
#include "sim/sim_tree_util.h"

// The pieces add_function writes a function with: attributes, buses, IOMMU group and unit.

namespace sriovd::simtree::detail {

// The uevent file of a PCI device: DRIVER= comes first (added by the driver core's dev_uevent
// before the bus's pci_uevent), then PCI_CLASS=%04X (so 0x020000 prints "20000", 0x000000
// "0000"), PCI_ID and PCI_SUBSYS_ID in upper-case hex, PCI_SLOT_NAME, MODALIAS.
std::string uevent_text(const FunctionSpec& s, std::string_view driver) {
  std::string out;
  if (!driver.empty()) out += "DRIVER=" + std::string(driver) + "\n";
  out += fmt("PCI_CLASS=%04X\n", s.class_code);
  out += fmt("PCI_ID=%04X:%04X\n", s.vendor, s.device);
  out += fmt("PCI_SUBSYS_ID=%04X:%04X\n", s.subsystem_vendor, s.subsystem_device);
  out += "PCI_SLOT_NAME=" + bdf(s.address) + "\n";
  out += "MODALIAS=" + modalias(s.vendor, s.device, s.subsystem_vendor, s.subsystem_device, s.class_code) + "\n";
  return out;
}

std::string root_bus_name(uint32_t domain, uint8_t bus) { return fmt("%04x:%02x", domain, bus); }

// A pci_bus object: <parent>/pci_bus/DDDD:BB/ and class/pci_bus/DDDD:BB -> it. The root bus's
// lives in devices/pciDDDD:BB/, a bridge's secondary bus in the bridge's directory.
Result<void> ensure_pci_bus(const fs::path& root, const fs::path& parent, const std::string& name) {
  fs::path dir = parent / "pci_bus";
  for (const fs::path& d : {fs::path("class"), fs::path("class/pci_bus"), dir})
    if (auto r = make_dir(root, d); !r) return std::move(r).error();
  auto made = make_dir(root, dir / name);
  if (!made) return std::move(made).error();
  if (!*made) return ok();
  if (auto r = write_file(root, dir / name / "rescan", ""); !r) return r;
  if (auto r = write_file(root, dir / name / "cpulistaffinity", ""); !r) return r;
  return make_link(root, fs::path("class/pci_bus") / name, dir / name);
}

// devices/pci<DDDD>:<BB>/: the host bridge's directory, named after the root bus.
Result<fs::path> ensure_root_bus(const fs::path& root, uint32_t domain, uint8_t bus) {
  const std::string name = root_bus_name(domain, bus);
  fs::path dir = fs::path("devices") / ("pci" + name);
  auto made = make_dir(root, dir);
  if (!made) return std::move(made).error();
  if (*made) {
    if (auto r = write_file(root, dir / "uevent", ""); !r) return std::move(r).error();
    if (auto r = ensure_pci_bus(root, dir, name); !r) return std::move(r).error();
  }
  return dir;
}

Result<void> join_iommu_group(const fs::path& root, const fs::path& devdir, const PciAddress& a, unsigned group,
                              std::string_view type) {
  const fs::path gdir = fs::path("kernel/iommu_groups") / std::to_string(group);
  auto made = make_dir(root, gdir);
  if (!made) return std::move(made).error();
  if (*made) {
    if (auto r = make_dir(root, gdir / "devices"); !r) return std::move(r).error();
    if (auto r = write_file(root, gdir / "type", std::string(type) + "\n"); !r) return r;
    // x86 groups list the MSI window as a reserved region.
    if (auto r = write_file(root, gdir / "reserved_regions", "0x00000000fee00000 0x00000000feefffff msi\n"); !r)
      return r;
  }
  if (auto r = make_link(root, devdir / "iommu_group", gdir); !r) return r;
  return make_link(root, gdir / "devices" / bdf(a), devdir);
}

// Leaves the function's current group, if any; removes the group when it becomes empty (the
// kernel frees an iommu_group with its last device, and the number becomes free again).
Result<void> leave_iommu_group(const fs::path& root, const fs::path& devdir, const PciAddress& a) {
  auto link = read_link(root, devdir / "iommu_group");
  if (!link) return link.error().errnum == ENOENT ? ok() : Result<void>(std::move(link).error());
  const fs::path gdir = (devdir / *link).lexically_normal();
  if (auto r = remove_path(root, gdir / "devices" / bdf(a)); !r) return r;
  if (auto r = remove_path(root, devdir / "iommu_group"); !r) return r;
  auto members = list_dir(root, gdir / "devices");
  if (!members) return std::move(members).error();
  if (members->empty()) {
    std::error_code ec;
    fs::remove_all(root / gdir, ec);
    if (ec) return sys(ec.value(), "removing " + gdir.string());
  }
  return ok();
}

Result<void> join_iommu_unit(const fs::path& root, const fs::path& devdir, const PciAddress& a,
                             const std::string& unit) {
  const fs::path udir = fs::path("devices/virtual/iommu") / unit;
  if (!exists(root, udir / "devices"))
    if (auto r = add_iommu_unit(root, unit); !r) return r;
  if (auto r = make_link(root, devdir / "iommu", udir); !r) return r;
  return make_link(root, udir / "devices" / bdf(a), devdir);
}

// Replaces the DRIVER= line of a device's uevent (first, as dev_uevent emits it), or drops it
// when `driver` is empty; the other lines are kept as they are.
Result<void> rewrite_driver_line(const fs::path& root, const fs::path& devdir, std::string_view driver) {
  auto ue = read_file(root, devdir / "uevent");
  if (!ue) return std::move(ue).error();
  std::string out;
  if (!driver.empty()) out = "DRIVER=" + std::string(driver) + "\n";
  size_t i = 0;
  while (i < ue->size()) {
    size_t j = ue->find('\n', i);
    if (j == std::string::npos) j = ue->size() - 1;
    if (ue->compare(i, 7, "DRIVER=") != 0) out.append(*ue, i, j - i + 1);
    i = j + 1;
  }
  return write_file(root, devdir / "uevent", out);
}

// Writes every attribute file of the function into its (new, empty) directory.
Result<void> write_attributes(const fs::path& root, const fs::path& devdir, const FunctionSpec& s,
                              const std::string& cpulist) {
  UniqueFd dfd(::open((root / devdir).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd) return sys(errno, "opening " + devdir.string());
  const int d = dfd.get();
  std::string cfg = config_space(s);
  struct Attr {
    const char* name;
    std::string text;
  };
  // Text formats are the kernel's show functions: ids "0x%04x", class "0x%06x", revision
  // "0x%02x", numa_node "%d" (-1 = none), irq "%u", driver_override "(null)" when unset.
  std::vector<Attr> attrs = {
      {"vendor", fmt("0x%04x\n", s.vendor)},
      {"device", fmt("0x%04x\n", s.device)},
      {"subsystem_vendor", fmt("0x%04x\n", s.subsystem_vendor)},
      {"subsystem_device", fmt("0x%04x\n", s.subsystem_device)},
      {"class", fmt("0x%06x\n", s.class_code)},
      {"revision", fmt("0x%02x\n", s.revision)},
      {"numa_node", fmt("%d\n", s.numa_node)},
      {"uevent", uevent_text(s, s.driver)},
      {"modalias", modalias(s.vendor, s.device, s.subsystem_vendor, s.subsystem_device, s.class_code) + "\n"},
      {"driver_override", "(null)\n"},
      {"enable", s.driver.empty() ? "0\n" : "1\n"},
      {"irq", fmt("%u\n", s.irq)},
      {"local_cpulist", cpulist + "\n"},
      {"resource", resource_text(s)},
      {"config", std::move(cfg)},
  };
  // drivers/pci/pci-sysfs.c pci_dev_hp_attrs_are_visible(): `remove` and `rescan` exist on every
  // function but a VF; a VF goes only with its PF's sriov_numvfs (or the PF itself).
  if (!s.physfn) {
    attrs.push_back({"remove", ""});
    attrs.push_back({"rescan", ""});
  }
  if (s.has_reset) {
    // `reset` exists only when some reset method works (pci_reset_supported); reset_method
    // (5.15+) lists them.
    attrs.push_back({"reset", ""});
    std::string method = s.reset_method.empty() ? (s.physfn ? "flr" : "flr bus") : s.reset_method;
    attrs.push_back({"reset_method", method + "\n"});
  }
  if (s.sriov) {
    // drivers/pci/iov.c: sriov_vf_device prints "%x" (no 0x), the others "%u".
    const SriovSpec& v = *s.sriov;
    attrs.push_back({"sriov_totalvfs", fmt("%u\n", v.total_vfs)});
    attrs.push_back({"sriov_numvfs", fmt("%u\n", v.num_vfs)});
    attrs.push_back({"sriov_offset", fmt("%u\n", v.offset)});
    attrs.push_back({"sriov_stride", fmt("%u\n", v.stride)});
    attrs.push_back({"sriov_vf_device", fmt("%x\n", v.vf_device)});
    attrs.push_back({"sriov_drivers_autoprobe", v.drivers_autoprobe ? "1\n" : "0\n"});
  }
  for (const auto& a : attrs)
    if (auto r = write_at(d, a.name, a.text, devdir); !r) return r;
  return ok();
}

Result<void> add_function_in(const fs::path& root, const fs::path& parent_dir, const FunctionSpec& s) {
  const std::string name = bdf(s.address);
  const fs::path bus_link = fs::path("bus/pci/devices") / name;
  if (exists(root, bus_link)) return sys(EEXIST, "adding " + name);
  const fs::path devdir = parent_dir / name;
  if (auto r = make_dir(root, devdir, true); !r) return std::move(r).error();

  std::string cpulist = s.local_cpulist;
  if (cpulist.empty() && s.numa_node >= 0) {
    if (auto t = read_file(root, fmt("devices/system/node/node%d/cpulist", s.numa_node))) cpulist = trim(*t);
  }
  if (cpulist.empty()) cpulist = "0";
  if (auto r = write_attributes(root, devdir, s, cpulist); !r) return r;

  if (auto r = make_link(root, devdir / "subsystem", "bus/pci"); !r) return r;
  if (auto r = make_link(root, bus_link, devdir); !r) return r;
  if (s.bridge) {
    if (auto r = ensure_pci_bus(root, devdir, root_bus_name(s.address.domain, s.bridge->secondary)); !r) return r;
  }
  if (s.iommu_group)
    if (auto r = join_iommu_group(root, devdir, s.address, *s.iommu_group, s.iommu_group_type); !r) return r;
  if (!s.iommu_unit.empty())
    if (auto r = join_iommu_unit(root, devdir, s.address, s.iommu_unit); !r) return r;
  if (!s.driver.empty()) {
    if (auto r = ensure_driver(root, s.driver); !r) return r;
    const fs::path ddir = fs::path("bus/pci/drivers") / s.driver;
    if (auto r = make_link(root, devdir / "driver", ddir); !r) return r;
    if (auto r = make_link(root, ddir / name, devdir); !r) return r;
  }
  if (s.physfn) {
    const fs::path pfdir = parent_dir / bdf(*s.physfn);
    // A VF on another bus number than its PF gets a virtual pci_bus (virtfn_add_bus) whose
    // parent is the PF's bus's bridge, i.e. the directory both live in.
    if (s.physfn->bus != s.address.bus) {
      if (auto r = ensure_pci_bus(root, parent_dir, root_bus_name(s.address.domain, s.address.bus)); !r) return r;
    }
    if (auto r = make_link(root, pfdir / ("virtfn" + std::to_string(s.vf_index)), devdir); !r) return r;
    if (auto r = make_link(root, devdir / "physfn", pfdir); !r) return r;
  }
  return ok();
}

}  // namespace sriovd::simtree::detail
