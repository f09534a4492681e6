// Server-Sent Events for GET /v1/events: the wire format of one event and the streamed body
// that follows the daemon's EventLog.
//
// The stream starts after the client's cursor (Last-Event-ID or ?since=, else "from now on").
// When the log cannot give everything after the cursor (the ring moved on, or the id is from an
// earlier daemon run) the stream first sends an event `resync`: the client re-reads the REST
// resources, then goes on with the events that follow. Without events a comment line
// (": keepalive") goes out every heartbeat, so proxies keep the connection open and a client
// that went away is noticed by the failing write. The stream ends when the log is closed
// (daemon stopping). One EventStream is used by one server thread at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "agent/events.h"
#include "rest/http.h"

namespace sriovd::rest {

// "id: 7\nevent: device.added\ndata: {...}\n\n". The JSON text has no newline, so one data line.
std::string format_sse(const agent::Event& e);
// The resync event: no id (the client's cursor does not move), data {"type":"resync","reason",
// "last_id"}.
std::string format_resync(const std::string& reason, uint64_t last_id);

class EventStream : public BodyStream {
 public:
  // `slots` counts the open streams; this one holds one slot until it is destroyed.
  EventStream(const agent::EventLog& log, uint64_t cursor, std::chrono::milliseconds heartbeat,
              std::shared_ptr<std::atomic<int>> slots);
  ~EventStream() override;
  bool next(std::string& out) override;

 private:
  const agent::EventLog& log_;
  uint64_t cursor_;
  std::chrono::milliseconds heartbeat_;
  std::shared_ptr<std::atomic<int>> slots_;
  agent::EventLog::Subscription subscription_;  // released once the stream's end is sent
  bool started_ = false;
};

}  // namespace sriovd::rest
