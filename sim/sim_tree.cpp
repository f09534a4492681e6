#include "sim/sim_tree.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <set>

#include "sim/sim_tree_util.h"

namespace sriovd::simtree {

using namespace detail;

// ---- the tree ------------------------------------------------------------------------------

Result<void> init_tree(const fs::path& root) {
  for (const char* d :
       {"bus", "bus/pci", "bus/pci/devices", "bus/pci/drivers", "bus/pci/slots", "kernel", "kernel/iommu_groups",
        "class", "class/net", "class/pci_bus", "class/iommu", "devices", "devices/system", "devices/system/node",
        "devices/virtual", "devices/virtual/iommu", "module"}) {
    if (auto r = make_dir(root, d); !r) return std::move(r).error();
  }
  // bus/pci control files (drivers/pci/pci-driver.c, probe.c): drivers_autoprobe reads "1".
  const std::pair<const char*, const char*> files[] = {
      {"bus/pci/drivers_probe", ""},
      {"bus/pci/drivers_autoprobe", "1\n"},
      {"bus/pci/rescan", ""},
      {"bus/pci/resource_alignment", "\n"},
      {"bus/pci/uevent", ""},
      // lib/kobject_uevent.c: the number of the last uevent sent (SimKernel counts on).
      {"kernel/uevent_seqnum", "0\n"}};
  for (const auto& [path, text] : files) {
    if (exists(root, path)) continue;
    if (auto r = write_file(root, path, text); !r) return r;
  }
  return ok();
}

Result<void> add_numa_node(const fs::path& root, int node, std::string_view cpulist) {
  const fs::path base = "devices/system/node";
  if (auto r = make_dir(root, base); !r) return std::move(r).error();
  const fs::path ndir = base / ("node" + std::to_string(node));
  if (auto r = make_dir(root, ndir); !r) return std::move(r).error();
  if (auto r = write_file(root, ndir / "cpulist", std::string(cpulist) + "\n"); !r) return r;
  auto names = list_dir(root, base);
  if (!names) return std::move(names).error();
  std::vector<int> nodes;
  for (const auto& n : *names)
    if (n.size() > 4 && n.compare(0, 4, "node") == 0)
      if (auto v = parse_num(std::string_view(n).substr(4), 10)) nodes.push_back(static_cast<int>(*v));
  std::sort(nodes.begin(), nodes.end());
  std::string list;  // "0-1", "0,2-3": the kernel's %*pbl range list
  for (size_t i = 0; i < nodes.size();) {
    size_t j = i;
    while (j + 1 < nodes.size() && nodes[j + 1] == nodes[j] + 1) ++j;
    if (!list.empty()) list += ',';
    list += std::to_string(nodes[i]);
    if (j > i) list += "-" + std::to_string(nodes[j]);
    i = j + 1;
  }
  for (const char* f : {"online", "possible", "has_cpu", "has_memory", "has_normal_memory"})
    if (auto r = write_file(root, base / f, list + "\n"); !r) return r;
  return ok();
}

Result<void> add_iommu_unit(const fs::path& root, std::string_view name) {
  // Intel: /sys/class/iommu/dmar0 -> ../../devices/virtual/iommu/dmar0, with devices/<BDF>
  // links back to every function it translates, and an `iommu` link on each function.
  const fs::path udir = fs::path("devices/virtual/iommu") / name;
  for (const fs::path& d : {fs::path("devices"), fs::path("devices/virtual"), fs::path("devices/virtual/iommu"), udir,
                            udir / "devices", fs::path("class"), fs::path("class/iommu")})
    if (auto r = make_dir(root, d); !r) return std::move(r).error();
  const fs::path link = fs::path("class/iommu") / name;
  if (exists(root, link)) return ok();
  if (auto r = write_file(root, udir / "uevent", ""); !r) return r;
  return make_link(root, link, udir);
}

Result<void> add_module(const fs::path& root, std::string_view name) {
  const fs::path mdir = fs::path("module") / name;
  if (auto r = make_dir(root, "module"); !r) return std::move(r).error();
  auto made = make_dir(root, mdir);
  if (!made) return std::move(made).error();
  if (!*made) return ok();
  if (auto r = write_file(root, mdir / "initstate", "live\n"); !r) return r;
  if (auto r = write_file(root, mdir / "refcnt", "0\n"); !r) return r;
  return write_file(root, mdir / "uevent", "");
}

Result<void> ensure_driver(const fs::path& root, std::string_view name) {
  if (name.empty() || name.find('/') != std::string_view::npos || name == "." || name == "..")
    return Error::sys(EINVAL, "driver name \"" + std::string(name) + "\"");
  const fs::path ddir = fs::path("bus/pci/drivers") / name;
  auto made = make_dir(root, ddir);
  if (!made) return std::move(made).error();
  if (!*made) return ok();
  // Every PCI driver directory has these write-only control files (drivers/base/bus.c bind,
  // unbind, uevent; drivers/pci/pci-driver.c new_id, remove_id).
  for (const char* f : {"bind", "unbind", "new_id", "remove_id", "uevent"})
    if (auto r = write_file(root, ddir / f, ""); !r) return r;
  // The PCIe port driver is built in (no module link); other drivers are modules whose name is
  // the driver's with '-' as '_' (vfio-pci in module vfio_pci).
  if (name == "pcieport") return ok();
  std::string mod(name);
  std::replace(mod.begin(), mod.end(), '-', '_');
  if (auto r = add_module(root, mod); !r) return r;
  const fs::path mdir = fs::path("module") / mod;
  if (auto r = make_link(root, ddir / "module", mdir); !r) return r;
  if (auto r = make_dir(root, mdir / "drivers"); !r) return std::move(r).error();
  return make_link(root, mdir / "drivers" / ("pci:" + std::string(name)), ddir);
}

// ---- functions -----------------------------------------------------------------------------

std::optional<std::string> join_normal(std::string_view dir, std::string_view link) {
  if (!link.empty() && link.front() == '/') return std::nullopt;
  std::string out(dir);
  auto take = [&](std::string_view part) {
    if (part.empty() || part == ".") return true;
    if (part == "..") {
      if (out.empty()) return false;
      const size_t slash = out.rfind('/');
      out.resize(slash == std::string::npos ? 0 : slash);
      return true;
    }
    if (!out.empty()) out += '/';
    out += part;
    return true;
  };
  for (std::string_view rest = link; !rest.empty();) {
    const size_t slash = rest.find('/');
    if (!take(rest.substr(0, slash))) return std::nullopt;
    rest.remove_prefix(slash == std::string_view::npos ? rest.size() : slash + 1);
  }
  return out;
}

Result<fs::path> device_dir(const fs::path& root, const PciAddress& address) {
  // Done for every call of the simulated kernel: the link read into a buffer and resolved as a
  // string (std::filesystem's lexically_normal costs more than the readlink).
  char name[64];
  std::snprintf(name, sizeof name, "bus/pci/devices/%s", bdf(address).c_str());
  char buf[4096];
  ssize_t n = ::readlink((root / name).c_str(), buf, sizeof buf);
  if (n < 0) return sys(errno, std::string("reading link ") + name);
  auto dir = join_normal("bus/pci/devices", std::string_view(buf, static_cast<size_t>(n)));
  if (!dir || dir->empty()) return Error::sys(EINVAL, std::string(name) + " points outside the tree");
  return fs::path(std::move(*dir));
}

Result<void> add_function(const fs::path& root, const FunctionSpec& spec) {
  fs::path parent_dir;
  if (spec.physfn) {
    // pci_iov_add_virtfn(): virtfn->dev.parent = dev->dev.parent, so VFs are the PF's siblings.
    auto pf = device_dir(root, *spec.physfn);
    if (!pf) return std::move(pf).error().context("adding " + bdf(spec.address) + ": PF");
    parent_dir = pf->parent_path();
  } else if (spec.parent) {
    auto p = device_dir(root, *spec.parent);
    if (!p) return std::move(p).error().context("adding " + bdf(spec.address) + ": parent bridge");
    parent_dir = *p;
  } else {
    auto p = ensure_root_bus(root, spec.address.domain, spec.address.bus);
    if (!p) return std::move(p).error();
    parent_dir = *p;
  }
  return add_function_in(root, parent_dir, spec);
}

Result<void> remove_function(const fs::path& root, const PciAddress& address) {
  const std::string name = bdf(address);
  auto dir = device_dir(root, address);
  if (!dir) return std::move(dir).error().context("removing " + name);
  const fs::path devdir = *dir;
  auto entries = list_dir(root, devdir);
  if (!entries) return std::move(entries).error();

  // A PF's VFs go first: its driver's remove disables SR-IOV (pci_disable_sriov).
  for (const auto& e : *entries) {
    if (e.rfind("virtfn", 0) != 0) continue;
    auto t = read_link(root, devdir / e);
    if (!t) continue;
    if (auto vf = PciAddress::parse(fs::path(*t).filename().string()))
      if (auto r = remove_function(root, *vf); !r) return r;
  }
  // Functions below a bridge are removed before it (pci_stop_and_remove_bus_device recurses).
  for (const auto& e : *entries) {
    auto child = PciAddress::parse(e);
    if (!child) continue;
    struct stat st;
    if (::lstat((root / devdir / e).c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    if (exists(root, fs::path("bus/pci/devices") / e)) {
      if (auto r = remove_function(root, *child); !r) return r;
    }
  }

  // A VF leaves its PF's virtfnN link (pci_iov_remove_virtfn).
  std::optional<PciAddress> vf_of;
  if (auto pl = read_link(root, devdir / "physfn")) {
    const fs::path pfdir = (devdir / *pl).lexically_normal();
    vf_of = PciAddress::parse(pfdir.filename().string());
    if (auto pfe = list_dir(root, pfdir)) {
      for (const auto& e : *pfe) {
        if (e.rfind("virtfn", 0) != 0) continue;
        auto t = read_link(root, pfdir / e);
        if (t && fs::path(*t).filename() == name)
          if (auto r = remove_path(root, pfdir / e); !r) return r;
      }
    }
  }
  // Netdevs go with the device; so do their class/net links.
  if (auto nets = list_dir(root, devdir / "net")) {
    for (const auto& n : *nets) {
      const fs::path cl = fs::path("class/net") / n;
      auto t = read_link(root, cl);
      if (t && (cl.parent_path() / *t).lexically_normal() == devdir / "net" / n)
        if (auto r = remove_path(root, cl); !r) return r;
    }
  }
  if (auto d = read_link(root, devdir / "driver")) {
    const fs::path ddir = (devdir / *d).lexically_normal();
    if (auto r = remove_path(root, ddir / name); !r) return r;
  }
  if (auto r = leave_iommu_group(root, devdir, address); !r) return r;
  if (auto u = read_link(root, devdir / "iommu")) {
    const fs::path udir = (devdir / *u).lexically_normal();
    if (auto r = remove_path(root, udir / "devices" / name); !r) return r;
  }
  if (auto buses = list_dir(root, devdir / "pci_bus")) {
    for (const auto& b : *buses)
      if (auto r = remove_path(root, fs::path("class/pci_bus") / b); !r) return r;
  }
  if (auto r = remove_path(root, fs::path("bus/pci/devices") / name); !r) return r;
  if (auto r = remove_tree(root, devdir); !r) return r;

  // The last VF on a virtual bus takes the bus with it (virtfn_remove_bus).
  if (vf_of && vf_of->bus != address.bus) {
    const fs::path parent = devdir.parent_path();
    const std::string bus = root_bus_name(address.domain, address.bus);
    bool occupied = false;
    if (auto siblings = list_dir(root, parent))
      for (const auto& s : *siblings)
        if (s.rfind(bus + ":", 0) == 0) occupied = true;
    if (!occupied && exists(root, parent / "pci_bus" / bus)) {
      if (auto r = remove_path(root, fs::path("class/pci_bus") / bus); !r) return r;
      if (auto r = remove_tree(root, parent / "pci_bus" / bus); !r) return r;
    }
  }
  return ok();
}

Result<void> bind_driver(const fs::path& root, const PciAddress& address, std::string_view driver) {
  const std::string name = bdf(address);
  auto dir = device_dir(root, address);
  if (!dir) return std::move(dir).error().context("binding " + name);
  const fs::path devdir = *dir;
  if (auto cur = read_link(root, devdir / "driver")) {
    if (fs::path(*cur).filename() == driver) return ok();
    return Error::sys(
        EBUSY, "binding " + name + " to " + std::string(driver) + ": bound to " + fs::path(*cur).filename().string());
  }
  if (auto r = ensure_driver(root, driver); !r) return r;
  const fs::path ddir = fs::path("bus/pci/drivers") / driver;
  if (auto r = make_link(root, devdir / "driver", ddir); !r) return r;
  if (auto r = make_link(root, ddir / name, devdir); !r) return r;
  if (auto r = rewrite_driver_line(root, devdir, driver); !r) return r;
  // pci_enable_device() in the driver's probe makes `enable` read 1.
  return write_file(root, devdir / "enable", "1\n");
}

Result<void> unbind_driver(const fs::path& root, const PciAddress& address) {
  const std::string name = bdf(address);
  auto dir = device_dir(root, address);
  if (!dir) return std::move(dir).error().context("unbinding " + name);
  const fs::path devdir = *dir;
  auto cur = read_link(root, devdir / "driver");
  if (!cur) return cur.error().errnum == ENOENT ? ok() : Result<void>(std::move(cur).error());
  const fs::path ddir = (devdir / *cur).lexically_normal();
  if (auto r = remove_path(root, ddir / name); !r) return r;
  if (auto r = remove_path(root, devdir / "driver"); !r) return r;
  if (auto r = rewrite_driver_line(root, devdir, {}); !r) return r;
  return write_file(root, devdir / "enable", "0\n");
}

Result<void> set_iommu_group(const fs::path& root, const PciAddress& address, unsigned group, std::string_view type) {
  auto dir = device_dir(root, address);
  if (!dir) return std::move(dir).error().context("setting the IOMMU group of " + bdf(address));
  if (auto cur = read_link(root, *dir / "iommu_group"))
    if (fs::path(*cur).filename() == std::to_string(group)) return ok();
  if (auto r = leave_iommu_group(root, *dir, address); !r) return r;
  return join_iommu_group(root, *dir, address, group, type);
}

Result<unsigned> next_free_iommu_group(const fs::path& root) {
  auto names = list_dir(root, "kernel/iommu_groups");
  if (!names) return std::move(names).error();
  std::vector<unsigned> used;
  used.reserve(names->size());
  for (const auto& n : *names)
    if (auto v = parse_num(n, 10)) used.push_back(static_cast<unsigned>(*v));
  std::sort(used.begin(), used.end());
  unsigned next = 0;
  for (unsigned u : used) {
    if (u == next) ++next;
    else if (u > next) break;
  }
  return next;
}

Result<void> link_vf(const fs::path& root, const PciAddress& pf, const PciAddress& vf, unsigned index) {
  auto pfdir = device_dir(root, pf);
  if (!pfdir) return std::move(pfdir).error().context("linking VF " + bdf(vf));
  auto vfdir = device_dir(root, vf);
  if (!vfdir) return std::move(vfdir).error().context("linking VF " + bdf(vf));
  if (auto r = make_link(root, *pfdir / ("virtfn" + std::to_string(index)), *vfdir); !r) return r;
  return make_link(root, *vfdir / "physfn", *pfdir);
}

}  // namespace sriovd::simtree
