// Test support for net/'s rtnetlink tests: hand-built netlink messages, the attributes of a
// built request, an RTM_NEWLINK laid out as the kernel writes it, and damage for decoders.
#pragma once

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <libmnl/libmnl.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cstring>
#include <string>
#include <vector>

#include "net/rtnl.h"

namespace sriovd::net::testing {

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
  T* extra() {
    return static_cast<T*>(mnl_nlmsg_put_extra_header(nlh_, sizeof(T)));
  }
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
  Msg& u32(uint16_t type, uint32_t v) {
    mnl_attr_put_u32(nlh_, type, v);
    return *this;
  }
  Msg& u64(uint16_t type, uint64_t v) {
    mnl_attr_put_u64(nlh_, type, v);
    return *this;
  }
  Msg& strz(uint16_t type, const char* s) {
    mnl_attr_put_strz(nlh_, type, s);
    return *this;
  }
  nlattr* nest(uint16_t type) { return mnl_attr_nest_start(nlh_, type); }
  Msg& end(nlattr* n) {
    mnl_attr_nest_end(nlh_, n);
    return *this;
  }
  nlmsghdr* nlh() { return nlh_; }
  Bytes bytes() const { return {buf_.begin(), buf_.begin() + nlh_->nlmsg_len}; }

 private:
  Bytes buf_;
  nlmsghdr* nlh_;
};

// Top-level attributes of a request, in order (for builder tests).
inline std::vector<const nlattr*> attrs(const Bytes& b, size_t family_len) {
  std::vector<const nlattr*> out;
  auto nlh = reinterpret_cast<const nlmsghdr*>(b.data());
  mnl_attr_parse(
      nlh, static_cast<unsigned>(family_len),
      [](const nlattr* a, void* d) {
        static_cast<std::vector<const nlattr*>*>(d)->push_back(a);
        return MNL_CB_OK;
      },
      &out);
  return out;
}

inline std::vector<const nlattr*> children(const nlattr* nest) {
  std::vector<const nlattr*> out;
  mnl_attr_parse_nested(
      nest,
      [](const nlattr* a, void* d) {
        static_cast<std::vector<const nlattr*>*>(d)->push_back(a);
        return MNL_CB_OK;
      },
      &out);
  return out;
}

inline const MacAddress kMac{0x02, 0x00, 0x00, 0x00, 0x03, 0x03};

// One IFLA_VF_INFO as rtnl_fill_vfinfo() writes it (6.1): MAC, BROADCAST, VLAN, RATE, TX_RATE,
// SPOOFCHK, LINK_STATE, RSS_QUERY_EN, TRUST, VLAN_LIST, STATS (with PAD attributes).
inline void put_kernel_vf(Msg& m, uint32_t vf, uint32_t vlan, uint32_t qos, uint16_t proto, uint32_t spoofchk,
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
      m.u64(t, uint64_t{1000} * (t + 1));
    }
    m.end(st);
  }
  m.end(info);
}

inline Bytes kernel_newlink(bool stats = true) {
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
    auto len = static_cast<uint32_t>(n);
    if (n >= 4) std::memcpy(shrunk.data(), &len, 4);
    (void)decode(shrunk);
  }
  for (size_t i = 16; i < good.size(); ++i) {
    Bytes flipped = good;
    flipped[i] ^= 0xff;
    (void)decode(flipped);
  }
}

}  // namespace sriovd::net::testing
