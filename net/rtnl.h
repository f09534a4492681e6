// rtnl: rtnetlink messages for VF attributes and link facts, as pure functions (no I/O).
//
// Builders return one complete netlink message (header included, nlmsg_seq and nlmsg_pid 0:
// RtnlSocket stamps them). Decoders take the bytes of one message, header included, as the
// kernel (or anyone) sent them: any byte sequence decodes to a value or to an Error (errno
// EBADMSG for malformed input), never reads outside the span, and needs no alignment. Bytes
// after nlmsg_len are ignored. Every builder has a decoder that reads its output back, so the
// builders are tested by parsing, as systemd's sd-netlink does.
//
// All functions are thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/vf.h"

namespace sriovd::net {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

// --- builders ----------------------------------------------------------------------------------

// RTM_GETLINK for one link, by index (> 0) or by name (1..15 bytes, no NUL), with IFLA_EXT_MASK
// = `ext_mask` (RTEXT_FILTER_VF to get IFLA_NUM_VF and IFLA_VFINFO_LIST, | RTEXT_FILTER_SKIP_STATS
// to leave out the per-VF counters). Flags NLM_F_REQUEST: the answer is one RTM_NEWLINK.
Result<Bytes> build_getlink(int ifindex, uint32_t ext_mask);
Result<Bytes> build_getlink(std::string_view ifname, uint32_t ext_mask);

// RTM_SETLINK on `ifindex` carrying IFLA_VFINFO_LIST { IFLA_VF_INFO { ... } } for the set fields
// of `config`, for VF `vf`, NLM_F_REQUEST|NLM_F_ACK. Attributes are emitted in the order the
// kernel applies them (do_setvfinfo: MAC, VLAN, VLAN_LIST, TX_RATE, RATE, SPOOFCHK, LINK_STATE,
// TRUST), so a failure leaves exactly the attributes before it applied.
//  - vlan (+ qos, default 0): IFLA_VF_VLAN when vlan_proto is unset or 802.1Q, else
//    IFLA_VF_VLAN_LIST { IFLA_VF_VLAN_INFO } with the proto in network byte order (as iproute2).
//    qos or vlan_proto without vlan is refused (the kernel sets vlan, qos and proto together).
//  - max_tx_rate + min_tx_rate: IFLA_VF_RATE. max_tx_rate alone: the legacy IFLA_VF_TX_RATE,
//    for which the kernel keeps the VF's current min rate itself. min_tx_rate alone is refused:
//    IFLA_VF_RATE always carries both, so the caller reads the current max first (iproute2 does).
// Values are not range-checked (vlan 5000 is sent as is): drivers decide, the lab verifies.
// A config with no field set is refused (the kernel answers EINVAL to an empty IFLA_VF_INFO).
Result<Bytes> build_set_vf(int ifindex, uint32_t vf, const VfConfig& config);

// RTM_SETLINK on `ifindex` carrying IFLA_MTU = `mtu` (u32), NLM_F_REQUEST|NLM_F_ACK: what
// `ip link set DEV mtu N` sends. The kernel checks it against the device's min_mtu and max_mtu
// (dev_validate_mtu: EINVAL with "mtu less than device minimum" / "greater than device maximum").
Result<Bytes> build_set_mtu(int ifindex, uint32_t mtu);

// RTM_NEWLINK as the kernel multicasts it to RTNLGRP_LINK when a link changes (rtmsg_ifinfo:
// nlmsg_seq and nlmsg_pid 0, no flags): ifindex, ifi_flags, IFLA_IFNAME, IFLA_CARRIER and
// IFLA_OPERSTATE. The simulated kernel sends it; decode_link reads it.
Result<Bytes> build_link_notification(int ifindex, std::string_view ifname, uint32_t flags, bool carrier,
                                      uint8_t operstate);

// The name of an IF_OPER_* value as /sys/class/net/<netdev>/operstate prints it ("up", "down",
// "lowerlayerdown"...); "unknown" for values outside the RFC's.
const char* operstate_name(uint8_t operstate);

// RTM_GETADDR / RTM_GETROUTE dumps (NLM_F_REQUEST|NLM_F_DUMP) of `family` (AF_UNSPEC: all).
// The route dump asks for RT_TABLE_MAIN, but without strict checking the kernel dumps every
// table: filter on RouteEntry::table.
Bytes build_getaddr_dump(uint8_t family = 0);
Bytes build_getroute_dump(uint8_t family = 0);

// --- decoders ----------------------------------------------------------------------------------

// RTM_NEWLINK (also RTM_DELLINK). `vfs` has one entry per IFLA_VF_INFO, in message order, with
// index from the entries' own vf field (the kernel skips VFs whose driver query fails, so
// indices may have gaps). Per VF:
//  - mac: the first 6 bytes of IFLA_VF_MAC;
//  - vlan/qos: IFLA_VF_VLAN (proto 802.1Q), replaced by the first IFLA_VF_VLAN_INFO of
//    IFLA_VF_VLAN_LIST (with its proto) when present;
//  - rates: IFLA_VF_RATE (min and max), else the legacy IFLA_VF_TX_RATE (max);
//  - spoofchk/trust: unset when the kernel reports 0xffffffff (driver did not say);
//  - link_state: unset for values other than 0..2; vlan > 65535 or qos > 255: vlan, qos and
//    vlan_proto all unset (so qos is never set without vlan, in answers as in requests);
//  - stats: IFLA_VF_STATS, when present (absent with RTEXT_FILTER_SKIP_STATS).
// Structural faults are errors: truncated header, attribute lengths past their container,
// trailing bytes that are not an attribute, VF structs shorter than the kernel's, vf indices
// that disagree inside one IFLA_VF_INFO, stats counters that are not 8 bytes.
struct LinkMessage {
  uint16_t type = 0;  // RTM_NEWLINK or RTM_DELLINK
  int ifindex = 0;
  std::string ifname;                 // IFLA_IFNAME ("" if absent)
  uint32_t flags = 0;                 // ifi_flags (IFF_UP, IFF_LOWER_UP...)
  std::optional<uint32_t> num_vf;     // IFLA_NUM_VF (only with RTEXT_FILTER_VF, on devices with a parent)
  std::optional<bool> carrier;        // IFLA_CARRIER (netif_carrier_ok)
  std::optional<uint8_t> operstate;   // IFLA_OPERSTATE: IF_OPER_* (RFC 2863; 6 up, 2 down)
  std::vector<std::string> altnames;  // IFLA_PROP_LIST's IFLA_ALT_IFNAMEs (ip link property add ... altname)
  std::vector<VfInfo> vfs;
};
Result<LinkMessage> decode_link(ByteView msg);

// NLMSG_ERROR: errnum is the positive errno, 0 for an ACK. With NLM_F_ACK_TLVS, the extended
// ACK's NLMSGERR_ATTR_MSG text (NUL and trailing newline stripped) and NLMSGERR_ATTR_OFFS; the
// TLVs follow the echoed request, or only its header with NLM_F_CAPPED (NETLINK_CAP_ACK).
// Errors: short message, error field outside -4095..0, TLVs that are not well formed.
struct NetlinkError {
  int errnum = 0;
  std::string message;                 // extack text, "" if none
  std::optional<uint32_t> bad_offset;  // byte offset of the offending attribute in the request
  uint32_t request_seq = 0;            // nlmsg_seq of the echoed request header
  uint16_t request_type = 0;
};
Result<NetlinkError> decode_error(ByteView msg);

// NLMSG_DONE: errnum 0, or the positive errno the dump ended with (the 4-byte field after the
// header; a bare header reads as 0), with the extended-ack text when NLM_F_ACK_TLVS is set.
Result<NetlinkError> decode_done(ByteView msg);

// RTM_NEWADDR: IFA_LOCAL, else IFA_ADDRESS (IFA_LOCAL is the local side of a point-to-point
// address), as "addr/prefix". Returns nullopt for IPv6 link-local (fe80::/10) addresses and for
// families other than AF_INET/AF_INET6. Errors: short header, bad attributes, an address whose
// length does not match its family, a prefix longer than the address.
struct AddrEntry {
  int ifindex = 0;
  uint8_t family = 0;
  std::string address;  // "192.0.2.1/24", "2001:db8::1/64"
};
Result<std::optional<AddrEntry>> decode_addr(ByteView msg);

// RTM_NEWROUTE: the table (RTA_TABLE, else rtm_table) and every output interface: RTA_OIF and
// the ifindex of each RTA_MULTIPATH next hop. Errors: short header, bad attributes, a
// multipath list whose next hops overrun it.
struct RouteEntry {
  uint8_t family = 0;
  uint32_t table = 0;
  uint8_t type = 0;      // RTN_UNICAST, RTN_LOCAL...
  uint8_t protocol = 0;  // RTPROT_KERNEL (made by the kernel for an address or link), RTPROT_BOOT...
  uint32_t flags = 0;    // rtm_flags (RTM_F_CLONED...)
  std::vector<int> oifs;
};
Result<RouteEntry> decode_route(ByteView msg);

// An RTM_SETLINK that carries VF attributes, read back the way the kernel applies it: exactly
// one IFLA_VFINFO_LIST holding exactly one IFLA_VF_INFO (what build_set_vf emits); every VF
// attribute of one vf index; IFLA_VF_VLAN (proto 802.1Q, qos included) then IFLA_VF_VLAN_LIST
// (exactly one IFLA_VF_VLAN_INFO) — the later wins; IFLA_VF_TX_RATE (max only) then
// IFLA_VF_RATE (both) — the later wins; setting != 0 is true. Refused (EINVAL): other link
// attributes, VF attributes VfConfig cannot express (RSS query, GUIDs), vlan > 65535,
// qos > 255, link state > 2, no VF attribute at all. Structural faults: EBADMSG.
struct SetVfRequest {
  int ifindex = 0;
  uint32_t vf = 0;
  VfConfig config;
  bool ack = false;  // NLM_F_ACK was set
};
Result<SetVfRequest> decode_set_vf(ByteView msg);

// Splits one datagram into its messages (each span exactly nlmsg_len long). Errors: a header
// that is truncated or whose nlmsg_len runs past the datagram or is shorter than a header.
Result<std::vector<ByteView>> split_messages(ByteView datagram);

}  // namespace sriovd::net
