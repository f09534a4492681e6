// Pools: named sets of devices that sriovd hands out as leases, defined by selectors.
//
// A pool is a value: selectors (every given field must match; a field left out matches
// everything), the kind of device it hands out (VFs, whole devices, or both), how a lease binds
// it (vfio: vfio-pci for passthrough; netdev: the host driver stays, for macvtap passthrough) and
// how a free device is picked (pack onto the PF with most leases, or spread). Everything here is
// pure: matching and picking work on values, so they are tested without a host.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/pci_address.h"
#include "base/result.h"

namespace sriovd::agent {

// "ens1f0" (the PF itself, or every VF of it) or "ens1f0#0-7" / "ens1f0#3" (those VFs of it).
struct PfRange {
  std::string pf_name;
  std::optional<uint32_t> first, last;  // both set or neither; first <= last

  bool operator==(const PfRange&) const = default;
};
Result<PfRange> parse_pf_range(std::string_view text);
std::string to_string(const PfRange& r);

// "0000:17:00.0" (the PF itself, or every VF of it) or "0000:17:00.0#0-7" (those VFs of it): a PF
// named by its PCI address, which no netdev rename changes.
struct PfAddressRange {
  PciAddress pf;
  std::optional<uint32_t> first, last;  // both set or neither; first <= last

  bool operator==(const PfAddressRange&) const = default;
};
Result<PfAddressRange> parse_pf_address_range(std::string_view text);
std::string to_string(const PfAddressRange& r);

// Within one field a list means any of its entries; across fields, all of them (a field left out
// matches everything).
struct Selectors {
  std::vector<uint16_t> vendor_ids;
  std::vector<uint16_t> device_ids;
  std::vector<std::string> drivers;  // the host driver (the one before sriovd bound vfio-pci)
  std::vector<PfRange> pf_names;     // a PF's netdev name or one of its altnames
  std::vector<PfAddressRange> pf_addresses;
  std::vector<PciAddress> addresses;
  std::vector<int> numa_nodes;
  std::vector<std::string> link_types;  // "ether", "infiniband" (of the PF, for a VF)
  std::optional<bool> rdma;             // has RDMA devices (the PF, for a VF)

  bool operator==(const Selectors&) const = default;
};

enum class DeviceType { vf, pf, any };
enum class PoolMode { vfio, netdev };
enum class Policy { pack, spread };
// What a release gives a VF back: the attributes it had when it was leased (sriov-cni's way
// since it saves and restores: some NICs' embedded switch drops traffic after a reset to
// defaults), or a clean VF's (zero MAC, no VLAN, no rate limits, spoofchk on, trust off).
enum class ResetPolicy { restore, defaults };

// What besides the device itself makes a member unhealthy. pf_link: a VF whose PF has no
// carrier (a PF member: its own), as the SR-IOV device plugin's health does, so that kubelet
// does not place pods on a VF whose uplink is down.
struct PoolHealth {
  bool pf_link = false;
  bool operator==(const PoolHealth&) const = default;
};

struct PoolSpec {
  std::string name;
  Selectors selectors;
  std::optional<std::string> physical_network;
  DeviceType device_type = DeviceType::vf;
  PoolMode mode = PoolMode::vfio;
  Policy policy = Policy::pack;
  ResetPolicy reset = ResetPolicy::restore;
  PoolHealth health;

  bool operator==(const PoolSpec&) const = default;
};

const char* to_string(DeviceType t);
const char* to_string(PoolMode m);
const char* to_string(Policy p);
const char* to_string(ResetPolicy r);
std::optional<Policy> parse_policy(std::string_view s);

// From the API's JSON (already checked against the Pool schema, but every value is checked again
// here: the errors name the field, e.g. "selectors.pf_names[1]").
Result<PoolSpec> pool_from_json(const nlohmann::json& j);
nlohmann::json pool_to_json(const PoolSpec& p);  // the definition only, no computed fields

// What selectors look at, for one device that exists or (for the overlap check) could exist: a
// VF slot of a PF that has fewer VFs enabled than it could.
struct Candidate {
  PciAddress address;
  std::optional<uint16_t> vendor_id;
  std::optional<uint16_t> device_id;
  std::optional<std::string> host_driver;  // nullopt: unbound, or unknown for a VF slot
  bool driver_unknown = false;             // a VF slot not created yet: any driver may come
  std::vector<std::string> netdevs;        // its own
  std::optional<std::string> pf_netdev;    // VFs: the PF's first netdev
  std::optional<PciAddress> pf_address;    // VFs: their PF's address
  std::vector<std::string> pf_altnames;    // the altnames of the PF's netdev (a PF's own, for a PF)
  std::optional<std::string> link_type;    // the PF's (a device's own, when not a VF)
  bool rdma = false;                       // the PF's (a device's own, when not a VF)
  std::optional<uint32_t> vf_index;
  std::optional<int> numa_node;
  bool is_vf = false;
};

bool matches(const PoolSpec& pool, const Candidate& c);

// The device a new lease takes, among free members: only `numa_node` when given; with pack the
// PF (a whole device counts as its own PF) that already has the most leases, with spread the one
// with the fewest; ties go to the lowest address. `leases_per_pf` counts active leases.
struct FreeMember {
  PciAddress address;
  PciAddress pf;  // the PF for a VF, itself otherwise
  std::optional<int> numa_node;
};
std::optional<PciAddress> pick(const std::vector<FreeMember>& free, Policy policy, std::optional<int> numa_node,
                               const std::map<PciAddress, int>& leases_per_pf);

}  // namespace sriovd::agent
