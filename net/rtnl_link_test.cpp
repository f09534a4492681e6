// The link decoders on hand-made messages laid out the way the kernel's rtnl_fill_ifinfo() writes
// them, and on damaged ones; the RTM_SETLINK decoder on requests as the kernel would apply them.
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

// --- RTM_NEWLINK -----------------------------------------------------------------------------

TEST_CASE("RTM_NEWLINK with VF info as the kernel writes it") {
  auto link = decode_link(kernel_newlink());
  REQUIRE_MESSAGE(link, why(link));
  CHECK(link->type == RTM_NEWLINK);
  CHECK(link->ifindex == 7);
  CHECK(link->ifname == "ens1f0");
  CHECK(link->flags == 0x1003);
  CHECK(link->num_vf == 2u);
  REQUIRE(link->vfs.size() == 2);

  const auto& v0 = link->vfs[0];
  CHECK(v0.index == 0);
  CHECK(v0.config.mac == MacAddress{0x02, 0, 0, 0, 0x03, 0x00});
  CHECK(v0.config.vlan == 100);
  CHECK(v0.config.qos == 5);
  CHECK(v0.config.vlan_proto == ETH_P_8021AD);  // from IFLA_VF_VLAN_LIST, not IFLA_VF_VLAN
  CHECK(v0.config.min_tx_rate_mbps == 100u);
  CHECK(v0.config.max_tx_rate_mbps == 1000u);
  CHECK(v0.config.spoofchk == false);
  CHECK(v0.config.trust == true);
  CHECK(v0.config.link_state == LinkState::disable);
  REQUIRE(v0.stats);
  CHECK(v0.stats->rx_packets == 1000);
  CHECK(v0.stats->tx_bytes == 4000);
  CHECK(v0.stats->multicast == 6000);
  CHECK(v0.stats->rx_dropped == 8000);
  CHECK(v0.stats->tx_dropped == 9000);

  const auto& v1 = link->vfs[1];
  CHECK(v1.index == 1);
  CHECK(v1.config.vlan == 0);
  CHECK(v1.config.vlan_proto == ETH_P_8021Q);
  CHECK_FALSE(v1.config.spoofchk);  // 0xffffffff: the driver did not report it
  CHECK_FALSE(v1.config.trust);

  auto no_stats = decode_link(kernel_newlink(false));
  REQUIRE(no_stats);
  CHECK_FALSE(no_stats->vfs[0].stats);
  CHECK(no_stats->vfs[0].config == v0.config);
}

