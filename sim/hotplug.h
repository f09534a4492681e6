// Simulated hotplug: a surprise removal of a function (pci_stop_and_remove_bus_device) with its
// uevents, recorded in .sriovd-sim/removed/<BDF>.json (CBOR) so that hot_add can put it back as
// it was, with the uevents of its arrival. Functions of one Call, under SimKernel's lock.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/call.h"

namespace sriovd::kernel::sim {

// What a function occupies in the tree besides its directory: bus link, driver back-link,
// IOMMU group (the whole group directory: it goes when the function was its last member),
// IOMMU unit back-link, netdev class links, and the PF's virtfn link of a VF.
std::vector<fs::path> footprint(Call& cx, const Dev& d);

// Every entry at or below `rel`: {"path", "dir"} / {"path", "link": target} / {"path", "file": text}.
void capture(Call& cx, const fs::path& rel, json& out);

fs::path removed_record(const PciAddress& a);

// drivers/pci/remove.c pci_stop_and_remove_bus_device() for a surprise removal: netdevs and
// driver go, then the function. What it occupied is kept in .sriovd-sim/removed/<BDF>.json so
// hot_add can put it back as it was.
Result<void> hot_remove(Call& cx, const PciAddress& a);

// The function removed by hot_remove back, as it was (driver, netdevs, IOMMU group), then the
// add (and bind, and netdev add) uevents a rescan would bring.
Result<void> hot_add(Call& cx, const PciAddress& a);

}  // namespace sriovd::kernel::sim
