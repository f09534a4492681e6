// What changed between two snapshots of the host, as events for the EventLog: devices added,
// removed or changed (driver, IOMMU group or its viability, netdevs, NUMA node, SR-IOV VF count
// or autoprobe), VF attributes changed, and the drift list changed. Every path that publishes a
// snapshot (a mutation's rescan, a hotplug update, reconcile) reports through this one diff, so
// the event stream says the same whatever moved the host. A pure function: no I/O, no state.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/host_model.h"

namespace sriovd::agent {

struct HostEvent {
  std::string type;  // device.added, device.removed, device.changed, vf_config.changed, drift
  nlohmann::json fields;
};

// The events that take `before` to `after`, devices in address order. `before` null: none (the
// first inventory is a state, not a change).
std::vector<HostEvent> diff_snapshots(const Snapshot* before, const Snapshot& after);

}  // namespace sriovd::agent
