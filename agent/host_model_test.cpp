#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "agent/host_model.h"
#include "sim/sim_kernel.h"
#include "tests/fixtures/profiles.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
using namespace sriovd::agent;

TEST_CASE("a snapshot indexes every device and carries names from the PCI ID database") {
  test::TempDir dir;
  auto manifest = fixtures::build_profile("dual-socket", dir.path());
  REQUIRE(manifest.ok());
  auto root = pci::SysfsRoot::open(dir.path());
  pci::NameDb names;
  auto snap = build_snapshot(*root, &names, 7);
  REQUIRE(snap.ok());
  const Snapshot& s = **snap;
  CHECK(s.generation == 7);
  CHECK(s.devices.size() == manifest->functions.size());
  for (const auto& f : manifest->functions) {
    const DeviceView* v = s.find(f.address);
    REQUIRE(v);
    CHECK(v->device.address == f.address);
  }
  // Intel's vendor name comes from pci.ids (Debian's pci.ids package).
  bool intel = false;
  for (const auto& v : s.devices)
    if (v.device.vendor_id == 0x8086) {
      REQUIRE(v.vendor_name);
      CHECK(v.vendor_name->find("Intel") != std::string::npos);
      intel = true;
    }
  CHECK(intel);
  CHECK_FALSE(s.groups.empty());
}

TEST_CASE("names: unknown ids and a missing database give null names, never numbers") {
  // An explicit file is the only source: a missing one means no names.
  pci::NameDb missing("/nonexistent/pci.ids");
  CHECK_FALSE(missing.vendor(0x8086));
  CHECK_FALSE(missing.device(0x8086, 0x1593));
  pci::NameDb db;
  CHECK_FALSE(db.vendor(0xf00d));
  CHECK_FALSE(db.device(0x8086, 0xf00d));
  CHECK(db.device(0x8086, 0x1593).value_or("").find("E810") != std::string::npos);
  // Closing keeps what was looked up and reopens for new ids.
  db.close();
  CHECK(db.device(0x8086, 0x1593).value_or("").find("E810") != std::string::npos);
  CHECK(db.vendor(0x15b3).has_value());
  // Same answer whichever source (hwdb or pci.ids) gave it.
  pci::NameDb file("/usr/share/misc/pci.ids");
  CHECK(file.vendor(0x15b3) == db.vendor(0x15b3));
}

TEST_CASE("readers keep their snapshot while a new one is published") {
  test::TempDir dir;
  REQUIRE(fixtures::write_profile("minimal", dir.path()).ok());
  auto root = pci::SysfsRoot::open(dir.path());
  HostModel model;
  CHECK_FALSE(model.current());
  model.publish(*build_snapshot(*root, nullptr, 1));
  auto held = model.current();
  std::vector<std::thread> readers;
  readers.reserve(4);
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0};
  for (int i = 0; i < 4; ++i)
    readers.emplace_back([&] {
      while (!stop.load()) {
        auto s = model.current();
        if (s && !s->devices.empty()) reads.fetch_add(1);
      }
    });
  for (uint64_t g = 2; g < 50; ++g) model.publish(*build_snapshot(*root, nullptr, g));
  stop = true;
  for (auto& t : readers) t.join();
  CHECK(held->generation == 1);
  CHECK(model.current()->generation == 49);
  CHECK(reads.load() > 0);
}

