// The builders of rtnl.h: requests as complete netlink messages, laid out with libmnl.
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cstdlib>
#include <cstring>
#include <iterator>

#include "net/rtnl.h"
#include "net/rtnl_attrs.h"

namespace sriovd::net {
namespace {

using detail::Builder;
using detail::invalid;

constexpr size_t kIfNameSize = 16;  // IFNAMSIZ, without <net/if.h> (it clashes with linux/ headers)

}  // namespace

Result<Bytes> build_getlink(int ifindex, uint32_t ext_mask) {
  if (ifindex <= 0) return invalid("RTM_GETLINK: ifindex " + std::to_string(ifindex) + " is not > 0", "ifindex");
  Builder b(RTM_GETLINK, NLM_F_REQUEST);
  auto* ifi = b.extra<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
  b.put_u32(IFLA_EXT_MASK, ext_mask);
  return b.finish();
}

Result<Bytes> build_getlink(std::string_view ifname, uint32_t ext_mask) {
  if (ifname.empty() || ifname.size() >= kIfNameSize || ifname.find('\0') != std::string_view::npos)
    return invalid("RTM_GETLINK: \"" + std::string(ifname) + "\" is not an interface name", "ifname");
  Builder b(RTM_GETLINK, NLM_F_REQUEST);
  auto* ifi = b.extra<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  b.put_strz(IFLA_IFNAME, std::string(ifname));
  b.put_u32(IFLA_EXT_MASK, ext_mask);
  return b.finish();
}

Result<Bytes> build_link_notification(int ifindex, std::string_view ifname, uint32_t flags, bool carrier,
                                      uint8_t operstate) {
  if (ifindex <= 0) return invalid("RTM_NEWLINK: ifindex " + std::to_string(ifindex) + " is not > 0", "ifindex");
  if (ifname.empty() || ifname.size() >= kIfNameSize || ifname.find('\0') != std::string_view::npos)
    return invalid("RTM_NEWLINK: interface name '" + std::string(ifname) + "' is not 1 to 15 bytes", "ifname");
  Builder b(RTM_NEWLINK, 0);
  auto* ifi = b.extra<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
  ifi->ifi_flags = flags;
  b.put_strz(IFLA_IFNAME, std::string(ifname));
  b.put_struct(IFLA_CARRIER, static_cast<uint8_t>(carrier ? 1 : 0));
  b.put_struct(IFLA_OPERSTATE, operstate);
  return b.finish();
}

const char* operstate_name(uint8_t operstate) {
  // net/core/net-sysfs.c operstates[]
  static constexpr const char* kNames[] = {"unknown", "notpresent", "down", "lowerlayerdown",
                                           "testing", "dormant",    "up"};
  return operstate < std::size(kNames) ? kNames[operstate] : "unknown";
}

Result<Bytes> build_set_mtu(int ifindex, uint32_t mtu) {
  if (ifindex <= 0) return invalid("RTM_SETLINK: ifindex " + std::to_string(ifindex) + " is not > 0", "ifindex");
  Builder b(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK);
  auto* ifi = b.extra<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
  b.put_u32(IFLA_MTU, mtu);
  return b.finish();
}

Result<Bytes> build_set_vf(int ifindex, uint32_t vf, const VfConfig& c) {
  if (ifindex <= 0) return invalid("RTM_SETLINK: ifindex " + std::to_string(ifindex) + " is not > 0", "ifindex");
  if (c == VfConfig{}) return invalid("RTM_SETLINK: no VF attribute to set");
  if ((c.qos || c.vlan_proto) && !c.vlan)
    return invalid("qos and vlan_proto are set together with vlan (IFLA_VF_VLAN carries all three)",
                   c.qos ? "qos" : "vlan_proto");
  if (c.min_tx_rate_mbps && !c.max_tx_rate_mbps)
    return invalid("min_tx_rate needs max_tx_rate (IFLA_VF_RATE carries both)", "min_tx_rate_mbps");

  Builder b(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK);
  auto* ifi = b.extra<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
  nlattr* list = b.nest_start(IFLA_VFINFO_LIST);
  nlattr* info = b.nest_start(IFLA_VF_INFO);
  // The order of do_setvfinfo() in net/core/rtnetlink.c, which applies them one after the other
  // and returns at the first error.
  if (c.mac) {
    ifla_vf_mac m{};
    m.vf = vf;
    std::memcpy(m.mac, c.mac->data(), MacAddress::kSize);
    b.put_struct(IFLA_VF_MAC, m);
  }
  if (c.vlan) {
    uint16_t proto = c.vlan_proto.value_or(ETH_P_8021Q);
    if (proto == ETH_P_8021Q) {
      // The original attribute: every kernel with VF support takes it (iproute2 does the same).
      ifla_vf_vlan v{};
      v.vf = vf;
      v.vlan = *c.vlan;
      v.qos = c.qos.value_or(0);
      b.put_struct(IFLA_VF_VLAN, v);
    } else {
      nlattr* vlans = b.nest_start(IFLA_VF_VLAN_LIST);
      ifla_vf_vlan_info v{};
      v.vf = vf;
      v.vlan = *c.vlan;
      v.qos = c.qos.value_or(0);
      v.vlan_proto = htons(proto);
      b.put_struct(IFLA_VF_VLAN_INFO, v);
      b.nest_end(vlans);
    }
  }
  if (c.max_tx_rate_mbps && !c.min_tx_rate_mbps) {
    // The kernel reads the VF's current min rate (ndo_get_vf_config) and keeps it.
    ifla_vf_tx_rate r{};
    r.vf = vf;
    r.rate = *c.max_tx_rate_mbps;
    b.put_struct(IFLA_VF_TX_RATE, r);
  } else if (c.max_tx_rate_mbps) {
    ifla_vf_rate r{};
    r.vf = vf;
    r.min_tx_rate = *c.min_tx_rate_mbps;
    r.max_tx_rate = *c.max_tx_rate_mbps;
    b.put_struct(IFLA_VF_RATE, r);
  }
  if (c.spoofchk) {
    ifla_vf_spoofchk s{};
    s.vf = vf;
    s.setting = *c.spoofchk ? 1 : 0;
    b.put_struct(IFLA_VF_SPOOFCHK, s);
  }
  if (c.link_state) {
    ifla_vf_link_state l{};
    l.vf = vf;
    l.link_state = static_cast<uint32_t>(*c.link_state);
    b.put_struct(IFLA_VF_LINK_STATE, l);
  }
  if (c.trust) {
    ifla_vf_trust t{};
    t.vf = vf;
    t.setting = *c.trust ? 1 : 0;
    b.put_struct(IFLA_VF_TRUST, t);
  }
  b.nest_end(info);
  b.nest_end(list);
  return b.finish();
}

Bytes build_getaddr_dump(uint8_t family) {
  Builder b(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP);
  auto* ifa = b.extra<ifaddrmsg>();
  ifa->ifa_family = family;
  return b.finish();
}

Bytes build_getroute_dump(uint8_t family) {
  Builder b(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP);
  auto* rtm = b.extra<rtmsg>();
  rtm->rtm_family = family;
  rtm->rtm_table = RT_TABLE_MAIN;
  return b.finish();
}

}  // namespace sriovd::net
