// Helpers of the SimKernel tests (sim_kernel_*test.cpp): reading the tree, snapshots and their
// differences, what pci::scan sees, and a Host: a profile written to a temporary directory with
// a SimKernel on it.
#pragma once

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "pci/inventory.h"
#include "sim/sim_kernel.h"
#include "tests/fixtures/profiles.h"
#include "tests/support/temp_dir.h"

namespace sriovd::kernel::testing {

namespace fs = std::filesystem;

inline PciAddress addr(const char* s) { return *PciAddress::parse(s); }

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string dev_attr(const fs::path& root, const char* bdf, const char* file) {
  return slurp(root / "bus/pci/devices" / bdf / file);
}

inline std::string numvfs_path(const char* bdf) { return std::string("bus/pci/devices/") + bdf + "/sriov_numvfs"; }

// Errno of a failed call; 0 when it succeeded.
inline int err(const Result<void>& r) { return r.ok() ? 0 : r.error().errnum; }

inline pci::Inventory scan(const fs::path& root) {
  auto sr = pci::SysfsRoot::open(root);
  REQUIRE(sr.ok());
  auto inv = pci::scan(*sr);
  REQUIRE(inv.ok());
  return std::move(*inv);
}

inline const pci::Device* find(const pci::Inventory& inv, const PciAddress& a) {
  for (const auto& d : inv.devices)
    if (d.address == a) return &d;
  return nullptr;
}

inline bool same_device(const pci::Device& a, const pci::Device& b) {
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
inline std::map<std::string, std::string> snapshot(const fs::path& root, bool with_sim_state = false) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    const fs::path rel = fs::relative(it->path(), root);
    const std::string name = it->path().filename().string();
    if (rel == "kernel/uevent_seqnum") continue;  // a counter: no rollback winds it back
    if (!with_sim_state && name.rfind(".sriovd-sim", 0) == 0) {
      if (it->is_directory() && !it->is_symlink()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_symlink()) out[rel.string()] = "L " + fs::read_symlink(it->path()).string();
    else if (it->is_directory()) out[rel.string()] = "D";
    else out[rel.string()] = "F " + slurp(it->path());
  }
  return out;
}

// The first entries where two snapshots differ, for failure messages.
inline std::string diff(const std::map<std::string, std::string>& a, const std::map<std::string, std::string>& b) {
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

inline VfConfig mac_cfg(MacAddress m) {
  VfConfig c;
  c.mac = m;
  return c;
}

}  // namespace sriovd::kernel::testing
