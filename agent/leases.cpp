// Leases: the Agent's half that hands devices out and takes them back.
//
// Durability: a lease is written ("allocating") together with the operation journal entry before
// any kernel change, and becomes "active" in the same transaction that closes the entry. A daemon
// killed in between finds the entry pending at start: its steps are undone (recover_pending) and
// the "allocating" lease is dropped, so no lease is lost that a client was told about and none
// survives that the client was not. Release writes "releasing" first and forgets the lease in the
// transaction that closes its entry; an interrupted or failed release is finished at start.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <set>

#include "agent/agent.h"
#include "agent/applier.h"
#include "agent/interlocks.h"
#include "agent/vf_config_json.h"
#include "base/json_writer.h"
#include "base/time.h"

namespace sriovd::agent {

namespace {

// The MTU every Ethernet driver gives a new netdev (ETH_DATA_LEN): what a `defaults` release
// sets back on a VF netdev whose lease set one.
constexpr uint32_t kDefaultMtu = 1500;

// The attribute group a VF attribute is set with (the field Agent::reset_vf_config notes a
// refusal under).
std::string group_field_of(const std::string& attribute) {
  if (attribute == "qos" || attribute == "vlan_proto") return "vlan";
  if (attribute == "min_tx_rate_mbps") return "max_tx_rate_mbps";
  return attribute;
}

ReleaseReport::Item item(std::string attribute, nlohmann::json wanted, nlohmann::json before,
                         std::optional<nlohmann::json> now) {
  ReleaseReport::Item i;
  i.attribute = std::move(attribute);
  if (!now) i.status = "unread";
  else if (*now != wanted) i.status = "differs";
  else i.status = before == wanted ? "unchanged" : "restored";
  i.wanted = std::move(wanted);
  i.before = std::move(before);
  i.now = now ? std::move(*now) : nlohmann::json(nullptr);
  return i;
}

// The VF's attributes a release wanted (`target`), had when it began and has now (nullopt: not
// read back), attribute by attribute. One the driver reports neither before nor after is left
// out: there is nothing to compare.
std::vector<ReleaseReport::Item> compare_vf_configs(const VfConfig& target, const VfConfig& before,
                                                    const std::optional<VfConfig>& now,
                                                    const std::map<std::string, std::string>& refused) {
  static const char* const kAttributes[] = {
      "mac", "vlan", "qos", "vlan_proto", "max_tx_rate_mbps", "min_tx_rate_mbps", "spoofchk", "trust", "link_state"};
  const nlohmann::json want = vf_config_to_json(target), was = vf_config_to_json(before);
  const nlohmann::json is = now ? vf_config_to_json(*now) : nlohmann::json::object();
  std::vector<ReleaseReport::Item> out;
  for (const char* a : kAttributes) {
    if (!want.contains(a) || (!was.contains(a) && now && !is.contains(a))) continue;
    auto i = item(a, want[a], was.contains(a) ? was[a] : nlohmann::json(nullptr),
                  is.contains(a) ? std::optional<nlohmann::json>(is[a]) : std::nullopt);
    if (i.status == "differs")
      if (auto it = refused.find(group_field_of(a)); it != refused.end()) i.error = it->second;
    out.push_back(std::move(i));
  }
  return out;
}

ReleaseReport::Item compare_driver(const std::optional<std::string>& wanted, const std::optional<std::string>& before,
                                   const std::optional<std::string>& now, bool read) {
  auto j = [](const std::optional<std::string>& d) { return d ? nlohmann::json(*d) : nlohmann::json(nullptr); };
  return item("driver", j(wanted), j(before), read ? std::optional<nlohmann::json>(j(now)) : std::nullopt);
}

// "mac 52:54:00:00:00:01, wanted 00:00:00:00:00:00 (refused: ...)" for each attribute that is not
// as wanted, for the log.
std::string describe(const ReleaseReport& r) {
  std::string out;
  for (const auto& i : r.items) {
    if (i.status != "differs" && i.status != "unread") continue;
    out += (out.empty() ? "" : "; ") + i.attribute + " " + (i.status == "unread" ? "unread" : i.now.dump()) +
           ", wanted " + i.wanted.dump() + (i.error.empty() ? "" : " (" + i.error + ")");
  }
  return out;
}

}  // namespace

// The journal entry of `kind` and the lease as it is now, in one transaction: the Applier's
// Begin, so they are committed with the operation's first step (see Applier).
Agent::Applier::Begin Agent::lease_entry(OperationKind kind, const Lease& lease) {
  return [kind, &lease](StateStore::Tx& tx) -> Result<int64_t> {
    auto id = tx.begin_operation(kind, lease.address.to_string(), nlohmann::json({{"lease", lease.id}}).dump());
    if (!id) return std::move(id).error();
    if (auto r = tx.put("lease", lease.id, lease.record()); !r) return std::move(r).error();
    return *id;
  };
}

Result<Agent::Choice> Agent::choose_device(const AllocationRequest& req, const std::shared_ptr<const Snapshot>& s) {
  const PoolSpec* pool = nullptr;
  if (req.pool) {
    pool = book_->pool(*req.pool);
    if (!pool) return Error::make(ErrorCode::not_found, "no pool named '" + *req.pool + "'", "pool");
  }
  const DeviceView* chosen = nullptr;
  PoolMode mode = pool ? pool->mode : PoolMode::vfio;
  if (req.address) {
    chosen = s->find(*req.address);
    if (!chosen)
      return Error::make(ErrorCode::not_found, "no PCI device " + req.address->to_string() + " on this host",
                         "address");
    // The device's own pool decides how it is bound.
    const PoolSpec* home = nullptr;
    for (const auto& p : book_->pools) {
      auto members = pool_members(p, *s);
      if (std::any_of(members.begin(), members.end(), [&](const PoolMember& m) { return m.view == chosen; })) {
        home = &p;
        break;
      }
    }
    if (pool && home != pool)
      return conflict(req.address->to_string() + " is not a member of pool '" + pool->name + "'", "address");
    if (home) {
      pool = home;
      mode = home->mode;
    }
    if (req.numa_node && chosen->device.numa_node != req.numa_node)
      return conflict(req.address->to_string() + " is on NUMA node " +
                          (chosen->device.numa_node ? std::to_string(*chosen->device.numa_node) : std::string("none")) +
                          ", not " + std::to_string(*req.numa_node),
                      "numa_node");
    if (auto r = check_lease_interlocks(*chosen, *s, mode, home); !r) return std::move(r).error();
    // Already on vfio-pci, it may be in a running domain's hands that sriovd did not give it to.
    if (auto r = check_not_in_use(chosen->device, "lease " + req.address->to_string()); !r) return std::move(r).error();
  } else {
    if (!pool) return Error::make(ErrorCode::invalid, "give a pool or an address", "pool");
    auto members = pool_members(*pool, *s);
    std::vector<FreeMember> free;
    std::map<PciAddress, int> load;
    size_t leased = 0, unhealthy = 0;
    for (const auto& m : members) {
      if (m.lease) {
        ++load[m.pf];
        ++leased;
        continue;
      }
      if (!m.healthy || !check_lease_interlocks(*m.view, *s, mode, pool)) {
        ++unhealthy;
        continue;
      }
      free.push_back({m.view->device.address, m.pf, m.view->device.numa_node});
    }
    // A free member on vfio-pci that a running domain or a process holds (put there by hand)
    // is not free after all: it is passed over, and the next one by policy tried.
    std::string in_use;
    size_t held = 0;
    while (!chosen) {
      auto picked = pick(free, req.policy.value_or(pool->policy), req.numa_node, load);
      if (!picked) {
        std::string state = "pool '" + pool->name + "': " + std::to_string(members.size()) + " devices, " +
                            std::to_string(leased) + " leased, " + std::to_string(unhealthy) + " unhealthy, " +
                            (held ? std::to_string(held) + " in use outside sriovd, " : std::string()) +
                            std::to_string(free.size()) + " free";
        if (req.numa_node && !free.empty()) state += ", none on NUMA node " + std::to_string(*req.numa_node);
        state += in_use;
        return conflict("no free device: " + state);
      }
      const DeviceView* v = s->find(*picked);
      if (auto r = check_not_in_use(v->device, "lease " + picked->to_string()); !r) {
        in_use += "; " + r.error().message;
        ++held;
        std::erase_if(free, [&](const FreeMember& f) { return f.address == *picked; });
        continue;
      }
      chosen = v;
    }
  }
  return Choice{chosen, pool, mode};
}

// Not split further (the choice of device is choose_device): the lease intent, its journal
// entry, the steps and the commit are the allocation's durability protocol (see the top of this
// file), which reads best in one place.
Result<Allocation> Agent::allocate(const AllocationRequest& req) {
  if (req.vf_config)
    if (auto r = check_vf_request(*req.vf_config); !r) {
      Error e = std::move(r).error();
      e.field = "vf_config." + e.field;
      return e;
    }
  MutexLock lock(mu_);
  // A retry with the same Idempotency-Key gets the lease the first request made.
  if (req.idempotency_key) {
    for (const auto& [id, l] : book_->leases) {
      if (l.idempotency_key != req.idempotency_key) continue;
      if (l.consumer_kind != req.consumer_kind || l.consumer_name != req.consumer_name ||
          (req.pool && l.pool != req.pool) || (req.address && l.address != *req.address))
        return Error::make(
            ErrorCode::invalid,
            "Idempotency-Key '" + *req.idempotency_key + "' was used for a different request (lease " + id + ")",
            "Idempotency-Key");
      // Durable before it is answered, as the first answer was (or was to be: that one may
      // have failed to sync).
      Allocation again{l, false};  // a copy: book_ may change once the lock is let go
      const uint64_t commit = store_.written();
      lock.unlock();
      if (auto w = store_.sync_through(commit); !w) return std::move(w).error();
      return again;
    }
  }
  auto s = snap();
  auto choice = choose_device(req, s);
  if (!choice) return std::move(choice).error();
  const DeviceView* chosen = choice->device;
  const PoolSpec* pool = choice->pool;
  const PoolMode mode = choice->mode;
  const pci::Device& d = chosen->device;
  if (req.vf_config && !d.physfn)
    return Error::make(ErrorCode::invalid, d.address.to_string() + " is not a VF: vf_config applies to VFs only",
                       "vf_config");

  Lease lease;
  lease.id = new_lease_id();
  if (pool) lease.pool = pool->name;
  lease.address = d.address;
  lease.consumer_kind = req.consumer_kind;
  lease.consumer_name = req.consumer_name;
  lease.vf_config = req.vf_config;
  lease.state = LeaseState::allocating;
  lease.created_at = rfc3339_utc(std::chrono::system_clock::now());
  lease.idempotency_key = req.idempotency_key;
  lease.previous_driver = d.driver;
  lease.mode = mode;

  const std::optional<VfConfig>& wanted = req.vf_config;
  std::string pf_ifname;
  uint32_t vf_index = 0;
  VfConfig current;
  const DeviceView* pf = d.physfn ? s->find(*d.physfn) : nullptr;
  const bool pf_netdev = pf && !pf->device.netdevs.empty() && d.vf_index;
  if (wanted && !pf_netdev)
    return conflict("the PF of " + d.address.to_string() + " has no netdev: vf_config cannot be applied", "vf_config");
  if (wanted)
    if (auto r = check_vf_vlan_mode(*s, *chosen, *wanted, "vf_config."); !r) return std::move(r).error();
  if (wanted && wanted->mtu) {
    // The VF's own netdev carries it, and a VF on vfio-pci has none: its guest sets its MTU.
    if (mode == PoolMode::vfio)
      return Error::make(ErrorCode::invalid,
                         "vf_config.mtu: a vfio lease takes the VF's netdev away (vfio-pci); the guest's driver sets "
                         "its MTU. mtu applies to netdev leases",
                         "vf_config.mtu");
    if (auto r = check_vf_mtu(*s, *chosen, *wanted->mtu); !r) {
      Error e = std::move(r).error();
      e.field = "vf_config.mtu";
      return e;
    }
  }
  // The VF's attributes as they are now: what the lease changes from, and what its release gives
  // back unless the pool asks for a clean VF. Read from the kernel, not the snapshot: a free VF
  // may have been changed (ip link set ... vf) without any uevent.
  const bool keep_found = pf_netdev && (!pool || pool->reset == ResetPolicy::restore);
  if (wanted || keep_found) {
    pf_ifname = pf->device.netdevs.front();
    vf_index = static_cast<uint32_t>(*d.vf_index);
    auto vfs = kernel_.get_vfs(pf_ifname);
    if (!vfs) return std::move(vfs).error().context("reading the VFs of " + pf_ifname);
    auto it = std::find_if(vfs->begin(), vfs->end(), [&](const auto& x) { return x.index == vf_index; });
    if (it == vfs->end()) return conflict(pf_ifname + " does not report VF " + std::to_string(vf_index));
    current = it->config;
    if (keep_found) {
      lease.found_vf_config = current;
      if (auto m = netdev_mtu(root_, d.address)) lease.found_vf_config->mtu = m->mtu;
    }
  }
  // The rest of its IOMMU group goes with it (checked free and in the same pool by
  // choose_device): VFIO hands a group to one user whole.
  std::vector<const DeviceView*> companions;
  if (mode == PoolMode::vfio) {
    auto c = group_companions(*chosen, *s, pool);
    if (!c) return std::move(c).error();
    companions = std::move(*c);
    for (const DeviceView* m : companions) lease.group_members.push_back({m->device.address, m->device.driver});
  }
  if (mode == PoolMode::vfio) {
    if (d.driver != std::string("vfio-pci"))
      if (auto r = check_netdev_quiet(d); !r) return std::move(r).error();
    for (const DeviceView* m : companions)
      if (m->device.driver != std::string("vfio-pci"))
        if (auto r = check_netdev_quiet(m->device); !r) return std::move(r).error();
  }

  // The lease is written "allocating" with the journal entry, before the first change (with
  // the first step); an allocation that changes nothing in the kernel commits once.
  const Lease intent = lease;
  Applier a(kernel_, store_, lease_entry(OperationKind::allocate, intent));
  Result<void> r = ok();
  if (wanted) {
    r = apply_vf_config(a, pf_ifname, vf_index, current, *wanted);
    if (r && wanted->mtu) r = apply_mtu(a, d.address, *wanted->mtu);
    if (!r) {
      Error e = std::move(r).error();
      e.field = "vf_config." + e.field;
      r = std::move(e);
    }
  }
  if (r && mode == PoolMode::vfio) r = bind(a, d, std::string("vfio-pci"));
  for (const DeviceView* m : companions) {
    if (!r) break;
    if (auto b = bind(a, m->device, std::string("vfio-pci")); !b)
      r = std::move(b).error().context("binding " + m->device.address.to_string() + ", of the same IOMMU group");
  }
  lease.state = LeaseState::active;
  if (r)
    r = a.finish(
        OperationState::done, {}, [&](StateStore::Tx& tx) { return tx.put("lease", lease.id, lease.record()); },
        Durability::group);
  if (!r) {
    const bool attempted = a.op() != 0;  // a step was journalled: the kernel may have been changed
    a.rollback();
    (void)a.finish(OperationState::failed, r.error().message,
                   [&](StateStore::Tx& tx) { return tx.erase("lease", lease.id); });
    if (attempted) (void)refresh_devices_locked(lease.addresses());
    return std::move(r).error().context("leasing " + d.address.to_string());
  }
  auto book = std::make_shared<LeaseBook>(*book_);
  for (const PciAddress& m : lease.addresses()) book->by_address[m] = lease.id;
  book->leases[lease.id] = lease;
  book_ = std::move(book);
  // The device is read again when the allocation changed it; otherwise only the lease is new.
  if (a.taken()) {
    if (auto rr = refresh_devices_locked(lease.addresses()); !rr)
      spdlog::warn("rescanning {}: {}", d.address.to_string(), rr.error().message);
  } else {
    ++generation_;
    publish_locked(std::make_shared<Snapshot>(*snap()));
  }
  if (events_)
    events_->publish("lease.created", {{"lease", lease.id},
                                       {"address", lease.address.to_string()},
                                       {"pool", lease.pool ? nlohmann::json(*lease.pool) : nlohmann::json(nullptr)},
                                       {"consumer", {{"kind", lease.consumer_kind}, {"name", lease.consumer_name}}}});
  // The lease is on disk before its answer: synced without the agent's lock, one sync for every
  // lease committed meanwhile (group commit). It is in the snapshot and on the event stream a
  // little earlier: a power loss in between loses a lease its own client was never told of.
  const uint64_t commit = store_.written();
  lock.unlock();
  if (auto w = store_.sync_through(commit); !w)
    return std::move(w).error().context("lease " + lease.id + " of " + d.address.to_string() + " is not on disk");
  return Allocation{lease, true};
}

Result<Lease> Agent::release(const std::string& id) {
  MutexLock lock(mu_);
  const Lease* l = book_->lease(id);
  if (!l) return Error::make(ErrorCode::not_found, "no lease " + id);
  if (lease_busy_.count(id))
    return conflict("lease " + id + " is being attached or detached; try again when that is done");
  Lease lease = *l;
  // Refused before anything changes while a running domain or a process uses the device — the
  // kernel's unbind would wait for it without a bound — unless what uses it is the lease's own
  // live attachment, which the detach below takes away first (release_locked asks again).
  if (!(lease.attached && lease.attached->live && detach_))
    if (const DeviceView* v = snap()->find(lease.address))
      if (auto r = check_not_in_use(v->device, "release lease " + id); !r) return std::move(r).error();
  std::optional<Result<void>> detached;
  if (lease.attached && detach_) {
    // A live detach waits for the guest (up to its deadline): without the agent's lock, so other
    // changes go on meanwhile. The lease is marked busy, so no one else attaches or releases it.
    lease_busy_.insert(id);
    lock.unlock();
    detached = detach_(lease);
    lock.lock();
    lease_busy_.erase(id);
    l = book_->lease(id);
    if (!l) return Error::make(ErrorCode::not_found, "no lease " + id);
    lease = *l;
  }
  if (auto r = release_locked(lease, false, std::move(detached)); !r) return std::move(r).error();
  // Forgotten on disk before the answer (group commit, as for allocate).
  const uint64_t commit = store_.written();
  lock.unlock();
  if (auto w = store_.sync_through(commit); !w)
    return std::move(w).error().context("the release of lease " + id + " is not on disk");
  return lease;
}

Result<void> Agent::reset_and_restore(Applier& a, Lease& lease, const pci::Device& d,
                                      const std::optional<std::string>& previous_driver, Result<void> r) {
  const std::string addr = d.address.to_string();
  // 2. A function-level reset, where the kernel offers one: nothing the consumer left in the
  //    device's state survives.
  if (r) {
    auto reset = pci::reset_function(root_, d.address, a.runner());
    if (reset) {
      if (lease.reset != "failed") lease.reset = *reset ? "done" : "unavailable";
    } else if (reset.error().errnum == ENOTTY || reset.error().errnum == EINVAL) {
      // The kernel did not reset the function (no method worked). The release goes on, as
      // vfio-pci itself carries on when its reset at close fails: the device goes back to its
      // driver, and the answer and the event say that it was not reset.
      lease.reset = "failed";
      lease.reset_error += (lease.reset_error.empty() ? "" : "; ") + reset.error().message;
      spdlog::warn("{}: released without a function reset: {}", addr, reset.error().message);
    } else {
      r = std::move(reset).error();
    }
  }
  // 3. The driver it had before the lease (none, when it had none).
  if (r && d.driver != previous_driver) {
    r = previous_driver ? pci::restore_host_driver(root_, d.address, previous_driver, a.runner())
                        : pci::unbind_driver(root_, d.address, a.runner());
  }
  return r;
}

Result<void> Agent::release_locked(Lease& lease, bool at_start, std::optional<Result<void>> detached) {
  const std::string addr = lease.address.to_string();
  auto fail = [&](Error e) SRIOVD_REQUIRES(mu_) -> Error {
    // The lease stays, "releasing", with the reason: the device is reported unhealthy and the
    // next DELETE (or the next start) tries again.
    lease.state = LeaseState::releasing;
    lease.error = e.message;
    (void)store_.put("lease", lease.id, lease.record());
    auto book = std::make_shared<LeaseBook>(*book_);
    book->leases[lease.id] = lease;
    book_ = std::move(book);
    (void)refresh_devices_locked(lease.addresses());
    return std::move(e).context("releasing lease " + lease.id + " (" + addr + ")");
  };
  const bool was_attached = lease.attached.has_value();
  if (lease.attached && detach_) {
    Result<void> r = detached ? std::move(*detached) : detach_(lease);
    if (!r) return fail(std::move(r).error());
    lease.attached.reset();
  }
  auto s = snap();
  const DeviceView* v = s->find(lease.address);
  // Nothing may use the device while it is reset and unbound (see release()). An active lease
  // refused here stays active, as it was (only no longer attached, if the detach above went
  // through); a lease already "releasing" keeps the reason.
  if (v)
    if (auto in_use = check_not_in_use(v->device, "release lease " + lease.id); !in_use) {
      if (lease.state != LeaseState::active) return fail(std::move(in_use).error());
      if (was_attached && !lease.attached) {
        (void)store_.put("lease", lease.id, lease.record());
        auto book = std::make_shared<LeaseBook>(*book_);
        book->leases[lease.id] = lease;
        book_ = std::move(book);
        ++generation_;
        publish_locked(std::make_shared<Snapshot>(*snap()));
      }
      return std::move(in_use).error();
    }
  // The lease is written "releasing" with the journal entry, together with the first change
  // (every change of a release is a journalled step, the function reset too): a daemon killed
  // after any of them finishes the release at start.
  lease.state = LeaseState::releasing;
  const Lease intent = lease;
  Applier a(kernel_, store_, lease_entry(OperationKind::release, intent));
  Result<void> r = ok();
  // What the release gives back, for its report: the VF's attributes (those it had when leased,
  // or a clean VF's) and, when its PF has a netdev, what they were before.
  ReleaseReport report;
  report.reset_to = lease.found_vf_config ? "found" : "defaults";
  const VfConfig target =
      lease.found_vf_config ? vf_config_overlay(clean_vf_config(), *lease.found_vf_config) : clean_vf_config();
  std::optional<VfConfig> before;
  std::map<std::string, std::string> refused;
  std::string pf_ifname;
  std::optional<std::string> driver_before;
  std::optional<uint32_t> mtu_wanted, mtu_before;
  if (v) {
    const pci::Device& d = v->device;
    driver_before = d.driver;
    // 1. VF attributes back to what was found (or a clean VF's). A value the driver refuses now
    //    is in the report; the release goes on.
    if (d.physfn && d.vf_index) {
      const DeviceView* pf = s->find(*d.physfn);
      if (pf && !pf->device.netdevs.empty()) {
        pf_ifname = pf->device.netdevs.front();
        auto vfs = kernel_.get_vfs(pf_ifname);
        if (vfs) {
          auto it = std::find_if(vfs->begin(), vfs->end(),
                                 [&](const auto& x) { return x.index == static_cast<uint32_t>(*d.vf_index); });
          if (it != vfs->end()) {
            before = it->config;
            r = reset_vf_config(a, pf_ifname, it->index, it->config, target, &refused);
          }
        }
      }
    }
    // 2. and 3. for the device, then for the rest of its IOMMU group that went with it.
    r = reset_and_restore(a, lease, d, lease.previous_driver, std::move(r));
    // 4. The VF netdev's MTU, once its host driver has it again (a vfio lease's VF has a new
    //    netdev now): as found, or the default when a `defaults` release follows a lease that
    //    set one.
    if (lease.found_vf_config && lease.found_vf_config->mtu) mtu_wanted = lease.found_vf_config->mtu;
    else if (!lease.found_vf_config && lease.vf_config && lease.vf_config->mtu) mtu_wanted = kDefaultMtu;
    if (r && mtu_wanted) {
      mtu_before = v->mtu;
      if (auto m = apply_mtu(a, d.address, *mtu_wanted); !m) {
        if (m.error().code == ErrorCode::invalid) refused["mtu"] = m.error().message;
        else if (m.error().code != ErrorCode::conflict) r = std::move(m).error();  // conflict: no netdev
      }
    }
  }
  for (const auto& m : lease.group_members)
    if (const DeviceView* mv = s->find(m.address); mv && r)
      r = reset_and_restore(a, lease, mv->device, m.previous_driver, std::move(r));
  if (!r) {
    // Moving forward, not back: what was reset stays reset.
    (void)a.finish(OperationState::failed, r.error().message);
    return fail(std::move(r).error());
  }
  // A release at start is synced here; one a client asked for by release(), after the lock.
  auto done = a.finish(
      OperationState::done, {},
      [&](StateStore::Tx& tx) -> Result<void> {
        if (auto w = tx.erase("lease", lease.id); !w) return w;
        // Reset to a clean VF's, the attributes the desired state held for it are gone (given
        // back as found, they are what they were).
        if (v && v->device.physfn && v->device.vf_index && !lease.found_vf_config)
          if (auto w = tx.erase("vf_config", v->device.physfn->to_string() + "#" + std::to_string(*v->device.vf_index));
              !w)
            return w;
        return ok();
      },
      at_start ? Durability::power_loss : Durability::group);
  if (!done) return fail(std::move(done).error());
  auto book = std::make_shared<LeaseBook>(*book_);
  book->leases.erase(lease.id);
  for (const PciAddress& m : lease.addresses()) book->by_address.erase(m);
  book_ = std::move(book);
  if (auto rr = refresh_devices_locked(lease.addresses()); !rr)
    spdlog::warn("rescanning {}: {}", addr, rr.error().message);
  // Read back and compared: the VF's attributes (one more RTM_GETLINK) and its driver.
  if (before) {
    std::optional<VfConfig> now;
    if (auto vfs = kernel_.get_vfs(pf_ifname); vfs) {
      auto it = std::find_if(vfs->begin(), vfs->end(),
                             [&](const auto& x) { return x.index == static_cast<uint32_t>(*v->device.vf_index); });
      if (it != vfs->end()) now = it->config;
    }
    report.items = compare_vf_configs(target, *before, now, refused);
  }
  if (mtu_wanted) {
    auto j = [](std::optional<uint32_t> m) { return m ? nlohmann::json(*m) : nlohmann::json(nullptr); };
    auto now = netdev_mtu(root_, lease.address);
    auto i = item("mtu", *mtu_wanted, j(mtu_before), now ? std::optional<nlohmann::json>(now->mtu) : std::nullopt);
    if (i.status == "differs")
      if (auto it = refused.find("mtu"); it != refused.end()) i.error = it->second;
    report.items.push_back(std::move(i));
  }
  if (v) {
    const DeviceView* after = snap()->find(lease.address);
    report.items.push_back(compare_driver(lease.previous_driver, driver_before,
                                          after ? after->device.driver : std::nullopt, after != nullptr));
  }
  if (!report.clean())
    spdlog::warn("lease {} of {} released, but not as it was found: {}", lease.id, addr, describe(report));
  lease.release_report = std::move(report);
  if (events_) {
    nlohmann::json ev = {{"lease", lease.id},
                         {"address", addr},
                         {"pool", lease.pool ? nlohmann::json(*lease.pool) : nlohmann::json(nullptr)},
                         {"at_start", at_start}};
    if (!lease.reset.empty()) ev["reset"] = lease.reset;
    if (!lease.reset_error.empty()) ev["reset_error"] = lease.reset_error;
    std::string text;
    JsonWriter w(text);
    lease.release_report->write(w);
    ev["release_report"] = nlohmann::json::parse(text);
    events_->publish("lease.released", ev);
  }
  return ok();
}

Result<Lease> Agent::set_attachment(const std::string& id, std::optional<Attachment> attachment,
                                    const std::function<Result<void>(const Lease&)>& action) {
  MutexLock lock(mu_);
  const Lease* l = book_->lease(id);
  if (!l) return Error::make(ErrorCode::not_found, "no lease " + id);
  if (l->state != LeaseState::active) return conflict("lease " + id + " is " + std::string(to_string(l->state)));
  if (lease_busy_.count(id))
    return conflict("lease " + id + " is being attached or detached; try again when that is done");
  Lease lease = *l;
  if (attachment && lease.attached)
    return conflict("lease " + id + " is attached to domain '" + lease.attached->domain + "' already; detach it first");
  if (!attachment && !lease.attached) return conflict("lease " + id + " is not attached to a domain");
  if (action) {
    // libvirt (a live detach waits for the guest) without the agent's lock; the lease is busy
    // meanwhile: another attach, detach or release of it is refused, every other change goes on.
    lease_busy_.insert(id);
    lock.unlock();
    auto r = action(lease);
    lock.lock();
    lease_busy_.erase(id);
    if (!r) return std::move(r).error();
    l = book_->lease(id);
    if (!l) return Error::make(ErrorCode::not_found, "no lease " + id);
    lease = *l;
  }
  const std::optional<Attachment> was = l->attached;
  lease.attached = attachment;
  if (auto r = store_.put("lease", id, lease.record()); !r) return std::move(r).error();
  auto book = std::make_shared<LeaseBook>(*book_);
  book->leases[id] = lease;
  book_ = std::move(book);
  auto next = std::make_shared<Snapshot>(*snap());
  ++generation_;
  publish_locked(std::move(next));
  if (events_)
    events_->publish(attachment ? "lease.attached" : "lease.detached",
                     {{"lease", id},
                      {"address", lease.address.to_string()},
                      {"domain", attachment ? attachment->domain : (was ? was->domain : std::string())}});
  return lease;
}

}  // namespace sriovd::agent
