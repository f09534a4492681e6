#include "net/rtnl.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

namespace sriovd::net {
namespace {


constexpr int kMaxErrno = 4095;  // the kernel's MAX_ERRNO: errors are -1..-4095
constexpr size_t kIfNameSize = 16;  // IFNAMSIZ, without <net/if.h> (it clashes with linux/ headers)
constexpr uint32_t kNoReport = 0xffffffffu;  // rtnl_fill_vfinfo presets spoofchk/trust to -1

Error bad(const std::string& what) { return Error::sys(EBADMSG, what); }

Error invalid(std::string what, std::string field = {}) {
  Error e = Error::make(ErrorCode::invalid, std::move(what), std::move(field));
  e.errnum = EINVAL;
  return e;
}

// --- building ----------------------------------------------------------------------------------

// Requests are small: the largest, an RTM_SETLINK with every VF attribute, is under 200 bytes.
constexpr size_t kRequestBuffer = 512;

class Builder {
 public:
  Builder(uint16_t type, uint16_t flags) : buf_(kRequestBuffer, 0) {
    nlh_ = mnl_nlmsg_put_header(buf_.data());
    nlh_->nlmsg_type = type;
    nlh_->nlmsg_flags = flags;
  }
  template <class T>
  T* extra() {
    return static_cast<T*>(mnl_nlmsg_put_extra_header(nlh_, sizeof(T)));
  }
  void put(uint16_t type, const void* data, size_t len) {
    ok_ = ok_ && mnl_attr_put_check(nlh_, buf_.size(), type, len, data);
  }
  template <class T>
  void put_struct(uint16_t type, const T& value) {
    put(type, &value, sizeof value);
  }
  void put_u32(uint16_t type, uint32_t v) { ok_ = ok_ && mnl_attr_put_u32_check(nlh_, buf_.size(), type, v); }
  void put_strz(uint16_t type, const std::string& s) {
    ok_ = ok_ && mnl_attr_put_strz_check(nlh_, buf_.size(), type, s.c_str());
  }
  nlattr* nest_start(uint16_t type) {
    nlattr* n = ok_ ? mnl_attr_nest_start_check(nlh_, buf_.size(), type) : nullptr;
    ok_ = ok_ && n != nullptr;
    return n;
  }
  void nest_end(nlattr* n) {
    if (n) mnl_attr_nest_end(nlh_, n);
  }
  Bytes finish() {
    // Overflow cannot happen for the messages built here; it would be a bug, not a runtime case.
    if (!ok_) std::abort();
    buf_.resize(nlh_->nlmsg_len);
    return std::move(buf_);
  }

 private:
  Bytes buf_;
  nlmsghdr* nlh_;
  bool ok_ = true;
};

// --- decoding ----------------------------------------------------------------------------------

// A private, 8-byte-aligned, zero-padded copy of one message: libmnl reads headers through typed
// pointers, and the caller's bytes may sit at any address. The padding also covers the up to 3
// bytes mnl_attr_parse may look at past an unaligned nlmsg_len (it walks to MNL_ALIGN(len)).
class Message {
 public:
  static Result<Message> load(ByteView bytes, size_t family_len, const char* what) {
    nlmsghdr h;
    if (bytes.size() < sizeof h) return bad(std::string(what) + ": shorter than a netlink header");
    std::memcpy(&h, bytes.data(), sizeof h);
    if (h.nlmsg_len < sizeof h || h.nlmsg_len > bytes.size())
      return bad(std::string(what) + ": nlmsg_len " + std::to_string(h.nlmsg_len) + " outside 16.." +
                 std::to_string(bytes.size()));
    if (h.nlmsg_len < MNL_NLMSG_HDRLEN + family_len)
      return bad(std::string(what) + ": " + std::to_string(h.nlmsg_len) +
                 " bytes, too short for its family header");
    Message m;
    m.storage_.assign((h.nlmsg_len + 7) / 8 + 1, 0);
    std::memcpy(m.storage_.data(), bytes.data(), h.nlmsg_len);
    m.family_len_ = family_len;
    return m;
  }
  const nlmsghdr* nlh() const { return reinterpret_cast<const nlmsghdr*>(storage_.data()); }
  template <class T>
  T family() const {
    T t;
    std::memcpy(&t, mnl_nlmsg_get_payload(nlh()), sizeof t);
    return t;
  }
  // The attribute area, as mnl_attr_parse(nlh, family_len) sees it.
  const char* attrs_begin() const {
    return static_cast<const char*>(mnl_nlmsg_get_payload_offset(nlh(), family_len_));
  }
  size_t attrs_len() const {
    auto tail = static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh()));
    return tail > attrs_begin() ? static_cast<size_t>(tail - attrs_begin()) : 0;
  }
  size_t family_len() const { return family_len_; }

