// The Agent's pools: which devices each pool holds (its selectors over the host, the oldest
// pool winning a device several match), and pool creation, replacement and deletion.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "agent/interlocks.h"

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
  c.pf_address = d.physfn;
  if (!d.physfn) {
    c.pf_altnames = v.altnames;
    c.link_type = v.link_type;
    c.rdma = v.rdma;
  }
  if (d.physfn)
    if (const DeviceView* pf = s.find(*d.physfn)) {
      c.link_type = pf->link_type;
      c.rdma = pf->rdma;
      if (!pf->device.netdevs.empty()) {
        c.pf_netdev = pf->device.netdevs.front();
        c.pf_altnames = pf->altnames;
      }
    }
  return c;
}

// Every device that could match: those present, and the VF slots a PF has not enabled yet.
std::vector<Candidate> possible_candidates(const Snapshot& s) {
  std::vector<Candidate> out;
  for (const auto& v : s.devices) {
    if (!leasable(v.device)) continue;
    out.push_back(candidate_of(v, s));
    const pci::Device& pf = v.device;
    if (!pf.sriov) continue;
    for (uint32_t i = pf.sriov->num_vfs; i < pf.sriov->total_vfs; ++i) {
      auto vf = pci::vf_address(pf.address, *pf.sriov, i);
      if (!vf) break;
      Candidate c;
      c.address = *vf;
      c.vendor_id = pf.vendor_id;
      c.device_id = pf.sriov->vf_device_id;
      c.driver_unknown = true;
      c.numa_node = pf.numa_node;
      c.is_vf = true;
      c.vf_index = i;
      c.pf_address = pf.address;
      c.pf_altnames = v.altnames;
      c.link_type = v.link_type;
      c.rdma = v.rdma;
      if (!pf.netdevs.empty()) c.pf_netdev = pf.netdevs.front();
      out.push_back(std::move(c));
    }
  }
  return out;
}

}  // namespace

namespace {

// The position in `pools` of the pool `v` belongs to (the oldest that selects it), or -1.
int home_of(const DeviceView& v, const Snapshot& s, const std::vector<PoolSpec>& pools) {
  if (!leasable(v.device)) return -1;
  const Candidate c = candidate_of(v, s);
  for (size_t p = 0; p < pools.size(); ++p)
    if (matches(pools[p], c)) return static_cast<int>(p);
  return -1;
}

}  // namespace

const PoolSpec* home_pool(const DeviceView& v, const Snapshot& s) {
  if (!s.book) return nullptr;
  const int p = home_of(v, s, s.book->pools);
  return p < 0 ? nullptr : &s.book->pools[static_cast<size_t>(p)];
}

