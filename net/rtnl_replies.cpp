// The reply decoders of rtnl.h: NLMSG_ERROR and NLMSG_DONE with their extended ack, addresses,
// routes, and the splitting of a datagram into its messages.
#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <algorithm>

#include "net/rtnl.h"
#include "net/rtnl_attrs.h"

namespace sriovd::net {
namespace {

using namespace detail;

constexpr int kMaxErrno = 4095;  // the kernel's MAX_ERRNO: errors are -1..-4095

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
