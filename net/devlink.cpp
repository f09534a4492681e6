#include "net/devlink.h"

#include <libmnl/libmnl.h>
#include <linux/devlink.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include "net/rtnl_attrs.h"

namespace sriovd::net {

using detail::Builder;
using detail::invalid;

namespace {

// Bus and device names are short ("pci", "0000:17:00.0", "netdevsim1"); the kernel takes any
// string, but one with a NUL in it could not be sent as one.
Result<void> check_handle(std::string_view bus, std::string_view dev) {
  if (bus.empty() || bus.size() > 64 || bus.find('\0') != std::string_view::npos)
    return invalid("devlink bus name '" + std::string(bus) + "' is not 1 to 64 bytes", "bus");
  if (dev.empty() || dev.size() > 64 || dev.find('\0') != std::string_view::npos)
    return invalid("devlink device name '" + std::string(dev) + "' is not 1 to 64 bytes", "dev");
  return {};
}

Builder genl(uint16_t family, uint16_t flags, uint8_t cmd, uint8_t version) {
  Builder b(family, flags);
  auto* g = b.extra<genlmsghdr>();
  g->cmd = cmd;
  g->version = version;
  return b;
}

}  // namespace

Result<Bytes> build_get_family(std::string_view name) {
  if (name.empty() || name.size() >= GENL_NAMSIZ || name.find('\0') != std::string_view::npos)
    return invalid("generic netlink family name '" + std::string(name) + "' is not 1 to 15 bytes", "name");
  Builder b = genl(GENL_ID_CTRL, NLM_F_REQUEST, CTRL_CMD_GETFAMILY, 1);
  b.put_strz(CTRL_ATTR_FAMILY_NAME, std::string(name));
  return b.finish();
}

Result<GenlFamily> decode_family(ByteView bytes) {
  TRY_ASSIGN(m, detail::Message::load(bytes, sizeof(genlmsghdr), "CTRL_CMD_NEWFAMILY"));
  if (m.nlh()->nlmsg_type != GENL_ID_CTRL)
    return detail::bad("CTRL_CMD_NEWFAMILY: message type " + std::to_string(m.nlh()->nlmsg_type) +
                       ", not the generic netlink controller's");
  auto g = m.family<genlmsghdr>();
  if (g.cmd != CTRL_CMD_NEWFAMILY)
    return detail::bad("CTRL_CMD_NEWFAMILY: command " + std::to_string(g.cmd) + ", not CTRL_CMD_NEWFAMILY");
  const std::string what = "CTRL_CMD_NEWFAMILY";
  TRY_ASSIGN(attrs, detail::attrs_of(m, what));
  GenlFamily out;
  bool have_id = false;
  for (const nlattr* a : attrs) {
    switch (mnl_attr_get_type(a)) {
      case CTRL_ATTR_FAMILY_ID: {
        TRY_ASSIGN(id, detail::get_u16(a, what + ": CTRL_ATTR_FAMILY_ID"));
        out.id = id;
        have_id = true;
        break;
      }
      case CTRL_ATTR_FAMILY_NAME: {
        TRY_ASSIGN(name, detail::get_strz(a, what + ": CTRL_ATTR_FAMILY_NAME"));
        out.name = std::move(name);
        break;
      }
      default: break;
    }
  }
  if (!have_id) return detail::bad(what + ": no CTRL_ATTR_FAMILY_ID");
  return out;
}

Result<Bytes> build_eswitch_get(uint16_t family, std::string_view bus, std::string_view dev) {
  TRY(check_handle(bus, dev));
  Builder b = genl(family, NLM_F_REQUEST, DEVLINK_CMD_ESWITCH_GET, DEVLINK_GENL_VERSION);
  b.put_strz(DEVLINK_ATTR_BUS_NAME, std::string(bus));
  b.put_strz(DEVLINK_ATTR_DEV_NAME, std::string(dev));
  return b.finish();
}

Result<Bytes> build_eswitch_set(uint16_t family, std::string_view bus, std::string_view dev, EswitchMode mode) {
  TRY(check_handle(bus, dev));
  Builder b = genl(family, NLM_F_REQUEST | NLM_F_ACK, DEVLINK_CMD_ESWITCH_SET, DEVLINK_GENL_VERSION);
  b.put_strz(DEVLINK_ATTR_BUS_NAME, std::string(bus));
  b.put_strz(DEVLINK_ATTR_DEV_NAME, std::string(dev));
  b.put_u16(DEVLINK_ATTR_ESWITCH_MODE, static_cast<uint16_t>(mode));
  return b.finish();
}

Result<EswitchInfo> decode_eswitch(ByteView bytes, uint16_t family) {
  TRY_ASSIGN(m, detail::Message::load(bytes, sizeof(genlmsghdr), "devlink eswitch"));
  if (m.nlh()->nlmsg_type != family)
    return detail::bad("devlink eswitch: message type " + std::to_string(m.nlh()->nlmsg_type) + ", not family " +
                       std::to_string(family));
  auto g = m.family<genlmsghdr>();
  if (g.cmd != DEVLINK_CMD_ESWITCH_GET && g.cmd != DEVLINK_CMD_ESWITCH_SET)
    return detail::bad("devlink eswitch: command " + std::to_string(g.cmd) + ", not an eswitch command");
  EswitchInfo out;
  out.cmd = g.cmd;
  const std::string what = "devlink eswitch";
  TRY_ASSIGN(attrs, detail::attrs_of(m, what));
  for (const nlattr* a : attrs) {
    switch (mnl_attr_get_type(a)) {
      case DEVLINK_ATTR_BUS_NAME: {
        TRY_ASSIGN(s, detail::get_strz(a, what + ": DEVLINK_ATTR_BUS_NAME"));
        out.bus = std::move(s);
        break;
      }
      case DEVLINK_ATTR_DEV_NAME: {
        TRY_ASSIGN(s, detail::get_strz(a, what + ": DEVLINK_ATTR_DEV_NAME"));
        out.dev = std::move(s);
        break;
      }
      case DEVLINK_ATTR_ESWITCH_MODE: {
        TRY_ASSIGN(v, detail::get_u16(a, what + ": DEVLINK_ATTR_ESWITCH_MODE"));
        out.mode = v;
        break;
      }
      case DEVLINK_ATTR_ESWITCH_INLINE_MODE: {
        TRY_ASSIGN(v, detail::get_u8(a, what + ": DEVLINK_ATTR_ESWITCH_INLINE_MODE"));
        out.inline_mode = v;
        break;
      }
      case DEVLINK_ATTR_ESWITCH_ENCAP_MODE: {
        TRY_ASSIGN(v, detail::get_u8(a, what + ": DEVLINK_ATTR_ESWITCH_ENCAP_MODE"));
        out.encap_mode = v;
        break;
      }
      default: break;
    }
  }
  return out;
}

}  // namespace sriovd::net