namespace {

// True when selectors see `a` on `sa` as they see `b` on `sb` (candidate_of reads nothing
// else of a device but its PF's netdev, which index_pools watches on the PF).
bool seen_alike(const DeviceView& a, const Snapshot& sa, const DeviceView& b, const Snapshot& sb) {
  const pci::Device& x = a.device;
  const pci::Device& y = b.device;
  if (x.address != y.address || x.class_id != y.class_id || x.vendor_id != y.vendor_id || x.device_id != y.device_id ||
      x.driver != y.driver || x.netdevs != y.netdevs || x.numa_node != y.numa_node || x.physfn != y.physfn ||
      x.vf_index != y.vf_index || a.altnames != b.altnames || a.link_type != b.link_type || a.rdma != b.rdma)
    return false;
  if (x.driver != std::string("vfio-pci")) return true;
  const Lease* la = sa.book ? sa.book->lease_of(x.address) : nullptr;
  const Lease* lb = sb.book ? sb.book->lease_of(y.address) : nullptr;
  return (la ? la->previous_driver : x.driver) == (lb ? lb->previous_driver : y.driver);
}

// Why the link health: {pf_link: true} looks at is down: a VF's PF's, a PF's own; nullopt when
// it has a carrier. A PF without a netdev has no link to see: that counts as down too.
std::optional<std::string> link_trouble(const DeviceView& v, const Snapshot& snap) {
  const bool vf = v.device.physfn.has_value();
  const DeviceView* pf = vf ? snap.find(*v.device.physfn) : &v;
  const PciAddress pfa = v.device.physfn.value_or(v.device.address);
  const std::optional<LinkStatus>& link = vf ? v.pf_link : v.link;
  if (!link || !pf || pf->device.netdevs.empty())
    return (vf ? "its PF " + pfa.to_string() + " has" : std::string("it has")) +
           " no netdev, so its link cannot be seen (health.pf_link)";
  if (link->has_carrier()) return std::nullopt;
  std::string why =
      (vf ? "its PF " : "its netdev ") + pf->device.netdevs.front() + " (" + pfa.to_string() + ") has no carrier";
  if (!link->operstate.empty()) why += " (operstate " + link->operstate + ")";
  return why;
}

PoolMember member_of(const DeviceView& v, const PoolSpec& pool, const Snapshot& snap) {
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
    } else if (!m.lease) {
      // A lease takes the whole group: every other member must be able to go with it.
      if (auto c = group_companions(v, snap, &pool); !c) {
        m.healthy = false;
        m.reason = c.error().message;
      }
    }
  }
  if (m.healthy && d.sriov && d.sriov->num_vfs > 0 && !m.lease) {
    m.healthy = false;
    m.reason = "it has " + std::to_string(d.sriov->num_vfs) + " VFs enabled; a PF with VFs cannot be leased whole";
  }
  if (m.healthy && pool.health.pf_link) {
    if (auto why = link_trouble(v, snap)) {
      m.healthy = false;
      m.reason = std::move(*why);
    }
  }
  return m;
}

}  // namespace

std::shared_ptr<const PoolIndex> index_pools(const Snapshot* before, const Snapshot& s) {
  if (!s.book) return nullptr;
  const std::vector<PoolSpec>& pools = s.book->pools;
  auto whole = [&] {
    auto idx = std::make_shared<PoolIndex>();
    idx->pools = pools;
    idx->members.resize(pools.size());
    for (size_t i = 0; i < s.devices.size(); ++i)
      if (int p = home_of(s.devices[i], s, pools); p >= 0) idx->members[p].push_back(static_cast<uint32_t>(i));
    return idx;
  };
  if (!before || !before->pool_index || !before->index.same(s.index) || before->pool_index->pools != pools)
    return whole();
  // The same functions at the same positions, the same pools: only the devices of chunks that
  // changed can have moved, and only those seen differently by selectors.
  std::vector<uint32_t> moved;
  for (size_t c = 0; c < s.devices.chunks(); ++c) {
    if (s.devices.same_chunk(before->devices, c)) continue;
    const size_t end = std::min(s.devices.size(), (c + 1) * DeviceList::kChunk);
    for (size_t i = c * DeviceList::kChunk; i < end; ++i) {
      const DeviceView& was = before->devices[i];
      const DeviceView& now = s.devices[i];
      if (seen_alike(was, *before, now, s)) continue;
      // A PF's netdev, altnames, link type and RDMA are what its VFs' selectors see.
      if ((was.device.sriov || now.device.sriov) &&
          (was.device.netdevs != now.device.netdevs || was.altnames != now.altnames || was.link_type != now.link_type ||
           was.rdma != now.rdma))
        return whole();
      moved.push_back(static_cast<uint32_t>(i));
    }
  }
  std::shared_ptr<PoolIndex> idx;
  for (uint32_t i : moved) {
    const int from = home_of(before->devices[i], *before, pools);
    const int to = home_of(s.devices[i], s, pools);
    if (from == to) continue;
    if (!idx) idx = std::make_shared<PoolIndex>(*before->pool_index);
    if (from >= 0) std::erase(idx->members[from], i);
    if (to >= 0) {
      auto& m = idx->members[to];
      m.insert(std::lower_bound(m.begin(), m.end(), i), i);
    }
  }
  if (!idx) return before->pool_index;
  return idx;
}

