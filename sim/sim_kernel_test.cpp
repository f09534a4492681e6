// SimKernel as a whole: reboot, restart on the same tree, an unusable root, concurrent calls.
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
#include "pci/inventory.h"
#include "sim/sim_kernel_test_util.h"
#include "sim/sim_tree.h"
#include "tests/fixtures/profiles.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
using namespace sriovd::kernel;
using namespace sriovd::kernel::testing;
namespace fs = std::filesystem;

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
