// JSON encodings of the host model: the API contract's device, IOMMU group and host objects.
// One encoder per object, used by the REST handlers and by `sriovd inventory`.
#pragma once

#include <nlohmann/json.hpp>

#include "agent/host_model.h"

namespace sriovd::rest {

std::string hex4(uint16_t v);  // "8086"
std::string hex6(uint32_t v);  // "020000"

// "pf", "vf", "bridge" or "function".
const char* device_kind(const pci::Device& d);

// Compact JSON text of the contract's device object (the hot path: written directly).
std::string encode_device(const agent::DeviceView& d);
std::string encode_group(const iommu::Group& g);
nlohmann::json encode_host(const agent::Snapshot& s);
// {"host": {...}, "devices": [...], "iommu_groups": [...]}: what `sriovd inventory` prints.
std::string encode_inventory(const agent::Snapshot& s);

}  // namespace sriovd::rest
