#include "k8s/http.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/fd.h"

namespace sriovd::k8s {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool parse_decimal(std::string_view s, unsigned long long& out) {
  if (s.empty() || s.size() > 18) return false;
  out = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + static_cast<unsigned>(c - '0');
  }
  return true;
}

bool parse_hex(std::string_view s, unsigned long long& out) {
  if (auto semi = s.find(';'); semi != std::string_view::npos) s = s.substr(0, semi);  // chunk extensions
  s = trim(s);
  if (s.empty() || s.size() > 15) return false;
  out = 0;
  for (char c : s) {
    int v = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (v < 0) return false;
    out = out * 16 + static_cast<unsigned>(v);
  }
  return true;
}

}  // namespace

bool HttpResponseParser::fail(std::string why) {
  state_ = State::failed;
  error_ = std::move(why);
  return false;
}

bool HttpResponseParser::header_line(std::string_view line) {
  if (state_ == State::status_line) {
    // "HTTP/1.1 200 OK"
    if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ')
      return fail("not an HTTP/1.x status line");
    unsigned long long code = 0;
    if (!parse_decimal(line.substr(9, 3), code) || code < 100 || (line.size() > 12 && line[12] != ' '))
      return fail("bad status code");
    status_ = static_cast<int>(code);
    state_ = State::headers;
    return true;
  }
  auto colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return fail("malformed header line");
  std::string name = lower(trim(line.substr(0, colon)));
  std::string_view value = trim(line.substr(colon + 1));
  if (name == "content-length") {
    unsigned long long n = 0;
    if (!parse_decimal(value, n)) return fail("bad Content-Length");
    if (have_length_ && n != remaining_) return fail("conflicting Content-Length headers");
    have_length_ = true;
    remaining_ = n;
  } else if (name == "transfer-encoding") {
    if (lower(value) != "chunked") return fail("unsupported Transfer-Encoding '" + std::string(value) + "'");
    chunked_ = true;
  } else if (name == "content-type") {
    content_type_ = value;
  }
  return true;
}

bool HttpResponseParser::end_of_headers() {
  if (status_ >= 100 && status_ < 200) {  // an interim answer: the real one follows
    state_ = State::status_line;
    have_length_ = chunked_ = false;
    content_type_.clear();
    return true;
  }
  if (chunked_) state_ = State::chunk_size;
  else if (have_length_) state_ = remaining_ ? State::body_length : State::done;
  else if (status_ == 204 || status_ == 304) state_ = State::done;
  else state_ = State::body_close;
  return true;
}

bool HttpResponseParser::feed(std::string_view bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    switch (state_) {
      case State::done:
      case State::failed: return state_ == State::done;
      case State::body_length: {
        size_t n = static_cast<size_t>(std::min<unsigned long long>(remaining_, bytes.size() - i));
        sink_(bytes.substr(i, n));
        i += n;
        remaining_ -= n;
        if (!remaining_) state_ = State::done;
        break;
      }
      case State::chunk_data: {
        size_t n = static_cast<size_t>(std::min<unsigned long long>(remaining_, bytes.size() - i));
        sink_(bytes.substr(i, n));
        i += n;
        remaining_ -= n;
        if (!remaining_) state_ = State::chunk_crlf;
        break;
      }
      case State::body_close:
        sink_(bytes.substr(i));
        i = bytes.size();
        break;
      default: {  // line-oriented states
        char c = bytes[i++];
        if (state_ == State::status_line || state_ == State::headers || state_ == State::trailers) {
          if (++header_bytes_ > max_header_bytes) return fail("headers larger than 64 KiB");
        } else if (line_.size() > 256) {
          return fail("chunk size line too long");
        }
        if (c != '\n') {
          line_ += c;
          break;
        }
        std::string_view line = line_;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        bool ok = true;
        switch (state_) {
          case State::status_line: ok = header_line(line); break;
          case State::headers: ok = line.empty() ? end_of_headers() : header_line(line); break;
          case State::chunk_size: {
            unsigned long long n = 0;
            if (!parse_hex(line, n)) {
              ok = fail("bad chunk size");
              break;
            }
            remaining_ = n;
            state_ = n ? State::chunk_data : State::trailers;
            break;
          }
          case State::chunk_crlf:
            if (!line.empty()) ok = fail("chunk not followed by CRLF");
            else state_ = State::chunk_size;
            break;
          case State::trailers:
            if (line.empty()) state_ = State::done;
            break;
          default: break;
        }
        line_.clear();
        if (!ok) return false;
      }
    }
  }
  return state_ != State::failed;
}

void HttpResponseParser::finish() {
  if (state_ == State::body_close) state_ = State::done;
  else if (state_ != State::done && state_ != State::failed) fail("connection closed before the answer was complete");
}

