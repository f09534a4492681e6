// RawConnection: a TCP or unix-socket connection on which a test writes HTTP bytes by hand (half
// a request, a header a byte at a time, oversized headers) and reads what comes back, each read
// with a deadline. For tests of the server's limits and shutdown that a client library would
// not let them provoke. One connection per object; not thread-safe.
#pragma once

#include <chrono>
#include <string>

namespace sriovd::test {

class RawConnection {
 public:
  static RawConnection tcp(const std::string& host, int port);
  static RawConnection unix_socket(const std::string& path);
  RawConnection(RawConnection&& o) noexcept : fd_(o.fd_), error_(std::move(o.error_)) { o.fd_ = -1; }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(RawConnection&& o) noexcept;  // closes this one's connection first
  RawConnection& operator=(const RawConnection&) = delete;
  ~RawConnection();

  bool connected() const { return fd_ >= 0; }
  const std::string& error() const { return error_; }  // why connecting failed
  // False if the peer closed or reset the connection.
  bool send(const std::string& bytes);
  // Reads one response (headers and a Content-Length body) or until the peer closes; empty when
  // nothing came before the deadline.
  std::string read_response(std::chrono::milliseconds deadline);
  // Everything that comes until the peer closes the connection or the deadline passes.
  std::string read_until_closed(std::chrono::milliseconds deadline);
  // True once the peer has closed the connection (read returned 0 or an error) before `deadline`.
  bool wait_closed(std::chrono::milliseconds deadline);

 private:
  RawConnection() = default;
  // Appends what one read brings; false when nothing came before `end` or the peer closed.
  bool receive(std::string& got, std::chrono::steady_clock::time_point end);
  int fd_ = -1;
  std::string error_;
};

// "HTTP/1.1 413 Payload Too Large\r\n..." → 413; 0 if `response` is not an HTTP response.
int status_of(const std::string& response);

}  // namespace sriovd::test
