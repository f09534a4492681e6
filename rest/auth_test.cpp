// Auth decided per request, without a socket: tokens, read-only tokens, open reads, the unix
// socket, probes, refusals as problem+json; the token file's format and permissions; the
// start-up refusal of insecure deployments; the audit line.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "rest/auth.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
using namespace sriovd::rest;

namespace {

const char* kTokens = "# operators\nci:0123456789abcdef0123\n\nmonitor:fedcba9876543210fedc:read-only\n";

Request request(const std::string& method, const std::string& path, const std::string& bearer = {},
                Request::Transport t = Request::Transport::tcp) {
  Request r;
  r.method = method;
  r.path = path;
  r.transport = t;
  r.peer = t == Request::Transport::unix_socket ? "unix" : "tcp:127.0.0.1:40000";
  if (!bearer.empty()) r.headers["authorization"] = bearer;
  return r;
}

std::unique_ptr<Authorizer> with_tokens(bool reads_open = false) {
  auto a = std::make_unique<Authorizer>(reads_open);
  auto set = TokenSet::parse(kTokens, "tokens");
  REQUIRE(set.ok());
  a->set_tokens(std::make_shared<TokenSet>(std::move(*set)));
  return a;
}

std::string header(const Response& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return {};
}

}  // namespace

TEST_CASE("token file: names, scopes, comments; bad lines name the line") {
  auto set = TokenSet::parse(kTokens, "tokens");
  REQUIRE(set.ok());
  CHECK(set->size() == 2);
  REQUIRE(set->find("0123456789abcdef0123"));
  CHECK(set->find("0123456789abcdef0123")->name == "ci");
  CHECK_FALSE(set->find("0123456789abcdef0123")->read_only);
  CHECK(set->find("fedcba9876543210fedc")->read_only);
  CHECK_FALSE(set->find("0123456789abcdef012"));
  CHECK_FALSE(set->find(""));

  auto err = [](const std::string& text) {
    auto s = TokenSet::parse(text, "t");
    REQUIRE_FALSE(s.ok());
    return s.error().message;
  };
  CHECK(err("ci:short\n") == "t:1: the token of 'ci' is shorter than 16 characters");
  CHECK(err("# c\nnocolon\n").rfind("t:2: expected NAME:TOKEN", 0) == 0);
  CHECK(err("a b:0123456789abcdef0123\n").find("token name 'a b'") != std::string::npos);
  CHECK(err("a:0123456789abcdef0123:admin\n").find("may only be 'read-only'") != std::string::npos);
  CHECK(err("a:0123456789abcdef0123\na:0123456789abcdef0124\n") == "t:2: token name 'a' appears twice");
  CHECK(err("a:0123456789abcdef0123\nb:0123456789abcdef0123\n").find("also the token of 'a'") != std::string::npos);
  CHECK(err("# nothing\n\n") == "t: no tokens in the file");
}

TEST_CASE("token file permissions: not readable by others, not group-writable") {
  test::TempDir dir("sriovd-auth");
  auto path = (dir / "tokens").string();
  std::ofstream(path) << kTokens;
  ::chmod(path.c_str(), 0600);
  CHECK(TokenSet::load(path).ok());
  ::chmod(path.c_str(), 0640);
  CHECK(TokenSet::load(path).ok());
  ::chmod(path.c_str(), 0644);
  auto world = TokenSet::load(path);
  REQUIRE_FALSE(world.ok());
  CHECK(world.error().message.find("accessible to every user (mode 0644)") != std::string::npos);
  ::chmod(path.c_str(), 0660);
  auto group = TokenSet::load(path);
  REQUIRE_FALSE(group.ok());
  CHECK(group.error().message.find("writable by its group") != std::string::npos);
  CHECK_FALSE(TokenSet::load((dir / "none").string()).ok());
}

