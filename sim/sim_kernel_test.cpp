#include "sim/sim_kernel.h"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "base/fd.h"
#include "sim/sim_tree.h"
#include "pci/inventory.h"
#include "tests/fixtures/profiles.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
using namespace sriovd::kernel;
namespace fs = std::filesystem;

namespace {

PciAddress addr(const char* s) { return *PciAddress::parse(s); }

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string dev_attr(const fs::path& root, const char* bdf, const char* file) {
  return slurp(root / "bus/pci/devices" / bdf / file);
}

std::string numvfs_path(const char* bdf) { return std::string("bus/pci/devices/") + bdf + "/sriov_numvfs"; }

// Errno of a failed call; 0 when it succeeded.
int err(const Result<void>& r) { return r.ok() ? 0 : r.error().errnum; }

pci::Inventory scan(const fs::path& root) {
  auto sr = pci::SysfsRoot::open(root);
  REQUIRE(sr.ok());
  auto inv = pci::scan(*sr);
  REQUIRE(inv.ok());
  return std::move(*inv);
}

const pci::Device* find(const pci::Inventory& inv, const PciAddress& a) {
  for (const auto& d : inv.devices)
    if (d.address == a) return &d;
  return nullptr;
}

bool same_device(const pci::Device& a, const pci::Device& b) {
  return a.address == b.address && a.vendor_id == b.vendor_id && a.device_id == b.device_id &&
         a.subsystem_vendor_id == b.subsystem_vendor_id && a.subsystem_device_id == b.subsystem_device_id &&
         a.class_id == b.class_id && a.driver == b.driver && a.iommu_group == b.iommu_group &&
         a.numa_node == b.numa_node && a.netdevs == b.netdevs && a.physfn == b.physfn && a.vf_index == b.vf_index &&
         a.warnings == b.warnings && a.sriov.has_value() == b.sriov.has_value() &&
         (!a.sriov || (a.sriov->num_vfs == b.sriov->num_vfs && a.sriov->total_vfs == b.sriov->total_vfs &&
                       a.sriov->drivers_autoprobe == b.sriov->drivers_autoprobe));
}

// The whole tree: every entry with its link target or file content. SimKernel's own hidden
// state can be left out.
std::map<std::string, std::string> snapshot(const fs::path& root, bool with_sim_state = false) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    const fs::path rel = fs::relative(it->path(), root);
    const std::string name = it->path().filename().string();
    if (rel == "kernel/uevent_seqnum") continue;  // a counter: no rollback winds it back
    if (!with_sim_state && name.rfind(".sriovd-sim", 0) == 0) {
      if (it->is_directory() && !it->is_symlink()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_symlink())
      out[rel.string()] = "L " + fs::read_symlink(it->path()).string();
    else if (it->is_directory())
      out[rel.string()] = "D";
    else
      out[rel.string()] = "F " + slurp(it->path());
  }
  return out;
}

// The first entries where two snapshots differ, for failure messages.
std::string diff(const std::map<std::string, std::string>& a, const std::map<std::string, std::string>& b) {
  std::string out;
  int n = 0;
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end()) out += "- " + k + "\n";
    else if (it->second != v) out += "~ " + k + "\n";
    else continue;
    if (++n > 10) return out;
  }
  for (const auto& [k, v] : b)
    if (!a.count(k)) {
      out += "+ " + k + "\n";
      if (++n > 10) return out;
    }
  return out;
}

struct Host {
  test::TempDir dir;
  fixtures::Manifest manifest;
  std::unique_ptr<SimKernel> k;

  explicit Host(const char* profile) {
    auto m = fixtures::build_profile(profile, dir.path());
    REQUIRE_MESSAGE(m.ok(), (m.ok() ? "" : m.error().message));
    manifest = std::move(*m);
    auto kk = SimKernel::open(dir.path());
    REQUIRE_MESSAGE(kk.ok(), (kk.ok() ? "" : kk.error().message));
    k = std::move(*kk);
  }
  const fs::path& root() const { return dir.path(); }
};

VfConfig mac_cfg(MacAddress m) {
  VfConfig c;
  c.mac = m;
  return c;
}

}  // namespace

TEST_CASE("sriov_numvfs: the kernel's errnos (iov.c sriov_numvfs_store)") {
  Host h("dual-socket");
  const char* pf = "0000:17:00.0";
  CHECK(err(h.k->write_attr(numvfs_path(pf), "abc")) == EINVAL);
  CHECK(err(h.k->write_attr(numvfs_path(pf), "-1")) == EINVAL);
  CHECK(err(h.k->write_attr(numvfs_path(pf), "70000")) == EINVAL);  // kstrtou16 overflow
  CHECK(err(h.k->write_attr(numvfs_path(pf), "4x")) == EINVAL);
  CHECK(err(h.k->write_attr(numvfs_path(pf), "129")) == ERANGE);    // sriov_totalvfs 128
  CHECK(err(h.k->write_attr(numvfs_path(pf), "0")) == 0);           // equal: nothing to do
  CHECK(dev_attr(h.root(), pf, "sriov_numvfs") == "0\n");

  REQUIRE(err(h.k->write_attr(numvfs_path(pf), "4\n")) == 0);
  CHECK(dev_attr(h.root(), pf, "sriov_numvfs") == "4\n");
  CHECK(err(h.k->write_attr(numvfs_path(pf), "4")) == 0);           // equal
  auto busy = h.k->write_attr(numvfs_path(pf), "8");
  CHECK(err(busy) == EBUSY);
  CHECK(busy.error().message.find("4 VFs already enabled. Disable before enabling 8 VFs") != std::string::npos);
  CHECK(err(h.k->write_attr(numvfs_path(pf), "0x10")) == EBUSY);    // base 0: 16
  CHECK(err(h.k->write_attr(numvfs_path(pf), "0")) == 0);
  CHECK(dev_attr(h.root(), pf, "sriov_numvfs") == "0\n");

  // No driver on the PF: ENOENT, but writing the current value still succeeds.
  REQUIRE(err(h.k->write_attr("bus/pci/drivers/ice/unbind", "0000:17:00.1")) == 0);
  CHECK(err(h.k->write_attr(numvfs_path("0000:17:00.1"), "2")) == ENOENT);
  CHECK(err(h.k->write_attr(numvfs_path("0000:17:00.1"), "0")) == 0);
  CHECK(err(h.k->write_attr(numvfs_path("0000:17:00.1"), "200")) == ERANGE);  // range is checked first
  // Not a PF: no such attribute.
  CHECK(err(h.k->write_attr(numvfs_path("0000:02:00.0"), "1")) == ENOENT);
}

