#include "sim/sim_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <set>

#include "base/fd.h"
#include "pci/sysfs.h"

namespace sriovd::simtree {

namespace {

constexpr mode_t kFileMode = 0644;
constexpr mode_t kDirMode = 0755;

// Where BARs go. Each bus gets a 4 GiB window: function BAR0s at devfn << 20 (1 MiB each), PF
// IOV BARs at +2 GiB + devfn << 23 (8 MiB each). Bridges' prefetchable windows cover their
// secondary..subordinate buses, so config space, `resource` and the windows agree.
constexpr uint64_t kMemBase = 0x200000000000ULL;
uint64_t bus_window(uint32_t domain, unsigned bus) {
  return kMemBase + (static_cast<uint64_t>(domain) << 40) + (static_cast<uint64_t>(bus) << 32);
}
uint64_t default_bar0(const PciAddress& a) {
  return bus_window(a.domain, a.bus) + (static_cast<uint64_t>(a.device << 3 | a.function) << 20);
}
uint64_t default_iov_bar(const PciAddress& a) {
  return bus_window(a.domain, a.bus) + 0x80000000ULL +
         (static_cast<uint64_t>(a.device << 3 | a.function) << 23);
}

std::string fmt(const char* format, auto... args) {
  char buf[256];
  int n = std::snprintf(buf, sizeof buf, format, args...);
  return std::string(buf, static_cast<size_t>(std::clamp(n, 0, static_cast<int>(sizeof buf) - 1)));
}

std::string bdf(const PciAddress& a) { return a.to_string(); }

// Splits a relative path on '/', dropping empty and "." components.
std::vector<std::string> components(const std::string& p) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    if (j > i && !(j - i == 1 && p[i] == '.')) out.emplace_back(p, i, j - i);
    i = j + 1;
  }
  return out;
}

Error sys(int err, const std::string& what) { return Error::sys(err, what); }

// Writes `data` to dirfd/name, creating or truncating it.
Result<void> write_at(int dirfd, const char* name, std::string_view data, const fs::path& dir) {
  UniqueFd fd(::openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, kFileMode));
  if (!fd) return sys(errno, "writing " + (dir / name).string());
  while (!data.empty()) {
    ssize_t n = ::write(fd.get(), data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys(errno, "writing " + (dir / name).string());
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return ok();
}

Result<void> write_file(const fs::path& root, const fs::path& rel, std::string_view data) {
  auto r = write_at(AT_FDCWD, (root / rel).c_str(), data, {});
  if (!r) return sys(r.error().errnum, "writing " + rel.string());
  return ok();
}

Result<std::string> read_at(int dirfd, const char* name, const fs::path& dir) {
  UniqueFd fd(::openat(dirfd, name, O_RDONLY | O_CLOEXEC));
  if (!fd) return sys(errno, "reading " + (dir / name).string());
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys(errno, "reading " + (dir / name).string());
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    // The tree's files are regular files (or sysfs attributes, which come whole in one read):
    // a short read is the end.
    if (static_cast<size_t>(n) < sizeof buf) break;
  }
  return out;
}

Result<std::string> read_file(const fs::path& root, const fs::path& rel) {
  auto r = read_at(AT_FDCWD, (root / rel).c_str(), {});
  if (!r) return sys(r.error().errnum, "reading " + rel.string());
  return r;
}

Result<std::string> read_link(const fs::path& root, const fs::path& rel) {
  char buf[4096];
  ssize_t n = ::readlink((root / rel).c_str(), buf, sizeof buf);
  if (n < 0) return sys(errno, "reading link " + rel.string());
  return std::string(buf, static_cast<size_t>(n));
}

// Creates root/rel; `exclusive` makes an existing directory EEXIST.
Result<bool> make_dir(const fs::path& root, const fs::path& rel, bool exclusive = false) {
  if (::mkdir((root / rel).c_str(), kDirMode) == 0) return true;
  if (errno == EEXIST && !exclusive) return false;
  return sys(errno, "creating " + rel.string());
}

// Creates the link `link` (relative to root) pointing where sysfs would point it at `target`.
Result<void> make_link(const fs::path& root, const fs::path& link, const fs::path& target) {
  std::string text = relative_link(link.parent_path(), target);
  if (::symlink(text.c_str(), (root / link).c_str()) != 0)
    return sys(errno, "linking " + link.string() + " -> " + text);
  return ok();
}

