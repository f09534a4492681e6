#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <set>

#include "base/fd.h"
#include "sim/sim_tree.h"
#include "sim/sim_tree_util.h"

// SR-IOV (read_sriov_pf, add_vfs, write_numvfs) and netdevs (add_netdev, remove_netdev).

namespace sriovd::simtree {

using namespace detail;

namespace {

// Little-endian, as config space is.
uint32_t get32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

}  // namespace

// ---- SR-IOV --------------------------------------------------------------------------------

PciAddress vf_address(const PciAddress& pf, uint16_t offset, uint16_t stride, unsigned index) {
  // pci_iov_virtfn_bus/devfn: rid = PF rid + offset + stride * index; bus = rid >> 8.
  const uint32_t rid = pf.routing_id() + offset + static_cast<uint32_t>(stride) * index;
  return PciAddress::from_routing_id(pf.domain, static_cast<uint16_t>(rid));
}

Result<SriovPfInfo> read_sriov_pf(const fs::path& root, const PciAddress& pf) {
  SriovPfInfo info;
  info.address = pf;
  auto dir = device_dir(root, pf);
  if (!dir) return std::move(dir).error();
  info.dir = *dir;
  const fs::path& d = info.dir;
  auto num = [&](const char* f, int base) { return read_num(root, d / f, base); };
  auto total = num("sriov_totalvfs", 10);
  if (!total) return std::move(total).error();
  info.total_vfs = static_cast<uint16_t>(*total);
  struct Field {
    const char* file;
    int base;
    uint64_t* out;
  };
  uint64_t vendor = 0, sv = 0, sd = 0, cls = 0, rev = 0, numvfs = 0, off = 0, stride = 0, vfdev = 0;
  for (Field f :
       {Field{"vendor", 16, &vendor}, Field{"subsystem_vendor", 16, &sv}, Field{"subsystem_device", 16, &sd},
        Field{"class", 16, &cls}, Field{"revision", 16, &rev}, Field{"sriov_numvfs", 10, &numvfs},
        Field{"sriov_offset", 10, &off}, Field{"sriov_stride", 10, &stride}, Field{"sriov_vf_device", 16, &vfdev}}) {
    auto v = num(f.file, f.base);
    if (!v) return std::move(v).error();
    *f.out = *v;
  }
  info.vendor = static_cast<uint16_t>(vendor);
  info.subsystem_vendor = static_cast<uint16_t>(sv);
  info.subsystem_device = static_cast<uint16_t>(sd);
  info.class_code = static_cast<uint32_t>(cls);
  info.revision = static_cast<uint8_t>(rev);
  info.num_vfs = static_cast<uint16_t>(numvfs);
  info.offset = static_cast<uint16_t>(off);
  info.stride = static_cast<uint16_t>(stride);
  info.vf_device = static_cast<uint16_t>(vfdev);
  if (auto t = read_file(root, d / "numa_node")) {
    std::string v = trim(*t);
    int node = -1;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), node);
    info.numa_node = ec == std::errc() && p == v.data() + v.size() ? node : -1;
  }
  if (auto t = read_file(root, d / "local_cpulist")) info.local_cpulist = trim(*t);
  if (auto t = read_link(root, d / "iommu")) info.iommu_unit = fs::path(*t).filename().string();
  if (auto t = read_file(root, d / "resource")) {
    // Line 7 is the first IOV BAR (PCI_IOV_RESOURCES); VF n's BAR0 is at start + n * size.
    size_t pos = 0;
    for (int line = 0; line < 7 && pos != std::string::npos; ++line) {
      pos = t->find('\n', pos);
      if (pos != std::string::npos) ++pos;
    }
    unsigned long long start = 0, end = 0, flags = 0;
    if (pos != std::string::npos && pos < t->size() &&
        std::sscanf(t->c_str() + pos, "%llx %llx %llx", &start, &end, &flags) == 3 && end > start &&
        info.total_vfs > 0) {
      info.iov_bar_start = start;
      info.vf_bar_size = (end - start + 1) / info.total_vfs;
    }
  }
  return info;
}

