// EventLog: the daemon's ordered record of what happened to the host and its leases, for
// GET /v1/events (Server-Sent Events), sriovd-cli events/--watch and the k8s sidecar's health.
//
// Every event gets the next id. Ids carry the daemon's start time in their high bits
// ((start seconds << 20) | sequence), so a client resuming with Last-Event-ID after a daemon
// restart is told it missed events instead of waiting for an id that will never come again.
// The last `capacity` events are kept; a reader asking for events after an id that has left the
// ring gets `gap = true` and should resync from the REST resources.
// Thread-safe: publish() and wait_after() may run on any number of threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "base/mutex.h"

namespace sriovd::agent {

// bugprone-exception-escape flags the implicit moves: nlohmann::json's is noexcept but calls
// assert_invariant(), which clang-tidy cannot prove does not throw.
// NOLINTNEXTLINE(bugprone-exception-escape)
struct Event {
  uint64_t id = 0;
  std::string type;     // "device.added", "lease.created", ...
  std::string time;     // RFC 3339, UTC
  nlohmann::json data;  // the event object: {"id", "type", "time", ...fields given to publish}
  std::string json;     // data, serialised once
};

class EventLog {
 public:
  explicit EventLog(size_t capacity = 4096);

  // Appends an event; `fields` (an object) is merged into {"id","type","time"}. Wakes waiters.
  uint64_t publish(const std::string& type, const nlohmann::json& fields = nlohmann::json::object());

  struct Batch {
    std::vector<std::shared_ptr<const Event>> events;  // ids > after, in order
    bool gap = false;     // events after `after` were dropped or came from an earlier daemon run
    bool closed = false;  // the log was closed (daemon stopping)
  };
  // Returns at once when there are events after `after`; otherwise waits up to `timeout` for one.
  Batch wait_after(uint64_t after, std::chrono::milliseconds timeout) const;

  uint64_t last_id() const;
  // The id a client starts from when it has none: everything from now on.
  uint64_t first_id_of_this_run() const { return base_; }

  // Wakes every waiter with closed = true; later waits return at once.
  void close();

  // A reader that streams the log (GET /v1/events) holds a Subscription until it has sent the
  // end of its stream. Once the log is closed, the daemon waits for them before closing the
  // connections: a stream cut off by the server stopping would end without its last chunk, and
  // its client would see a broken transfer instead of the end.
  class Subscription {
   public:
    Subscription() = default;
    explicit Subscription(const EventLog* log) : log_(log) {}
    Subscription(Subscription&& o) noexcept : log_(std::exchange(o.log_, nullptr)) {}
    Subscription& operator=(Subscription&& o) noexcept {
      if (this != &o) {
        release();
        log_ = std::exchange(o.log_, nullptr);
      }
      return *this;
    }
    ~Subscription() { release(); }

   private:
    void release();
    const EventLog* log_ = nullptr;
  };
  Subscription subscribe() const;
  // Waits up to `timeout` for every Subscription to be released; false if some are still held.
  bool wait_unsubscribed(std::chrono::milliseconds timeout) const;

 private:
  Batch collect_locked(uint64_t after) const SRIOVD_REQUIRES(mu_);

  const size_t capacity_;
  const uint64_t base_;  // start seconds << 20; ids of this run are base_ + 1, base_ + 2, ...
  mutable Mutex mu_;
  mutable CondVar cv_;
  std::deque<std::shared_ptr<const Event>> ring_ SRIOVD_GUARDED_BY(mu_);
  uint64_t next_ SRIOVD_GUARDED_BY(mu_) = 0;
  bool closed_ SRIOVD_GUARDED_BY(mu_) = false;
  mutable int subscribers_ SRIOVD_GUARDED_BY(mu_) = 0;
};

}  // namespace sriovd::agent
