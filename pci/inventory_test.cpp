#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "pci/inventory.h"
#include "tests/fixtures/profiles.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
using namespace sriovd::pci;
namespace fs = std::filesystem;

namespace {

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::trunc);
  out << text;
}

const Device* find(const Inventory& inv, const char* address) {
  auto a = *PciAddress::parse(address);
  for (const auto& d : inv.devices)
    if (d.address == a) return &d;
  return nullptr;
}

// The device directory a bus/pci/devices link points to.
fs::path devdir(const fs::path& root, const char* address) { return fs::canonical(root / "bus/pci/devices" / address); }

bool has_warning(const Device& d, const std::string& prefix) {
  for (const auto& w : d.warnings)
    if (w.rfind(prefix, 0) == 0) return true;
  return false;
}

}  // namespace

TEST_CASE("every profile reads back exactly as the generator wrote it") {
  for (const auto& name : fixtures::profile_names()) {
    CAPTURE(name);
    test::TempDir dir;
    auto manifest = fixtures::build_profile(name, dir.path());
    REQUIRE_MESSAGE(manifest.ok(), (manifest.ok() ? "" : manifest.error().message));
    auto root = SysfsRoot::open(dir.path());
    REQUIRE(root.ok());
    auto inv = scan(*root);
    REQUIRE(inv.ok());
    CHECK(inv->warnings.empty());
    REQUIRE(inv->devices.size() == manifest->functions.size());
    for (const auto& d : inv->devices) {
      const auto* f = manifest->find(d.address);
      REQUIRE(f != nullptr);
      CAPTURE(d.address.to_string());
      CHECK(d.warnings.empty());
      CHECK(d.vendor_id == f->vendor);
      CHECK(d.device_id == f->device);
      CHECK(d.subsystem_vendor_id == f->subsystem_vendor);
      CHECK(d.subsystem_device_id == f->subsystem_device);
      CHECK(d.class_id == f->class_code);
      CHECK(d.driver.value_or("") == f->driver);
      CHECK(d.iommu_group.has_value() == f->iommu_group.has_value());
      if (f->iommu_group) CHECK(*d.iommu_group == static_cast<int>(*f->iommu_group));
      CHECK(d.numa_node.value_or(-1) == f->numa_node);
      CHECK(d.netdevs == f->netdevs);
      // The scan takes netdevs from class/net; one function alone, from its net directory.
      auto alone = read_device(*root, d.address);
      REQUIRE(alone.ok());
      CHECK(alone->netdevs == d.netdevs);
      CHECK(d.is_bridge() == f->bridge);
      CHECK(d.physfn == f->physfn);
      if (f->physfn) {
        REQUIRE(d.vf_index);
        CHECK(*d.vf_index == static_cast<int>(f->vf_index));
      }
      CHECK(d.sriov.has_value() == (f->total_vfs > 0));
      if (d.sriov) {
        CHECK(d.sriov->total_vfs == f->total_vfs);
        CHECK(d.sriov->num_vfs == f->num_vfs);
      }
    }
  }
}

TEST_CASE("the large host: 1,040 functions, 1,008 VFs with indexes 0..62") {
  test::TempDir dir;
  REQUIRE(fixtures::write_profile("large", dir.path()).ok());
  auto root = SysfsRoot::open(dir.path());
  REQUIRE(root.ok());
  auto inv = scan(*root);
  REQUIRE(inv.ok());
  CHECK(inv->devices.size() == 1040);
  int vfs = 0, pfs = 0;
  std::map<PciAddress, std::set<int>> indexes;
  for (const auto& d : inv->devices) {
    if (d.physfn) {
      ++vfs;
      REQUIRE(d.vf_index);
      indexes[*d.physfn].insert(*d.vf_index);
    }
    if (d.sriov) {
      ++pfs;
      CHECK(d.sriov->num_vfs == 63);
    }
  }
  CHECK(vfs == 1008);
  CHECK(pfs == 16);
  for (const auto& [pf, idx] : indexes) {
    CHECK(idx.size() == 63);
    CHECK(*idx.begin() == 0);
    CHECK(*idx.rbegin() == 62);
  }
}