TEST_CASE("sriov_numvfs 0 -> N -> 0 on the dual-socket E810: what pci::scan sees") {
  Host h("dual-socket");
  const auto before = scan(h.root());
  const auto tree_before = snapshot(h.root());
  const PciAddress pf = addr("0000:17:00.0");

  REQUIRE(err(h.k->write_attr(numvfs_path("0000:17:00.0"), "10")) == 0);
  const auto inv = scan(h.root());
  CHECK(inv.warnings.empty());
  CHECK(inv.devices.size() == before.devices.size() + 10);
  std::set<int> groups;
  for (const auto& d : before.devices)
    if (d.iommu_group) groups.insert(*d.iommu_group);
  for (unsigned i = 0; i < 10; ++i) {
    CAPTURE(i);
    // First VF Offset 8, stride 1: rid 0x1708 + i.
    const PciAddress a = PciAddress::from_routing_id(0, static_cast<uint16_t>(0x1708 + i));
    const pci::Device* d = find(inv, a);
    REQUIRE(d != nullptr);
    CHECK(d->warnings.empty());
    CHECK(d->vendor_id == 0x8086);
    CHECK(d->device_id == 0x1889);
    CHECK(d->subsystem_device_id == 0x0000);
    CHECK(d->class_id == 0x020000);
    CHECK(d->physfn == pf);
    CHECK(d->vf_index == static_cast<int>(i));
    CHECK(d->driver == "iavf");
    CHECK(d->numa_node == 0);
    REQUIRE(d->iommu_group.has_value());
    CHECK(groups.insert(*d->iommu_group).second);  // a new group each
    CHECK(d->netdevs == std::vector<std::string>{"ens1f0v" + std::to_string(i)});
    CHECK(fs::is_symlink(h.root() / "bus/pci/drivers/iavf" / a.to_string()));
    CHECK(fs::is_symlink(h.root() / "class/net" / ("ens1f0v" + std::to_string(i))));
  }
  const pci::Device* pfd = find(inv, pf);
  REQUIRE(pfd != nullptr);
  REQUIRE(pfd->sriov.has_value());
  CHECK(pfd->sriov->num_vfs == 10);
  // Fresh ifindexes, distinct from every other netdev's.
  std::set<std::string> ifindexes;
  for (const auto& n : fs::directory_iterator(h.root() / "class/net"))
    CHECK(ifindexes.insert(slurp(n.path() / "ifindex")).second);

  REQUIRE(err(h.k->write_attr(numvfs_path("0000:17:00.0"), "0")) == 0);
  const auto after = scan(h.root());
  REQUIRE(after.devices.size() == before.devices.size());
  for (size_t i = 0; i < after.devices.size(); ++i) {
    CAPTURE(after.devices[i].address.to_string());
    CHECK(same_device(after.devices[i], before.devices[i]));
  }
  // Everything the VFs brought is gone: the tree is what it was, byte for byte.
  const auto tree_after = snapshot(h.root());
  CHECK_MESSAGE(tree_after == tree_before, diff(tree_before, tree_after));
}

TEST_CASE("sriov_numvfs on a hand-built tree: VFs on a second bus, a VF driver loaded later") {
  test::TempDir dir;
  using namespace fixtures;
  auto m = HostBuilder(dir.path())
               .numa_node(0, "0-7")
               .root_bus(0, 0x00, 0, "dmar0")
               .root_port(addr("0000:00:02.0"), 0x3b, 0x3c)
               .function(addr("0000:3b:00.0"), models::intel_x710,
                         {.netdevs = {"p1p1"}, .total_vfs = 8, .pcie = std::nullopt})
               .finish();
  REQUIRE(m.ok());
  // First VF Offset 0xfe puts VFs 0-1 on bus 3b and VFs 2.. on bus 3c (a virtual bus).
  {
    std::ofstream(dir.path() / "bus/pci/devices/0000:3b:00.0/sriov_offset") << "254\n";
  }
  auto k = SimKernel::open(dir.path());
  REQUIRE(k.ok());
  const auto before = snapshot(dir.path());

  // No iavf loaded: the VFs stay unbound, without netdevs.
  REQUIRE(err((*k)->write_attr(numvfs_path("0000:3b:00.0"), "4")) == 0);
  auto inv = scan(dir.path());
  const PciAddress expect[] = {addr("0000:3b:1f.6"), addr("0000:3b:1f.7"), addr("0000:3c:00.0"), addr("0000:3c:00.1")};
  for (unsigned i = 0; i < 4; ++i) {
    const pci::Device* d = find(inv, expect[i]);
    REQUIRE(d != nullptr);
    CHECK(d->warnings.empty());
    CHECK(d->device_id == 0x154c);
    CHECK(d->vf_index == static_cast<int>(i));
    CHECK(!d->driver);
    CHECK(d->netdevs.empty());
    CHECK(d->iommu_group.has_value());
  }
  CHECK(fs::is_symlink(dir.path() / "class/pci_bus/0000:3c"));
  REQUIRE(err((*k)->write_attr(numvfs_path("0000:3b:00.0"), "0")) == 0);
  const auto after = snapshot(dir.path());
  CHECK_MESSAGE(after == before, diff(before, after));

  // With iavf loaded they bind, and get netdevs named after the PF's.
  REQUIRE(simtree::ensure_driver(dir.path(), "iavf").ok());
  REQUIRE(err((*k)->write_attr(numvfs_path("0000:3b:00.0"), "3")) == 0);
  inv = scan(dir.path());
  for (unsigned i = 0; i < 3; ++i) {
    const pci::Device* d = find(inv, expect[i]);
    REQUIRE(d != nullptr);
    CHECK(d->driver == "iavf");
    CHECK(d->netdevs == std::vector<std::string>{"p1p1v" + std::to_string(i)});
  }
  REQUIRE(err((*k)->write_attr(numvfs_path("0000:3b:00.0"), "0")) == 0);
  CHECK(scan(dir.path()).devices.size() == 2);
}