TEST_CASE("RTM_NEWLINK without VFs, legacy attributes, odd values") {
  SUBCASE("a link without RTEXT_FILTER_VF data") {
    Msg m(RTM_NEWLINK);
    m.extra<ifinfomsg>()->ifi_index = 1;
    m.strz(IFLA_IFNAME, "lo");
    auto l = decode_link(m.bytes());
    REQUIRE(l);
    CHECK(l->ifname == "lo");
    CHECK_FALSE(l->num_vf);
    CHECK(l->vfs.empty());
  }
  SUBCASE("altnames in IFLA_PROP_LIST, as libmnl nests them") {
    Msg m(RTM_NEWLINK);
    m.extra<ifinfomsg>()->ifi_index = 3;
    m.strz(IFLA_IFNAME, "ens7f0");
    nlattr* props = m.nest(IFLA_PROP_LIST);
    m.strz(IFLA_ALT_IFNAME, "ens7f0np0");
    m.strz(IFLA_ALT_IFNAME, "enp59s0f0np0");
    m.end(props);
    auto l = decode_link(m.bytes());
    REQUIRE(l);
    CHECK(l->ifname == "ens7f0");
    CHECK(l->altnames == std::vector<std::string>{"ens7f0np0", "enp59s0f0np0"});
  }
  SUBCASE("only the legacy IFLA_VF_TX_RATE and IFLA_VF_VLAN (old kernels)") {
    Msg m(RTM_NEWLINK);
    m.extra<ifinfomsg>()->ifi_index = 2;
    nlattr* list = m.nest(IFLA_VFINFO_LIST);
    nlattr* info = m.nest(IFLA_VF_INFO);
    m.put(IFLA_VF_VLAN, ifla_vf_vlan{4, 7, 1});
    m.put(IFLA_VF_TX_RATE, ifla_vf_tx_rate{4, 250});
    m.end(info).end(list);
    auto l = decode_link(m.bytes());
    REQUIRE(l);
    REQUIRE(l->vfs.size() == 1);
    CHECK(l->vfs[0].index == 4);
    CHECK(l->vfs[0].config.vlan == 7);
    CHECK(l->vfs[0].config.qos == 1);
    CHECK(l->vfs[0].config.vlan_proto == ETH_P_8021Q);
    CHECK(l->vfs[0].config.max_tx_rate_mbps == 250u);
    CHECK_FALSE(l->vfs[0].config.min_tx_rate_mbps);
    CHECK_FALSE(l->vfs[0].config.mac);
  }
  SUBCASE("values VfConfig cannot hold stay unset; structs longer than ours are fine") {
    Msg m(RTM_NEWLINK);
    m.extra<ifinfomsg>();
    nlattr* list = m.nest(IFLA_VFINFO_LIST);
    nlattr* info = m.nest(IFLA_VF_INFO);
    m.put(IFLA_VF_VLAN, ifla_vf_vlan{0, 70000, 300});
    m.put(IFLA_VF_LINK_STATE, ifla_vf_link_state{0, 9});
    uint32_t longer[4] = {0, 1, 0xdead, 0xbeef};  // ifla_vf_spoofchk grown by two fields
    m.put(IFLA_VF_SPOOFCHK, longer);
    m.end(info).end(list);
    auto l = decode_link(m.bytes());
    REQUIRE(l);
    CHECK_FALSE(l->vfs[0].config.vlan);
    CHECK_FALSE(l->vfs[0].config.qos);
    CHECK_FALSE(l->vfs[0].config.vlan_proto);
    CHECK_FALSE(l->vfs[0].config.link_state);
    CHECK(l->vfs[0].config.spoofchk == true);
  }
  SUBCASE("a vlan out of range takes its (valid) qos and proto with it") {
    Msg m(RTM_NEWLINK);
    m.extra<ifinfomsg>();
    nlattr* list = m.nest(IFLA_VFINFO_LIST);
    nlattr* info = m.nest(IFLA_VF_INFO);
    m.put(IFLA_VF_VLAN, ifla_vf_vlan{0, 0x10000, 3});
    m.end(info).end(list);
    auto l = decode_link(m.bytes());
    REQUIRE(l);
    CHECK(l->vfs[0].config == VfConfig{});
  }
  SUBCASE("a VF skipped by the kernel leaves a gap in the indices") {
    Msg m(RTM_NEWLINK);
    m.extra<ifinfomsg>();
    nlattr* list = m.nest(IFLA_VFINFO_LIST);
    put_kernel_vf(m, 0, 0, 0, ETH_P_8021Q, 1, 0);
    put_kernel_vf(m, 2, 0, 0, ETH_P_8021Q, 1, 0);
    m.end(list);
    auto l = decode_link(m.bytes());
    REQUIRE(l);
    REQUIRE(l->vfs.size() == 2);
    CHECK(l->vfs[1].index == 2);
  }
}

