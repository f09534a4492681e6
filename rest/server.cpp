#include "rest/server.h"

#include <grp.h>
#include <httplib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <mutex>

#include "base/fd.h"
#include "rest/auth.h"

namespace sriovd::rest {

namespace {

// httplib 0.11 only creates TCP sockets. Its accept loop (listen_after_bind) works on any
// listening stream socket in svr_sock_, so a unix socket is bound here and handed over.
class UnixHttpServer : public httplib::Server {
 public:
  void adopt(int fd) { svr_sock_ = fd; }
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

// At most `workers` connections are served at once, `workers` more wait here, and beyond that
// the accept loop itself waits (enqueue blocks), so further clients wait in the kernel's listen
// backlog: nothing in the daemon grows with the number of clients.
class BoundedPool : public httplib::TaskQueue {
 public:
  explicit BoundedPool(size_t workers) : max_waiting_(workers) {
    for (size_t i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
  }
  void enqueue(std::function<void()> fn) override {
    std::unique_lock lock(mu_);
    space_.wait(lock, [&] { return jobs_.size() < max_waiting_ || shutdown_; });
    jobs_.push_back(std::move(fn));
    ready_.notify_one();
  }
  void shutdown() override {
    {
      std::lock_guard lock(mu_);
      shutdown_ = true;
    }
    ready_.notify_all();
    space_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mu_);
        ready_.wait(lock, [&] { return !jobs_.empty() || shutdown_; });
        // Connections already accepted are served even when stopping: they are answered.
        if (jobs_.empty()) return;
        fn = std::move(jobs_.front());
        jobs_.pop_front();
      }
      space_.notify_one();
      fn();
    }
  }
  const size_t max_waiting_;
  std::mutex mu_;
  std::condition_variable ready_, space_;
  std::deque<std::function<void()>> jobs_;  // guarded by mu_
  bool shutdown_ = false;                    // guarded by mu_
  std::vector<std::thread> threads_;
};

void translate(const Api& api, const Authorizer* auth, Request::Transport transport, const httplib::Request& in,
               httplib::Response& out) {
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
  req.peer = in.remote_addr.empty() ? "unix" : "tcp:" + in.remote_addr + ":" + std::to_string(in.remote_port);
  if (transport == Request::Transport::tls) req.tls_client = client_cn(in);
  AuthDecision decision;
  Response res;
  if (auth) decision = auth->check(req);
  else decision.who = req.peer;
  if (decision.refusal) {
    // Logged without the token: only what was refused and why.
    spdlog::warn("auth: refused {} {} from {}: {}", req.method, req.path, req.peer, decision.reason);
    res = std::move(*decision.refusal);
  } else {
    res = api.handle(req);
  }
  if (is_mutation(req.method) || decision.refusal) spdlog::info("{}", audit_line(req, decision.who, res.status));
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
    out.set_header("Content-Length", std::to_string(res.body.size()));
  } else {
    out.set_content(std::move(res.body), res.content_type.c_str());
  }
}

}  // namespace

struct HttpServer::Listener {
  ListenAddress address;
  std::unique_ptr<httplib::Server> server;
};

Result<ListenAddress> ListenAddress::parse(const std::string& text) {
  ListenAddress a;
  if (text.rfind("unix:", 0) == 0) {
    a.kind = Kind::unix_socket;
    a.path = text.substr(5);
    if (a.path.empty() || a.path[0] != '/')
      return Error::make(ErrorCode::invalid, "listen address '" + text + "': unix socket path must be absolute", "listen");
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
      colon = close + 1;
    } else {
      colon = rest.rfind(':');
      if (colon == std::string::npos)
        return Error::make(ErrorCode::invalid, "listen address '" + text + "': expected tcp:HOST:PORT", "listen");
      a.host = rest.substr(0, colon);
    }
    std::string port = rest.substr(colon + 1);
    char* end = nullptr;
    long p = std::strtol(port.c_str(), &end, 10);
    if (port.empty() || *end || p < 0 || p > 65535 || a.host.empty())
      return Error::make(ErrorCode::invalid, "listen address '" + text + "': bad host or port", "listen");
    a.port = static_cast<int>(p);
    return a;
  }
  return Error::make(ErrorCode::invalid, "listen address '" + text + "': expected unix:PATH or tcp:HOST:PORT", "listen");
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
  std::unique_ptr<httplib::Server> srv;
  Request::Transport transport =
      address.kind == ListenAddress::Kind::unix_socket ? Request::Transport::unix_socket : Request::Transport::tcp;
  if (address.kind == ListenAddress::Kind::unix_socket) {
    auto u = std::make_unique<UnixHttpServer>();
    auto fd = bind_unix(address.path, options_.unix_mode, options_.unix_group);
    if (!fd) return std::move(fd).error();
    u->adopt(fd->release());
    srv = std::move(u);
  } else if (!options_.tls_cert.empty()) {
    std::string why;
    const ServerOptions& o = options_;
    auto tls = std::make_unique<httplib::SSLServer>([&](SSL_CTX& ctx) {
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
    if (!tls->is_valid()) return Error::make(ErrorCode::invalid, why.empty() ? "TLS setup failed" : why, "tls");
    srv = std::move(tls);
    srv->set_tcp_nodelay(true);
    transport = Request::Transport::tls;
  } else {
    srv = std::make_unique<httplib::Server>();
    srv->set_tcp_nodelay(true);
  }
  const Authorizer* auth = options_.auth;
  const Api* api = &api_;
  int threads = options_.worker_threads;
  srv->new_task_queue = [threads] { return new BoundedPool(static_cast<size_t>(threads)); };
  srv->set_keep_alive_max_count(options_.keep_alive_max_requests);
  srv->set_keep_alive_timeout(options_.keep_alive_timeout_s);
  srv->set_read_timeout(options_.read_timeout_s, 0);
  srv->set_payload_max_length(options_.max_body_bytes);
  // GET and HEAD are answered before httplib's regex routing; requests with bodies go through
  // catch-all handlers so httplib reads the body first.
  srv->set_pre_routing_handler([api, auth, transport](const httplib::Request& req, httplib::Response& res) {
    if (req.method != "GET" && req.method != "HEAD") return httplib::Server::HandlerResponse::Unhandled;
    translate(*api, auth, transport, req, res);
    return httplib::Server::HandlerResponse::Handled;
  });
  auto handler = [api, auth, transport](const httplib::Request& req, httplib::Response& res) {
    translate(*api, auth, transport, req, res);
  };
  srv->Post(".*", handler);
  srv->Put(".*", handler);
  srv->Patch(".*", handler);
  srv->Delete(".*", handler);
  srv->Options(".*", handler);
  if (address.kind == ListenAddress::Kind::tcp) {
    if (address.port == 0) {
      int port = srv->bind_to_any_port(address.host);
      if (port < 0) return Error::sys(errno, "binding " + address.to_string());
      l->address.port = port;
    } else if (!srv->bind_to_port(address.host, address.port)) {
      return Error::sys(errno, "binding " + address.to_string());
    }
  }
  l->server = std::move(srv);
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
  for (auto& l : listeners_) l->server->stop();
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
  for (const auto& l : listeners_) out.push_back(l->address);
  return out;
}

}  // namespace sriovd::rest
