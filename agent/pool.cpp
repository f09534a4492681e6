#include "agent/pool.h"

#include <algorithm>
#include <charconv>

namespace sriovd::agent {

using nlohmann::json;

namespace {

Error bad(const std::string& field, const std::string& why) {
  return Error::make(ErrorCode::invalid, field + ": " + why, field);
}

std::optional<uint32_t> parse_u32(std::string_view s) {
  uint32_t v = 0;
  if (s.empty() || s.size() > 9) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<uint16_t> parse_hex16(const std::string& s) {
  if (s.size() != 4) return std::nullopt;
  uint16_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string hex4(uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04x", v);
  return buf;
}

// Linux netdev names: 1..15 bytes, no '/', ':' or whitespace (dev_valid_name).
bool valid_ifname(std::string_view s) {
  if (s.empty() || s.size() > 15 || s == "." || s == "..") return false;
  for (char c : s)
    if (c == '/' || c == ':' || c == '#' || std::isspace(static_cast<unsigned char>(c)) || c == '\0') return false;
  return true;
}

template <class T, class F>
Result<std::vector<T>> list_of(const json& sel, const char* key, F&& one) {
  std::vector<T> out;
  if (!sel.contains(key)) return out;
  const std::string field = std::string("selectors.") + key;
  if (!sel[key].is_array()) return bad(field, "expected an array");
  for (size_t i = 0; i < sel[key].size(); ++i) {
    auto v = one(sel[key][i], field + "[" + std::to_string(i) + "]");
    if (!v) return std::move(v).error();
    if (std::find(out.begin(), out.end(), *v) == out.end()) out.push_back(std::move(*v));
  }
  return out;
}

}  // namespace

namespace {

// The "#3" or "#0-7" after a PF's name or address: both bounds, or neither without a '#'.
Result<std::pair<std::optional<uint32_t>, std::optional<uint32_t>>> parse_vf_range(std::string_view text,
                                                                                   const std::string& pf) {
  auto hash = text.find('#');
  if (hash == std::string_view::npos) return std::pair<std::optional<uint32_t>, std::optional<uint32_t>>{};
  std::string_view range = text.substr(hash + 1);
  auto dash = range.find('-');
  auto first = parse_u32(range.substr(0, dash));
  auto last = dash == std::string_view::npos ? first : parse_u32(range.substr(dash + 1));
  if (!first || !last)
    return Error::make(ErrorCode::invalid,
                       "'" + std::string(text) + "': expected a VF range such as " + pf + "#0-7 or " + pf + "#3");
  if (*first > *last)
    return Error::make(ErrorCode::invalid, "'" + std::string(text) + "': the range ends before it starts");
  return std::pair<std::optional<uint32_t>, std::optional<uint32_t>>{first, last};
}

std::string range_suffix(const std::optional<uint32_t>& first, const std::optional<uint32_t>& last) {
  if (!first) return {};
  if (*first == *last) return "#" + std::to_string(*first);
  return "#" + std::to_string(*first) + "-" + std::to_string(*last);
}

}  // namespace

Result<PfAddressRange> parse_pf_address_range(std::string_view text) {
  const std::string_view addr = text.substr(0, text.find('#'));
  auto a = PciAddress::parse(addr);
  if (!a)
    return Error::make(ErrorCode::invalid,
                       "'" + std::string(text) + "' does not start with a PCI address such as 0000:17:00.0");
  auto range = parse_vf_range(text, std::string(addr));
  if (!range) return std::move(range).error();
  return PfAddressRange{*a, range->first, range->second};
}

std::string to_string(const PfAddressRange& r) { return r.pf.to_string() + range_suffix(r.first, r.last); }

Result<PfRange> parse_pf_range(std::string_view text) {
  PfRange r;
  std::string_view name = text.substr(0, text.find('#'));
  if (!valid_ifname(name))
    return Error::make(
        ErrorCode::invalid,
        "'" + std::string(text) + "' does not start with a netdev name (1 to 15 characters, no '/', ':' or spaces)");
  r.pf_name = std::string(name);
  auto range = parse_vf_range(text, r.pf_name);
  if (!range) return std::move(range).error();
  r.first = range->first;
  r.last = range->second;
  return r;
}

std::string to_string(const PfRange& r) { return r.pf_name + range_suffix(r.first, r.last); }

const char* to_string(DeviceType t) {
  switch (t) {
    case DeviceType::vf: return "vf";
    case DeviceType::pf: return "pf";
    case DeviceType::any: return "any";
  }
  return "vf";
}
const char* to_string(PoolMode m) { return m == PoolMode::vfio ? "vfio" : "netdev"; }
const char* to_string(Policy p) { return p == Policy::pack ? "pack" : "spread"; }
const char* to_string(ResetPolicy r) { return r == ResetPolicy::restore ? "restore" : "defaults"; }
std::optional<Policy> parse_policy(std::string_view s) {
  if (s == "pack") return Policy::pack;
  if (s == "spread") return Policy::spread;
  return std::nullopt;
}

// Not split: one check per field of the PoolSpec schema, in the schema's order.
Result<PoolSpec> pool_from_json(const json& j) {
  if (!j.is_object()) return bad("body", "expected a pool object");
  PoolSpec p;
  if (!j.contains("name") || !j["name"].is_string()) return bad("name", "required, a string");
  p.name = j["name"].get<std::string>();
  if (p.name.empty() || p.name.size() > 63) return bad("name", "must be 1 to 63 characters");
  for (char c : p.name)
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-' ||
          c == '_' || c == '.'))
      return bad(
          "name",
          "'" + p.name +
              "': only lower-case letters, digits, '-', '_' and '.' (it becomes part of a Kubernetes resource name)");
  if (!std::isalnum(static_cast<unsigned char>(p.name.front())) ||
      !std::isalnum(static_cast<unsigned char>(p.name.back())))
    return bad("name", "'" + p.name + "' must start and end with a letter or digit");

