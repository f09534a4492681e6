// RtnlSocket against the real kernel, with read-only requests only (GETLINK of lo, address and
// route dumps, a GETLINK the kernel's policy rejects): answers, errors with extended-ack text,
// timeouts, and recovery after an answer that was not read to its end.
#include <doctest/doctest.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "net/rtnl.h"
#include "net/rtnl_socket.h"

using namespace sriovd;
using namespace sriovd::net;
using namespace std::chrono_literals;

namespace {

template <class R>
std::string why(const R& r) {
  return r ? std::string() : r.error().message;
}

RtnlSocket open_socket() {
  auto s = RtnlSocket::open();
  REQUIRE_MESSAGE(s, why(s));
  return std::move(*s);
}

size_t count_lo_addresses(const std::vector<Bytes>& dump) {
  size_t n = 0;
  for (const Bytes& m : dump) {
    auto a = decode_addr(m);
    REQUIRE_MESSAGE(a, why(a));
    if (*a && (*a)->address == "127.0.0.1/8") ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("RTM_GETLINK lo: one RTM_NEWLINK answering our sequence number") {
  RtnlSocket s = open_socket();
  CHECK(s.portid() != 0);
  auto r = s.transact(*build_getlink(std::string_view("lo"), RTEXT_FILTER_VF));
  REQUIRE_MESSAGE(r, why(r));
  REQUIRE(r->size() == 1);
  auto link = decode_link((*r)[0]);
  REQUIRE_MESSAGE(link, why(link));
  CHECK(link->ifname == "lo");
  CHECK(link->vfs.empty());
  auto nlh = reinterpret_cast<const nlmsghdr*>((*r)[0].data());
  CHECK(nlh->nlmsg_pid == s.portid());

  // By index, on the same socket.
  auto again = s.transact(*build_getlink(link->ifindex, 0));
  REQUIRE(again);
  CHECK(decode_link((*again)[0])->ifname == "lo");
}

TEST_CASE("dumps read to NLMSG_DONE, one after another on one socket") {
  RtnlSocket s = open_socket();
  for (int i = 0; i < 3; ++i) {
    auto addrs = s.transact(build_getaddr_dump());
    REQUIRE_MESSAGE(addrs, why(addrs));
    CHECK(count_lo_addresses(*addrs) == 1);
    auto routes = s.transact(build_getroute_dump());
    REQUIRE_MESSAGE(routes, why(routes));
    for (const Bytes& m : *routes) CHECK(decode_route(m));
  }
}

TEST_CASE("kernel errors carry the errno and the extended-ack text") {
  RtnlSocket s = open_socket();
  auto missing = s.transact(*build_getlink(std::string_view("sriovd-none0"), 0));
  REQUIRE_FALSE(missing);
  CHECK(missing.error().errnum == ENODEV);
  CHECK(missing.error().message.find("RTM_GETLINK") == 0);

  // An IFLA_IFNAME longer than IFNAMSIZ fails the kernel's attribute policy, which says so in
  // the extended ack (a read-only request: nothing can change).
  Bytes buf(256);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_GETLINK;
  nlh->nlmsg_flags = NLM_F_REQUEST;
  mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg));
  mnl_attr_put_strz(nlh, IFLA_IFNAME, "a-name-far-longer-than-ifnamsiz");
  buf.resize(nlh->nlmsg_len);
  auto policy = s.transact(buf);
  REQUIRE_FALSE(policy);
  MESSAGE("kernel said: ", policy.error().message);
  CHECK(policy.error().errnum != 0);
  CHECK(policy.error().message.size() >
        std::string("RTM_GETLINK: ").size() + std::strlen(std::strerror(policy.error().errnum)));

  // The socket still answers afterwards.
  CHECK(s.transact(*build_getlink(std::string_view("lo"), 0)));
}

TEST_CASE("a timeout fails the call; the late answer is never taken for the next one") {
  RtnlSocket s = open_socket();
  s.set_timeout(0ms);
  auto t = s.transact(build_getaddr_dump());
  REQUIRE_FALSE(t);
  CHECK(t.error().errnum == ETIMEDOUT);
  auto t2 = s.transact(*build_getlink(std::string_view("lo"), 0));
  REQUIRE_FALSE(t2);
  CHECK(t2.error().errnum == ETIMEDOUT);

  s.set_timeout(RtnlSocket::kDefaultTimeout);
  // A dump after an abandoned dump (the kernel would say EBUSY on the same socket).
  auto routes = s.transact(build_getroute_dump());
  REQUIRE_MESSAGE(routes, why(routes));
  for (const Bytes& m : *routes) CHECK(decode_route(m));
  auto lo = s.transact(*build_getlink(std::string_view("lo"), 0));
  REQUIRE_MESSAGE(lo, why(lo));
  REQUIRE(lo->size() == 1);
  CHECK(decode_link((*lo)[0])->ifname == "lo");
}

TEST_CASE("a request shorter than a header is refused without sending") {
  RtnlSocket s = open_socket();
  CHECK_FALSE(s.transact(Bytes(8, 0)));
}
