// SimKernel's SR-IOV: sriov_numvfs and its errnos, VFs on hand-built trees and without IOMMU
// groups, PF drivers that keep or refuse SR-IOV, and the uevents of enabling VFs.
#include "sim/sim_kernel.h"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "base/fd.h"
#include "pci/inventory.h"
#include "sim/sim_kernel_test_util.h"
#include "sim/sim_tree.h"
#include "tests/fixtures/profiles.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
using namespace sriovd::kernel;
using namespace sriovd::kernel::testing;
namespace fs = std::filesystem;

TEST_CASE("sriov_numvfs: the kernel's errnos (iov.c sriov_numvfs_store)") {
  Host h("dual-socket");
  const char* pf = "0000:17:00.0";
  CHECK(err(h.k->write_attr(numvfs_path(pf), "abc")) == EINVAL);
  CHECK(err(h.k->write_attr(numvfs_path(pf), "-1")) == EINVAL);
  CHECK(err(h.k->write_attr(numvfs_path(pf), "70000")) == EINVAL);  // kstrtou16 overflow
  CHECK(err(h.k->write_attr(numvfs_path(pf), "4x")) == EINVAL);
  CHECK(err(h.k->write_attr(numvfs_path(pf), "129")) == ERANGE);  // sriov_totalvfs 128
  CHECK(err(h.k->write_attr(numvfs_path(pf), "0")) == 0);         // equal: nothing to do
  CHECK(dev_attr(h.root(), pf, "sriov_numvfs") == "0\n");

  REQUIRE(err(h.k->write_attr(numvfs_path(pf), "4\n")) == 0);
  CHECK(dev_attr(h.root(), pf, "sriov_numvfs") == "4\n");
  CHECK(err(h.k->write_attr(numvfs_path(pf), "4")) == 0);  // equal
  auto busy = h.k->write_attr(numvfs_path(pf), "8");
  CHECK(err(busy) == EBUSY);
  CHECK(busy.error().message.find("4 VFs already enabled. Disable before enabling 8 VFs") != std::string::npos);
  CHECK(err(h.k->write_attr(numvfs_path(pf), "0x10")) == EBUSY);  // base 0: 16
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
  { std::ofstream(dir.path() / "bus/pci/devices/0000:3b:00.0/sriov_offset") << "254\n"; }
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
  const fs::path& root = dir.path();
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

TEST_CASE("sriov_numvfs: without ACS above the PF its VFs join the upstream group; with ACS each has its own") {
  Host h("igb");
  auto group = [&](const char* bdf) -> std::optional<int> {
    auto inv = scan(h.root());
    auto* d = find(inv, addr(bdf));
    REQUIRE(d);
    return d->iommu_group;
  };
  // The profile: 82576 at 01:00.0 behind 00:01.0 without ACS, 2 VFs at 01:10.0 and 01:10.2.
  const auto shared = group("0000:00:01.0");
  REQUIRE(shared);
  CHECK(group("0000:01:00.0") == shared);
  CHECK(group("0000:01:10.0") == shared);
  CHECK(group("0000:01:10.2") == shared);
  // Created again by the simulated kernel: the same group for all, and it stays when they go.
  REQUIRE(err(h.k->write_attr(numvfs_path("0000:01:00.0"), "0")) == 0);
  CHECK(fs::exists(h.root() / "kernel/iommu_groups" / std::to_string(*shared) / "devices/0000:01:00.0"));
  CHECK_FALSE(fs::exists(h.root() / "kernel/iommu_groups" / std::to_string(*shared) / "devices/0000:01:10.0"));
  REQUIRE(err(h.k->write_attr(numvfs_path("0000:01:00.0"), "5")) == 0);
  for (const char* vf : {"0000:01:10.0", "0000:01:10.2", "0000:01:10.4", "0000:01:10.6", "0000:01:11.0"}) {
    CAPTURE(vf);
    CHECK(group(vf) == shared);
  }
  // The I350 behind 00:02.0 with ACS: groups of their own, none shared.
  REQUIRE(err(h.k->write_attr(numvfs_path("0000:03:00.0"), "2")) == 0);
  const auto g0 = group("0000:04:10.0"), g1 = group("0000:04:10.4"), pf = group("0000:03:00.0");
  REQUIRE(g0);
  REQUIRE(g1);
  CHECK(g0 != g1);
  CHECK(g0 != pf);
  CHECK(g0 != shared);
  CHECK(pf != group("0000:00:02.0"));
}

TEST_CASE("sriov_numvfs: disabling VFs waits like sriov_disable()'s ssleep(1), out of the sim's lock") {
  Host h("dual-socket");
  // A configured wait, kept in the tree: a write of 0 that removes VFs takes at least that long.
  REQUIRE(h.k->set_sriov_disable_delay(std::chrono::milliseconds(150)).ok());
  REQUIRE(err(h.k->write_attr(numvfs_path("0000:17:00.0"), "2")) == 0);
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(err(h.k->write_attr(numvfs_path("0000:17:00.0"), "0")) == 0);
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(150));
  // A SimKernel opened later on the tree (a daemon in --sim mode) waits as long.
  CHECK(slurp(h.root() / SimKernel::kSriovDisableDelayFile) == "150\n");
  REQUIRE(h.k->set_sriov_disable_delay(std::chrono::milliseconds(0)).ok());

  // Held: the write stays in its wait; the VFs are already gone, and other calls answer.
  REQUIRE(err(h.k->write_attr(numvfs_path("0000:17:00.0"), "2")) == 0);
  h.k->hold_sriov_disable(true);
  Result<void> r = ok();
  std::thread writer([&] { r = h.k->write_attr(numvfs_path("0000:17:00.0"), "0"); });
  REQUIRE(h.k->wait_for_sriov_disable_held(std::chrono::seconds(20)));
  CHECK(slurp(h.root() / "bus/pci/devices/0000:17:00.0/sriov_numvfs") == "0\n");
  CHECK_FALSE(fs::exists(h.root() / "bus/pci/devices/0000:17:00.0/virtfn0"));
  CHECK(h.k->get_link("ens1f0").ok());
  CHECK(err(h.k->write_attr("bus/pci/devices/0000:3b:00.0/sriov_drivers_autoprobe", "0")) == 0);  // another PF
  h.k->hold_sriov_disable(false);
  writer.join();
  CHECK(r.ok());
  // A write of 0 that removes nothing (no VFs) does not wait: nothing was disabled.
  h.k->hold_sriov_disable(true);
  CHECK(err(h.k->write_attr(numvfs_path("0000:17:00.0"), "0")) == 0);
  h.k->hold_sriov_disable(false);
}
