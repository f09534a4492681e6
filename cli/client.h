// Client: HTTP requests to sriovd over its unix socket or a TCP URL, with libcurl.
// One Client per thread (a curl easy handle is not shared); connections are kept alive between
// requests of the same Client.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace sriovd::cli {

struct Endpoint {
  std::string unix_socket;  // when set, requests go over this socket
  std::string base_url;     // "http://127.0.0.1:8080"; "http://localhost" with a unix socket
  std::string token;        // bearer token, if any ($SRIOVD_TOKEN, or --token)
  std::string cacert;       // https: the CA that signed the daemon's certificate (else the system's)
  std::string cert, key;    // https: a client certificate and its key, for a daemon that asks

  // --url wins, then --socket, then $SRIOVD_SOCKET, then /run/sriovd/sriovd.sock.
  static Endpoint resolve(const std::string& url, const std::string& socket);
  std::string describe() const;  // "unix:/run/sriovd/sriovd.sock" or the URL
};

struct HttpResult {
  long status = 0;
  std::string content_type;
  std::string body;
};

class Client {
 public:
  explicit Client(Endpoint endpoint);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Fails (unavailable) only when no HTTP answer came back; HTTP errors are results.
  // `extra_header` ("Idempotency-Key: x") is sent when not empty.
  Result<HttpResult> request(const std::string& method, const std::string& path, const std::string& body = {},
                             const std::string& content_type = "application/json",
                             const std::string& extra_header = {});

  // A streamed GET (text/event-stream): `on_bytes` gets the body as it arrives and returns
  // false to stop. `on_status` is called once with the status and content type before any
  // body; the body of an error answer (problem+json) is collected into the result instead. Gives
  // up when nothing at all (not even a keepalive) arrives for `idle_timeout_s`. Returns when the
  // server ends the stream, on_bytes says stop, or the connection fails (unavailable).
  Result<HttpResult> stream(const std::string& path, const std::vector<std::string>& headers,
                            const std::function<bool(std::string_view)>& on_bytes, long idle_timeout_s = 45);

  const Endpoint& endpoint() const { return endpoint_; }

 private:
  Endpoint endpoint_;
  void* curl_ = nullptr;
};

// The one-line message for an error answer: problem+json's detail, else the status line.
std::string error_message(const HttpResult& r);

}  // namespace sriovd::cli
