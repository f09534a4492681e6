// Pools and leases: the Agent's half that hands devices out and takes them back.
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
#include "agent/vf_config_json.h"
#include "base/json_writer.h"
#include "base/time.h"

namespace sriovd::agent {

namespace {

// What selectors see of a device: its host driver is the one it had before a lease bound it to
// vfio-pci, so a device does not leave its pool by being leased.
Candidate candidate_of(const DeviceView& v, const Snapshot& s) {
  Candidate c;
  const pci::Device& d = v.device;
  c.address = d.address;
  c.vendor_id = d.vendor_id;
  c.device_id = d.device_id;
  c.host_driver = d.driver;
  if (s.book)
    if (const Lease* l = s.book->lease_of(d.address); l && d.driver == std::string("vfio-pci"))
      c.host_driver = l->previous_driver;
  c.netdevs = d.netdevs;
  c.numa_node = d.numa_node;
  c.is_vf = d.is_vf();
  if (d.vf_index) c.vf_index = static_cast<uint32_t>(*d.vf_index);
  if (d.physfn)
    if (const DeviceView* pf = s.find(*d.physfn); pf && !pf->device.netdevs.empty())
      c.pf_netdev = pf->device.netdevs.front();
  return c;
}

// Devices a pool may ever hand out: not bridges, not host bridges or other system devices.
bool leasable(const pci::Device& d) {
  if (!d.class_id) return true;
  uint32_t base_sub = *d.class_id >> 8;
  return base_sub != 0x0604 && base_sub != 0x0600 && base_sub != 0x0601 && (*d.class_id >> 16) != 0x08;
}

// Every device that could match: those present, and the VF slots a PF has not enabled yet.
std::vector<Candidate> possible_candidates(const Snapshot& s) {
  std::vector<Candidate> out;
  for (const auto& v : s.devices) {
    if (!leasable(v.device)) continue;
    out.push_back(candidate_of(v, s));
    const pci::Device& pf = v.device;
    if (!pf.sriov || !pf.sriov->offset || !pf.sriov->stride) continue;
    for (uint32_t i = pf.sriov->num_vfs; i < pf.sriov->total_vfs; ++i) {
      Candidate c;
      uint32_t rid = pf.address.routing_id() + *pf.sriov->offset + i * *pf.sriov->stride;
      if (rid > 0xffff) break;
      c.address = PciAddress::from_routing_id(pf.address.domain, static_cast<uint16_t>(rid));
      c.vendor_id = pf.vendor_id;
      c.device_id = pf.sriov->vf_device_id;
      c.driver_unknown = true;
      c.numa_node = pf.numa_node;
      c.is_vf = true;
      c.vf_index = i;
      if (!pf.netdevs.empty()) c.pf_netdev = pf.netdevs.front();
      out.push_back(std::move(c));
    }
  }
  return out;
}

// The other non-bridge members of `address`'s IOMMU group that are bound to a host driver, as
// "0000:87:00.1 (snd_hda_intel), ...": what stops the group being viable once `address` is on
// vfio-pci. Empty when nothing does.
std::string group_blockers(const Snapshot& s, const iommu::Group& g, const PciAddress& address) {
  std::string blockers;
  for (const auto& a : g.members) {
    if (a == address) continue;
    const DeviceView* o = s.find(a);
    if (!o || o->device.is_bridge() || iommu::driver_allows_passthrough(o->device.driver)) continue;
    blockers += (blockers.empty() ? "" : ", ") + a.to_string() + " (" + *o->device.driver + ")";
  }
  return blockers;
}

Error conflict(std::string message, std::string field = {}) {
  return Error::make(ErrorCode::conflict, std::move(message), std::move(field));
}

}  // namespace

std::vector<PoolMember> pool_members(const PoolSpec& pool, const Snapshot& snap) {
  std::vector<PoolMember> out;
  if (!snap.book) return out;
  for (const auto& v : snap.devices) {
    if (!leasable(v.device)) continue;
    Candidate c = candidate_of(v, snap);
    if (!matches(pool, c)) continue;
    // A device matching an older pool belongs to that one.
    bool older = false;
    for (const auto& p : snap.book->pools) {
      if (p.name == pool.name) break;
      if (matches(p, c)) {
        older = true;
        break;
      }
    }
    if (older) continue;
    PoolMember m;
    m.view = &v;
    m.pf = v.device.physfn.value_or(v.device.address);
    m.lease = snap.book->lease_of(v.device.address);
    const pci::Device& d = v.device;
    if (m.lease && m.lease->state == LeaseState::releasing) {
      m.healthy = false;
      m.reason = "its last release did not finish" + (m.lease->error.empty() ? std::string() : ": " + m.lease->error);
    } else if (pool.mode == PoolMode::vfio) {
      if (!d.iommu_group) {
        m.healthy = false;
        m.reason = "no IOMMU group: the IOMMU is off or the device is not behind one";
      } else if (auto g = snap.groups.find(*d.iommu_group); g != snap.groups.end()) {
        // Viable once this device is on vfio-pci: every other member must already allow it.
        std::string blockers = group_blockers(snap, g->second, d.address);
        if (!blockers.empty()) {
          m.healthy = false;
          m.reason = "IOMMU group " + std::to_string(*d.iommu_group) + " is not viable: members bound to host drivers: " + blockers;
        }
      }
    }
    if (m.healthy && d.sriov && d.sriov->num_vfs > 0 && !m.lease) {
      m.healthy = false;
      m.reason = "it has " + std::to_string(d.sriov->num_vfs) + " VFs enabled; a PF with VFs cannot be leased whole";
    }
    out.push_back(m);
  }
  return out;
}

Result<void> Agent::load_book() {
  auto book = std::make_shared<LeaseBook>();
  auto pools = store_.all("pool");
  if (!pools) return std::move(pools).error();
  std::vector<std::pair<int64_t, PoolSpec>> ordered;
  for (const auto& [name, text] : *pools) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    auto spec = pool_from_json(j.value("spec", nlohmann::json()));
    if (!spec) {
      spdlog::error("pool {} in the state store is unreadable, ignored: {}", name, spec.error().message);
      continue;
    }
    ordered.emplace_back(j.value("seq", int64_t{0}), std::move(*spec));
  }
  std::sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [seq, spec] : ordered) book->pools.push_back(std::move(spec));
  auto leases = store_.all("lease");
  if (!leases) return std::move(leases).error();
  for (const auto& [id, text] : *leases) {
    auto l = Lease::from_json(nlohmann::json::parse(text, nullptr, false));
    if (!l) {
      spdlog::error("lease {} in the state store is unreadable, ignored: {}", id, l.error().message);
      continue;
    }
    book->by_address[l->address] = l->id;
    book->leases.emplace(l->id, std::move(*l));
  }
  book_ = std::move(book);
  return ok();
}