TEST_CASE("RTM_NEWLINK: malformed messages are errors, never out-of-bounds reads") {
  const Bytes good = kernel_newlink();
  REQUIRE(decode_link(good));
  damage_everywhere(good, [](const Bytes& b) { return bool(decode_link(b)); });

  SUBCASE("not a link message") {
    Msg m(RTM_NEWADDR);
    m.extra<ifinfomsg>();
    auto r = decode_link(m.bytes());
    REQUIRE_FALSE(r);
    CHECK(r.error().errnum == EBADMSG);
    CHECK(r.error().message.find("RTM_NEWADDR") != std::string::npos);
  }
  SUBCASE("shorter than ifinfomsg") {
    Msg m(RTM_NEWLINK);
    m.extra_bytes(8);
    CHECK_FALSE(decode_link(m.bytes()));
  }
  SUBCASE("short IFLA_VF_MAC") {
    Msg m(RTM_NEWLINK);
    m.extra<ifinfomsg>();
    nlattr* list = m.nest(IFLA_VFINFO_LIST);
    nlattr* info = m.nest(IFLA_VF_INFO);
    uint32_t small[2] = {0, 0};
    m.put(IFLA_VF_MAC, small);
    m.end(info).end(list);
    auto r = decode_link(m.bytes());
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("IFLA_VF_MAC") != std::string::npos);
  }
  SUBCASE("vf indices that disagree inside one IFLA_VF_INFO") {
    Msg m(RTM_NEWLINK);
    m.extra<ifinfomsg>();
    nlattr* list = m.nest(IFLA_VFINFO_LIST);
    nlattr* info = m.nest(IFLA_VF_INFO);
    m.put(IFLA_VF_VLAN, ifla_vf_vlan{1, 7, 1});
    m.put(IFLA_VF_TRUST, ifla_vf_trust{2, 1});
    m.end(info).end(list);
    CHECK_FALSE(decode_link(m.bytes()));
  }
  SUBCASE("an IFLA_VF_INFO naming no vf") {
    Msg m(RTM_NEWLINK);
    m.extra<ifinfomsg>();
    nlattr* list = m.nest(IFLA_VFINFO_LIST);
    m.end(m.nest(IFLA_VF_INFO)).end(list);
    CHECK_FALSE(decode_link(m.bytes()));
  }
  SUBCASE("a 4-byte stats counter") {
    Msg m(RTM_NEWLINK);
    m.extra<ifinfomsg>();
    nlattr* list = m.nest(IFLA_VFINFO_LIST);
    nlattr* info = m.nest(IFLA_VF_INFO);
    m.put(IFLA_VF_TRUST, ifla_vf_trust{0, 1});
    nlattr* st = m.nest(IFLA_VF_STATS);
    m.u32(IFLA_VF_STATS_RX_BYTES, 5);
    m.end(st).end(info).end(list);
    CHECK_FALSE(decode_link(m.bytes()));
  }
  SUBCASE("ifname without its NUL") {
    Msg m(RTM_NEWLINK);
    m.extra<ifinfomsg>();
    m.put_raw(IFLA_IFNAME, "eth0", 4);
    CHECK_FALSE(decode_link(m.bytes()));
  }
  SUBCASE("a nested length past its container") {
    Bytes b = kernel_newlink();
    // Find IFLA_VFINFO_LIST and make its first IFLA_VF_INFO claim more than the list holds.
    auto top = attrs(b, sizeof(ifinfomsg));
    const nlattr* list = nullptr;
    for (auto* a : top)
      if (mnl_attr_get_type(a) == IFLA_VFINFO_LIST) list = a;
    REQUIRE(list);
    auto off = static_cast<size_t>(reinterpret_cast<const uint8_t*>(mnl_attr_get_payload(list)) - b.data());
    uint16_t huge = 0xfff0;
    std::memcpy(b.data() + off, &huge, 2);
    CHECK_FALSE(decode_link(b));
  }
  SUBCASE("trailing bytes that are not an attribute") {
    Bytes b = kernel_newlink();
    for (int i = 0; i < 4; ++i) b.push_back(0);
    b[0] = static_cast<uint8_t>(b.size());
    b[1] = static_cast<uint8_t>(b.size() >> 8);
    // A 4-byte attribute header with length 0 is garbage.
    CHECK_FALSE(decode_link(b));
  }
  SUBCASE("misaligned input is fine") {
    Bytes shifted(good.size() + 1);
    std::memcpy(shifted.data() + 1, good.data(), good.size());
    auto r = decode_link(ByteView(shifted).subspan(1));
    REQUIRE(r);
    CHECK(r->vfs.size() == 2);
  }
}

// --- RTM_SETLINK read back as the kernel applies it ----------------------------------------------

