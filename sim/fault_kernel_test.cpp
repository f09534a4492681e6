#include "sim/fault_kernel.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "sim/sim_kernel.h"
#include "tests/fixtures/profiles.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
using namespace sriovd::kernel;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Every entry of the tree, SimKernel's hidden state included.
std::map<std::string, std::string> snapshot(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    const std::string rel = fs::relative(it->path(), root).string();
    if (it->is_symlink()) out[rel] = "L " + fs::read_symlink(it->path()).string();
    else if (it->is_directory()) out[rel] = "D";
    else out[rel] = "F " + slurp(it->path());
  }
  return out;
}

// A multi-step operation the daemon could run: hand VF 0 of the minimal host's ConnectX-5 to
// vfio-pci with a MAC, after enabling two VFs.
using Step = std::function<Result<void>(Kernel&)>;
std::vector<Step> steps() {
  const std::string vf = "0000:01:00.1";
  VfConfig mac;
  mac.mac = MacAddress{0x02, 0, 0, 0, 0, 0x42};
  VfConfig vlan;
  vlan.vlan = 10;
  return {
      [](Kernel& k) { return k.write_attr("bus/pci/devices/0000:01:00.0/sriov_numvfs", "2"); },
      [=](Kernel& k) { return k.set_vf("enp1s0f0", 0, mac); },
      [=](Kernel& k) { return k.set_vf("enp1s0f0", 0, vlan); },
      [=](Kernel& k) { return k.write_attr("bus/pci/devices/" + vf + "/driver_override", "vfio-pci"); },
      [=](Kernel& k) { return k.write_attr("bus/pci/devices/" + vf + "/driver/unbind", vf); },
      [=](Kernel& k) { return k.write_attr("bus/pci/drivers_probe", vf); },
      [=](Kernel& k) { return k.write_attr("bus/pci/devices/" + vf + "/reset", "1"); },
  };
}

struct Host {
  test::TempDir dir;
  std::unique_ptr<SimKernel> sim;
  Host() {
    REQUIRE(fixtures::write_profile("minimal", dir.path()).ok());
    REQUIRE(simtree::ensure_driver(dir.path(), "vfio-pci").ok());
    auto k = SimKernel::open(dir.path());
    REQUIRE(k.ok());
    sim = std::move(*k);
  }
};

}  // namespace

TEST_CASE("without faults FaultKernel passes everything through and counts the changes") {
  Host h;
  FaultKernel f(*h.sim);
  for (const auto& s : steps()) REQUIRE(s(f).ok());
  CHECK(f.calls() == steps().size());
  CHECK(f.log().size() == steps().size());
  CHECK(f.log()[0] == "write bus/pci/devices/0000:01:00.0/sriov_numvfs 2");
  CHECK(f.log()[1] == "set_vf enp1s0f0 0");
  CHECK(fs::read_symlink(h.dir.path() / "bus/pci/devices/0000:01:00.1/driver").filename() == "vfio-pci");
  CHECK(h.sim->reset_count(*PciAddress::parse("0000:01:00.1")) == 1);
  // Reads pass through and are not counted.
  REQUIRE(f.get_vfs("enp1s0f0").ok());
  CHECK(f.get_vfs("enp1s0f0")->at(0).config.vlan == 10);
  CHECK(f.get_link("enp1s0f0").ok());
  CHECK(f.calls() == steps().size());
  f.reset_calls();
  CHECK(f.calls() == 0);
  CHECK(f.log().empty());
}

TEST_CASE("fail_at(n) fails exactly the n-th change and leaves the tree as it was") {
  const size_t total = steps().size();
  for (size_t n = 1; n <= total; ++n) {
    CAPTURE(n);
    Host h;
    FaultKernel f(*h.sim);
    f.fail_at(n, EIO);
    const auto ops = steps();
    for (size_t i = 1; i <= ops.size(); ++i) {
      CAPTURE(i);
      const auto before = snapshot(h.dir.path());
      auto r = ops[i - 1](f);
      if (i == n) {
        REQUIRE(!r.ok());
        CHECK(r.error().errnum == EIO);
        CHECK(r.error().message.find("injected fault") != std::string::npos);
        CHECK(snapshot(h.dir.path()) == before);
      } else if (i < n) {
        CHECK(r.ok());
      }
    }
    CHECK(f.calls() == total);
    CHECK(f.log()[n - 1].find("-> injected " + std::to_string(EIO)) != std::string::npos);
  }
}

TEST_CASE("faults count from now, several may be pending, and they can be cleared") {
  Host h;
  FaultKernel f(*h.sim);
  const auto ops = steps();
  REQUIRE(ops[0](f).ok());
  f.fail_at(1, EBUSY, "netlink NACK: device busy");
  f.fail_at(3, EPERM);
  f.fail_at(0, EINVAL);  // ignored
  auto r = ops[1](f);    // call 2 overall, 1 from the arming
  REQUIRE(!r.ok());
  CHECK(r.error().errnum == EBUSY);
  CHECK(r.error().message.rfind("netlink NACK: device busy", 0) == 0);
  CHECK(h.sim->get_vfs("enp1s0f0")->at(0).config.mac == MacAddress{});  // never reached the sim
  CHECK(ops[1](f).ok());                                                // the retry passes
  CHECK(ops[2](f).error().errnum == EPERM);
  CHECK(ops[2](f).ok());
  f.fail_at(1, EIO);
  f.clear_faults();
  CHECK(ops[3](f).ok());
  CHECK(f.calls() == 6);
}
