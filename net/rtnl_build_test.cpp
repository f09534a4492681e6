// The rtnetlink builders, checked by decoding their own output.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
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

// --- builders --------------------------------------------------------------------------------

TEST_CASE("RTM_GETLINK by index and by name, with IFLA_EXT_MASK") {
  auto by_index = build_getlink(7, RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS);
  REQUIRE(by_index);
  auto nlh = reinterpret_cast<const nlmsghdr*>(by_index->data());
  CHECK(nlh->nlmsg_len == by_index->size());
  CHECK(nlh->nlmsg_type == RTM_GETLINK);
  CHECK(nlh->nlmsg_flags == NLM_F_REQUEST);
  auto ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  CHECK(ifi->ifi_index == 7);
  auto a = attrs(*by_index, sizeof(ifinfomsg));
  REQUIRE(a.size() == 1);
  CHECK(mnl_attr_get_type(a[0]) == IFLA_EXT_MASK);
  CHECK(mnl_attr_get_u32(a[0]) == (RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS));

  auto by_name = build_getlink(std::string_view("ens1f0"), RTEXT_FILTER_VF);
  REQUIRE(by_name);
  nlh = reinterpret_cast<const nlmsghdr*>(by_name->data());
  CHECK(static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh))->ifi_index == 0);
  a = attrs(*by_name, sizeof(ifinfomsg));
  REQUIRE(a.size() == 2);
  CHECK(mnl_attr_get_type(a[0]) == IFLA_IFNAME);
  CHECK(mnl_attr_validate(a[0], MNL_TYPE_NUL_STRING) == 0);
  CHECK(std::string(mnl_attr_get_str(a[0])) == "ens1f0");
  CHECK(mnl_attr_get_u32(a[1]) == RTEXT_FILTER_VF);

  CHECK_FALSE(build_getlink(0, 0));
  CHECK_FALSE(build_getlink(-3, 0));
  CHECK_FALSE(build_getlink(std::string_view(""), 0));
  CHECK_FALSE(build_getlink(std::string_view("sixteen-chars-xx"), 0));
  CHECK(build_getlink(std::string_view("fifteen-chars-x"), 0));
  CHECK_FALSE(build_getlink(std::string_view("a\0b", 3), 0));
  CHECK(build_getlink(std::string_view(""), 0).error().errnum == EINVAL);
}

TEST_CASE("RTM_SETLINK with IFLA_MTU, as libmnl decodes it") {
  auto m = build_set_mtu(9, 9000);
  REQUIRE(m);
  auto nlh = reinterpret_cast<const nlmsghdr*>(m->data());
  CHECK(nlh->nlmsg_len == m->size());
  CHECK(nlh->nlmsg_type == RTM_SETLINK);
  CHECK(nlh->nlmsg_flags == (NLM_F_REQUEST | NLM_F_ACK));
  CHECK(static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh))->ifi_index == 9);
  auto a = attrs(*m, sizeof(ifinfomsg));
  REQUIRE(a.size() == 1);
  CHECK(mnl_attr_get_type(a[0]) == IFLA_MTU);
  CHECK(mnl_attr_validate(a[0], MNL_TYPE_U32) == 0);
  CHECK(mnl_attr_get_u32(a[0]) == 9000);
  CHECK_FALSE(build_set_mtu(0, 1500));
}