Result<PoolSpec> Agent::create_pool(const PoolSpec& spec, bool replace) {
  std::lock_guard lock(mu_);
  auto s = snap();
  const PoolSpec* existing = book_->pool(spec.name);
  if (existing && !replace) return conflict("a pool named '" + spec.name + "' exists already", "name");
  if (!existing && replace) return Error::make(ErrorCode::not_found, "no pool named '" + spec.name + "'");
  // Overlap: any device, present or possible, that both would take.
  auto candidates = possible_candidates(*s);
  for (const auto& other : book_->pools) {
    if (other.name == spec.name) continue;
    for (const auto& c : candidates) {
      if (matches(spec, c) && matches(other, c))
        return conflict("pool '" + spec.name + "' overlaps pool '" + other.name + "': both select " +
                            c.address.to_string() + (c.driver_unknown ? " (a VF its PF can enable)" : "") +
                            "; a device belongs to at most one pool",
                        "selectors");
    }
  }
  if (existing) {
    // Leased devices must stay in the pool they were leased from.
    LeaseBook probe = *book_;
    for (auto& p : probe.pools)
      if (p.name == spec.name) p = spec;
    Snapshot view = *s;
    view.book = std::make_shared<LeaseBook>(probe);
    auto members = pool_members(spec, view);
    for (const auto& [id, l] : book_->leases) {
      if (l.pool != spec.name) continue;
      bool kept = std::any_of(members.begin(), members.end(), [&](const PoolMember& m) { return m.view->device.address == l.address; });
      if (!kept)
        return conflict("pool '" + spec.name + "' would no longer hold " + l.address.to_string() + ", leased as " + l.id, "selectors");
    }
  }
  int64_t seq = 0;
  if (auto prev = store_.get("pool", spec.name); prev && prev->has_value()) {
    seq = nlohmann::json::parse(**prev, nullptr, false).value("seq", int64_t{0});
  } else {
    seq = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  }
  nlohmann::json record = {{"spec", pool_to_json(spec)}, {"seq", seq}};
  if (auto r = store_.put("pool", spec.name, record.dump()); !r) return std::move(r).error();
  auto book = std::make_shared<LeaseBook>(*book_);
  if (existing) {
    for (auto& p : book->pools)
      if (p.name == spec.name) p = spec;
  } else {
    book->pools.push_back(spec);
  }
  book_ = std::move(book);
  auto next = std::make_shared<Snapshot>(*s);
  ++generation_;
  publish_locked(std::move(next));
  if (events_) events_->publish("pool.changed", {{"pool", spec.name}, {"change", existing ? "replaced" : "created"}});
  return spec;
}

