#include "cli/client.h"

#include <curl/curl.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

namespace sriovd::cli {

namespace {

size_t on_body(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

struct StreamState {
  CURL* curl = nullptr;
  const std::function<bool(std::string_view)>* on_bytes = nullptr;
  HttpResult* out = nullptr;
  bool checked = false;
  bool is_error = false;
  bool stopped = false;  // on_bytes asked to stop: not a failure
};

size_t on_stream(char* data, size_t size, size_t n, void* user) {
  auto* st = static_cast<StreamState*>(user);
  if (!st->checked) {
    st->checked = true;
    curl_easy_getinfo(st->curl, CURLINFO_RESPONSE_CODE, &st->out->status);
    char* ct = nullptr;
    curl_easy_getinfo(st->curl, CURLINFO_CONTENT_TYPE, &ct);
    if (ct) st->out->content_type = ct;
    st->is_error = st->out->status >= 300;
  }
  if (st->is_error) {
    st->out->body.append(data, size * n);
    return size * n;
  }
  if (!(*st->on_bytes)(std::string_view(data, size * n))) {
    st->stopped = true;
    return 0;  // CURLE_WRITE_ERROR: ends the transfer
  }
  return size * n;
}

// TLS options for an https URL: the CA to trust and the client certificate.
void apply_tls(CURL* c, const Endpoint& e) {
  if (!e.cacert.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, e.cacert.c_str());
  if (!e.cert.empty()) curl_easy_setopt(c, CURLOPT_SSLCERT, e.cert.c_str());
  if (!e.key.empty()) curl_easy_setopt(c, CURLOPT_SSLKEY, e.key.c_str());
}

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

}  // namespace

Endpoint Endpoint::resolve(const std::string& url, const std::string& socket) {
  Endpoint e;
  if (!url.empty()) {
    e.base_url = url;
    while (!e.base_url.empty() && e.base_url.back() == '/') e.base_url.pop_back();
  } else {
    e.unix_socket = socket;
    if (e.unix_socket.empty())
      if (const char* env = std::getenv("SRIOVD_SOCKET")) e.unix_socket = env;
    if (e.unix_socket.empty()) e.unix_socket = "/run/sriovd/sriovd.sock";
    e.base_url = "http://localhost";
  }
  if (const char* tok = std::getenv("SRIOVD_TOKEN")) e.token = tok;
  return e;
}

std::string Endpoint::describe() const { return unix_socket.empty() ? base_url : "unix:" + unix_socket; }

Client::Client(Endpoint endpoint) : endpoint_(std::move(endpoint)) {
  static CurlGlobal global;
  curl_ = curl_easy_init();
}

Client::~Client() {
  if (curl_) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

Result<HttpResult> Client::request(const std::string& method, const std::string& path, const std::string& body,
                                   const std::string& content_type, const std::string& extra_header) {
  CURL* c = static_cast<CURL*>(curl_);
  if (!c) return Error::make(ErrorCode::internal, "libcurl could not be initialised");
  curl_easy_reset(c);
  HttpResult out;
  std::string url = endpoint_.base_url + path;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  if (!endpoint_.unix_socket.empty()) curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, endpoint_.unix_socket.c_str());
  apply_tls(c, endpoint_);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 120000L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &out.body);
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Accept: application/json, application/problem+json");
  if (!extra_header.empty()) headers = curl_slist_append(headers, extra_header.c_str());
  if (!endpoint_.token.empty())
    headers = curl_slist_append(headers, ("Authorization: Bearer " + endpoint_.token).c_str());
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    headers = curl_slist_append(headers, ("Content-Type: " + content_type).c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  if (method == "HEAD") curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK)
    return Error::make(ErrorCode::unavailable,
                       "cannot reach sriovd at " + endpoint_.describe() + ": " + curl_easy_strerror(rc));
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out.status);
  char* ct = nullptr;
  curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
  if (ct) out.content_type = ct;
  return out;
}

Result<HttpResult> Client::stream(const std::string& path, const std::vector<std::string>& extra_headers,
                                  const std::function<bool(std::string_view)>& on_bytes, long idle_timeout_s) {
  CURL* c = static_cast<CURL*>(curl_);
  if (!c) return Error::make(ErrorCode::internal, "libcurl could not be initialised");
  curl_easy_reset(c);
  HttpResult out;
  StreamState st{c, &on_bytes, &out};
  std::string url = endpoint_.base_url + path;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  if (!endpoint_.unix_socket.empty()) curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, endpoint_.unix_socket.c_str());
  apply_tls(c, endpoint_);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  // No overall timeout: a stream lasts as long as the daemon runs. The server sends a keepalive
  // every 15 s, so a silence longer than idle_timeout_s means the daemon or the path is gone.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, idle_timeout_s);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_stream);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &st);
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Accept: text/event-stream, application/problem+json");
  if (!endpoint_.token.empty())
    headers = curl_slist_append(headers, ("Authorization: Bearer " + endpoint_.token).c_str());
  for (const auto& h : extra_headers) headers = curl_slist_append(headers, h.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK && !st.stopped) {
    if (!st.checked)
      return Error::make(ErrorCode::unavailable,
                         "cannot reach sriovd at " + endpoint_.describe() + ": " + curl_easy_strerror(rc));
    return Error::make(ErrorCode::unavailable,
                       "the event stream from " + endpoint_.describe() + " broke: " + curl_easy_strerror(rc));
  }
  if (!st.checked) {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out.status);
    char* ct = nullptr;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    if (ct) out.content_type = ct;
  }
  return out;
}

std::string error_message(const HttpResult& r) {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("detail") && j["detail"].is_string()) return j["detail"].get<std::string>();
  return "sriovd answered HTTP " + std::to_string(r.status);
}

}  // namespace sriovd::cli