  json sel = j.value("selectors", json::object());
  if (!sel.is_object()) return bad("selectors", "expected an object");
  static const char* const known[] = {"vendor_ids", "device_ids", "drivers",    "pf_names", "pf_addresses",
                                      "addresses",  "numa_nodes", "link_types", "rdma"};
  for (const auto& item : sel.items()) {
    const std::string& k = item.key();
    if (std::find_if(std::begin(known), std::end(known), [&](const char* n) { return k == n; }) == std::end(known))
      return bad("selectors." + k,
                 "unknown selector; known: vendor_ids, device_ids, drivers, pf_names, pf_addresses, addresses, "
                 "numa_nodes, link_types, rdma");
  }
  auto hexes = [](const json& v, const std::string& f) -> Result<uint16_t> {
    auto h = v.is_string() ? parse_hex16(v.get<std::string>()) : std::nullopt;
    if (!h) return bad(f, "expected 4 hex digits such as 8086");
    return *h;
  };
  auto vendors = list_of<uint16_t>(sel, "vendor_ids", hexes);
  if (!vendors) return std::move(vendors).error();
  p.selectors.vendor_ids = std::move(*vendors);
  auto devices = list_of<uint16_t>(sel, "device_ids", hexes);
  if (!devices) return std::move(devices).error();
  p.selectors.device_ids = std::move(*devices);
  auto drivers = list_of<std::string>(sel, "drivers", [](const json& v, const std::string& f) -> Result<std::string> {
    if (!v.is_string() || v.get<std::string>().empty() || v.get<std::string>().find('/') != std::string::npos)
      return bad(f, "expected a driver name such as iavf");
    return v.get<std::string>();
  });
  if (!drivers) return std::move(drivers).error();
  p.selectors.drivers = std::move(*drivers);
  auto pfs = list_of<PfRange>(sel, "pf_names", [](const json& v, const std::string& f) -> Result<PfRange> {
    if (!v.is_string()) return bad(f, "expected a string such as ens1f0#0-7");
    auto r = parse_pf_range(v.get<std::string>());
    if (!r) return bad(f, r.error().message);
    return r;
  });
  if (!pfs) return std::move(pfs).error();
  p.selectors.pf_names = std::move(*pfs);
  auto pf_addrs =
      list_of<PfAddressRange>(sel, "pf_addresses", [](const json& v, const std::string& f) -> Result<PfAddressRange> {
        if (!v.is_string()) return bad(f, "expected a string such as 0000:17:00.0#0-7");
        auto r = parse_pf_address_range(v.get<std::string>());
        if (!r) return bad(f, r.error().message);
        return r;
      });
  if (!pf_addrs) return std::move(pf_addrs).error();
  p.selectors.pf_addresses = std::move(*pf_addrs);
  auto addrs = list_of<PciAddress>(sel, "addresses", [](const json& v, const std::string& f) -> Result<PciAddress> {
    auto a = v.is_string() ? PciAddress::parse(v.get<std::string>()) : std::nullopt;
    if (!a) return bad(f, "expected a PCI address such as 0000:17:00.0");
    return *a;
  });
  if (!addrs) return std::move(addrs).error();
  p.selectors.addresses = std::move(*addrs);
  auto numas = list_of<int>(sel, "numa_nodes", [](const json& v, const std::string& f) -> Result<int> {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 1023)
      return bad(f, "expected a NUMA node number 0..1023");
    return v.get<int>();
  });
  if (!numas) return std::move(numas).error();
  p.selectors.numa_nodes = std::move(*numas);
  auto links = list_of<std::string>(sel, "link_types", [](const json& v, const std::string& f) -> Result<std::string> {
    if (!v.is_string() || (v != "ether" && v != "infiniband")) return bad(f, "expected ether or infiniband");
    return v.get<std::string>();
  });
  if (!links) return std::move(links).error();
  p.selectors.link_types = std::move(*links);
  if (sel.contains("rdma") && !sel["rdma"].is_null()) {
    if (!sel["rdma"].is_boolean()) return bad("selectors.rdma", "expected true or false");
    p.selectors.rdma = sel["rdma"].get<bool>();
  }

