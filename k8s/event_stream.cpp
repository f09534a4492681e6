#include "k8s/event_stream.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

namespace sriovd::k8s {

EventStream::EventStream(std::string socket_path, Callbacks cb)
    : client_(std::move(socket_path)), cb_(std::move(cb)), stop_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

EventStream::~EventStream() { stop(); }

void EventStream::start() {
  thread_ = std::thread([this] { run(); });
}

void EventStream::stop() {
  uint64_t one = 1;
  (void)!::write(stop_fd_.get(), &one, sizeof one);
  if (thread_.joinable()) thread_.join();
}

void EventStream::run() {
  using namespace std::chrono;
  std::string last_id;
  milliseconds backoff{100};
  while (true) {
    auto began = steady_clock::now();
    std::string why = follow(last_id);
    pollfd pfd{stop_fd_.get(), POLLIN, 0};
    if (::poll(&pfd, 1, 0) > 0) return;
    if (cb_.on_drop) cb_.on_drop(why);
    // A connection that lasted is not a failing one: start the backoff over.
    if (steady_clock::now() - began > seconds(10)) backoff = milliseconds(100);
    if (::poll(&pfd, 1, static_cast<int>(backoff.count())) > 0) return;
    backoff = std::min<milliseconds>(backoff * 2, seconds(5));
  }
}

std::string EventStream::follow(std::string& last_id) {
  cli::SseParser parser;
  std::vector<std::string> headers;
  if (!last_id.empty()) headers.push_back("Last-Event-ID: " + last_id);
  bool bad_status = false;
  auto r = client_.stream(
      "/v1/events", headers,
      [&](int status) {
        if (status != 200) {
          bad_status = true;
          return false;
        }
        if (cb_.on_connected) cb_.on_connected();
        return true;
      },
      [&](std::string_view bytes) {
        for (const auto& ev : parser.feed(bytes))
          if (cb_.on_event) cb_.on_event(ev);
      },
      stop_fd_.get(), idle_limit);
  if (!parser.last_id().empty()) last_id = parser.last_id();
  if (!r) return "event stream from " + client_.describe() + ": " + r.error().message;
  if (bad_status) return "sriovd answered GET /v1/events with HTTP " + std::to_string(*r);
  if (parser.failed()) return "sriovd's event stream sent a line over 1 MiB";
  return "sriovd closed the event stream";
}

}  // namespace sriovd::k8s
