#include "pci/inventory.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "base/parallel.h"
#include "pci/decode.h"

namespace sriovd::pci {

namespace {

// One read into a stack buffer: sysfs produces a small attribute in a single read, and regular
// files in fake trees return everything below the buffer size in one read too.
// Returns the byte count, or -errno.
ssize_t read_small(int dirfd, const char* name, char* buf, size_t size) {
  int fd = ::openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return -errno;
  ssize_t n;
  do {
    n = ::read(fd, buf, size);
  } while (n < 0 && errno == EINTR);
  int e = errno;
  ::close(fd);
  return n < 0 ? -e : n;
}

ssize_t readlink_small(int dirfd, const char* name, char* buf, size_t size) {
  ssize_t n = ::readlinkat(dirfd, name, buf, size);
  return n < 0 ? -errno : n;
}

std::string describe(int neg_errno) { return std::strerror(-neg_errno); }

class DeviceReader {
 public:
  DeviceReader(int dirfd, Device& dev, DirEnd dir_end) : dirfd_(dirfd), dev_(dev), dir_end_(dir_end) {}

  // `netdevs`: also list the function's net directory (a whole scan takes them from class/net).
  void read_all(bool netdevs) {
    read_uevent();
    read_numa();
    read_iommu_group();
    read_physfn();
    read_sriov();
    if (netdevs) read_netdevs();
  }

 private:
  void warn(const char* what, const std::string& why) { dev_.warnings.push_back(std::string(what) + ": " + why); }

  // Returns the attribute's text, or nullopt with a warning when it is `required` and absent.
  std::optional<std::string_view> attr(const char* name, bool required) {
    ssize_t n = read_small(dirfd_, name, buf_, sizeof buf_);
    if (n < 0) {
      if (required || n != -ENOENT)
        warn(name, n == -ENOENT ? "missing" : "unreadable (" + describe(static_cast<int>(n)) + ")");
      return std::nullopt;
    }
    return std::string_view(buf_, static_cast<size_t>(n));
  }

  // The target of the link `name`, or nullopt: silently when it does not exist (the links here
  // are optional), with a warning when it cannot be read.
  std::optional<std::string_view> link(const char* name) {
    ssize_t l = readlink_small(dirfd_, name, buf_, sizeof buf_);
    if (l < 0) {
      if (l != -ENOENT) warn(name, "unreadable (" + describe(static_cast<int>(l)) + ")");
      return std::nullopt;
    }
    return std::string_view(buf_, static_cast<size_t>(l));
  }

  void read_uevent() {
    char ubuf[1024];
    ssize_t n = read_small(dirfd_, "uevent", ubuf, sizeof ubuf);
    Uevent u;
    if (n >= 0) {
      u = parse_uevent(std::string_view(ubuf, static_cast<size_t>(n)));
    } else {
      warn("uevent", n == -ENOENT ? "missing" : "unreadable (" + describe(static_cast<int>(n)) + ")");
    }
    if (u.slot && *u.slot != dev_.address)
      warn("uevent", "PCI_SLOT_NAME " + u.slot->to_string() + " differs from the directory name");
    // Fall back to the single-value attributes for whatever uevent did not give.
    if (u.vendor_id && u.device_id) {
      dev_.vendor_id = u.vendor_id;
      dev_.device_id = u.device_id;
    } else {
      if (auto s = attr("vendor", true)) {
        dev_.vendor_id = parse_hex16(*s);
        if (!dev_.vendor_id) warn("vendor", "not a hex id");
      }
      if (auto s = attr("device", true)) {
        dev_.device_id = parse_hex16(*s);
        if (!dev_.device_id) warn("device", "not a hex id");
      }
    }
    if (u.subsystem_vendor_id) {
      dev_.subsystem_vendor_id = u.subsystem_vendor_id;
      dev_.subsystem_device_id = u.subsystem_device_id;
    } else if (n < 0 || !u.vendor_id) {
      if (auto s = attr("subsystem_vendor", false)) dev_.subsystem_vendor_id = parse_hex16(*s);
      if (auto s = attr("subsystem_device", false)) dev_.subsystem_device_id = parse_hex16(*s);
    }
    if (u.pci_class) {
      dev_.class_id = u.pci_class;
    } else if (auto s = attr("class", true)) {
      dev_.class_id = parse_class(*s);
      if (!dev_.class_id) warn("class", "not a hex class code");
    }
    if (n >= 0) {
      // The kernel adds DRIVER= to uevent exactly while a driver is bound.
      dev_.driver = u.driver;
    } else if (auto target = link("driver")) {
      dev_.driver = driver_from_link(*target);
      if (!dev_.driver) warn("driver", "link does not point into bus/pci/drivers");
    }
  }

