#include <cstring>

#include "sim/sim_tree.h"
#include "sim/sim_tree_util.h"

// The config space and `resource` file add_function writes, and the helpers that format what
// the kernel formats (modalias, relative links).

namespace sriovd::simtree {

using namespace detail;

namespace {

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

constexpr size_t kPcieCap = 0x40;    // PCI Express capability (ID 0x10), 0x3c bytes
constexpr size_t kSsvidCap = 0x80;   // bridges: Subsystem Vendor ID capability (ID 0x0d)
constexpr size_t kSriovCap = 0x100;  // PFs: SR-IOV extended capability (ID 0x0010)

uint64_t bar0_start(const FunctionSpec& s) { return s.bar0_start ? s.bar0_start : default_bar0(s.address); }
uint64_t bar0_size(const FunctionSpec& s) { return s.bar0_size ? s.bar0_size : (1ULL << 20); }

// The resource file: one "start end flags" line per resource. With CONFIG_PCI_IOV (any SR-IOV
// host) endpoints print 13 lines (6 BARs, ROM, 6 IOV BARs) and bridges 17 (plus 4 windows);
// kernels without it print 7 — readers must not depend on the count.
}  // namespace

std::string detail::resource_text(const FunctionSpec& s) {
  // IORESOURCE_MEM | IORESOURCE_PREFETCH | IORESOURCE_MEM_64 | IORESOURCE_SIZEALIGN plus the
  // BAR's low bits (64-bit, prefetchable) as the kernel reports them.
  constexpr uint64_t kBarFlags = 0x14220c;
  constexpr uint64_t kWindowFlags = 0x102200;  // bridge prefetchable 64-bit window
  const char* line = "0x%016llx 0x%016llx 0x%016llx\n";
  auto zero = [&] { return fmt(line, 0ULL, 0ULL, 0ULL); };
  auto res = [&](uint64_t start, uint64_t size, uint64_t flags) {
    return fmt(line, static_cast<unsigned long long>(start), static_cast<unsigned long long>(start + size - 1),
               static_cast<unsigned long long>(flags));
  };
  std::string out;
  const bool bridge = s.bridge.has_value();
  for (int i = 0; i < 13; ++i) {
    if (i == 0 && !bridge) out += res(bar0_start(s), bar0_size(s), kBarFlags);
    else if (i == 7 && s.sriov && s.sriov->total_vfs > 0)
      out += res(default_iov_bar(s.address), s.sriov->vf_bar_size * s.sriov->total_vfs, kBarFlags);
    else out += zero();
  }
  if (bridge) {
    uint64_t lo = bus_window(s.address.domain, s.bridge->secondary);
    uint64_t hi = bus_window(s.address.domain, s.bridge->subordinate + 1u);
    out += zero();                          // I/O window
    out += zero();                          // memory window
    out += res(lo, hi - lo, kWindowFlags);  // prefetchable memory window
    out += zero();
  }
  return out;
}

// One function on purpose, ~100 lines: the registers are written in offset order, header then
// capabilities, so it reads as the config space map it produces.
std::string config_space(const FunctionSpec& s) {
  const bool pcie = s.pcie != PcieType::none;
  const bool vf = s.physfn.has_value();
  std::string c(pcie ? 4096 : 256, '\0');
  // SR-IOV 3.4.1.1/2: a VF's Vendor ID and Device ID registers read 0xFFFF; the kernel fills
  // the `vendor`/`device` files from the PF and sriov_vf_device. Readers must use the files.
  put16(c, 0x00, vf ? 0xffff : s.vendor);
  put16(c, 0x02, vf ? 0xffff : s.device);
  uint16_t command = 0;
  if (s.bridge) command = 0x0007;                              // I/O, memory, bus master
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
    uint32_t devcap = 0x2;                                                                // max payload 512
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
      put32(c, kPcieCap + 0x24, 0x20);                                                // ARI forwarding supported
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
    uint16_t ctrl = v.num_vfs ? 0x0009 : 0;         // VF Enable, VF MSE
    if (s.address.function == 0) ctrl |= 0x0010;    // ARI Capable Hierarchy (lowest PF only)
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

std::string modalias(uint16_t vendor, uint16_t device, uint16_t subsystem_vendor, uint16_t subsystem_device,
                     uint32_t class_code) {
  // drivers/pci/pci-driver.c pci_uevent(): "pci:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X".
  return fmt("pci:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X", vendor, device, subsystem_vendor, subsystem_device,
             (class_code >> 16) & 0xff, (class_code >> 8) & 0xff, class_code & 0xff);
}

}  // namespace sriovd::simtree