// Removes the directory `name` under `dirfd` and everything in it, as `rm -r` does, from the
// entries' d_type (a tree's entries are files, links and directories); ENOENT is success.
Result<void> remove_tree_at(int dirfd, const char* name, const fs::path& where) {
  UniqueFd fd(::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return ok();
    if (errno == ENOTDIR || errno == ELOOP) {
      if (::unlinkat(dirfd, name, 0) != 0 && errno != ENOENT) return sys(errno, "removing " + where.string());
      return ok();
    }
    return sys(errno, "removing " + where.string());
  }
  auto entries = pci::list_dir_fd(fd.get());
  if (!entries) return std::move(entries).error().context("listing " + where.string());
  for (const auto& e : *entries) {
    unsigned char type = e.type;
    if (type == DT_UNKNOWN) {
      struct stat st;
      if (::fstatat(fd.get(), e.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      type = S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
    }
    if (type == DT_DIR) {
      if (auto r = remove_tree_at(fd.get(), e.name.c_str(), where / e.name); !r) return r;
    } else if (::unlinkat(fd.get(), e.name.c_str(), 0) != 0 && errno != ENOENT) {
      return sys(errno, "removing " + (where / e.name).string());
    }
  }
  if (::unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT) return sys(errno, "removing " + where.string());
  return ok();
}

Result<void> remove_tree(const fs::path& root, const fs::path& rel) {
  return remove_tree_at(AT_FDCWD, (root / rel).c_str(), rel);
}

Result<void> remove_path(const fs::path& root, const fs::path& rel) {
  if (::unlink((root / rel).c_str()) != 0 && errno != ENOENT)
    return sys(errno, "removing " + rel.string());
  return ok();
}

bool exists(const fs::path& root, const fs::path& rel) {
  struct stat st;
  return ::lstat((root / rel).c_str(), &st) == 0;
}

// Names in a directory, without "." and "..". ENOENT yields an empty list.
Result<std::vector<std::string>> list_dir(const fs::path& root, const fs::path& rel) {
  std::vector<std::string> out;
  DIR* d = ::opendir((root / rel).c_str());
  if (!d) {
    if (errno == ENOENT) return out;
    return sys(errno, "listing " + rel.string());
  }
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    out.emplace_back(e->d_name);
  }
  ::closedir(d);
  return out;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

// Parses "0x8086", "8086" (base 16) or "42" (base 10), with or without the trailing newline.
std::optional<uint64_t> parse_num(std::string_view s, int base) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  if (base == 16 && s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2);
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

Result<uint64_t> read_num(const fs::path& root, const fs::path& rel, int base) {
  auto t = read_file(root, rel);
  if (!t) return std::move(t).error();
  auto v = parse_num(*t, base);
  if (!v) return Error::sys(EINVAL, "parsing " + rel.string() + " (\"" + trim(*t) + "\")");
  return *v;
}

// ---- config space --------------------------------------------------------------------------

void put8(std::string& c, size_t off, uint8_t v) { c[off] = static_cast<char>(v); }
void put16(std::string& c, size_t off, uint16_t v) {
  put8(c, off, static_cast<uint8_t>(v));
  put8(c, off + 1, static_cast<uint8_t>(v >> 8));
}
void put32(std::string& c, size_t off, uint32_t v) {
  put16(c, off, static_cast<uint16_t>(v));
  put16(c, off + 2, static_cast<uint16_t>(v >> 16));
}
uint32_t get32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

uint8_t pcie_type_code(PcieType t) {
  switch (t) {
    case PcieType::none:
    case PcieType::endpoint: return 0x0;
    case PcieType::legacy_endpoint: return 0x1;
    case PcieType::root_port: return 0x4;
    case PcieType::upstream_port: return 0x5;
    case PcieType::downstream_port: return 0x6;
    case PcieType::rc_endpoint: return 0x9;
  }
  return 0;
}

constexpr size_t kPcieCap = 0x40;     // PCI Express capability (ID 0x10), 0x3c bytes
constexpr size_t kSsvidCap = 0x80;    // bridges: Subsystem Vendor ID capability (ID 0x0d)
constexpr size_t kSriovCap = 0x100;   // PFs: SR-IOV extended capability (ID 0x0010)

uint64_t bar0_start(const FunctionSpec& s) { return s.bar0_start ? s.bar0_start : default_bar0(s.address); }
uint64_t bar0_size(const FunctionSpec& s) { return s.bar0_size ? s.bar0_size : (1ULL << 20); }

// The resource file: one "start end flags" line per resource. With CONFIG_PCI_IOV (any SR-IOV
// host) endpoints print 13 lines (6 BARs, ROM, 6 IOV BARs) and bridges 17 (plus 4 windows);
// kernels without it print 7 — readers must not depend on the count.
std::string resource_text(const FunctionSpec& s) {
  // IORESOURCE_MEM | IORESOURCE_PREFETCH | IORESOURCE_MEM_64 | IORESOURCE_SIZEALIGN plus the
  // BAR's low bits (64-bit, prefetchable) as the kernel reports them.
  constexpr uint64_t kBarFlags = 0x14220c;
  constexpr uint64_t kWindowFlags = 0x102200;  // bridge prefetchable 64-bit window
  const char* line = "0x%016llx 0x%016llx 0x%016llx\n";
  auto zero = [&] { return fmt(line, 0ULL, 0ULL, 0ULL); };
  auto res = [&](uint64_t start, uint64_t size, uint64_t flags) {
    return fmt(line, static_cast<unsigned long long>(start),
               static_cast<unsigned long long>(start + size - 1),
               static_cast<unsigned long long>(flags));
  };
  std::string out;
  const bool bridge = s.bridge.has_value();
  for (int i = 0; i < 13; ++i) {
    if (i == 0 && !bridge)
      out += res(bar0_start(s), bar0_size(s), kBarFlags);
    else if (i == 7 && s.sriov && s.sriov->total_vfs > 0)
      out += res(default_iov_bar(s.address), s.sriov->vf_bar_size * s.sriov->total_vfs, kBarFlags);
    else
      out += zero();
  }
  if (bridge) {
    uint64_t lo = bus_window(s.address.domain, s.bridge->secondary);
    uint64_t hi = bus_window(s.address.domain, s.bridge->subordinate + 1u);
    out += zero();                                    // I/O window
    out += zero();                                    // memory window
    out += res(lo, hi - lo, kWindowFlags);            // prefetchable memory window
    out += zero();
  }
  return out;
}

}  // namespace

std::string config_space(const FunctionSpec& s) {
  const bool pcie = s.pcie != PcieType::none;
  const bool vf = s.physfn.has_value();
  std::string c(pcie ? 4096 : 256, '\0');
  // SR-IOV 3.4.1.1/2: a VF's Vendor ID and Device ID registers read 0xFFFF; the kernel fills
  // the `vendor`/`device` files from the PF and sriov_vf_device. Readers must use the files.
  put16(c, 0x00, vf ? 0xffff : s.vendor);
  put16(c, 0x02, vf ? 0xffff : s.device);
  uint16_t command = 0;
  if (s.bridge) command = 0x0007;                   // I/O, memory, bus master
  else if (!s.driver.empty()) command = vf ? 0x0004 : 0x0006;  // VF memory enable is VF MSE
  put16(c, 0x04, command);
  put16(c, 0x06, pcie || s.bridge ? 0x0010 : 0x0000);  // capabilities list
  put8(c, 0x08, s.revision);
  put8(c, 0x09, static_cast<uint8_t>(s.class_code));
  put8(c, 0x0a, static_cast<uint8_t>(s.class_code >> 8));
  put8(c, 0x0b, static_cast<uint8_t>(s.class_code >> 16));
  put8(c, 0x0e, static_cast<uint8_t>((s.bridge ? 0x01 : 0x00) | (s.multifunction && !vf ? 0x80 : 0)));
  if (s.bridge) {
    put8(c, 0x18, s.address.bus);
    put8(c, 0x19, s.bridge->secondary);
    put8(c, 0x1a, s.bridge->subordinate);
    put8(c, 0x1c, 0xf0);  // I/O window disabled (base > limit)
    put8(c, 0x1d, 0x00);
    put16(c, 0x20, 0xfff0);  // memory window disabled
    put16(c, 0x22, 0x0000);
    uint64_t lo = bus_window(s.address.domain, s.bridge->secondary);
    uint64_t hi = bus_window(s.address.domain, s.bridge->subordinate + 1u) - 1;
    put16(c, 0x24, static_cast<uint16_t>(((lo >> 16) & 0xfff0) | 0x1));  // 64-bit
    put16(c, 0x26, static_cast<uint16_t>(((hi >> 16) & 0xfff0) | 0x1));
    put32(c, 0x28, static_cast<uint32_t>(lo >> 32));
    put32(c, 0x2c, static_cast<uint32_t>(hi >> 32));
    put8(c, 0x34, pcie ? kPcieCap : kSsvidCap);
    put8(c, 0x3c, static_cast<uint8_t>(s.irq));
    put8(c, 0x3d, 0x01);
  } else {
    uint64_t bar = bar0_start(s);
    if (!vf) {  // VF BARs are RO zero; the VF's memory lives in the PF's IOV BAR
      put32(c, 0x10, static_cast<uint32_t>(bar & 0xfffffff0) | 0xc);  // 64-bit prefetchable
      put32(c, 0x14, static_cast<uint32_t>(bar >> 32));
    }
    put16(c, 0x2c, s.subsystem_vendor);
    put16(c, 0x2e, s.subsystem_device);
    put8(c, 0x34, pcie ? kPcieCap : 0);
    put8(c, 0x3c, static_cast<uint8_t>(s.irq));
    put8(c, 0x3d, vf ? 0x00 : 0x01);  // VFs have no INTx
  }
  if (pcie) {
    const uint8_t type = pcie_type_code(s.pcie);
    const bool port = s.pcie == PcieType::root_port || s.pcie == PcieType::downstream_port;
    const bool has_link = s.pcie != PcieType::rc_endpoint && !vf;  // VF link registers: RsvdZ
    put8(c, kPcieCap + 0x00, 0x10);
    put8(c, kPcieCap + 0x01, s.bridge ? kSsvidCap : 0);
    put16(c, kPcieCap + 0x02, static_cast<uint16_t>(0x0002 | type << 4 | (port ? 0x0100 : 0)));
    uint32_t devcap = 0x2;  // max payload 512
    if (s.has_reset && !s.bridge && s.pcie != PcieType::rc_endpoint) devcap |= 1u << 28;  // FLR
    put32(c, kPcieCap + 0x04, devcap);
    put16(c, kPcieCap + 0x08, 0x2020);  // max payload 256, max read request 512
    if (has_link) {
      const uint32_t speed = s.link_speed & 0xf, width = s.link_width & 0x3f;
      put32(c, kPcieCap + 0x0c, speed | width << 4 | (port ? static_cast<uint32_t>(s.address.device) << 24 : 0));
      put16(c, kPcieCap + 0x10, 0x0040);  // common clock
      put16(c, kPcieCap + 0x12, static_cast<uint16_t>(speed | width << 4 | 0x1000));
      put32(c, kPcieCap + 0x2c, ((1u << (speed + 1)) - 2) & 0xfe);  // supported speeds vector
      put16(c, kPcieCap + 0x30, static_cast<uint16_t>(speed));
    }
    if (port) {
      put32(c, kPcieCap + 0x14, static_cast<uint32_t>(s.address.device + 1u) << 19);  // slot #
      put32(c, kPcieCap + 0x24, 0x20);  // ARI forwarding supported
      put16(c, kPcieCap + 0x28, 0x20);  // ... and enabled, so VFs past function 7 are reachable
    }
  }
  if (s.bridge) {
    put8(c, kSsvidCap + 0x00, 0x0d);
    put8(c, kSsvidCap + 0x01, 0);
    put16(c, kSsvidCap + 0x04, s.subsystem_vendor);
    put16(c, kSsvidCap + 0x06, s.subsystem_device);
  }
  if (pcie && s.sriov) {
    const SriovSpec& v = *s.sriov;
    put32(c, kSriovCap + 0x00, 0x0010 | 1u << 16);  // ID 0x0010, version 1, last capability
    uint16_t ctrl = v.num_vfs ? 0x0009 : 0;          // VF Enable, VF MSE
    if (s.address.function == 0) ctrl |= 0x0010;      // ARI Capable Hierarchy (lowest PF only)
    put16(c, kSriovCap + 0x08, ctrl);
    put16(c, kSriovCap + 0x0c, v.total_vfs);  // InitialVFs
    put16(c, kSriovCap + 0x0e, v.total_vfs);
    put16(c, kSriovCap + 0x10, v.num_vfs);
    put8(c, kSriovCap + 0x12, s.address.function);  // Function Dependency Link
    put16(c, kSriovCap + 0x14, v.offset);
    put16(c, kSriovCap + 0x16, v.stride);
    put16(c, kSriovCap + 0x1a, v.vf_device);
    put32(c, kSriovCap + 0x1c, 0x553);  // supported page sizes 4K..
    put32(c, kSriovCap + 0x20, 0x1);    // system page size 4K
    uint64_t iov = default_iov_bar(s.address);
    put32(c, kSriovCap + 0x24, static_cast<uint32_t>(iov & 0xfffffff0) | 0xc);
    put32(c, kSriovCap + 0x28, static_cast<uint32_t>(iov >> 32));
  }
  return c;
}

std::string relative_link(const fs::path& link_dir, const fs::path& target) {
  // sysfs_get_target_path(): climb from the link's directory until reaching an ancestor of the
  // target's parent, then descend. So a netdev's `device` link is ../../../<BDF> (climbing past
  // the device itself), not ../..
  const auto from = components(link_dir.string());
  const auto to = components(target.string());
  const size_t limit = to.empty() ? 0 : to.size() - 1;
  size_t common = 0;
  while (common < from.size() && common < limit && from[common] == to[common]) ++common;
  std::string out;
  for (size_t i = common; i < from.size(); ++i) out += "../";
  for (size_t i = common; i < to.size(); ++i) {
    out += to[i];
    if (i + 1 < to.size()) out += '/';
  }
  return out;
}

std::string modalias(uint16_t vendor, uint16_t device, uint16_t subsystem_vendor,
                     uint16_t subsystem_device, uint32_t class_code) {
  // drivers/pci/pci-driver.c pci_uevent(): "pci:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X".
  return fmt("pci:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X", vendor, device, subsystem_vendor,
             subsystem_device, (class_code >> 16) & 0xff, (class_code >> 8) & 0xff, class_code & 0xff);
}

namespace {

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

Result<void> join_iommu_group(const fs::path& root, const fs::path& devdir, const PciAddress& a,
                              unsigned group, std::string_view type) {
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
    if (auto r = ensure_pci_bus(root, devdir, root_bus_name(s.address.domain, s.bridge->secondary)); !r)
      return r;
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
      if (auto r = ensure_pci_bus(root, parent_dir, root_bus_name(s.address.domain, s.address.bus)); !r)
        return r;
    }
    if (auto r = make_link(root, pfdir / ("virtfn" + std::to_string(s.vf_index)), devdir); !r) return r;
    if (auto r = make_link(root, devdir / "physfn", pfdir); !r) return r;
  }
  return ok();
}

}  // namespace