 private:
  std::vector<uint64_t> storage_;
  size_t family_len_ = 0;
};

// True if [p, p+len) is exactly a sequence of attributes, each inside the area. libmnl's walk
// stops quietly at the first attribute that does not fit; this turns such garbage into an error.
bool well_formed(const char* p, size_t len) {
  while (len >= MNL_ATTR_HDRLEN) {
    uint16_t nla_len;
    std::memcpy(&nla_len, p, sizeof nla_len);
    if (nla_len < MNL_ATTR_HDRLEN || nla_len > len) return false;
    size_t step = MNL_ALIGN(nla_len);
    if (step >= len) return true;  // the last one; its padding may be cut off
    p += step;
    len -= step;
  }
  return len == 0;
}

using AttrList = std::vector<const nlattr*>;

int collect(const nlattr* attr, void* data) {
  static_cast<AttrList*>(data)->push_back(attr);
  return MNL_CB_OK;
}

Result<AttrList> attrs_of(const Message& m, const std::string& what) {
  if (!well_formed(m.attrs_begin(), m.attrs_len())) return bad(what + ": malformed attributes");
  AttrList out;
  if (mnl_attr_parse(m.nlh(), static_cast<unsigned>(m.family_len()), collect, &out) != MNL_CB_OK)
    return bad(what + ": malformed attributes");
  return out;
}

Result<AttrList> nested(const nlattr* nest, const std::string& what) {
  auto p = static_cast<const char*>(mnl_attr_get_payload(nest));
  if (!well_formed(p, mnl_attr_get_payload_len(nest))) return bad(what + ": malformed nested attributes");
  AttrList out;
  if (mnl_attr_parse_nested(nest, collect, &out) != MNL_CB_OK) return bad(what + ": malformed nested attributes");
  return out;
}

// The struct at the start of an attribute's payload; the kernel accepts and may send longer ones
// (struct growth), never shorter.
template <class T>
Result<T> get_struct(const nlattr* a, const std::string& what) {
  if (mnl_attr_get_payload_len(a) < sizeof(T))
    return bad(what + ": " + std::to_string(mnl_attr_get_payload_len(a)) + " bytes, needs " +
               std::to_string(sizeof(T)));
  T t;
  std::memcpy(&t, mnl_attr_get_payload(a), sizeof t);
  return t;
}

Result<uint32_t> get_u32(const nlattr* a, const std::string& what) {
  if (mnl_attr_validate(a, MNL_TYPE_U32) < 0)
    return bad(what + ": " + std::to_string(mnl_attr_get_payload_len(a)) + " bytes, not a u32");
  return mnl_attr_get_u32(a);
}

Result<uint64_t> get_u64(const nlattr* a, const std::string& what) {
  if (mnl_attr_validate(a, MNL_TYPE_U64) < 0)
    return bad(what + ": " + std::to_string(mnl_attr_get_payload_len(a)) + " bytes, not a u64");
  return mnl_attr_get_u64(a);
}