namespace {

Result<UniqueFd> connect_unix(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path)
    return Error::make(ErrorCode::invalid, "socket path too long: " + path, "sriovd-socket");
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error::sys(errno, "socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    return Error::make(ErrorCode::unavailable, "cannot reach sriovd at unix:" + path + ": " + std::strerror(errno));
  return fd;
}

Result<void> send_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::make(ErrorCode::unavailable, std::string("sending to sriovd: ") + std::strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
  return ok();
}

std::string build_request(const std::string& method, const std::string& target, const std::string& body,
                          const std::vector<std::string>& headers, const char* accept) {
  std::string req =
      method + " " + target + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAccept: " + accept + "\r\n";
  for (const auto& h : headers) req += h + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH")
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n";
  req += body;
  return req;
}

}  // namespace

Result<HttpAnswer> UnixHttpClient::request(const std::string& method, const std::string& target,
                                           const std::string& body, const std::vector<std::string>& headers,
                                           std::chrono::milliseconds timeout) const {
  auto fd = connect_unix(path_);
  if (!fd) return std::move(fd).error();
  if (auto r = send_all(fd->get(),
                        build_request(method, target, body, headers, "application/json, application/problem+json"));
      !r)
    return std::move(r).error();
  HttpAnswer out;
  HttpResponseParser p([&](std::string_view b) { out.body.append(b); });
  const std::string what = method + " " + target;  // for the errors
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[16384];
  while (!p.complete()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Error::make(ErrorCode::unavailable, "sriovd did not answer " + what + " in time");
    pollfd pfd{fd->get(), POLLIN, 0};
    int pr = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (pr < 0 && errno != EINTR) return Error::sys(errno, "poll");
    if (pr <= 0) continue;
    ssize_t n = ::recv(fd->get(), buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::make(ErrorCode::unavailable, std::string("reading from sriovd: ") + std::strerror(errno));
    }
    if (n == 0) {
      p.finish();
      break;
    }
    if (!p.feed(std::string_view(buf, static_cast<size_t>(n))))
      return Error::make(ErrorCode::unavailable, "sriovd's answer to " + what + ": " + p.error());
  }
  if (!p.complete()) return Error::make(ErrorCode::unavailable, "sriovd's answer to " + what + ": " + p.error());
  out.status = p.status();
  out.content_type = p.content_type();
  return out;
}

Result<int> UnixHttpClient::stream(const std::string& target, const std::vector<std::string>& headers,
                                   const std::function<bool(int)>& on_status,
                                   const std::function<void(std::string_view)>& on_body, int stop_fd,
                                   std::chrono::milliseconds idle) const {
  auto fd = connect_unix(path_);
  if (!fd) return std::move(fd).error();
  if (auto r = send_all(fd->get(), build_request("GET", target, {}, headers, "text/event-stream")); !r)
    return std::move(r).error();
  // Body bytes wait until on_status has run, so the owner sees "connected" before any event.
  bool told = false;
  std::string pending;
  HttpResponseParser p([&](std::string_view b) { pending.append(b); });
  char buf[16384];
  while (!p.complete()) {
    pollfd pfds[2] = {{fd->get(), POLLIN, 0}, {stop_fd, POLLIN, 0}};
    int pr = ::poll(pfds, stop_fd >= 0 ? 2 : 1, static_cast<int>(idle.count()));
    if (pr < 0) {
      if (errno == EINTR) continue;
      return Error::sys(errno, "poll");
    }
    if (pr == 0)
      return Error::make(ErrorCode::unavailable,
                         "nothing from sriovd's " + target + " for " + std::to_string(idle.count() / 1000) + " s");
    if (stop_fd >= 0 && pfds[1].revents) return p.status();
    ssize_t n = ::recv(fd->get(), buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::make(ErrorCode::unavailable, std::string("reading sriovd's event stream: ") + std::strerror(errno));
    }
    if (n == 0) p.finish();
    else if (!p.feed(std::string_view(buf, static_cast<size_t>(n))))
      return Error::make(ErrorCode::unavailable, "sriovd's event stream: " + p.error());
    if (p.headers_done() && !told) {
      told = true;
      if (!on_status(p.status())) return p.status();
    }
    if (told && !pending.empty()) {
      on_body(pending);
      pending.clear();
    }
    if (n == 0) break;
  }
  if (p.failed()) return Error::make(ErrorCode::unavailable, "sriovd's event stream: " + p.error());
  return p.status();
}

std::string problem_detail(const HttpAnswer& a) {
  auto j = nlohmann::json::parse(a.body, nullptr, false);
  if (j.is_object() && j.contains("detail") && j["detail"].is_string()) return j["detail"].get<std::string>();
  return "sriovd answered HTTP " + std::to_string(a.status);
}

}  // namespace sriovd::k8s