TEST_CASE("RTM_SETLINK request decoder: kernel semantics and refusals") {
  auto setlink = [](auto&& fill) {
    Msg m(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK);
    m.extra<ifinfomsg>()->ifi_index = 9;
    nlattr* list = m.nest(IFLA_VFINFO_LIST);
    nlattr* info = m.nest(IFLA_VF_INFO);
    fill(m);
    m.end(info).end(list);
    return m.bytes();
  };
  SUBCASE("IFLA_VF_VLAN_LIST is applied after IFLA_VF_VLAN, IFLA_VF_RATE after IFLA_VF_TX_RATE") {
    auto b = setlink([](Msg& m) {
      m.put(IFLA_VF_RATE, ifla_vf_rate{2, 10, 500});  // order in the message does not matter
      m.put(IFLA_VF_TX_RATE, ifla_vf_tx_rate{2, 999});
      nlattr* l = m.nest(IFLA_VF_VLAN_LIST);
      ifla_vf_vlan_info vi{2, 30, 2, htons(ETH_P_8021AD)};
      m.put(IFLA_VF_VLAN_INFO, vi);
      m.end(l);
      m.put(IFLA_VF_VLAN, ifla_vf_vlan{2, 20, 1});
    });
    auto r = decode_set_vf(b);
    REQUIRE_MESSAGE(r, why(r));
    CHECK(r->ifindex == 9);
    CHECK(r->vf == 2);
    CHECK(r->config.vlan == 30);
    CHECK(r->config.qos == 2);
    CHECK(r->config.vlan_proto == ETH_P_8021AD);
    CHECK(r->config.max_tx_rate_mbps == 500u);
    CHECK(r->config.min_tx_rate_mbps == 10u);
  }
  SUBCASE("a repeated attribute: the last one counts (nla_parse)") {
    auto r = decode_set_vf(setlink([](Msg& m) {
      m.put(IFLA_VF_TRUST, ifla_vf_trust{0, 1});
      m.put(IFLA_VF_TRUST, ifla_vf_trust{0, 0});
    }));
    REQUIRE(r);
    CHECK(r->config.trust == false);
  }
  SUBCASE("refused") {
    auto rss = setlink([](Msg& m) { m.put(IFLA_VF_RSS_QUERY_EN, ifla_vf_rss_query_en{0, 1}); });
    CHECK(decode_set_vf(rss).error().errnum == EINVAL);
    CHECK_FALSE(decode_set_vf(setlink([](Msg&) {})));  // empty IFLA_VF_INFO
    CHECK_FALSE(decode_set_vf(setlink([](Msg& m) {
      m.put(IFLA_VF_TRUST, ifla_vf_trust{0, 1});
      m.put(IFLA_VF_SPOOFCHK, ifla_vf_spoofchk{1, 1});  // another VF
    })));
    CHECK_FALSE(decode_set_vf(setlink([](Msg& m) { m.put(IFLA_VF_VLAN, ifla_vf_vlan{0, 70000, 0}); })));
    CHECK_FALSE(decode_set_vf(setlink([](Msg& m) { m.put(IFLA_VF_VLAN, ifla_vf_vlan{0, 1, 256}); })));
    CHECK_FALSE(decode_set_vf(setlink([](Msg& m) { m.put(IFLA_VF_LINK_STATE, ifla_vf_link_state{0, 3}); })));
    CHECK_FALSE(decode_set_vf(setlink([](Msg& m) { m.end(m.nest(IFLA_VF_VLAN_LIST)); })));
    CHECK_FALSE(decode_set_vf(setlink([](Msg& m) {
      nlattr* l = m.nest(IFLA_VF_VLAN_LIST);
      ifla_vf_vlan_info vi{0, 1, 0, htons(ETH_P_8021Q)};
      m.put(IFLA_VF_VLAN_INFO, vi).put(IFLA_VF_VLAN_INFO, vi);
      m.end(l);
    })));
    CHECK_FALSE(decode_set_vf(setlink([](Msg& m) {
      uint32_t short_mac[3] = {0, 1, 2};
      m.put(IFLA_VF_MAC, short_mac);
    })));

    Msg other(RTM_SETLINK);
    other.extra<ifinfomsg>()->ifi_index = 1;
    other.u32(IFLA_MTU, 9000);
    CHECK_FALSE(decode_set_vf(other.bytes()));

    Msg two(RTM_SETLINK);
    two.extra<ifinfomsg>();
    nlattr* list = two.nest(IFLA_VFINFO_LIST);
    for (uint32_t vf : {0u, 1u}) {
      nlattr* info = two.nest(IFLA_VF_INFO);
      two.put(IFLA_VF_TRUST, ifla_vf_trust{vf, 1});
      two.end(info);
    }
    two.end(list);
    CHECK_FALSE(decode_set_vf(two.bytes()));

    Msg getlink(RTM_GETLINK);
    getlink.extra<ifinfomsg>();
    CHECK_FALSE(decode_set_vf(getlink.bytes()));
  }
  VfConfig all{kMac, 100, 5, ETH_P_8021AD, 1000, 100, false, true, LinkState::disable};
  damage_everywhere(*build_set_vf(7, 3, all), [](const Bytes& b) { return bool(decode_set_vf(b)); });
}