// ---- the tree ------------------------------------------------------------------------------

Result<void> init_tree(const fs::path& root) {
  for (const char* d : {"bus", "bus/pci", "bus/pci/devices", "bus/pci/drivers", "bus/pci/slots", "kernel",
                        "kernel/iommu_groups", "class", "class/net", "class/pci_bus", "class/iommu", "devices",
                        "devices/system", "devices/system/node", "devices/virtual", "devices/virtual/iommu",
                        "module"}) {
    if (auto r = make_dir(root, d); !r) return std::move(r).error();
  }
  // bus/pci control files (drivers/pci/pci-driver.c, probe.c): drivers_autoprobe reads "1".
  const std::pair<const char*, const char*> files[] = {
      {"bus/pci/drivers_probe", ""}, {"bus/pci/drivers_autoprobe", "1\n"}, {"bus/pci/rescan", ""},
      {"bus/pci/resource_alignment", "\n"}, {"bus/pci/uevent", ""},
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
    return Error::sys(EBUSY, "binding " + name + " to " + std::string(driver) + ": bound to " +
                                 fs::path(*cur).filename().string());
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

Result<void> set_iommu_group(const fs::path& root, const PciAddress& address, unsigned group,
                             std::string_view type) {
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
  for (Field f : {Field{"vendor", 16, &vendor}, Field{"subsystem_vendor", 16, &sv},
                  Field{"subsystem_device", 16, &sd}, Field{"class", 16, &cls}, Field{"revision", 16, &rev},
                  Field{"sriov_numvfs", 10, &numvfs}, Field{"sriov_offset", 10, &off},
                  Field{"sriov_stride", 10, &stride}, Field{"sriov_vf_device", 16, &vfdev}}) {
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
    return Error::sys(ERANGE, "adding VFs " + std::to_string(first) + ".." + std::to_string(first + count) +
                                  " of " + bdf(pf) + " (sriov_totalvfs " + std::to_string(info->total_vfs) + ")");
  if (!options.driver.empty())
    if (auto r = ensure_driver(root, options.driver); !r) return std::move(r).error();

  // Each VF gets a new group (VFs are isolated by ACS), lowest free numbers first like the
  // kernel's ida; the existing groups are listed once, not per VF.
  std::set<unsigned> used;
  if (options.iommu_groups && !options.first_iommu_group) {
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
    s.irq = 0;  // MSI-X only
    s.has_reset = true;  // VFs must support FLR
    if (info->vf_bar_size) {
      s.bar0_start = info->iov_bar_start + static_cast<uint64_t>(i) * info->vf_bar_size;
      s.bar0_size = info->vf_bar_size;
    }
    s.driver = options.driver;
    if (!options.iommu_groups) {
      s.iommu_group.reset();
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