TEST_CASE("a PF outside any IOMMU group gets VFs without groups, which vfio-pci refuses") {
  test::TempDir dir;
  const fs::path root = dir.path();
  REQUIRE(simtree::init_tree(root).ok());
  simtree::FunctionSpec pf;
  pf.address = addr("0000:05:00.0");
  pf.vendor = 0x15b3;
  pf.device = 0x1017;
  pf.subsystem_vendor = 0x15b3;
  pf.subsystem_device = 0x0020;
  pf.class_code = 0x020000;
  pf.sriov = simtree::SriovSpec{.total_vfs = 4, .offset = 1, .stride = 1, .vf_device = 0x1018};
  pf.driver = "mlx5_core";
  REQUIRE(simtree::add_function(root, pf).ok());
  REQUIRE(simtree::ensure_driver(root, "vfio-pci").ok());
  auto k = SimKernel::open(root);
  REQUIRE(k.ok());
  REQUIRE(err((*k)->write_attr(numvfs_path("0000:05:00.0"), "2")) == 0);
  auto inv = scan(root);
  const pci::Device* vf = find(inv, addr("0000:05:00.1"));
  REQUIRE(vf != nullptr);
  CHECK(!vf->iommu_group);
  CHECK(vf->driver == "mlx5_core");
  CHECK(vf->netdevs.empty() == false);  // no PF netdev: the kernel's eth%d
  CHECK(vf->netdevs.front().rfind("eth", 0) == 0);
  REQUIRE(err((*k)->write_attr("bus/pci/devices/0000:05:00.1/driver_override", "vfio-pci")) == 0);
  REQUIRE(err((*k)->write_attr("bus/pci/drivers/mlx5_core/unbind", "0000:05:00.1")) == 0);
  CHECK(err((*k)->write_attr("bus/pci/drivers/vfio-pci/bind", "0000:05:00.1")) == EINVAL);
  CHECK(err((*k)->write_attr("bus/pci/drivers_probe", "0000:05:00.1")) == 0);  // probe failures are swallowed
  CHECK(!fs::exists(root / "bus/pci/devices/0000:05:00.1/driver"));
}

TEST_CASE("sriov_drivers_autoprobe 0 leaves VFs unbound; driver_override + drivers_probe binds vfio-pci") {
  Host h("minimal");
  const char* pf = "0000:01:00.0";
  REQUIRE(simtree::ensure_driver(h.root(), "vfio-pci").ok());
  CHECK(err(h.k->write_attr(std::string("bus/pci/devices/") + pf + "/sriov_drivers_autoprobe", "2")) == EINVAL);
  CHECK(err(h.k->write_attr(std::string("bus/pci/devices/") + pf + "/sriov_drivers_autoprobe", "x")) == EINVAL);
  REQUIRE(err(h.k->write_attr(std::string("bus/pci/devices/") + pf + "/sriov_drivers_autoprobe", "0")) == 0);
  CHECK(dev_attr(h.root(), pf, "sriov_drivers_autoprobe") == "0\n");
  REQUIRE(err(h.k->write_attr(numvfs_path(pf), "2")) == 0);
  auto inv = scan(h.root());
  for (const char* vf : {"0000:01:00.1", "0000:01:00.2"}) {
    const pci::Device* d = find(inv, addr(vf));
    REQUIRE(d != nullptr);
    CHECK(!d->driver);
    CHECK(d->netdevs.empty());
    CHECK(d->sriov == std::nullopt);
  }
  const std::string vf = "0000:01:00.1";
  // Unbound VF with autoprobe off: bind is refused by pci_device_probe, drivers_probe is a no-op.
  CHECK(err(h.k->write_attr("bus/pci/drivers/mlx5_core/bind", vf)) == ENODEV);
  CHECK(err(h.k->write_attr("bus/pci/drivers_probe", vf)) == 0);
  CHECK(!fs::exists(h.root() / "bus/pci/devices" / vf / "driver"));
  CHECK(err(h.k->write_attr("bus/pci/drivers/vfio-pci/bind", vf)) == ENODEV);  // vfio-pci claims no ids

  REQUIRE(err(h.k->write_attr("bus/pci/devices/" + vf + "/driver_override", "vfio-pci\n")) == 0);
  CHECK(slurp(h.root() / "bus/pci/devices" / vf / "driver_override") == "vfio-pci\n");
  CHECK(err(h.k->write_attr("bus/pci/drivers/mlx5_core/bind", vf)) == ENODEV);  // override names another
  REQUIRE(err(h.k->write_attr("bus/pci/drivers_probe", vf + "\n")) == 0);
  inv = scan(h.root());
  const pci::Device* d = find(inv, addr(vf.c_str()));
  REQUIRE(d != nullptr);
  CHECK(d->driver == "vfio-pci");
  CHECK(d->netdevs.empty());
  CHECK(fs::is_symlink(h.root() / "bus/pci/drivers/vfio-pci" / vf));
  CHECK(slurp(h.root() / "bus/pci/devices" / vf / "uevent").rfind("DRIVER=vfio-pci\n", 0) == 0);
  CHECK(err(h.k->write_attr("bus/pci/drivers/vfio-pci/bind", vf)) == EBUSY);
  CHECK(err(h.k->write_attr("bus/pci/drivers_probe", vf)) == 0);  // bound: nothing to do
  CHECK(err(h.k->write_attr("bus/pci/drivers/mlx5_core/unbind", vf)) == ENODEV);
  REQUIRE(err(h.k->write_attr("bus/pci/devices/" + vf + "/driver/unbind", vf)) == 0);  // through the link
  CHECK(!fs::exists(h.root() / "bus/pci/devices" / vf / "driver"));
  CHECK(slurp(h.root() / "bus/pci/devices" / vf / "uevent").find("DRIVER=") == std::string::npos);
  CHECK(err(h.k->write_attr("bus/pci/drivers/vfio-pci/unbind", vf)) == ENODEV);

  // Back to the host driver: clear the override, probe; mlx5_core gives it a netdev again.
  REQUIRE(err(h.k->write_attr("bus/pci/devices/" + vf + "/driver_override", "\n")) == 0);
  CHECK(slurp(h.root() / "bus/pci/devices" / vf / "driver_override") == "(null)\n");
  CHECK(err(h.k->write_attr("bus/pci/drivers_probe", vf)) == 0);
  CHECK(!fs::exists(h.root() / "bus/pci/devices" / vf / "driver"));  // autoprobe still off
  REQUIRE(err(h.k->write_attr(std::string("bus/pci/devices/") + pf + "/sriov_drivers_autoprobe", "on")) == 0);
  REQUIRE(err(h.k->write_attr("bus/pci/drivers_probe", vf)) == 0);
  inv = scan(h.root());
  d = find(inv, addr(vf.c_str()));
  CHECK(d->driver == "mlx5_core");
  CHECK(d->netdevs == std::vector<std::string>{"enp1s0f0v0"});
  CHECK(err(h.k->write_attr("bus/pci/drivers_probe", "0000:01:07.0")) == ENODEV);
  CHECK(err(h.k->write_attr("bus/pci/drivers/mlx5_core/bind", "0000:01:07.0")) == ENODEV);
  CHECK(err(h.k->write_attr("bus/pci/drivers/mlx5_core/unbind", "0000:01:07.0")) == ENODEV);
}

