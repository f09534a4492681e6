// The API's JSON form of VF attributes (vf_config), to and from VfConfig:
//   {"mac": "52:54:00:12:34:56", "vlan": 100, "qos": 3, "vlan_proto": "802.1Q",
//    "max_tx_rate_mbps": 1000, "min_tx_rate_mbps": 0, "spoofchk": true, "trust": false,
//    "link_state": "auto", "mtu": 9000}
// mtu is the VF's own netdev's, set with IFLA_MTU on it rather than through its PF.
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

// What a request (PATCH vf-config, an allocation's vf_config) may ask, beyond each field's own
// range: qos and vlan_proto come with vlan in the same request, because the kernel takes the
// VLAN ID, its priority and its protocol as one attribute (IFLA_VF_VLAN) and a missing ID would
// be sent as 0; vlan 0 with a qos is a priority tag and is allowed. 802.1ad needs a VLAN ID:
// vlan 0 is a priority tag, which is 802.1Q (igb, ixgbe, i40e and mlx5 refuse 802.1ad at all,
// ice would store a port VLAN that does nothing). `invalid` naming the field.
Result<void> check_vf_request(const VfConfig& c);

// `base` with every field `top` sets taken from `top`.
VfConfig vf_config_overlay(VfConfig base, const VfConfig& top);

// What a VF is reset to when it comes back: MAC zeroed, VLAN 0, rates 0, spoofchk on, trust
// off, link auto.
VfConfig clean_vf_config();

}  // namespace sriovd::agent