TEST_CASE("RTM_NEWLINK link notification: libmnl reads it, decode_link reads carrier and operstate") {
  auto msg = build_link_notification(4, "ens1f0", IFF_UP | IFF_BROADCAST, false, IF_OPER_DOWN);
  REQUIRE(msg);
  auto nlh = reinterpret_cast<const nlmsghdr*>(msg->data());
  CHECK(nlh->nlmsg_type == RTM_NEWLINK);
  CHECK(nlh->nlmsg_flags == 0);
  auto a = attrs(*msg, sizeof(ifinfomsg));
  REQUIRE(a.size() == 3);
  CHECK(std::string(mnl_attr_get_str(a[0])) == "ens1f0");
  CHECK(mnl_attr_get_type(a[1]) == IFLA_CARRIER);
  CHECK(mnl_attr_get_u8(a[1]) == 0);
  CHECK(mnl_attr_get_type(a[2]) == IFLA_OPERSTATE);
  CHECK(mnl_attr_get_u8(a[2]) == IF_OPER_DOWN);

  auto link = decode_link(*msg);
  REQUIRE(link);
  CHECK(link->ifindex == 4);
  CHECK(link->ifname == "ens1f0");
  CHECK(link->flags == (IFF_UP | IFF_BROADCAST));
  CHECK(link->carrier == false);
  CHECK(link->operstate == IF_OPER_DOWN);
  auto up = decode_link(*build_link_notification(4, "ens1f0", IFF_UP | IFF_LOWER_UP, true, IF_OPER_UP));
  REQUIRE(up);
  CHECK(up->carrier == true);
  CHECK(std::string(operstate_name(*up->operstate)) == "up");
  CHECK(std::string(operstate_name(IF_OPER_LOWERLAYERDOWN)) == "lowerlayerdown");
  CHECK(std::string(operstate_name(200)) == "unknown");

  // A message without them leaves both unknown; a carrier that is not one byte is an error.
  auto bare = decode_link(*build_getlink(4, 0));
  CHECK_FALSE(bare);  // RTM_GETLINK is not a link message
  CHECK_FALSE(build_link_notification(0, "x", 0, true, IF_OPER_UP));
  CHECK_FALSE(build_link_notification(1, "a-name-of-16-chr", 0, true, IF_OPER_UP));
  std::vector<uint8_t> bad(MNL_SOCKET_BUFFER_SIZE);
  auto* h = mnl_nlmsg_put_header(bad.data());
  h->nlmsg_type = RTM_NEWLINK;
  static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(h, sizeof(ifinfomsg)))->ifi_index = 4;
  mnl_attr_put(h, IFLA_CARRIER, 0, nullptr);  // no payload: not a u8
  bad.resize(h->nlmsg_len);
  auto e = decode_link(bad);
  REQUIRE_FALSE(e);
  CHECK(e.error().message.find("IFLA_CARRIER") != std::string::npos);
}

TEST_CASE("RTM_GETADDR and RTM_GETROUTE dumps") {
  Bytes addr = build_getaddr_dump();
  auto nlh = reinterpret_cast<const nlmsghdr*>(addr.data());
  CHECK(nlh->nlmsg_type == RTM_GETADDR);
  CHECK(nlh->nlmsg_flags == (NLM_F_REQUEST | NLM_F_DUMP));
  CHECK(nlh->nlmsg_len == MNL_NLMSG_HDRLEN + sizeof(ifaddrmsg));
  CHECK(static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh))->ifa_family == AF_UNSPEC);
  CHECK(static_cast<const ifaddrmsg*>(
            mnl_nlmsg_get_payload(reinterpret_cast<const nlmsghdr*>(build_getaddr_dump(AF_INET6).data())))
            ->ifa_family == AF_INET6);

  Bytes route = build_getroute_dump(AF_INET);
  nlh = reinterpret_cast<const nlmsghdr*>(route.data());
  CHECK(nlh->nlmsg_type == RTM_GETROUTE);
  CHECK(nlh->nlmsg_flags == (NLM_F_REQUEST | NLM_F_DUMP));
  auto rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(nlh));
  CHECK(rtm->rtm_family == AF_INET);
  CHECK(rtm->rtm_table == RT_TABLE_MAIN);
}

