// Leases: which device sriovd has handed to which consumer, and the pools they come from.
//
// A LeaseBook is an immutable value published by the Agent next to each host snapshot, so the
// REST API reads pools and leases without waiting on a mutation. A lease's `state` tells where it
// is in its life (LeaseState).
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/pool.h"
#include "base/enum_table.h"
#include "base/json_writer.h"
#include "base/pci_address.h"
#include "base/result.h"
#include "base/vf.h"

namespace sriovd::agent {

enum class LeaseState {
  allocating,  // written before any kernel change; a daemon that stops here undoes the allocation
               // at start
  active,
  releasing,  // written before the reset; a daemon that stops here, or a release that failed,
              // finishes the release at start or on the next DELETE
  released,   // only in the answer to a DELETE: the lease is gone from the store
};
// "allocating", "active", "releasing", "released": the API's and the store's spelling.
std::string_view to_string(LeaseState s);

// What a release gave back, read again afterwards and compared with what it wanted: the VF's
// attributes as found at allocation (or a clean VF's) and the driver it had before the lease.
struct ReleaseReport {
  std::string reset_to;  // "found": the device as it was leased; "defaults": a clean VF
  // bugprone-exception-escape flags the implicit moves: nlohmann::json's are noexcept but call
  // assert_invariant(), which clang-tidy cannot prove does not throw.
  // NOLINTNEXTLINE(bugprone-exception-escape)
  struct Item {
    std::string attribute;  // "mac", "vlan", "qos", "vlan_proto", "max_tx_rate_mbps",
                            // "min_tx_rate_mbps", "spoofchk", "trust", "link_state", "driver"
    // "unchanged": it had the wanted value all along; "restored": it differed and was set back;
    // "differs": it does not have the wanted value after the release (see error); "unread": it
    // could not be read back.
    std::string status;
    nlohmann::json wanted, before, now;  // the API's JSON values (null: none / not reported)
    std::string error;                   // why it differs: the kernel's refusal, when it refused
  };
  std::vector<Item> items;
  // Every attribute has the wanted value after the release (none differs or is unread).
  bool clean() const;
  void write(JsonWriter& w) const;  // {"reset_to", "clean", "attributes": {name: {...}}}
};

struct Attachment {
  std::string domain;
  bool live = true;
  bool config = false;
};

struct Lease {
  std::string id;                   // 32 hex digits
  std::optional<std::string> pool;  // null: leased by address outside any pool
  PciAddress address;
  std::string consumer_kind;  // vm, pod, other
  std::string consumer_name;
  std::optional<VfConfig> vf_config;  // as requested (nullopt: none)
  LeaseState state = LeaseState::allocating;
  std::string created_at;  // RFC 3339
  std::optional<std::string> idempotency_key;
  std::optional<std::string> previous_driver;  // the driver before the lease, restored on release
  PoolMode mode = PoolMode::vfio;
  std::optional<Attachment> attached;
  // The other members of the device's IOMMU group (bridges aside), which a vfio lease takes
  // with it: VFIO hands a group to one user whole. Bound to vfio-pci with the device, reset and
  // given back their drivers with it. Empty for a device alone in its group and in netdev mode.
  struct GroupMember {
    PciAddress address;
    std::optional<std::string> previous_driver;
    bool operator==(const GroupMember&) const = default;
  };
  std::vector<GroupMember> group_members;
  // The device and its group members.
  std::vector<PciAddress> addresses() const {
    std::vector<PciAddress> out{address};
    for (const auto& m : group_members) out.push_back(m.address);
    return out;
  }
  std::string error;  // why the last release failed, if it did
  // Only in the answer to a release and its lease.released event (never stored): how the
  // function reset went. "done"; "unavailable": the function has no `reset` attribute; "failed":
  // the kernel refused it (ENOTTY: no reset method worked), `reset_error` says why. Empty when
  // the device was gone.
  std::string reset;
  std::string reset_error;
  // The VF's attributes when it was leased (IFLA_VF_* as its PF reported them), given back at
  // release. Nullopt: a release resets the VF to a clean VF's attributes instead — its pool asks
  // for `reset: defaults`, or the VF's PF has no netdev (nothing to read or set), or the device is
  // not a VF.
  std::optional<VfConfig> found_vf_config;
  // Only in the answer to a release and its lease.released event (never stored): what the
  // release wanted back, what it found and what it left, attribute by attribute.
  std::optional<ReleaseReport> release_report;

  // What the store keeps: every field as one JSON object (keys sorted), read back by from_json.
  std::string record() const;
  static Result<Lease> from_json(const nlohmann::json& j);
  // The members a stored record and the API's Lease object share, as those write them:
  // "attached_to" (null or {config, domain, live}) and "consumer" ({kind, name}).
  void write_attached_to(JsonWriter& w) const;
  void write_consumer(JsonWriter& w) const;
};

struct LeaseBook {
  std::vector<PoolSpec> pools;                             // in creation order
  std::map<std::string, Lease> leases;                     // by id
  std::unordered_map<PciAddress, std::string> by_address;  // device → lease id

  const PoolSpec* pool(const std::string& name) const {
    for (const auto& p : pools)
      if (p.name == name) return &p;
    return nullptr;
  }
  const Lease* lease(const std::string& id) const {
    auto it = leases.find(id);
    return it == leases.end() ? nullptr : &it->second;
  }
  const Lease* lease_of(const PciAddress& a) const {
    auto it = by_address.find(a);
    return it == by_address.end() ? nullptr : lease(it->second);
  }
};

std::string new_lease_id();  // 128 random bits, hex

}  // namespace sriovd::agent

namespace sriovd {
template <>
std::optional<agent::LeaseState> from_string(std::string_view s);
}  // namespace sriovd
