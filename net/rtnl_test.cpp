// Builders are checked by decoding their own output; decoders by hand-made messages, laid out
// the way the kernel's rtnl_fill_ifinfo()/netlink_ack() write them, and by damaged ones.
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

using namespace sriovd;
using namespace sriovd::net;

namespace {

// The error text of a failed Result, "" for a good one (doctest may print messages of passing
// assertions, so the message must be safe to build either way).
template <class R>
std::string why(const R& r) {
  return r ? std::string() : r.error().message;
}

// A hand-built netlink message (libmnl on a zeroed buffer), for decoder tests.
class Msg {
 public:
  Msg(uint16_t type, uint16_t flags = 0, uint32_t seq = 0) : buf_(8192, 0) {
    nlh_ = mnl_nlmsg_put_header(buf_.data());
    nlh_->nlmsg_type = type;
    nlh_->nlmsg_flags = flags;
    nlh_->nlmsg_seq = seq;
  }
  template <class T>
  T* extra() { return static_cast<T*>(mnl_nlmsg_put_extra_header(nlh_, sizeof(T))); }
  void* extra_bytes(size_t n) { return mnl_nlmsg_put_extra_header(nlh_, n); }
  template <class T>
  Msg& put(uint16_t type, const T& v) {
    mnl_attr_put(nlh_, type, sizeof v, &v);
    return *this;
  }
  Msg& put_raw(uint16_t type, const void* p, size_t n) {
    mnl_attr_put(nlh_, type, n, p);
    return *this;
  }
  Msg& u32(uint16_t type, uint32_t v) { mnl_attr_put_u32(nlh_, type, v); return *this; }
  Msg& u64(uint16_t type, uint64_t v) { mnl_attr_put_u64(nlh_, type, v); return *this; }
  Msg& strz(uint16_t type, const char* s) { mnl_attr_put_strz(nlh_, type, s); return *this; }
  nlattr* nest(uint16_t type) { return mnl_attr_nest_start(nlh_, type); }
  Msg& end(nlattr* n) { mnl_attr_nest_end(nlh_, n); return *this; }
  nlmsghdr* nlh() { return nlh_; }
  Bytes bytes() const { return Bytes(buf_.begin(), buf_.begin() + nlh_->nlmsg_len); }

