// EventStream: follows sriovd's GET /v1/events (Server-Sent Events) on a thread of its own and
// hands each event to a callback. When the connection drops (sriovd restarting, socket gone) it
// reconnects with exponential backoff (100 ms doubling to 5 s) and resumes with Last-Event-ID;
// every (re)connection calls on_connected first, so the owner re-reads what it may have missed.
// Thread-safety: start/stop from one owner thread; callbacks run on the stream's thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "cli/client.h"
#include "k8s/sse.h"

namespace sriovd::k8s {

class EventStream {
 public:
  struct Callbacks {
    std::function<void()> on_connected;               // after the 200 answer, before any event
    std::function<void(const SseEvent&)> on_event;
    std::function<void(const std::string&)> on_drop;  // why the stream ended (for the log)
  };

  EventStream(cli::Endpoint endpoint, Callbacks cb);
  ~EventStream();
  EventStream(const EventStream&) = delete;
  EventStream& operator=(const EventStream&) = delete;

  void start();
  void stop();  // returns within ~1 s (libcurl's progress callback interval while idle)

 private:
  void run();
  // One connection; returns the reason it ended.
  std::string follow(std::string& last_id);

  const cli::Endpoint endpoint_;
  const Callbacks cb_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;  // wakes the backoff wait on stop
  std::thread thread_;
};

}  // namespace sriovd::k8s
