#include "tests/support/raw_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sriovd::test {

RawConnection RawConnection::tcp(const std::string& host, int port) {
  RawConnection c;
  c.fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host.c_str(), &sa.sin_addr);
  if (::connect(c.fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    c.error_ = std::strerror(errno);
    ::close(c.fd_);
    c.fd_ = -1;
  }
  return c;
}

RawConnection RawConnection::unix_socket(const std::string& path) {
  RawConnection c;
  c.fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
  if (::connect(c.fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    c.error_ = std::strerror(errno);
    ::close(c.fd_);
    c.fd_ = -1;
  }
  return c;
}

RawConnection& RawConnection::operator=(RawConnection&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    error_ = std::move(o.error_);
    o.fd_ = -1;
  }
  return *this;
}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawConnection::send(const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

bool RawConnection::receive(std::string& got, std::chrono::steady_clock::time_point end) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
  char buf[8192];
  ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
  if (n <= 0) return false;
  got.append(buf, static_cast<size_t>(n));
  return true;
}

std::string RawConnection::read_response(std::chrono::milliseconds deadline) {
  auto end = std::chrono::steady_clock::now() + deadline;
  std::string got;
  for (;;) {
    auto head_end = got.find("\r\n\r\n");
    if (head_end != std::string::npos) {
      size_t length = 0;
      std::string head = got.substr(0, head_end);
      for (auto& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (auto p = head.find("content-length:"); p != std::string::npos) length = std::stoul(head.substr(p + 15));
      if (got.size() >= head_end + 4 + length) return got;
    }
    if (!receive(got, end)) return got;
  }
}

std::string RawConnection::read_until_closed(std::chrono::milliseconds deadline) {
  auto end = std::chrono::steady_clock::now() + deadline;
  std::string got;
  while (receive(got, end)) {
  }
  return got;
}

bool RawConnection::wait_closed(std::chrono::milliseconds deadline) {
  auto end = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return true;
  }
}

int status_of(const std::string& response) {
  if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) return 0;
  return std::atoi(response.c_str() + 9);
}

}  // namespace sriovd::test
