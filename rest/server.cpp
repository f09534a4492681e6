#include "rest/server.h"

#include <fcntl.h>
#include <grp.h>
#include <httplib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <map>

#include "base/fd.h"
#include "base/mutex.h"
#include "rest/auth.h"
#include "rest/problem.h"
#include "rest/worker_pool.h"

namespace sriovd::rest {

namespace {

using Clock = std::chrono::steady_clock;

// The connection a worker thread serves, for the request handlers and the logger that run on it.
class ConnectionWatch;
struct Connection {
  ConnectionWatch* watch = nullptr;
  uint64_t id = 0;
  std::string unix_peer;  // "unix:uid=…,gid=…,pid=…" (SO_PEERCRED), empty for TCP
};
thread_local const Connection* t_connection = nullptr;

// Slowloris: httplib's read timeout is per read, so a client that sends a byte every few seconds
// would keep a worker forever. Each connection gets a deadline by which its next request must
// have arrived whole: keep_alive_timeout_s + request_timeout_s after it was accepted or its last
// answer went out. The deadline is lifted while a request is handled (an event stream may run
// for hours) and set again when the answer is written. A connection past it is shut down, which
// ends the worker's blocked read; the worker then closes it as usual.
class ConnectionWatch {
 public:
  explicit ConnectionWatch(std::chrono::seconds allowance) : allowance_(allowance), thread_([this] { run(); }) {}
  ~ConnectionWatch() {
    {
      MutexLock lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  ConnectionWatch(const ConnectionWatch&) = delete;
  ConnectionWatch& operator=(const ConnectionWatch&) = delete;

  // Watches `sock` from now on; the watch holds its own descriptor of the socket, so shutting it
  // down can never hit a descriptor number reused after the worker closed its own.
  uint64_t add(int sock) SRIOVD_EXCLUDES(mu_) {
    int dup = ::fcntl(sock, F_DUPFD_CLOEXEC, 0);
    MutexLock lock(mu_);
    uint64_t id = ++next_id_;
    entries_[id] = {dup, Clock::now() + allowance_};
    wake_if_idle();
    return id;
  }
  void remove(uint64_t id) SRIOVD_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    if (it->second.fd >= 0) ::close(it->second.fd);
    entries_.erase(it);
  }
  // A request arrived whole: no deadline while it is handled.
  void lift(uint64_t id) SRIOVD_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    if (auto it = entries_.find(id); it != entries_.end()) it->second.deadline.reset();
  }
  // Its answer went out: the next request has the allowance from now.
  void rearm(uint64_t id) SRIOVD_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    if (auto it = entries_.find(id); it != entries_.end()) it->second.deadline = Clock::now() + allowance_;
    wake_if_idle();
  }

 private:
  struct Entry {
    int fd = -1;
    std::optional<Clock::time_point> deadline;
  };
  // A new deadline is now + allowance_, never earlier than one the watch already waits for: the
  // watch needs waking only when it waits for none.
  void wake_if_idle() SRIOVD_REQUIRES(mu_) {
    if (idle_) cv_.notify_all();
  }
  void run() SRIOVD_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    while (!stopping_) {
      auto next = Clock::time_point::max();
      const auto now = Clock::now();
      for (auto& [id, e] : entries_) {
        if (!e.deadline) continue;
        if (*e.deadline <= now) {
          spdlog::warn("closing a connection whose request did not arrive whole within {} s",
                       std::chrono::duration_cast<std::chrono::seconds>(allowance_).count());
          ::shutdown(e.fd, SHUT_RDWR);
          e.deadline.reset();
        } else {
          next = std::min(next, *e.deadline);
        }
      }
      idle_ = next == Clock::time_point::max();
      if (idle_) cv_.wait(lock);
      else cv_.wait_for(lock, next - Clock::now());
    }
  }
  const Clock::duration allowance_;
  Mutex mu_;
  CondVar cv_;
  std::map<uint64_t, Entry> entries_ SRIOVD_GUARDED_BY(mu_);
  uint64_t next_id_ SRIOVD_GUARDED_BY(mu_) = 0;
  bool stopping_ SRIOVD_GUARDED_BY(mu_) = false;
  bool idle_ SRIOVD_GUARDED_BY(mu_) = false;  // the watch waits with no deadline
  std::thread thread_;
};

