// The reply decoders (NLMSG_ERROR/NLMSG_DONE as netlink_ack() writes them, addresses, routes) and
// datagram splitting, on hand-made and damaged messages.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <libmnl/libmnl.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <climits>
#include <cstring>
#include <vector>

#include "net/rtnl.h"
#include "net/rtnl_test_support.h"

using namespace sriovd;
using namespace sriovd::net;
using namespace sriovd::net::testing;

// --- NLMSG_ERROR / NLMSG_DONE ---------------------------------------------------------------

TEST_CASE("NLMSG_ERROR: ACKs, errnos and extended-ack text") {
  SUBCASE("an ACK (capped, as the kernel sends every ACK)") {
    Msg m(NLMSG_ERROR, NLM_F_CAPPED);
    auto* e = m.extra<nlmsgerr>();
    e->error = 0;
    e->msg.nlmsg_type = RTM_SETLINK;
    e->msg.nlmsg_seq = 42;
    e->msg.nlmsg_len = 200;
    auto r = decode_error(m.bytes());
    REQUIRE(r);
    CHECK(r->errnum == 0);
    CHECK(r->request_seq == 42);
    CHECK(r->request_type == RTM_SETLINK);
    CHECK(r->message.empty());
  }
  SUBCASE("EINVAL with extack message and offset (NETLINK_CAP_ACK)") {
    Msg m(NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS);
    auto* e = m.extra<nlmsgerr>();
    e->error = -EINVAL;
    e->msg.nlmsg_len = 64;
    m.strz(NLMSGERR_ATTR_MSG, "VF 9 out of range\n");
    m.u32(NLMSGERR_ATTR_OFFS, 36);
    auto r = decode_error(m.bytes());
    REQUIRE(r);
    CHECK(r->errnum == EINVAL);
    CHECK(r->message == "VF 9 out of range");
    CHECK(r->bad_offset == 36u);
  }
  SUBCASE("the request echoed in full, TLVs after it") {
    Bytes req = *build_set_vf(3, 1, VfConfig{.spoofchk = true});
    Msg m(NLMSG_ERROR, NLM_F_ACK_TLVS);
    auto* e = m.extra<nlmsgerr>();
    e->error = -EOPNOTSUPP;
    std::memcpy(&e->msg, req.data(), sizeof(nlmsghdr));
    std::memcpy(m.extra_bytes(req.size() - sizeof(nlmsghdr)), req.data() + sizeof(nlmsghdr),
                req.size() - sizeof(nlmsghdr));
    m.strz(NLMSGERR_ATTR_MSG, "not supported");
    auto r = decode_error(m.bytes());
    REQUIRE_MESSAGE(r, why(r));
    CHECK(r->errnum == EOPNOTSUPP);
    CHECK(r->message == "not supported");
  }
  SUBCASE("a real byte sequence: EPERM, capped, \"Operation not permitted\" (hand-written)") {
    const uint8_t bytes[] = {
        0x34, 0,    0,    0,    0x02, 0,   0x00, 0x03, 1, 0, 0, 0, 0x10, 0x20, 0, 0,  // hdr, flags CAPPED|ACK_TLVS
        0xff, 0xff, 0xff, 0xff,                                                       // error = -1 (EPERM)
        0x20, 0,    0,    0,    0x13, 0,   0x05, 0,    1, 0, 0, 0, 0,    0,    0, 0,  // echoed RTM_SETLINK header
        0x08, 0,    0x01, 0,    'n',  'o', '!',  0,                                   // NLMSGERR_ATTR_MSG "no!"
        0x08, 0,    0x02, 0,    0x14, 0,   0,    0,                                   // NLMSGERR_ATTR_OFFS 20
    };
    auto r = decode_error(ByteView(bytes, sizeof bytes));
    REQUIRE_MESSAGE(r, why(r));
    CHECK(r->errnum == EPERM);
    CHECK(r->message == "no!");
    CHECK(r->bad_offset == 20u);
    CHECK(r->request_type == RTM_SETLINK);
    CHECK(r->request_seq == 1);
  }
  SUBCASE("malformed") {
    for (int32_t bad : {1, -4096, INT_MIN, INT_MAX}) {
      Msg m(NLMSG_ERROR, NLM_F_CAPPED);
      m.extra<nlmsgerr>()->error = bad;
      CHECK_FALSE(decode_error(m.bytes()));
    }
    Msg echo_past_end(NLMSG_ERROR, NLM_F_ACK_TLVS);  // not capped: claims a 1000-byte echo
    auto* e = echo_past_end.extra<nlmsgerr>();
    e->error = -EINVAL;
    e->msg.nlmsg_len = 1000;
    CHECK_FALSE(decode_error(echo_past_end.bytes()));
    Msg echo_too_short(NLMSG_ERROR, NLM_F_ACK_TLVS);
    echo_too_short.extra<nlmsgerr>()->msg.nlmsg_len = 3;
    CHECK_FALSE(decode_error(echo_too_short.bytes()));
    Msg bad_offs(NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS);
    bad_offs.extra<nlmsgerr>();
    uint16_t two = 2;
    bad_offs.put(NLMSGERR_ATTR_OFFS, two);
    CHECK_FALSE(decode_error(bad_offs.bytes()));
    Msg wrong_type(RTM_NEWLINK);
    wrong_type.extra<nlmsgerr>();
    CHECK_FALSE(decode_error(wrong_type.bytes()));

    Msg good(NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS);
    good.extra<nlmsgerr>()->error = -EBUSY;
    good.strz(NLMSGERR_ATTR_MSG, "busy");
    damage_everywhere(good.bytes(), [](const Bytes& b) { return bool(decode_error(b)); });
  }
}

