#include "k8s/preferred.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

namespace sriovd::k8s {

namespace {

struct Candidate {
  std::string id;
  std::optional<PciAddress> address;  // nullopt: not a pool member (or not an address)
  std::optional<int> numa;
  std::string pf;  // grouping key: the PF's address, or the device's own for a PF/plain device
};

Candidate describe(const Pool& pool, const std::string& id) {
  Candidate c{id, PciAddress::parse(id), std::nullopt, id};
  if (!c.address) return c;
  if (const PoolDevice* d = pool.find(*c.address)) {
    c.numa = d->numa_node;
    c.pf = d->pf ? d->pf->to_string() : d->address.to_string();
  } else {
    c.address.reset();  // an address, but not one of ours: no topology known
  }
  return c;
}

bool by_address(const Candidate& a, const Candidate& b) { return a.id < b.id; }

// Picks `need` candidates among `cands` (all on one NUMA node, or the leftovers) per policy.
// PFs in `warm` (already used by must_include) are filled first when packing.
std::vector<const Candidate*> pick_on_node(const std::vector<const Candidate*>& cands, size_t need, Policy policy,
                                           const std::set<std::string>& warm) {
  std::map<std::string, std::vector<const Candidate*>> by_pf;
  for (const Candidate* c : cands) by_pf[c->pf].push_back(c);
  for (auto& [pf, v] : by_pf) std::sort(v.begin(), v.end(), [](auto* a, auto* b) { return by_address(*a, *b); });

  std::vector<const Candidate*> out;
  if (policy == Policy::spread) {
    // Round robin, PFs with the most free VFs first so the later rounds still find some.
    std::vector<std::pair<std::string, std::vector<const Candidate*>>> pfs(by_pf.begin(), by_pf.end());
    std::stable_sort(pfs.begin(), pfs.end(), [&](const auto& a, const auto& b) {
      bool wa = warm.count(a.first) != 0, wb = warm.count(b.first) != 0;
      if (wa != wb) return !wa;  // spreading: PFs the must_include devices sit on come last
      return a.second.size() > b.second.size();
    });
    for (size_t round = 0; out.size() < need; ++round) {
      bool any = false;
      for (auto& [pf, v] : pfs) {
        if (out.size() == need) break;
        if (round < v.size()) {
          out.push_back(v[round]);
          any = true;
        }
      }
      if (!any) break;
    }
    return out;
  }
  // Pack: first the PFs must_include already uses, then repeatedly the PF that fits the rest
  // most tightly (fewest free VFs that still cover it), or failing that the fullest one.
  for (const auto& pf : warm) {
    auto it = by_pf.find(pf);
    if (it == by_pf.end()) continue;
    for (const Candidate* c : it->second) {
      if (out.size() == need) return out;
      out.push_back(c);
    }
    by_pf.erase(it);
  }
  while (out.size() < need && !by_pf.empty()) {
    size_t rest = need - out.size();
    auto best = by_pf.end();
    for (auto it = by_pf.begin(); it != by_pf.end(); ++it) {
      if (it->second.size() >= rest) {
        if (best == by_pf.end() || best->second.size() < rest || it->second.size() < best->second.size()) best = it;
      } else if (best == by_pf.end() || (best->second.size() < rest && it->second.size() > best->second.size())) {
        best = it;
      }
    }
    for (const Candidate* c : best->second) {
      if (out.size() == need) break;
      out.push_back(c);
    }
    by_pf.erase(best);
  }
  return out;
}

}  // namespace

std::vector<std::string> preferred_allocation(const Pool& pool, const std::vector<std::string>& available,
                                              const std::vector<std::string>& must_include, int size) {
  std::vector<std::string> out;
  std::set<std::string> taken;
  std::set<std::string> warm_pfs;
  std::set<std::optional<int>> must_nodes;
  for (const auto& id : must_include) {
    if (!taken.insert(id).second) continue;
    out.push_back(id);
    Candidate c = describe(pool, id);
    if (c.address) warm_pfs.insert(c.pf);
    must_nodes.insert(c.numa);
  }
  if (size <= 0 || out.size() >= static_cast<size_t>(size)) return out;
  size_t need = static_cast<size_t>(size) - out.size();

  std::vector<Candidate> cands;
  std::vector<Candidate> strangers;  // offered ids sriovd does not list in the pool
  for (const auto& id : available) {
    if (taken.count(id)) continue;
    taken.insert(id);
    Candidate c = describe(pool, id);
    (c.address ? cands : strangers).push_back(std::move(c));
  }
  std::sort(cands.begin(), cands.end(), by_address);
  std::sort(strangers.begin(), strangers.end(), by_address);

  std::map<std::optional<int>, std::vector<const Candidate*>> by_node;
  for (const auto& c : cands) by_node[c.numa].push_back(&c);

  // The node to stay on: must_include's node if they share one and it has room; else the node
  // that fits best (pack: the tightest fit; spread: the roomiest).
  std::optional<std::optional<int>> node;
  if (must_nodes.size() == 1) {
    auto it = by_node.find(*must_nodes.begin());
    if (it != by_node.end() && it->second.size() >= need) node = it->first;
  }
  if (!node && must_nodes.size() <= 1) {
    for (const auto& [n, v] : by_node) {
      if (v.size() < need) continue;
      if (!node) {
        node = n;
        continue;
      }
      size_t cur = by_node[*node].size();
      if (pool.policy == Policy::pack ? v.size() < cur : v.size() > cur) node = n;
    }
  }

  std::vector<const Candidate*> picked;
  if (node) {
    picked = pick_on_node(by_node[*node], need, pool.policy, warm_pfs);
  } else {
    // No single node holds it: take nodes by decreasing room, so as few nodes as possible.
    std::vector<std::pair<std::optional<int>, std::vector<const Candidate*>>> nodes(by_node.begin(), by_node.end());
    std::stable_sort(nodes.begin(), nodes.end(), [&](const auto& a, const auto& b) {
      bool ma = must_nodes.count(a.first) != 0, mb = must_nodes.count(b.first) != 0;
      if (ma != mb) return ma;
      return a.second.size() > b.second.size();
    });
    for (const auto& [n, v] : nodes) {
      if (picked.size() == need) break;
      auto more = pick_on_node(v, need - picked.size(), pool.policy, warm_pfs);
      picked.insert(picked.end(), more.begin(), more.end());
    }
  }
  for (const Candidate* c : picked) out.push_back(c->id);
  for (const auto& c : strangers) {
    if (out.size() >= static_cast<size_t>(size)) break;
    out.push_back(c.id);
  }
  return out;
}

}  // namespace sriovd::k8s
