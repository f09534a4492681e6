#include "rest/sse.h"

#include <nlohmann/json.hpp>

namespace sriovd::rest {

std::string format_sse(const agent::Event& e) {
  std::string out;
  out.reserve(e.json.size() + e.type.size() + 48);
  out += "id: ";
  out += std::to_string(e.id);
  out += "\nevent: ";
  out += e.type;
  out += "\ndata: ";
  out += e.json;
  out += "\n\n";
  return out;
}

std::string format_resync(const std::string& reason, uint64_t last_id) {
  nlohmann::json j = {{"type", "resync"}, {"reason", reason}, {"last_id", last_id}};
  return "event: resync\ndata: " + j.dump() + "\n\n";
}

EventStream::EventStream(const agent::EventLog& log, uint64_t cursor, std::chrono::milliseconds heartbeat,
                         std::shared_ptr<std::atomic<int>> slots)
    : log_(log), cursor_(cursor), heartbeat_(heartbeat), slots_(std::move(slots)), subscription_(log.subscribe()) {}

EventStream::~EventStream() {
  if (slots_) slots_->fetch_sub(1, std::memory_order_acq_rel);
}

bool EventStream::next(std::string& out) {
  if (!started_) {
    // Sent at once, so a client knows it is subscribed before any event happens; `retry`
    // tells EventSource clients how soon to reconnect.
    started_ = true;
    out += "retry: 2000\n: subscribed\n\n";
    auto b = log_.wait_after(cursor_, std::chrono::milliseconds(0));
    if (b.gap)
      out += format_resync(cursor_ == 0 ? "no events kept from the start of this run"
                                        : "events after " + std::to_string(cursor_) +
                                              " are no longer kept or come from an earlier daemon run",
                           log_.last_id());
    for (const auto& e : b.events) {
      out += format_sse(*e);
      cursor_ = e->id;
    }
    if (b.gap && b.events.empty()) cursor_ = log_.last_id();
    return !b.closed || !out.empty();
  }
  auto b = log_.wait_after(cursor_, heartbeat_);
  if (b.closed && b.events.empty()) return false;
  if (b.gap) out += format_resync("events were dropped from the daemon's ring", log_.last_id());
  if (b.events.empty()) {
    if (b.gap) cursor_ = log_.last_id();
    else out += ": keepalive\n\n";
    return true;
  }
  for (const auto& e : b.events) {
    out += format_sse(*e);
    cursor_ = e->id;
  }
  return true;
}

}  // namespace sriovd::rest