Result<std::vector<PciAddress>> add_vfs(const fs::path& root, const PciAddress& pf, unsigned count,
                                        const VfOptions& options) {
  const unsigned first = options.first_index;
  auto info = read_sriov_pf(root, pf);
  if (!info) return std::move(info).error().context("adding VFs of " + bdf(pf));
  if (first + count > info->total_vfs)
    return Error::sys(ERANGE, "adding VFs " + std::to_string(first) + ".." + std::to_string(first + count) + " of " +
                                  bdf(pf) + " (sriov_totalvfs " + std::to_string(info->total_vfs) + ")");
  if (!options.driver.empty())
    if (auto r = ensure_driver(root, options.driver); !r) return std::move(r).error();

  // Each VF gets a new group (VFs are isolated by ACS), lowest free numbers first like the
  // kernel's ida; the existing groups are listed once, not per VF.
  std::set<unsigned> used;
  if (options.iommu_groups && !options.first_iommu_group && !options.shared_iommu_group) {
    auto names = list_dir(root, "kernel/iommu_groups");
    if (!names) return std::move(names).error();
    for (const auto& n : *names)
      if (auto v = parse_num(n, 10)) used.insert(static_cast<unsigned>(*v));
  }
  unsigned next_group = options.first_iommu_group.value_or(0);

  const fs::path parent_dir = info->dir.parent_path();
  std::vector<PciAddress> out;
  out.reserve(count);
  for (unsigned i = first; i < first + count; ++i) {
    FunctionSpec s;
    s.address = vf_address(pf, info->offset, info->stride, i);
    s.physfn = pf;
    s.vf_index = i;
    // pci_iov_add_virtfn(): vendor and subsystem vendor from the PF, device from VF Device ID,
    // class and revision read from the VF's config (the same as the PF's on real devices).
    s.vendor = info->vendor;
    s.device = info->vf_device;
    s.subsystem_vendor = info->subsystem_vendor;
    s.subsystem_device = options.subsystem_device.value_or(info->subsystem_device);
    s.class_code = info->class_code;
    s.revision = info->revision;
    s.pcie = PcieType::endpoint;
    s.numa_node = info->numa_node;
    s.local_cpulist = info->local_cpulist;
    s.irq = 0;           // MSI-X only
    s.has_reset = true;  // VFs must support FLR
    if (info->vf_bar_size) {
      s.bar0_start = info->iov_bar_start + static_cast<uint64_t>(i) * info->vf_bar_size;
      s.bar0_size = info->vf_bar_size;
    }
    s.driver = options.driver;
    if (!options.iommu_groups) {
      s.iommu_group.reset();
    } else if (options.shared_iommu_group) {
      s.iommu_group = options.shared_iommu_group;
    } else if (options.first_iommu_group) {
      s.iommu_group = next_group++;
    } else {
      while (used.count(next_group)) ++next_group;
      used.insert(next_group);
      s.iommu_group = next_group;
    }
    s.iommu_group_type = options.iommu_group_type;
    s.iommu_unit = info->iommu_unit;
    if (auto r = add_function_in(root, parent_dir, s); !r) return std::move(r).error();
    out.push_back(s.address);
  }
  return out;
}