TEST_CASE("driver_override follows driver_set_override") {
  Host h("minimal");
  const fs::path f = h.root() / "bus/pci/devices/0000:00:04.0/driver_override";
  const std::string rel = "bus/pci/devices/0000:00:04.0/driver_override";
  CHECK(slurp(f) == "(null)\n");
  REQUIRE(err(h.k->write_attr(rel, "vfio-pci")) == 0);
  CHECK(slurp(f) == "vfio-pci\n");
  REQUIRE(err(h.k->write_attr(rel, "")) == 0);  // a zero-length write never reaches the store
  CHECK(slurp(f) == "vfio-pci\n");
  REQUIRE(err(h.k->write_attr(rel, "pci-stub\nrest")) == 0);
  CHECK(slurp(f) == "pci-stub\n");
  REQUIRE(err(h.k->write_attr(rel, std::string_view("\0", 1))) == 0);  // empty C string clears
  CHECK(slurp(f) == "(null)\n");
  REQUIRE(err(h.k->write_attr(rel, "vfio-pci")) == 0);
  REQUIRE(err(h.k->write_attr(rel, "\n")) == 0);
  CHECK(slurp(f) == "(null)\n");
  CHECK(err(h.k->write_attr(rel, std::string(5000, 'a'))) == EINVAL);
  // Setting it does not unbind the current driver.
  REQUIRE(err(h.k->write_attr(rel, "vfio-pci")) == 0);
  CHECK(fs::is_symlink(h.root() / "bus/pci/devices/0000:00:04.0/driver"));
}

TEST_CASE("paths: missing is ENOENT, read-only attributes EACCES, others are replaced") {
  Host h("minimal");
  CHECK(err(h.k->write_attr("bus/pci/devices/0000:09:00.0/driver_override", "x")) == ENOENT);
  CHECK(err(h.k->write_attr("bus/pci/drivers/iavf/bind", "0000:01:00.0")) == ENOENT);
  CHECK(err(h.k->write_attr("bus/pci/devices/0000:01:00.0/nope", "1")) == ENOENT);
  CHECK(err(h.k->write_attr("bus/pci/devices/0000:01:00.0/vendor", "0x1234")) == EACCES);
  CHECK(err(h.k->write_attr("bus/pci/devices/0000:01:00.0/sriov_totalvfs", "2")) == EACCES);
  CHECK(err(h.k->write_attr("bus/pci/devices/0000:01:00.0", "1")) == EISDIR);
  CHECK(err(h.k->write_attr("../etc/passwd", "1")) == EINVAL);
  CHECK(err(h.k->write_attr("/bus/pci/drivers_probe", "1")) == EINVAL);
  REQUIRE(err(h.k->write_attr("class/net/enp1s0f0/mtu", "9000\n")) == 0);
  CHECK(slurp(h.root() / "class/net/enp1s0f0/mtu") == "9000\n");
  // uevent writes synthesise an event and change nothing.
  const std::string ue = dev_attr(h.root(), "0000:01:00.0", "uevent");
  REQUIRE(err(h.k->write_attr("bus/pci/devices/0000:01:00.0/uevent", "change")) == 0);
  CHECK(dev_attr(h.root(), "0000:01:00.0", "uevent") == ue);
}

TEST_CASE("reset is counted; ENOENT where the function has no reset file") {
  Host h("dual-socket");
  const PciAddress nic = addr("0000:02:00.0");
  CHECK(h.k->reset_count(nic) == 0);
  REQUIRE(err(h.k->write_attr("bus/pci/devices/0000:02:00.0/reset", "1")) == 0);
  REQUIRE(err(h.k->write_attr("bus/pci/devices/0000:02:00.0/reset", "1\n")) == 0);
  CHECK(h.k->reset_count(nic) == 2);
  CHECK(err(h.k->write_attr("bus/pci/devices/0000:02:00.0/reset", "0")) == EINVAL);
  CHECK(err(h.k->write_attr("bus/pci/devices/0000:02:00.0/reset", "yes")) == EINVAL);
  CHECK(h.k->reset_count(nic) == 2);
  CHECK(err(h.k->write_attr("bus/pci/devices/0000:87:00.0/reset", "1")) == ENOENT);  // GPU: no FLR
  // A restarted daemon's SimKernel reads the same counts.
  SimKernel again(h.root());
  CHECK(again.reset_count(nic) == 2);
}

