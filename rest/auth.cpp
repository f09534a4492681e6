#include "rest/auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "rest/problem.h"

namespace sriovd::rest {

namespace {

std::array<unsigned char, 32> sha256(std::string_view s) {
  std::array<unsigned char, 32> d{};
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d.data());
  return d;
}

bool valid_name(std::string_view n) {
  if (n.empty() || n.size() > 64) return false;
  for (char c : n)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return false;
  return true;
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::string octal(unsigned mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", mode & 07777);
  return buf;
}

Response unauthorized(const Request& req, const std::string& detail, bool invalid_token) {
  Response r = problem(HttpRefusal::unauthorized, detail, req.path);
  r.headers.emplace_back("WWW-Authenticate", invalid_token ? R"(Bearer realm="sriovd", error="invalid_token")"
                                                           : R"(Bearer realm="sriovd")");
  return r;
}

}  // namespace

Result<TokenSet> TokenSet::parse(std::string_view text, const std::string& origin) {
  TokenSet set;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string line = trim(text.substr(pos, nl - pos));
    pos = nl + 1;
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    auto bad = [&](const std::string& why) {
      std::string message = origin + ":" + std::to_string(line_no) + ": ";
      message += why;
      return Error::make(ErrorCode::invalid, std::move(message), "token_file");
    };
    auto c1 = line.find(':');
    if (c1 == std::string::npos) return bad("expected NAME:TOKEN or NAME:TOKEN:read-only");
    std::string name = line.substr(0, c1);
    std::string rest = line.substr(c1 + 1);
    bool read_only = false;
    if (auto c2 = rest.find(':'); c2 != std::string::npos) {
      std::string scope = rest.substr(c2 + 1);
      if (scope != "read-only") return bad("the third field may only be 'read-only', not '" + scope + "'");
      read_only = true;
      rest = rest.substr(0, c2);
    }
    if (!valid_name(name)) return bad("token name '" + name + "' must be 1-64 of A-Z a-z 0-9 . _ -");
    if (rest.size() < 16) return bad("the token of '" + name + "' is shorter than 16 characters");
    for (char c : rest)
      if (std::isspace(static_cast<unsigned char>(c)) || !std::isprint(static_cast<unsigned char>(c)))
        return bad("the token of '" + name + "' has a space or a control character");
    Entry e{name, sha256(rest), read_only};
    for (const auto& other : set.entries_) {
      if (other.name == name) return bad("token name '" + name + "' appears twice");
      if (CRYPTO_memcmp(other.digest.data(), e.digest.data(), e.digest.size()) == 0)
        return bad("the token of '" + name + "' is also the token of '" + other.name + "'");
    }
    set.entries_.push_back(std::move(e));
    if (nl == text.size()) break;
  }
  if (set.entries_.empty()) return Error::make(ErrorCode::invalid, origin + ": no tokens in the file", "token_file");
  return set;
}

Result<TokenSet> TokenSet::load(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Error::sys(errno, "token file " + path);
  if (!S_ISREG(st.st_mode))
    return Error::make(ErrorCode::invalid, "token file " + path + " is not a regular file", "token_file");
  if (st.st_mode & 0007)
    return Error::make(ErrorCode::invalid,
                       "token file " + path + " is accessible to every user (mode " + octal(st.st_mode) +
                           "); chmod 0600 (or 0640 for a group) it",
                       "token_file");
  if (st.st_mode & 0020)
    return Error::make(
        ErrorCode::invalid,
        "token file " + path + " is writable by its group (mode " + octal(st.st_mode) + "); chmod g-w it",
        "token_file");
  if (st.st_uid != 0 && st.st_uid != ::geteuid())
    return Error::make(ErrorCode::invalid,
                       "token file " + path + " belongs to uid " + std::to_string(st.st_uid) +
                           ", neither root nor this process; chown it",
                       "token_file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error::sys(errno ? errno : EACCES, "reading token file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path);
}

const TokenSet::Entry* TokenSet::find(std::string_view presented) const {
  auto d = sha256(presented);
  const Entry* found = nullptr;
  // Every entry is compared, whatever matched first: the time taken says nothing of which.
  for (const auto& e : entries_) {
    bool same = CRYPTO_memcmp(e.digest.data(), d.data(), d.size()) == 0;
    if (same) found = &e;
  }
  return found;
}