  if (j.contains("physical_network") && !j["physical_network"].is_null()) {
    if (!j["physical_network"].is_string() || j["physical_network"].get<std::string>().empty())
      return bad("physical_network", "expected a non-empty string or null");
    p.physical_network = j["physical_network"].get<std::string>();
  }
  // The API's schema refuses these types first, but this decoder checks every value again (the
  // config file and stored pools come here too): a string or absent, never an exception.
  auto text = [&j](const char* key, const char* fallback) -> std::optional<std::string> {
    if (!j.contains(key) || j[key].is_null()) return std::string(fallback);
    if (!j[key].is_string()) return std::nullopt;
    return j[key].get<std::string>();
  };
  auto type = text("device_type", "vf");
  if (!type) return bad("device_type", "expected vf, pf or any");
  if (*type == "vf") p.device_type = DeviceType::vf;
  else if (*type == "pf") p.device_type = DeviceType::pf;
  else if (*type == "any") p.device_type = DeviceType::any;
  else return bad("device_type", "expected vf, pf or any, got '" + *type + "'");
  auto mode = text("mode", "vfio");
  if (!mode) return bad("mode", "expected vfio or netdev");
  if (*mode == "vfio") p.mode = PoolMode::vfio;
  else if (*mode == "netdev") p.mode = PoolMode::netdev;
  else return bad("mode", "expected vfio or netdev, got '" + *mode + "'");
  auto policy_text = text("policy", "pack");
  auto policy = policy_text ? parse_policy(*policy_text) : std::nullopt;
  if (!policy) return bad("policy", "expected pack or spread");
  p.policy = *policy;
  auto reset = text("reset", "restore");
  if (!reset) return bad("reset", "expected restore or defaults");
  if (*reset == "restore") p.reset = ResetPolicy::restore;
  else if (*reset == "defaults") p.reset = ResetPolicy::defaults;
  else return bad("reset", "expected restore or defaults, got '" + *reset + "'");
  if (j.contains("health") && !j["health"].is_null()) {
    const json& h = j["health"];
    if (!h.is_object()) return bad("health", "expected an object such as {\"pf_link\": true}");
    for (const auto& [k, v] : h.items())
      if (k != "pf_link") return bad("health." + k, "unknown; known: pf_link");
    if (h.contains("pf_link")) {
      if (!h["pf_link"].is_boolean()) return bad("health.pf_link", "expected true or false");
      p.health.pf_link = h["pf_link"].get<bool>();
    }
  }
  for (const auto& r : p.selectors.pf_names)
    if (r.first && p.device_type == DeviceType::pf)
      return bad("selectors.pf_names", "'" + to_string(r) + "' names VFs, but device_type is pf");
  for (const auto& r : p.selectors.pf_addresses)
    if (r.first && p.device_type == DeviceType::pf)
      return bad("selectors.pf_addresses", "'" + to_string(r) + "' names VFs, but device_type is pf");
  if (p.mode == PoolMode::netdev && p.device_type != DeviceType::vf)
    return bad("mode", "netdev mode hands out VFs by their netdev (macvtap passthrough): device_type must be vf");
  return p;
}

