#include "rest/encode.h"

#include "base/time.h"

#include "agent/vf_config_json.h"
#include "base/json_writer.h"

#include <cstdio>
#include <ctime>

namespace sriovd::rest {

using nlohmann::json;

namespace {

template <class T>
json opt(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

}  // namespace

namespace {

std::string hex_digits(uint32_t v, int digits) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(static_cast<size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; --i, v >>= 4) out[static_cast<size_t>(i)] = hex[v & 15];
  return out;
}

}  // namespace

std::string hex4(uint16_t v) { return hex_digits(v, 4); }

std::string hex6(uint32_t v) { return hex_digits(v & 0xffffff, 6); }

const char* device_kind(const pci::Device& d) {
  if (d.sriov) return "pf";
  if (d.physfn) return "vf";
  if (d.is_bridge()) return "bridge";
  return "function";
}

std::string encode_device(const agent::DeviceView& v) {
  const pci::Device& d = v.device;
  std::string out;
  out.reserve(640);
  JsonWriter w(out);
  auto hex4_or_null = [&](const std::optional<uint16_t>& id) -> JsonWriter& {
    return id ? w.value(hex4(*id)) : w.null();
  };
  w.begin_object();
  w.key("address").value(d.address.to_string());
  w.key("kind").value(device_kind(d));
  w.key("vendor_id");
  hex4_or_null(d.vendor_id);
  w.key("device_id");
  hex4_or_null(d.device_id);
  w.key("subsystem_vendor_id");
  hex4_or_null(d.subsystem_vendor_id);
  w.key("subsystem_device_id");
  hex4_or_null(d.subsystem_device_id);
  w.key("class_id");
  if (d.class_id) w.value(hex6(*d.class_id));
  else w.null();
  w.key("vendor").optional(v.vendor_name);
  w.key("device").optional(v.device_name);
  w.key("driver").optional(d.driver);
  w.key("iommu_group").optional(d.iommu_group);
  w.key("numa_node").optional(d.numa_node);
  w.key("netdevs").strings(d.netdevs);
  w.key("physfn");
  if (d.physfn) w.value(d.physfn->to_string());
  else w.null();
  w.key("vf_index").optional(d.vf_index);
  w.key("sriov");
  if (d.sriov) {
    w.begin_object();
    w.key("total_vfs").value(static_cast<int64_t>(d.sriov->total_vfs));
    w.key("num_vfs").value(static_cast<int64_t>(d.sriov->num_vfs));
    w.key("vf_device_id");
    hex4_or_null(d.sriov->vf_device_id);
    w.key("drivers_autoprobe").optional(d.sriov->drivers_autoprobe);
    w.end_object();
  } else {
    w.null();
  }
  w.key("altnames").strings(v.altnames);
  w.key("link_type").optional(v.link_type);
  w.key("rdma").value(v.rdma);
  w.key("mtu").optional(v.mtu);
  auto link = [&](const char* key, const std::optional<agent::LinkStatus>& l) {
    w.key(key);
    if (!l) {
      w.null();
      return;
    }
    w.begin_object();
    w.key("carrier").optional(l->carrier);
    w.key("operstate").value(l->operstate);
    w.end_object();
  };
  link("link", v.link);
  link("pf_link", v.pf_link);
  w.key("eswitch_mode");
  if (v.eswitch_mode) w.value(to_string(*v.eswitch_mode));
  else w.null();
  w.key("representor");
  if (v.representor) {
    w.begin_object();
    w.key("netdev").value(v.representor->netdev);
    w.key("phys_port_name").value(v.representor->phys_port_name);
    w.key("phys_switch_id").value(v.representor->phys_switch_id);
    w.end_object();
  } else {
    w.null();
  }
  w.key("vf_config");
  if (v.vf_config) {
    // The VF netdev's MTU beside its IFLA_VF attributes, as vf_config requests carry it.
    VfConfig c = *v.vf_config;
    if (d.physfn) c.mtu = v.mtu;
    w.raw(agent::vf_config_to_json(c).dump());
  } else {
    w.null();
  }
  w.key("lease").optional(v.lease);
  w.key("warnings").strings(d.warnings);
  w.end_object();
  return out;
}

std::string encode_group(const iommu::Group& g) {
  std::string out;
  out.reserve(160 + 16 * g.members.size());
  JsonWriter w(out);
  w.begin_object();
  w.key("number").value(static_cast<int64_t>(g.number));
  w.key("type").optional(g.type);
  w.key("members").begin_array();
  for (const auto& a : g.members) w.value(a.to_string());
  w.end_array();
  w.key("viable").value(g.verdict.viable);
  w.key("reason").value(g.verdict.reason);
  w.key("blocking").begin_array();
  for (const auto& a : g.verdict.blocking) w.value(a.to_string());
  w.end_array();
  w.end_object();
  return out;
}

json encode_host(const agent::Snapshot& s) {
  int pfs = 0, vfs = 0, bridges = 0, with_warnings = 0, viable = 0;
  for (const auto& v : s.devices) {
    if (v.device.sriov) ++pfs;
    if (v.device.physfn) ++vfs;
    if (v.device.is_bridge()) ++bridges;
    if (!v.device.warnings.empty()) ++with_warnings;
  }
  for (const auto& [n, g] : s.groups)
    if (g.verdict.viable) ++viable;
  const auto& r = s.readiness;
  return {
      {"sysfs_root", s.sysfs_root},
      {"passthrough_ready", r.problems.empty()},
      {"problems", r.problems},
      {"iommu", {{"enabled", r.iommu_enabled}, {"units", r.iommus}, {"group_count", r.iommu_group_count}}},
      {"vfio",
       {{"vfio", r.vfio_loaded}, {"vfio_pci", r.vfio_pci_loaded}, {"vfio_iommu_type1", r.vfio_iommu_type1_loaded}}},
      {"counts",
       {{"devices", s.devices.size()},
        {"physical_functions", pfs},
        {"virtual_functions", vfs},
        {"bridges", bridges},
        {"iommu_groups", s.groups.size()},
        {"viable_iommu_groups", viable},
        {"devices_with_warnings", with_warnings}}},
      {"warnings", s.warnings},
      {"drift", s.drift},
      {"inventory", {{"generation", s.generation}, {"taken_at", rfc3339_utc(s.taken_at)}}},
  };
}

std::string encode_inventory(const agent::Snapshot& s) {
  std::string out;
  out.reserve(s.devices.size() * 700 + s.groups.size() * 200 + 1024);
  JsonWriter w(out);
  w.begin_object();
  w.key("host").raw(encode_host(s).dump());
  w.key("devices").begin_array();
  for (const auto& v : s.devices) w.raw(encode_device(v));
  w.end_array();
  w.key("iommu_groups").begin_array();
  for (const auto& [n, g] : s.groups) w.raw(encode_group(g));
  w.end_array();
  w.end_object();
  return out;
}

}  // namespace sriovd::rest