Result<void> Agent::delete_pool(const std::string& name) {
  std::lock_guard lock(mu_);
  if (!book_->pool(name)) return Error::make(ErrorCode::not_found, "no pool named '" + name + "'");
  std::string leased;
  for (const auto& [id, l] : book_->leases)
    if (l.pool == name) leased += (leased.empty() ? "" : ", ") + l.id + " (" + l.address.to_string() + ")";
  if (!leased.empty()) return conflict("pool '" + name + "' has leases: " + leased + "; release them first");
  if (auto r = store_.erase("pool", name); !r) return r;
  auto book = std::make_shared<LeaseBook>(*book_);
  book->pools.erase(std::remove_if(book->pools.begin(), book->pools.end(), [&](const PoolSpec& p) { return p.name == name; }),
                    book->pools.end());
  book_ = std::move(book);
  auto next = std::make_shared<Snapshot>(*snap());
  ++generation_;
  publish_locked(std::move(next));
  if (events_) events_->publish("pool.changed", {{"pool", name}, {"change", "deleted"}});
  return ok();
}

Result<void> Agent::check_lease_interlocks(const DeviceView& v, const Snapshot& s, PoolMode mode) {
  const pci::Device& d = v.device;
  const std::string a = d.address.to_string();
  if (const Lease* l = book_->lease_of(d.address))
    return conflict(a + " is leased already (lease " + l->id + " to " + l->consumer_kind + " " + l->consumer_name + ")");
  if (d.physfn)
    if (const Lease* l = book_->lease_of(*d.physfn))
      return conflict(a + " is a VF of " + d.physfn->to_string() + ", which is leased whole (lease " + l->id + ")");
  if (d.sriov && d.sriov->num_vfs > 0)
    return conflict(a + " has " + std::to_string(d.sriov->num_vfs) +
                    " VFs enabled: a PF with VFs cannot be leased whole (set num_vfs to 0 first)");
  if (!leasable(d)) return conflict(a + " is a bridge or system device and cannot be leased");
  if (mode == PoolMode::vfio) {
    if (!d.iommu_group) return conflict(a + " is in no IOMMU group: is the IOMMU enabled?");
    auto g = s.groups.find(*d.iommu_group);
    if (g != s.groups.end()) {
      std::string blockers = group_blockers(s, g->second, d.address);
      if (!blockers.empty())
        return conflict("IOMMU group " + std::to_string(*d.iommu_group) + " of " + a +
                        " is not viable: other members are bound to host drivers: " + blockers);
    }
  } else if (!d.physfn) {
    return conflict(a + " is not a VF: netdev mode hands out VFs by their netdev");
  }
  return ok();
}

// The journal entry of `kind` and the lease as it is now, in one transaction: the Applier's
// Begin, so they are committed with the operation's first step (see Applier).
Agent::Applier::Begin Agent::lease_entry(OperationKind kind, const Lease& lease) {
  return [this, kind, &lease](StateStore::Tx& tx) -> Result<int64_t> {
    auto id = store_.begin_operation(kind, lease.address.to_string(), nlohmann::json({{"lease", lease.id}}).dump());
    if (!id) return std::move(id).error();
    if (auto r = tx.put("lease", lease.id, lease.record()); !r) return std::move(r).error();
    return *id;
  };
}