Result<std::string> get_strz(const nlattr* a, const std::string& what) {
  if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0) return bad(what + ": not a NUL-terminated string");
  return std::string(mnl_attr_get_str(a));
}

// A string up to its first NUL or the end of the payload, for text meant for humans.
std::string get_text(const nlattr* a) {
  auto p = static_cast<const char*>(mnl_attr_get_payload(a));
  size_t n = mnl_attr_get_payload_len(a);
  std::string s(p, strnlen(p, n));
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Every VF struct starts with its vf index; one IFLA_VF_INFO describes one VF.
class VfIndex {
 public:
  Result<void> see(uint32_t vf, const std::string& what) {
    if (vf_ && *vf_ != vf)
      return bad(what + ": vf " + std::to_string(vf) + " in the entry of vf " + std::to_string(*vf_));
    vf_ = vf;
    return {};
  }
  const std::optional<uint32_t>& get() const { return vf_; }

 private:
  std::optional<uint32_t> vf_;
};

#define TRY(expr)                                  \
  do {                                             \
    auto _r = (expr);                              \
    if (!_r) return std::move(_r).error();         \
  } while (0)

#define TRY_ASSIGN(var, expr)                      \
  auto var##_r = (expr);                           \
  if (!var##_r) return std::move(var##_r).error(); \
  auto var = std::move(var##_r).value()

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

Result<VfInfo> decode_vf_info(const nlattr* nest, const std::string& what) {
  TRY_ASSIGN(attrs, nested(nest, what));
  VfInfo info;
  VfConfig& c = info.config;
  VfIndex vf;
  bool have_vlan_list = false, have_rate = false;
  for (const nlattr* a : attrs) {
    switch (mnl_attr_get_type(a)) {
      case IFLA_VF_MAC: {
        TRY_ASSIGN(s, get_struct<ifla_vf_mac>(a, what + ": IFLA_VF_MAC"));
        TRY(vf.see(s.vf, what));
        c.mac = MacAddress::from_bytes(std::span<const uint8_t, MacAddress::kSize>(s.mac, MacAddress::kSize));
        break;
      }
      case IFLA_VF_VLAN: {
        TRY_ASSIGN(s, get_struct<ifla_vf_vlan>(a, what + ": IFLA_VF_VLAN"));
        TRY(vf.see(s.vf, what));
        if (!have_vlan_list) set_vlan(c, s.vlan, s.qos, ETH_P_8021Q);
        break;
      }
      case IFLA_VF_VLAN_LIST: {
        TRY_ASSIGN(list, nested(a, what + ": IFLA_VF_VLAN_LIST"));
        for (const nlattr* e : list) {
          if (mnl_attr_get_type(e) != IFLA_VF_VLAN_INFO) continue;
          TRY_ASSIGN(s, get_struct<ifla_vf_vlan_info>(e, what + ": IFLA_VF_VLAN_INFO"));
          TRY(vf.see(s.vf, what));
          if (!have_vlan_list) set_vlan(c, s.vlan, s.qos, ntohs(s.vlan_proto));
          have_vlan_list = true;
        }
        break;
      }
      case IFLA_VF_TX_RATE: {
        TRY_ASSIGN(s, get_struct<ifla_vf_tx_rate>(a, what + ": IFLA_VF_TX_RATE"));
        TRY(vf.see(s.vf, what));
        if (!have_rate) c.max_tx_rate_mbps = s.rate;
        break;
      }
      case IFLA_VF_RATE: {
        TRY_ASSIGN(s, get_struct<ifla_vf_rate>(a, what + ": IFLA_VF_RATE"));
        TRY(vf.see(s.vf, what));
        c.min_tx_rate_mbps = s.min_tx_rate;
        c.max_tx_rate_mbps = s.max_tx_rate;
        have_rate = true;
        break;
      }
      case IFLA_VF_SPOOFCHK: {
        TRY_ASSIGN(s, get_struct<ifla_vf_spoofchk>(a, what + ": IFLA_VF_SPOOFCHK"));
        TRY(vf.see(s.vf, what));
        if (s.setting == kNoReport) c.spoofchk.reset(); else c.spoofchk = s.setting != 0;
        break;
      }
      case IFLA_VF_TRUST: {
        TRY_ASSIGN(s, get_struct<ifla_vf_trust>(a, what + ": IFLA_VF_TRUST"));
        TRY(vf.see(s.vf, what));
        if (s.setting == kNoReport) c.trust.reset(); else c.trust = s.setting != 0;
        break;
      }
      case IFLA_VF_LINK_STATE: {
        TRY_ASSIGN(s, get_struct<ifla_vf_link_state>(a, what + ": IFLA_VF_LINK_STATE"));
        TRY(vf.see(s.vf, what));
        if (s.link_state <= IFLA_VF_LINK_STATE_DISABLE)
          c.link_state = static_cast<LinkState>(s.link_state);
        else
          c.link_state.reset();
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

std::string type_name(uint16_t type) {
  switch (type) {
    case RTM_NEWLINK: return "RTM_NEWLINK";
    case RTM_SETLINK: return "RTM_SETLINK";
    case RTM_NEWADDR: return "RTM_NEWADDR";
    case RTM_NEWROUTE: return "RTM_NEWROUTE";
    case NLMSG_ERROR: return "NLMSG_ERROR";
    case NLMSG_DONE: return "NLMSG_DONE";
    default: return "message type " + std::to_string(type);
  }
}

Result<void> expect_type(const Message& m, std::initializer_list<uint16_t> types, const char* what) {
  for (uint16_t t : types)
    if (m.nlh()->nlmsg_type == t) return {};
  return bad(std::string(what) + ": got " + type_name(m.nlh()->nlmsg_type));
}

// The extended-ack TLVs of an NLMSG_ERROR or NLMSG_DONE, starting `offset` bytes into the payload.
Result<void> decode_ack_tlvs(const Message& m, size_t offset, NetlinkError& out, const char* what) {
  const nlmsghdr* nlh = m.nlh();
  if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS)) return {};
  size_t payload = mnl_nlmsg_get_payload_len(nlh);
  if (offset > payload) return bad(std::string(what) + ": extended ack past the message");
  auto begin = static_cast<const char*>(mnl_nlmsg_get_payload_offset(nlh, offset));
  auto tail = static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh));
  size_t len = tail > begin ? static_cast<size_t>(tail - begin) : 0;
  if (!well_formed(begin, len)) return bad(std::string(what) + ": malformed extended ack");
  AttrList tlvs;
  if (mnl_attr_parse(nlh, static_cast<unsigned>(offset), collect, &tlvs) != MNL_CB_OK)
    return bad(std::string(what) + ": malformed extended ack");
  for (const nlattr* a : tlvs) {
    switch (mnl_attr_get_type(a)) {
      case NLMSGERR_ATTR_MSG: out.message = get_text(a); break;
      case NLMSGERR_ATTR_OFFS: {
        TRY_ASSIGN(off, get_u32(a, std::string(what) + ": NLMSGERR_ATTR_OFFS"));
        out.bad_offset = off;
        break;
      }
      default: break;  // cookie, policy, missing attribute: not used here
    }
  }
  return {};
}

Result<int> errno_of(int32_t error, const char* what) {
  if (error > 0 || error < -kMaxErrno)
    return bad(std::string(what) + ": error field " + std::to_string(error) + " is not -errno");
  return -error;
}

std::string format_address(uint8_t family, const void* addr, unsigned prefix) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family, addr, buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(prefix);
}

}  // namespace

// --- builders ----------------------------------------------------------------------------------

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

// --- decoders ----------------------------------------------------------------------------------

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
      case IFLA_VFINFO_LIST: {
        TRY_ASSIGN(list, nested(a, what + ": IFLA_VFINFO_LIST"));
        out.vfs.clear();
        for (const nlattr* e : list) {
          if (mnl_attr_get_type(e) != IFLA_VF_INFO) continue;
          TRY_ASSIGN(vf, decode_vf_info(e, what + ": IFLA_VF_INFO #" + std::to_string(out.vfs.size())));
          out.vfs.push_back(std::move(vf));
        }
        break;
      }
      default: break;
    }
  }
  return out;
}