TEST_CASE("with tokens: reads and changes need one; 401 with WWW-Authenticate; read-only tokens get 403") {
  auto a_ptr = with_tokens();
  auto& a = *a_ptr;
  auto none = a.check(request("GET", "/v1/devices"));
  REQUIRE(none.refusal);
  CHECK(none.refusal->status == 401);
  CHECK(none.refusal->content_type == "application/problem+json");
  CHECK(header(*none.refusal, "WWW-Authenticate") == R"(Bearer realm="sriovd")");

  auto wrong = a.check(request("PUT", "/v1/devices/0000:17:00.0/sriov", "Bearer 0123456789abcdef0124"));
  REQUIRE(wrong.refusal);
  CHECK(wrong.refusal->status == 401);
  CHECK(header(*wrong.refusal, "WWW-Authenticate").find("invalid_token") != std::string::npos);
  CHECK(wrong.refusal->body.find("0123456789abcdef0124") == std::string::npos);
  CHECK(wrong.reason.find("0123456789abcdef0124") == std::string::npos);

  auto basic = a.check(request("GET", "/v1/host", "Basic Y2k6eA=="));
  REQUIRE(basic.refusal);
  CHECK(basic.refusal->status == 401);

  auto good = a.check(request("PUT", "/v1/devices/0000:17:00.0/sriov", "Bearer 0123456789abcdef0123"));
  CHECK_FALSE(good.refusal);
  CHECK(good.who == "token:ci");
  auto scheme_case = a.check(request("GET", "/v1/host", "bearer 0123456789abcdef0123"));
  CHECK_FALSE(scheme_case.refusal);

  auto ro_read = a.check(request("GET", "/v1/devices", "Bearer fedcba9876543210fedc"));
  CHECK_FALSE(ro_read.refusal);
  CHECK(ro_read.who == "token:monitor");
  auto ro_write = a.check(request("PATCH", "/v1/devices/0000:17:00.1/vf-config", "Bearer fedcba9876543210fedc"));
  REQUIRE(ro_write.refusal);
  CHECK(ro_write.refusal->status == 403);
  auto body = nlohmann::json::parse(ro_write.refusal->body);
  CHECK(body["status"] == 403);
  CHECK(body["detail"] == "token 'monitor' may read but not change anything");
}

TEST_CASE("open reads; probes; the unix socket; no token file") {
  auto open_ptr = with_tokens(true);
  auto& open = *open_ptr;
  CHECK_FALSE(open.check(request("GET", "/v1/devices")).refusal);
  CHECK(open.check(request("PUT", "/v1/devices/0000:17:00.0/driver")).refusal);

  auto a_ptr = with_tokens();
  auto& a = *a_ptr;
  CHECK_FALSE(a.check(request("GET", "/healthz")).refusal);
  CHECK_FALSE(a.check(request("GET", "/readyz")).refusal);
  auto unix_peer = a.check(request("PUT", "/v1/devices/0000:17:00.0/sriov", {}, Request::Transport::unix_socket));
  CHECK_FALSE(unix_peer.refusal);
  CHECK(unix_peer.who == "unix");

  Authorizer no_file;
  CHECK_FALSE(no_file.check(request("PUT", "/v1/devices/0000:17:00.0/sriov")).refusal);

  auto tls = request("GET", "/v1/host", "Bearer 0123456789abcdef0123", Request::Transport::tls);
  tls.tls_client = "ops-laptop";
  CHECK(a.check(tls).who == "token:ci cert:ops-laptop");
}

TEST_CASE("start-up refuses insecure deployments and says why") {
  test::TempDir dir("sriovd-auth");
  auto key = (dir / "key.pem").string();
  std::ofstream(key) << "k";
  ::chmod(key.c_str(), 0600);
  ListenerSpec any{true, "0.0.0.0", "tcp:0.0.0.0:8443"};
  ListenerSpec lo{true, "127.0.0.1", "tcp:127.0.0.1:8080"};
  ListenerSpec sock{false, "", "unix:/run/sriovd/sriovd.sock"};

  CHECK(check_deployment({sock, lo}, false, false, "").ok());
  auto plain = check_deployment({sock, any}, false, true, "");
  REQUIRE_FALSE(plain.ok());
  CHECK(plain.error().message.find("tcp:0.0.0.0:8443 is reachable from other hosts but has no TLS") !=
        std::string::npos);
  auto no_token = check_deployment({any}, true, false, key);
  REQUIRE_FALSE(no_token.ok());
  CHECK(no_token.error().message.find("TLS without a token file") != std::string::npos);
  CHECK(check_deployment({any}, true, true, key).ok());
  ::chmod(key.c_str(), 0644);
  auto readable = check_deployment({any}, true, true, key);
  REQUIRE_FALSE(readable.ok());
  CHECK(readable.error().message.find("readable by every user") != std::string::npos);
}

TEST_CASE("loopback hosts") {
  CHECK(is_loopback_host("127.0.0.1"));
  CHECK(is_loopback_host("127.1.2.3"));
  CHECK(is_loopback_host("::1"));
  CHECK(is_loopback_host("localhost"));
  CHECK_FALSE(is_loopback_host("0.0.0.0"));
  CHECK_FALSE(is_loopback_host("::"));
  CHECK_FALSE(is_loopback_host("127.0.0.1.evil"));
  CHECK_FALSE(is_loopback_host("10.0.0.1"));
  CHECK_FALSE(is_loopback_host("127.0.0"));
}

TEST_CASE("the audit line: who, what, result, one line") {
  auto r = request("PUT", "/v1/devices/0000:17:00.0/sriov");
  CHECK(audit_line(r, "token:ci", 200) ==
        "audit: who=token:ci method=PUT path=/v1/devices/0000:17:00.0/sriov status=200 peer=tcp:127.0.0.1:40000");
  r.path = "/v1/x\ninjected";
  CHECK(audit_line(r, "", 404).find('\n') == std::string::npos);
}
