// The Agent's reconcile: at start, undo the operations a stopped daemon left pending, bring the
// host to the desired state (VFs, their attributes, drivers), then finish the leases left
// half-allocated or half-released and give active leases their devices back as handed out.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "agent/applier.h"
#include "agent/vf_config_json.h"
#include "pci/decode.h"
#include "pci/paths.h"

namespace sriovd::agent {

using nlohmann::json;

Result<void> Agent::check_vfs_not_in_use(const std::string& numvfs_path) {
  // numvfs_path is pci::device_file(pf, "sriov_numvfs"): the PF's directory holds a virtfnN
  // link per VF. Any error reading them refuses (fail closed).
  const std::string dir = numvfs_path.substr(0, numvfs_path.size() - std::string_view("/sriov_numvfs").size());
  auto entries = root_.list(dir);
  if (!entries) return std::move(entries).error().context("listing the VFs in " + dir);
  for (const auto& e : *entries) {
    if (!pci::virtfn_index(e.name)) continue;
    auto target = root_.readlink(dir + "/" + e.name);
    if (!target) return std::move(target).error().context("reading " + dir + "/" + e.name);
    auto vf = pci::address_from_link(*target);
    if (!vf) return Error::make(ErrorCode::internal, dir + "/" + e.name + " -> " + *target + " names no PCI address");
    auto driver = root_.readlink(pci::device_file(*vf, "driver"));
    if (!driver || pci::driver_from_link(*driver) != std::string("vfio-pci")) continue;
    pci::Device d;
    d.address = *vf;
    d.driver = "vfio-pci";
    if (auto r = check_not_in_use(d, "undo the VF count change that created " + vf->to_string()); !r) return r;
  }
  return ok();
}

Result<void> Agent::recover_pending(ReconcileReport& report) {
  auto pending = store_.operations_in_state(OperationState::pending);
  if (!pending) return std::move(pending).error();
  const std::string vfio_unbind = pci::driver_file("vfio-pci", "unbind");
  for (const auto& op : *pending) {
    std::string what = std::string(to_string(op.kind)) + " " + op.target + " (operation " + std::to_string(op.id) + ")";
    // Steps were journalled before they were taken: undo them all, newest first. Undo actions
    // set old values back, so undoing a step that never happened changes nothing.
    std::vector<std::string> failures;
    std::optional<Error> held;
    for (auto it = op.steps.rbegin(); it != op.steps.rend() && !held; ++it) {
      auto step = json::parse(*it, nullptr, false);
      if (!step.is_object() || !step["undo"].is_array()) continue;
      for (const auto& u : step["undo"]) {
        auto action = Action::from_json(u);
        if (!action) continue;
        // A device the operation bound to vfio-pci may have been opened since (a VM started
        // with it while the daemon was down): unbinding it would hang the start until the VM
        // stops. The undo stops there, and the device stays as it is, reported as drift.
        if (!action->config && action->path == vfio_unbind)
          if (auto a = PciAddress::parse(action->value)) {
            pci::Device d;
            d.address = *a;
            d.driver = "vfio-pci";
            if (auto r = check_not_in_use(d, "undo the binding of " + a->to_string() + " to vfio-pci"); !r) {
              held = std::move(r).error();
              break;
            }
          }
        // An undo that removes VFs (sriov_numvfs back to 0) unbinds each of them from its
        // driver: the same wait for a VF on vfio-pci that a VM opened since.
        if (!action->config && action->value == "0" && action->path.ends_with("/sriov_numvfs"))
          if (auto r = check_vfs_not_in_use(action->path); !r) {
            held = std::move(r).error();
            break;
          }
        if (auto r = perform(kernel_, *action); !r) failures.push_back(action->describe() + ": " + r.error().message);
      }
    }
    for (const auto& f : failures) spdlog::debug("recovering {}: {}", what, f);
    if (held) {
      (void)store_.finish_operation(op.id, OperationState::failed,
                                    "interrupted, and not undone further: " + held->message);
      report.drift.push_back(what + " not undone further: " + held->message);
      spdlog::warn("could not undo all of interrupted {}: {}", what, held->message);
      continue;
    }
    (void)store_.finish_operation(op.id, OperationState::rolled_back, "interrupted: the daemon stopped mid-operation");
    report.recovered.push_back(what);
    spdlog::warn("undid interrupted {}", what);
  }
  return ok();
}

// VFs first: attributes and drivers of VFs need the VFs. True when the host was changed.
bool Agent::reconcile_num_vfs(ReconcileReport& report, const Journal& journal) {
  bool changed = false;
  if (auto sriov = store_.all("sriov")) {
    for (const auto& [key, text] : *sriov) {
      auto pf = PciAddress::parse(key);
      auto j = json::parse(text, nullptr, false);
      if (!pf || !j.is_object() || !j["num_vfs"].is_number_unsigned()) continue;
      uint32_t want = j["num_vfs"].get<uint32_t>();
      auto s = snap();
      const DeviceView* v = s->find(*pf);
      if (!v || !v->device.sriov) {
        report.drift.push_back(key + ": desired num_vfs " + std::to_string(want) + " but the PF is absent");
        continue;
      }
      uint32_t cur = v->device.sriov->num_vfs;
      std::optional<bool> autoprobe;
      if (j.contains("drivers_autoprobe") && j["drivers_autoprobe"].is_boolean())
        autoprobe = j["drivers_autoprobe"].get<bool>();
      const bool autoprobe_off = autoprobe && v->device.sriov->drivers_autoprobe != autoprobe;
      if (cur == want && !autoprobe_off) continue;
      auto id = journal();
      if (!id) {
        report.drift.push_back(key + ": " + id.error().message);
        continue;
      }
      Applier a(kernel_, store_, *id);
      // Autoprobe first: after a reboot it is back to 1, and the VFs must not meet a driver.
      Result<void> r = change_autoprobe(a, v->device, autoprobe);
      if (r) r = pci::change_num_vfs(*pf, cur, want, a.runner());
      changed = true;
      if (!r) {
        a.rollback();
        report.drift.push_back(key + ": num_vfs " + std::to_string(cur) + ", desired " + std::to_string(want) + ": " +
                               r.error().message);
      } else {
        report.applied.push_back(key + ": num_vfs " + std::to_string(cur) + " -> " + std::to_string(want) +
                                 (autoprobe_off ? ", drivers_autoprobe " + std::string(*autoprobe ? "1" : "0") : ""));
      }
      (void)refresh_locked();
    }
  }
  return changed;
}

// Netdev MTUs of PFs (and other devices that are not VFs).
bool Agent::reconcile_mtus(ReconcileReport& report, const Journal& journal) {
  bool changed = false;
  auto mtus = store_.all("mtu");
  if (!mtus) return false;
  for (const auto& [key, text] : *mtus) {
    auto addr = PciAddress::parse(key);
    auto j = json::parse(text, nullptr, false);
    if (!addr || !j.is_object() || !j["mtu"].is_number_unsigned()) continue;
    const auto want = j["mtu"].get<uint32_t>();
    auto now = netdev_mtu(root_, *addr);
    if (!now) {
      report.drift.push_back(key + ": desired mtu " + std::to_string(want) + " but the device or its netdev is absent");
      continue;
    }
    if (now->mtu == want) continue;
    auto id = journal();
    if (!id) {
      report.drift.push_back(key + ": " + id.error().message);
      continue;
    }
    Applier a(kernel_, store_, *id);
    auto r = apply_mtu(a, *addr, want);
    changed = true;
    if (!r) {
      a.rollback();
      report.drift.push_back(key + ": mtu " + std::to_string(now->mtu) + ", desired " + std::to_string(want) + ": " +
                             r.error().message);
    } else {
      report.applied.push_back(key + ": mtu of " + now->ifname + " " + std::to_string(now->mtu) + " -> " +
                               std::to_string(want));
    }
    (void)refresh_devices_locked({*addr});
  }
  return changed;
}

// VF attributes, per PF.
bool Agent::reconcile_vf_configs(ReconcileReport& report, const Journal& journal) {
  bool changed = false;
  if (auto configs = store_.all("vf_config")) {
    std::map<std::string, std::vector<VfInfo>> vfs_of;
    for (const auto& [key, text] : *configs) {
      auto hash = key.find('#');
      auto pf = PciAddress::parse(key.substr(0, hash));
      auto wanted = vf_config_from_json(json::parse(text, nullptr, false));
      if (!pf || hash == std::string::npos || !wanted) continue;
      uint32_t index = static_cast<uint32_t>(std::stoul(key.substr(hash + 1)));
      auto s = snap();
      const DeviceView* v = s->find(*pf);
      if (!v || v->device.netdevs.empty()) {
        report.drift.push_back(key + ": VF attributes desired but the PF or its netdev is absent");
        continue;
      }
      const std::string ifname = v->device.netdevs.front();
      if (!vfs_of.count(ifname)) {
        auto got = kernel_.get_vfs(ifname);
        vfs_of[ifname] = got ? *got : std::vector<VfInfo>{};
      }
      const auto& list = vfs_of[ifname];
      auto it = std::find_if(list.begin(), list.end(), [&](const auto& x) { return x.index == index; });
      if (it == list.end()) {
        std::string drift = key + ": VF attributes desired but ";
        drift += ifname;
        drift += " has no VF " + std::to_string(index);
        report.drift.push_back(std::move(drift));
        continue;
      }
      // The VF netdev's MTU, while a host driver gives it one (on vfio-pci its guest sets it).
      std::optional<PciAddress> vf;
      if (v->device.sriov) vf = pci::vf_address(*pf, *v->device.sriov, index);
      std::optional<NetdevMtu> mtu_now;
      if (wanted->mtu && vf) mtu_now = netdev_mtu(root_, *vf);
      const bool mtu_differs = mtu_now && mtu_now->mtu != *wanted->mtu;
      if (vf_config_overlay_equal(it->config, *wanted) && !mtu_differs) continue;
      auto id = journal();
      if (!id) {
        report.drift.push_back(key + ": " + id.error().message);
        continue;
      }
      Applier a(kernel_, store_, *id);
      auto r = apply_vf_config(a, ifname, index, it->config, *wanted);
      if (r && mtu_differs) r = apply_mtu(a, *vf, *wanted->mtu);
      changed = changed || a.taken() > 0 || !r;
      if (!r) {
        a.rollback();
        report.drift.push_back(key + ": " + r.error().message);
      } else if (a.taken() > 0) {
        report.applied.push_back(key + ": VF attributes restored");
      }
    }
  }
  return changed;
}

// Drivers, on a host rescanned first when `changed` (VFs were recreated or changed).
bool Agent::reconcile_drivers(ReconcileReport& report, const Journal& journal, bool changed) {
  if (auto drivers = store_.all("driver")) {
    if (changed) (void)refresh_locked();
    for (const auto& [key, text] : *drivers) {
      auto addr = PciAddress::parse(key);
      auto j = json::parse(text, nullptr, false);
      if (!addr || !j.is_object() || !j.contains("driver")) continue;
      std::optional<std::string> want;
      if (j["driver"].is_string()) want = j["driver"].get<std::string>();
      auto s = snap();
      const DeviceView* v = s->find(*addr);
      if (!v) {
        report.drift.push_back(key + ": driver " + want.value_or("none") + " desired but the device is absent");
        continue;
      }
      if (v->device.driver == want) continue;
      if (want != std::string("vfio-pci"))
        if (auto r = check_not_in_use(v->device, "unbind " + key + " from vfio-pci"); !r) {
          report.drift.push_back(key + ": driver vfio-pci, desired " + want.value_or("none") + ": " +
                                 r.error().message);
          continue;
        }
      auto id = journal();
      if (!id) {
        report.drift.push_back(key + ": " + id.error().message);
        continue;
      }
      Applier a(kernel_, store_, *id);
      changed = true;
      if (auto r = bind(a, v->device, want); !r) {
        a.rollback();
        report.drift.push_back(key + ": driver " + v->device.driver.value_or("none") + ", desired " +
                               want.value_or("none") + ": " + r.error().message);
      } else {
        report.applied.push_back(key + ": bound to " + want.value_or("no driver"));
      }
    }
  }
  return changed;
}

ReconcileReport Agent::reconcile() {
  MutexLock lock(mu_);
  ReconcileReport report;
  drift_.clear();
  if (auto r = recover_pending(report); !r) report.drift.push_back("operation journal: " + r.error().message);
  if (auto r = refresh_locked(); !r) {
    report.drift.push_back("inventory: " + r.error().message);
    drift_ = report.drift;
    return report;
  }
  // The journal entry is written only once there is something to change: a host that already
  // matches its desired state costs no write and no rescan (this runs at every start).
  std::optional<int64_t> op;
  Journal journal = [&]() -> Result<int64_t> {
    if (!op) {
      auto id = store_.begin_operation(OperationKind::reconcile, "host", "{}");
      if (!id) return std::move(id).error();
      op = *id;
    }
    return *op;
  };
  bool changed = reconcile_num_vfs(report, journal);
  // PF MTUs before the VFs': a VF's may not exceed its PF's.
  changed = reconcile_mtus(report, journal) || changed;
  changed = reconcile_vf_configs(report, journal) || changed;
  changed = reconcile_drivers(report, journal, changed);
  if (changed) (void)refresh_locked();
  changed = false;
  // Leases last: their devices exist again and carry their desired drivers.
  {
    size_t before = report.applied.size() + report.recovered.size();
    recover_leases(report);
    changed = report.applied.size() + report.recovered.size() != before;
  }
  if (op)
    (void)store_.finish_operation(*op, report.drift.empty() ? OperationState::done : OperationState::failed,
                                  report.drift.empty() ? "" : std::to_string(report.drift.size()) + " drift(s)");
  drift_ = report.drift;
  for (const auto& d : report.drift) spdlog::warn("drift: {}", d);
  for (const auto& a : report.applied) spdlog::info("reconcile: {}", a);
  // Republish when the host changed, or to carry the drift on /v1/host.
  if (changed || !drift_.empty()) (void)refresh_locked();
  return report;
}

void Agent::recover_leases(ReconcileReport& report) {
  std::vector<Lease> todo;
  for (const auto& [id, l] : book_->leases) todo.push_back(l);
  for (auto& l : todo) {
    if (l.state == LeaseState::active) {
      // After a reboot the VF is back with the driver's defaults: give the lease its device back
      // as it was handed out.
      auto s = snap();
      const DeviceView* v = s->find(l.address);
      if (!v) {
        report.drift.push_back("lease " + l.id + ": " + l.address.to_string() + " is absent");
        continue;
      }
      const pci::Device& d = v->device;
      bool needs_bind = l.mode == PoolMode::vfio && d.driver != std::string("vfio-pci");
      std::vector<const DeviceView*> members;  // the rest of the group, back on vfio-pci with it
      for (const auto& m : l.group_members)
        if (const DeviceView* mv = s->find(m.address); mv && mv->device.driver != std::string("vfio-pci")) {
          members.push_back(mv);
          needs_bind = true;
        }
      const std::optional<VfConfig>& wanted = l.vf_config;
      bool needs_config = wanted && v->vf_config && !(vf_config_overlay_equal(*v->vf_config, *wanted));
      if (!needs_bind && !needs_config) continue;
      auto op = store_.begin_operation(OperationKind::restore_lease, l.address.to_string(),
                                       nlohmann::json({{"lease", l.id}}).dump());
      if (!op) {
        report.drift.push_back("lease " + l.id + ": " + op.error().message);
        continue;
      }
      Applier a(kernel_, store_, *op);
      Result<void> r = ok();
      if (needs_config) {
        const DeviceView* pf = s->find(*d.physfn);
        if (pf && !pf->device.netdevs.empty() && d.vf_index)
          r = apply_vf_config(a, pf->device.netdevs.front(), static_cast<uint32_t>(*d.vf_index), *v->vf_config,
                              *wanted);
      }
      if (r && needs_bind && d.driver != std::string("vfio-pci")) r = bind(a, d, std::string("vfio-pci"));
      for (const DeviceView* mv : members)
        if (r) r = bind(a, mv->device, std::string("vfio-pci"));
      if (!r) {
        a.rollback();
        (void)store_.finish_operation(*op, OperationState::failed, r.error().message);
        report.drift.push_back("lease " + l.id + " (" + l.address.to_string() + "): " + r.error().message);
      } else {
        (void)store_.finish_operation(*op, OperationState::done);
        report.applied.push_back("lease " + l.id + ": " + l.address.to_string() + " restored");
      }
      (void)refresh_devices_locked(l.addresses());
      continue;
    }
    if (l.state == LeaseState::allocating) {
      // recover_pending undid its steps already; the client never heard of it.
      if (auto r = store_.erase("lease", l.id); !r) {
        report.drift.push_back("lease " + l.id + ": " + r.error().message);
        continue;
      }
      auto book = std::make_shared<LeaseBook>(*book_);
      book->leases.erase(l.id);
      for (const PciAddress& m : l.addresses()) book->by_address.erase(m);
      book_ = std::move(book);
      report.recovered.push_back("allocation of " + l.address.to_string() + " (lease " + l.id + ") undone");
      continue;
    }
    // "releasing": finish it.
    if (auto r = release_locked(l, true); !r) {
      report.drift.push_back(r.error().message);
    } else {
      report.recovered.push_back("release of " + l.address.to_string() + " (lease " + l.id + ") finished" +
                                 (l.reset == "failed" ? ", without a function reset: " + l.reset_error : ""));
    }
  }
}

}  // namespace sriovd::agent