Result<NetlinkError> decode_error(ByteView bytes) {
  TRY_ASSIGN(m, Message::load(bytes, sizeof(nlmsgerr), "NLMSG_ERROR"));
  TRY(expect_type(m, {NLMSG_ERROR}, "NLMSG_ERROR"));
  auto e = m.family<nlmsgerr>();
  NetlinkError out;
  TRY_ASSIGN(errnum, errno_of(e.error, "NLMSG_ERROR"));
  out.errnum = errnum;
  out.request_seq = e.msg.nlmsg_seq;
  out.request_type = e.msg.nlmsg_type;
  size_t offset = sizeof(nlmsgerr);
  if (!(m.nlh()->nlmsg_flags & NLM_F_CAPPED)) {
    // The whole request is echoed after nlmsgerr; the TLVs follow it.
    if (e.msg.nlmsg_len < MNL_NLMSG_HDRLEN) return bad("NLMSG_ERROR: echoed request shorter than its header");
    offset += e.msg.nlmsg_len - MNL_NLMSG_HDRLEN;
  }
  TRY(decode_ack_tlvs(m, offset, out, "NLMSG_ERROR"));
  return out;
}

Result<NetlinkError> decode_done(ByteView bytes) {
  TRY_ASSIGN(m, Message::load(bytes, 0, "NLMSG_DONE"));
  TRY(expect_type(m, {NLMSG_DONE}, "NLMSG_DONE"));
  NetlinkError out;
  if (mnl_nlmsg_get_payload_len(m.nlh()) < sizeof(int32_t)) return out;
  int32_t error;
  std::memcpy(&error, mnl_nlmsg_get_payload(m.nlh()), sizeof error);
  TRY_ASSIGN(errnum, errno_of(error, "NLMSG_DONE"));
  out.errnum = errnum;
  TRY(decode_ack_tlvs(m, sizeof(int32_t), out, "NLMSG_DONE"));
  return out;
}

