#include "agent/events.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace sriovd::agent {

namespace {

std::string rfc3339_now() {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms));
  return buf;
}

uint64_t run_base() {
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
  return static_cast<uint64_t>(secs.count()) << 20;
}

}  // namespace

EventLog::EventLog(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity), base_(run_base()) {}

uint64_t EventLog::publish(const std::string& type, const nlohmann::json& fields) {
  auto e = std::make_shared<Event>();
  e->type = type;
  e->time = rfc3339_now();
  {
    MutexLock lock(mu_);
    e->id = base_ + ++next_;
    nlohmann::json data = {{"id", e->id}, {"type", type}, {"time", e->time}};
    if (fields.is_object()) data.update(fields);
    e->data = std::move(data);
    e->json = e->data.dump();
    ring_.push_back(e);
    if (ring_.size() > capacity_) ring_.pop_front();
  }
  cv_.notify_all();
  return e->id;
}

EventLog::Batch EventLog::collect_locked(uint64_t after) const {
  Batch b;
  b.closed = closed_;
  // An id from another run (or from the future) cannot be resumed: report a gap and give what
  // this run has.
  if (after != 0 && (after < base_ || after > base_ + next_)) {
    b.gap = true;
    after = base_;
  }
  if (after == 0) after = base_;
  if (!ring_.empty() && ring_.front()->id > after + 1) b.gap = true;
  for (auto it = ring_.rbegin(); it != ring_.rend() && (*it)->id > after; ++it) b.events.push_back(*it);
  std::reverse(b.events.begin(), b.events.end());
  return b;
}

EventLog::Batch EventLog::wait_after(uint64_t after, std::chrono::milliseconds timeout) const {
  MutexLock lock(mu_);
  Batch b = collect_locked(after);
  if (!b.events.empty() || b.closed) return b;
  uint64_t from = after;
  if (b.gap) from = base_;
  cv_.wait_for(lock, timeout, [&]() SRIOVD_REQUIRES(mu_) { return closed_ || base_ + next_ > from; });
  Batch later = collect_locked(from);
  later.gap = later.gap || b.gap;
  return later;
}

uint64_t EventLog::last_id() const {
  MutexLock lock(mu_);
  return base_ + next_;
}

void EventLog::close() {
  {
    MutexLock lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

EventLog::Subscription EventLog::subscribe() const {
  MutexLock lock(mu_);
  ++subscribers_;
  return Subscription(this);
}

void EventLog::Subscription::release() {
  if (!log_) return;
  {
    MutexLock lock(log_->mu_);
    --log_->subscribers_;
  }
  log_->cv_.notify_all();
  log_ = nullptr;
}

bool EventLog::wait_unsubscribed(std::chrono::milliseconds timeout) const {
  MutexLock lock(mu_);
  return cv_.wait_for(lock, timeout, [&]() SRIOVD_REQUIRES(mu_) { return subscribers_ == 0; });
}

}  // namespace sriovd::agent
