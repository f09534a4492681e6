// SseParser: decodes a Server-Sent Events byte stream (GET /v1/events) into events, incrementally,
// as chunks arrive from the socket. Follows the WHATWG event-stream rules that matter here:
// lines end in LF, CRLF or CR; a blank line dispatches; "field: value" with one optional space;
// data lines join with LF; lines starting with ':' are comments (sriovd's keepalives); an event
// with no data is not dispatched; "id" persists as the last event id (for Last-Event-ID).
// A pure decoder (no I/O). Not thread-safe: one parser per connection.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace sriovd::k8s {

struct SseEvent {
  std::string id;    // the last event id in effect when it was dispatched
  std::string type;  // "event:" field, "message" when absent
  std::string data;
};

class SseParser {
 public:
  // Feeds bytes; returns the events completed by them. A line longer than `max_line` bytes
  // (a broken or hostile peer) sets overflow() and the rest of the stream is ignored.
  std::vector<SseEvent> feed(std::string_view chunk);

  const std::string& last_event_id() const { return last_id_; }
  size_t comments() const { return comments_; }  // keepalives seen
  bool overflow() const { return overflow_; }

  static constexpr size_t max_line = 1 << 20;

 private:
  void line(std::string_view l, std::vector<SseEvent>& out);

  std::string partial_;
  bool last_was_cr_ = false;
  bool overflow_ = false;
  std::string last_id_;
  std::string type_;
  std::string data_;
  bool has_data_ = false;
  size_t comments_ = 0;
};

}  // namespace sriovd::k8s
