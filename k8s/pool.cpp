#include "k8s/pool.h"

#include <nlohmann/json.hpp>

namespace sriovd::k8s {

using nlohmann::json;

namespace {

Error bad(const std::string& field, const std::string& why) {
  return Error::make(ErrorCode::invalid, "sriovd answered with an unexpected " + field + ": " + why, field);
}

Result<PciAddress> address_at(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return bad(where + key, "missing or not a string");
  auto a = PciAddress::parse(it->get_ref<const std::string&>());
  if (!a) return bad(where + key, "'" + it->get<std::string>() + "' is not a PCI address");
  return *a;
}

// A nullable small integer: absent or null → nullopt; anything but an int in range is an error.
Result<std::optional<int>> opt_int(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<int>{};
  if (!it->is_number_integer()) return bad(where + key, "not an integer");
  auto v = it->get<int64_t>();
  if (v < -1 || v > (1 << 24)) return bad(where + key, "out of range");
  if (v == -1) return std::optional<int>{};  // the kernel's "no NUMA node"
  return std::optional<int>{static_cast<int>(v)};
}

Result<std::optional<std::string>> opt_string(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<std::string>{};
  if (!it->is_string()) return bad(where + key, "not a string");
  return std::optional<std::string>{it->get<std::string>()};
}

Result<std::string> req_string(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return bad(where + key, "missing or not a string");
  return it->get<std::string>();
}

Result<json> parse_body(std::string_view body) {
  auto j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return Error::make(ErrorCode::invalid, "sriovd answered with text that is not JSON");
  return j;
}

Result<PoolDevice> parse_member(const json& j, const std::string& where) {
  if (!j.is_object()) return bad(where, "not an object");
  PoolDevice d;
  auto a = address_at(j, "address", where);
  if (!a) return std::move(a).error();
  d.address = *a;
  if (auto it = j.find("pf"); it != j.end() && !it->is_null()) {
    auto pf = address_at(j, "pf", where);
    if (!pf) return std::move(pf).error();
    d.pf = *pf;
  }
  auto numa = opt_int(j, "numa_node", where);
  if (!numa) return std::move(numa).error();
  d.numa_node = *numa;
  auto group = opt_int(j, "iommu_group", where);
  if (!group) return std::move(group).error();
  d.iommu_group = *group;
  if (auto it = j.find("netdevs"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return bad(where + "netdevs", "not an array");
    for (const auto& n : *it) {
      if (!n.is_string()) return bad(where + "netdevs", "not an array of strings");
      d.netdevs.push_back(n.get<std::string>());
    }
  }
  auto driver = opt_string(j, "driver", where);
  if (!driver) return std::move(driver).error();
  d.driver = *driver;
  if (auto it = j.find("healthy"); it != j.end()) {
    if (!it->is_boolean()) return bad(where + "healthy", "not a boolean");
    d.healthy = it->get<bool>();
  }
  auto reason = opt_string(j, "reason", where);
  if (!reason) return std::move(reason).error();
  d.reason = reason->value_or("");
  auto lease = opt_string(j, "lease", where);
  if (!lease) return std::move(lease).error();
  d.lease = *lease;
  return d;
}

}  // namespace

const PoolDevice* Pool::find(const PciAddress& a) const {
  for (const auto& d : devices)
    if (d.address == a) return &d;
  return nullptr;
}

Result<Pool> parse_pool(const json& j) {
  if (!j.is_object()) return bad("pool", "not an object");
  Pool p;
  auto name = req_string(j, "name", "");
  if (!name) return std::move(name).error();
  p.name = *name;
  const std::string where = "pool '" + p.name + "' ";
  if (auto it = j.find("mode"); it != j.end() && !it->is_null()) {
    if (*it == "vfio") p.mode = Mode::vfio;
    else if (*it == "netdev") p.mode = Mode::netdev;
    else return bad(where + "mode", "expected vfio or netdev");
  }
  if (auto it = j.find("policy"); it != j.end() && !it->is_null()) {
    if (*it == "pack") p.policy = Policy::pack;
    else if (*it == "spread") p.policy = Policy::spread;
    else return bad(where + "policy", "expected pack or spread");
  }
  auto it = j.find("devices");
  if (it == j.end() || !it->is_array()) return bad(where + "devices", "missing or not an array");
  for (size_t i = 0; i < it->size(); ++i) {
    auto d = parse_member((*it)[i], where + "devices[" + std::to_string(i) + "].");
    if (!d) return std::move(d).error();
    p.devices.push_back(std::move(*d));
  }
  return p;
}

Result<Pool> parse_pool(std::string_view body) {
  auto j = parse_body(body);
  if (!j) return std::move(j).error();
  return parse_pool(*j);
}

Result<std::vector<Pool>> parse_pool_list(std::string_view body) {
  auto j = parse_body(body);
  if (!j) return std::move(j).error();
  if (!j->is_object() || !j->contains("pools") || !(*j)["pools"].is_array())
    return bad("pools", "missing or not an array");
  std::vector<Pool> out;
  for (const auto& p : (*j)["pools"]) {
    auto pool = parse_pool(p);
    if (!pool) return std::move(pool).error();
    out.push_back(std::move(*pool));
  }
  return out;
}

Result<Lease> parse_lease(const json& j) {
  if (!j.is_object()) return bad("lease", "not an object");
  Lease l;
  auto id = req_string(j, "id", "lease ");
  if (!id) return std::move(id).error();
  l.id = *id;
  auto pool = opt_string(j, "pool", "lease ");
  if (!pool) return std::move(pool).error();
  l.pool = pool->value_or("");
  auto a = address_at(j, "address", "lease ");
  if (!a) return std::move(a).error();
  l.address = *a;
  auto c = j.find("consumer");
  if (c == j.end() || !c->is_object()) return bad("lease consumer", "missing or not an object");
  auto kind = req_string(*c, "kind", "lease consumer.");
  if (!kind) return std::move(kind).error();
  l.consumer_kind = *kind;
  auto cname = opt_string(*c, "name", "lease consumer.");
  if (!cname) return std::move(cname).error();
  l.consumer_name = cname->value_or("");
  return l;
}

Result<Lease> parse_lease(std::string_view body) {
  auto j = parse_body(body);
  if (!j) return std::move(j).error();
  return parse_lease(*j);
}

Result<std::vector<Lease>> parse_lease_list(std::string_view body) {
  auto j = parse_body(body);
  if (!j) return std::move(j).error();
  if (!j->is_object() || !j->contains("allocations") || !(*j)["allocations"].is_array())
    return bad("allocations", "missing or not an array");
  std::vector<Lease> out;
  for (const auto& l : (*j)["allocations"]) {
    auto lease = parse_lease(l);
    if (!lease) return std::move(lease).error();
    out.push_back(std::move(*lease));
  }
  return out;
}

Result<DeviceInfo> parse_device(std::string_view body) {
  auto j = parse_body(body);
  if (!j) return std::move(j).error();
  if (!j->is_object()) return bad("device", "not an object");
  DeviceInfo d;
  auto a = address_at(*j, "address", "device ");
  if (!a) return std::move(a).error();
  d.address = *a;
  auto group = opt_int(*j, "iommu_group", "device ");
  if (!group) return std::move(group).error();
  d.iommu_group = *group;
  auto driver = opt_string(*j, "driver", "device ");
  if (!driver) return std::move(driver).error();
  d.driver = *driver;
  if (auto it = j->find("netdevs"); it != j->end() && it->is_array())
    for (const auto& n : *it)
      if (n.is_string()) d.netdevs.push_back(n.get<std::string>());
  return d;
}

}  // namespace sriovd::k8s