// httplib::Server::process_and_close_socket serves one connection; it is private. An explicit
// instantiation may name a private member ([temp.spec.general]), which is how the acceptor below
// reaches the served server's own (TLS or plain) implementation.
struct ServeConnection {
  using type = bool (httplib::Server::*)(socket_t);
  friend type serve_connection(ServeConnection);
};
template <typename Tag, typename Tag::type Member>
struct Expose {
  friend typename Tag::type serve_connection(Tag) { return Member; }
};
template struct Expose<ServeConnection, &httplib::Server::process_and_close_socket>;

// The server that handles requests (plain or TLS): it never accepts; it only needs to look
// "listening" while the acceptor runs, since its keep-alive loop ends when it is not.
template <typename Base>
class Served : public Base {
 public:
  using Base::Base;
  void set_listening(socket_t fd) { this->svr_sock_ = fd; }
};

// A plain connection as httplib's request code reads and writes it, one per connection (kept
// across its requests, so bytes of a pipelined request read ahead are not lost). Reads are
// buffered: httplib reads a request line a byte at a time. A fixed-length answer's header block
// is held until its body's first bytes come, and both go out in one writev: one send per answer,
// not two. Timeouts are the socket's own (SO_RCVTIMEO, SO_SNDTIMEO): one system call per read or
// write, no poll before each.
class PlainStream final : public httplib::Stream {
 public:
  PlainStream(int sock, time_t read_s, time_t read_us, time_t write_s, time_t write_us) : sock_(sock) {
    const timeval rt{read_s, static_cast<suseconds_t>(read_us)};
    const timeval wt{write_s, static_cast<suseconds_t>(write_us)};
    ::setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &rt, sizeof rt);
    ::setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &wt, sizeof wt);
  }
  bool buffered() const { return in_at_ < in_end_; }
  bool is_readable() const override { return buffered() || poll_for(POLLIN, 0); }
  bool is_writable() const override {
    // As httplib's: writable, and the peer has not closed its end.
    if (!poll_for(POLLOUT, 0)) return false;
    char c;
    const ssize_t n = ::recv(sock_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n != 0;
  }
  ssize_t read(char* ptr, size_t size) override {
    if (!buffered()) {
      if (size >= sizeof in_) return recv_retrying(ptr, size);
      const ssize_t n = recv_retrying(in_, sizeof in_);
      if (n <= 0) return n;
      in_at_ = 0;
      in_end_ = static_cast<size_t>(n);
    }
    const size_t n = std::min(size, in_end_ - in_at_);
    std::memcpy(ptr, in_ + in_at_, n);
    in_at_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    if (held_.empty() && holds(std::string_view(ptr, size))) {
      held_.assign(ptr, size);
      return static_cast<ssize_t>(size);
    }
    if (!flush(ptr, size)) return -1;
    return static_cast<ssize_t>(size);
  }
  // Sends a held header block (an answer without a body, or to HEAD).
  bool flush() { return held_.empty() || flush(nullptr, 0); }
  void get_remote_ip_and_port(std::string& ip, int& port) const override { name_of(::getpeername, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { name_of(::getsockname, ip, port); }
  socket_t socket() const override { return sock_; }

 private:
  // The header block of an answer with a body of known length: its body follows at once.
  static bool holds(std::string_view s) {
    if (s.size() < 4 || s.substr(s.size() - 4) != "\r\n\r\n" || s.rfind("HTTP/1.", 0) != 0) return false;
    const size_t at = s.find("\r\nContent-Length: ");
    return at != std::string_view::npos && s.substr(at + 18, 2) != "0\r";
  }
  bool poll_for(short events, int ms) const {
    pollfd p{sock_, events, 0};
    int r;
    do r = ::poll(&p, 1, ms);
    while (r < 0 && errno == EINTR);
    return r > 0 && (p.revents & (events | POLLHUP | POLLERR)) != 0;
  }
  ssize_t recv_retrying(char* ptr, size_t size) const {
    ssize_t n;
    do n = ::recv(sock_, ptr, size, 0);
    while (n < 0 && errno == EINTR);
    return n;  // -1 with EAGAIN: the read timeout passed
  }
  // The held block, then `ptr`: both whole, in as few sends as the socket takes.
  bool flush(const char* ptr, size_t size) {
    iovec v[2];
    int n = 0;
    if (!held_.empty()) v[n++] = {held_.data(), held_.size()};
    if (size) v[n++] = {const_cast<char*>(ptr), size};
    iovec* at = v;
    while (n > 0) {
      msghdr m{};
      m.msg_iov = at;
      m.msg_iovlen = static_cast<size_t>(n);
      const ssize_t sent = ::sendmsg(sock_, &m, MSG_NOSIGNAL);
      if (sent < 0) {
        if (errno == EINTR) continue;
        held_.clear();
        return false;  // EAGAIN: the write timeout passed
      }
      auto left = static_cast<size_t>(sent);
      while (n > 0 && left >= at->iov_len) {
        left -= at->iov_len;
        ++at;
        --n;
      }
      if (n > 0) {
        at->iov_base = static_cast<char*>(at->iov_base) + left;
        at->iov_len -= left;
      }
    }
    held_.clear();
    return true;
  }
  using NameFn = int (*)(int, sockaddr*, socklen_t*);
  void name_of(NameFn fn, std::string& ip, int& port) const {
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    if (fn(sock_, reinterpret_cast<sockaddr*>(&a), &len) != 0) return;
    if (a.ss_family != AF_INET && a.ss_family != AF_INET6) return;  // a unix socket has neither
    char host[NI_MAXHOST];
    if (::getnameinfo(reinterpret_cast<sockaddr*>(&a), len, host, sizeof host, nullptr, 0, NI_NUMERICHOST) != 0) return;
    ip = host;
    port = ntohs(a.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&a)->sin_port
                                        : reinterpret_cast<sockaddr_in6*>(&a)->sin6_port);
  }

  const int sock_;
  char in_[4096];
  size_t in_at_ = 0, in_end_ = 0;
  std::string held_;
};

// The plain server: httplib's keep-alive loop, on one PlainStream per connection, and waiting
// for the next request in one poll (httplib's polls every 10 ms), woken every 100 ms to see
// whether the server stops. While other connections wait for a worker, an answer closes its
// connection ("Connection: close") and an idle one is let go: each client is served in turn
// instead of the first ones keeping every worker for their next requests.
template <>
class Served<httplib::Server> : public httplib::Server {
 public:
  void set_listening(socket_t fd) { svr_sock_ = fd; }

 private:
  bool process_and_close_socket(socket_t sock) override {
    const bool r = serve(sock);
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return r;
  }
  bool serve(socket_t sock) {
    PlainStream strm(sock, read_timeout_sec_, read_timeout_usec_, write_timeout_sec_, write_timeout_usec_);
    bool ret = false;
    for (size_t count = keep_alive_max_count_; count > 0 && svr_sock_ != INVALID_SOCKET; --count) {
      if (!strm.buffered() && !next_request(sock)) break;
      bool closed = false;
      ret = process_request(strm, count == 1 || WorkerPool::others_waiting(), closed, nullptr);
      if (!strm.flush()) return false;
      if (!ret || closed) break;
    }
    return ret;
  }
  // Waits up to the keep-alive timeout for the next request's first bytes.
  bool next_request(socket_t sock) {
    const auto until = Clock::now() + std::chrono::seconds(keep_alive_timeout_sec_);
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
      if (left < 0 || svr_sock_ == INVALID_SOCKET) return false;
      pollfd p{sock, POLLIN, 0};
      const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 100)));
      if (r > 0) return true;  // bytes, or the peer gone: the read says which
      if (r < 0 && errno != EINTR) return false;
      if (r == 0 && WorkerPool::others_waiting()) return false;
    }
  }
};

