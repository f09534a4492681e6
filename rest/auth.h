// Auth: who may call the API, decided for each request as a function of the Request (no socket),
// and the start-up checks that refuse an insecure deployment.
//
// Rules:
// - unix socket: the socket's permissions (0660, group sriovd) are the authorisation; no token.
// - TCP (plain on loopback, or TLS): with a token file, every request but /healthz and /readyz
//   needs `Authorization: Bearer <token>`, reads too unless reads are open; a read-only token
//   may read but not change (403). Without a token file (only possible on loopback: see
//   check_deployment) everything is allowed.
// - Refusals are problem+json 401 (with WWW-Authenticate: Bearer) or 403; the token is never
//   part of a message.
//
// The token file has one token a line, `NAME:TOKEN` or `NAME:TOKEN:read-only`; blank lines and
// lines starting with '#' are ignored. NAME ([A-Za-z0-9._-]+) is what the audit log shows;
// TOKEN is at least 16 characters without spaces or ':'. Tokens are kept as SHA-256 digests and
// compared in constant time against every entry.
//
// Thread-safety: Authorizer::check may run on any number of threads while set_tokens swaps the
// token set (SIGHUP); TokenSet is immutable.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "rest/http.h"

namespace sriovd::rest {

class TokenSet {
 public:
  struct Entry {
    std::string name;
    std::array<unsigned char, 32> digest{};  // SHA-256 of the token
    bool read_only = false;
  };

  // Parses the file's text; errors name `origin` and the line.
  static Result<TokenSet> parse(std::string_view text, const std::string& origin);
  // Reads `path`, refusing a file others may read or anyone but its owner may write, or owned by
  // another user than root or us: a token file is a password file.
  static Result<TokenSet> load(const std::string& path);

  // The entry whose token is `presented`, comparing against every entry in constant time.
  const Entry* find(std::string_view presented) const;
  size_t size() const { return entries_.size(); }

 private:
  std::vector<Entry> entries_;
};

struct AuthDecision {
  std::optional<Response> refusal;  // set: answer this instead of handling the request
  std::string who;                  // for the audit log: "unix:uid=0,pid=12", "token:ci", "cert:CN"
  std::string reason;               // why refused (for the log; never contains the token)
};

class Authorizer {
 public:
  explicit Authorizer(bool reads_open = false) : reads_open_(reads_open) {}
  // Null: no token file. Thread-safe against check().
  void set_tokens(std::shared_ptr<const TokenSet> tokens) { tokens_.store(std::move(tokens)); }
  bool has_tokens() const { return tokens_.load() != nullptr; }

  AuthDecision check(const Request& req) const;

 private:
  bool reads_open_;
  std::atomic<std::shared_ptr<const TokenSet>> tokens_;
};

// True for a request that changes something (anything but GET, HEAD, OPTIONS).
bool is_mutation(const std::string& method);

// "127.0.0.1", "127.x.y.z", "::1", "localhost": addresses only this host can reach.
bool is_loopback_host(const std::string& host);

// What a listener is, for check_deployment.
struct ListenerSpec {
  bool tcp = false;
  std::string host;  // tcp
  std::string text;  // as configured, for messages
};

// Refuses a combination that would expose the API: TCP on a non-loopback address without TLS;
// TLS without a token file; a TLS key others may read. The message says why and what to do.
Result<void> check_deployment(const std::vector<ListenerSpec>& listeners, bool tls, bool token_file,
                              const std::string& tls_key_path);

// The audit line of a mutation: "audit: who=token:ci method=PUT path=/v1/... status=200 peer=...".
std::string audit_line(const Request& req, const std::string& who, int status);

}  // namespace sriovd::rest