TEST_CASE("update_snapshot: a PF and its VFs are read together when VFs come or go") {
  // Linux announces disabled VFs with their own "remove" uevents only, and udevd may deliver a
  // PF's "change" before its VFs' "add": an update naming only VFs must still get the PF right.
  test::TempDir dir;
  REQUIRE(fixtures::write_profile("minimal", dir.path()).ok());
  auto root = pci::SysfsRoot::open(dir.path());
  auto sim = kernel::SimKernel::open(dir.path());
  REQUIRE(sim.ok());
  const PciAddress pf = *PciAddress::parse("0000:01:00.0");
  const std::vector<PciAddress> vfs = {*PciAddress::parse("0000:01:00.1"), *PciAddress::parse("0000:01:00.2")};
  auto before = build_snapshot(*root, nullptr, 1);
  REQUIRE(before.ok());
  CHECK((*before)->find(pf)->device.sriov->num_vfs == 0);

  REQUIRE((*sim)->write_attr("bus/pci/devices/0000:01:00.0/sriov_numvfs", "2").ok());
  auto added = update_snapshot(**before, *root, nullptr, vfs, 2);
  REQUIRE(added.ok());
  CHECK((*added)->find(pf)->device.sriov->num_vfs == 2);
  CHECK((*added)->find(vfs[1])->device.physfn == pf);

  REQUIRE((*sim)->write_attr("bus/pci/devices/0000:01:00.0/sriov_numvfs", "0").ok());
  auto removed = update_snapshot(**added, *root, nullptr, vfs, 3);
  REQUIRE(removed.ok());
  CHECK_FALSE((*removed)->find(vfs[0]));
  CHECK((*removed)->find(pf)->device.sriov->num_vfs == 0);

  // The other way round: an update naming only the PF (its "change" first) or only one of its VFs
  // brings every VF its count says, and drops every VF it no longer has.
  REQUIRE((*sim)->write_attr("bus/pci/devices/0000:01:00.0/sriov_numvfs", "2").ok());
  for (const auto& named : {pf, vfs[0]}) {
    auto up = update_snapshot(**removed, *root, nullptr, {named}, 4);
    REQUIRE(up.ok());
    CHECK((*up)->find(pf)->device.sriov->num_vfs == 2);
    CHECK((*up)->find(vfs[0]));
    CHECK((*up)->find(vfs[1]));
  }
  auto full = build_snapshot(*root, nullptr, 5);
  REQUIRE(full.ok());
  REQUIRE((*sim)->write_attr("bus/pci/devices/0000:01:00.0/sriov_numvfs", "0").ok());
  auto down = update_snapshot(**full, *root, nullptr, {pf}, 6);
  REQUIRE(down.ok());
  CHECK((*down)->find(pf)->device.sriov->num_vfs == 0);
  CHECK_FALSE((*down)->find(vfs[0]));
  CHECK_FALSE((*down)->find(vfs[1]));
  CHECK((*down)->devices.size() == (*before)->devices.size());
}

TEST_CASE("DeviceList: a copy shares its chunks until one is edited; the original never changes") {
  constexpr size_t kChunk = DeviceList::kChunk;
  const size_t count = 2 * kChunk + kChunk / 2 + 1;  // two full chunks and a part of a third
  std::vector<DeviceView> all(count);
  for (size_t i = 0; i < all.size(); ++i)
    all[i].device.address = PciAddress{0, 0x10, static_cast<uint8_t>(i / 8), static_cast<uint8_t>(i % 8)};
  const DeviceList original(all);
  REQUIRE(original.size() == count);
  REQUIRE(original.chunks() == 3);
  size_t n = 0;
  for (const auto& v : original) CHECK(v.device.address == all[n++].device.address);
  CHECK(n == count);

  DeviceList copy = original;
  for (size_t c = 0; c < 3; ++c) CHECK(copy.same_chunk(original, c));
  const size_t at = kChunk + 3;  // in the second chunk
  copy.edit(at).lease = "l1";
  CHECK(copy[at].lease == "l1");
  CHECK_FALSE(original[at].lease);
  CHECK(copy.same_chunk(original, 0));
  CHECK_FALSE(copy.same_chunk(original, 1));
  CHECK(copy.same_chunk(original, 2));

  // Appending to a copy whose last chunk is shared leaves the original's last chunk alone.
  DeviceView extra;
  extra.device.address = PciAddress{0, 0x20, 0, 0};
  copy.push_back(extra);
  CHECK(copy.size() == count + 1);
  CHECK(original.size() == count);
  CHECK(copy[count].device.address == extra.device.address);
  CHECK(copy.to_vector().size() == count + 1);

  const DeviceIndex index(copy);
  CHECK(index.size() == count + 1);
  CHECK(index.at(extra.device.address) == count);
  CHECK(index.find(PciAddress{0, 0x30, 0, 0}) == index.end());
}
