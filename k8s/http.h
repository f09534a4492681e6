// A small HTTP/1.1 client for sriovd's unix socket, and the incremental response parser under it.
//
// Why not cli::Client (libcurl): libcurl and what it loads (OpenSSL, GnuTLS, Kerberos, LDAP, ...)
// make about 7 MiB of the sidecar's resident memory, half its 16 MiB budget, to speak plain
// HTTP over one local unix socket. This client speaks just that: one request per connection
// (Connection: close; a unix connect costs microseconds), bodies delimited by Content-Length,
// chunked encoding or the end of the connection, and streamed GETs for Server-Sent Events.
//
// HttpResponseParser is pure (fuzzed); UnixHttpClient is stateless apart from its socket path
// and may be shared between threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace sriovd::k8s {

class HttpResponseParser {
 public:
  // Body bytes as they are decoded (chunk framing removed).
  using BodySink = std::function<void(std::string_view)>;
  explicit HttpResponseParser(BodySink sink) : sink_(std::move(sink)) {}

  // Feeds bytes from the connection. Returns false once the response is malformed (error()
  // says why); bytes after a complete response are ignored.
  bool feed(std::string_view bytes);
  // The peer closed the connection: completes a body delimited by the close.
  void finish();

  bool headers_done() const { return state_ > State::headers; }
  bool complete() const { return state_ == State::done; }
  bool failed() const { return state_ == State::failed; }
  const std::string& error() const { return error_; }
  int status() const { return status_; }
  const std::string& content_type() const { return content_type_; }

  static constexpr size_t max_header_bytes = size_t{64} * 1024;

 private:
  enum class State {
    status_line,
    headers,
    body_length,
    chunk_size,
    chunk_data,
    chunk_crlf,
    trailers,
    body_close,
    done,
    failed
  };
  bool fail(std::string why);
  bool header_line(std::string_view line);
  bool end_of_headers();

  BodySink sink_;
  State state_ = State::status_line;
  std::string line_;  // the line being assembled (status, header, chunk size, trailer)
  size_t header_bytes_ = 0;
  int status_ = 0;
  std::string content_type_;
  bool chunked_ = false;
  bool have_length_ = false;
  unsigned long long remaining_ = 0;  // of the body (Content-Length) or of the current chunk
  std::string error_;
};

struct HttpAnswer {
  int status = 0;
  std::string content_type;
  std::string body;
};

class UnixHttpClient {
 public:
  explicit UnixHttpClient(std::string socket_path) : path_(std::move(socket_path)) {}
  const std::string& socket_path() const { return path_; }
  std::string describe() const { return "unix:" + path_; }

  // Fails (unavailable) when no complete HTTP answer came back; HTTP errors are answers.
  Result<HttpAnswer> request(const std::string& method, const std::string& target, const std::string& body = {},
                             const std::vector<std::string>& headers = {},
                             std::chrono::milliseconds timeout = std::chrono::seconds(120)) const;

  // A streamed GET. on_status runs once the headers are in (return false to stop, e.g. on an
  // error status); on_body gets body bytes as they arrive. Returns the status when the server
  // ends the stream, when `stop_fd` becomes readable, or fails (unavailable) on a connection
  // error or when nothing arrives for `idle` (a server that keeps the stream alive sends
  // keepalives well within it).
  Result<int> stream(const std::string& target, const std::vector<std::string>& headers,
                     const std::function<bool(int status)>& on_status,
                     const std::function<void(std::string_view)>& on_body, int stop_fd,
                     std::chrono::milliseconds idle) const;

 private:
  std::string path_;
};

// problem+json's detail, else "sriovd answered HTTP <status>".
std::string problem_detail(const HttpAnswer& a);

}  // namespace sriovd::k8s