Result<std::optional<AddrEntry>> decode_addr(ByteView bytes) {
  TRY_ASSIGN(m, Message::load(bytes, sizeof(ifaddrmsg), "RTM_NEWADDR"));
  TRY(expect_type(m, {RTM_NEWADDR, RTM_DELADDR}, "RTM_NEWADDR"));
  auto ifa = m.family<ifaddrmsg>();
  const std::string what = "RTM_NEWADDR ifindex " + std::to_string(ifa.ifa_index);
  TRY_ASSIGN(attrs, attrs_of(m, what));
  size_t alen = ifa.ifa_family == AF_INET ? 4 : ifa.ifa_family == AF_INET6 ? 16 : 0;
  if (alen == 0) return std::optional<AddrEntry>{};
  if (ifa.ifa_prefixlen > alen * 8)
    return bad(what + ": prefix length " + std::to_string(ifa.ifa_prefixlen) + " too long");
  const nlattr* local = nullptr;
  const nlattr* address = nullptr;
  for (const nlattr* a : attrs) {
    uint16_t t = mnl_attr_get_type(a);
    if (t != IFA_LOCAL && t != IFA_ADDRESS) continue;
    if (mnl_attr_get_payload_len(a) != alen)
      return bad(what + ": " + std::to_string(mnl_attr_get_payload_len(a)) + "-byte address in family " +
                 std::to_string(ifa.ifa_family));
    (t == IFA_LOCAL ? local : address) = a;
  }
  const nlattr* a = local ? local : address;
  if (!a) return bad(what + ": no IFA_LOCAL or IFA_ADDRESS");
  auto p = static_cast<const uint8_t*>(mnl_attr_get_payload(a));
  if (ifa.ifa_family == AF_INET6 && p[0] == 0xfe && (p[1] & 0xc0) == 0x80) return std::optional<AddrEntry>{};
  AddrEntry e;
  e.ifindex = static_cast<int>(ifa.ifa_index);
  e.family = ifa.ifa_family;
  e.address = format_address(ifa.ifa_family, p, ifa.ifa_prefixlen);
  return std::optional<AddrEntry>(std::move(e));
}

