// The API's JSON form of VF attributes (vf_config), to and from VfConfig:
//   {"mac": "52:54:00:12:34:56", "vlan": 100, "qos": 3, "vlan_proto": "802.1Q",
//    "max_tx_rate_mbps": 1000, "min_tx_rate_mbps": 0, "spoofchk": true, "trust": false,
//    "link_state": "auto"}
// Decoding checks what the schema cannot (a unicast MAC, min <= max) and names the field.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "base/result.h"
#include "base/vf.h"

namespace sriovd::agent {

nlohmann::json vf_config_to_json(const VfConfig& c);
// Every field optional; unknown fields and bad values are `invalid` errors naming the field.
Result<VfConfig> vf_config_from_json(const nlohmann::json& j);

// What a VF is reset to when it comes back: MAC zeroed, VLAN 0, rates 0, spoofchk on, trust
// off, link auto.
VfConfig clean_vf_config();

}  // namespace sriovd::agent
