// The transport-neutral request and response that REST handlers work on. The HTTP server turns
// wire requests into these and back; handlers never see a socket, so they are tested directly.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sriovd::rest {

struct Request {
  std::string method;                                      // "GET"
  std::string path;                                        // "/v1/devices/0000:17:00.0"
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order
  std::map<std::string, std::string> headers;              // lower-case names
  std::string body;
  std::string peer;  // "unix:uid=0,pid=123" or "tcp:127.0.0.1:5555"
  enum class Transport { unix_socket, tcp, tls } transport = Transport::tcp;
  std::string tls_client;  // TLS client certificate's subject CN, if any

  const std::string* header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? nullptr : &it->second;
  }
};

// A body that is produced while it is sent (Server-Sent Events): the server calls next() again
// and again on its worker thread and sends what it appends, until next() returns false. next()
// may block (waiting for an event, up to a heartbeat); it is called from one thread at a time
// and the stream is destroyed when the client goes or the stream ends.
class BodyStream {
 public:
  virtual ~BodyStream() = default;
  // Appends the next bytes to `out` (possibly none); false: the stream has ended.
  virtual bool next(std::string& out) = 0;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;  // ignored when `stream` or `shared_text` is set
  std::vector<std::pair<std::string, std::string>> headers;
  std::shared_ptr<BodyStream> stream;  // set: a streamed (chunked) body instead of `body`
  // Set: the body is `shared_view`, a part of this text (a rendering other answers share),
  // written to the socket from where it is: a list of a thousand devices is not copied for
  // each request.
  std::shared_ptr<const std::string> shared_text;
  std::string_view shared_view;

  // The body, wherever it is (not a stream's).
  std::string_view text() const { return shared_text ? shared_view : std::string_view(body); }
};

}  // namespace sriovd::rest