TEST_CASE("bind, unbind and new_id/remove_id follow the driver core") {
  Host h("dual-socket");
  const std::string vf = "0000:3b:02.1";  // X710 VF 1 on iavf with netdev ens2f0v1
  CHECK(fs::is_symlink(h.root() / "class/net/ens2f0v1"));
  REQUIRE(err(h.k->write_attr("bus/pci/drivers/iavf/unbind", vf)) == 0);
  CHECK(!fs::exists(h.root() / "class/net/ens2f0v1"));           // the driver's netdev went
  CHECK(!fs::exists(h.root() / "bus/pci/drivers/iavf" / vf));
  CHECK(err(h.k->write_attr("bus/pci/drivers/iavf/unbind", vf)) == ENODEV);

  CHECK(err(h.k->write_attr("bus/pci/drivers/vfio-pci/new_id", "8086")) == EINVAL);
  CHECK(err(h.k->write_attr("bus/pci/drivers/iavf/new_id", "8086 154c")) == EEXIST);  // in its table
  // new_id binds every unbound device it now matches, and only those.
  REQUIRE(err(h.k->write_attr("bus/pci/drivers/vfio-pci/new_id", "8086 154c")) == 0);
  CHECK(fs::path(fs::read_symlink(h.root() / "bus/pci/devices" / vf / "driver")).filename() == "vfio-pci");
  CHECK(fs::path(fs::read_symlink(h.root() / "bus/pci/devices/0000:3b:02.0/driver")).filename() == "iavf");
  CHECK(err(h.k->write_attr("bus/pci/drivers/vfio-pci/new_id", "0x8086 0x154c")) == EEXIST);  // duplicate
  REQUIRE(err(h.k->write_attr("bus/pci/drivers/vfio-pci/remove_id", "8086 154c")) == 0);
  CHECK(err(h.k->write_attr("bus/pci/drivers/vfio-pci/remove_id", "8086 154c")) == ENODEV);
  CHECK(err(h.k->write_attr("bus/pci/drivers/vfio-pci/remove_id", "zz")) == EINVAL);
  CHECK(fs::path(fs::read_symlink(h.root() / "bus/pci/devices" / vf / "driver")).filename() == "vfio-pci");

  // The boot driver comes back through drivers_probe, with a netdev again.
  REQUIRE(err(h.k->write_attr("bus/pci/drivers/vfio-pci/unbind", vf)) == 0);
  CHECK(h.k->default_driver(addr(vf.c_str())) == "iavf");
  REQUIRE(err(h.k->write_attr("bus/pci/drivers_probe", vf)) == 0);
  CHECK(fs::is_symlink(h.root() / "class/net/ens2f0v1"));

  // vfio-pci refuses bridges and PFs with VFs enabled.
  REQUIRE(err(h.k->write_attr("bus/pci/devices/0000:00:01.0/driver_override", "vfio-pci")) == 0);
  REQUIRE(err(h.k->write_attr("bus/pci/drivers/pcieport/unbind", "0000:00:01.0")) == 0);
  CHECK(err(h.k->write_attr("bus/pci/drivers/vfio-pci/bind", "0000:00:01.0")) == EINVAL);
  REQUIRE(err(h.k->write_attr("bus/pci/devices/0000:3b:00.0/driver_override", "vfio-pci")) == 0);
  REQUIRE(err(h.k->write_attr("bus/pci/drivers/i40e/unbind", "0000:3b:00.0")) == 0);
  // Unbinding the PF driver disabled SR-IOV (i40e_remove frees the VFs).
  CHECK(dev_attr(h.root(), "0000:3b:00.0", "sriov_numvfs") == "0\n");
  CHECK(!fs::exists(h.root() / "bus/pci/devices/0000:3b:02.0"));
  CHECK(!fs::exists(h.root() / "class/net/ens2f0"));
  REQUIRE(err(h.k->write_attr("bus/pci/drivers/vfio-pci/bind", "0000:3b:00.0")) == 0);
}

TEST_CASE("a PF on vfio-pci: ENOENT without enable_sriov, captured VFs with it") {
  Host h("dual-socket");
  const char* pf = "0000:17:00.1";
  REQUIRE(err(h.k->write_attr(std::string("bus/pci/devices/") + pf + "/driver_override", "vfio-pci")) == 0);
  REQUIRE(err(h.k->write_attr("bus/pci/drivers/ice/unbind", pf)) == 0);
  REQUIRE(err(h.k->write_attr("bus/pci/drivers_probe", pf)) == 0);
  CHECK(fs::read_symlink(h.root() / "bus/pci/devices" / pf / "driver").filename() == "vfio-pci");
  CHECK(!fs::exists(h.root() / "class/net/ens1f1"));
  CHECK(err(h.k->write_attr(numvfs_path(pf), "2")) == ENOENT);
  fs::create_directories(h.root() / "module/vfio_pci/parameters");
  std::ofstream(h.root() / "module/vfio_pci/parameters/enable_sriov") << "Y\n";
  REQUIRE(err(h.k->write_attr(numvfs_path(pf), "2")) == 0);
  // PF1's VFs start at rid 0x1701 + 135 = 0x1788: 17:11.0.
  for (const char* vf : {"0000:17:11.0", "0000:17:11.1"}) {
    CHECK(slurp(h.root() / "bus/pci/devices" / vf / "driver_override") == "vfio-pci\n");
    CHECK(fs::read_symlink(h.root() / "bus/pci/devices" / vf / "driver").filename() == "vfio-pci");
  }
}