std::vector<PoolMember> pool_members(const PoolSpec& pool, const Snapshot& snap) {
  std::vector<PoolMember> out;
  if (!snap.book) return out;
  if (const PoolIndex* idx = snap.pool_index.get(); idx && idx->pools == snap.book->pools) {
    for (size_t p = 0; p < idx->pools.size(); ++p) {
      if (!(idx->pools[p] == pool)) continue;
      out.reserve(idx->members[p].size());
      for (uint32_t i : idx->members[p]) out.push_back(member_of(snap.devices[i], pool, snap));
      return out;
    }
  }
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
    out.push_back(member_of(v, pool, snap));
  }
  return out;
}

std::vector<PoolMember> Agent::members_now(const PoolSpec& pool, const Snapshot& snap) {
  std::vector<PoolMember> members = pool_members(pool, snap);
  std::vector<PciAddress> ask;
  for (const auto& m : members)
    if (m.healthy && !m.lease && m.view->device.driver == std::string("vfio-pci"))
      ask.push_back(m.view->device.address);
  if (ask.empty()) return members;
  auto held = kernel_.vfio_holders_of(ask);
  for (auto& m : members) {
    const PciAddress& a = m.view->device.address;
    if (std::find(ask.begin(), ask.end(), a) == ask.end()) continue;
    if (!held) {
      m.healthy = false;
      m.reason = "cannot tell whether it is held open through VFIO: " + held.error().message;
    } else if (auto it = held->find(a); it != held->end()) {
      m.healthy = false;
      m.reason =
          "in use outside sriovd: " + kernel::held_paths(it->second) + " held open by " + kernel::describe(it->second);
    }
  }
  return members;
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
    for (const PciAddress& m : l->addresses()) book->by_address[m] = l->id;
    book->leases.emplace(l->id, std::move(*l));
  }
  book_ = std::move(book);
  return ok();
}

Result<PoolSpec> Agent::create_pool(const PoolSpec& spec, bool replace) {
  MutexLock lock(mu_);
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
    for (const auto& entry : book_->leases) {
      const Lease& l = entry.second;  // not a structured binding: clang before 16 cannot capture one
      if (l.pool != spec.name) continue;
      bool kept = std::any_of(members.begin(), members.end(),
                              [&](const PoolMember& m) { return m.view->device.address == l.address; });
      if (!kept)
        return conflict(
            "pool '" + spec.name + "' would no longer hold " + l.address.to_string() + ", leased as " + l.id,
            "selectors");
    }
  }
  int64_t seq = 0;
  if (auto prev = store_.get("pool", spec.name); prev && prev->has_value()) {
    seq = nlohmann::json::parse(**prev, nullptr, false).value("seq", int64_t{0});
  } else {
    seq = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
              .count();
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
  MutexLock lock(mu_);
  if (!book_->pool(name)) return Error::make(ErrorCode::not_found, "no pool named '" + name + "'");
  std::string leased;
  for (const auto& [id, l] : book_->leases)
    if (l.pool == name) leased += (leased.empty() ? "" : ", ") + l.id + " (" + l.address.to_string() + ")";
  if (!leased.empty()) return conflict("pool '" + name + "' has leases: " + leased + "; release them first");
  if (auto r = store_.erase("pool", name); !r) return r;
  auto book = std::make_shared<LeaseBook>(*book_);
  book->pools.erase(
      std::remove_if(book->pools.begin(), book->pools.end(), [&](const PoolSpec& p) { return p.name == name; }),
      book->pools.end());
  book_ = std::move(book);
  auto next = std::make_shared<Snapshot>(*snap());
  ++generation_;
  publish_locked(std::move(next));
  if (events_) events_->publish("pool.changed", {{"pool", name}, {"change", "deleted"}});
  return ok();
}
}  // namespace sriovd::agent