  void read_numa() {
    // Kernels without CONFIG_NUMA have no numa_node file: not a warning.
    auto s = attr("numa_node", false);
    if (!s) return;
    auto v = parse_int(*s, -1, 1 << 20);
    if (!v) {
      warn("numa_node", "not an integer");
    } else if (*v >= 0) {
      dev_.numa_node = static_cast<int>(*v);
    }
  }

  void read_iommu_group() {
    // No link: the IOMMU is off or the device is not translated. Not a warning.
    auto target = link("iommu_group");
    if (!target) return;
    dev_.iommu_group = iommu_group_from_link(*target);
    if (!dev_.iommu_group) warn("iommu_group", "link does not point to kernel/iommu_groups/N");
  }

  void read_physfn() {
    auto target = link("physfn");
    if (!target) return;
    dev_.physfn = address_from_link(*target);
    if (!dev_.physfn) warn("physfn", "link does not name a PCI address");
  }

  std::optional<uint32_t> sriov_u32(const char* name) {
    auto s = attr(name, true);
    if (!s) return std::nullopt;
    auto v = parse_int(*s, 0, UINT16_MAX);
    if (!v) warn(name, "not an integer");
    return v ? std::optional<uint32_t>(static_cast<uint32_t>(*v)) : std::nullopt;
  }

  void read_sriov() {
    // sriov_totalvfs exists only on functions with an SR-IOV capability (PFs); a VF never has
    // one (PCIe: the SR-IOV capability is not implemented in VFs), so don't ask.
    if (dev_.physfn) return;
    ssize_t n = read_small(dirfd_, "sriov_totalvfs", buf_, sizeof buf_);
    if (n == -ENOENT) return;
    SriovInfo s;
    if (n < 0) {
      warn("sriov_totalvfs", "unreadable (" + describe(static_cast<int>(n)) + ")");
    } else if (auto v = parse_int(std::string_view(buf_, static_cast<size_t>(n)), 0, UINT16_MAX)) {
      s.total_vfs = static_cast<uint32_t>(*v);
    } else {
      warn("sriov_totalvfs", "not an integer");
    }
    s.num_vfs = sriov_u32("sriov_numvfs").value_or(0);
    s.offset = sriov_u32("sriov_offset");
    s.stride = sriov_u32("sriov_stride");
    if (auto t = attr("sriov_vf_device", true)) {
      s.vf_device_id = parse_bare_hex16(*t);
      if (!s.vf_device_id) warn("sriov_vf_device", "not a hex id");
    }
    if (auto t = attr("sriov_drivers_autoprobe", true)) {
      s.drivers_autoprobe = parse_bool01(*t);
      if (!s.drivers_autoprobe) warn("sriov_drivers_autoprobe", "not 0 or 1");
    }
    dev_.sriov = s;
  }

 public:
  // The names in the function's net directory, sorted.
  void read_netdevs() {
    int fd = ::openat(dirfd_, "net", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      if (errno != ENOENT) warn("net", std::string("unreadable (") + std::strerror(errno) + ")");
      return;
    }
    UniqueFd owned(fd);
    auto entries = list_dir_fd(fd, dir_end_);
    if (!entries) {
      warn("net", entries.error().message);
      return;
    }
    for (auto& e : *entries) dev_.netdevs.push_back(std::move(e.name));
    std::sort(dev_.netdevs.begin(), dev_.netdevs.end());
  }