Result<RouteEntry> decode_route(ByteView bytes) {
  TRY_ASSIGN(m, Message::load(bytes, sizeof(rtmsg), "RTM_NEWROUTE"));
  TRY(expect_type(m, {RTM_NEWROUTE, RTM_DELROUTE}, "RTM_NEWROUTE"));
  auto rtm = m.family<rtmsg>();
  RouteEntry out;
  out.family = rtm.rtm_family;
  out.table = rtm.rtm_table;
  out.type = rtm.rtm_type;
  out.protocol = rtm.rtm_protocol;
  out.flags = rtm.rtm_flags;
  const std::string what = "RTM_NEWROUTE";
  TRY_ASSIGN(attrs, attrs_of(m, what));
  for (const nlattr* a : attrs) {
    switch (mnl_attr_get_type(a)) {
      case RTA_TABLE: {
        TRY_ASSIGN(t, get_u32(a, what + ": RTA_TABLE"));
        out.table = t;
        break;
      }
      case RTA_OIF: {
        TRY_ASSIGN(oif, get_u32(a, what + ": RTA_OIF"));
        out.oifs.push_back(static_cast<int>(oif));
        break;
      }
      case RTA_MULTIPATH: {
        // An array of struct rtnexthop, each followed by its own attributes (rtnh_len covers both).
        auto p = static_cast<const char*>(mnl_attr_get_payload(a));
        size_t len = mnl_attr_get_payload_len(a);
        while (len > 0) {
          rtnexthop nh;
          if (len < sizeof nh) return bad(what + ": RTA_MULTIPATH: truncated next hop");
          std::memcpy(&nh, p, sizeof nh);
          if (nh.rtnh_len < sizeof nh || nh.rtnh_len > len)
            return bad(what + ": RTA_MULTIPATH: next hop length " + std::to_string(nh.rtnh_len));
          out.oifs.push_back(nh.rtnh_ifindex);
          size_t step = RTNH_ALIGN(nh.rtnh_len);
          if (step >= len) break;
          p += step;
          len -= step;
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
      case IFLA_VF_MAC: case IFLA_VF_VLAN: case IFLA_VF_TX_RATE: case IFLA_VF_SPOOFCHK:
      case IFLA_VF_LINK_STATE: case IFLA_VF_RATE: case IFLA_VF_TRUST: case IFLA_VF_VLAN_LIST:
        tb[t] = a;
        break;
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
    TRY_ASSIGN(s, get_struct<ifla_vf_mac>(tb[IFLA_VF_MAC], vwhat + ": IFLA_VF_MAC"));
    TRY(vf.see(s.vf, vwhat));
    c.mac = MacAddress::from_bytes(std::span<const uint8_t, MacAddress::kSize>(s.mac, MacAddress::kSize));
  }
  if (tb[IFLA_VF_VLAN]) {
    TRY_ASSIGN(s, get_struct<ifla_vf_vlan>(tb[IFLA_VF_VLAN], vwhat + ": IFLA_VF_VLAN"));
    TRY(vf.see(s.vf, vwhat));
    TRY(vlan_fields(s.vlan, s.qos, ETH_P_8021Q));
  }
  if (tb[IFLA_VF_VLAN_LIST]) {
    TRY_ASSIGN(vlans, nested(tb[IFLA_VF_VLAN_LIST], vwhat + ": IFLA_VF_VLAN_LIST"));
    // The kernel takes at most MAX_VLAN_LIST_LEN (1) entries and needs one.
    if (vlans.size() != 1 || mnl_attr_get_type(vlans[0]) != IFLA_VF_VLAN_INFO)
      return invalid(vwhat + ": IFLA_VF_VLAN_LIST must hold exactly one IFLA_VF_VLAN_INFO");
    TRY_ASSIGN(s, get_struct<ifla_vf_vlan_info>(vlans[0], vwhat + ": IFLA_VF_VLAN_INFO"));
    TRY(vf.see(s.vf, vwhat));
    TRY(vlan_fields(s.vlan, s.qos, ntohs(s.vlan_proto)));
  }
  if (tb[IFLA_VF_TX_RATE]) {
    TRY_ASSIGN(s, get_struct<ifla_vf_tx_rate>(tb[IFLA_VF_TX_RATE], vwhat + ": IFLA_VF_TX_RATE"));
    TRY(vf.see(s.vf, vwhat));
    c.max_tx_rate_mbps = s.rate;
  }
  if (tb[IFLA_VF_RATE]) {
    TRY_ASSIGN(s, get_struct<ifla_vf_rate>(tb[IFLA_VF_RATE], vwhat + ": IFLA_VF_RATE"));
    TRY(vf.see(s.vf, vwhat));
    c.min_tx_rate_mbps = s.min_tx_rate;
    c.max_tx_rate_mbps = s.max_tx_rate;
  }
  if (tb[IFLA_VF_SPOOFCHK]) {
    TRY_ASSIGN(s, get_struct<ifla_vf_spoofchk>(tb[IFLA_VF_SPOOFCHK], vwhat + ": IFLA_VF_SPOOFCHK"));
    TRY(vf.see(s.vf, vwhat));
    c.spoofchk = s.setting != 0;
  }
  if (tb[IFLA_VF_LINK_STATE]) {
    TRY_ASSIGN(s, get_struct<ifla_vf_link_state>(tb[IFLA_VF_LINK_STATE], vwhat + ": IFLA_VF_LINK_STATE"));
    TRY(vf.see(s.vf, vwhat));
    if (s.link_state > IFLA_VF_LINK_STATE_DISABLE)
      return invalid(vwhat + ": link state " + std::to_string(s.link_state) + " unknown", "link_state");
    c.link_state = static_cast<LinkState>(s.link_state);
  }
  if (tb[IFLA_VF_TRUST]) {
    TRY_ASSIGN(s, get_struct<ifla_vf_trust>(tb[IFLA_VF_TRUST], vwhat + ": IFLA_VF_TRUST"));
    TRY(vf.see(s.vf, vwhat));
    c.trust = s.setting != 0;
  }
  if (!vf.get()) return invalid(vwhat + ": no VF attribute");
  out.vf = *vf.get();
  return out;
}

Result<std::vector<ByteView>> split_messages(ByteView datagram) {
  std::vector<ByteView> out;
  size_t pos = 0;
  while (pos < datagram.size()) {
    size_t left = datagram.size() - pos;
    nlmsghdr h;
    if (left < sizeof h) return bad("netlink datagram: " + std::to_string(left) + " trailing bytes");
    std::memcpy(&h, datagram.data() + pos, sizeof h);
    if (h.nlmsg_len < sizeof h || h.nlmsg_len > left)
      return bad("netlink datagram: nlmsg_len " + std::to_string(h.nlmsg_len) + " with " + std::to_string(left) +
                 " bytes left");
    out.push_back(datagram.subspan(pos, h.nlmsg_len));
    pos += std::min<size_t>(MNL_ALIGN(h.nlmsg_len), left);
  }
  return out;
}

}  // namespace sriovd::net