Result<Allocation> Agent::allocate(const AllocationRequest& req) {
  std::lock_guard lock(mu_);
  // A retry with the same Idempotency-Key gets the lease the first request made.
  if (req.idempotency_key) {
    for (const auto& [id, l] : book_->leases) {
      if (l.idempotency_key != req.idempotency_key) continue;
      if (l.consumer_kind != req.consumer_kind || l.consumer_name != req.consumer_name ||
          (req.pool && l.pool != req.pool) || (req.address && l.address != *req.address))
        return Error::make(ErrorCode::invalid,
                           "Idempotency-Key '" + *req.idempotency_key + "' was used for a different request (lease " + id + ")",
                           "Idempotency-Key");
      return Allocation{l, false};
    }
  }
  auto s = snap();
  const PoolSpec* pool = nullptr;
  if (req.pool) {
    pool = book_->pool(*req.pool);
    if (!pool) return Error::make(ErrorCode::not_found, "no pool named '" + *req.pool + "'", "pool");
  }
  const DeviceView* chosen = nullptr;
  PoolMode mode = pool ? pool->mode : PoolMode::vfio;
  if (req.address) {
    chosen = s->find(*req.address);
    if (!chosen) return Error::make(ErrorCode::not_found, "no PCI device " + req.address->to_string() + " on this host", "address");
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
    if (auto r = check_lease_interlocks(*chosen, *s, mode); !r) return std::move(r).error();
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
      if (!m.healthy || !check_lease_interlocks(*m.view, *s, mode)) {
        ++unhealthy;
        continue;
      }
      free.push_back({m.view->device.address, m.pf, m.view->device.numa_node});
    }
    auto picked = pick(free, req.policy.value_or(pool->policy), req.numa_node, load);
    if (!picked) {
      std::string state = "pool '" + pool->name + "': " + std::to_string(members.size()) + " devices, " +
                          std::to_string(leased) + " leased, " + std::to_string(unhealthy) + " unhealthy, " +
                          std::to_string(free.size()) + " free";
      if (req.numa_node && !free.empty()) state += ", none on NUMA node " + std::to_string(*req.numa_node);
      return conflict("no free device: " + state);
    }
    chosen = s->find(*picked);
  }
  const pci::Device& d = chosen->device;
  if (req.vf_config && !d.physfn)
    return Error::make(ErrorCode::invalid, d.address.to_string() + " is not a VF: vf_config applies to VFs only", "vf_config");

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
  if (wanted) {
    const DeviceView* pf = s->find(*d.physfn);
    if (!pf || pf->device.netdevs.empty() || !d.vf_index)
      return conflict("the PF of " + d.address.to_string() + " has no netdev: vf_config cannot be applied", "vf_config");
    pf_ifname = pf->device.netdevs.front();
    vf_index = static_cast<uint32_t>(*d.vf_index);
    auto vfs = kernel_.get_vfs(pf_ifname);
    if (!vfs) return std::move(vfs).error().context("reading the VFs of " + pf_ifname);
    auto it = std::find_if(vfs->begin(), vfs->end(), [&](const auto& x) { return x.index == vf_index; });
    if (it == vfs->end()) return conflict(pf_ifname + " does not report VF " + std::to_string(vf_index));
    current = it->config;
  }
  if (mode == PoolMode::vfio && d.driver != std::string("vfio-pci"))
    if (auto r = check_netdev_quiet(d); !r) return std::move(r).error();

  // The lease is written "allocating" with the journal entry, before the first change (with
  // the first step); an allocation that changes nothing in the kernel commits once.
  const Lease intent = lease;
  Applier a(kernel_, store_, lease_entry(OperationKind::allocate, intent));
  Result<void> r = ok();
  if (wanted) {
    r = apply_vf_config(a, pf_ifname, vf_index, current, *wanted);
    if (!r) {
      Error e = std::move(r).error();
      e.field = "vf_config." + e.field;
      r = std::move(e);
    }
  }
  if (r && mode == PoolMode::vfio) r = bind(a, d, std::string("vfio-pci"));
  lease.state = LeaseState::active;
  if (r) r = a.finish(OperationState::done, {}, [&](StateStore::Tx& tx) { return tx.put("lease", lease.id, lease.record()); });
  if (!r) {
    const bool attempted = a.op() != 0;  // a step was journalled: the kernel may have been changed
    a.rollback();
    (void)a.finish(OperationState::failed, r.error().message, [&](StateStore::Tx& tx) { return tx.erase("lease", lease.id); });
    if (attempted) (void)refresh_devices_locked({d.address});
    return std::move(r).error().context("leasing " + d.address.to_string());
  }
  auto book = std::make_shared<LeaseBook>(*book_);
  book->by_address[lease.address] = lease.id;
  book->leases[lease.id] = lease;
  book_ = std::move(book);
  // The device is read again when the allocation changed it; otherwise only the lease is new.
  if (a.taken()) {
    if (auto rr = refresh_devices_locked({d.address}); !rr) spdlog::warn("rescanning {}: {}", d.address.to_string(), rr.error().message);
  } else {
    ++generation_;
    publish_locked(std::make_shared<Snapshot>(*snap()));
  }
  if (events_)
    events_->publish("lease.created", {{"lease", lease.id},
                                       {"address", lease.address.to_string()},
                                       {"pool", lease.pool ? nlohmann::json(*lease.pool) : nlohmann::json(nullptr)},
                                       {"consumer", {{"kind", lease.consumer_kind}, {"name", lease.consumer_name}}}});
  return Allocation{lease, true};
}