// Accepts connections (on a TCP port it bound or a unix socket handed over: httplib 0.11 only
// creates TCP sockets, and its accept loop works on any listening stream socket in svr_sock_) and
// has each served by `served` on a worker, under the connection watch.
class Acceptor : public httplib::Server {
 public:
  Acceptor(httplib::Server& served, ConnectionWatch& watch, bool unix_socket)
      : served_(served), watch_(watch), unix_(unix_socket) {}
  void adopt(int fd) { svr_sock_ = fd; }
  socket_t listening() const { return svr_sock_; }

 private:
  bool process_and_close_socket(socket_t sock) override {
    Connection c;
    if (unix_) {
      ucred cred{};
      socklen_t len = sizeof cred;
      if (::getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
        c.unix_peer = "unix:uid=" + std::to_string(cred.uid) + ",gid=" + std::to_string(cred.gid) +
                      ",pid=" + std::to_string(cred.pid);
      else c.unix_peer = "unix";
    }
    c.watch = &watch_;
    c.id = watch_.add(sock);
    t_connection = &c;
    bool r = (served_.*serve_connection(ServeConnection{}))(sock);
    t_connection = nullptr;
    watch_.remove(c.id);
    return r;
  }
  httplib::Server& served_;
  ConnectionWatch& watch_;
  const bool unix_;
};

Result<UniqueFd> bind_unix(const std::string& path, unsigned mode, const std::string& group) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path)
    return Error::make(ErrorCode::invalid, "unix socket path too long: " + path, "listen");
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error::sys(errno, "creating unix socket");

  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Error::make(ErrorCode::conflict, path + " exists and is not a socket");
    // A socket file left by a daemon that died. Remove it unless someone still answers on it.
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe && ::connect(probe.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0)
      return Error::make(ErrorCode::conflict, "another process is serving on " + path);
    ::unlink(path.c_str());
  }
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);

  // Create the socket file without any access for others, then widen it to `mode`: no window
  // in which the socket is reachable with the process umask's permissions.
  mode_t old = ::umask(0177);
  int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  int e = errno;
  ::umask(old);
  if (rc != 0) return Error::sys(e, "binding " + path);
  if (!group.empty()) {
    if (struct group* g = ::getgrnam(group.c_str())) {
      // Under the unit (Group=sriovd) the socket is born with that group: no chown, which the
      // unit's system call filter would refuse anyway.
      struct stat sst;
      bool has_group = ::stat(path.c_str(), &sst) == 0 && sst.st_gid == g->gr_gid;
      if (!has_group && ::chown(path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0)
        return Error::sys(errno, "giving " + path + " to group " + group);
    }
  }
  if (::chmod(path.c_str(), mode) != 0) return Error::sys(errno, "setting the mode of " + path);
  if (::listen(fd.get(), SOMAXCONN) != 0) return Error::sys(errno, "listening on " + path);
  return fd;
}

