// Value types for what sriovd-k8s reads from sriovd's REST API (pools, their members, leases),
// and their decoders. Decoders are pure functions of the response text: they accept exactly the
// shape schemas/openapi.json documents, ignore fields they do not use, and name the field at
// fault when the answer does not fit. Plain values; no shared state.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/pci_address.h"
#include "base/result.h"

namespace sriovd::k8s {

struct PoolDevice {
  PciAddress address;
  std::optional<PciAddress> pf;  // the PF a VF belongs to; nullopt for a PF or plain device
  std::optional<int> numa_node;  // nullopt: no NUMA affinity reported
  std::optional<int> iommu_group;
  std::vector<std::string> netdevs;
  std::optional<std::string> driver;
  bool healthy = true;
  std::string reason;                // why not healthy, if sriovd said
  std::optional<std::string> lease;  // id of the lease holding it, if any

  bool operator==(const PoolDevice&) const = default;
};

enum class Policy { pack, spread };
enum class Mode { vfio, netdev };

struct Pool {
  std::string name;
  Mode mode = Mode::vfio;
  Policy policy = Policy::pack;
  std::vector<PoolDevice> devices;  // in sriovd's order

  const PoolDevice* find(const PciAddress& a) const;
  bool operator==(const Pool&) const = default;
};

struct Lease {
  std::string id;
  std::string pool;  // empty when the lease was taken by address outside any pool
  PciAddress address;
  std::string consumer_kind;
  std::string consumer_name;
};

Result<Pool> parse_pool(const nlohmann::json& j);
Result<Pool> parse_pool(std::string_view body);
Result<std::vector<Pool>> parse_pool_list(std::string_view body);  // {"pools": [...]}
Result<Lease> parse_lease(const nlohmann::json& j);
Result<Lease> parse_lease(std::string_view body);
Result<std::vector<Lease>> parse_lease_list(std::string_view body);  // {"allocations": [...]}

// What GET /v1/devices/{address} says that a container needs: the IOMMU group (vfio device
// node) and the netdev names (when bound to a network driver).
struct DeviceInfo {
  PciAddress address;
  std::optional<int> iommu_group;
  std::optional<std::string> driver;
  std::vector<std::string> netdevs;
};
Result<DeviceInfo> parse_device(std::string_view body);

}  // namespace sriovd::k8s
