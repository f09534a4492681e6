#include "agent/vf_config_json.h"

#include <cstdio>

namespace sriovd::agent {

using nlohmann::json;

namespace {

constexpr uint16_t kEthP8021Q = 0x8100;
constexpr uint16_t kEthP8021AD = 0x88a8;

const char* link_state_name(LinkState s) {
  switch (s) {
    case LinkState::auto_: return "auto";
    case LinkState::enable: return "enable";
    case LinkState::disable: return "disable";
  }
  return "auto";
}

Error invalid(const std::string& field, const std::string& why) {
  return Error::make(ErrorCode::invalid, field + ": " + why, field);
}

}  // namespace

json vf_config_to_json(const VfConfig& c) {
  json j = json::object();
  if (c.mac) j["mac"] = c.mac->to_string();
  if (c.vlan) j["vlan"] = *c.vlan;
  if (c.qos) j["qos"] = *c.qos;
  if (c.vlan_proto) j["vlan_proto"] = *c.vlan_proto == kEthP8021AD ? "802.1ad" : "802.1Q";
  if (c.max_tx_rate_mbps) j["max_tx_rate_mbps"] = *c.max_tx_rate_mbps;
  if (c.min_tx_rate_mbps) j["min_tx_rate_mbps"] = *c.min_tx_rate_mbps;
  if (c.spoofchk) j["spoofchk"] = *c.spoofchk;
  if (c.trust) j["trust"] = *c.trust;
  if (c.link_state) j["link_state"] = link_state_name(*c.link_state);
  if (c.mtu) j["mtu"] = *c.mtu;
  return j;
}

Result<VfConfig> vf_config_from_json(const json& j) {
  if (!j.is_object()) return invalid("vf_config", "expected an object");
  VfConfig c;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const json& v = it.value();
    auto uint_in = [&](uint64_t max) -> Result<uint64_t> {
      if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
        return invalid(k, "expected a non-negative integer");
      auto n = v.get<uint64_t>();
      if (n > max) return invalid(k, "must be at most " + std::to_string(max) + ", got " + std::to_string(n));
      return n;
    };
    if (k == "mac") {
      if (!v.is_string()) return invalid(k, "expected a MAC address like 52:54:00:12:34:56");
      auto m = MacAddress::parse(v.get<std::string>());
      if (!m) return invalid(k, "'" + v.get<std::string>() + "' is not a MAC address like 52:54:00:12:34:56");
      if ((*m)[0] & 1) return invalid(k, v.get<std::string>() + " is a multicast address; a VF needs a unicast MAC");
      c.mac = m;
    } else if (k == "vlan") {
      auto n = uint_in(4095);
      if (!n) return std::move(n).error();
      c.vlan = static_cast<uint16_t>(*n);
    } else if (k == "qos") {
      auto n = uint_in(7);
      if (!n) return std::move(n).error();
      c.qos = static_cast<uint8_t>(*n);
    } else if (k == "vlan_proto") {
      if (v == "802.1Q") c.vlan_proto = kEthP8021Q;
      else if (v == "802.1ad") c.vlan_proto = kEthP8021AD;
      else return invalid(k, "expected 802.1Q or 802.1ad");
    } else if (k == "max_tx_rate_mbps" || k == "min_tx_rate_mbps") {
      auto n = uint_in(UINT32_MAX);
      if (!n) return std::move(n).error();
      (k[1] == 'a' ? c.max_tx_rate_mbps : c.min_tx_rate_mbps) = static_cast<uint32_t>(*n);
    } else if (k == "spoofchk" || k == "trust") {
      if (!v.is_boolean()) return invalid(k, "expected true or false");
      (k == "trust" ? c.trust : c.spoofchk) = v.get<bool>();
    } else if (k == "link_state") {
      if (v == "auto") c.link_state = LinkState::auto_;
      else if (v == "enable") c.link_state = LinkState::enable;
      else if (v == "disable") c.link_state = LinkState::disable;
      else return invalid(k, "expected auto, enable or disable");
    } else if (k == "mtu") {
      auto n = uint_in(65535);
      if (!n) return std::move(n).error();
      if (*n < 68) return invalid(k, "must be at least 68 (ETH_MIN_MTU), got " + std::to_string(*n));
      c.mtu = static_cast<uint32_t>(*n);
    } else {
      return invalid(k,
                     "unknown field; known: mac, vlan, qos, vlan_proto, max_tx_rate_mbps, min_tx_rate_mbps, "
                     "spoofchk, trust, link_state, mtu");
    }
  }
  if (c.min_tx_rate_mbps && c.max_tx_rate_mbps && *c.max_tx_rate_mbps != 0 && *c.min_tx_rate_mbps > *c.max_tx_rate_mbps)
    return invalid("min_tx_rate_mbps",
                   "must not exceed max_tx_rate_mbps (" + std::to_string(*c.max_tx_rate_mbps) + ")");
  return c;
}

Result<void> check_vf_request(const VfConfig& c) {
  if (c.qos && !c.vlan)
    return invalid("qos",
                   "qos needs vlan in the same request: the kernel sets the VLAN ID and its priority together "
                   "(vlan 0 with a qos tags the priority only)");
  if (c.vlan_proto && !c.vlan)
    return invalid("vlan_proto",
                   "vlan_proto needs vlan in the same request: the kernel sets the VLAN ID and its protocol together");
  if (c.vlan_proto == kEthP8021AD && c.vlan == 0)
    return invalid("vlan_proto", "802.1ad needs a vlan other than 0 (vlan 0 is a priority tag, which is 802.1Q)");
  return ok();
}

VfConfig vf_config_overlay(VfConfig base, const VfConfig& top) {
  if (top.mac) base.mac = top.mac;
  if (top.vlan) base.vlan = top.vlan;
  if (top.qos) base.qos = top.qos;
  if (top.vlan_proto) base.vlan_proto = top.vlan_proto;
  if (top.max_tx_rate_mbps) base.max_tx_rate_mbps = top.max_tx_rate_mbps;
  if (top.min_tx_rate_mbps) base.min_tx_rate_mbps = top.min_tx_rate_mbps;
  if (top.spoofchk) base.spoofchk = top.spoofchk;
  if (top.trust) base.trust = top.trust;
  if (top.link_state) base.link_state = top.link_state;
  if (top.mtu) base.mtu = top.mtu;
  return base;
}

VfConfig clean_vf_config() {
  VfConfig c;
  c.mac = MacAddress{};
  c.vlan = 0;
  c.qos = 0;
  c.vlan_proto = kEthP8021Q;
  c.max_tx_rate_mbps = 0;
  c.min_tx_rate_mbps = 0;
  c.spoofchk = true;
  c.trust = false;
  c.link_state = LinkState::auto_;
  return c;
}

}  // namespace sriovd::agent