Result<Lease> Agent::release(const std::string& id) {
  std::unique_lock lock(mu_);
  const Lease* l = book_->lease(id);
  if (!l) return Error::make(ErrorCode::not_found, "no lease " + id);
  if (lease_busy_.count(id)) return conflict("lease " + id + " is being attached or detached; try again when that is done");
  Lease lease = *l;
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
  return lease;
}

Result<void> Agent::release_locked(Lease lease, bool at_start, std::optional<Result<void>> detached) {
  const std::string addr = lease.address.to_string();
  auto fail = [&](Error e) -> Error {
    // The lease stays, "releasing", with the reason: the device is reported unhealthy and the
    // next DELETE (or the next start) tries again.
    lease.state = LeaseState::releasing;
    lease.error = e.message;
    (void)store_.put("lease", lease.id, lease.record());
    auto book = std::make_shared<LeaseBook>(*book_);
    book->leases[lease.id] = lease;
    book_ = std::move(book);
    (void)refresh_devices_locked({lease.address});
    return std::move(e).context("releasing lease " + lease.id + " (" + addr + ")");
  };
  if (lease.attached && detach_) {
    Result<void> r = detached ? std::move(*detached) : detach_(lease);
    if (!r) return fail(std::move(r).error());
    lease.attached.reset();
  }
  // The lease is written "releasing" with the journal entry, together with the first change
  // (every change of a release is a journalled step, the function reset too): a daemon killed
  // after any of them finishes the release at start.
  lease.state = LeaseState::releasing;
  const Lease intent = lease;
  Applier a(kernel_, store_, lease_entry(OperationKind::release, intent));
  auto s = snap();
  const DeviceView* v = s->find(lease.address);
  Result<void> r = ok();
  if (v) {
    const pci::Device& d = v->device;
    // 1. VF attributes back to a clean VF's.
    if (d.physfn && d.vf_index) {
      const DeviceView* pf = s->find(*d.physfn);
      if (pf && !pf->device.netdevs.empty()) {
        const std::string ifname = pf->device.netdevs.front();
        auto vfs = kernel_.get_vfs(ifname);
        if (vfs) {
          auto it = std::find_if(vfs->begin(), vfs->end(), [&](const auto& x) { return x.index == static_cast<uint32_t>(*d.vf_index); });
          if (it != vfs->end()) r = reset_vf_config(a, ifname, it->index, it->config);
        }
      }
    }
    // 2. A function-level reset, where the kernel offers one: nothing the consumer left in the
    //    device's state survives.
    if (r) {
      auto reset = pci::reset_function(root_, d.address, a.runner());
      if (!reset) r = std::move(reset).error();
      else if (!*reset) spdlog::debug("{}: no function reset", addr);
    }
    // 3. The driver it had before the lease (none, when it had none).
    if (r && d.driver != lease.previous_driver) {
      r = lease.previous_driver ? pci::restore_host_driver(root_, d.address, lease.previous_driver, a.runner())
                                : pci::unbind_driver(root_, d.address, a.runner());
    }
  }
  if (!r) {
    // Moving forward, not back: what was reset stays reset.
    (void)a.finish(OperationState::failed, r.error().message);
    return fail(std::move(r).error());
  }
  auto done = a.finish(OperationState::done, {}, [&](StateStore::Tx& tx) -> Result<void> {
    if (auto w = tx.erase("lease", lease.id); !w) return w;
    // The lease's attributes and driver are not the device's desired state any more.
    if (v && v->device.physfn && v->device.vf_index)
      if (auto w = tx.erase("vf_config", v->device.physfn->to_string() + "#" + std::to_string(*v->device.vf_index)); !w) return w;
    return ok();
  });
  if (!done) return fail(std::move(done).error());
  auto book = std::make_shared<LeaseBook>(*book_);
  book->leases.erase(lease.id);
  book->by_address.erase(lease.address);
  book_ = std::move(book);
  if (auto rr = refresh_devices_locked({lease.address}); !rr) spdlog::warn("rescanning {}: {}", addr, rr.error().message);
  if (events_)
    events_->publish("lease.released", {{"lease", lease.id},
                                        {"address", addr},
                                        {"pool", lease.pool ? nlohmann::json(*lease.pool) : nlohmann::json(nullptr)},
                                        {"at_start", at_start}});
  return ok();
}