json pool_to_json(const PoolSpec& p) {
  json sel = json::object();
  auto hexes = [](const std::vector<uint16_t>& v) {
    json a = json::array();
    for (auto x : v) a.push_back(hex4(x));
    return a;
  };
  if (!p.selectors.vendor_ids.empty()) sel["vendor_ids"] = hexes(p.selectors.vendor_ids);
  if (!p.selectors.device_ids.empty()) sel["device_ids"] = hexes(p.selectors.device_ids);
  if (!p.selectors.drivers.empty()) sel["drivers"] = p.selectors.drivers;
  if (!p.selectors.pf_names.empty()) {
    json a = json::array();
    for (const auto& r : p.selectors.pf_names) a.push_back(to_string(r));
    sel["pf_names"] = a;
  }
  if (!p.selectors.pf_addresses.empty()) {
    json a = json::array();
    for (const auto& r : p.selectors.pf_addresses) a.push_back(to_string(r));
    sel["pf_addresses"] = a;
  }
  if (!p.selectors.addresses.empty()) {
    json a = json::array();
    for (const auto& x : p.selectors.addresses) a.push_back(x.to_string());
    sel["addresses"] = a;
  }
  if (!p.selectors.numa_nodes.empty()) sel["numa_nodes"] = p.selectors.numa_nodes;
  if (!p.selectors.link_types.empty()) sel["link_types"] = p.selectors.link_types;
  if (p.selectors.rdma) sel["rdma"] = *p.selectors.rdma;
  return {{"name", p.name},
          {"selectors", sel},
          {"physical_network", p.physical_network ? json(*p.physical_network) : json(nullptr)},
          {"device_type", to_string(p.device_type)},
          {"mode", to_string(p.mode)},
          {"policy", to_string(p.policy)},
          {"reset", to_string(p.reset)},
          {"health", {{"pf_link", p.health.pf_link}}}};
}

bool matches(const PoolSpec& pool, const Candidate& c) {
  const Selectors& s = pool.selectors;
  if (pool.device_type == DeviceType::vf && !c.is_vf) return false;
  if (pool.device_type == DeviceType::pf && c.is_vf) return false;
  auto in = [](const auto& list, const auto& v) { return std::find(list.begin(), list.end(), v) != list.end(); };
  if (!s.vendor_ids.empty() && (!c.vendor_id || !in(s.vendor_ids, *c.vendor_id))) return false;
  if (!s.device_ids.empty() && (!c.device_id || !in(s.device_ids, *c.device_id))) return false;
  if (!s.drivers.empty() && !c.driver_unknown && (!c.host_driver || !in(s.drivers, *c.host_driver))) return false;
  if (!s.addresses.empty() && !in(s.addresses, c.address)) return false;
  if (!s.numa_nodes.empty() && (!c.numa_node || !in(s.numa_nodes, *c.numa_node))) return false;
  if (!s.link_types.empty() && (!c.link_type || !in(s.link_types, *c.link_type))) return false;
  if (s.rdma && c.rdma != *s.rdma) return false;
  if (!s.pf_names.empty()) {
    bool any = false;
    for (const auto& r : s.pf_names) {
      const bool alt = in(c.pf_altnames, r.pf_name);
      if (c.is_vf) {
        if (!alt && (!c.pf_netdev || *c.pf_netdev != r.pf_name)) continue;
        if (r.first && (!c.vf_index || *c.vf_index < *r.first || *c.vf_index > *r.last)) continue;
        any = true;
      } else if (!r.first && (alt || in(c.netdevs, r.pf_name))) {
        any = true;
      }
      if (any) break;
    }
    if (!any) return false;
  }
  if (!s.pf_addresses.empty()) {
    bool any = false;
    for (const auto& r : s.pf_addresses) {
      if (c.is_vf) {
        any = c.pf_address == r.pf && (!r.first || (c.vf_index && *c.vf_index >= *r.first && *c.vf_index <= *r.last));
      } else {
        any = !r.first && c.address == r.pf;
      }
      if (any) break;
    }
    if (!any) return false;
  }
  return true;
}

std::optional<PciAddress> pick(const std::vector<FreeMember>& free, Policy policy, std::optional<int> numa_node,
                               const std::map<PciAddress, int>& leases_per_pf) {
  const FreeMember* best = nullptr;
  int best_load = 0;
  for (const auto& m : free) {
    if (numa_node && m.numa_node != numa_node) continue;
    auto it = leases_per_pf.find(m.pf);
    int load = it == leases_per_pf.end() ? 0 : it->second;
    bool better = !best || (policy == Policy::pack ? load > best_load : load < best_load) ||
                  (load == best_load && m.address < best->address);
    if (better) {
      best = &m;
      best_load = load;
    }
  }
  if (!best) return std::nullopt;
  return best->address;
}

}  // namespace sriovd::agent
