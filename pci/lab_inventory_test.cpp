// Lab tier: in a QEMU guest with a real kernel, the inventory of /sys agrees with lspci's view of
// the same machine (addresses, ids, class, driver, IOMMU group, NUMA node, SR-IOV PF/VF links).
// Run by ctest through tests/lab/run.sh; the guest script enables NVMe VFs first.
#include <doctest/doctest.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "pci/inventory.h"

using namespace sriovd;
using namespace sriovd::pci;

namespace {

// `lspci -vmm -n -D -k`: blank-line separated records of "Key:\tvalue".
std::vector<std::map<std::string, std::string>> lspci_records() {
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen("lspci -vmm -n -D -k 2>/dev/null", "r"), pclose);
  REQUIRE(p);
  std::vector<std::map<std::string, std::string>> out;
  std::map<std::string, std::string> cur;
  char line[1024];
  while (fgets(line, sizeof line, p.get())) {
    std::string l(line);
    while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.pop_back();
    if (l.empty()) {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
      continue;
    }
    auto colon = l.find(':');
    if (colon == std::string::npos) continue;
    std::string key = l.substr(0, colon), val = l.substr(colon + 1);
    while (!val.empty() && (val[0] == '\t' || val[0] == ' ')) val.erase(0, 1);
    cur[key] = val;
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

std::string hex4(uint16_t v) {
  char b[8];
  std::snprintf(b, sizeof b, "%04x", v);
  return b;
}

}  // namespace

TEST_CASE("the inventory of the guest's /sys agrees with lspci") {
  auto root = SysfsRoot::open("/sys");
  REQUIRE(root.ok());
  auto inv = scan(*root);
  REQUIRE(inv.ok());
  auto records = lspci_records();
  REQUIRE(records.size() == inv->devices.size());
  std::map<std::string, const Device*> by_addr;
  for (const auto& d : inv->devices) by_addr[d.address.to_string()] = &d;

  size_t vfs = 0;
  for (const auto& r : records) {
    const std::string& slot = r.at("Slot");
    CAPTURE(slot);
    REQUIRE(by_addr.count(slot));
    const Device& d = *by_addr[slot];
    CHECK(d.warnings.empty());
    CHECK(hex4(d.vendor_id.value_or(0)) == r.at("Vendor"));
    CHECK(hex4(d.device_id.value_or(0)) == r.at("Device"));
    // lspci -vmm -n prints the class as 4 hex digits (base class + subclass).
    CHECK(hex4(static_cast<uint16_t>(d.class_id.value_or(0) >> 8)) == r.at("Class"));
    CHECK(d.driver.value_or("") == (r.count("Driver") ? r.at("Driver") : ""));
    if (r.count("IOMMUGroup")) {
      REQUIRE(d.iommu_group);
      CHECK(std::to_string(*d.iommu_group) == r.at("IOMMUGroup"));
    } else {
      CHECK_FALSE(d.iommu_group);
    }
    if (r.count("NUMANode")) CHECK(std::to_string(d.numa_node.value_or(-1)) == r.at("NUMANode"));
    if (r.count("PhySlot") == 0 && d.physfn) ++vfs;
  }
  // The guest script enabled NVMe VFs: each has a PF and an index, and the PF counts them.
  size_t with_physfn = 0;
  for (const auto& d : inv->devices) {
    if (!d.physfn) continue;
    ++with_physfn;
    REQUIRE(d.vf_index);
    REQUIRE(by_addr.count(d.physfn->to_string()));
    const Device& pf = *by_addr[d.physfn->to_string()];
    REQUIRE(pf.sriov);
    CHECK(static_cast<uint32_t>(*d.vf_index) < pf.sriov->num_vfs);
    CHECK(d.iommu_group != pf.iommu_group);
  }
  CHECK(with_physfn >= 4);
  (void)vfs;
}