Result<Lease> Agent::set_attachment(const std::string& id, std::optional<Attachment> attachment,
                                    const std::function<Result<void>(const Lease&)>& action) {
  std::unique_lock lock(mu_);
  const Lease* l = book_->lease(id);
  if (!l) return Error::make(ErrorCode::not_found, "no lease " + id);
  if (l->state != LeaseState::active) return conflict("lease " + id + " is " + std::string(to_string(l->state)));
  if (lease_busy_.count(id)) return conflict("lease " + id + " is being attached or detached; try again when that is done");
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
                     {{"lease", id}, {"address", lease.address.to_string()},
                      {"domain", attachment ? attachment->domain : (was ? was->domain : std::string())}});
  return lease;
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
      const std::optional<VfConfig>& wanted = l.vf_config;
      bool needs_config = wanted && v->vf_config && !(vf_config_overlay_equal(*v->vf_config, *wanted));
      if (!needs_bind && !needs_config) continue;
      auto op = store_.begin_operation(OperationKind::restore_lease, l.address.to_string(), nlohmann::json({{"lease", l.id}}).dump());
      if (!op) {
        report.drift.push_back("lease " + l.id + ": " + op.error().message);
        continue;
      }
      Applier a(kernel_, store_, *op);
      Result<void> r = ok();
      if (needs_config) {
        const DeviceView* pf = s->find(*d.physfn);
        if (pf && !pf->device.netdevs.empty() && d.vf_index)
          r = apply_vf_config(a, pf->device.netdevs.front(), static_cast<uint32_t>(*d.vf_index), *v->vf_config, *wanted);
      }
      if (r && needs_bind) r = bind(a, d, std::string("vfio-pci"));
      if (!r) {
        a.rollback();
        (void)store_.finish_operation(*op, OperationState::failed, r.error().message);
        report.drift.push_back("lease " + l.id + " (" + l.address.to_string() + "): " + r.error().message);
      } else {
        (void)store_.finish_operation(*op, OperationState::done);
        report.applied.push_back("lease " + l.id + ": " + l.address.to_string() + " restored");
      }
      (void)refresh_devices_locked({l.address});
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
      book->by_address.erase(l.address);
      book_ = std::move(book);
      report.recovered.push_back("allocation of " + l.address.to_string() + " (lease " + l.id + ") undone");
      continue;
    }
    // "releasing": finish it.
    if (auto r = release_locked(l, true); !r) {
      report.drift.push_back(r.error().message);
    } else {
      report.recovered.push_back("release of " + l.address.to_string() + " (lease " + l.id + ") finished");
    }
  }
}

}  // namespace sriovd::agent
