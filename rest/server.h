// HttpServer: serves an Api over unix sockets and TCP with cpp-httplib.
//
// One httplib::Server per listen address, each accepting on its own thread and handing
// connections to a pool of worker threads; keep-alive connections hold a worker for as long as
// they stay open, so the pool is sized for the expected concurrent clients. TCP sockets get
// TCP_NODELAY (without it every small response waits for Nagle). Unix sockets are created with
// mode 0660 and, where the group exists, group `sriovd`. Routing is the Api's: the server only
// translates requests and responses, asks the Authorizer (rest/auth.h) first and writes the
// audit line of every mutation ("audit: who=... method=... path=... status=...", info level;
// on the unix socket the peer is the connecting process, from SO_PEERCRED). A connection whose
// request trickles in past ServerOptions::request_timeout_s is closed (see ConnectionWatch).
// Each listener serves at most worker_threads connections at once; as many more wait, and
// beyond that the kernel's listen backlog holds them (see rest/worker_pool.h). Workers
// are started as connections need them and leave after worker_idle_exit idle.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "rest/api.h"
#include "rest/auth.h"

namespace sriovd::rest {

struct ListenAddress {
  enum class Kind { unix_socket, tcp } kind = Kind::unix_socket;
  std::string path;  // unix
  std::string host;  // tcp
  int port = 0;      // tcp; 0 picks a free port

  // "unix:/run/sriovd/sriovd.sock" or "tcp:127.0.0.1:8080" / "tcp:[::1]:8080".
  static Result<ListenAddress> parse(const std::string& text);
  std::string to_string() const;
};

struct ServerOptions {
  int worker_threads = 64;
  // A worker idle this long exits; workers start when a connection finds none idle.
  std::chrono::milliseconds worker_idle_exit{60000};
  size_t max_body_bytes = 1 << 20;
  int read_timeout_s = 10;  // one read (httplib's own timeout)
  int keep_alive_timeout_s = 5;
  // A request must arrive whole (TLS handshake, headers, body) within keep_alive_timeout_s +
  // request_timeout_s of its connection opening or the previous answer going out, however
  // steadily it trickles in (slowloris); else the connection is closed.
  int request_timeout_s = 10;
  size_t keep_alive_max_requests = 100000;
  std::string unix_group = "sriovd";
  unsigned unix_mode = 0660;
  // Set: every request passes it first (refusals answered, mutations audited). Null: all allowed.
  const Authorizer* auth = nullptr;
  // Set: tcp: listeners speak TLS (1.2 or later) with this certificate and key; tls_client_ca
  // also makes them require a client certificate signed by that CA.
  std::string tls_cert, tls_key, tls_client_ca;
};

class HttpServer {
 public:
  HttpServer(const Api& api, ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds now, so a bad address or a socket in use fails at start-up, not later.
  Result<void> bind(const ListenAddress& address);
  // Starts serving every bound address on background threads.
  void start();
  // Stops accepting and waits for the accept threads; removes unix socket files.
  void stop();

  // True while every listener's accept loop runs (what the watchdog checks).
  bool running() const;

  // The addresses actually bound (TCP port 0 resolved).
  std::vector<ListenAddress> bound() const;

 private:
  struct Listener;
  const Api& api_;
  ServerOptions options_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<std::thread> threads_;
  std::atomic<int> workers_{0};  // worker threads alive, over all listeners' pools (WorkerPool)
};

}  // namespace sriovd::rest
