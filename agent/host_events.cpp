#include "agent/host_events.h"

#include "agent/vf_config_json.h"

namespace sriovd::agent {

using nlohmann::json;

namespace {

template <class T>
json opt(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

json opt_address(const std::optional<PciAddress>& a) { return a ? json(a->to_string()) : json(nullptr); }

json link_json(const std::optional<LinkStatus>& l) {
  if (!l) return nullptr;
  return {{"carrier", opt(l->carrier)}, {"operstate", l->operstate}};
}

// The identity every device event carries, so a consumer can act without a GET.
json device_fields(const pci::Device& d) {
  return {{"address", d.address.to_string()},
          {"driver", opt(d.driver)},
          {"iommu_group", opt(d.iommu_group)},
          {"physfn", opt_address(d.physfn)},
          {"vf_index", opt(d.vf_index)}};
}

std::optional<bool> viable(const Snapshot& s, const pci::Device& d) {
  if (!d.iommu_group) return std::nullopt;
  auto g = s.groups.find(*d.iommu_group);
  if (g == s.groups.end()) return std::nullopt;
  return g->second.verdict.viable;
}

// {"field": {"from": old, "to": new}} for every field that differs.
json changes(const Snapshot& sb, const DeviceView& bv, const Snapshot& sa, const DeviceView& av) {
  const pci::Device& b = bv.device;
  const pci::Device& a = av.device;
  json c = json::object();
  auto add = [&](const char* field, json from, json to) {
    if (from != to) c[field] = {{"from", std::move(from)}, {"to", std::move(to)}};
  };
  add("driver", opt(b.driver), opt(a.driver));
  add("iommu_group", opt(b.iommu_group), opt(a.iommu_group));
  add("iommu_group_viable", opt(viable(sb, b)), opt(viable(sa, a)));
  add("netdevs", b.netdevs, a.netdevs);
  add("numa_node", opt(b.numa_node), opt(a.numa_node));
  add("num_vfs", b.sriov ? json(b.sriov->num_vfs) : json(nullptr), a.sriov ? json(a.sriov->num_vfs) : json(nullptr));
  add("drivers_autoprobe", b.sriov ? opt(b.sriov->drivers_autoprobe) : json(nullptr),
      a.sriov ? opt(a.sriov->drivers_autoprobe) : json(nullptr));
  add("physfn", opt_address(b.physfn), opt_address(a.physfn));
  add("mtu", opt(bv.mtu), opt(av.mtu));
  add("altnames", bv.altnames, av.altnames);
  // A PF's link only: its VFs' pf_link follows it, and one event says it for all of them.
  add("link", link_json(bv.link), link_json(av.link));
  add("eswitch_mode", bv.eswitch_mode ? json(to_string(*bv.eswitch_mode)) : json(nullptr),
      av.eswitch_mode ? json(to_string(*av.eswitch_mode)) : json(nullptr));
  return c;
}

}  // namespace

std::vector<HostEvent> diff_snapshots(const Snapshot* before, const Snapshot& after) {
  std::vector<HostEvent> out;
  if (!before) return out;
  // Both device lists are sorted by address: one merge pass.
  const auto& b = before->devices;
  const auto& a = after.devices;
  // Chunks the two lists share hold the same devices at the same positions: with the same
  // groups, nothing in them changed.
  const bool same_groups = before->groups.same(after.groups);
  size_t i = 0, j = 0;
  while (i < b.size() || j < a.size()) {
    if (same_groups && i == j && i % DeviceList::kChunk == 0 && b.same_chunk(a, i / DeviceList::kChunk)) {
      i = j = std::min(b.size(), i + DeviceList::kChunk);
      continue;
    }
    if (j == a.size() || (i < b.size() && b[i].device.address < a[j].device.address)) {
      out.push_back({"device.removed", device_fields(b[i].device)});
      ++i;
    } else if (i == b.size() || a[j].device.address < b[i].device.address) {
      out.push_back({"device.added", device_fields(a[j].device)});
      ++j;
    } else {
      const DeviceView& was = b[i];
      const DeviceView& now = a[j];
      // The JSON of a change is built only for devices that differ: most of a thousand do not.
      const pci::Device& x = was.device;
      const pci::Device& y = now.device;
      const bool same =
          x.driver == y.driver && x.iommu_group == y.iommu_group && x.netdevs == y.netdevs &&
          x.numa_node == y.numa_node && x.physfn == y.physfn && x.sriov.has_value() == y.sriov.has_value() &&
          (!x.sriov ||
           (x.sriov->num_vfs == y.sriov->num_vfs && x.sriov->drivers_autoprobe == y.sriov->drivers_autoprobe)) &&
          viable(*before, x) == viable(after, y) && was.mtu == now.mtu && was.altnames == now.altnames &&
          was.link == now.link && was.eswitch_mode == now.eswitch_mode;
      json c = same ? json::object() : changes(*before, was, after, now);
      if (!c.empty()) {
        json f = device_fields(now.device);
        f["changes"] = std::move(c);
        out.push_back({"device.changed", std::move(f)});
      }
      if (now.vf_config && was.vf_config != now.vf_config) {
        json f = {{"address", now.device.address.to_string()},
                  {"physfn", opt_address(now.device.physfn)},
                  {"vf_index", opt(now.device.vf_index)},
                  {"vf_config", vf_config_to_json(*now.vf_config)}};
        out.push_back({"vf_config.changed", std::move(f)});
      }
      ++i;
      ++j;
    }
  }
  if (before->drift != after.drift) out.push_back({"drift", {{"drift", after.drift}, {"count", after.drift.size()}}});
  return out;
}

}  // namespace sriovd::agent