TEST_CASE("RTM_SETLINK for a VF decodes back into the same VfConfig") {
  VfConfig full;
  full.mac = kMac;
  full.vlan = 100;
  full.qos = 5;
  full.vlan_proto = ETH_P_8021AD;
  full.max_tx_rate_mbps = 1000;
  full.min_tx_rate_mbps = 100;
  full.spoofchk = false;
  full.trust = true;
  full.link_state = LinkState::disable;

  auto req = build_set_vf(7, 3, full);
  REQUIRE(req);
  auto nlh = reinterpret_cast<const nlmsghdr*>(req->data());
  CHECK(nlh->nlmsg_type == RTM_SETLINK);
  CHECK(nlh->nlmsg_flags == (NLM_F_REQUEST | NLM_F_ACK));
  auto back = decode_set_vf(*req);
  REQUIRE_MESSAGE(back, why(back));
  CHECK(back->ifindex == 7);
  CHECK(back->vf == 3);
  CHECK(back->ack);
  CHECK(back->config == full);

  // Attributes in do_setvfinfo()'s order; 802.1ad goes in IFLA_VF_VLAN_LIST, proto big-endian.
  auto top = attrs(*req, sizeof(ifinfomsg));
  REQUIRE(top.size() == 1);
  CHECK(mnl_attr_get_type(top[0]) == IFLA_VFINFO_LIST);
  auto infos = children(top[0]);
  REQUIRE(infos.size() == 1);
  CHECK(mnl_attr_get_type(infos[0]) == IFLA_VF_INFO);
  std::vector<uint16_t> types;
  for (auto* a : children(infos[0])) types.push_back(mnl_attr_get_type(a));
  CHECK(types == std::vector<uint16_t>{IFLA_VF_MAC, IFLA_VF_VLAN_LIST, IFLA_VF_RATE, IFLA_VF_SPOOFCHK,
                                       IFLA_VF_LINK_STATE, IFLA_VF_TRUST});
  auto vlan_list = children(children(infos[0])[1]);
  REQUIRE(vlan_list.size() == 1);
  auto vi = static_cast<const ifla_vf_vlan_info*>(mnl_attr_get_payload(vlan_list[0]));
  CHECK(vi->vlan_proto == htons(ETH_P_8021AD));
  CHECK(reinterpret_cast<const uint8_t*>(&vi->vlan_proto)[0] == 0x88);

  SUBCASE("802.1Q goes in the original IFLA_VF_VLAN, as iproute2 sends it") {
    VfConfig c;
    c.vlan = 10;
    c.qos = 3;
    c.vlan_proto = ETH_P_8021Q;
    auto r = build_set_vf(7, 0, c);
    REQUIRE(r);
    auto vf_attrs = children(children(attrs(*r, sizeof(ifinfomsg))[0])[0]);
    REQUIRE(vf_attrs.size() == 1);
    CHECK(mnl_attr_get_type(vf_attrs[0]) == IFLA_VF_VLAN);
    CHECK(decode_set_vf(*r)->config == c);
  }
  SUBCASE("vlan alone means qos 0, 802.1Q") {
    VfConfig c;
    c.vlan = 0;  // clears the VLAN filter
    auto r = build_set_vf(7, 0, c);
    REQUIRE(r);
    VfConfig expect = c;
    expect.qos = 0;
    expect.vlan_proto = ETH_P_8021Q;
    CHECK(decode_set_vf(*r)->config == expect);
  }
  SUBCASE("max_tx_rate alone is the legacy IFLA_VF_TX_RATE (the kernel keeps the min rate)") {
    VfConfig c;
    c.max_tx_rate_mbps = 300;
    auto r = build_set_vf(7, 5, c);
    REQUIRE(r);
    auto vf_attrs = children(children(attrs(*r, sizeof(ifinfomsg))[0])[0]);
    REQUIRE(vf_attrs.size() == 1);
    CHECK(mnl_attr_get_type(vf_attrs[0]) == IFLA_VF_TX_RATE);
    auto back1 = decode_set_vf(*r);
    CHECK(back1->config == c);
    CHECK(back1->vf == 5);
  }
  SUBCASE("each single field round-trips") {
    std::vector<VfConfig> singles(5);
    singles[0].mac = kMac;
    singles[1].spoofchk = true;
    singles[2].trust = false;
    singles[3].link_state = LinkState::auto_;
    singles[4].link_state = LinkState::enable;
    for (const auto& c : singles) {
      auto r = build_set_vf(1, 63, c);
      REQUIRE(r);
      auto d = decode_set_vf(*r);
      REQUIRE(d);
      CHECK(d->config == c);
      CHECK(d->vf == 63);
    }
  }
  SUBCASE("values are sent as given: drivers judge them") {
    VfConfig c;
    c.vlan = 5000;
    c.qos = 9;
    c.vlan_proto = 0x1234;
    auto r = build_set_vf(1, 0, c);
    REQUIRE(r);
    CHECK(decode_set_vf(*r)->config == c);
  }
  SUBCASE("refused: nothing to set, qos/proto without vlan, min rate without max, bad ifindex") {
    CHECK(build_set_vf(7, 0, VfConfig{}).error().errnum == EINVAL);
    VfConfig q;
    q.qos = 3;
    CHECK(build_set_vf(7, 0, q).error().field == "qos");
    VfConfig p;
    p.vlan_proto = ETH_P_8021AD;
    CHECK(build_set_vf(7, 0, p).error().field == "vlan_proto");
    VfConfig m;
    m.min_tx_rate_mbps = 10;
    CHECK(build_set_vf(7, 0, m).error().field == "min_tx_rate_mbps");
    CHECK_FALSE(build_set_vf(0, 0, full));
  }
}