TEST_CASE("set_vf: errnos in do_setvfinfo order, partial application, persistence") {
  Host h("dual-socket");
  REQUIRE(err(h.k->write_attr(numvfs_path("0000:17:00.0"), "2")) == 0);
  auto vfs = h.k->get_vfs("ens1f0");
  REQUIRE(vfs.ok());
  REQUIRE(vfs->size() == 2);
  const VfConfig& d0 = (*vfs)[0].config;
  CHECK((*vfs)[1].index == 1);
  CHECK(d0.mac == MacAddress{});
  CHECK(d0.vlan == 0);
  CHECK(d0.qos == 0);
  CHECK(d0.vlan_proto == 0x8100);
  CHECK(d0.max_tx_rate_mbps == 0);
  CHECK(d0.min_tx_rate_mbps == 0);
  CHECK(d0.spoofchk == true);
  CHECK(d0.trust == false);
  CHECK(d0.link_state == LinkState::auto_);

  const MacAddress mac{0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
  auto e = [&](uint32_t vf, VfConfig c) { return err(h.k->set_vf("ens1f0", vf, c)); };
  CHECK(e(2, mac_cfg(mac)) == EINVAL);                                   // VF 2 of 2
  CHECK(e(0, mac_cfg({0x01, 0, 0x5e, 0, 0, 1})) == EINVAL);              // multicast
  CHECK(e(0, mac_cfg({0xff, 0xff, 0xff, 0xff, 0xff, 0xff})) == EINVAL);  // broadcast
  CHECK(e(5, VfConfig{}) == 0);                                          // nothing to send
  VfConfig c;
  c.vlan = 4096;
  CHECK(e(0, c) == EINVAL);
  c = {};
  c.vlan = 10;
  c.qos = 8;
  CHECK(e(0, c) == EINVAL);
  c = {};
  c.vlan = 10;
  c.vlan_proto = 0x9100;
  CHECK(e(0, c) == EPROTONOSUPPORT);
  c = {};
  c.max_tx_rate_mbps = 100;
  c.min_tx_rate_mbps = 200;
  CHECK(e(0, c) == EINVAL);
  CHECK(h.k->get_vfs("ens1f0")->at(0).config == d0);  // nothing applied so far

  // MAC first, then the VLAN fails: the MAC stays (the kernel does not roll back).
  c = mac_cfg(mac);
  c.vlan = 5000;
  c.trust = true;
  auto r = h.k->set_vf("ens1f0", 0, c);
  CHECK(err(r) == EINVAL);
  CHECK(r.error().message.find("Invalid Port VLAN parameters for VF 0, ID 5000") != std::string::npos);
  auto now = h.k->get_vfs("ens1f0")->at(0).config;
  CHECK(now.mac == mac);
  CHECK(now.vlan == 0);
  CHECK(now.trust == false);
  // ice: the VF is reset and iavf takes the new MAC.
  CHECK(slurp(h.root() / "class/net/ens1f0v0/address") == "02:11:22:33:44:55\n");

  c = {};
  c.qos = 3;  // without vlan: IFLA_VF_VLAN with vlan 0, which ice accepts (priority tagging)
  CHECK(e(0, c) == 0);
  CHECK(h.k->get_vfs("ens1f0")->at(0).config.qos == 3);
  c = {};
  c.vlan = 100;
  c.qos = 3;
  c.vlan_proto = 0x88a8;  // ice in Double VLAN Mode
  c.max_tx_rate_mbps = 1000;
  c.min_tx_rate_mbps = 10;
  c.spoofchk = false;
  c.link_state = LinkState::disable;
  c.trust = true;
  CHECK(e(0, c) == 0);
  now = h.k->get_vfs("ens1f0")->at(0).config;
  CHECK(now.vlan == 100);
  CHECK(now.qos == 3);
  CHECK(now.vlan_proto == 0x88a8);
  CHECK(now.max_tx_rate_mbps == 1000);
  CHECK(now.min_tx_rate_mbps == 10);
  CHECK(now.spoofchk == false);
  CHECK(now.link_state == LinkState::disable);
  CHECK(now.trust == true);
  CHECK(h.k->get_vfs("ens1f0")->at(1).config == d0);
  // One VLAN attribute carries vlan, qos and protocol: unset ones are sent as 0 and 802.1Q.
  c = {};
  c.vlan = 200;
  CHECK(e(1, c) == 0);
  auto one = h.k->get_vfs("ens1f0")->at(1).config;
  CHECK(one.vlan == 200);
  CHECK(one.qos == 0);
  CHECK(one.vlan_proto == 0x8100);
  // Rates are one IFLA_VF_RATE: an unset one keeps its value.
  c = {};
  c.min_tx_rate_mbps = 20;
  CHECK(e(0, c) == 0);
  CHECK(h.k->get_vfs("ens1f0")->at(0).config.max_tx_rate_mbps == 1000);
  CHECK(h.k->get_vfs("ens1f0")->at(0).config.min_tx_rate_mbps == 20);
  c = {};
  c.max_tx_rate_mbps = 15;  // below the current min
  CHECK(e(0, c) == EINVAL);
  c.min_tx_rate_mbps = 0;
  CHECK(e(0, c) == 0);
  now = h.k->get_vfs("ens1f0")->at(0).config;

  // A new SimKernel (a restarted daemon) reads them back.
  SimKernel again(h.root());
  CHECK(again.get_vfs("ens1f0")->at(0).config == now);
  // Disabling SR-IOV frees them: new VFs start from the defaults.
  REQUIRE(err(again.write_attr(numvfs_path("0000:17:00.0"), "0")) == 0);
  CHECK(again.get_vfs("ens1f0")->empty());
  REQUIRE(err(again.write_attr(numvfs_path("0000:17:00.0"), "1")) == 0);
  CHECK(again.get_vfs("ens1f0")->at(0).config == d0);
}

TEST_CASE("set_vf: per-driver differences and netdevs that are not PFs") {
  Host h("dual-socket");
  VfConfig qinq;
  qinq.vlan = 10;
  qinq.vlan_proto = 0x88a8;
  CHECK(err(h.k->set_vf("ens3f0", 0, qinq)) == EPROTONOSUPPORT);  // mlx5: 802.1Q only
  VfConfig min;
  min.min_tx_rate_mbps = 10;
  CHECK(err(h.k->set_vf("ens2f0", 0, min)) == EINVAL);  // i40e: no min rate
  CHECK(err(h.k->set_vf("ens3f0", 0, min)) == 0);
  VfConfig link;
  link.link_state = LinkState::enable;
  CHECK(err(h.k->set_vf("ens3f0", 7, link)) == 0);
  CHECK(err(h.k->set_vf("ens3f0", 8, link)) == EINVAL);
  // A VF's own netdev (iavf has no ndo_set_vf_*): EOPNOTSUPP.
  CHECK(err(h.k->set_vf("ens2f0v0", 0, link)) == EOPNOTSUPP);
  CHECK(h.k->get_vfs("ens2f0v0")->empty());
  // igb on an I210 has the ops but no VFs: the driver's VF check says EINVAL.
  CHECK(err(h.k->set_vf("eno1", 0, mac_cfg({0x02, 0, 0, 0, 0, 1}))) == EINVAL);
  CHECK(h.k->get_vfs("eno1")->empty());
  CHECK(err(h.k->set_vf("nosuch0", 0, link)) == ENODEV);
  CHECK(h.k->get_vfs("nosuch0").error().errnum == ENODEV);
  CHECK(h.k->get_vfs("ens3f0")->size() == 8);
  CHECK(h.k->get_vfs("ens1f1")->empty());
}

TEST_CASE("get_link: up from flags, addresses and routes from the sim") {
  Host h("minimal");
  auto l = h.k->get_link("enp1s0f0");
  REQUIRE(l.ok());
  CHECK(l->ifname == "enp1s0f0");
  CHECK(l->ifindex == std::stoi(slurp(h.root() / "class/net/enp1s0f0/ifindex")));
  CHECK(l->up);
  CHECK(l->addresses.empty());
  CHECK(l->routes == 0);
  REQUIRE(h.k->set_link_addresses("enp1s0f0", {"192.0.2.1/24", "2001:db8::1/64"}, 2).ok());
  REQUIRE(err(h.k->write_attr("class/net/enp1s0f0/flags", "0x1002\n")) == 0);
  l = h.k->get_link("enp1s0f0");
  CHECK(!l->up);
  CHECK(l->addresses == std::vector<std::string>{"192.0.2.1/24", "2001:db8::1/64"});
  CHECK(l->routes == 2);
  CHECK(h.k->get_link("nope0").error().errnum == ENODEV);
  CHECK(h.k->set_link_addresses("nope0", {}, 0).error().errnum == ENODEV);
  // A new VF netdev starts down.
  REQUIRE(err(h.k->write_attr(numvfs_path("0000:01:00.0"), "1")) == 0);
  l = h.k->get_link("enp1s0f0v0");
  REQUIRE(l.ok());
  CHECK(!l->up);
  CHECK(l->ifindex > 0);
}

TEST_CASE("simulate_reboot: boot drivers and netdevs back, VFs and runtime state gone") {
  Host h("dual-socket");
  const auto boot = scan(h.root());
  const std::string eno1_ifindex = slurp(h.root() / "class/net/eno1/ifindex");
  const std::string eno1_mac = slurp(h.root() / "class/net/eno1/address");
  // Change a lot.
  REQUIRE(err(h.k->write_attr(numvfs_path("0000:17:00.0"), "4")) == 0);
  REQUIRE(err(h.k->set_vf("ens1f0", 1, mac_cfg({0x02, 1, 2, 3, 4, 5}))) == 0);
  REQUIRE(err(h.k->write_attr("bus/pci/devices/0000:3b:02.0/driver_override", "vfio-pci")) == 0);
  REQUIRE(err(h.k->write_attr("bus/pci/drivers/iavf/unbind", "0000:3b:02.0")) == 0);
  REQUIRE(err(h.k->write_attr("bus/pci/drivers_probe", "0000:3b:02.0")) == 0);
  REQUIRE(err(h.k->write_attr("bus/pci/devices/0000:02:00.0/driver_override", "vfio-pci")) == 0);
  REQUIRE(err(h.k->write_attr("bus/pci/drivers/igb/unbind", "0000:02:00.0")) == 0);
  REQUIRE(err(h.k->write_attr("bus/pci/drivers_probe", "0000:02:00.0")) == 0);
  REQUIRE(err(h.k->write_attr("bus/pci/devices/0000:5e:00.0/sriov_drivers_autoprobe", "0")) == 0);
  REQUIRE(err(h.k->write_attr("bus/pci/devices/0000:02:00.0/reset", "1")) == 0);
  REQUIRE(err(h.k->write_attr("bus/pci/drivers/vfio-pci/new_id", "10de 2204")) == 0);
  REQUIRE(h.k->set_link_addresses("ens1f1", {"192.0.2.9/24"}, 1).ok());
  CHECK(!fs::exists(h.root() / "class/net/eno1"));

  REQUIRE(h.k->simulate_reboot().ok());
  const auto after = scan(h.root());
  // Boot minus the VFs that were enabled at boot (X710 port 0, ConnectX-6 port 0).
  std::vector<pci::Device> expect;
  for (const auto& d : boot.devices)
    if (!d.physfn) expect.push_back(d);
  for (auto& d : expect)
    if (d.sriov) d.sriov->num_vfs = 0;
  REQUIRE(after.devices.size() == expect.size());
  for (size_t i = 0; i < expect.size(); ++i) {
    CAPTURE(expect[i].address.to_string());
    CHECK(same_device(after.devices[i], expect[i]));
    CHECK(slurp(h.root() / "bus/pci/devices" / expect[i].address.to_string() / "driver_override") == "(null)\n");
  }
  CHECK(h.k->reset_count(addr("0000:02:00.0")) == 0);
  CHECK(h.k->get_link("ens1f1")->addresses.empty());
  CHECK(h.k->get_vfs("ens1f0")->empty());
  // Netdevs come back exactly as booted (same ifindex, MAC, up).
  CHECK(slurp(h.root() / "class/net/eno1/ifindex") == eno1_ifindex);
  CHECK(slurp(h.root() / "class/net/eno1/address") == eno1_mac);
  CHECK(h.k->get_link("eno1")->up);
  // Dynamic ids are gone: the GPU stays on nouveau through drivers_probe after unbinding.
  REQUIRE(err(h.k->write_attr("bus/pci/drivers/nouveau/unbind", "0000:87:00.0")) == 0);
  REQUIRE(err(h.k->write_attr("bus/pci/drivers_probe", "0000:87:00.0")) == 0);
  CHECK(fs::read_symlink(h.root() / "bus/pci/devices/0000:87:00.0/driver").filename() == "nouveau");
  // Enabling VFs after the reboot works as on a fresh host (VF 1's MAC is the default).
  REQUIRE(err(h.k->write_attr(numvfs_path("0000:17:00.0"), "2")) == 0);
  CHECK(h.k->get_vfs("ens1f0")->at(1).config.mac == MacAddress{});
}

TEST_CASE("a restarted daemon keeps the boot drivers: boot.json is written once") {
  Host h("dual-socket");
  const PciAddress pf = addr("0000:17:00.0");
  REQUIRE(err(h.k->write_attr("bus/pci/devices/0000:17:00.0/driver_override", "vfio-pci")) == 0);
  REQUIRE(err(h.k->write_attr("bus/pci/drivers/ice/unbind", "0000:17:00.0")) == 0);
  REQUIRE(err(h.k->write_attr("bus/pci/drivers_probe", "0000:17:00.0")) == 0);
  const std::string boot_json = slurp(h.root() / ".sriovd-sim/boot.json");
  h.k.reset();
  SimKernel again(h.root());
  CHECK(slurp(h.root() / ".sriovd-sim/boot.json") == boot_json);
  CHECK(again.default_driver(pf) == "ice");
  REQUIRE(err(again.write_attr("bus/pci/devices/0000:17:00.0/driver_override", "\n")) == 0);
  REQUIRE(err(again.write_attr("bus/pci/drivers/vfio-pci/unbind", "0000:17:00.0")) == 0);
  REQUIRE(err(again.write_attr("bus/pci/drivers_probe", "0000:17:00.0")) == 0);
  CHECK(fs::read_symlink(h.root() / "bus/pci/devices/0000:17:00.0/driver").filename() == "ice");
  // ice registers the PF's netdev again under its boot name and MAC (udev names it), down.
  CHECK(slurp(h.root() / "class/net/ens1f0/address") == "3c:fd:fe:00:00:00\n");
  CHECK(!again.get_link("ens1f0")->up);
}

TEST_CASE("an unusable root is reported") {
  test::TempDir dir;
  auto k = SimKernel::open(dir.path());
  REQUIRE(!k.ok());
  CHECK(k.error().errnum == ENOENT);
  SimKernel broken(dir.path() / "nope");
  CHECK(err(broken.write_attr("bus/pci/drivers_probe", "0000:00:00.0")) == ENOENT);
}

TEST_CASE("nvme leaves SR-IOV enabled when unbound from its PF") {
  Host h("dual-socket");
  const char* pf = "0000:5e:00.0";
  REQUIRE(err(h.k->write_attr(numvfs_path(pf), "2")) == 0);
  auto inv = scan(h.root());
  const pci::Device* vf = find(inv, addr("0000:5e:00.1"));
  REQUIRE(vf != nullptr);
  CHECK(vf->driver == "nvme");
  CHECK(vf->device_id == 0xa824);
  CHECK(vf->netdevs.empty());
  REQUIRE(err(h.k->write_attr("bus/pci/drivers/nvme/unbind", pf)) == 0);
  CHECK(dev_attr(h.root(), pf, "sriov_numvfs") == "2\n");
  CHECK(fs::exists(h.root() / "bus/pci/devices/0000:5e:00.2"));
  CHECK(err(h.k->write_attr(numvfs_path(pf), "0")) == ENOENT);
  REQUIRE(err(h.k->write_attr("bus/pci/drivers_probe", pf)) == 0);
  REQUIRE(err(h.k->write_attr(numvfs_path(pf), "0")) == 0);
  CHECK(!fs::exists(h.root() / "bus/pci/devices/0000:5e:00.1"));
}

TEST_CASE("calls from several threads are serialised") {
  Host h("minimal");
  REQUIRE(err(h.k->write_attr(numvfs_path("0000:01:00.0"), "4")) == 0);
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (uint16_t i = 1; i <= 20; ++i) {
        VfConfig c;
        c.vlan = static_cast<uint16_t>(t * 100 + i);
        CHECK(err(h.k->set_vf("enp1s0f0", t, c)) == 0);
        CHECK(h.k->get_link("enp1s0f0").ok());
        CHECK(err(h.k->write_attr("bus/pci/devices/0000:01:00.0/reset", "1")) == 0);
      }
    });
  for (auto& th : threads) th.join();
  auto vfs = h.k->get_vfs("enp1s0f0");
  REQUIRE(vfs.ok());
  for (uint32_t t = 0; t < 4; ++t) CHECK((*vfs)[t].config.vlan == t * 100 + 20);
  CHECK(h.k->reset_count(addr("0000:01:00.0")) == 80);
}

