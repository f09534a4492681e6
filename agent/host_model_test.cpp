#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "agent/host_model.h"
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