 private:
  int dirfd_;
  Device& dev_;
  DirEnd dir_end_;
  char buf_[512];
};

void read_into(const SysfsRoot& root, Device& dev, const char* name, bool netdevs = true) {
  UniqueFd dir(::openat(root.pci_devices_fd(), name, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) {
    dev.warnings.push_back(std::string("device directory: ") +
                           (errno == ENOENT ? "dangling link" : std::strerror(errno)));
    return;
  }
  DeviceReader(dir.get(), dev, root.dir_end()).read_all(netdevs);
}

// Every netdev of the tree's PCI functions, by the function's directory name, from one listing
// of class/net: each entry links to devices/.../<function>/net/<name>, so a readlink per netdev
// replaces opening and listing the net directory of each function (most have none). Netdevs
// whose parent is not a PCI function (virtual, USB) are left out. nullopt without class/net.
// The entries are the same the functions' net directories hold: both show the netdevs of the
// network namespace sysfs was mounted in.
std::optional<std::unordered_map<std::string, std::vector<std::string>>> netdevs_by_function(const SysfsRoot& root) {
  auto dir = open_dir_at(root.fd(), "class/net");
  if (!dir) return std::nullopt;
  auto entries = list_dir_fd(dir->get(), root.dir_end());
  if (!entries) return std::nullopt;
  std::unordered_map<std::string, std::vector<std::string>> out;
  char buf[PATH_MAX];
  for (auto& e : *entries) {
    ssize_t n = ::readlinkat(dir->get(), e.name.c_str(), buf, sizeof buf - 1);
    if (n <= 0) continue;
    std::string_view target(buf, static_cast<size_t>(n));
    // ".../<function>/net/<name>"
    std::string_view tail = "/net/";
    if (target.size() < e.name.size() + tail.size() || target.substr(target.size() - e.name.size()) != e.name) continue;
    target.remove_suffix(e.name.size());
    if (target.substr(target.size() - tail.size()) != tail) continue;
    target.remove_suffix(tail.size());
    auto slash = target.rfind('/');
    std::string_view function = slash == std::string_view::npos ? target : target.substr(slash + 1);
    if (!PciAddress::parse(function)) continue;
    out[std::string(function)].push_back(std::move(e.name));
  }
  for (auto& [function, names] : out) std::sort(names.begin(), names.end());
  return out;
}

}  // namespace

void derive_vf_indexes(const SysfsRoot& root, std::vector<Device>& devices) {
  std::unordered_map<PciAddress, const Device*> by_addr;
  by_addr.reserve(devices.size());
  for (const auto& d : devices) by_addr.emplace(d.address, &d);
  // PFs whose offset/stride could not be read: map VF address → index from virtfnN links.
  std::unordered_map<PciAddress, std::unordered_map<PciAddress, int>> from_links;

  for (auto& d : devices) {
    if (!d.physfn) continue;
    auto it = by_addr.find(*d.physfn);
    if (it == by_addr.end()) {
      d.warnings.push_back("physfn: " + d.physfn->to_string() + " is not in the inventory");
      continue;
    }
    const Device& pf = *it->second;
    // SR-IOV: VF n's routing ID is PF RID + First VF Offset + n * VF Stride (PCIe spec 9.3.3.9).
    if (pf.sriov && pf.sriov->offset && pf.sriov->stride && *pf.sriov->stride > 0 &&
        pf.address.domain == d.address.domain) {
      int64_t delta = static_cast<int64_t>(d.address.routing_id()) - pf.address.routing_id() - *pf.sriov->offset;
      if (delta >= 0 && delta % *pf.sriov->stride == 0) {
        d.vf_index = static_cast<int>(delta / *pf.sriov->stride);
        continue;
      }
    }
    auto& links = from_links[pf.address];
    if (links.empty()) {
      auto dir = open_dir_at(root.pci_devices_fd(), pf.address.to_string().c_str());
      if (dir) {
        if (auto entries = list_dir_fd(dir->get(), root.dir_end())) {
          for (const auto& e : *entries) {
            auto idx = virtfn_index(e.name);
            if (!idx) continue;
            if (auto target = readlink_at(dir->get(), e.name.c_str()))
              if (auto vf = address_from_link(*target)) links.emplace(*vf, *idx);
          }
        }
      }
    }
    auto li = links.find(d.address);
    if (li != links.end()) {
      d.vf_index = li->second;
    } else {
      d.warnings.push_back("vf_index: no virtfn link of " + pf.address.to_string() + " points here");
    }
  }
}

Result<Inventory> scan(const SysfsRoot& root) {
  auto entries = root.list("bus/pci/devices");
  if (!entries) return std::move(entries).error().context("listing " + (root.path() / "bus/pci/devices").string());
  Inventory inv;
  std::vector<const char*> names;
  inv.devices.reserve(entries->size());
  names.reserve(entries->size());
  for (const auto& e : *entries) {
    auto addr = PciAddress::parse(e.name);
    if (!addr) {
      inv.warnings.push_back("bus/pci/devices/" + e.name + ": not a PCI address, ignored");
      continue;
    }
    inv.devices.emplace_back().address = *addr;
    names.push_back(e.name.c_str());
  }
  // The scan is syscall-bound (about a dozen per function) and the functions are independent:
  // split them over the cores. Each worker writes only the devices of its own ranges. Reading
  // the netdevs from class/net is one more piece of the work: the worker that comes first does
  // it, and the others take its share of functions meanwhile.
  std::optional<std::unordered_map<std::string, std::vector<std::string>>> netdevs;
  std::atomic_flag net_taken = ATOMIC_FLAG_INIT;
  parallel_for(inv.devices.size(), [&](size_t begin, size_t end) {
    if (!net_taken.test_and_set(std::memory_order_relaxed)) netdevs = netdevs_by_function(root);
    for (size_t i = begin; i < end; ++i) read_into(root, inv.devices[i], names[i], false);
  });
  for (size_t i = 0; i < inv.devices.size(); ++i) {
    if (!netdevs) {
      // No class/net in this tree: each function's own net directory.
      if (UniqueFd dir(::openat(root.pci_devices_fd(), names[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC)); dir)
        DeviceReader(dir.get(), inv.devices[i], root.dir_end()).read_netdevs();
      continue;
    }
    if (auto it = netdevs->find(names[i]); it != netdevs->end()) inv.devices[i].netdevs = std::move(it->second);
  }
  std::sort(inv.devices.begin(), inv.devices.end(),
            [](const Device& a, const Device& b) { return a.address < b.address; });
  derive_vf_indexes(root, inv.devices);
  return inv;
}

Result<Device> read_function(const SysfsRoot& root, const PciAddress& address) {
  std::string name = address.to_string();
  Device dev;
  dev.address = address;
  UniqueFd dir(::openat(root.pci_devices_fd(), name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) {
    // Absent, or a link left dangling by a removal in progress: either way not there.
    if (errno == ENOENT) return Error::make(ErrorCode::not_found, "no PCI device " + name);
    dev.warnings.push_back(std::string("device directory: ") + std::strerror(errno));
    return dev;
  }
  DeviceReader(dir.get(), dev, root.dir_end()).read_all(true);
  return dev;
}

Result<Device> read_device(const SysfsRoot& root, const PciAddress& address) {
  auto dev = read_function(root, address);
  if (!dev || !dev->physfn) return dev;
  // derive_vf_indexes needs the PF; read it too.
  std::vector<Device> two;
  two.push_back(std::move(*dev));
  Device pf;
  pf.address = *two[0].physfn;
  read_into(root, pf, pf.address.to_string().c_str());
  two.push_back(std::move(pf));
  std::sort(two.begin(), two.end(), [](const Device& a, const Device& b) { return a.address < b.address; });
  derive_vf_indexes(root, two);
  for (auto& d : two)
    if (d.address == address) return std::move(d);
  return Error::make(ErrorCode::internal, "lost " + address.to_string());
}

}  // namespace sriovd::pci
