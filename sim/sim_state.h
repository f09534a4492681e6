// The simulated kernel's persisted state: what Linux keeps in memory, kept by the sim in hidden
// files of the tree (see sim_kernel.h) so a new SimKernel on the same root carries on:
//   .sriovd-sim/boot.json     the boot record: each device's driver, ids and netdevs (BootData)
//   .sriovd-sim/state.json    dynamic ids, reset counts, the last ifindex handed out (SimState)
//   <PF>/.sriovd-sim-vf/vfs.json  the PF driver's VF table: attributes and counters by VF index
//   <netdev>/.sriovd-sim-link.json  addresses and route count (LinkFacts beyond `up`)
// The records, their JSON forms and the reads and writes of these files; the file formats are
// those earlier versions wrote. State files are replaced whole by rename. Stateless functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/mac_address.h"
#include "base/pci_address.h"
#include "base/result.h"
#include "kernel/kernel.h"

namespace sriovd::kernel::sim {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kStateDir = ".sriovd-sim";
constexpr const char* kStateFile = ".sriovd-sim/state.json";
constexpr const char* kVfDir = ".sriovd-sim-vf";
constexpr const char* kLinkFile = ".sriovd-sim-link.json";
constexpr uint32_t kAnyId = 0xffffffff;  // PCI_ANY_ID
constexpr uint16_t kEthP8021Q = 0x8100;
constexpr uint16_t kEthP8021AD = 0x88a8;

// ---- boot.json -------------------------------------------------------------------------------

struct NetdevRecord {
  std::string name, mac, operstate = "up";
  unsigned ifindex = 0, mtu = 1500, flags = 0x1003, dev_port = 0, type = 1;
  bool carrier = true;
};

struct BootDevice {
  std::string driver;  // empty: unbound at boot
  uint16_t vendor = 0, device = 0;
  bool vf = false;
  std::vector<NetdevRecord> netdevs;
  std::optional<uint16_t> vf_subsystem_device;  // PFs with VFs at boot: what the VFs reported
};

struct BootData {
  std::map<std::string, BootDevice> devices;  // by BDF
  unsigned max_ifindex = 1;
  // Derived: the vendor:device pairs each driver was bound to at boot, standing in for its
  // static id table (a driver that bound 8086:1593 at boot claims 8086:1593).
  std::map<std::string, std::set<std::pair<uint16_t, uint16_t>>> claims;

  const BootDevice* find(const PciAddress& a) const {
    auto it = devices.find(a.to_string());
    return it == devices.end() ? nullptr : &it->second;
  }
  // Derived, from the tree: bus, bus/pci, bus/pci/devices and bus/pci/drivers are directories
  // (not links), as in the kernel's layout. Then a path bus/pci/devices/<BDF>/<attr> passes one
  // link on its way, and bus/pci/drivers/<drv>/<attr> none (see Sim::write_attr).
  bool plain_bus = false;

  void derive() {
    claims.clear();
    for (const auto& [bdf, d] : devices)
      if (!d.driver.empty()) claims[d.driver].insert({d.vendor, d.device});
  }
};

json to_json(const NetdevRecord& n);
NetdevRecord netdev_from_json(const json& j);
json to_json(const BootData& b);
BootData boot_from_json(const json& j);

// Reads the tree as it is now: the boot record.
Result<BootData> record_boot(const fs::path& root);

// boot.json under `root`, parsed; recorded from the tree and written first if there is none.
// Errors: an unreadable boot.json (EINVAL), what recording or writing it failed with.
Result<BootData> load_or_record_boot(const fs::path& root);

// ---- state.json ------------------------------------------------------------------------------

struct DynId {
  uint32_t vendor = 0, device = 0, subvendor = kAnyId, subdevice = kAnyId, cls = 0, cls_mask = 0;
};

struct SimState {
  unsigned last_ifindex = 1;                         // net->ifindex: dev_new_index() counts up from the last one given
  std::map<std::string, std::vector<DynId>> dynids;  // by driver
  std::map<std::string, size_t> resets;              // by BDF
};

json to_json(const SimState& s);
SimState state_from_json(const json& j);

// The state in `file`; with none, a fresh one whose last ifindex is `boot_max_ifindex`; one that
// does not parse as an object, a fresh one.
SimState read_state(const std::string& file, unsigned boot_max_ifindex);
// Writes the state file under `root`, making .sriovd-sim when it is missing.
Result<void> write_state(const fs::path& root, const SimState& s);

// ---- the VF tables ---------------------------------------------------------------------------

struct VfAttrs {
  MacAddress mac{};
  uint16_t vlan = 0;
  uint8_t qos = 0;
  uint16_t proto = kEthP8021Q;
  uint32_t max_rate = 0, min_rate = 0;
  bool spoofchk = true, trust = false;
  LinkState link = LinkState::auto_;
};

json to_json(const VfAttrs& a);
VfAttrs vf_attrs_from_json(const json& j);
VfConfig to_config(const VfAttrs& a);

// One file per PF holds all its VFs' records, by index ("0", "1", ...): the PF driver's VF
// table, read whole by RTM_GETLINK as the kernel answers it in one message. `pf_abs` is the PF's
// directory under the root, `pf_dir` the same relative to it (for messages).
json read_vf_table(const std::string& pf_abs);
// A VF's record: its attributes and, under "stats", its traffic counters.
json vf_record(const json& all, unsigned index);
// `stats`: the counters to keep with the attributes; without them, those in the file. The
// traffic counters (set_vf_stats) survive attribute changes, as a driver's do.
Result<void> write_vf_record(const std::string& pf_abs, const fs::path& pf_dir, unsigned index, const VfAttrs& a,
                             const json* stats);
// The PF driver frees its per-VF state (the VFs went).
Result<void> remove_vf_table(const std::string& pf_abs, const fs::path& pf_dir);
// What the VF's driver counts (IFLA_VF_STATS): zeros until set_vf_stats says otherwise.
VfStats vf_stats_from(const json& record);
json to_json(const VfStats& st);

// ---- link files ------------------------------------------------------------------------------

// The addresses and route count kept for the netdev in `netdev_dir` (left as they are if none).
void read_link_file(const std::string& netdev_dir, LinkFacts& f);
Result<void> write_link_file(const std::string& netdev_dir, const std::vector<std::string>& addresses, size_t routes);

}  // namespace sriovd::kernel::sim
