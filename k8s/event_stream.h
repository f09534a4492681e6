// EventStream: follows sriovd's GET /v1/events (Server-Sent Events) on a thread of its own and
// hands each event to a callback. When the connection drops (sriovd restarting, socket gone) it
// reconnects with exponential backoff (100 ms doubling to 5 s) and resumes with Last-Event-ID;
// every (re)connection calls on_connected first, so the owner re-reads what it may have missed.
// Thread-safety: start/stop from one owner thread; callbacks run on the stream's thread.
#pragma once

#include <functional>
#include <string>
#include <thread>

#include "base/fd.h"
#include "base/sse_parser.h"
#include "k8s/http.h"

namespace sriovd::k8s {

class EventStream {
 public:
  struct Callbacks {
    std::function<void()> on_connected;  // after the 200 answer, before any event
    std::function<void(const cli::SseEvent&)> on_event;
    std::function<void(const std::string&)> on_drop;  // why the stream ended (for the log)
  };

  EventStream(std::string socket_path, Callbacks cb);
  ~EventStream();
  EventStream(const EventStream&) = delete;
  EventStream& operator=(const EventStream&) = delete;

  void start();
  void stop();  // wakes the thread at once (an eventfd) and joins it

  // sriovd sends a keepalive comment well within this; silence this long means a dead peer.
  static constexpr std::chrono::seconds idle_limit{60};

 private:
  void run();
  std::string follow(std::string& last_id);  // one connection; returns why it ended

  const UnixHttpClient client_;
  const Callbacks cb_;
  UniqueFd stop_fd_;  // eventfd, readable once stop() was called
  std::thread thread_;
};

}  // namespace sriovd::k8s