bool is_mutation(const std::string& method) { return method != "GET" && method != "HEAD" && method != "OPTIONS"; }

bool is_loopback_host(const std::string& host) {
  if (host == "localhost" || host == "::1" || host == "0:0:0:0:0:0:0:1") return true;
  // 127.0.0.0/8: four dotted decimal parts, the first 127.
  if (host.rfind("127.", 0) != 0) return false;
  int parts = 2;  // "127" and the one after its dot
  for (size_t i = 4; i < host.size(); ++i) {
    if (host[i] == '.') ++parts;
    else if (!std::isdigit(static_cast<unsigned char>(host[i]))) return false;
  }
  return parts == 4;
}

AuthDecision Authorizer::check(const Request& req) const {
  AuthDecision d;
  std::string via =
      req.transport == Request::Transport::tls && !req.tls_client.empty() ? " cert:" + req.tls_client : "";
  if (req.transport == Request::Transport::unix_socket) {
    d.who = req.peer;
    return d;
  }
  // Probes carry nothing worth protecting and are called by tools without credentials.
  if (req.path == "/healthz" || req.path == "/readyz") {
    d.who = req.peer + via;
    return d;
  }
  auto tokens = tokens_.load();
  if (!tokens) {
    d.who = req.peer + via;
    return d;
  }
  const bool mutation = is_mutation(req.method);
  const std::string* auth = req.header("authorization");
  if (!auth) {
    if (!mutation && reads_open_) {
      d.who = req.peer + via;
      return d;
    }
    d.reason = "no bearer token";
    d.refusal = unauthorized(req, "this request needs a bearer token (Authorization: Bearer ...)", false);
    return d;
  }
  std::string_view v = *auth;
  if (v.size() < 7 || strncasecmp(v.data(), "Bearer ", 7) != 0) {
    d.reason = "an Authorization header that is not a bearer token";
    d.refusal = unauthorized(req, "the Authorization header must be 'Bearer <token>'", true);
    return d;
  }
  std::string presented = trim(v.substr(7));
  const TokenSet::Entry* e = tokens->find(presented);
  if (!e) {
    d.reason = "an unknown bearer token";
    d.refusal = unauthorized(req, "the bearer token is not valid", true);
    return d;
  }
  d.who = "token:" + e->name + via;
  if (mutation && e->read_only) {
    d.reason = "token '" + e->name + "' is read-only";
    d.refusal = problem(HttpRefusal::forbidden, "token '" + e->name + "' may read but not change anything", req.path);
  }
  return d;
}

Result<void> check_deployment(const std::vector<ListenerSpec>& listeners, bool tls, bool token_file,
                              const std::string& tls_key_path) {
  for (const auto& l : listeners) {
    if (l.tcp && !is_loopback_host(l.host) && !tls)
      return Error::make(ErrorCode::invalid,
                         "insecure configuration: " + l.text +
                             " is reachable from other hosts but has no TLS; set tls.cert and tls.key (and a token "
                             "file), or listen on 127.0.0.1",
                         "listen");
  }
  if (tls && !token_file)
    return Error::make(ErrorCode::invalid,
                       "insecure configuration: TLS without a token file would let any client that reaches the port "
                       "change the host; set auth.token_file",
                       "auth.token_file");
  if (tls) {
    struct stat st;
    if (::stat(tls_key_path.c_str(), &st) != 0) return Error::sys(errno, "TLS key " + tls_key_path);
    if (st.st_mode & 0007)
      return Error::make(ErrorCode::invalid,
                         "insecure configuration: TLS key " + tls_key_path + " is readable by every user (mode " +
                             octal(st.st_mode) + "); chmod 0600 it",
                         "tls.key");
  }
  return ok();
}

std::string audit_line(const Request& req, const std::string& who, int status) {
  std::string target = req.path;
  for (auto& c : target)
    if (c == ' ' || c == '\n' || c == '\r') c = '_';
  return "audit: who=" + (who.empty() ? std::string("-") : who) + " method=" + req.method + " path=" + target +
         " status=" + std::to_string(status) + " peer=" + req.peer;
}

}  // namespace sriovd::rest
