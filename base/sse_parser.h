// SseParser: the text/event-stream reader behind `sriovd-cli events` and `devices --watch`.
//
// Bytes go in as they arrive (any split, even inside a line or a CRLF); complete events come
// out. It follows the HTML Living Standard's "event stream interpretation": lines end in LF, CR
// or CRLF; a blank line dispatches; "field: value" with one optional space after the colon;
// lines starting with ':' are comments; `data` lines join with LF; `id` sets the last event id
// (not when it contains NUL); `retry` is a number of milliseconds; unknown fields are ignored;
// an event with no data is not dispatched. A pure value type; not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sriovd::cli {

struct SseEvent {
  std::string id;    // the last event id in force when it was dispatched ("" if none yet)
  std::string type;  // "message" when the stream named none
  std::string data;
};

class SseParser {
 public:
  // Feeds bytes; returns the events completed by them, in order.
  std::vector<SseEvent> feed(std::string_view bytes);

  const std::string& last_id() const { return last_id_; }
  std::optional<uint64_t> retry_ms() const { return retry_ms_; }
  size_t comments() const { return comments_; }  // ": keepalive" lines seen

  // A line longer than this is an error (a misbehaving server must not grow us without bound).
  static constexpr size_t kMaxLine = 1 << 20;
  bool failed() const { return failed_; }

 private:
  void line(std::string_view l, std::vector<SseEvent>& out);

  std::string partial_;    // an incomplete line
  bool after_cr_ = false;  // the last byte was CR: a following LF belongs to it
  std::string data_, type_;
  bool has_data_ = false;
  std::string last_id_;
  std::optional<uint64_t> retry_ms_;
  size_t comments_ = 0;
  bool failed_ = false;
};

}  // namespace sriovd::cli
