#include "k8s/event_stream.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>

namespace sriovd::k8s {

namespace {

struct Conn {
  EventStream::Callbacks const* cb;
  std::atomic<bool>* stop;
  SseParser parser;
  CURL* curl = nullptr;
  bool connected = false;
};

size_t on_data(char* data, size_t size, size_t n, void* user) {
  auto* c = static_cast<Conn*>(user);
  if (c->stop->load()) return 0;
  if (!c->connected) {
    long status = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) return 0;
    c->connected = true;
    if (c->cb->on_connected) c->cb->on_connected();
  }
  for (const auto& ev : c->parser.feed(std::string_view(data, size * n)))
    if (c->cb->on_event) c->cb->on_event(ev);
  if (c->parser.overflow()) return 0;
  return size * n;
}

// The end of the response headers: the stream is up once sriovd said 200, even before the first
// event or keepalive arrives.
size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* c = static_cast<Conn*>(user);
  std::string_view line(data, size * n);
  if ((line == "\r\n" || line == "\n") && !c->connected) {
    long status = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status == 200) {
      c->connected = true;
      if (c->cb->on_connected) c->cb->on_connected();
    }
  }
  return size * n;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<Conn*>(user)->stop->load() ? 1 : 0;
}

}  // namespace

EventStream::EventStream(cli::Endpoint endpoint, Callbacks cb) : endpoint_(std::move(endpoint)), cb_(std::move(cb)) {}

EventStream::~EventStream() { stop(); }

void EventStream::start() {
  stop_ = false;
  thread_ = std::thread([this] { run(); });
}

void EventStream::stop() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void EventStream::run() {
  using namespace std::chrono;
  std::string last_id;
  milliseconds backoff{100};
  while (!stop_) {
    auto began = steady_clock::now();
    std::string why = follow(last_id);
    if (stop_) break;
    if (cb_.on_drop) cb_.on_drop(why);
    // A connection that lasted is not a failing one: start the backoff over.
    if (steady_clock::now() - began > seconds(10)) backoff = milliseconds(100);
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, backoff, [&] { return stop_.load(); });
    backoff = std::min<milliseconds>(backoff * 2, seconds(5));
  }
}

std::string EventStream::follow(std::string& last_id) {
  CURL* c = curl_easy_init();
  if (!c) return "libcurl could not be initialised";
  Conn conn{&cb_, &stop_, {}, c};
  std::string url = endpoint_.base_url + "/v1/events";
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  if (!endpoint_.unix_socket.empty()) curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, endpoint_.unix_socket.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &conn);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &conn);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &conn);
  // A peer that goes silent (no keepalive comment for this long) is treated as gone.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Accept: text/event-stream");
  if (!endpoint_.token.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + endpoint_.token).c_str());
  if (!last_id.empty()) headers = curl_slist_append(headers, ("Last-Event-ID: " + last_id).c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  if (!conn.parser.last_event_id().empty()) last_id = conn.parser.last_event_id();
  if (status != 0 && status != 200) return "sriovd answered GET /v1/events with HTTP " + std::to_string(status);
  if (rc == CURLE_OK) return "sriovd closed the event stream";
  return std::string("event stream from ") + endpoint_.describe() + ": " + curl_easy_strerror(rc);
}

}  // namespace sriovd::k8s
