// devlink: the embedded switch (eswitch) mode of a device, over generic netlink, as pure
// builders and decoders in the manner of net/rtnl.h (same conventions: one complete message,
// nlmsg_seq and nlmsg_pid left 0 for the socket to stamp; decoders take any bytes and return a
// value or an EBADMSG error, never reading outside the span). The socket is an RtnlSocket
// opened on NETLINK_GENERIC.
//
// A devlink device is named by its bus and device: "pci" and "0000:17:00.0" (`devlink dev
// eswitch show pci/0000:17:00.0`), or "netdevsim" and "netdevsim1". Generic netlink families
// get their message type at run time: the "devlink" family's id comes from the controller
// (CTRL_CMD_GETFAMILY), and each request and answer carries it as nlmsg_type.
//
// All functions are thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "base/vf.h"
#include "net/rtnl.h"

namespace sriovd::net {

// CTRL_CMD_GETFAMILY for `name` (GENL_ID_CTRL, NLM_F_REQUEST): answered by one CTRL_CMD_NEWFAMILY.
Result<Bytes> build_get_family(std::string_view name);
// CTRL_CMD_NEWFAMILY: CTRL_ATTR_FAMILY_ID, and the name it is for.
struct GenlFamily {
  uint16_t id = 0;
  std::string name;
};
Result<GenlFamily> decode_family(ByteView msg);

// DEVLINK_CMD_ESWITCH_GET on bus/dev (NLM_F_REQUEST): answered by one message of the same
// command carrying the mode, and the inline and encapsulation modes where the driver has them.
// Drivers without eswitch ops answer EOPNOTSUPP; a device devlink does not know, ENODEV.
Result<Bytes> build_eswitch_get(uint16_t family, std::string_view bus, std::string_view dev);
// DEVLINK_CMD_ESWITCH_SET of DEVLINK_ATTR_ESWITCH_MODE (u16) on bus/dev (NLM_F_REQUEST|NLM_F_ACK).
Result<Bytes> build_eswitch_set(uint16_t family, std::string_view bus, std::string_view dev, EswitchMode mode);

struct EswitchInfo {
  uint8_t cmd = 0;  // DEVLINK_CMD_ESWITCH_GET or _SET
  std::string bus, dev;
  std::optional<uint16_t> mode;        // DEVLINK_ESWITCH_MODE_*, as sent (values past switchdev too)
  std::optional<uint8_t> inline_mode;  // DEVLINK_ESWITCH_INLINE_MODE_*
  std::optional<uint8_t> encap_mode;   // DEVLINK_ESWITCH_ENCAP_MODE_*
};
// An eswitch message of `family` (the kernel's answer to ESWITCH_GET, or an ESWITCH_SET
// request read back). Errors: another family or command, a header shorter than genlmsghdr,
// malformed attributes, a mode attribute that is not a u16.
Result<EswitchInfo> decode_eswitch(ByteView msg, uint16_t family);

}  // namespace sriovd::net
