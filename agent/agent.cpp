#include "agent/agent.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "agent/applier.h"
#include "agent/host_events.h"
#include "agent/vf_config_json.h"
#include "pci/decode.h"

namespace sriovd::agent {

using nlohmann::json;

Agent::Agent(const pci::SysfsRoot& root, kernel::Kernel& kernel, StateStore& store, HostModel& model,
             pci::NameDb* names)
    : root_(root), kernel_(kernel), store_(store), model_(model), names_(names) {
  MutexLock lock(mu_);  // no other thread has the agent yet; load_book expects the lock
  if (auto r = load_book(); !r) {
    spdlog::error("reading pools and leases: {}", r.error().message);
    book_ = std::make_shared<LeaseBook>();
  }
}

Result<void> Agent::refresh() {
  MutexLock lock(mu_);
  return refresh_locked();
}

std::optional<uint64_t> Agent::uevent_seqnum() const {
  auto t = root_.read("kernel/uevent_seqnum", 32);
  if (!t) return std::nullopt;
  auto v = pci::parse_int(*t, 0, INT64_MAX);
  if (!v) return std::nullopt;
  return static_cast<uint64_t>(*v);
}

Result<void> Agent::refresh_locked() {
  const auto seq = uevent_seqnum();
  auto s = build_snapshot(root_, names_, ++generation_, &kernel_);
  if (names_) names_->close();  // names are cached; the databases need not stay mapped
  if (!s) return std::move(s).error();
  publish_locked(std::move(*s));
  if (seq) {
    rescanned_after_seqnum_ = *seq;
    read_after_seqnum_.clear();
  }
  return ok();
}

void Agent::publish_locked(std::shared_ptr<Snapshot> s) {
  s->drift = drift_;
  s->generation = generation_;
  // Lease marks: the devices carry those of s->book (none after a full scan). Only a device
  // whose mark differs is changed, so publishing costs as many device copies as leases changed,
  // whatever the size of the host.
  auto mark = [&s](const PciAddress& a, const std::optional<std::string>& id) {
    auto it = s->index.find(a);
    if (it != s->index.end() && s->devices[it->second].lease != id) s->devices.edit(it->second).lease = id;
  };
  if (s->book)
    for (const auto& [a, id] : s->book->by_address)
      if (!book_->by_address.count(a)) mark(a, std::nullopt);
  for (const auto& [a, id] : book_->by_address) mark(a, id);
  s->book = book_;
  auto before = model_.current();
  s->pool_index = index_pools(before.get(), *s);
  std::shared_ptr<const Snapshot> now = std::move(s);
  model_.publish(now);
  if (!events_) return;
  for (auto& e : diff_snapshots(before.get(), *now)) events_->publish(e.type, e.fields);
}

Result<void> Agent::update_devices(const std::vector<PciAddress>& addresses) {
  MutexLock lock(mu_);
  return refresh_devices_locked(addresses);
}

Result<void> Agent::update_devices(const std::map<PciAddress, std::optional<uint64_t>>& events) {
  MutexLock lock(mu_);
  std::vector<PciAddress> stale;
  for (const auto& [a, seq] : events) {
    auto it = read_after_seqnum_.find(a);
    const uint64_t known = std::max(rescanned_after_seqnum_, it == read_after_seqnum_.end() ? 0 : it->second);
    if (!seq || *seq > known) stale.push_back(a);
  }
  if (stale.empty()) return ok();
  return refresh_devices_locked(stale);
}

Result<void> Agent::refresh_devices_locked(const std::vector<PciAddress>& changed) {
  auto cur = snap();
  if (!cur) return refresh_locked();
  const auto seq = uevent_seqnum();
  auto s = update_snapshot(*cur, root_, names_, changed, ++generation_, &kernel_);
  if (!s) return std::move(s).error();
  publish_locked(std::move(*s));
  if (seq)
    for (const auto& a : changed) read_after_seqnum_[a] = *seq;
  return ok();
}

}  // namespace sriovd::agent