TEST_CASE("remove and rescan exist on every function but a VF (pci_dev_hp_attrs_are_visible)") {
  Host h("minimal");
  const char* pf = "0000:01:00.0";
  REQUIRE(err(h.k->write_attr(numvfs_path(pf), "1")) == 0);
  const fs::path devs = h.root() / "bus/pci/devices";
  CHECK(fs::exists(devs / pf / "remove"));
  CHECK(fs::exists(devs / pf / "rescan"));
  CHECK_FALSE(fs::exists(devs / "0000:01:00.1/remove"));
  CHECK_FALSE(fs::exists(devs / "0000:01:00.1/rescan"));
  // Opened without O_CREAT, a file that is not there is ENOENT (a shell's `>` reports EACCES).
  CHECK(err(h.k->write_attr("bus/pci/devices/0000:01:00.1/remove", "1")) == ENOENT);
  CHECK(fs::exists(devs / "0000:01:00.1"));
}

TEST_CASE("uevents of sriov_numvfs in the kernel's order") {
  Host h("minimal");
  const fs::path sock = h.root() / SimKernel::kUeventSocket;
  fs::create_directories(sock.parent_path());
  REQUIRE(sock.string().size() < sizeof(sockaddr_un::sun_path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  REQUIRE(fd);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, sock.c_str(), sock.string().size() + 1);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  // "ACTION BDF" of every pci event sent so far (the sim sends before write_attr returns).
  auto pci_events = [&] {
    std::vector<std::string> seen;
    char buf[8192];
    for (ssize_t n; (n = ::recv(fd.get(), buf, sizeof buf, 0)) > 0;) {
      const std::string msg(buf, static_cast<size_t>(n));
      if (msg.find(std::string("SUBSYSTEM=pci") + '\0') == std::string::npos) continue;
      const std::string header = msg.substr(0, msg.find('\0'));
      seen.push_back(header.substr(0, header.find('@')) + " " + header.substr(header.rfind('/') + 1));
    }
    return seen;
  };

  // sriov_enable(): per VF its "add" (pci_device_add), its "change" once the virtfn/physfn links
  // exist (pci_iov_sysfs_link), its driver's "bind"; the PF's "change" last.
  REQUIRE(err(h.k->write_attr(numvfs_path("0000:01:00.0"), "2")) == 0);
  CHECK(pci_events() == std::vector<std::string>{"add 0000:01:00.1", "change 0000:01:00.1", "bind 0000:01:00.1",
                                                 "add 0000:01:00.2", "change 0000:01:00.2", "bind 0000:01:00.2",
                                                 "change 0000:01:00.0"});
  // sriov_disable(): per VF its "unbind" and "remove"; nothing for the PF.
  REQUIRE(err(h.k->write_attr(numvfs_path("0000:01:00.0"), "0")) == 0);
  CHECK(pci_events() == std::vector<std::string>{"unbind 0000:01:00.1", "remove 0000:01:00.1", "unbind 0000:01:00.2",
                                                 "remove 0000:01:00.2"});
}