// The subject CN of the TLS client's certificate, or "" (no TLS, or no certificate).
std::string client_cn(const httplib::Request& in) {
  if (!in.ssl) return {};
  X509* cert = SSL_get1_peer_certificate(in.ssl);
  if (!cert) return {};
  char cn[256] = "";
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  X509_free(cert);
  return cn;
}

// The newest OpenSSL error as text ("no such file", "key values mismatch").
std::string ssl_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (!e) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// The transport-neutral request of an httplib one; the peer is the unix socket's process (from
// the connection) or the TCP address.
Request to_request(Request::Transport transport, const httplib::Request& in) {
  Request req;
  req.transport = transport;
  req.method = in.method;
  req.path = in.path;
  for (const auto& [k, v] : in.params) req.query.emplace_back(k, v);
  for (const auto& [k, v] : in.headers) {
    std::string lk = k;
    for (auto& c : lk) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    req.headers.emplace(std::move(lk), v);
  }
  req.body = in.body;
  if (in.remote_addr.empty())
    req.peer = t_connection && !t_connection->unix_peer.empty() ? t_connection->unix_peer : "unix";
  else req.peer = "tcp:" + in.remote_addr + ":" + std::to_string(in.remote_port);
  if (transport == Request::Transport::tls) req.tls_client = client_cn(in);
  return req;
}

// Writes `res` as httplib's answer to `in`: a streamed body chunked, HEAD without its body.
void write_response(Response res, const httplib::Request& in, httplib::Response& out) {
  out.status = res.status;
  for (auto& [k, v] : res.headers) out.set_header(k.c_str(), v);
  if (res.stream && in.method != "HEAD") {
    // Chunked: httplib calls the provider until it stops; a failed write (the client went)
    // ends the stream and frees the worker.
    std::shared_ptr<BodyStream> stream = std::move(res.stream);
    out.set_chunked_content_provider(res.content_type.c_str(), [stream](size_t, httplib::DataSink& sink) {
      std::string chunk;
      if (!stream->next(chunk)) {
        sink.done();
        return true;
      }
      if (!chunk.empty() && !sink.write(chunk.data(), chunk.size())) return false;
      return true;
    });
    return;
  }
  if (in.method == "HEAD") {
    out.set_header("Content-Type", res.content_type);
    out.set_header("Content-Length", std::to_string(res.text().size()));
  } else if (res.shared_text) {
    // Written from the shared text, which the provider keeps alive until httplib is done, in
    // slices of at most 256 KiB.
    static constexpr size_t kSlice = size_t{256} * 1024;
    out.set_content_provider(res.shared_view.size(), res.content_type.c_str(),
                             [text = std::move(res.shared_text), view = res.shared_view](size_t offset, size_t length,
                                                                                         httplib::DataSink& sink) {
                               return sink.write(view.data() + offset, std::min(length, kSlice));
                             });
  } else {
    out.set_content(res.body, res.content_type.c_str());
  }
}

