#include "k8s/sse.h"

namespace sriovd::k8s {

std::vector<SseEvent> SseParser::feed(std::string_view chunk) {
  std::vector<SseEvent> out;
  if (overflow_) return out;
  for (char ch : chunk) {
    if (last_was_cr_) {
      last_was_cr_ = false;
      if (ch == '\n') continue;  // the LF of a CRLF pair
    }
    if (ch == '\r' || ch == '\n') {
      last_was_cr_ = ch == '\r';
      line(partial_, out);
      partial_.clear();
      continue;
    }
    partial_ += ch;
    if (partial_.size() > max_line) {
      overflow_ = true;
      partial_.clear();
      return out;
    }
  }
  return out;
}

void SseParser::line(std::string_view l, std::vector<SseEvent>& out) {
  if (l.empty()) {
    if (has_data_) out.push_back(SseEvent{last_id_, type_.empty() ? "message" : type_, data_});
    type_.clear();
    data_.clear();
    has_data_ = false;
    return;
  }
  if (l.front() == ':') {
    ++comments_;
    return;
  }
  std::string_view field = l, value;
  if (auto colon = l.find(':'); colon != std::string_view::npos) {
    field = l.substr(0, colon);
    value = l.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) data_ += '\n';
    data_ += value;
    has_data_ = true;
  } else if (field == "event") {
    type_ = value;
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_id_ = value;
  }
  // "retry" and unknown fields are ignored: reconnection pacing is ours to decide.
}

}  // namespace sriovd::k8s
