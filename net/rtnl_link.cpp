// The link decoders of rtnl.h: RTM_NEWLINK with its VF list as the kernel answers it, and an
// RTM_SETLINK carrying one VF's attributes read back the way the kernel applies it.
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/rtnetlink.h>

#include <array>

#include "net/rtnl.h"
#include "net/rtnl_attrs.h"

namespace sriovd::net {
namespace {

using namespace detail;

constexpr uint32_t kNoReport = 0xffffffffu;  // rtnl_fill_vfinfo presets spoofchk/trust to -1

Result<VfStats> decode_vf_stats(const nlattr* nest, const std::string& what) {
  TRY_ASSIGN(attrs, nested(nest, what));
  VfStats s;
  for (const nlattr* a : attrs) {
    uint64_t* field = nullptr;
    switch (mnl_attr_get_type(a)) {
      case IFLA_VF_STATS_RX_PACKETS: field = &s.rx_packets; break;
      case IFLA_VF_STATS_TX_PACKETS: field = &s.tx_packets; break;
      case IFLA_VF_STATS_RX_BYTES: field = &s.rx_bytes; break;
      case IFLA_VF_STATS_TX_BYTES: field = &s.tx_bytes; break;
      case IFLA_VF_STATS_BROADCAST: field = &s.broadcast; break;
      case IFLA_VF_STATS_MULTICAST: field = &s.multicast; break;
      case IFLA_VF_STATS_RX_DROPPED: field = &s.rx_dropped; break;
      case IFLA_VF_STATS_TX_DROPPED: field = &s.tx_dropped; break;
      default: continue;  // IFLA_VF_STATS_PAD and counters newer than this code
    }
    TRY_ASSIGN(v, get_u64(a, what + ": counter " + std::to_string(mnl_attr_get_type(a))));
    *field = v;
  }
  return s;
}

// Reads vlan/qos/proto into `c` as one unit: if vlan or qos does not fit VfConfig, all three
// stay unset (a qos without its vlan would mean nothing, and set_vf refuses it).
void set_vlan(VfConfig& c, uint32_t vlan, uint32_t qos, uint16_t proto) {
  c.vlan.reset();
  c.qos.reset();
  c.vlan_proto.reset();
  if (vlan > 0xffff || qos > 0xff) return;
  c.vlan = static_cast<uint16_t>(vlan);
  c.qos = static_cast<uint8_t>(qos);
  c.vlan_proto = proto;
}

// The two forms, the kernel's answer (decode_vf_info) and a request (decode_set_vf), read each VF
// attribute the same way: the kernel's struct at the start of the payload, whose vf index must be
// the entry's. What they make of the values differs on purpose: an answer may say "not reported"
// or carry values a request is refused for, and an answer's attributes come in message order
// while a request's are applied in the kernel's order. So only the reading is shared.
template <class T>
Result<T> vf_struct(const nlattr* a, VfIndex& vf, const std::string& what, const char* name) {
  TRY_ASSIGN(s, get_struct<T>(a, what + ": " + name));
  TRY(vf.see(s.vf, what));
  return s;
}

MacAddress mac_of(const ifla_vf_mac& m) {
  return MacAddress::from_bytes(std::span<const uint8_t, MacAddress::kSize>(m.mac, MacAddress::kSize));
}

Result<VfInfo> decode_vf_info(const nlattr* nest, const std::string& what) {
  TRY_ASSIGN(attrs, nested(nest, what));
  VfInfo info;
  VfConfig& c = info.config;
  VfIndex vf;
  bool have_vlan_list = false, have_rate = false;
  for (const nlattr* a : attrs) {
    switch (mnl_attr_get_type(a)) {
      case IFLA_VF_MAC: {
        TRY_ASSIGN(s, vf_struct<ifla_vf_mac>(a, vf, what, "IFLA_VF_MAC"));
        c.mac = mac_of(s);
        break;
      }
      case IFLA_VF_VLAN: {
        TRY_ASSIGN(s, vf_struct<ifla_vf_vlan>(a, vf, what, "IFLA_VF_VLAN"));
        if (!have_vlan_list) set_vlan(c, s.vlan, s.qos, ETH_P_8021Q);
        break;
      }
      case IFLA_VF_VLAN_LIST: {
        TRY_ASSIGN(list, nested(a, what + ": IFLA_VF_VLAN_LIST"));
        for (const nlattr* e : list) {
          if (mnl_attr_get_type(e) != IFLA_VF_VLAN_INFO) continue;
          TRY_ASSIGN(s, vf_struct<ifla_vf_vlan_info>(e, vf, what, "IFLA_VF_VLAN_INFO"));
          if (!have_vlan_list) set_vlan(c, s.vlan, s.qos, ntohs(s.vlan_proto));
          have_vlan_list = true;
        }
        break;
      }
      case IFLA_VF_TX_RATE: {
        TRY_ASSIGN(s, vf_struct<ifla_vf_tx_rate>(a, vf, what, "IFLA_VF_TX_RATE"));
        if (!have_rate) c.max_tx_rate_mbps = s.rate;
        break;
      }
      case IFLA_VF_RATE: {
        TRY_ASSIGN(s, vf_struct<ifla_vf_rate>(a, vf, what, "IFLA_VF_RATE"));
        c.min_tx_rate_mbps = s.min_tx_rate;
        c.max_tx_rate_mbps = s.max_tx_rate;
        have_rate = true;
        break;
      }
      case IFLA_VF_SPOOFCHK: {
        TRY_ASSIGN(s, vf_struct<ifla_vf_spoofchk>(a, vf, what, "IFLA_VF_SPOOFCHK"));
        if (s.setting == kNoReport) c.spoofchk.reset();
        else c.spoofchk = s.setting != 0;
        break;
      }
      case IFLA_VF_TRUST: {
        TRY_ASSIGN(s, vf_struct<ifla_vf_trust>(a, vf, what, "IFLA_VF_TRUST"));
        if (s.setting == kNoReport) c.trust.reset();
        else c.trust = s.setting != 0;
        break;
      }
      case IFLA_VF_LINK_STATE: {
        TRY_ASSIGN(s, vf_struct<ifla_vf_link_state>(a, vf, what, "IFLA_VF_LINK_STATE"));
        if (s.link_state <= IFLA_VF_LINK_STATE_DISABLE) c.link_state = static_cast<LinkState>(s.link_state);
        else c.link_state.reset();
        break;
      }
      case IFLA_VF_STATS: {
        TRY_ASSIGN(s, decode_vf_stats(a, what + ": IFLA_VF_STATS"));
        info.stats = s;
        break;
      }
      default: break;  // RSS query, broadcast, GUIDs, and attributes newer than this code
    }
  }
  if (!vf.get()) return bad(what + ": no attribute names its vf");
  info.index = *vf.get();
  return info;
}

}  // namespace

Result<LinkMessage> decode_link(ByteView bytes) {
  TRY_ASSIGN(m, Message::load(bytes, sizeof(ifinfomsg), "RTM_NEWLINK"));
  TRY(expect_type(m, {RTM_NEWLINK, RTM_DELLINK}, "RTM_NEWLINK"));
  auto ifi = m.family<ifinfomsg>();
  LinkMessage out;
  out.type = m.nlh()->nlmsg_type;
  out.ifindex = ifi.ifi_index;
  out.flags = ifi.ifi_flags;
  const std::string what = "RTM_NEWLINK ifindex " + std::to_string(ifi.ifi_index);
  TRY_ASSIGN(attrs, attrs_of(m, what));
  for (const nlattr* a : attrs) {
    switch (mnl_attr_get_type(a)) {
      case IFLA_IFNAME: {
        TRY_ASSIGN(name, get_strz(a, what + ": IFLA_IFNAME"));
        out.ifname = std::move(name);
        break;
      }
      case IFLA_NUM_VF: {
        TRY_ASSIGN(n, get_u32(a, what + ": IFLA_NUM_VF"));
        out.num_vf = n;
        break;
      }
      case IFLA_CARRIER: {
        TRY_ASSIGN(c, get_u8(a, what + ": IFLA_CARRIER"));
        out.carrier = c != 0;
        break;
      }
      case IFLA_OPERSTATE: {
        TRY_ASSIGN(s, get_u8(a, what + ": IFLA_OPERSTATE"));
        out.operstate = s;
        break;
      }
      case IFLA_PROP_LIST: {
        TRY_ASSIGN(props, nested(a, what + ": IFLA_PROP_LIST"));
        for (const nlattr* p : props) {
          if (mnl_attr_get_type(p) != IFLA_ALT_IFNAME) continue;
          TRY_ASSIGN(alt, get_strz(p, what + ": IFLA_ALT_IFNAME"));
          out.altnames.push_back(std::move(alt));
        }
        break;
      }
      case IFLA_VFINFO_LIST: {
        TRY_ASSIGN(list, nested(a, what + ": IFLA_VFINFO_LIST"));
        out.vfs.clear();
        for (const nlattr* e : list) {
          if (mnl_attr_get_type(e) != IFLA_VF_INFO) continue;
          TRY_ASSIGN(vf, decode_vf_info(e, what + ": IFLA_VF_INFO #" + std::to_string(out.vfs.size())));
          out.vfs.push_back(vf);
        }
        break;
      }
      default: break;
    }
  }
  return out;
}

Result<SetVfRequest> decode_set_vf(ByteView bytes) {
  TRY_ASSIGN(m, Message::load(bytes, sizeof(ifinfomsg), "RTM_SETLINK"));
  TRY(expect_type(m, {RTM_SETLINK}, "RTM_SETLINK"));
  auto ifi = m.family<ifinfomsg>();
  SetVfRequest out;
  out.ifindex = ifi.ifi_index;
  out.ack = (m.nlh()->nlmsg_flags & NLM_F_ACK) != 0;
  const std::string what = "RTM_SETLINK";
  TRY_ASSIGN(attrs, attrs_of(m, what));
  const nlattr* list = nullptr;
  for (const nlattr* a : attrs) {
    if (mnl_attr_get_type(a) != IFLA_VFINFO_LIST)
      return invalid(what + ": link attribute " + std::to_string(mnl_attr_get_type(a)) + " besides the VF list");
    if (list) return invalid(what + ": more than one IFLA_VFINFO_LIST");
    list = a;
  }
  if (!list) return invalid(what + ": no IFLA_VFINFO_LIST");
  TRY_ASSIGN(infos, nested(list, what + ": IFLA_VFINFO_LIST"));
  if (infos.size() != 1 || mnl_attr_get_type(infos[0]) != IFLA_VF_INFO)
    return invalid(what + ": IFLA_VFINFO_LIST must hold exactly one IFLA_VF_INFO");
  TRY_ASSIGN(vattrs, nested(infos[0], what + ": IFLA_VF_INFO"));

  // Like the kernel's nla_parse: one slot per type, the last occurrence wins; then applied in
  // do_setvfinfo's order regardless of the order in the message.
  std::array<const nlattr*, IFLA_VF_MAX + 1> tb{};
  for (const nlattr* a : vattrs) {
    uint16_t t = mnl_attr_get_type(a);
    switch (t) {
      case IFLA_VF_MAC:
      case IFLA_VF_VLAN:
      case IFLA_VF_TX_RATE:
      case IFLA_VF_SPOOFCHK:
      case IFLA_VF_LINK_STATE:
      case IFLA_VF_RATE:
      case IFLA_VF_TRUST:
      case IFLA_VF_VLAN_LIST: tb[t] = a; break;
      default: return invalid(what + ": VF attribute " + std::to_string(t) + " is not one VfConfig expresses");
    }
  }
  VfConfig& c = out.config;
  VfIndex vf;
  const std::string vwhat = what + ": IFLA_VF_INFO";
  auto vlan_fields = [&](uint32_t vlan, uint32_t qos, uint16_t proto) -> Result<void> {
    if (vlan > 0xffff) return invalid(vwhat + ": vlan " + std::to_string(vlan) + " out of range", "vlan");
    if (qos > 0xff) return invalid(vwhat + ": qos " + std::to_string(qos) + " out of range", "qos");
    c.vlan = static_cast<uint16_t>(vlan);
    c.qos = static_cast<uint8_t>(qos);
    c.vlan_proto = proto;
    return {};
  };
  if (tb[IFLA_VF_MAC]) {
    TRY_ASSIGN(s, vf_struct<ifla_vf_mac>(tb[IFLA_VF_MAC], vf, vwhat, "IFLA_VF_MAC"));
    c.mac = mac_of(s);
  }
  if (tb[IFLA_VF_VLAN]) {
    TRY_ASSIGN(s, vf_struct<ifla_vf_vlan>(tb[IFLA_VF_VLAN], vf, vwhat, "IFLA_VF_VLAN"));
    TRY(vlan_fields(s.vlan, s.qos, ETH_P_8021Q));
  }
  if (tb[IFLA_VF_VLAN_LIST]) {
    TRY_ASSIGN(vlans, nested(tb[IFLA_VF_VLAN_LIST], vwhat + ": IFLA_VF_VLAN_LIST"));
    // The kernel takes at most MAX_VLAN_LIST_LEN (1) entries and needs one.
    if (vlans.size() != 1 || mnl_attr_get_type(vlans[0]) != IFLA_VF_VLAN_INFO)
      return invalid(vwhat + ": IFLA_VF_VLAN_LIST must hold exactly one IFLA_VF_VLAN_INFO");
    TRY_ASSIGN(s, vf_struct<ifla_vf_vlan_info>(vlans[0], vf, vwhat, "IFLA_VF_VLAN_INFO"));
    TRY(vlan_fields(s.vlan, s.qos, ntohs(s.vlan_proto)));
  }
  if (tb[IFLA_VF_TX_RATE]) {
    TRY_ASSIGN(s, vf_struct<ifla_vf_tx_rate>(tb[IFLA_VF_TX_RATE], vf, vwhat, "IFLA_VF_TX_RATE"));
    c.max_tx_rate_mbps = s.rate;
  }
  if (tb[IFLA_VF_RATE]) {
    TRY_ASSIGN(s, vf_struct<ifla_vf_rate>(tb[IFLA_VF_RATE], vf, vwhat, "IFLA_VF_RATE"));
    c.min_tx_rate_mbps = s.min_tx_rate;
    c.max_tx_rate_mbps = s.max_tx_rate;
  }
  if (tb[IFLA_VF_SPOOFCHK]) {
    TRY_ASSIGN(s, vf_struct<ifla_vf_spoofchk>(tb[IFLA_VF_SPOOFCHK], vf, vwhat, "IFLA_VF_SPOOFCHK"));
    c.spoofchk = s.setting != 0;
  }
  if (tb[IFLA_VF_LINK_STATE]) {
    TRY_ASSIGN(s, vf_struct<ifla_vf_link_state>(tb[IFLA_VF_LINK_STATE], vf, vwhat, "IFLA_VF_LINK_STATE"));
    if (s.link_state > IFLA_VF_LINK_STATE_DISABLE)
      return invalid(vwhat + ": link state " + std::to_string(s.link_state) + " unknown", "link_state");
    c.link_state = static_cast<LinkState>(s.link_state);
  }
  if (tb[IFLA_VF_TRUST]) {
    TRY_ASSIGN(s, vf_struct<ifla_vf_trust>(tb[IFLA_VF_TRUST], vf, vwhat, "IFLA_VF_TRUST"));
    c.trust = s.setting != 0;
  }
  if (!vf.get()) return invalid(vwhat + ": no VF attribute");
  out.vf = *vf.get();
  return out;
}

}  // namespace sriovd::net