 private:
  Bytes buf_;
  nlmsghdr* nlh_;
};

// Top-level attributes of a request, in order (for builder tests).
std::vector<const nlattr*> attrs(const Bytes& b, size_t family_len) {
  std::vector<const nlattr*> out;
  auto nlh = reinterpret_cast<const nlmsghdr*>(b.data());
  mnl_attr_parse(nlh, static_cast<unsigned>(family_len),
                 [](const nlattr* a, void* d) {
                   static_cast<std::vector<const nlattr*>*>(d)->push_back(a);
                   return MNL_CB_OK;
                 },
                 &out);
  return out;
}

std::vector<const nlattr*> children(const nlattr* nest) {
  std::vector<const nlattr*> out;
  mnl_attr_parse_nested(nest,
                        [](const nlattr* a, void* d) {
                          static_cast<std::vector<const nlattr*>*>(d)->push_back(a);
                          return MNL_CB_OK;
                        },
                        &out);
  return out;
}

const MacAddress kMac{0x02, 0x00, 0x00, 0x00, 0x03, 0x03};

// One IFLA_VF_INFO as rtnl_fill_vfinfo() writes it (6.1): MAC, BROADCAST, VLAN, RATE, TX_RATE,
// SPOOFCHK, LINK_STATE, RSS_QUERY_EN, TRUST, VLAN_LIST, STATS (with PAD attributes).
void put_kernel_vf(Msg& m, uint32_t vf, uint32_t vlan, uint32_t qos, uint16_t proto, uint32_t spoofchk,
                   uint32_t trust, bool stats = true) {
  nlattr* info = m.nest(IFLA_VF_INFO);
  ifla_vf_mac mac{};
  mac.vf = vf;
  std::memcpy(mac.mac, kMac.data(), 6);
  mac.mac[5] = static_cast<uint8_t>(vf);
  m.put(IFLA_VF_MAC, mac);
  ifla_vf_broadcast brd{};
  std::memset(brd.broadcast, 0xff, 6);
  m.put(IFLA_VF_BROADCAST, brd);
  m.put(IFLA_VF_VLAN, ifla_vf_vlan{vf, vlan, qos});
  m.put(IFLA_VF_RATE, ifla_vf_rate{vf, 100, 1000});
  m.put(IFLA_VF_TX_RATE, ifla_vf_tx_rate{vf, 1000});
  m.put(IFLA_VF_SPOOFCHK, ifla_vf_spoofchk{vf, spoofchk});
  m.put(IFLA_VF_LINK_STATE, ifla_vf_link_state{vf, IFLA_VF_LINK_STATE_DISABLE});
  m.put(IFLA_VF_RSS_QUERY_EN, ifla_vf_rss_query_en{vf, 0xffffffffu});
  m.put(IFLA_VF_TRUST, ifla_vf_trust{vf, trust});
  nlattr* vlans = m.nest(IFLA_VF_VLAN_LIST);
  ifla_vf_vlan_info vi{};
  vi.vf = vf;
  vi.vlan = vlan;
  vi.qos = qos;
  vi.vlan_proto = htons(proto);
  m.put(IFLA_VF_VLAN_INFO, vi);
  m.end(vlans);
  if (stats) {
    nlattr* st = m.nest(IFLA_VF_STATS);
    for (uint16_t t = IFLA_VF_STATS_RX_PACKETS; t <= IFLA_VF_STATS_TX_DROPPED; ++t) {
      if (t == IFLA_VF_STATS_PAD) continue;
      m.put_raw(IFLA_VF_STATS_PAD, "", 0);  // nla_put_u64_64bit's alignment pad, as on 32-bit
      m.u64(t, 1000u * (t + 1));
    }
    m.end(st);
  }
  m.end(info);
}

Bytes kernel_newlink(bool stats = true) {
  Msg m(RTM_NEWLINK);
  auto* ifi = m.extra<ifinfomsg>();
  ifi->ifi_index = 7;
  ifi->ifi_flags = 0x1003;  // IFF_UP | IFF_BROADCAST | IFF_MULTICAST
  m.strz(IFLA_IFNAME, "ens1f0");
  m.u32(IFLA_MTU, 1500);
  m.u32(IFLA_NUM_VF, 2);
  nlattr* list = m.nest(IFLA_VFINFO_LIST);
  put_kernel_vf(m, 0, 100, 5, ETH_P_8021AD, 0, 1, stats);
  put_kernel_vf(m, 1, 0, 0, ETH_P_8021Q, 0xffffffffu, 0xffffffffu, stats);
  m.end(list);
  m.u32(IFLA_GROUP, 0);
  return m.bytes();
}

// Every prefix and every smaller nlmsg_len of a message must decode or fail, never crash (the
// sanitizer build turns an out-of-bounds read into a failure).
template <class F>
void damage_everywhere(const Bytes& good, F decode) {
  for (size_t n = 0; n < good.size(); ++n) {
    Bytes cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    CHECK_FALSE(decode(cut));  // nlmsg_len says more than there is
    Bytes shrunk = good;
    uint32_t len = static_cast<uint32_t>(n);
    if (n >= 4) std::memcpy(shrunk.data(), &len, 4);
    (void)decode(shrunk);
  }
  for (size_t i = 16; i < good.size(); ++i) {
    Bytes flipped = good;
    flipped[i] ^= 0xff;
    (void)decode(flipped);
  }
}

}  // namespace

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

TEST_CASE("RTM_GETADDR and RTM_GETROUTE dumps") {
  Bytes addr = build_getaddr_dump();
  auto nlh = reinterpret_cast<const nlmsghdr*>(addr.data());
  CHECK(nlh->nlmsg_type == RTM_GETADDR);
  CHECK(nlh->nlmsg_flags == (NLM_F_REQUEST | NLM_F_DUMP));
  CHECK(nlh->nlmsg_len == MNL_NLMSG_HDRLEN + sizeof(ifaddrmsg));
  CHECK(static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh))->ifa_family == AF_UNSPEC);
  CHECK(static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(
            reinterpret_cast<const nlmsghdr*>(build_getaddr_dump(AF_INET6).data())))
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
    size_t off = static_cast<size_t>(reinterpret_cast<const uint8_t*>(mnl_attr_get_payload(list)) - b.data());
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
        0x34, 0, 0, 0,  0x02, 0,  0x00, 0x03,  1, 0, 0, 0,  0x10, 0x20, 0, 0,  // hdr, flags CAPPED|ACK_TLVS
        0xff, 0xff, 0xff, 0xff,                                              // error = -1 (EPERM)
        0x20, 0, 0, 0,  0x13, 0,  0x05, 0,  1, 0, 0, 0,  0, 0, 0, 0,         // echoed RTM_SETLINK header
        0x08, 0, 0x01, 0,  'n', 'o', '!', 0,                                 // NLMSGERR_ATTR_MSG "no!"
        0x08, 0, 0x02, 0,  0x14, 0, 0, 0,                                    // NLMSGERR_ATTR_OFFS 20
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
