// SimKernel's driver core and attributes: autoprobe, driver_override, bind/unbind, new_id and
// remove_id, reset, read-only and missing attributes.
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
  CHECK(!fs::exists(h.root() / "class/net/ens2f0v1"));  // the driver's netdev went
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