// Serves one request: the Authorizer first, then the Api; mutations and refusals are audited.
void translate(const Api& api, const Authorizer* auth, Request::Transport transport, const httplib::Request& in,
               httplib::Response& out) {
  if (t_connection) t_connection->watch->lift(t_connection->id);  // arrived whole
  Request req = to_request(transport, in);
  AuthDecision decision;
  Response res;
  if (auth) decision = auth->check(req);
  else decision.who = req.peer;
  if (decision.refusal) {
    // Logged without the token: only what was refused and why.
    spdlog::warn("auth: refused {} {} from {}: {}", req.method, req.path, req.peer, decision.reason);
    res = std::move(*decision.refusal);
  } else {
    try {
      res = api.handle(req);
    } catch (const std::exception& e) {
      // A bug, not the client's doing: logged with its text, answered without it.
      spdlog::error("{} {}: unexpected exception: {}", req.method, req.path, e.what());
      res = problem(ErrorCode::internal, "internal error (the daemon's log has the details)", req.path);
    }
  }
  if (is_mutation(req.method) || decision.refusal) spdlog::info("{}", audit_line(req, decision.who, res.status));
  write_response(std::move(res), in, out);
}

// The httplib server that serves a listener's connections: TLS (1.2 or later, with a client CA
// when one is set) on TCP when a certificate is configured, else plain.
Result<std::unique_ptr<httplib::Server>> make_served(const ServerOptions& o, bool tls) {
  if (!tls) return std::unique_ptr<httplib::Server>(std::make_unique<Served<httplib::Server>>());
  std::string why;
  auto server = std::make_unique<Served<httplib::SSLServer>>([&](SSL_CTX& ctx) {
    SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(&ctx, o.tls_cert.c_str()) != 1)
      return why = "TLS certificate " + o.tls_cert + ": " + ssl_error(), false;
    if (SSL_CTX_use_PrivateKey_file(&ctx, o.tls_key.c_str(), SSL_FILETYPE_PEM) != 1)
      return why = "TLS key " + o.tls_key + ": " + ssl_error(), false;
    if (SSL_CTX_check_private_key(&ctx) != 1)
      return why = "TLS key " + o.tls_key + " does not match certificate " + o.tls_cert, false;
    if (!o.tls_client_ca.empty()) {
      // Client certificates: required, and signed by this CA.
      if (SSL_CTX_load_verify_locations(&ctx, o.tls_client_ca.c_str(), nullptr) != 1)
        return why = "TLS client CA " + o.tls_client_ca + ": " + ssl_error(), false;
      SSL_CTX_set_client_CA_list(&ctx, SSL_load_client_CA_file(o.tls_client_ca.c_str()));
      SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    return true;
  });
  if (!server->is_valid()) return Error::make(ErrorCode::invalid, why.empty() ? "TLS setup failed" : why, "tls");
  return std::unique_ptr<httplib::Server>(std::move(server));
}

