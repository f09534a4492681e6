// The Agent's host operations: sriov_numvfs, VF attributes and driver binds (PUT
// /v1/devices/{pf}/sriov, PATCH .../vf-config, PUT .../driver), and the pieces of them the
// reconcile and the leases reuse (VF attribute groups, binds through pci/'s recipes).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "agent/applier.h"
#include "agent/interlocks.h"
#include "agent/vf_config_json.h"
#include "pci/decode.h"

namespace sriovd::agent {

using nlohmann::json;

namespace {

std::string vf_key(const PciAddress& pf, uint32_t index) { return pf.to_string() + "#" + std::to_string(index); }

// The attribute groups of a VF, in the order the kernel's do_setvfinfo applies them. Each is one
// RTM_SETLINK, so a NACK leaves no group half-applied.
enum class VfGroup { mac, vlan, rate, spoofchk, link_state, trust };
constexpr VfGroup kGroups[] = {VfGroup::mac,      VfGroup::vlan,       VfGroup::rate,
                               VfGroup::spoofchk, VfGroup::link_state, VfGroup::trust};

const char* group_field(VfGroup g) {
  switch (g) {
    case VfGroup::mac: return "mac";
    case VfGroup::vlan: return "vlan";
    case VfGroup::rate: return "max_tx_rate_mbps";
    case VfGroup::spoofchk: return "spoofchk";
    case VfGroup::link_state: return "link_state";
    case VfGroup::trust: return "trust";
  }
  return "vf_config";
}

bool group_set(const VfConfig& c, VfGroup g) {
  switch (g) {
    case VfGroup::mac: return c.mac.has_value();
    case VfGroup::vlan: return c.vlan || c.qos || c.vlan_proto;
    case VfGroup::rate: return c.max_tx_rate_mbps || c.min_tx_rate_mbps;
    case VfGroup::spoofchk: return c.spoofchk.has_value();
    case VfGroup::link_state: return c.link_state.has_value();
    case VfGroup::trust: return c.trust.has_value();
  }
  return false;
}

// The group `g` of `wanted` completed from `current` (a VLAN request carries vlan, qos and
// protocol together; a rate request both rates).
VfConfig group_of(const VfConfig& wanted, const VfConfig& current, VfGroup g) {
  VfConfig out;
  auto pick = [](auto w, auto c, auto dflt) { return w ? *w : c ? *c : dflt; };
  switch (g) {
    case VfGroup::mac: out.mac = pick(wanted.mac, current.mac, MacAddress{}); break;
    case VfGroup::vlan:
      out.vlan = pick(wanted.vlan, current.vlan, uint16_t{0});
      out.qos = pick(wanted.qos, current.qos, uint8_t{0});
      out.vlan_proto = pick(wanted.vlan_proto, current.vlan_proto, uint16_t{0x8100});
      break;
    case VfGroup::rate:
      out.max_tx_rate_mbps = pick(wanted.max_tx_rate_mbps, current.max_tx_rate_mbps, uint32_t{0});
      out.min_tx_rate_mbps = pick(wanted.min_tx_rate_mbps, current.min_tx_rate_mbps, uint32_t{0});
      break;
    case VfGroup::spoofchk: out.spoofchk = pick(wanted.spoofchk, current.spoofchk, true); break;
    case VfGroup::link_state: out.link_state = pick(wanted.link_state, current.link_state, LinkState::auto_); break;
    case VfGroup::trust: out.trust = pick(wanted.trust, current.trust, false); break;
  }
  return out;
}

// Fields of `patch` laid over `base`.
}  // namespace

Result<void> Agent::bind(Applier& a, const pci::Device& dev, const std::optional<std::string>& driver) {
  // vfio-pci, or off the driver (back towards a host driver, or none at all).
  if (driver == std::string("vfio-pci")) return pci::bind_driver(root_, dev.address, *driver, a.runner());
  return pci::unbind_driver(root_, dev.address, a.runner());
}

Error Agent::explain_rate_refusal(Error e, const std::string& pf_ifname, const VfConfig& wanted) const {
  // PF drivers refuse a rate with a bare errno (igb_ndo_set_vf_bw sends no extack): the reason
  // is told here, from what the host shows.
  const bool min = wanted.min_tx_rate_mbps.value_or(0) != 0;
  e.field = min || !wanted.max_tx_rate_mbps ? "min_tx_rate_mbps" : "max_tx_rate_mbps";
  const std::string field = min || !wanted.max_tx_rate_mbps ? "min_tx_rate" : "max_tx_rate";
  if (e.errnum == EOPNOTSUPP) {
    e.code = ErrorCode::unsupported;
    e.message = field + ": the driver of " + pf_ifname +
                " has no VF transmit rate limits on this device (igb limits them on the 82576 only): " + e.message;
  } else if (e.errnum == EINVAL && min) {
    // igb_ndo_set_vf_bw, i40e and ixgbe refuse any minimum before they look at the link.
    e.message =
        field + ": refused by the driver of " + pf_ifname + " (igb, i40e and ixgbe take no minimum rate): " + e.message;
  } else if (e.errnum == EINVAL) {
    // No link: carrier 0, or no carrier to read at all (sysfs answers EINVAL for `carrier` of
    // a netdev that is not up), or operstate down.
    auto carrier = root_.read("class/net/" + pf_ifname + "/carrier", 16);
    auto operstate = root_.read("class/net/" + pf_ifname + "/operstate", 32);
    if (!carrier || pci::parse_bool01(pci::trim(*carrier)) == false || (operstate && pci::trim(*operstate) == "down")) {
      e.code = ErrorCode::conflict;
      e.message = field + ": " + pf_ifname +
                  " has no link (carrier down), and its driver refuses VF rates until it has one (igb); try again "
                  "once the link is up: " +
                  e.message;
    }
  }
  return e;
}

bool Agent::link_coming_back(const std::string& pf_ifname) {
  // Only a link that is down now is waited for: a refusal with the link up has another reason.
  auto carrier = root_.read("class/net/" + pf_ifname + "/carrier", 16);
  if (carrier && pci::parse_bool01(pci::trim(*carrier)) == true) return false;
  auto back = kernel_.wait_carrier(pf_ifname, carrier_wait_);
  if (!back) {
    spdlog::warn("waiting for a link on {}: {}", pf_ifname, back.error().message);
    return false;
  }
  if (*back) spdlog::info("{} has a link again; setting the VF rate once more", pf_ifname);
  return *back;
}

Result<void> Agent::apply_vf_config(Applier& a, const std::string& pf_ifname, uint32_t index, const VfConfig& current,
                                    const VfConfig& wanted) {
  for (VfGroup g : kGroups) {
    if (!group_set(wanted, g)) continue;
    VfConfig want = group_of(wanted, current, g);
    VfConfig was = group_of(current, current, g);
    if (want == was) continue;
    auto r = a.run(Action::set_vf(pf_ifname, index, want), {Action::set_vf(pf_ifname, index, was)});
    if (!r && g == VfGroup::rate && r.error().errnum == EINVAL && r.error().field.empty() &&
        want.min_tx_rate_mbps.value_or(0) == 0 && link_coming_back(pf_ifname))
      r = a.run(Action::set_vf(pf_ifname, index, want), {Action::set_vf(pf_ifname, index, was)});
    if (!r) {
      Error e = std::move(r).error();
      if (g == VfGroup::rate && (e.errnum == EINVAL || e.errnum == EOPNOTSUPP) && e.field.empty())
        return explain_rate_refusal(std::move(e), pf_ifname, wanted);
      if (e.field.empty()) e.field = group_field(g);
      return e;
    }
  }
  return ok();
}

Result<void> Agent::reset_vf_config(Applier& a, const std::string& pf_ifname, uint32_t index, const VfConfig& current,
                                    const VfConfig& target, std::map<std::string, std::string>* refused) {
  for (VfGroup g : kGroups) {
    VfConfig want = group_of(target, current, g);
    VfConfig was = group_of(current, current, g);
    // A group the driver does not report cannot be compared: set it anyway, once.
    if (want == was && group_set(current, g)) continue;
    if (auto r = a.run(Action::set_vf(pf_ifname, index, want), {Action::set_vf(pf_ifname, index, was)}); !r) {
      if (r.error().errnum == EOPNOTSUPP) continue;
      Error e = std::move(r).error();
      if (e.field.empty()) e.field = group_field(g);
      if (refused && (e.errnum == EINVAL || e.errnum == ERANGE)) {
        (*refused)[group_field(g)] = e.message;
        continue;
      }
      return e;
    }
  }
  return ok();
}

// After VFs were (re)created they have the driver's defaults: give them back the attributes and
// drivers the desired state holds for this PF's VFs.
Result<void> Agent::reapply_vf_state(Applier& a, const PciAddress& pf) {
  if (auto r = refresh_locked(); !r) return r;
  auto s = snap();
  const DeviceView* pfv = s->find(pf);
  if (!pfv) return ok();
  auto configs = store_.all("vf_config");
  if (!configs) return std::move(configs).error();
  std::string prefix = pf.to_string() + "#";
  if (!pfv->device.netdevs.empty()) {
    auto vfs = kernel_.get_vfs(pfv->device.netdevs.front());
    for (const auto& [key, text] : *configs) {
      if (key.rfind(prefix, 0) != 0 || !vfs) continue;
      uint32_t index = static_cast<uint32_t>(std::stoul(key.substr(prefix.size())));
      auto wanted = vf_config_from_json(json::parse(text, nullptr, false));
      auto it = std::find_if(vfs->begin(), vfs->end(), [&](const auto& v) { return v.index == index; });
      if (!wanted || it == vfs->end()) continue;
      if (auto r = apply_vf_config(a, pfv->device.netdevs.front(), index, it->config, *wanted); !r) return r;
    }
  }
  auto drivers = store_.all("driver");
  if (!drivers) return std::move(drivers).error();
  for (const auto& v : s->devices) {
    if (v.device.physfn != pf) continue;
    auto it = drivers->find(v.device.address.to_string());
    if (it == drivers->end()) continue;
    auto j = json::parse(it->second, nullptr, false);
    if (!j.is_object() || !j.contains("driver")) continue;
    std::optional<std::string> want;
    if (j["driver"].is_string()) want = j["driver"].get<std::string>();
    if (v.device.driver == want) continue;
    if (auto r = bind(a, v.device, want); !r) return r;
  }
  return ok();
}

Result<void> Agent::change_autoprobe(Applier& a, const pci::Device& pf, std::optional<bool> want) {
  if (!want || !pf.sriov) return ok();
  return pci::change_drivers_autoprobe(pf.address, pf.sriov->drivers_autoprobe, *want, a.runner());
}

Error Agent::abandon(Applier& a, Error e) {
  a.rollback();
  (void)store_.finish_operation(a.op(), OperationState::failed, e.message);
  (void)refresh_locked();
  return e;
}

// Not split: the checks, the interlocks and the apply (with the VF settings given back on the
// failure path and the success path alike) all work on the PF as read once at the top, in the
// order the operation takes them.
Result<void> Agent::set_num_vfs(PciAddress pf, uint32_t num_vfs, std::optional<bool> drivers_autoprobe) {
  MutexLock lock(mu_);
  auto s = snap();
  const DeviceView* v = s->find(pf);
  if (!v) return Error::make(ErrorCode::not_found, "no PCI device " + pf.to_string() + " on this host");
  const pci::Device& d = v->device;
  if (!d.sriov)
    return Error::make(ErrorCode::invalid, pf.to_string() + " is not an SR-IOV physical function", "num_vfs");
  if (num_vfs > d.sriov->total_vfs)
    return Error::make(ErrorCode::invalid,
                       "num_vfs: " + std::to_string(num_vfs) + " exceeds the total_vfs of " + pf.to_string() + " (" +
                           std::to_string(d.sriov->total_vfs) + ")",
                       "num_vfs");
  const uint32_t cur = d.sriov->num_vfs;
  json desired = {{"num_vfs", num_vfs}};
  if (!drivers_autoprobe) {
    // Not asked: keep what an earlier request asked for.
    auto prev = store_.get("sriov", pf.to_string());
    if (prev && prev->has_value()) {
      auto p = json::parse(**prev, nullptr, false);
      if (p.is_object() && p.contains("drivers_autoprobe") && p["drivers_autoprobe"].is_boolean())
        desired["drivers_autoprobe"] = p["drivers_autoprobe"];
    }
  } else {
    desired["drivers_autoprobe"] = *drivers_autoprobe;
  }
  const bool autoprobe_change = drivers_autoprobe && d.sriov->drivers_autoprobe != drivers_autoprobe;
  if (cur == num_vfs && !autoprobe_change) {
    // Already there: no 0 → N cycle, only the desired state is recorded.
    return store_.put("sriov", pf.to_string(), desired.dump());
  }
  // Interlock: the VFs are destroyed on the way (Linux only goes N → 0 → M).
  if (const Lease* l = book_->lease_of(pf))
    return Error::make(ErrorCode::conflict,
                       "cannot change num_vfs of " + pf.to_string() + ": it is leased whole (lease " + l->id + ")");
  // A PF on vfio-pci that a VM or program holds: its SR-IOV capability would change under its
  // user (vfio-pci lets the host enable VFs of a PF it owns), however the PF got there.
  if (auto r = check_not_in_use(d, "change num_vfs of " + pf.to_string()); !r) return r;
  if (cur != 0) {
    std::string leased;
    for (const auto& vf : s->devices)
      if (vf.device.physfn == pf && book_->lease_of(vf.device.address))
        leased += (leased.empty() ? "" : ", ") + vf.device.address.to_string();
    if (!leased.empty())
      return Error::make(ErrorCode::conflict, "cannot change num_vfs of " + pf.to_string() + " from " +
                                                  std::to_string(cur) + ": leased VFs: " + leased);
  }
  if (cur != 0) {
    // Removing a VF from vfio-pci waits, in the kernel, until its users close it: say who they
    // are, so the operator knows what to stop.
    std::string busy, users;
    for (const auto& vf : s->devices) {
      if (vf.device.physfn != pf || vf.device.driver != std::string("vfio-pci")) continue;
      busy += (busy.empty() ? "" : ", ") + vf.device.address.to_string();
      if (auto r = check_not_in_use(vf.device, "remove " + vf.device.address.to_string()); !r)
        users += "; " + r.error().message;
    }
    if (!busy.empty())
      return Error::make(ErrorCode::conflict, "cannot change num_vfs of " + pf.to_string() + " from " +
                                                  std::to_string(cur) + ": VFs bound to vfio-pci: " + busy + users);
  }
  auto op = store_.begin_operation(OperationKind::set_num_vfs, pf.to_string(),
                                   json({{"num_vfs", num_vfs}, {"from", cur}}).dump());
  if (!op) return std::move(op).error();
  Applier a(kernel_, store_, *op);
  Result<void> r = change_autoprobe(a, d, drivers_autoprobe);
  if (r) r = pci::change_num_vfs(pf, cur, num_vfs, a.runner());
  if (!r) {
    a.rollback();
    // Recreated VFs come back with the driver's defaults: restore what the desired state says.
    if (cur != 0) {
      Applier again(kernel_, store_, *op);
      if (auto re = reapply_vf_state(again, pf); !re) drift_.push_back(pf.to_string() + ": " + re.error().message);
    }
    (void)store_.finish_operation(*op, OperationState::failed, r.error().message);
    (void)refresh_locked();
    Error e = std::move(r).error();
    if (e.field.empty() && e.code == ErrorCode::invalid) e.field = "num_vfs";
    return std::move(e).context("setting num_vfs of " + pf.to_string() + " to " + std::to_string(num_vfs));
  }
  auto committed = store_.transaction([&](StateStore::Tx& tx) -> Result<void> {
    if (auto p = tx.put("sriov", pf.to_string(), desired.dump()); !p) return p;
    return ok();
  });
  if (!committed) return abandon(a, std::move(committed).error());
  // VF attributes and drivers the operator asked for earlier apply to the new VFs too.
  Applier more(kernel_, store_, *op);
  auto re = reapply_vf_state(more, pf);
  if (!re) {
    more.rollback();
    drift_.push_back(pf.to_string() + ": VF settings not reapplied: " + re.error().message);
  }
  (void)store_.finish_operation(*op, OperationState::done);
  // reapply_vf_state rescanned after the VFs were created; scan again only if it changed more.
  if (re && more.taken() == 0) return ok();
  return refresh_locked();
}

Result<void> Agent::set_mtu(PciAddress address, uint32_t mtu) {
  if (mtu < 68 || mtu > 65535)
    return Error::make(ErrorCode::invalid, "mtu: must be within 68..65535, got " + std::to_string(mtu), "mtu");
  MutexLock lock(mu_);
  auto s = snap();
  const DeviceView* v = s->find(address);
  if (!v) return Error::make(ErrorCode::not_found, "no PCI device " + address.to_string() + " on this host");
  if (v->device.physfn)
    return Error::make(ErrorCode::invalid,
                       address.to_string() + " is a VF: its MTU is part of its vf_config (PATCH /v1/devices/" +
                           address.to_string() + "/vf-config {\"mtu\": " + std::to_string(mtu) + "})",
                       "mtu");
  auto now = netdev_mtu(root_, address);
  if (!now) return conflict(address.to_string() + " has no netdev: there is no MTU to set", "mtu");
  // A VF may not be left with a larger MTU than its PF: every VF netdev of this PF is read now.
  if (v->device.sriov && mtu < now->mtu) {
    std::string above;
    for (uint32_t i = 0; i < v->device.sriov->num_vfs; ++i) {
      auto vf = pci::vf_address(address, *v->device.sriov, i);
      if (!vf) break;
      if (auto m = netdev_mtu(root_, *vf); m && m->mtu > mtu)
        above +=
            (above.empty() ? "" : ", ") + vf->to_string() + " (" + m->ifname + ", mtu " + std::to_string(m->mtu) + ")";
    }
    if (!above.empty())
      return conflict("mtu " + std::to_string(mtu) + " for " + address.to_string() + " (" + now->ifname +
                          ") is below the MTU of its VFs " + above + ": lower theirs first",
                      "mtu");
  }
  const std::string request = json({{"mtu", mtu}}).dump();
  auto op = store_.begin_operation(OperationKind::set_mtu, address.to_string(), request);
  if (!op) return std::move(op).error();
  Applier a(kernel_, store_, *op);
  if (auto r = apply_mtu(a, address, mtu); !r)
    return abandon(
        a, std::move(r).error().context("setting the MTU of " + now->ifname + " (" + address.to_string() + ")"));
  if (auto w = store_.put("mtu", address.to_string(), request); !w) return abandon(a, std::move(w).error());
  (void)store_.finish_operation(*op, OperationState::done);
  return refresh_devices_locked({address});
}

Result<void> Agent::set_vf_config(PciAddress vf, const VfConfig& patch) {
  if (auto r = check_vf_request(patch); !r) return r;
  MutexLock lock(mu_);
  auto s = snap();
  const DeviceView* v = s->find(vf);
  if (!v) return Error::make(ErrorCode::not_found, "no PCI device " + vf.to_string() + " on this host");
  if (!v->device.physfn || !v->device.vf_index)
    return Error::make(ErrorCode::invalid, vf.to_string() + " is not a virtual function");
  const DeviceView* pf = s->find(*v->device.physfn);
  if (!pf || pf->device.netdevs.empty())
    return Error::make(ErrorCode::conflict, "the PF " + v->device.physfn->to_string() + " of " + vf.to_string() +
                                                " has no netdev: VF attributes are set through the PF's netdev");
  const std::string ifname = pf->device.netdevs.front();
  const auto index = static_cast<uint32_t>(*v->device.vf_index);
  if (auto r = check_vf_vlan_mode(*s, *v, patch, ""); !r) return r;
  if (patch.mtu) {
    if (auto r = check_vf_mtu(*s, *v, *patch.mtu); !r) return r;
    if (v->device.netdevs.empty())
      return conflict(vf.to_string() + " has no netdev (" +
                          (v->device.driver ? "on " + *v->device.driver : std::string("no driver")) +
                          "): its MTU is set by whoever drives it",
                      "mtu");
  }
  auto vfs = kernel_.get_vfs(ifname);
  if (!vfs) return std::move(vfs).error().context("reading the VFs of " + ifname);
  auto it = std::find_if(vfs->begin(), vfs->end(), [&](const auto& x) { return x.index == index; });
  if (it == vfs->end())
    return Error::make(ErrorCode::conflict, ifname + " does not report VF " + std::to_string(index));
  const VfConfig current = it->config;

  auto op = store_.begin_operation(OperationKind::set_vf_config, vf.to_string(), vf_config_to_json(patch).dump());
  if (!op) return std::move(op).error();
  Applier a(kernel_, store_, *op);
  Result<void> applied = apply_vf_config(a, ifname, index, current, patch);
  if (applied && patch.mtu) applied = apply_mtu(a, vf, *patch.mtu);
  if (!applied)
    return abandon(a, std::move(applied).error().context("configuring VF " + std::to_string(index) + " of " + ifname +
                                                         " (" + vf.to_string() + ")"));
  const std::string key = vf_key(pf->device.address, index);
  auto committed = store_.transaction([&](StateStore::Tx& tx) -> Result<void> {
    auto prev = tx.get("vf_config", key);
    if (!prev) return std::move(prev).error();
    VfConfig desired;
    if (prev->has_value())
      if (auto p = vf_config_from_json(json::parse(**prev, nullptr, false))) desired = *p;
    return tx.put("vf_config", key, vf_config_to_json(vf_config_overlay(desired, patch)).dump());
  });
  if (!committed) return abandon(a, std::move(committed).error());
  (void)store_.finish_operation(*op, OperationState::done);
  return refresh_devices_locked({vf});
}

// Not split: the interlocks of every target are checked before the journal entry is opened, and
// the desired-state records are collected while the targets are bound, to be written in the
// transaction that ends the operation: one sequence, read best in one place.
Result<void> Agent::set_driver(PciAddress address, const DriverRequest& request) {
  MutexLock lock(mu_);
  auto s = snap();
  const DeviceView* v = s->find(address);
  if (!v) return Error::make(ErrorCode::not_found, "no PCI device " + address.to_string() + " on this host");
  if (request.driver && *request.driver != "vfio-pci" && *request.driver != "host")
    return Error::make(ErrorCode::invalid, "driver: expected vfio-pci, host or null, got '" + *request.driver + "'",
                       "driver");
  std::vector<const pci::Device*> targets;
  if (request.group) {
    if (!v->device.iommu_group)
      return Error::make(ErrorCode::invalid, address.to_string() + " is in no IOMMU group", "group");
    auto g = s->groups.find(*v->device.iommu_group);
    for (const auto& m : g->second.members)
      if (const DeviceView* mv = s->find(m); mv && !mv->device.is_bridge()) targets.push_back(&mv->device);
  } else {
    targets.push_back(&v->device);
  }
  const bool to_vfio = request.driver == std::string("vfio-pci");
  const bool to_host = request.driver == std::string("host");
  auto drivers = store_.all("driver");
  if (!drivers) return std::move(drivers).error();

  for (const auto* t : targets) {
    if (const Lease* l = book_->lease_of(t->address))
      return Error::make(ErrorCode::conflict, t->address.to_string() + " is leased (lease " + l->id + " to " +
                                                  l->consumer_kind + " " + l->consumer_name +
                                                  "): release the lease to change its driver");
    if (to_vfio && t->sriov && t->sriov->num_vfs > 0)
      return Error::make(ErrorCode::conflict, t->address.to_string() + " has " + std::to_string(t->sriov->num_vfs) +
                                                  " VFs enabled: set num_vfs to 0 before passing the PF through");
    if (!to_vfio)
      if (auto r = check_not_in_use(*t, "unbind " + t->address.to_string() + " from vfio-pci"); !r) return r;
    if (!to_host && !request.force && t->driver != std::string("vfio-pci"))
      if (auto r = check_netdev_quiet(*t); !r) return r;
  }

  auto op = store_.begin_operation(OperationKind::set_driver, address.to_string(),
                                   json({{"driver", request.driver ? json(*request.driver) : json(nullptr)},
                                         {"group", request.group},
                                         {"force", request.force}})
                                       .dump());
  if (!op) return std::move(op).error();
  Applier a(kernel_, store_, *op);
  std::map<std::string, json> records;  // desired "driver" entries to write (null: erase)
  Result<void> r = ok();
  for (const auto* t : targets) {
    const std::string key = t->address.to_string();
    json prev_record = drivers->count(key) ? json::parse(drivers->at(key), nullptr, false) : json();
    // The host driver to go back to: the one recorded when sriovd first moved the device.
    std::optional<std::string> host_driver;
    if (prev_record.is_object() && prev_record.value("previous", json()).is_string())
      host_driver = prev_record["previous"].get<std::string>();
    else if (t->driver && *t->driver != "vfio-pci") host_driver = t->driver;
    if (to_vfio) {
      r = bind(a, *t, std::string("vfio-pci"));
      records[key] = {{"driver", "vfio-pci"}, {"previous", host_driver ? json(*host_driver) : json(nullptr)}};
    } else if (to_host) {
      r = pci::restore_host_driver(root_, t->address, host_driver, a.runner());
      records[key] = nullptr;
    } else {
      r = bind(a, *t, std::nullopt);
      records[key] = {{"driver", nullptr}, {"previous", host_driver ? json(*host_driver) : json(nullptr)}};
    }
    if (!r) {
      r = std::move(r).error().context(key);
      break;
    }
  }
  if (r) {
    r = store_.transaction([&](StateStore::Tx& tx) -> Result<void> {
      for (const auto& [key, rec] : records) {
        auto w = rec.is_null() ? tx.erase("driver", key) : tx.put("driver", key, rec.dump());
        if (!w) return w;
      }
      return ok();
    });
  }
  if (!r) return abandon(a, std::move(r).error());
  (void)store_.finish_operation(*op, OperationState::done);
  std::vector<PciAddress> changed;
  changed.reserve(targets.size());
  for (const auto* t : targets) changed.push_back(t->address);
  return refresh_devices_locked(changed);
}

bool vf_config_overlay_equal(const VfConfig& current, const VfConfig& wanted) {
  // The IFLA_VF attributes only: the VF netdev's MTU is compared where it is read (sysfs).
  VfConfig now = current, want = wanted;
  now.mtu.reset();
  want.mtu.reset();
  return vf_config_overlay(now, want) == now;
}

std::optional<NetdevMtu> netdev_mtu(const pci::SysfsRoot& root, const PciAddress& address) {
  // The first of its netdevs by name, as the inventory sorts them.
  auto entries = root.list("bus/pci/devices/" + address.to_string() + "/net");
  if (!entries || entries->empty()) return std::nullopt;
  std::string first;
  for (const auto& e : *entries)
    if (first.empty() || e.name < first) first = e.name;
  auto mtu = read_netdev_mtu(root, first);
  if (!mtu) return std::nullopt;
  return NetdevMtu{first, *mtu};
}

Result<void> Agent::apply_mtu(Applier& a, const PciAddress& vf, uint32_t wanted) {
  auto now = netdev_mtu(root_, vf);
  if (!now)
    return conflict(vf.to_string() +
                        " has no netdev (it is on vfio-pci or has no driver): its MTU is set by "
                        "whoever drives it",
                    "mtu");
  if (now->mtu == wanted) return ok();
  auto r = a.run(Action::set_mtu(now->ifname, wanted), {Action::set_mtu(now->ifname, now->mtu)});
  if (!r) {
    Error e = std::move(r).error();
    if (e.field.empty()) e.field = "mtu";
    if (e.errnum == EINVAL) e.code = ErrorCode::invalid;
    return e;
  }
  return ok();
}

Result<void> Agent::check_vf_vlan_mode(const Snapshot& s, const DeviceView& vf, const VfConfig& c,
                                       const std::string& field) const {
  if (!c.vlan && !c.qos && !c.vlan_proto) return ok();
  const DeviceView* pf = vf.device.physfn ? s.find(*vf.device.physfn) : nullptr;
  if (!pf || pf->eswitch_mode != EswitchMode::switchdev) return ok();
  std::string msg = "the PF " + pf->device.address.to_string() +
                    (pf->device.netdevs.empty() ? std::string() : " (" + pf->device.netdevs.front() + ")") +
                    " is in switchdev mode: a legacy VF VLAN or QoS on " + vf.device.address.to_string() +
                    " is not available there";
  if (vf.representor) msg += "; tag on its representor " + vf.representor->netdev + " (tc, OVS or a bridge) instead";
  return Error::make(ErrorCode::conflict, msg, field + (c.vlan ? "vlan" : c.qos ? "qos" : "vlan_proto"));
}

Result<void> Agent::check_vf_mtu(const Snapshot& s, const DeviceView& vf, uint32_t mtu) const {
  const DeviceView* pf = vf.device.physfn ? s.find(*vf.device.physfn) : nullptr;
  if (!pf || !pf->mtu) return ok();
  if (mtu <= *pf->mtu) return ok();
  return Error::make(ErrorCode::invalid,
                     "mtu " + std::to_string(mtu) + " of VF " + vf.device.address.to_string() + " is above the MTU " +
                         std::to_string(*pf->mtu) + " of its PF " + pf->device.address.to_string() + " (" +
                         pf->device.netdevs.front() + "): raise the PF's first (PUT /v1/devices/" +
                         pf->device.address.to_string() + "/mtu)",
                     "mtu");
}

}  // namespace sriovd::agent
