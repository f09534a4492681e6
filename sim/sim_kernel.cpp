#include "sim/sim_kernel.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "base/fd.h"
#include "sim/kstrtox.h"
#include "sim/sim_tree.h"
#include "pci/decode.h"

// Kernel sources followed here are Linux 6.1 (Debian's linux-source-6.1). Each emulated store
// names the function it follows; the order of its checks is the kernel's, since callers see only
// the first failing one.

namespace sriovd::kernel {

namespace fs = std::filesystem;
using json = nlohmann::json;

// A uevent a call will send once it is done (so the receiver reads the tree as it ends up).
struct PendingUevent {
  std::string action, devpath, subsystem;
  std::vector<std::string> pairs;  // KEY=VALUE from the object's uevent file
};

namespace {

constexpr const char* kStateDir = ".sriovd-sim";
constexpr const char* kVfDir = ".sriovd-sim-vf";
constexpr const char* kLinkFile = ".sriovd-sim-link.json";
constexpr uint32_t kAnyId = 0xffffffff;  // PCI_ANY_ID
constexpr unsigned kIffUp = 0x1;
constexpr uint16_t kEthP8021Q = 0x8100;
constexpr uint16_t kEthP8021AD = 0x88a8;
constexpr size_t kPageSize = 4096;

// ---- files ---------------------------------------------------------------------------------

// The helpers take C strings; the overloads below take what callers have. Paths in the hot
// calls are built as strings: std::filesystem::path parses its components at every append,
// which cost more than the system calls these helpers make.
Result<std::string> read_text(const char* p) {
  UniqueFd fd(::open(p, O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::sys(errno, std::string("reading ") + p);
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::sys(errno, std::string("reading ") + p);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    // The tree's files are regular files: a short read is the end.
    if (static_cast<size_t>(n) < sizeof buf) break;
  }
  return out;
}

Result<void> write_text(const char* p, std::string_view data) {
  UniqueFd fd(::open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return Error::sys(errno, std::string("writing ") + p);
  while (!data.empty()) {
    ssize_t n = ::write(fd.get(), data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::sys(errno, std::string("writing ") + p);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return ok();
}

// Whole-file replacement by rename, so a crash never leaves half a state file.
Result<void> write_atomic(const char* p, std::string_view data) {
  const std::string tmp = std::string(p) + ".tmp";
  if (auto r = write_text(tmp.c_str(), data); !r) return r;
  if (::rename(tmp.c_str(), p) != 0) return Error::sys(errno, "renaming " + tmp);
  return ok();
}

std::optional<std::string> read_link(const char* p) {
  char buf[PATH_MAX];
  ssize_t n = ::readlink(p, buf, sizeof buf);
  if (n < 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

bool lexists(const char* p) {
  struct stat st;
  return ::lstat(p, &st) == 0;
}

bool is_dir(const char* p) {
  struct stat st;
  return ::stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

template <class P>
concept PathLike = std::is_same_v<P, fs::path> || std::is_same_v<P, std::string>;
template <PathLike P>
Result<std::string> read_text(const P& p) { return read_text(p.c_str()); }
template <PathLike P>
Result<void> write_text(const P& p, std::string_view data) { return write_text(p.c_str(), data); }
template <PathLike P>
Result<void> write_atomic(const P& p, std::string_view data) { return write_atomic(p.c_str(), data); }
template <PathLike P>
std::optional<std::string> read_link(const P& p) { return read_link(p.c_str()); }
template <PathLike P>
bool lexists(const P& p) { return lexists(p.c_str()); }
template <PathLike P>
bool is_dir(const P& p) { return is_dir(p.c_str()); }

std::vector<std::string> list_names(const fs::path& p) {
  std::vector<std::string> out;
  DIR* d = ::opendir(p.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    out.emplace_back(e->d_name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// realpath(3) without its readlink of every component: the kernel resolves the path once
// (open O_PATH) and /proc/self/fd names where it led. errno is open's on failure.
std::optional<fs::path> real_path(const fs::path& p) {
  int fd = ::open(p.c_str(), O_PATH | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char proc[40];
  std::snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  char buf[PATH_MAX];
  ssize_t n = ::readlink(proc, buf, sizeof buf);
  ::close(fd);
  if (n > 0 && static_cast<size_t>(n) < sizeof buf && buf[0] == '/') return fs::path(std::string(buf, static_cast<size_t>(n)));
  // No /proc: the C library's walk.
  char* r = ::realpath(p.c_str(), nullptr);
  if (!r) return std::nullopt;
  fs::path out(r);
  std::free(r);
  return out;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return std::string(s);
}

std::string hex(unsigned v, int width) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%0*x", width, v);
  return buf;
}

using sim::c_str_of;
using sim::device_name_of;
using sim::kstrtobool;
using sim::kstrtoull;
using sim::scan_hex_fields;

// ---- what the sim knows of drivers ---------------------------------------------------------

// VF device ids and the in-tree driver whose id table claims them. `subsystem_device` is what
// the VF reports when it differs from the PF's (Intel's VFs report 0x0000), -1 if the same.
struct KnownVf {
  uint16_t vendor, device;
  const char* driver;
  int subsystem_device;
};
constexpr KnownVf kKnownVfs[] = {
    {0x8086, 0x1889, "iavf", 0x0000},     // E810 Adaptive Virtual Function
    {0x8086, 0x154c, "iavf", 0x0000},     // X710/XXV710/XL710 VF
    {0x8086, 0x10ca, "igbvf", -1},        // 82576 VF
    {0x8086, 0x1520, "igbvf", -1},        // I350 VF
    {0x8086, 0x10ed, "ixgbevf", -1},      // 82599 VF
    {0x8086, 0x1515, "ixgbevf", -1},      // X540 VF
    {0x8086, 0x1565, "ixgbevf", -1},      // X550 VF
    {0x15b3, 0x1016, "mlx5_core", -1},    // ConnectX-4 Lx VF
    {0x15b3, 0x1018, "mlx5_core", -1},    // ConnectX-5 VF
    {0x15b3, 0x101e, "mlx5_core", -1},    // ConnectX family mlx5Gen VF
    {0x144d, 0xa824, "nvme", -1},         // PM173x: VFs carry the PF's device id
};

const KnownVf* known_vf(uint16_t vendor, uint16_t device) {
  for (const auto& k : kKnownVfs)
    if (k.vendor == vendor && k.device == device) return &k;
  return nullptr;
}

// How the PF drivers' ndo_set_vf_* differ (6.1 sources): whether 802.1ad port VLANs, min rates
// and forced link states are accepted, the order of the checks in ndo_set_vf_vlan, and whether
// the VF's netdev takes a new admin MAC at once (ice resets the VF, iavf re-reads its MAC) or
// only when its driver is reloaded (igb: "Reload the VF driver to make this change effective").
enum class VlanChecks : uint8_t {
  range_proto_vf,  // ice_set_vf_port_vlan
  proto_vf_range,  // mlx5e_set_vf_vlan → mlx5_eswitch_set_vport_vlan
  vf_range_proto,  // igb_ndo_set_vf_vlan, ixgbe_ndo_set_vf_vlan, i40e_ndo_set_vf_port_vlan
};
struct PfOps {
  const char* driver;
  bool qinq;        // ETH_P_8021AD accepted (ice only in Double VLAN Mode, assumed on)
  bool min_rate;    // min_tx_rate accepted; else EINVAL (i40e, ixgbe, igb)
  bool link_state;  // ndo_set_vf_link_state exists; else EOPNOTSUPP (igb)
  bool live_mac;    // the VF netdev's address follows a new admin MAC at once
  VlanChecks vlan_checks;
};
constexpr PfOps kPfOps[] = {
    {"ice", true, true, true, true, VlanChecks::range_proto_vf},
    {"i40e", false, false, true, false, VlanChecks::vf_range_proto},
    {"ixgbe", false, false, true, false, VlanChecks::vf_range_proto},
    {"igb", false, false, false, false, VlanChecks::vf_range_proto},
    {"mlx5_core", false, true, true, false, VlanChecks::proto_vf_range},
};

const PfOps* pf_ops(const std::optional<std::string>& driver) {
  if (!driver) return nullptr;
  for (const auto& o : kPfOps)
    if (*driver == o.driver) return &o;
  return nullptr;
}

// PF drivers whose remove does not disable SR-IOV (nvme_remove; pci-pf-stub has no remove):
// pci_device_remove() → pci_iov_remove() only warns "driver left SR-IOV enabled after remove"
// and the VFs stay.
bool leaves_sriov_on_remove(std::string_view driver) { return driver == "nvme" || driver == "pci-pf-stub"; }

// Drivers that take a device without making a netdev of it (vfio-pci, pci-stub, pci-pf-stub,
// uio_pci_generic, igb_uio...).
bool makes_no_netdev(std::string_view driver) {
  return driver.find("vfio") != std::string_view::npos || driver.find("stub") != std::string_view::npos ||
         driver.find("uio") != std::string_view::npos;
}

// ---- boot state and sim state --------------------------------------------------------------

struct NetdevRecord {
  std::string name, mac, operstate = "up";
  unsigned ifindex = 0, mtu = 1500, flags = 0x1003, dev_port = 0, type = 1;
  bool carrier = true;
};

struct BootDevice {
  std::string driver;  // empty: unbound at boot
  uint16_t vendor = 0, device = 0;
  bool vf = false;
  std::vector<NetdevRecord> netdevs;
  std::optional<uint16_t> vf_subsystem_device;  // PFs with VFs at boot: what the VFs reported
};

struct BootData {
  std::map<std::string, BootDevice> devices;  // by BDF
  unsigned max_ifindex = 1;
  // Derived: the vendor:device pairs each driver was bound to at boot, standing in for its
  // static id table (a driver that bound 8086:1593 at boot claims 8086:1593).
  std::map<std::string, std::set<std::pair<uint16_t, uint16_t>>> claims;

  const BootDevice* find(const PciAddress& a) const {
    auto it = devices.find(a.to_string());
    return it == devices.end() ? nullptr : &it->second;
  }
  // Derived, from the tree: bus, bus/pci, bus/pci/devices and bus/pci/drivers are directories
  // (not links), as in the kernel's layout. Then a path bus/pci/devices/<BDF>/<attr> passes one
  // link on its way, and bus/pci/drivers/<drv>/<attr> none (see Sim::write_attr).
  bool plain_bus = false;

  void derive() {
    claims.clear();
    for (const auto& [bdf, d] : devices)
      if (!d.driver.empty()) claims[d.driver].insert({d.vendor, d.device});
  }
};

json to_json(const NetdevRecord& n) {
  return {{"name", n.name}, {"mac", n.mac}, {"operstate", n.operstate}, {"ifindex", n.ifindex}, {"mtu", n.mtu},
          {"flags", n.flags}, {"dev_port", n.dev_port}, {"type", n.type}, {"carrier", n.carrier}};
}

NetdevRecord netdev_from_json(const json& j) {
  NetdevRecord n;
  n.name = j.value("name", "");
  n.mac = j.value("mac", "00:00:00:00:00:00");
  n.operstate = j.value("operstate", "up");
  n.ifindex = j.value("ifindex", 0u);
  n.mtu = j.value("mtu", 1500u);
  n.flags = j.value("flags", 0x1003u);
  n.dev_port = j.value("dev_port", 0u);
  n.type = j.value("type", 1u);
  n.carrier = j.value("carrier", true);
  return n;
}

struct DynId {
  uint32_t vendor = 0, device = 0, subvendor = kAnyId, subdevice = kAnyId, cls = 0, cls_mask = 0;
};

struct SimState {
  unsigned last_ifindex = 1;  // net->ifindex: dev_new_index() counts up from the last one given
  std::map<std::string, std::vector<DynId>> dynids;  // by driver
  std::map<std::string, size_t> resets;              // by BDF
};

json to_json(const SimState& s) {
  json dyn = json::object();
  for (const auto& [drv, ids] : s.dynids) {
    json a = json::array();
    for (const auto& d : ids)
      a.push_back({{"vendor", d.vendor}, {"device", d.device}, {"subvendor", d.subvendor},
                   {"subdevice", d.subdevice}, {"class", d.cls}, {"class_mask", d.cls_mask}});
    dyn[drv] = a;
  }
  json resets = json::object();
  for (const auto& [bdf, n] : s.resets) resets[bdf] = n;
  return {{"last_ifindex", s.last_ifindex}, {"dynids", dyn}, {"resets", resets}};
}

SimState state_from_json(const json& j) {
  SimState s;
  s.last_ifindex = j.value("last_ifindex", 1u);
  if (j.contains("dynids"))
    for (const auto& [drv, arr] : j["dynids"].items())
      for (const auto& d : arr)
        s.dynids[drv].push_back(DynId{d.value("vendor", 0u), d.value("device", 0u), d.value("subvendor", kAnyId),
                                      d.value("subdevice", kAnyId), d.value("class", 0u), d.value("class_mask", 0u)});
  if (j.contains("resets"))
    for (const auto& [bdf, n] : j["resets"].items()) s.resets[bdf] = n.get<size_t>();
  return s;
}

// The attributes a PF driver keeps per VF, with the kernel's defaults for a new VF.
struct VfAttrs {
  MacAddress mac{};
  uint16_t vlan = 0;
  uint8_t qos = 0;
  uint16_t proto = kEthP8021Q;
  uint32_t max_rate = 0, min_rate = 0;
  bool spoofchk = true, trust = false;
  LinkState link = LinkState::auto_;
};

json to_json(const VfAttrs& a) {
  return {{"mac", a.mac.to_string()}, {"vlan", a.vlan}, {"qos", a.qos}, {"vlan_proto", a.proto},
          {"max_tx_rate", a.max_rate}, {"min_tx_rate", a.min_rate}, {"spoofchk", a.spoofchk},
          {"trust", a.trust}, {"link_state", static_cast<unsigned>(a.link)}};
}

VfAttrs vf_attrs_from_json(const json& j) {
  VfAttrs a;
  if (j.empty()) return a;  // a VF nothing was set on: the driver's defaults
  if (auto m = MacAddress::parse(j.value("mac", ""))) a.mac = *m;
  a.vlan = j.value("vlan", uint16_t{0});
  a.qos = j.value("qos", uint8_t{0});
  a.proto = j.value("vlan_proto", kEthP8021Q);
  a.max_rate = j.value("max_tx_rate", 0u);
  a.min_rate = j.value("min_tx_rate", 0u);
  a.spoofchk = j.value("spoofchk", true);
  a.trust = j.value("trust", false);
  a.link = static_cast<LinkState>(j.value("link_state", 0u));
  return a;
}

VfConfig to_config(const VfAttrs& a) {
  VfConfig c;
  c.mac = a.mac;
  c.vlan = a.vlan;
  c.qos = a.qos;
  c.vlan_proto = a.proto;
  c.max_tx_rate_mbps = a.max_rate;
  c.min_tx_rate_mbps = a.min_rate;
  c.spoofchk = a.spoofchk;
  c.trust = a.trust;
  c.link_state = a.link;
  return c;
}

// ---- the worker ----------------------------------------------------------------------------

// `dir` + "/" + `rel`, as one string.
std::string join(std::string_view dir, std::string_view rel) {
  std::string p;
  p.reserve(dir.size() + 1 + rel.size());
  p += dir;
  p += '/';
  p += rel;
  return p;
}

// One PCI function as found in the tree.
struct Dev {
  PciAddress addr;
  fs::path dir;     // relative to root
  std::string abs;  // the same under the root: root + "/" + dir
  std::string name() const { return addr.to_string(); }
  // The file or link `rel` below the function's directory, under the root.
  std::string in(std::string_view rel) const { return join(abs, rel); }
};

struct Ids {
  uint16_t vendor = 0, device = 0, subvendor = 0, subdevice = 0;
  uint32_t cls = 0;
};

// A probe that the driver (or the PCI core) refuses: the errno bind reports.
struct Refusal {
  int errnum;
  std::string why;
};

// Does the work of one call under SimKernel's lock. Reads the tree on demand (no caching
// across calls: the tree is the state) and loads state.json lazily, saving it in finish().
class Sim {
 public:
  Sim(const fs::path& root, const fs::path& real_root, const BootData& boot)
      : root_(root), real_root_(real_root), boot_(boot) {}

  // Where the call's uevents go (none: not collected).
  void collect_uevents(std::vector<PendingUevent>* out) { uevents_ = out; }

  // lib/kobject_uevent.c: what the kernel sends for a device — ACTION, DEVPATH, SUBSYSTEM and
  // the device's own uevent variables (for PCI: DRIVER, PCI_CLASS, PCI_ID, PCI_SUBSYS_ID,
  // PCI_SLOT_NAME, MODALIAS). Read now: a remove event carries what the device had.
  void uevent(const char* action, const fs::path& dir, const char* subsystem) {
    if (!uevents_) return;
    PendingUevent u{action, "/" + dir.string(), subsystem, {}};
    if (auto t = read_text(abs(dir / "uevent"))) {
      size_t i = 0;
      while (i < t->size()) {
        size_t j = t->find('\n', i);
        if (j == std::string::npos) j = t->size();
        if (j > i) u.pairs.push_back(t->substr(i, j - i));
        i = j + 1;
      }
    }
    uevents_->push_back(std::move(u));
  }
  void pci_uevent(const char* action, const Dev& d) { uevent(action, d.dir, "pci"); }
  void net_uevents(const char* action, const Dev& d) {
    for (const auto& n : netdevs_of(d)) uevent(action, d.dir / "net" / n, "net");
  }

  template <class T>
  Result<T> finish(Result<T> r) {
    if (dirty_) {
      auto s = save_state();
      if (!s && r.ok()) return std::move(s).error();
    }
    return r;
  }

  // -- tree queries --
  fs::path abs(const fs::path& rel) const { return root_ / rel; }
  // `rel` (relative to the root) under the root, as a string.
  std::string at(std::string_view rel) const { return join(root_.native(), rel); }

  Result<Dev> dev(const PciAddress& a) const {
    auto d = simtree::device_dir(root_, a);
    if (!d) return std::move(d).error();
    std::string under_root = at(d->native());
    return Dev{a, std::move(*d), std::move(under_root)};
  }
  std::optional<Dev> find_dev(std::string_view bdf) const {
    auto a = PciAddress::parse(bdf);
    if (!a || a->to_string() != bdf) return std::nullopt;  // the kernel's names are exact
    auto d = dev(*a);
    if (!d) return std::nullopt;
    return *d;
  }
  std::optional<std::string> driver_of(const Dev& d) const {
    auto l = read_link(d.in("driver"));
    if (!l) return std::nullopt;
    const size_t slash = l->rfind('/');
    return slash == std::string::npos ? *l : l->substr(slash + 1);
  }
  std::optional<std::string> override_of(const Dev& d) const {
    auto t = read_text(d.in("driver_override"));
    if (!t) return std::nullopt;
    return pci::parse_driver_override(*t);
  }
  std::optional<PciAddress> physfn_of(const Dev& d) const {
    auto l = read_link(d.in("physfn"));
    if (!l) return std::nullopt;
    return pci::address_from_link(*l);
  }
  bool is_pf(const Dev& d) const { return lexists(d.in("sriov_totalvfs")); }
  unsigned read_uint(const Dev& d, const char* file) const {
    auto t = read_text(d.in(file));
    if (!t) return 0;
    auto v = pci::parse_int(*t, 0, UINT32_MAX);
    return v ? static_cast<unsigned>(*v) : 0;
  }
  unsigned num_vfs(const Dev& pf) const { return read_uint(pf, "sriov_numvfs"); }
  bool vf_autoprobe(const Dev& pf) const {
    auto t = read_text(pf.in("sriov_drivers_autoprobe"));
    return !t || trim(*t) != "0";
  }
  // The function's ids as its uevent file gives them (PCI_ID, PCI_SUBSYS_ID, PCI_CLASS: one
  // read, where the kernel's pci_uevent() prints them from the same config space the id files
  // show); from the id files when the uevent lacks one.
  Ids ids_of(const Dev& d) const {
    if (auto t = read_text(d.in("uevent"))) {
      const pci::Uevent u = pci::parse_uevent(*t);
      if (u.vendor_id && u.device_id && u.subsystem_vendor_id && u.subsystem_device_id && u.pci_class)
        return Ids{*u.vendor_id, *u.device_id, *u.subsystem_vendor_id, *u.subsystem_device_id, *u.pci_class};
    }
    return ids_from_files(d);
  }
  Ids ids_from_files(const Dev& d) const {
    Ids ids;
    auto h16 = [&](const char* f) -> uint16_t {
      auto t = read_text(d.in(f));
      if (!t) return 0;
      return pci::parse_hex16(*t).value_or(0);
    };
    ids.vendor = h16("vendor");
    ids.device = h16("device");
    ids.subvendor = h16("subsystem_vendor");
    ids.subdevice = h16("subsystem_device");
    if (auto t = read_text(d.in("class"))) ids.cls = pci::parse_class(*t).value_or(0);
    return ids;
  }
  std::map<unsigned, PciAddress> virtfns(const Dev& pf) const {
    std::map<unsigned, PciAddress> out;
    for (const auto& n : list_names(abs(pf.dir))) {
      auto i = pci::virtfn_index(n);
      if (!i) continue;
      if (auto l = read_link(pf.in(n)))
        if (auto a = pci::address_from_link(*l)) out[static_cast<unsigned>(*i)] = *a;
    }
    return out;
  }
  std::optional<unsigned> vf_index_of(const Dev& pf, const PciAddress& vf) const {
    // pci_iov_virtfn_bus/devfn(): VF n is at the PF's routing ID + offset + n * stride.
    const unsigned offset = read_uint(pf, "sriov_offset"), stride = read_uint(pf, "sriov_stride");
    const int64_t delta = int64_t{vf.routing_id()} - pf.addr.routing_id() - offset;
    if (offset && stride && vf.domain == pf.addr.domain && delta >= 0 && delta % stride == 0 &&
        static_cast<uint64_t>(delta / stride) < num_vfs(pf))
      return static_cast<unsigned>(delta / stride);
    for (const auto& [i, a] : virtfns(pf))
      if (a == vf) return i;
    return std::nullopt;
  }
  std::vector<std::string> netdevs_of(const Dev& d) const { return list_names(d.in("net")); }
  std::optional<unsigned> iommu_group_of(const Dev& d) const {
    auto l = read_link(d.in("iommu_group"));
    if (!l) return std::nullopt;
    auto g = pci::iommu_group_from_link(*l);
    if (!g) return std::nullopt;
    return static_cast<unsigned>(*g);
  }
  bool driver_loaded(std::string_view drv) const {
    return !drv.empty() && drv.find('/') == std::string_view::npos &&
           is_dir(at("bus/pci/drivers/" + std::string(drv)));
  }
  // A resolved absolute path that is a PCI function's directory.
  std::optional<Dev> dev_at(const fs::path& real_dir) const {
    auto a = PciAddress::parse(real_dir.filename().string());
    if (!a) return std::nullopt;
    // bus/pci/devices/<a> leads there (the devices/ hierarchy holds directories, no links).
    auto d = dev(*a);
    if (!d || real_root_ / d->dir != real_dir) return std::nullopt;
    return *d;
  }

  // -- state.json --
  std::string state_file() const { return at(std::string(kStateDir) + "/state.json"); }
  SimState& state() {
    if (!state_) {
      state_ = std::make_unique<SimState>();
      if (auto t = read_text(state_file())) {
        auto j = json::parse(*t, nullptr, false);
        if (!j.is_discarded() && j.is_object()) *state_ = state_from_json(j);
      } else {
        state_->last_ifindex = boot_.max_ifindex;
      }
    }
    return *state_;
  }
  SimState& mutable_state() {
    dirty_ = true;
    return state();
  }
  Result<void> save_state() {
    if (!state_) return ok();
    dirty_ = false;
    const std::string text = to_json(*state_).dump(1) + "\n";
    auto r = write_atomic(state_file(), text);
    if (r || r.error().errnum != ENOENT) return r;
    std::error_code ec;  // the state directory is made on first need
    fs::create_directories(abs(kStateDir), ec);
    if (ec) return Error::sys(ec.value(), "creating " + std::string(kStateDir));
    return write_atomic(state_file(), text);
  }

  // -- VF attributes (per PF, per VF index) --
  // One file per PF holds all its VFs' records, by index ("0", "1", ...): the PF driver's VF
  // table, read whole by RTM_GETLINK as the kernel answers it in one message.
  std::string vfs_file(const Dev& pf) const { return pf.in(std::string(kVfDir) + "/vfs.json"); }
  json load_vfs_json(const Dev& pf) const {
    auto t = read_text(vfs_file(pf));
    if (!t) return json::object();
    auto j = json::parse(*t, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return json::object();
    return j;
  }
  // A VF's record: its attributes and, under "stats", its traffic counters.
  static json vf_record(const json& all, unsigned index) {
    auto it = all.find(std::to_string(index));
    return it != all.end() && it->is_object() ? *it : json::object();
  }
  json load_vf_json(const Dev& pf, unsigned index) const { return vf_record(load_vfs_json(pf), index); }
  VfAttrs load_vf(const Dev& pf, unsigned index) const { return vf_attrs_from_json(load_vf_json(pf, index)); }
  // `stats`: the counters to keep with the attributes; without them, those in the file. The
  // traffic counters (set_vf_stats) survive attribute changes, as a driver's do.
  Result<void> save_vf(const Dev& pf, unsigned index, const VfAttrs& a, const json* stats = nullptr) {
    if (::mkdir(pf.in(kVfDir).c_str(), 0755) != 0 && errno != EEXIST)
      return Error::sys(errno, "creating " + (pf.dir / kVfDir).string());
    json all = load_vfs_json(pf);
    json j = to_json(a);
    if (stats) {
      if (!stats->is_null()) j["stats"] = *stats;
    } else {
      json old = vf_record(all, index);
      if (old.contains("stats")) j["stats"] = old["stats"];
    }
    all[std::to_string(index)] = std::move(j);
    return write_atomic(vfs_file(pf), all.dump() + "\n");
  }
  // What the VF's driver counts (IFLA_VF_STATS): zeros until set_vf_stats says otherwise.
  static VfStats vf_stats_from(const json& j) {
    VfStats st;
    if (!j.contains("stats") || !j["stats"].is_object()) return st;
    const json& s = j["stats"];
    st.rx_packets = s.value("rx_packets", uint64_t{0});
    st.tx_packets = s.value("tx_packets", uint64_t{0});
    st.rx_bytes = s.value("rx_bytes", uint64_t{0});
    st.tx_bytes = s.value("tx_bytes", uint64_t{0});
    st.broadcast = s.value("broadcast", uint64_t{0});
    st.multicast = s.value("multicast", uint64_t{0});
    st.rx_dropped = s.value("rx_dropped", uint64_t{0});
    st.tx_dropped = s.value("tx_dropped", uint64_t{0});
    return st;
  }
  Result<void> set_vf_stats(const std::string& ifname, uint32_t vf, const VfStats& st) {
    auto n = netdev(ifname);
    if (!n) return std::move(n).error();
    if (!n->pci || !is_pf(*n->pci) || vf >= num_vfs(*n->pci)) return Error::sys(EINVAL, ifname + ": no VF " + std::to_string(vf));
    json s = {{"rx_packets", st.rx_packets}, {"tx_packets", st.tx_packets}, {"rx_bytes", st.rx_bytes},
              {"tx_bytes", st.tx_bytes},     {"broadcast", st.broadcast},   {"multicast", st.multicast},
              {"rx_dropped", st.rx_dropped}, {"tx_dropped", st.tx_dropped}};
    return save_vf(*n->pci, vf, load_vf(*n->pci, vf), &s);
  }
  Result<void> clear_vfs_attrs(const Dev& pf) {
    std::error_code ec;
    fs::remove_all(abs(pf.dir / kVfDir), ec);
    if (ec) return Error::sys(ec.value(), "removing " + (pf.dir / kVfDir).string());
    return ok();
  }

  // -- matching (drivers/pci/pci-driver.c pci_match_device) --

  // The driver's "id table": what it claimed at boot plus the known VF ids.
  bool static_match(const std::string& drv, const Ids& ids) const {
    if (auto it = boot_.claims.find(drv); it != boot_.claims.end() && it->second.count({ids.vendor, ids.device}))
      return true;
    const KnownVf* k = known_vf(ids.vendor, ids.device);
    return k && drv == k->driver;
  }
  // drivers/pci/pci.h pci_match_one_id(): `id` (a table entry) against `dev`, 32-bit fields.
  static bool match_one(const DynId& id, const DynId& dev) {
    return (id.vendor == kAnyId || id.vendor == dev.vendor) && (id.device == kAnyId || id.device == dev.device) &&
           (id.subvendor == kAnyId || id.subvendor == dev.subvendor) &&
           (id.subdevice == kAnyId || id.subdevice == dev.subdevice) && !((id.cls ^ dev.cls) & id.cls_mask);
  }
  static bool dynid_matches(const DynId& id, const Ids& d) {
    return match_one(id, DynId{d.vendor, d.device, d.subvendor, d.subdevice, d.cls, 0});
  }
  bool dynamic_match(const std::string& drv, const Ids& ids) {
    auto it = state().dynids.find(drv);
    if (it == state().dynids.end()) return false;
    return std::any_of(it->second.begin(), it->second.end(), [&](const DynId& id) { return dynid_matches(id, ids); });
  }
  // pci_match_device(): driver_override set → only that driver, and it always matches;
  // otherwise dynamic ids first, then the static table.
  bool matches(const std::string& drv, const Dev& d, const Ids& ids) {
    if (auto o = override_of(d)) return *o == drv;
    return dynamic_match(drv, ids) || static_match(drv, ids);
  }
  // The drivers device_attach() would try, in the order the sim assumes for bus registration:
  // the device's boot driver, the known VF driver of its ids, other drivers claiming its ids,
  // then drivers with a matching dynamic id. Only loaded drivers.
  std::vector<std::string> candidates(const Dev& d, const Ids& ids, bool ignore_override = false) {
    std::vector<std::string> out;
    auto add = [&](const std::string& drv) {
      if (driver_loaded(drv) && std::find(out.begin(), out.end(), drv) == out.end()) out.push_back(drv);
    };
    if (!ignore_override)
      if (auto o = override_of(d)) {
        add(*o);
        return out;
      }
    if (const BootDevice* b = boot_.find(d.addr); b && !b->driver.empty() && b->vendor == ids.vendor &&
                                                  b->device == ids.device)
      add(b->driver);
    if (const KnownVf* k = known_vf(ids.vendor, ids.device)) add(k->driver);
    for (const auto& [drv, claimed] : boot_.claims)
      if (claimed.count({ids.vendor, ids.device})) add(drv);
    for (const auto& [drv, list] : state().dynids)
      if (std::any_of(list.begin(), list.end(), [&](const DynId& id) { return dynid_matches(id, ids); })) add(drv);
    return out;
  }

  // drivers/pci/pci-driver.c pci_device_probe() and the probe functions the sim knows.
  std::optional<Refusal> probe_refusal(const std::string& drv, const Dev& d, const Ids& ids) {
    // pci_device_can_probe(): a VF probes only with its PF's sriov_drivers_autoprobe on or a
    // driver_override set.
    if (auto pf = physfn_of(d)) {
      auto pfd = dev(*pf);
      if (pfd && !vf_autoprobe(*pfd) && !override_of(d))
        return Refusal{ENODEV, "VF " + d.name() + " cannot probe: sriov_drivers_autoprobe is 0 on its PF and it "
                                                 "has no driver_override"};
    }
    if (drv == "vfio-pci") {
      // vfio_pci_core_register_device(): type-0 headers only; no IOMMU group → vfio_group_find_or_alloc
      // fails (noiommu mode not modelled); a PF with VFs enabled is refused.
      if ((ids.cls >> 8) == 0x0604 || (ids.cls >> 8) == 0x0607)
        return Refusal{EINVAL, "vfio-pci " + d.name() + ": not a type-0 (endpoint) header"};
      if (!iommu_group_of(d)) return Refusal{EINVAL, "vfio-pci " + d.name() + ": no IOMMU group"};
      if (is_pf(d) && num_vfs(d) > 0)
        return Refusal{EBUSY, "vfio-pci " + d.name() + ": Cannot bind to PF with SR-IOV enabled"};
    }
    return std::nullopt;
  }

  // -- netdevs --
  Result<unsigned> new_ifindex() {
    // net/core/dev.c dev_new_index(): the next number after the last one handed out that no
    // netdev has. Every netdev's ifindex is at most the last one handed out (at boot it is the
    // largest in the tree), so the next number is free: no netdev needs to be read.
    SimState& s = mutable_state();
    s.last_ifindex = std::max(s.last_ifindex, 1u) + 1;
    return s.last_ifindex;
  }
  std::string free_eth_name() const {
    // net/core/dev.c dev_alloc_name("eth%d"): the lowest free number.
    for (unsigned k = 0;; ++k) {
      std::string n = "eth" + std::to_string(k);
      if (!lexists(at("class/net/" + n))) return n;
    }
  }
  // A VF's netdev address when no admin MAC is set: a VF driver picks a random locally
  // administered one (eth_hw_addr_random); the sim derives it from the address instead so
  // trees are deterministic: 02:5f:<domain hi>:<domain lo>:<bus>:<devfn>.
  static std::string generated_mac(const PciAddress& a, uint8_t tag) {
    MacAddress m{0x02, tag, static_cast<uint8_t>(a.domain >> 8), static_cast<uint8_t>(a.domain),
                 a.bus, static_cast<uint8_t>(a.device << 3 | a.function)};
    return m.to_string();
  }
  std::string primary_netdev(const Dev& d) const {
    std::string best;
    unsigned best_port = UINT32_MAX;
    for (const auto& n : netdevs_of(d)) {
      unsigned port = 0;
      if (auto t = read_text(d.in("net/" + n + "/dev_port")))
        port = static_cast<unsigned>(pci::parse_int(*t, 0, UINT32_MAX).value_or(0));
      if (port < best_port) best = n, best_port = port;
    }
    return best;
  }
  Result<void> add_netdev(const Dev& d, const NetdevRecord& n, bool exact) {
    simtree::NetdevSpec s;
    s.name = n.name;
    s.mac = n.mac;
    s.mtu = n.mtu;
    s.type = n.type;
    s.dev_port = n.dev_port;
    if (exact) {
      s.ifindex = n.ifindex;
      s.flags = n.flags;
      s.operstate = n.operstate;
      s.carrier = n.carrier;
    } else {
      // A netdev a driver registers is down until someone sets it up.
      auto i = new_ifindex();
      if (!i) return std::move(i).error();
      s.ifindex = *i;
      s.flags = n.flags & ~kIffUp;
      s.operstate = "down";
      s.carrier = false;
    }
    if (auto r = simtree::add_netdev(root_, d.addr, s); !r) return r;
    uevent("add", d.dir / "net" / s.name, "net");
    return ok();
  }
  // What a NIC driver's probe registers.
  // `vf_index` saves looking the VF up among its PF's virtfn links when the caller knows it.
  Result<void> add_netdevs_for(const std::string& drv, const Dev& d, const Ids& ids,
                               std::optional<unsigned> vf_index = std::nullopt) {
    if ((ids.cls >> 16) != 0x02 || makes_no_netdev(drv)) return ok();
    if (auto pf = physfn_of(d)) {
      auto pfd = dev(*pf);
      if (!pfd) return std::move(pfd).error();
      auto index = vf_index ? vf_index : vf_index_of(*pfd, d.addr);
      std::string base = primary_netdev(*pfd);
      NetdevRecord n;
      n.name = base.empty() || !index ? free_eth_name() : base + "v" + std::to_string(*index);
      if (lexists(at("class/net/" + n.name))) n.name = free_eth_name();
      n.mac = generated_mac(d.addr, 0x5f);
      if (index) {
        VfAttrs a = load_vf(*pfd, *index);
        if (!a.mac.is_zero()) n.mac = a.mac.to_string();  // the PF tells the VF its admin MAC
      }
      return add_netdev(d, n, false);
    }
    if (const BootDevice* b = boot_.find(d.addr); b && b->driver == drv) {
      for (const auto& n : b->netdevs)
        if (auto r = add_netdev(d, n, false); !r) return r;
      return ok();
    }
    NetdevRecord n;
    n.name = free_eth_name();
    n.mac = generated_mac(d.addr, 0x5e);
    return add_netdev(d, n, false);
  }
  Result<void> remove_netdevs(const Dev& d) {
    const auto names = netdevs_of(d);
    for (const auto& n : names) uevent("remove", d.dir / "net" / n, "net");
    for (const auto& n : names)
      if (auto r = simtree::remove_netdev(root_, n); !r) return r;
    return ok();
  }

  // -- binding --

  // really_probe() succeeded: links, uevent, enable, and what the driver's probe registers.
  Result<void> bind(const std::string& drv, const Dev& d, const Ids& ids,
                    std::optional<unsigned> vf_index = std::nullopt) {
    if (auto r = simtree::bind_driver(root_, d.addr, drv); !r) return r;
    pci_uevent("bind", d);
    return add_netdevs_for(drv, d, ids, vf_index);
  }

  // device_release_driver(): the driver's remove, then the links. Most PF drivers disable SR-IOV
  // in their remove (ice_free_vfs, i40e_free_vfs, igb_disable_sriov, mlx5_sriov_detach,
  // vfio_pci_core_unregister_device), so the VFs go first.
  Result<void> unbind(const Dev& d) { return unbind(d, driver_of(d)); }
  // `drv`: the driver bound now, as the caller read it.
  Result<void> unbind(const Dev& d, const std::optional<std::string>& drv) {
    if (is_pf(d) && (num_vfs(d) > 0 || !virtfns(d).empty()) && drv && !leaves_sriov_on_remove(*drv))
      if (auto r = disable_sriov(d); !r) return r;
    if (auto r = remove_netdevs(d); !r) return r;
    if (auto r = simtree::unbind_driver(root_, d.addr); !r) return r;
    pci_uevent("unbind", d);
    return ok();
  }

  // drivers/base/dd.c __device_attach(): nothing if bound; else each matching driver in turn
  // until one probes (probe failures are swallowed). Returns whether the device is bound.
  Result<bool> attach(const Dev& d, std::optional<unsigned> vf_index = std::nullopt) {
    if (driver_of(d)) return true;
    const Ids ids = ids_of(d);
    for (const auto& drv : candidates(d, ids)) {
      if (!matches(drv, d, ids)) continue;
      if (probe_refusal(drv, d, ids)) continue;
      if (auto r = bind(drv, d, ids, vf_index); !r) return std::move(r).error();
      return true;
    }
    return false;
  }

  // -- SR-IOV --

  // drivers/pci/iov.c sriov_disable() → pci_iov_remove_virtfn() for each VF: the VF is
  // released from its driver and removed (links, IOMMU group, netdevs); NumVFs is cleared. The
  // PF driver frees its per-VF state.
  Result<void> disable_sriov(const Dev& pf) {
    for (const auto& [i, vf] : virtfns(pf)) {
      // pci_stop_and_remove_bus_device(): the VF's netdevs and driver go, then the device.
      if (auto vd = dev(vf)) {
        net_uevents("remove", *vd);
        if (driver_of(*vd)) uevent("unbind", vd->dir, "pci");
        pci_uevent("remove", *vd);
      }
      if (auto r = simtree::remove_function(root_, vf); !r) return r;
    }
    // No "change" for the PF: only sriov_enable() sends one; the VFs' own events say they went.
    if (auto r = simtree::write_numvfs(root_, pf.addr, 0); !r) return r;
    return clear_vfs_attrs(pf);
  }

  // drivers/pci/iov.c sriov_enable() → sriov_add_vfs() → pci_iov_add_virtfn() for each VF:
  // the device (ids from the PF and VF Device ID, a new IOMMU group when the PF has one), the
  // bus notifiers (vfio-pci on the PF captures its VFs with driver_override), then
  // pci_bus_add_device() → device_attach().
  Result<void> enable_sriov(const Dev& pf, unsigned n) {
    if (auto r = clear_vfs_attrs(pf); !r) return r;
    simtree::VfOptions o;
    const auto group = iommu_group_of(pf);
    o.iommu_groups = group.has_value();
    if (group)
      if (auto t = read_text(abs(fs::path("kernel/iommu_groups") / std::to_string(*group) / "type")))
        if (!trim(*t).empty()) o.iommu_group_type = trim(*t);
    const Ids pids = ids_of(pf);
    if (const BootDevice* b = boot_.find(pf.addr); b && b->vf_subsystem_device) {
      o.subsystem_device = b->vf_subsystem_device;
    } else if (auto vfdev = read_text(pf.in("sriov_vf_device"))) {
      if (auto id = pci::parse_bare_hex16(*vfdev))
        if (const KnownVf* k = known_vf(pids.vendor, *id); k && k->subsystem_device >= 0)
          o.subsystem_device = static_cast<uint16_t>(k->subsystem_device);
    }
    auto vfs = simtree::add_vfs(root_, pf.addr, n, o);
    if (!vfs) return std::move(vfs).error();
    if (auto r = simtree::write_numvfs(root_, pf.addr, n); !r) return r;
    const auto pf_driver = driver_of(pf);
    for (unsigned i = 0; i < vfs->size(); ++i) {
      const PciAddress& a = (*vfs)[i];
      auto vd = dev(a);
      if (!vd) return std::move(vd).error();
      if (pf_driver == "vfio-pci")  // vfio_pci_bus_notifier: "Captured SR-IOV VF ... driver_override"
        if (auto r = write_text(vd->in("driver_override"), "vfio-pci\n"); !r) return r;
      pci_uevent("add", *vd);
      // pci_iov_sysfs_link(): the "add" went out before the virtfnN/physfn links existed; a
      // "change" follows once they do, before any driver probes the VF.
      pci_uevent("change", *vd);
      if (auto r = attach(*vd, i); !r) return std::move(r).error();
    }
    pci_uevent("change", pf);  // sriov_enable(): kobject_uevent(KOBJ_CHANGE) once the VFs are added
    return ok();
  }

  // Whether the PF's bound driver can configure SR-IOV (pdev->driver->sriov_configure) and, if
  // not, why. vfio-pci has the callback but fails it with ENOENT unless its enable_sriov module
  // parameter is on (vfio_pci_sriov_configure).
  std::optional<std::string> no_sriov_configure(const std::string& drv) const {
    if (drv == "pci-stub" || drv == "uio_pci_generic" || drv == "igb_uio")
      return "driver does not support SR-IOV configuration via sysfs";
    if (drv == "vfio-pci") {
      auto t = read_text(abs("module/vfio_pci/parameters/enable_sriov"));
      bool on = false;
      if (t) kstrtobool(c_str_of(*t).c_str(), &on);
      if (!on) return "vfio-pci: SR-IOV needs the enable_sriov module parameter";
    }
    return std::nullopt;
  }

  // -- the stores --

  // drivers/pci/iov.c sriov_numvfs_store()
  Result<void> store_sriov_numvfs(const Dev& pf, const std::string& buf) {
    unsigned long long v = 0;
    if (kstrtoull(buf.c_str(), 0, &v) < 0 || v > 0xffff)  // kstrtou16 < 0 → -EINVAL
      return Error::sys(EINVAL, pf.name() + ": sriov_numvfs \"" + trim(buf) + "\" is not a number");
    const unsigned want = static_cast<unsigned>(v);
    const unsigned total = read_uint(pf, "sriov_totalvfs");
    if (want > total)
      return Error::sys(ERANGE, pf.name() + ": " + std::to_string(want) + " VFs requested, sriov_totalvfs is " +
                                    std::to_string(total));
    const unsigned cur = num_vfs(pf);
    if (want == cur) return ok();
    const auto drv = driver_of(pf);
    if (!drv) return Error::sys(ENOENT, pf.name() + ": no driver bound to device; cannot configure SR-IOV");
    if (auto why = no_sriov_configure(*drv)) return Error::sys(ENOENT, pf.name() + ": " + *why);
    if (want == 0) return disable_sriov(pf);
    if (cur != 0)
      return Error::sys(EBUSY, pf.name() + ": " + std::to_string(cur) + " VFs already enabled. Disable before enabling " +
                                   std::to_string(want) + " VFs");
    return enable_sriov(pf, want);
  }

  // drivers/pci/iov.c sriov_drivers_autoprobe_store()
  Result<void> store_sriov_drivers_autoprobe(const Dev& pf, const std::string& buf) {
    bool on = false;
    if (kstrtobool(buf.c_str(), &on) < 0)
      return Error::sys(EINVAL, pf.name() + ": sriov_drivers_autoprobe \"" + trim(buf) + "\" is not a boolean");
    return write_text(pf.in("sriov_drivers_autoprobe"), on ? "1\n" : "0\n");
  }

  // drivers/pci/pci-sysfs.c driver_override_store() → drivers/base/driver.c
  // driver_set_override(): the text up to the first newline; "" (after NULs) or "\n" clears.
  // Setting it binds nothing: drivers_probe or bind does.
  Result<void> store_driver_override(const Dev& d, std::string_view raw) {
    if (raw.size() >= kPageSize - 1) return Error::sys(EINVAL, d.name() + ": driver_override too long");
    std::string s = c_str_of(raw);
    const size_t nl = s.find('\n');
    if (nl != std::string::npos) s.resize(nl);
    return write_text(d.in("driver_override"), s.empty() ? "(null)\n" : s + "\n");
  }

  // drivers/pci/pci-sysfs.c reset_store(): kstrtoul base 0, only 1; pci_reset_function().
  Result<void> store_reset(const Dev& d, const std::string& buf) {
    unsigned long long v = 0;
    if (kstrtoull(buf.c_str(), 0, &v) < 0 || v != 1)
      return Error::sys(EINVAL, d.name() + ": reset takes 1, not \"" + trim(buf) + "\"");
    ++mutable_state().resets[d.name()];
    return ok();
  }

  // drivers/base/bus.c bind_store(): ENODEV unless the device exists and the driver matches it
  // (driver_match_device → pci_match_device); then device_driver_attach(): EBUSY if bound, the
  // probe's own errno if it fails.
  Result<void> store_bind(const std::string& drv, const std::string& buf) {
    const std::string name = device_name_of(buf);
    auto d = find_dev(name);
    if (!d) return Error::sys(ENODEV, drv + ": bind: no PCI device \"" + name + "\"");
    const Ids ids = ids_of(*d);
    if (!matches(drv, *d, ids)) {
      if (auto o = override_of(*d))
        return Error::sys(ENODEV, drv + ": bind " + name + ": driver_override is " + *o);
      return Error::sys(ENODEV, drv + ": bind " + name + ": the driver does not claim " + hex(ids.vendor, 4) + ":" +
                                    hex(ids.device, 4) + " (no id table entry or new_id)");
    }
    if (auto cur = driver_of(*d)) return Error::sys(EBUSY, drv + ": bind " + name + ": already bound to " + *cur);
    if (auto no = probe_refusal(drv, *d, ids)) return Error::sys(no->errnum, drv + ": bind " + name + ": " + no->why);
    return bind(drv, *d, ids);
  }

  // drivers/base/bus.c unbind_store(): ENODEV unless the device is bound to this driver.
  Result<void> store_unbind(const std::string& drv, const std::string& buf) {
    const std::string name = device_name_of(buf);
    auto d = find_dev(name);
    if (!d) return Error::sys(ENODEV, drv + ": unbind: no PCI device \"" + name + "\"");
    auto cur = driver_of(*d);
    if (cur != drv)
      return Error::sys(ENODEV, drv + ": unbind " + name + ": " + (cur ? "bound to " + *cur : std::string("not bound")));
    return unbind(*d, cur);
  }

  // drivers/base/bus.c drivers_probe_store(): ENODEV for an unknown device; a bound device or
  // one no driver takes is not an error.
  Result<void> store_drivers_probe(const std::string& buf) {
    const std::string name = device_name_of(buf);
    auto d = find_dev(name);
    if (!d) return Error::sys(ENODEV, "drivers_probe: no PCI device \"" + name + "\"");
    auto r = attach(*d);
    if (!r) return std::move(r).error();
    return ok();
  }

  // drivers/pci/pci-driver.c new_id_store(): "vendor device [subvendor subdevice class
  // class_mask driver_data]" in hex; fewer than 2 fields EINVAL; without all 7, EEXIST if the
  // static table already has it or an identical dynamic id exists; then driver_attach() probes
  // every unbound device it now matches. driver_data is not checked against the table.
  Result<void> store_new_id(const std::string& drv, const std::string& buf) {
    uint32_t f[7] = {0, 0, kAnyId, kAnyId, 0, 0, 0};
    const int n = scan_hex_fields(buf.c_str(), 7, f);
    if (n < 2) return Error::sys(EINVAL, drv + ": new_id \"" + trim(buf) + "\": needs vendor and device");
    DynId id{f[0], f[1], f[2], f[3], f[4], f[5]};
    if (n != 7) {
      // The sim's static tables are vendor:device entries with any subsystem and class, so an
      // id with those ids matches one whatever else it says.
      if (id.vendor <= 0xffff && id.device <= 0xffff &&
          static_match(drv, Ids{static_cast<uint16_t>(id.vendor), static_cast<uint16_t>(id.device), 0, 0, 0}))
        return Error::sys(EEXIST, drv + ": new_id " + hex(id.vendor, 4) + " " + hex(id.device, 4) +
                                      ": already in the driver's id table");
      // do_pci_add_dynid(check_dup)
      if (auto it = state().dynids.find(drv); it != state().dynids.end())
        for (const auto& e : it->second)
          if (match_one(e, id))
            return Error::sys(EEXIST, drv + ": new_id " + hex(id.vendor, 4) + " " + hex(id.device, 4) +
                                          ": already a dynamic id");
    }
    mutable_state().dynids[drv].push_back(id);
    // driver_attach() → __driver_attach() for every device: match, then probe if unbound.
    for (const auto& n2 : list_names(abs("bus/pci/devices"))) {
      auto d = find_dev(n2);
      if (!d || driver_of(*d)) continue;
      const Ids ids = ids_of(*d);
      if (!matches(drv, *d, ids) || probe_refusal(drv, *d, ids)) continue;
      if (auto r = bind(drv, *d, ids); !r) return r;
    }
    return ok();
  }

  // drivers/pci/pci-driver.c remove_id_store(): removes the first matching dynamic id; ENODEV
  // when there is none. Devices stay bound.
  Result<void> store_remove_id(const std::string& drv, const std::string& buf) {
    uint32_t f[6] = {0, 0, kAnyId, kAnyId, 0, 0};
    const int n = scan_hex_fields(buf.c_str(), 6, f);
    if (n < 2) return Error::sys(EINVAL, drv + ": remove_id \"" + trim(buf) + "\": needs vendor and device");
    auto& all = state().dynids;
    if (auto list = all.find(drv); list != all.end()) {
      for (auto it = list->second.begin(); it != list->second.end(); ++it) {
        if (it->vendor == f[0] && it->device == f[1] && (f[2] == kAnyId || it->subvendor == f[2]) &&
            (f[3] == kAnyId || it->subdevice == f[3]) && !((it->cls ^ f[4]) & f[5])) {
          mutable_state();
          list->second.erase(it);
          if (list->second.empty()) all.erase(list);
          return ok();
        }
      }
    }
    return Error::sys(ENODEV, drv + ": remove_id " + trim(buf) + ": no such dynamic id");
  }

  Result<void> write_attr(const std::string& relpath, std::string_view value);
  Result<void> store_bus_attr(const std::string& name, const std::string& file, std::string_view value);
  Result<void> store_driver_attr(const std::string& drv, const std::string& name, const std::string& file,
                                 std::string_view value);
  Result<void> store_device_attr(const Dev& d, const std::string& name, const std::string& file,
                                 std::string_view value);

  // -- hotplug --

  // What a function occupies in the tree besides its directory: bus link, driver back-link,
  // IOMMU group (the whole group directory: it goes when the function was its last member),
  // IOMMU unit back-link, netdev class links, and the PF's virtfn link of a VF.
  std::vector<fs::path> footprint(const Dev& d) const {
    std::vector<fs::path> out{d.dir, fs::path("bus/pci/devices") / d.name()};
    if (auto drv = driver_of(d)) out.push_back(fs::path("bus/pci/drivers") / *drv / d.name());
    if (auto g = iommu_group_of(d)) out.push_back(fs::path("kernel/iommu_groups") / std::to_string(*g));
    if (auto unit = read_link(d.in("iommu")))
      out.push_back(fs::path("devices/virtual/iommu") / fs::path(*unit).filename() / "devices" / d.name());
    for (const auto& n : netdevs_of(d)) out.push_back(fs::path("class/net") / n);
    if (auto pf = physfn_of(d))
      if (auto pfd = dev(*pf))
        if (auto i = vf_index_of(*pfd, d.addr)) out.push_back(pfd->dir / ("virtfn" + std::to_string(*i)));
    return out;
  }
  // Every entry at or below `rel`: {"path", "dir"} / {"path", "link": target} / {"path", "file": text}.
  void capture(const fs::path& rel, json& out) const {
    const fs::path p = abs(rel);
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) return;
    if (S_ISLNK(st.st_mode)) {
      if (auto t = read_link(p)) out.push_back({{"path", rel.string()}, {"link", *t}});
    } else if (S_ISDIR(st.st_mode)) {
      out.push_back({{"path", rel.string()}, {"dir", true}});
      for (const auto& n : list_names(p))
        if (n != kVfDir) capture(rel / n, out);
    } else if (auto t = read_text(p)) {
      out.push_back({{"path", rel.string()}, {"file", json::binary_t(std::vector<uint8_t>(t->begin(), t->end()))}});
    }
  }
  fs::path removed_record(const PciAddress& a) const {
    return fs::path(kStateDir) / "removed" / (a.to_string() + ".json");
  }

  // drivers/pci/remove.c pci_stop_and_remove_bus_device() for a surprise removal: netdevs and
  // driver go, then the function. What it occupied is kept in .sriovd-sim/removed/<BDF>.json so
  // hot_add can put it back as it was.
  Result<void> hot_remove(const PciAddress& a) {
    auto d = dev(a);
    if (!d) return Error::sys(ENODEV, "no PCI function " + a.to_string());
    if (is_pf(*d) && (num_vfs(*d) > 0 || !virtfns(*d).empty()))
      return Error::sys(EBUSY, a.to_string() + " has VFs enabled: disable them (sriov_numvfs 0) before removing it");
    if ((ids_of(*d).cls >> 8) == 0x0604)
      return Error::sys(EINVAL, a.to_string() + " is a bridge: only endpoints are hot-removed by the simulator");
    json entries = json::array();
    for (const auto& f : footprint(*d)) capture(f, entries);
    std::error_code ec;
    fs::create_directories(abs(removed_record(a).parent_path()), ec);
    if (ec) return Error::sys(ec.value(), "creating " + removed_record(a).parent_path().string());
    std::vector<uint8_t> packed = json::to_cbor(json{{"address", a.to_string()}, {"entries", entries}});
    if (auto r = write_atomic(abs(removed_record(a)), std::string(packed.begin(), packed.end())); !r) return r;
    net_uevents("remove", *d);
    if (driver_of(*d)) pci_uevent("unbind", *d);
    pci_uevent("remove", *d);
    return simtree::remove_function(root_, a);
  }

  // The function removed by hot_remove back, as it was (driver, netdevs, IOMMU group), then the
  // add (and bind, and netdev add) uevents a rescan would bring.
  Result<void> hot_add(const PciAddress& a) {
    if (dev(a)) return Error::sys(EEXIST, a.to_string() + " is present");
    auto t = read_text(abs(removed_record(a)));
    if (!t) return Error::sys(ENOENT, a.to_string() + " was not removed by the simulator (no record of it)");
    json rec = json::from_cbor(*t, true, false);
    if (rec.is_discarded() || !rec.contains("entries")) return Error::sys(EINVAL, "unreadable record of " + a.to_string());
    // Directories (parents first, by path order), then files and links, skipping what exists
    // (an IOMMU group another member kept).
    for (int pass = 0; pass < 2; ++pass) {
      for (const auto& e : rec["entries"]) {
        const fs::path rel = e["path"].get<std::string>();
        const bool is_dir_entry = e.contains("dir");
        if ((pass == 0) != is_dir_entry) continue;
        const fs::path p = abs(rel);
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
    fs::remove(abs(removed_record(a)), ec);
    auto d = dev(a);
    if (!d) return std::move(d).error();
    pci_uevent("add", *d);
    if (driver_of(*d)) pci_uevent("bind", *d);
    net_uevents("add", *d);
    return ok();
  }

  // -- rtnetlink --
  struct Netdev {
    std::string name;
    std::string dir;         // the netdev's directory (under the root)
    std::optional<Dev> pci;  // the PCI function it belongs to, if any
  };
  Result<Netdev> netdev(const std::string& ifname) const {
    // rtnl_dev_get(): an unknown name is ENODEV.
    if (ifname.empty() || ifname.size() >= 16 || ifname.find('/') != std::string::npos || ifname == "." ||
        ifname == "..")
      return Error::sys(ENODEV, "netdev \"" + ifname + "\"");
    if (boot_.plain_bus) {
      // class/net/<name> -> ../../devices/.../net/<name> and its device -> ../../../<BDF>:
      // relative links through the devices/ hierarchy, which holds directories only, so they are
      // followed lexically, and the function is the one its bus link names.
      auto link = read_link(at("class/net/" + ifname));
      auto rel = link ? simtree::join_normal("class/net", *link) : std::nullopt;
      if (rel && rel->rfind("devices/", 0) == 0) {
        Netdev n{ifname, at(*rel), std::nullopt};
        if (auto up = read_link(n.dir + "/device")) {
          if (auto devrel = simtree::join_normal(*rel, *up)) {
            const size_t slash = devrel->rfind('/');
            if (auto a = PciAddress::parse(std::string_view(*devrel).substr(slash == std::string::npos ? 0 : slash + 1)))
              if (auto d = dev(*a); d && d->dir.native() == *devrel) n.pci = *d;
          }
          return n;
        }
        if (!is_dir(n.dir)) return Error::sys(ENODEV, "netdev \"" + ifname + "\"");
        return n;  // a netdev without a parent device
      }
    }
    auto dir = real_path(at("class/net/" + ifname));
    if (!dir || !is_dir(*dir)) return Error::sys(ENODEV, "netdev \"" + ifname + "\"");
    Netdev n{ifname, dir->native(), std::nullopt};
    if (auto devdir = real_path(*dir / "device")) n.pci = dev_at(*devdir);
    return n;
  }

  Result<std::vector<VfInfo>> get_vfs(const std::string& ifname) {
    auto n = netdev(ifname);
    if (!n) return std::move(n).error();
    std::vector<VfInfo> out;
    // rtnl_fill_vf(): IFLA_NUM_VF is the parent's pci_num_vf(); VF entries only when the
    // driver has ndo_get_vf_config.
    if (!n->pci || !pf_ops(driver_of(*n->pci))) return out;
    const unsigned count = is_pf(*n->pci) ? num_vfs(*n->pci) : 0;
    const json all = count ? load_vfs_json(*n->pci) : json::object();
    for (unsigned i = 0; i < count; ++i) {
      json j = vf_record(all, i);
      out.push_back(VfInfo{i, to_config(vf_attrs_from_json(j)), vf_stats_from(j)});
    }
    return out;
  }

  Result<void> set_vf(const std::string& ifname, uint32_t vf, const VfConfig& c);

  Result<LinkFacts> get_link(const std::string& ifname) const {
    auto n = netdev(ifname);
    if (!n) return std::move(n).error();
    LinkFacts f;
    f.ifname = ifname;
    if (auto t = read_text(n->dir + "/ifindex")) f.ifindex = static_cast<int>(pci::parse_int(*t, 0, INT32_MAX).value_or(0));
    if (auto t = read_text(n->dir + "/flags")) {
      unsigned long long flags = 0;
      if (kstrtoull(trim(*t).c_str(), 0, &flags) == 0) f.up = (flags & kIffUp) != 0;
    }
    if (auto t = read_text(n->dir + "/" + kLinkFile)) {
      auto j = json::parse(*t, nullptr, false);
      if (!j.is_discarded() && j.is_object()) {
        f.addresses = j.value("addresses", std::vector<std::string>{});
        f.routes = j.value("routes", size_t{0});
      }
    }
    return f;
  }

  Result<void> set_link_addresses(const std::string& ifname, const std::vector<std::string>& addresses,
                                  size_t routes) {
    auto n = netdev(ifname);
    if (!n) return std::move(n).error();
    json j = {{"addresses", addresses}, {"routes", routes}};
    return write_atomic(n->dir + "/" + kLinkFile, j.dump() + "\n");
  }

  // -- boot --
  Result<void> reboot();

 private:
  const fs::path& root_;
  const fs::path& real_root_;
  const BootData& boot_;
  std::unique_ptr<SimState> state_;  // read on first need
  bool dirty_ = false;
  std::vector<PendingUevent>* uevents_ = nullptr;
};

// Device attributes a write cannot change: kernfs_fop_open() refuses to open a file without a
// write permission or a ->store for writing (EACCES), even for root.
bool read_only_device_attr(const std::string& name) {
  static const std::set<std::string> ro = {
      "vendor", "device", "subsystem_vendor", "subsystem_device", "class", "revision", "irq",
      "local_cpus", "local_cpulist", "modalias", "resource", "sriov_totalvfs", "sriov_offset",
      "sriov_stride", "sriov_vf_device", "current_link_speed", "current_link_width", "max_link_speed",
      "max_link_width", "consistent_dma_mask_bits", "dma_mask_bits", "ari_enabled"};
  return ro.count(name) != 0;
}

Result<void> Sim::write_attr(const std::string& relpath, std::string_view value) {
  const fs::path rel(relpath);
  if (relpath.empty() || rel.is_absolute())
    return Error::sys(EINVAL, "\"" + relpath + "\" is not a path relative to the sysfs root");
  for (const auto& c : rel)
    if (c == "..") return Error::sys(EINVAL, "\"" + relpath + "\" leaves the sysfs root");
  // The paths sriovd itself writes, bus/pci/devices/<BDF>/<attr>, bus/pci/drivers/<drv>/<attr>
  // and bus/pci/<attr>, pass at most the device's bus link on their way: they are classified
  // from their components and one lstat that the attribute is a regular file. Any other path
  // (through driver/, or a tree whose bus/ is not laid out as the kernel's) is resolved whole.
  if (boot_.plain_bus) {
    std::vector<std::string> c;
    for (const auto& part : rel) c.push_back(part.string());
    auto regular = [](const std::string& p) {
      struct stat st;
      return ::lstat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
    };
    if (c.size() == 5 && c[0] == "bus" && c[1] == "pci" && c[2] == "devices") {
      if (auto d = find_dev(c[3]); d && c[4] != ".")
        if (const std::string file = d->in(c[4]); regular(file))
          return value.empty() ? ok() : store_device_attr(*d, c[4], file, value);
    } else if (const std::string file = at(relpath); c.size() == 5 && c[0] == "bus" && c[1] == "pci" &&
                                                     c[2] == "drivers" && c[3] != "." && regular(file)) {
      return value.empty() ? ok() : store_driver_attr(c[3], c[4], file, value);
    } else if (c.size() == 3 && c[0] == "bus" && c[1] == "pci" && regular(file)) {
      return value.empty() ? ok() : store_bus_attr(c[2], file, value);
    }
  }
  // open(O_WRONLY) resolves every link on the way, so classify by where the path really leads:
  // bus/pci/devices/X/driver/unbind is bus/pci/drivers/<drv>/unbind.
  auto real = real_path(abs(rel));
  if (!real) return Error::sys(errno == ENOTDIR ? ENOTDIR : ENOENT, relpath);
  if (is_dir(*real)) return Error::sys(EISDIR, relpath);
  const std::string rs = real->string(), rr = real_root_.string();
  if (rs.size() <= rr.size() || rs.compare(0, rr.size(), rr) != 0 || rs[rr.size()] != '/')
    return Error::sys(EINVAL, relpath + " resolves outside the sysfs root");
  // fs/sysfs/file.c sysfs_kf_write(): a zero-length write never reaches the store.
  if (value.empty()) return ok();

  const fs::path parent = real->parent_path();
  const std::string name = real->filename().string();
  if (parent == real_root_ / "bus/pci") return store_bus_attr(name, real->native(), value);
  if (parent.parent_path() == real_root_ / "bus/pci/drivers")
    return store_driver_attr(parent.filename().string(), name, real->native(), value);
  if (auto d = dev_at(parent)) return store_device_attr(*d, name, real->native(), value);
  return write_text(*real, value);
}

// bus/pci/<name>: drivers_probe, drivers_autoprobe, rescan; other files are plain files.
Result<void> Sim::store_bus_attr(const std::string& name, const std::string& file, std::string_view value) {
  const std::string buf = c_str_of(value);
  if (name == "drivers_probe") return store_drivers_probe(buf);
  if (name == "drivers_autoprobe")  // drivers/base/bus.c drivers_autoprobe_store()
    return write_text(file, buf.empty() || buf[0] != '0' ? "1\n" : "0\n");
  if (name == "rescan") return Error::sys(EOPNOTSUPP, "bus/pci/rescan is not modelled by SimKernel");
  return write_text(file, value);
}

// bus/pci/drivers/<drv>/<name>.
Result<void> Sim::store_driver_attr(const std::string& drv, const std::string& name, const std::string& file,
                                    std::string_view value) {
  const std::string buf = c_str_of(value);
  if (name == "bind") return store_bind(drv, buf);
  if (name == "unbind") return store_unbind(drv, buf);
  if (name == "new_id") return store_new_id(drv, buf);
  if (name == "remove_id") return store_remove_id(drv, buf);
  if (name == "uevent") return ok();  // synthesises an event; the file does not change
  return write_text(file, value);
}

// An attribute `name` of the PCI function `d`.
Result<void> Sim::store_device_attr(const Dev& d, const std::string& name, const std::string& file,
                                    std::string_view value) {
  const std::string buf = c_str_of(value);
  if (name == "sriov_numvfs") return store_sriov_numvfs(d, buf);
  if (name == "sriov_drivers_autoprobe") return store_sriov_drivers_autoprobe(d, buf);
  if (name == "driver_override") return store_driver_override(d, value);
  if (name == "reset") return store_reset(d, buf);
  if (name == "uevent") return ok();
  if (name == "remove" || name == "rescan")
    return Error::sys(EOPNOTSUPP, d.name() + ": " + name + " is not modelled by SimKernel");
  if (read_only_device_attr(name)) return Error::sys(EACCES, d.name() + ": " + name + " is read-only");
  return write_text(file, value);
}

// net/core/rtnetlink.c do_setvfinfo(): the attributes in the kernel's order — MAC, VLAN (with
// QoS and protocol), rates, spoof check, link state, trust — each through the PF driver's
// ndo_set_vf_*, stopping at the first error with the earlier ones applied.
//
// A VfConfig maps to one IFLA_VF_INFO as LinuxKernel builds it: a set vlan/qos/vlan_proto is one
// IFLA_VF_VLAN (or IFLA_VF_VLAN_LIST with a protocol), which carries all three, so unset members
// are sent as vlan 0, qos 0, 802.1Q; min/max rates are one IFLA_VF_RATE whose unset member keeps
// the VF's current value (IFLA_VF_TX_RATE / `ip link` read it first). A VfConfig with nothing set
// sends nothing and succeeds, as LinuxKernel does.
Result<void> Sim::set_vf(const std::string& ifname, uint32_t vf, const VfConfig& c) {
  auto n = netdev(ifname);
  if (!n) return std::move(n).error();
  const std::optional<std::string> drv = n->pci ? driver_of(*n->pci) : std::nullopt;
  const PfOps* ops = pf_ops(drv);
  const std::string who = (drv ? *drv : std::string("netdev")) + " " + ifname + ": ";
  if (c == VfConfig{}) return ok();
  if (vf >= static_cast<uint32_t>(INT_MAX)) return Error::sys(EINVAL, who + "VF number out of range");
  if (!ops)
    return Error::sys(EOPNOTSUPP, who + "the driver has no ndo_set_vf_* (not an SR-IOV PF netdev the sim knows)");
  const Dev& pf = *n->pci;
  const unsigned count = is_pf(pf) ? num_vfs(pf) : 0;
  const bool vf_ok = vf < count;
  const std::string vfs = "VF " + std::to_string(vf);
  auto bad_vf = [&] {
    return Error::sys(EINVAL, who + "Invalid VF Identifier " + std::to_string(vf) + " (" + std::to_string(count) +
                                  " VFs enabled)");
  };
  const json record = vf_ok ? load_vf_json(pf, vf) : json::object();
  VfAttrs a = vf_attrs_from_json(record);
  const json stats = record.contains("stats") ? record["stats"] : json();
  // Each applied attribute is saved at once: a later failure leaves it applied.
  auto save = [&]() { return save_vf(pf, vf, a, &stats); };

  if (c.mac) {
    // ice_set_vf_mac, i40e_ndo_set_vf_mac, igb/ixgbe_ndo_set_vf_mac, mlx5_eswitch_set_vport_mac:
    // a multicast (or broadcast) address is EINVAL; all zeroes clears the admin MAC.
    if (c.mac->is_multicast()) return Error::sys(EINVAL, who + c.mac->to_string() + " not a valid unicast address");
    if (!vf_ok) return bad_vf();
    a.mac = *c.mac;
    if (auto r = save(); !r) return r;
    if (ops->live_mac && !a.mac.is_zero()) {
      // ice resets the VF; iavf comes back with the new MAC.
      if (auto vfa = virtfns(pf); vfa.count(vf))
        if (auto vd = dev(vfa[vf]))
          for (const auto& nd : netdevs_of(*vd))
            if (auto r = write_text(vd->in("net/" + nd + "/address"), a.mac.to_string() + "\n"); !r) return r;
    }
  }
  if (c.vlan || c.qos || c.vlan_proto) {
    const uint32_t vlan = c.vlan.value_or(0), qos = c.qos.value_or(0);
    const uint16_t proto = c.vlan_proto.value_or(kEthP8021Q);
    const bool range_ok = vlan <= 4095 && qos <= 7;
    const bool proto_ok = proto == kEthP8021Q || (proto == kEthP8021AD && ops->qinq);
    auto bad_range = [&] {
      return Error::sys(EINVAL, who + "Invalid Port VLAN parameters for " + vfs + ", ID " + std::to_string(vlan) +
                                    ", QoS " + std::to_string(qos));
    };
    auto bad_proto = [&] {
      return Error::sys(EPROTONOSUPPORT, who + "VF VLAN protocol 0x" + hex(proto, 4) + " is not supported");
    };
    switch (ops->vlan_checks) {
      case VlanChecks::range_proto_vf:
        if (!range_ok) return bad_range();
        if (!proto_ok) return bad_proto();
        if (!vf_ok) return bad_vf();
        break;
      case VlanChecks::proto_vf_range:
        if (!proto_ok) return bad_proto();
        if (!vf_ok) return bad_vf();
        if (!range_ok) return bad_range();
        break;
      case VlanChecks::vf_range_proto:
        if (!vf_ok) return bad_vf();
        if (!range_ok) return bad_range();
        if (!proto_ok) return bad_proto();
        break;
    }
    a.vlan = static_cast<uint16_t>(vlan);
    a.qos = static_cast<uint8_t>(qos);
    a.proto = proto;
    if (auto r = save(); !r) return r;
  }
  if (c.max_tx_rate_mbps || c.min_tx_rate_mbps) {
    const uint32_t max = c.max_tx_rate_mbps.value_or(a.max_rate), min = c.min_tx_rate_mbps.value_or(a.min_rate);
    // rtnl_set_vf_rate(): a maximum below the minimum is EINVAL before the driver sees it.
    if (max && max < min)
      return Error::sys(EINVAL, who + vfs + ": max_tx_rate " + std::to_string(max) + " is below min_tx_rate " +
                                    std::to_string(min));
    if (!vf_ok) return bad_vf();
    if (min && !ops->min_rate)
      return Error::sys(EINVAL, who + "Invalid min tx rate (" + std::to_string(min) +
                                    ") (greater than 0) specified for " + vfs);
    a.max_rate = max;
    a.min_rate = min;
    if (auto r = save(); !r) return r;
  }
  if (c.spoofchk) {
    if (!vf_ok) return bad_vf();
    a.spoofchk = *c.spoofchk;
    if (auto r = save(); !r) return r;
  }
  if (c.link_state) {
    if (!ops->link_state) return Error::sys(EOPNOTSUPP, who + "setting a VF link state is not supported");
    if (!vf_ok) return bad_vf();
    if (static_cast<unsigned>(*c.link_state) > 2)
      return Error::sys(EINVAL, who + vfs + ": link state " + std::to_string(static_cast<unsigned>(*c.link_state)));
    a.link = *c.link_state;
    if (auto r = save(); !r) return r;
  }
  if (c.trust) {
    if (!vf_ok) return bad_vf();
    a.trust = *c.trust;
    if (auto r = save(); !r) return r;
  }
  return ok();
}

Result<void> Sim::reboot() {
  auto names = list_names(abs("bus/pci/devices"));
  // 1. VFs go: nothing recreates them at boot.
  for (const auto& name : names) {
    auto d = find_dev(name);
    if (!d || !is_pf(*d)) continue;
    if (num_vfs(*d) > 0 || !virtfns(*d).empty())
      if (auto r = disable_sriov(*d); !r) return r;
    if (auto r = clear_vfs_attrs(*d); !r) return r;
  }
  // 2. Every function back to what the boot record says: driver, netdevs, no override.
  names = list_names(abs("bus/pci/devices"));
  for (const auto& name : names) {
    auto d = find_dev(name);
    if (!d) continue;
    if (auto r = remove_netdevs(*d); !r) return r;
    if (auto r = simtree::unbind_driver(root_, d->addr); !r) return r;
    if (auto r = write_text(d->in("driver_override"), "(null)\n"); !r) return r;
    if (is_pf(*d))
      if (auto r = write_text(d->in("sriov_drivers_autoprobe"), "1\n"); !r) return r;
  }
  for (const auto& name : names) {
    auto d = find_dev(name);
    if (!d) continue;
    const BootDevice* b = boot_.find(d->addr);
    if (!b || b->driver.empty()) continue;
    if (auto r = simtree::bind_driver(root_, d->addr, b->driver); !r) return r;
    for (const auto& n : b->netdevs)
      if (auto r = add_netdev(*d, n, true); !r) return r;
  }
  if (lexists(abs("bus/pci/drivers_autoprobe")))
    if (auto r = write_text(abs("bus/pci/drivers_autoprobe"), "1\n"); !r) return r;
  SimState& s = mutable_state();
  s = SimState{};
  s.last_ifindex = boot_.max_ifindex;
  return ok();
}

// Reads the tree as it is now: the boot record.
Result<BootData> record_boot(const fs::path& root) {
  BootData b;
  for (const auto& name : list_names(root / "bus/pci/devices")) {
    auto a = PciAddress::parse(name);
    if (!a) continue;
    auto dir = simtree::device_dir(root, *a);
    if (!dir) continue;
    const fs::path d = root / *dir;
    BootDevice bd;
    if (auto l = read_link(d / "driver")) bd.driver = fs::path(*l).filename().string();
    if (auto t = read_text(d / "vendor")) bd.vendor = pci::parse_hex16(*t).value_or(0);
    if (auto t = read_text(d / "device")) bd.device = pci::parse_hex16(*t).value_or(0);
    bd.vf = lexists(d / "physfn");
    for (const auto& n : list_names(d / "net")) {
      const fs::path nd = d / "net" / n;
      NetdevRecord r;
      r.name = n;
      auto num = [&](const char* f, unsigned dflt) -> unsigned {
        auto t = read_text(nd / f);
        if (!t) return dflt;
        unsigned long long v = 0;
        return kstrtoull(trim(*t).c_str(), 0, &v) == 0 ? static_cast<unsigned>(v) : dflt;
      };
      if (auto t = read_text(nd / "address")) r.mac = trim(*t);
      if (auto t = read_text(nd / "operstate")) r.operstate = trim(*t);
      r.ifindex = num("ifindex", 0);
      r.mtu = num("mtu", 1500);
      r.flags = num("flags", 0x1003);
      r.dev_port = num("dev_port", 0);
      r.type = num("type", 1);
      r.carrier = num("carrier", 1) != 0;
      b.max_ifindex = std::max(b.max_ifindex, r.ifindex);
      bd.netdevs.push_back(std::move(r));
    }
    b.devices[name] = std::move(bd);
  }
  // What VFs present at boot report as subsystem device, per PF (the VF's config space says;
  // the sim reuses it for VFs it creates later).
  for (auto& [name, bd] : b.devices) {
    if (bd.vf) continue;
    auto a = PciAddress::parse(name);
    auto dir = simtree::device_dir(root, *a);
    if (!dir) continue;
    for (const auto& e : list_names(root / *dir)) {
      if (!pci::virtfn_index(e)) continue;
      if (auto t = read_text(root / *dir / e / "subsystem_device")) {
        bd.vf_subsystem_device = pci::parse_hex16(*t);
        break;
      }
    }
  }
  // Netdevs not on PCI functions (lo, bridges...) count for ifindexes too.
  for (const auto& n : list_names(root / "class/net"))
    if (auto t = read_text(root / "class/net" / n / "ifindex"))
      if (auto v = pci::parse_int(*t, 0, INT32_MAX)) b.max_ifindex = std::max(b.max_ifindex, static_cast<unsigned>(*v));
  return b;
}

json to_json(const BootData& b) {
  json devs = json::object();
  for (const auto& [bdf, d] : b.devices) {
    json nds = json::array();
    for (const auto& n : d.netdevs) nds.push_back(to_json(n));
    json j = {{"driver", d.driver.empty() ? json(nullptr) : json(d.driver)},
              {"vendor", hex(d.vendor, 4)},
              {"device", hex(d.device, 4)},
              {"vf", d.vf},
              {"netdevs", nds}};
    if (d.vf_subsystem_device) j["vf_subsystem_device"] = hex(*d.vf_subsystem_device, 4);
    devs[bdf] = j;
  }
  return {{"version", 1}, {"max_ifindex", b.max_ifindex}, {"devices", devs}};
}

BootData boot_from_json(const json& j) {
  BootData b;
  b.max_ifindex = j.value("max_ifindex", 1u);
  if (j.contains("devices"))
    for (const auto& [bdf, d] : j["devices"].items()) {
      BootDevice bd;
      if (d.contains("driver") && d["driver"].is_string()) bd.driver = d["driver"].get<std::string>();
      bd.vendor = pci::parse_bare_hex16(d.value("vendor", "")).value_or(0);
      bd.device = pci::parse_bare_hex16(d.value("device", "")).value_or(0);
      bd.vf = d.value("vf", false);
      if (d.contains("netdevs"))
        for (const auto& n : d["netdevs"]) bd.netdevs.push_back(netdev_from_json(n));
      if (d.contains("vf_subsystem_device"))
        bd.vf_subsystem_device = pci::parse_bare_hex16(d.value("vf_subsystem_device", ""));
      b.devices[bdf] = std::move(bd);
    }
  return b;
}

}  // namespace

struct SimKernel::Boot : BootData {};

SimKernel::SimKernel(fs::path root) : root_(std::move(root)) {
  auto fail = [&](Error e) { init_error_ = std::move(e).context("SimKernel on " + root_.string()); };
  auto real = real_path(root_);
  if (!real || !is_dir(*real / "bus/pci/devices")) {
    fail(Error::sys(ENOENT, "no bus/pci/devices"));
    return;
  }
  real_root_ = *real;
  const fs::path dir = root_ / kStateDir, file = dir / "boot.json";
  auto boot = std::make_shared<Boot>();
  if (auto t = read_text(file)) {
    auto j = json::parse(*t, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      fail(Error::sys(EINVAL, "unreadable " + file.string()));
      return;
    }
    static_cast<BootData&>(*boot) = boot_from_json(j);
  } else {
    auto b = record_boot(root_);
    if (!b) {
      fail(std::move(b).error());
      return;
    }
    static_cast<BootData&>(*boot) = std::move(*b);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
      fail(Error::sys(ec.value(), "creating " + dir.string()));
      return;
    }
    if (auto r = write_atomic(file, to_json(*boot).dump(1) + "\n"); !r) {
      fail(std::move(r).error());
      return;
    }
  }
  boot->derive();
  boot->plain_bus = true;
  for (const char* d : {"bus", "bus/pci", "bus/pci/devices", "bus/pci/drivers"}) {
    struct stat st;
    if (::lstat((root_ / d).c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) boot->plain_bus = false;
  }
  boot_ = std::move(boot);
  lock_fd_ = UniqueFd(::open((dir / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock_fd_) fail(Error::sys(errno, "opening " + (dir / "lock").string()));
}

SimKernel::~SimKernel() {
  if (uevent_fd_ >= 0) ::close(uevent_fd_);
}

Result<void> SimKernel::hot_remove(const PciAddress& address) {
  TreeLock lock(mu_, lock_fd_.get());
  if (auto r = check_ready(); !r) return r;
  Sim sim(root_, real_root_, *boot_);
  std::vector<PendingUevent> uevents;
  sim.collect_uevents(&uevents);
  auto r = sim.finish(sim.hot_remove(address));
  if (r) send_uevents(uevents);
  return r;
}

Result<void> SimKernel::hot_add(const PciAddress& address) {
  TreeLock lock(mu_, lock_fd_.get());
  if (auto r = check_ready(); !r) return r;
  Sim sim(root_, real_root_, *boot_);
  std::vector<PendingUevent> uevents;
  sim.collect_uevents(&uevents);
  auto r = sim.finish(sim.hot_add(address));
  send_uevents(uevents);
  return r;
}

void SimKernel::send_uevents(const std::vector<PendingUevent>& list) {
  if (list.empty()) return;
  if (uevent_fd_ < 0) {
    uevent_fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (uevent_fd_ < 0) return;
    // A receiver that reads on its own thread keeps up; one that does not must not hang the
    // simulated kernel (the real one drops what a full netlink socket cannot take: ENOBUFS).
    timeval tv{1, 0};
    ::setsockopt(uevent_fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  // sun_path holds 107 bytes; a deeper root is reached through the directory's fd.
  const fs::path dir = root_ / kStateDir;
  UniqueFd dirfd;
  std::string path = (root_ / kUeventSocket).string();
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    dirfd = UniqueFd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dirfd) return;
    path = "/proc/self/fd/" + std::to_string(dirfd.get()) + "/uevent.sock";
  }
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  // /sys/kernel/uevent_seqnum: the number of the last uevent sent, shared by every process
  // acting on this tree. It is bumped before the events go out, as the kernel numbers an event
  // when it sends it: whoever reads N and then the tree has seen every change of events <= N.
  // The file is kept open (a call's read and write are then two system calls); it is rewritten
  // in place, never replaced, and its number only grows, so no write leaves a longer old tail.
  if (!seq_fd_) seq_fd_ = UniqueFd(::open((root_ / "kernel/uevent_seqnum").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  uint64_t seqnum = 0;
  char text[32];
  if (seq_fd_) {
    ssize_t n = ::pread(seq_fd_.get(), text, sizeof text - 1, 0);
    if (n > 0) seqnum = static_cast<uint64_t>(pci::parse_int(std::string_view(text, static_cast<size_t>(n)), 0, INT64_MAX).value_or(0));
    const int len = std::snprintf(text, sizeof text, "%llu\n", static_cast<unsigned long long>(seqnum + list.size()));
    (void)!::pwrite(seq_fd_.get(), text, static_cast<size_t>(len), 0);  // best effort, as sending is
  }
  std::vector<std::string> msgs;
  msgs.reserve(list.size());
  for (const auto& u : list) {
    std::string& msg = msgs.emplace_back(u.action + "@" + u.devpath);
    msg += '\0';
    auto pair = [&](const std::string& kv) {
      msg += kv;
      msg += '\0';
    };
    pair("ACTION=" + u.action);
    pair("DEVPATH=" + u.devpath);
    pair("SUBSYSTEM=" + u.subsystem);
    for (const auto& kv : u.pairs) pair(kv);
    pair("SEQNUM=" + std::to_string(++seqnum));
  }
  // One datagram per uevent, as the kernel sends them, handed over in one sendmmsg: the
  // receiver is woken once for the call's events rather than once for each.
  std::vector<iovec> iov(msgs.size());
  std::vector<mmsghdr> hdrs(msgs.size());
  for (size_t i = 0; i < msgs.size(); ++i) {
    iov[i] = {msgs[i].data(), msgs[i].size()};
    hdrs[i] = {};
    hdrs[i].msg_hdr.msg_name = &sa;
    hdrs[i].msg_hdr.msg_namelen = sizeof sa;
    hdrs[i].msg_hdr.msg_iov = &iov[i];
    hdrs[i].msg_hdr.msg_iovlen = 1;
  }
  for (size_t sent = 0; sent < hdrs.size();) {
    int n = ::sendmmsg(uevent_fd_, hdrs.data() + sent, static_cast<unsigned>(hdrs.size() - sent), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOENT || errno == ECONNREFUSED || errno == ENOTDIR) return;  // nobody listens
      ++sent;  // this one is lost (a full receiver: ENOBUFS/EAGAIN after the timeout), as the kernel drops it
      continue;
    }
    sent += static_cast<size_t>(n);
  }
}

SimKernel::TreeLock::TreeLock(std::mutex& mu, int fd) : guard_(mu), fd_(fd) {
  if (fd_ >= 0)
    while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
}

SimKernel::TreeLock::~TreeLock() {
  if (fd_ >= 0) ::flock(fd_, LOCK_UN);
}

Result<void> SimKernel::kill_between_calls(const fs::path& root, pid_t pid) {
  UniqueFd fd(::open((root / kStateDir / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return Error::sys(errno, "opening the simulated kernel's lock in " + root.string());
  while (::flock(fd.get(), LOCK_EX) != 0)
    if (errno != EINTR) return Error::sys(errno, "locking the simulated kernel");
  if (::kill(pid, SIGKILL) != 0) return Error::sys(errno, "kill " + std::to_string(pid));
  return ok();  // the lock goes with `fd`
}

Result<std::unique_ptr<SimKernel>> SimKernel::open(fs::path root) {
  auto k = std::make_unique<SimKernel>(std::move(root));
  if (k->init_error_) return *k->init_error_;
  return k;
}

Result<void> SimKernel::check_ready() const {
  if (init_error_) return *init_error_;
  return ok();
}

Result<void> SimKernel::write_attr(const std::string& relpath, std::string_view value) {
  TreeLock lock(mu_, lock_fd_.get());
  if (auto r = check_ready(); !r) return r;
  Sim sim(root_, real_root_, *boot_);
  std::vector<PendingUevent> uevents;
  sim.collect_uevents(&uevents);
  auto r = sim.finish(sim.write_attr(relpath, value));
  send_uevents(uevents);  // what happened happened, failed call or not
  if (!r) return std::move(r).error().context("writing " + relpath);
  return r;
}

Result<std::vector<VfInfo>> SimKernel::get_vfs(const std::string& pf_ifname) {
  TreeLock lock(mu_, lock_fd_.get());
  if (auto r = check_ready(); !r) return std::move(r).error();
  Sim sim(root_, real_root_, *boot_);
  return sim.finish(sim.get_vfs(pf_ifname));
}

Result<void> SimKernel::set_vf(const std::string& pf_ifname, uint32_t vf, const VfConfig& config) {
  TreeLock lock(mu_, lock_fd_.get());
  if (auto r = check_ready(); !r) return r;
  Sim sim(root_, real_root_, *boot_);
  return sim.finish(sim.set_vf(pf_ifname, vf, config));
}

Result<LinkFacts> SimKernel::get_link(const std::string& ifname) {
  TreeLock lock(mu_, lock_fd_.get());
  if (auto r = check_ready(); !r) return std::move(r).error();
  Sim sim(root_, real_root_, *boot_);
  return sim.get_link(ifname);
}

Result<void> SimKernel::set_link_addresses(const std::string& ifname, std::vector<std::string> addresses,
                                           size_t routes) {
  TreeLock lock(mu_, lock_fd_.get());
  if (auto r = check_ready(); !r) return r;
  Sim sim(root_, real_root_, *boot_);
  return sim.set_link_addresses(ifname, addresses, routes);
}

Result<void> SimKernel::simulate_reboot() {
  TreeLock lock(mu_, lock_fd_.get());
  if (auto r = check_ready(); !r) return r;
  Sim sim(root_, real_root_, *boot_);
  return sim.finish(sim.reboot());
}

Result<void> SimKernel::set_vf_stats(const std::string& pf_ifname, uint32_t vf, const VfStats& stats) {
  std::lock_guard lock(mu_);
  if (auto r = check_ready(); !r) return r;
  Sim sim(root_, real_root_, *boot_);
  return sim.set_vf_stats(pf_ifname, vf, stats);
}

size_t SimKernel::reset_count(const PciAddress& address) const {
  TreeLock lock(mu_, lock_fd_.get());
  if (init_error_) return 0;
  Sim sim(root_, real_root_, *boot_);
  auto it = sim.state().resets.find(address.to_string());
  return it == sim.state().resets.end() ? 0 : it->second;
}

std::optional<std::string> SimKernel::default_driver(const PciAddress& address) const {
  TreeLock lock(mu_, lock_fd_.get());
  if (init_error_) return std::nullopt;
  Sim sim(root_, real_root_, *boot_);
  auto d = sim.dev(address);
  if (!d) return std::nullopt;
  auto c = sim.candidates(*d, sim.ids_of(*d), true);
  if (c.empty()) return std::nullopt;
  return c.front();
}

}  // namespace sriovd::kernel