TEST_CASE("bad files: the device is reported with what could be read and a warning") {
  test::TempDir dir;
  auto manifest = fixtures::build_profile("minimal", dir.path());
  REQUIRE(manifest.ok());
  // The minimal host's SR-IOV NIC PF and its NVMe.
  const fixtures::Manifest::Function* pf = nullptr;
  const fixtures::Manifest::Function* nvme = nullptr;
  for (const auto& f : manifest->functions) {
    if (f.total_vfs > 0) pf = &f;
    if (f.class_code == 0x010802) nvme = &f;
  }
  REQUIRE(pf);
  REQUIRE(nvme);
  std::string pf_addr = pf->address.to_string(), nvme_addr = nvme->address.to_string();
  fs::path pfdir = devdir(dir.path(), pf_addr.c_str());
  fs::path nvmedir = devdir(dir.path(), nvme_addr.c_str());

  SUBCASE("garbage numa_node") {
    write_file(pfdir / "numa_node", "banana\n");
    auto inv = scan(*SysfsRoot::open(dir.path()));
    const Device* d = find(*inv, pf_addr.c_str());
    REQUIRE(d);
    CHECK_FALSE(d->numa_node);
    CHECK(has_warning(*d, "numa_node: not an integer"));
    CHECK(d->driver.value_or("") == pf->driver);  // the rest is still read
  }
  SUBCASE("empty and unreadable sriov files") {
    write_file(pfdir / "sriov_totalvfs", "");
    fs::remove(pfdir / "sriov_numvfs");
    fs::create_directory(pfdir / "sriov_numvfs");  // read() gives EISDIR, even for root
    auto inv = scan(*SysfsRoot::open(dir.path()));
    const Device* d = find(*inv, pf_addr.c_str());
    REQUIRE(d);
    REQUIRE(d->sriov);
    CHECK(d->sriov->total_vfs == 0);
    CHECK(has_warning(*d, "sriov_totalvfs: not an integer"));
    CHECK(has_warning(*d, "sriov_numvfs: unreadable"));
  }
  SUBCASE("no uevent: ids and class from the single-value files, driver from the link") {
    fs::remove(nvmedir / "uevent");
    auto inv = scan(*SysfsRoot::open(dir.path()));
    const Device* d = find(*inv, nvme_addr.c_str());
    REQUIRE(d);
    CHECK(d->vendor_id == nvme->vendor);
    CHECK(d->device_id == nvme->device);
    CHECK(d->class_id == nvme->class_code);
    CHECK(d->driver.value_or("") == nvme->driver);
    CHECK(has_warning(*d, "uevent: missing"));
  }
  SUBCASE("garbage uevent and garbage vendor file") {
    write_file(nvmedir / "uevent", "\x01\x02garbage\nPCI_ID=nope\n");
    write_file(nvmedir / "vendor", "0xZZZZ\n");
    auto inv = scan(*SysfsRoot::open(dir.path()));
    const Device* d = find(*inv, nvme_addr.c_str());
    REQUIRE(d);
    CHECK_FALSE(d->vendor_id);
    CHECK(d->device_id == nvme->device);
    CHECK(has_warning(*d, "vendor: not a hex id"));
  }
  SUBCASE("dangling iommu_group link") {
    fs::remove(nvmedir / "iommu_group");
    fs::create_symlink("../../../../kernel/not_groups/7", nvmedir / "iommu_group");
    auto inv = scan(*SysfsRoot::open(dir.path()));
    const Device* d = find(*inv, nvme_addr.c_str());
    REQUIRE(d);
    CHECK_FALSE(d->iommu_group);
    CHECK(has_warning(*d, "iommu_group: link does not point"));
  }
  SUBCASE("dangling device link in bus/pci/devices") {
    fs::remove_all(nvmedir);
    auto inv = scan(*SysfsRoot::open(dir.path()));
    const Device* d = find(*inv, nvme_addr.c_str());
    REQUIRE(d);
    CHECK(has_warning(*d, "device directory: dangling link"));
    CHECK(inv->devices.size() == manifest->functions.size());
  }
  SUBCASE("an entry that is not an address is a tree warning") {
    fs::create_directory(dir.path() / "bus/pci/devices/not-a-device");
    auto inv = scan(*SysfsRoot::open(dir.path()));
    REQUIRE(inv->warnings.size() == 1);
    CHECK(inv->warnings[0].find("not-a-device") != std::string::npos);
  }
  SUBCASE("a VF whose PF offset is garbage gets its index from the virtfn links") {
    // Enable two VFs on the PF by hand, as the kernel lays them out, then break sriov_offset.
    auto vfs = simtree::add_vfs(dir.path(), pf->address, 2, {});
    REQUIRE(vfs.ok());
    write_file(pfdir / "sriov_offset", "??\n");
    auto inv = scan(*SysfsRoot::open(dir.path()));
    for (size_t i = 0; i < vfs->size(); ++i) {
      const Device* vf = find(*inv, (*vfs)[i].to_string().c_str());
      REQUIRE(vf);
      REQUIRE(vf->vf_index);
      CHECK(*vf->vf_index == static_cast<int>(i));
    }
  }
}

TEST_CASE("a directory that is not sysfs is a clear start-up error") {
  test::TempDir dir;
  auto root = SysfsRoot::open(dir.path());
  REQUIRE_FALSE(root.ok());
  CHECK(root.error().message.find("is not a sysfs tree") != std::string::npos);
  CHECK(root.error().message.find("bus/pci/devices") != std::string::npos);
  auto missing = SysfsRoot::open(dir.path() / "nope");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().errnum == ENOENT);
}