TEST_CASE("NLMSG_DONE: end of dump, with or without an error") {
  Msg ok(NLMSG_DONE, NLM_F_MULTI);
  *static_cast<int32_t*>(ok.extra_bytes(4)) = 0;
  CHECK(decode_done(ok.bytes())->errnum == 0);
  Msg bare(NLMSG_DONE, NLM_F_MULTI);
  CHECK(decode_done(bare.bytes())->errnum == 0);
  Msg err(NLMSG_DONE, NLM_F_MULTI | NLM_F_ACK_TLVS);
  *static_cast<int32_t*>(err.extra_bytes(4)) = -EMSGSIZE;
  err.strz(NLMSGERR_ATTR_MSG, "too big");
  auto r = decode_done(err.bytes());
  REQUIRE(r);
  CHECK(r->errnum == EMSGSIZE);
  CHECK(r->message == "too big");
  Msg bad(NLMSG_DONE);
  *static_cast<int32_t*>(bad.extra_bytes(4)) = 5;
  CHECK_FALSE(decode_done(bad.bytes()));
}

// --- RTM_NEWADDR / RTM_NEWROUTE ---------------------------------------------------------------

TEST_CASE("RTM_NEWADDR: address/prefix, link-local IPv6 skipped") {
  SUBCASE("IPv4: IFA_LOCAL wins over the peer in IFA_ADDRESS") {
    Msg m(RTM_NEWADDR);
    auto* ifa = m.extra<ifaddrmsg>();
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = 24;
    ifa->ifa_index = 3;
    uint8_t peer[4] = {192, 0, 2, 254}, local[4] = {192, 0, 2, 1};
    m.put(IFA_ADDRESS, peer).put(IFA_LOCAL, local).strz(IFA_LABEL, "eth0");
    auto r = decode_addr(m.bytes());
    REQUIRE(r);
    REQUIRE(*r);
    CHECK((*r)->ifindex == 3);
    CHECK((*r)->family == AF_INET);
    CHECK((*r)->address == "192.0.2.1/24");
  }
  SUBCASE("IPv6 global, IPv6 link-local") {
    Msg m(RTM_NEWADDR);
    auto* ifa = m.extra<ifaddrmsg>();
    ifa->ifa_family = AF_INET6;
    ifa->ifa_prefixlen = 64;
    ifa->ifa_index = 4;
    in6_addr a{};
    inet_pton(AF_INET6, "2001:db8::1", &a);
    m.put(IFA_ADDRESS, a);
    auto r = decode_addr(m.bytes());
    REQUIRE(r);
    REQUIRE(*r);
    CHECK((*r)->address == "2001:db8::1/64");

    Msg ll(RTM_NEWADDR);
    ifa = ll.extra<ifaddrmsg>();
    ifa->ifa_family = AF_INET6;
    ifa->ifa_prefixlen = 64;
    inet_pton(AF_INET6, "fe80::fc:ff:fe00:1", &a);
    ll.put(IFA_ADDRESS, a);
    r = decode_addr(ll.bytes());
    REQUIRE(r);
    CHECK_FALSE(*r);
    inet_pton(AF_INET6, "febf::1", &a);  // still fe80::/10
    Msg ll2(RTM_NEWADDR);
    ifa = ll2.extra<ifaddrmsg>();
    ifa->ifa_family = AF_INET6;
    ll2.put(IFA_ADDRESS, a);
    CHECK_FALSE(*decode_addr(ll2.bytes()));
    inet_pton(AF_INET6, "fec0::1", &a);  // site-local, not link-local
    Msg sl(RTM_NEWADDR);
    ifa = sl.extra<ifaddrmsg>();
    ifa->ifa_family = AF_INET6;
    sl.put(IFA_ADDRESS, a);
    CHECK(*decode_addr(sl.bytes()));
  }
  SUBCASE("other families are skipped; wrong lengths and prefixes are errors") {
    Msg other(RTM_NEWADDR);
    other.extra<ifaddrmsg>()->ifa_family = AF_PACKET;
    auto r = decode_addr(other.bytes());
    REQUIRE(r);
    CHECK_FALSE(*r);

    Msg short_v6(RTM_NEWADDR);
    short_v6.extra<ifaddrmsg>()->ifa_family = AF_INET6;
    uint8_t four[4] = {1, 2, 3, 4};
    short_v6.put(IFA_ADDRESS, four);
    CHECK_FALSE(decode_addr(short_v6.bytes()));

    Msg long_prefix(RTM_NEWADDR);
    auto* ifa = long_prefix.extra<ifaddrmsg>();
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = 33;
    long_prefix.put(IFA_LOCAL, four);
    CHECK_FALSE(decode_addr(long_prefix.bytes()));

    Msg none(RTM_NEWADDR);
    none.extra<ifaddrmsg>()->ifa_family = AF_INET;
    CHECK_FALSE(decode_addr(none.bytes()));

    Msg good(RTM_NEWADDR);
    ifa = good.extra<ifaddrmsg>();
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = 8;
    good.put(IFA_LOCAL, four);
    damage_everywhere(good.bytes(), [](const Bytes& b) { return bool(decode_addr(b)); });
  }
}