// Sets the served server's limits and hands every request to translate().
void route_to_api(httplib::Server& srv, const ServerOptions& o, const Api* api, Request::Transport transport) {
  const Authorizer* auth = o.auth;
  srv.set_keep_alive_max_count(o.keep_alive_max_requests);
  srv.set_keep_alive_timeout(o.keep_alive_timeout_s);
  srv.set_read_timeout(o.read_timeout_s, 0);
  srv.set_payload_max_length(o.max_body_bytes);
  // An exception that escapes anyway (while writing the answer, say): httplib would put its text
  // in an EXCEPTION_WHAT header. Answer a bare problem instead and keep the text in the log.
  srv.set_exception_handler([](const httplib::Request& req, httplib::Response& res, const std::exception_ptr& ep) {
    std::string what = "unknown exception";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("{} {}: unexpected exception: {}", req.method, req.path, what);
    Response p = problem(ErrorCode::internal, "internal error (the daemon's log has the details)", "");
    res.status = p.status;
    res.headers.clear();
    res.set_content(p.body, p.content_type.c_str());
  });
  // GET and HEAD are answered before httplib's regex routing; requests with bodies go through
  // catch-all handlers so httplib reads the body first.
  // So is a request that announces no body: neither Content-Length nor Transfer-Encoding means an
  // empty body (RFC 9112, 6.3), but cpp-httplib 0.11 would read a POST, PUT, PATCH or DELETE
  // without them until the client closed, answering nothing until its read timeout.
  srv.set_pre_routing_handler([api, auth, transport](const httplib::Request& req, httplib::Response& res) {
    const bool bodiless = req.method == "GET" || req.method == "HEAD" ||
                          (!req.has_header("Content-Length") && !req.has_header("Transfer-Encoding"));
    if (!bodiless) return httplib::Server::HandlerResponse::Unhandled;
    translate(*api, auth, transport, req, res);
    return httplib::Server::HandlerResponse::Handled;
  });
  auto handler = [api, auth, transport](const httplib::Request& req, httplib::Response& res) {
    translate(*api, auth, transport, req, res);
  };
  srv.Post(".*", handler);
  srv.Put(".*", handler);
  srv.Patch(".*", handler);
  srv.Delete(".*", handler);
  srv.Options(".*", handler);
  // Called once an answer (any answer, errors included) is written.
  srv.set_logger([](const httplib::Request&, const httplib::Response&) {
    if (t_connection) t_connection->watch->rearm(t_connection->id);
  });
}

}  // namespace

struct HttpServer::Listener {
  ListenAddress address;
  std::unique_ptr<ConnectionWatch> watch;
  std::unique_ptr<httplib::Server> served;  // Served<httplib::Server> or Served<httplib::SSLServer>
  std::unique_ptr<Acceptor> server;
  void set_served_listening(socket_t fd) {
    if (auto* p = dynamic_cast<Served<httplib::Server>*>(served.get())) p->set_listening(fd);
    else if (auto* t = dynamic_cast<Served<httplib::SSLServer>*>(served.get())) t->set_listening(fd);
  }
};

namespace {
// A host as getaddrinfo takes it: a name, an IPv4 address, or (bracketed) an IPv6 address with
// an optional %zone. Anything else would only fail later, at bind, with a vaguer message.
bool host_chars_ok(std::string_view host, bool bracketed) {
  for (char c : host) {
    const bool name = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
    if (!name && !(bracketed && (c == ':' || c == '%'))) return false;
  }
  return !host.empty();
}
}  // namespace

Result<ListenAddress> ListenAddress::parse(const std::string& text) {
  ListenAddress a;
  if (text.rfind("unix:", 0) == 0) {
    a.kind = Kind::unix_socket;
    a.path = text.substr(5);
    if (a.path.empty() || a.path[0] != '/')
      return Error::make(ErrorCode::invalid, "listen address '" + text + "': unix socket path must be absolute",
                         "listen");
    return a;
  }
  if (text.rfind("tcp:", 0) == 0) {
    a.kind = Kind::tcp;
    std::string rest = text.substr(4);
    size_t colon;
    if (!rest.empty() && rest[0] == '[') {
      auto close = rest.find(']');
      if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':')
        return Error::make(ErrorCode::invalid, "listen address '" + text + "': expected tcp:[ADDR]:PORT", "listen");
      a.host = rest.substr(1, close - 1);
      if (a.host.find(':') == std::string::npos || !host_chars_ok(a.host, true))
        return Error::make(ErrorCode::invalid, "listen address '" + text + "': [" + a.host + "] is not an IPv6 address",
                           "listen");
      colon = close + 1;
    } else {
      colon = rest.rfind(':');
      if (colon == std::string::npos)
        return Error::make(ErrorCode::invalid, "listen address '" + text + "': expected tcp:HOST:PORT", "listen");
      a.host = rest.substr(0, colon);
      if (!host_chars_ok(a.host, false))
        return Error::make(ErrorCode::invalid,
                           "listen address '" + text + "': bad host '" + a.host +
                               "' (a name or IPv4 address; an IPv6 address goes in brackets, tcp:[::1]:PORT)",
                           "listen");
    }
    const std::string port = rest.substr(colon + 1);
    const bool digits = !port.empty() && port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos;
    const int p = digits ? std::stoi(port) : -1;
    if (p < 0 || p > 65535)
      return Error::make(ErrorCode::invalid, "listen address '" + text + "': port '" + port + "' is not 0 to 65535",
                         "listen");
    a.port = p;
    return a;
  }
  return Error::make(ErrorCode::invalid, "listen address '" + text + "': expected unix:PATH or tcp:HOST:PORT",
                     "listen");
}