TEST_CASE("a hand-made tree with the kernel's layout but none of our generator's extras") {
  // Only what a minimal kernel gives: class/vendor/device files, a uevent without SUBSYS, links.
  test::TempDir dir;
  const fs::path& r = dir.path();
  fs::create_directories(r / "devices/pci0000:00/0000:00:02.0/net/eth7");
  fs::create_directories(r / "bus/pci/devices");
  fs::create_directories(r / "bus/pci/drivers/virtio-pci");
  fs::create_directories(r / "kernel/iommu_groups/5/devices");
  fs::path d = r / "devices/pci0000:00/0000:00:02.0";
  write_file(d / "vendor", "0x1af4\n");
  write_file(d / "device", "0x1041\n");
  write_file(d / "class", "0x020000\n");
  write_file(d / "uevent", "DRIVER=virtio-pci\nPCI_CLASS=20000\nPCI_ID=1AF4:1041\nPCI_SLOT_NAME=0000:00:02.0\n");
  fs::create_symlink("../../../devices/pci0000:00/0000:00:02.0", r / "bus/pci/devices/0000:00:02.0");
  fs::create_symlink("../../../bus/pci/drivers/virtio-pci", d / "driver");
  fs::create_symlink("../../../kernel/iommu_groups/5", d / "iommu_group");
  auto inv = scan(*SysfsRoot::open(r));
  REQUIRE(inv.ok());
  REQUIRE(inv->devices.size() == 1);
  const Device& dev = inv->devices[0];
  CHECK(dev.vendor_id == 0x1af4);
  CHECK(dev.device_id == 0x1041);
  CHECK(dev.class_id == 0x020000);
  CHECK(dev.driver == "virtio-pci");
  CHECK(dev.iommu_group == 5);
  CHECK_FALSE(dev.numa_node);  // no numa_node file: a kernel without CONFIG_NUMA
  CHECK(dev.netdevs == std::vector<std::string>{"eth7"});
  CHECK_FALSE(dev.sriov);
  CHECK(dev.warnings.empty());
  // No PCI_SUBSYS_ID in uevent and no subsystem files: simply unknown.
  CHECK_FALSE(dev.subsystem_vendor_id);
}

TEST_CASE("netdevs from class/net: only PCI functions' netdevs, each on its function") {
  // The kernel's layout: class/net links to <device>/net/<name> for every netdev, PCI or not.
  test::TempDir dir;
  const fs::path& r = dir.path();
  fs::path d = r / "devices/pci0000:00/0000:00:02.0";
  fs::create_directories(d / "net/eth7");
  fs::create_directories(d / "net/eth8");
  fs::create_directories(r / "devices/virtual/net/lo");
  fs::create_directories(r / "devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/net/usb0");
  fs::create_directories(r / "bus/pci/devices");
  fs::create_directories(r / "class/net");
  write_file(d / "uevent", "PCI_CLASS=20000\nPCI_ID=1AF4:1041\nPCI_SLOT_NAME=0000:00:02.0\n");
  write_file(r / "devices/pci0000:00/0000:00:14.0/uevent", "PCI_CLASS=C0330\nPCI_ID=8086:A36D\n");
  fs::create_symlink("../../../devices/pci0000:00/0000:00:02.0", r / "bus/pci/devices/0000:00:02.0");
  fs::create_symlink("../../../devices/pci0000:00/0000:00:14.0", r / "bus/pci/devices/0000:00:14.0");
  fs::create_symlink("../../devices/pci0000:00/0000:00:02.0/net/eth8", r / "class/net/eth8");
  fs::create_symlink("../../devices/pci0000:00/0000:00:02.0/net/eth7", r / "class/net/eth7");
  fs::create_symlink("../../devices/virtual/net/lo", r / "class/net/lo");
  fs::create_symlink("../../devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/net/usb0", r / "class/net/usb0");
  auto root = SysfsRoot::open(r);
  REQUIRE(root.ok());
  auto inv = scan(*root);
  REQUIRE(inv.ok());
  REQUIRE(inv->devices.size() == 2);
  CHECK(find(*inv, "0000:00:02.0")->netdevs == std::vector<std::string>{"eth7", "eth8"});
  CHECK(find(*inv, "0000:00:14.0")->netdevs.empty());  // usb0 is the USB interface's, not the controller's
  CHECK(read_device(*root, *PciAddress::parse("0000:00:02.0"))->netdevs == std::vector<std::string>{"eth7", "eth8"});
}

TEST_CASE("read_device reads one function and derives a VF's index") {
  test::TempDir dir;
  auto manifest = fixtures::build_profile("dual-socket", dir.path());
  REQUIRE(manifest.ok());
  auto root = SysfsRoot::open(dir.path());
  for (const auto& f : manifest->functions) {
    if (!f.physfn) continue;
    auto d = read_device(*root, f.address);
    REQUIRE(d.ok());
    CHECK(d->physfn == f.physfn);
    CHECK(d->vf_index == static_cast<int>(f.vf_index));
  }
  auto none = read_device(*root, *PciAddress::parse("0000:ee:1f.7"));
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().code == ErrorCode::not_found);
}