Result<void> write_numvfs(const fs::path& root, const PciAddress& pf, unsigned num_vfs) {
  auto dir = device_dir(root, pf);
  if (!dir) return std::move(dir).error();
  if (!exists(root, *dir / "sriov_numvfs")) return Error::sys(ENOENT, bdf(pf) + " is not an SR-IOV PF");
  if (auto r = write_file(root, *dir / "sriov_numvfs", std::to_string(num_vfs) + "\n"); !r) return r;
  const fs::path cfgpath = *dir / "config";
  UniqueFd fd(::open((root / cfgpath).c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) return sys(errno, "opening " + cfgpath.string());
  std::array<unsigned char, 4096> cfg{};
  ssize_t n = ::pread(fd.get(), cfg.data(), cfg.size(), 0);
  if (n < 0) return sys(errno, "reading " + cfgpath.string());
  // Extended capabilities start at 0x100: header = ID (15:0), version (19:16), next (31:20).
  size_t off = 0x100;
  for (int guard = 0; guard < 1024 && off >= 0x100 && off + 0x40 <= static_cast<size_t>(n); ++guard) {
    const uint32_t h = get32(cfg.data() + off);
    if (h == 0 || h == 0xffffffff) break;
    if ((h & 0xffff) == 0x0010) {
      unsigned char ctrl[2] = {cfg[off + 8], cfg[off + 9]};
      if (num_vfs) ctrl[0] |= 0x09;  // VF Enable, VF MSE
      else ctrl[0] &= static_cast<unsigned char>(~0x09);
      const unsigned char nv[2] = {static_cast<unsigned char>(num_vfs), static_cast<unsigned char>(num_vfs >> 8)};
      if (::pwrite(fd.get(), ctrl, 2, static_cast<off_t>(off + 0x08)) != 2 ||
          ::pwrite(fd.get(), nv, 2, static_cast<off_t>(off + 0x10)) != 2)
        return sys(errno, "writing " + cfgpath.string());
      return ok();
    }
    off = (h >> 20) & 0xffc;
  }
  return ok();  // no capability in config (a hand-made tree): the text file is what counts
}

// ---- netdevs -------------------------------------------------------------------------------

Result<void> add_netdev(const fs::path& root, const PciAddress& address, const NetdevSpec& spec) {
  if (spec.name.empty() || spec.name.find('/') != std::string::npos)
    return Error::sys(EINVAL, "netdev name \"" + spec.name + "\"");
  auto dir = device_dir(root, address);
  if (!dir) return std::move(dir).error().context("adding netdev " + spec.name);
  unsigned ifindex = spec.ifindex;
  if (ifindex == 0) {
    auto n = next_free_ifindex(root);
    if (!n) return std::move(n).error();
    ifindex = *n;
  }
  // Network devices of a PCI function live in <dev>/net/<ifname>/ (the "net" class glue
  // directory); class/net/<ifname> points there. The class link goes first: it is what makes
  // the name unique host-wide.
  const fs::path ndir = *dir / "net" / spec.name;
  if (auto r = make_dir(root, "class/net"); !r) return std::move(r).error();
  if (auto r = make_link(root, fs::path("class/net") / spec.name, ndir); !r) return r;
  if (auto r = make_dir(root, *dir / "net"); !r) return std::move(r).error();
  if (auto r = make_dir(root, ndir, true); !r) return std::move(r).error();
  UniqueFd nfd(::open((root / ndir).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!nfd) return sys(errno, "opening " + ndir.string());
  const std::pair<const char*, std::string> files[] = {
      {"address", spec.mac + "\n"},
      {"addr_len", "6\n"},
      {"ifindex", std::to_string(ifindex) + "\n"},
      {"operstate", spec.operstate + "\n"},
      {"carrier", spec.carrier ? "1\n" : "0\n"},
      {"mtu", std::to_string(spec.mtu) + "\n"},
      {"type", std::to_string(spec.type) + "\n"},
      {"flags", fmt("0x%x\n", spec.flags)},
      {"dev_port", std::to_string(spec.dev_port) + "\n"},
      {"uevent", "INTERFACE=" + spec.name + "\nIFINDEX=" + std::to_string(ifindex) + "\n"},
  };
  for (const auto& [name, text] : files)
    if (auto r = write_at(nfd.get(), name, text, ndir); !r) return r;
  if (auto r = make_link(root, ndir / "device", *dir); !r) return r;
  return make_link(root, ndir / "subsystem", "class/net");
}

Result<void> remove_netdev(const fs::path& root, std::string_view name) {
  const fs::path cl = fs::path("class/net") / name;
  auto t = read_link(root, cl);
  if (!t) return std::move(t).error().context("removing netdev " + std::string(name));
  const fs::path ndir = (cl.parent_path() / *t).lexically_normal();
  if (auto r = remove_path(root, cl); !r) return r;
  if (auto r = remove_tree(root, ndir); !r) return r;
  // The glue directory goes with its last netdev (cleanup_glue_dir): rmdir refuses
  // (ENOTEMPTY) while another netdev is left in it.
  ::rmdir((root / ndir.parent_path()).c_str());
  return ok();
}

Result<unsigned> next_free_ifindex(const fs::path& root) {
  auto names = list_dir(root, "class/net");
  if (!names) return std::move(names).error();
  unsigned top = 1;  // lo
  for (const auto& n : *names) {
    auto t = read_file(root, fs::path("class/net") / n / "ifindex");
    if (!t) continue;
    if (auto v = parse_num(*t, 10)) top = std::max(top, static_cast<unsigned>(*v));
  }
  return top + 1;
}

}  // namespace sriovd::simtree