std::string ListenAddress::to_string() const {
  if (kind == Kind::unix_socket) return "unix:" + path;
  if (host.find(':') != std::string::npos) return "tcp:[" + host + "]:" + std::to_string(port);
  return "tcp:" + host + ":" + std::to_string(port);
}

HttpServer::HttpServer(const Api& api, ServerOptions options) : api_(api), options_(std::move(options)) {}

HttpServer::~HttpServer() { stop(); }

Result<void> HttpServer::bind(const ListenAddress& address) {
  auto l = std::make_unique<Listener>();
  l->address = address;
  const bool unix_socket = address.kind == ListenAddress::Kind::unix_socket;
  const bool tls = !unix_socket && !options_.tls_cert.empty();
  const Request::Transport transport = unix_socket ? Request::Transport::unix_socket
                                       : tls       ? Request::Transport::tls
                                                   : Request::Transport::tcp;
  auto served = make_served(options_, tls);
  if (!served) return std::move(served).error();
  std::unique_ptr<httplib::Server> srv = std::move(*served);
  l->watch = std::make_unique<ConnectionWatch>(
      std::chrono::seconds(options_.keep_alive_timeout_s + options_.request_timeout_s));
  route_to_api(*srv, options_, &api_, transport);

  auto acceptor = std::make_unique<Acceptor>(*srv, *l->watch, unix_socket);
  acceptor->new_task_queue = [this] {
    return new WorkerPool(static_cast<size_t>(options_.worker_threads), options_.worker_idle_exit, workers_);
  };
  acceptor->set_read_timeout(options_.read_timeout_s, 0);
  acceptor->set_tcp_nodelay(true);  // inherited by the accepted sockets
  if (unix_socket) {
    auto fd = bind_unix(address.path, options_.unix_mode, options_.unix_group);
    if (!fd) return std::move(fd).error();
    acceptor->adopt(fd->release());
  } else if (address.port == 0) {
    int port = acceptor->bind_to_any_port(address.host);
    if (port < 0) return Error::sys(errno, "binding " + address.to_string());
    l->address.port = port;
  } else if (!acceptor->bind_to_port(address.host, address.port)) {
    return Error::sys(errno, "binding " + address.to_string());
  }
  l->served = std::move(srv);
  l->set_served_listening(acceptor->listening());
  l->server = std::move(acceptor);
  listeners_.push_back(std::move(l));
  return ok();
}

void HttpServer::start() {
  for (auto& l : listeners_) {
    httplib::Server* s = l->server.get();
    threads_.emplace_back([s] { s->listen_after_bind(); });
  }
  // httplib's stop() does nothing until the accept loop has marked itself running, so a stop()
  // right after start() would be lost and the accept thread never joined. Return only once
  // every loop runs (it gets there without blocking: a few microseconds).
  for (auto& l : listeners_)
    while (!l->server->is_running()) std::this_thread::yield();
}

void HttpServer::stop() {
  for (auto& l : listeners_) {
    // Keep-alive connections end after their current request.
    l->set_served_listening(INVALID_SOCKET);
    l->server->stop();
  }
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
  for (auto& l : listeners_)
    if (l->address.kind == ListenAddress::Kind::unix_socket) ::unlink(l->address.path.c_str());
  listeners_.clear();
}

bool HttpServer::running() const {
  for (const auto& l : listeners_)
    if (!l->server->is_running()) return false;
  return !listeners_.empty();
}

std::vector<ListenAddress> HttpServer::bound() const {
  std::vector<ListenAddress> out;
  out.reserve(listeners_.size());
  for (const auto& l : listeners_) out.push_back(l->address);
  return out;
}

}  // namespace sriovd::rest
