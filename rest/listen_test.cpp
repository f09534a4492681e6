// Listen addresses as an operator writes them in the configuration or --listen: the forms that
// work, and a refusal that names the field and what is wrong for each that would only fail at bind.
#include <doctest/doctest.h>

#include "rest/server.h"

using namespace sriovd;
using namespace sriovd::rest;

namespace {

std::string refusal(const std::string& text) {
  auto a = ListenAddress::parse(text);
  REQUIRE_FALSE(a);
  CHECK(a.error().code == ErrorCode::invalid);
  CHECK(a.error().field == "listen");
  return a.error().message;
}

}  // namespace

TEST_CASE("listen addresses: unix sockets, names, IPv4 and bracketed IPv6 parse and print back") {
  auto u = ListenAddress::parse("unix:/run/sriovd/sriovd.sock");
  REQUIRE(u);
  CHECK(u->kind == ListenAddress::Kind::unix_socket);
  CHECK(u->path == "/run/sriovd/sriovd.sock");

  for (auto [text, host, port] :
       {std::tuple{"tcp:127.0.0.1:8080", "127.0.0.1", 8080}, std::tuple{"tcp:[::1]:8443", "::1", 8443},
        std::tuple{"tcp:[fe80::1%eth0]:0", "fe80::1%eth0", 0},
        std::tuple{"tcp:node-1.example:65535", "node-1.example", 65535}}) {
    CAPTURE(text);
    auto a = ListenAddress::parse(text);
    REQUIRE(a);
    CHECK(a->kind == ListenAddress::Kind::tcp);
    CHECK(a->host == host);
    CHECK(a->port == port);
    CHECK(a->to_string() == text);
  }
}

TEST_CASE("listen addresses: each malformed one is refused with the reason") {
  CHECK(refusal("unix:run/x.sock").find("must be absolute") != std::string::npos);
  CHECK(refusal("http://0.0.0.0:80").find("expected unix:PATH or tcp:HOST:PORT") != std::string::npos);
  CHECK(refusal("tcp:localhost").find("expected tcp:HOST:PORT") != std::string::npos);
  CHECK(refusal("tcp:[::1]8080").find("expected tcp:[ADDR]:PORT") != std::string::npos);
  // An IPv6 address without brackets is ambiguous with the port's colon.
  CHECK(refusal("tcp:::1:8080").find("goes in brackets") != std::string::npos);
  CHECK(refusal("tcp:[127.0.0.1]:80").find("not an IPv6 address") != std::string::npos);
  CHECK(refusal("tcp:a]b:80").find("bad host 'a]b'") != std::string::npos);
  CHECK(refusal("tcp:host name:80").find("bad host") != std::string::npos);
  CHECK(refusal("tcp::80").find("bad host") != std::string::npos);
  for (const char* port : {"", "+80", " 80", "-1", "65536", "123456", "80x"}) {
    CAPTURE(port);
    CHECK(refusal(std::string("tcp:127.0.0.1:") + port).find("is not 0 to 65535") != std::string::npos);
  }
}
