// Lab tier of the conformance checks: LinuxKernel on the QEMU guest's /sys — the NVMe PF at
// 0000:02:00.0 (nvme, 16 TotalVFs, vfio-pci loaded) and netdevsim1's eth0 with 8 VFs, enabled
// by the bash prelude in CMakeLists.txt (the 256-VF case raises netdevsim's max_vfs and puts it
// back). Run with `ctest -R lab_conformance`.
#include <doctest/doctest.h>
#include <linux/rtnetlink.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <string_view>

#include "kernel/linux_kernel.h"
#include "net/rtnl.h"
#include "net/rtnl_socket.h"
#include "tests/conformance/checks.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
namespace fs = std::filesystem;

namespace {

const PciAddress kNvme = *PciAddress::parse("0000:02:00.0");

std::unique_ptr<kernel::LinuxKernel> open_kernel() {
  REQUIRE_MESSAGE(std::getenv("LAB") != nullptr, "run in the QEMU lab (ctest -R lab_conformance)");
  REQUIRE(::geteuid() == 0);
  auto k = kernel::LinuxKernel::open("/sys");
  REQUIRE_MESSAGE(k.ok(), (k.ok() ? "" : k.error().message));
  return std::move(k).value();
}

}  // namespace

TEST_CASE("linux: sriov_numvfs") {
  auto k = open_kernel();
  conformance::Target t{*k, "/sys", kNvme, true};
  conformance::check_sriov_numvfs(t);
}

TEST_CASE("linux: vfio-pci binding of a VF") {
  auto k = open_kernel();
  conformance::Target t{*k, "/sys", kNvme, true};
  conformance::check_vfio_binding(t);
}

TEST_CASE("linux: the Agent end to end") {
  auto k = open_kernel();
  conformance::Target t{*k, "/sys", kNvme, true};
  test::TempDir dir{"sriovd-conformance"};
  fs::create_directories(dir / "state");
  conformance::check_agent(t, dir / "state");
}

TEST_CASE("linux: VF attributes (netdevsim)") {
  auto k = open_kernel();
  conformance::check_vf_attributes(*k, "eth0");
}

TEST_CASE("linux: MTU over rtnetlink (netdevsim)") {
  auto k = open_kernel();
  conformance::check_set_mtu(*k, "/sys", "eth0");
}

namespace {

void write_sysfs(const std::string& path, const std::string& value) {
  std::ofstream f(path);
  f << value;
  f.flush();
  REQUIRE_MESSAGE(f.good(), "writing " << value << " to " << path);
}

}  // namespace

// More VFs than one RTM_NEWLINK holds with their counters: IFLA_VFINFO_LIST is a nest, and a
// nest's length is 16 bits. get_vfs must still see every VF (it asks again without counters).
TEST_CASE("linux: get_vfs with 256 netdevsim VFs") {
  auto k = open_kernel();
  const std::string dev = "/sys/bus/netdevsim/devices/netdevsim1/sriov_numvfs";
  const std::string max_vfs = "/sys/kernel/debug/netdevsim/netdevsim1/max_vfs";
  write_sysfs(dev, "0");
  write_sysfs(max_vfs, "256");
  write_sysfs(dev, "256");

  VfConfig first, last;
  first.mac = *MacAddress::parse("02:00:00:00:01:00");
  last.mac = *MacAddress::parse("02:00:00:00:01:ff");
  last.vlan = 255;
  REQUIRE(k->set_vf("eth0", 0, first).ok());
  REQUIRE(k->set_vf("eth0", 255, last).ok());

  // The request with counters alone does not bring every VF back on this kernel: the case the
  // retry exists for (an error, or a list cut short).
  auto sock = net::RtnlSocket::open();
  REQUIRE(sock.ok());
  auto req = net::build_getlink(std::string_view("eth0"), RTEXT_FILTER_VF);
  REQUIRE(req.ok());
  auto replies = sock->transact(std::move(*req));
  size_t with_counters = 0;
  std::string why = replies ? "" : replies.error().message;
  if (replies && !replies->empty()) {
    if (auto link = net::decode_link((*replies)[0])) with_counters = link->vfs.size();
    else why = link.error().message;
  }
  MESSAGE("with counters: " << with_counters << " VFs" << (why.empty() ? "" : " (" + why + ")"));
  CHECK(with_counters < 256);

  auto vfs = k->get_vfs("eth0");
  REQUIRE_MESSAGE(vfs.ok(), (vfs.ok() ? "" : vfs.error().message));
  REQUIRE(vfs->size() == 256);
  std::set<uint32_t> indices;
  for (const auto& v : *vfs) indices.insert(v.index);
  CHECK(indices.size() == 256);
  CHECK(*indices.rbegin() == 255);
  for (const auto& v : *vfs) {
    if (v.index == 0) CHECK(v.config.mac == first.mac);
    if (v.index == 255) {
      CHECK(v.config.mac == last.mac);
      CHECK(v.config.vlan == last.vlan);
    }
  }

  // As the lab's prelude left it, for whatever runs next.
  write_sysfs(dev, "0");
  write_sysfs(max_vfs, "64");
  write_sysfs(dev, "8");
}

TEST_CASE("linux: eswitch mode over devlink (netdevsim)") {
  auto k = open_kernel();
  const std::string numvfs = "/sys/bus/netdevsim/devices/netdevsim1/sriov_numvfs";
  std::string was;
  std::ifstream(numvfs) >> was;
  write_sysfs(numvfs, "0");  // a count changes only from 0
  write_sysfs(numvfs, "2");
  conformance::check_eswitch(*k, "/sys", "netdevsim", "netdevsim1", "eth0", 2);
  write_sysfs(numvfs, "0");
  if (!was.empty() && was != "0") write_sysfs(numvfs, was);  // as the other tests left it
}
