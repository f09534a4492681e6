#include "base/sse_parser.h"

namespace sriovd::cli {

std::vector<SseEvent> SseParser::feed(std::string_view bytes) {
  std::vector<SseEvent> out;
  if (failed_) return out;
  for (char c : bytes) {
    if (after_cr_) {
      after_cr_ = false;
      if (c == '\n') continue;  // the LF of a CRLF
    }
    if (c == '\r' || c == '\n') {
      after_cr_ = c == '\r';
      line(partial_, out);
      partial_.clear();
      continue;
    }
    if (partial_.size() >= kMaxLine) {
      failed_ = true;
      partial_.clear();
      return out;
    }
    partial_ += c;
  }
  return out;
}

void SseParser::line(std::string_view l, std::vector<SseEvent>& out) {
  if (l.empty()) {
    // Dispatch: the data buffer without its last LF; nothing when no data line came.
    if (has_data_) out.push_back({last_id_, type_.empty() ? "message" : type_, data_});
    data_.clear();
    type_.clear();
    has_data_ = false;
    return;
  }
  if (l[0] == ':') {
    ++comments_;
    return;
  }
  std::string_view field = l, value;
  if (auto colon = l.find(':'); colon != std::string_view::npos) {
    field = l.substr(0, colon);
    value = l.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) data_ += '\n';
    data_.append(value);
    has_data_ = true;
  } else if (field == "event") {
    type_.assign(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_id_.assign(value);
  } else if (field == "retry") {
    if (!value.empty() && value.size() <= 19 && value.find_first_not_of("0123456789") == std::string_view::npos)
      retry_ms_ = std::stoull(std::string(value));
  }
}

}  // namespace sriovd::cli
