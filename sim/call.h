// Call: one call of the simulated kernel, as the pieces (driver core, SR-IOV, netdevs, hotplug,
// stores) see it: the tree read on demand through the kernel's layout (no caching across calls:
// the tree is the state), state.json loaded on first need and saved by finish(), the VF tables,
// and the uevents the call will send once it is done.
//
// A Call lives for one SimKernel call, under SimKernel's lock; it is not thread-safe and holds
// references to the SimKernel's root and boot record.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/pci_address.h"
#include "base/result.h"
#include "kernel/kernel.h"
#include "sim/sim_state.h"
#include "sim/uevent_sender.h"

namespace sriovd::kernel::sim {

namespace fs = std::filesystem;

// `dir` + "/" + `rel`, as one string.
std::string join(std::string_view dir, std::string_view rel);

// Blanks and newlines off both ends (tabs and spaces in front).
std::string trim(std::string_view s);
// `v` in lower-case hex, zero-padded to `width`.
std::string hex(unsigned v, int width);

// One PCI function as found in the tree.
struct Dev {
  PciAddress addr;
  fs::path dir;     // relative to root
  std::string abs;  // the same under the root: root + "/" + dir
  std::string name() const { return addr.to_string(); }
  // The file or link `rel` below the function's directory, under the root.
  std::string in(std::string_view rel) const { return join(abs, rel); }
};

struct Ids {
  uint16_t vendor = 0, device = 0, subvendor = 0, subdevice = 0;
  uint32_t cls = 0;
};

class Call {
 public:
  Call(const fs::path& root, const fs::path& real_root, const BootData& boot)
      : root_(root), real_root_(real_root), boot_(boot) {}

  const fs::path& root() const { return root_; }
  const fs::path& real_root() const { return real_root_; }
  const BootData& boot() const { return boot_; }

  // Where the call's uevents go (none: not collected).
  void collect_uevents(std::vector<PendingUevent>* out) { uevents_ = out; }

  // Set by disable_sriov: the write that made this call ends with sriov_disable()'s wait.
  bool sriov_disabled = false;

  // lib/kobject_uevent.c: what the kernel sends for a device — ACTION, DEVPATH, SUBSYSTEM and
  // the device's own uevent variables (for PCI: DRIVER, PCI_CLASS, PCI_ID, PCI_SUBSYS_ID,
  // PCI_SLOT_NAME, MODALIAS). Read now: a remove event carries what the device had.
  void uevent(const char* action, const fs::path& dir, const char* subsystem);
  Result<Dev> dev(const PciAddress& a) const;
  std::optional<Dev> find_dev(std::string_view bdf) const;
  std::optional<std::string> driver_of(const Dev& d) const;
  std::optional<std::string> override_of(const Dev& d) const;
  std::optional<PciAddress> physfn_of(const Dev& d) const;
  bool is_pf(const Dev& d) const;
  unsigned read_uint(const Dev& d, const char* file) const;
  unsigned num_vfs(const Dev& pf) const;
  bool vf_autoprobe(const Dev& pf) const;
  // The function's ids as its uevent file gives them (PCI_ID, PCI_SUBSYS_ID, PCI_CLASS: one
  // read, where the kernel's pci_uevent() prints them from the same config space the id files
  // show); from the id files when the uevent lacks one.
  Ids ids_of(const Dev& d) const;
  Ids ids_from_files(const Dev& d) const;
  std::map<unsigned, PciAddress> virtfns(const Dev& pf) const;
  std::optional<unsigned> vf_index_of(const Dev& pf, const PciAddress& vf) const;
  std::vector<std::string> netdevs_of(const Dev& d) const;
  std::optional<unsigned> iommu_group_of(const Dev& d) const;
  bool driver_loaded(std::string_view drv) const;
  // A resolved absolute path that is a PCI function's directory.
  std::optional<Dev> dev_at(const fs::path& real_dir) const;
  void pci_uevent(const char* action, const Dev& d) { uevent(action, d.dir, "pci"); }
  void net_uevents(const char* action, const Dev& d) {
    for (const auto& n : netdevs_of(d)) uevent(action, d.dir / "net" / n, "net");
  }

  // The call's result, with state.json saved first if the call changed it (a failed save fails
  // a call that succeeded).
  template <class T>
  Result<T> finish(Result<T> r) {
    if (dirty_) {
      auto s = save_state();
      if (!s && r.ok()) return std::move(s).error();
    }
    return r;
  }

  // -- tree queries --
  fs::path abs(const fs::path& rel) const { return root_ / rel; }
  // `rel` (relative to the root) under the root, as a string.
  std::string at(std::string_view rel) const { return join(root_.native(), rel); }

  // -- state.json --
  SimState& state();
  // The state, marked to be saved by finish().
  SimState& mutable_state() {
    dirty_ = true;
    return state();
  }
  Result<void> save_state();

  // -- the PF's VF table (sim_state.h) --
  nlohmann::json load_vfs_json(const Dev& pf) const { return read_vf_table(pf.abs); }
  nlohmann::json load_vf_json(const Dev& pf, unsigned index) const { return vf_record(load_vfs_json(pf), index); }
  VfAttrs load_vf(const Dev& pf, unsigned index) const { return vf_attrs_from_json(load_vf_json(pf, index)); }
  // `stats`: the counters to keep with the attributes; without them, those in the file.
  Result<void> save_vf(const Dev& pf, unsigned index, const VfAttrs& a, const nlohmann::json* stats = nullptr) {
    return write_vf_record(pf.abs, pf.dir, index, a, stats);
  }
  Result<void> clear_vfs_attrs(const Dev& pf) { return remove_vf_table(pf.abs, pf.dir); }

 private:
  const fs::path& root_;
  const fs::path& real_root_;
  const BootData& boot_;
  std::unique_ptr<SimState> state_;  // read on first need
  bool dirty_ = false;
  std::vector<PendingUevent>* uevents_ = nullptr;
};

}  // namespace sriovd::kernel::sim