TEST_CASE("RTM_NEWROUTE: table and output interfaces") {
  Msg m(RTM_NEWROUTE, NLM_F_MULTI);
  auto* rtm = m.extra<rtmsg>();
  rtm->rtm_family = AF_INET;
  rtm->rtm_table = RT_TABLE_COMPAT;  // tables above 255 only fit RTA_TABLE
  rtm->rtm_type = RTN_UNICAST;
  m.u32(RTA_TABLE, 1000).u32(RTA_OIF, 5);
  auto r = decode_route(m.bytes());
  REQUIRE(r);
  CHECK(r->table == 1000);
  CHECK(r->oifs == std::vector<int>{5});
  CHECK(r->type == RTN_UNICAST);

  SUBCASE("multipath next hops") {
    Msg mp(RTM_NEWROUTE);
    auto* h = mp.extra<rtmsg>();
    h->rtm_family = AF_INET;
    h->rtm_table = RT_TABLE_MAIN;
    uint8_t hops[2 * sizeof(rtnexthop) + 8] = {};
    rtnexthop a{sizeof(rtnexthop) + 8, 0, 0, 6};  // with one 8-byte RTA_GATEWAY after it
    rtnexthop b{sizeof(rtnexthop), 0, 0, 9};
    std::memcpy(hops, &a, sizeof a);
    uint8_t gw[8] = {8, 0, RTA_GATEWAY, 0, 192, 0, 2, 1};
    std::memcpy(hops + sizeof a, gw, sizeof gw);
    std::memcpy(hops + sizeof a + 8, &b, sizeof b);
    mp.put(RTA_MULTIPATH, hops);
    auto d = decode_route(mp.bytes());
    REQUIRE_MESSAGE(d, why(d));
    CHECK(d->table == RT_TABLE_MAIN);
    CHECK(d->oifs == std::vector<int>{6, 9});

    Msg bad(RTM_NEWROUTE);
    bad.extra<rtmsg>();
    rtnexthop overrun{64, 0, 0, 1};
    bad.put(RTA_MULTIPATH, overrun);
    CHECK_FALSE(decode_route(bad.bytes()));
    Msg tiny(RTM_NEWROUTE);
    tiny.extra<rtmsg>();
    uint8_t three[6] = {6, 0, 0, 0, 1, 0};
    tiny.put(RTA_MULTIPATH, three);
    CHECK_FALSE(decode_route(tiny.bytes()));
  }
  damage_everywhere(m.bytes(), [](const Bytes& b) { return bool(decode_route(b)); });
}

TEST_CASE("split_messages: a datagram into its messages") {
  Bytes a = build_getaddr_dump();
  Bytes b = *build_getlink(std::string_view("eth0"), 0);  // 16 + 16 + 12 (aligned) + 8
  Bytes dgram = a;
  dgram.insert(dgram.end(), b.begin(), b.end());
  auto parts = split_messages(dgram);
  REQUIRE(parts);
  REQUIRE(parts->size() == 2);
  CHECK((*parts)[0].size() == a.size());
  CHECK(Bytes((*parts)[1].begin(), (*parts)[1].end()) == b);
  CHECK(split_messages(ByteView())->empty());
  Bytes truncated(dgram.begin(), dgram.end() - 1);
  CHECK_FALSE(split_messages(truncated));
  Bytes zero_len = a;
  zero_len[0] = 0;
  CHECK_FALSE(split_messages(zero_len));
  CHECK(kMac.to_string() == "02:00:00:00:03:03");
}
