// The devlink builders read back by libmnl and by their decoders; kernel-shaped answers (laid
// out here with libmnl as devlink_nl_eswitch_fill and ctrl_fill_info write them) decoded.
#include "net/devlink.h"

#include <doctest/doctest.h>
#include <libmnl/libmnl.h>
#include <linux/devlink.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include <string>
#include <vector>

#include "net/rtnl_test_support.h"

using namespace sriovd;
using namespace sriovd::net;
using namespace sriovd::net::testing;

namespace {

constexpr uint16_t kFamily = 21;  // what the controller gave devlink on one boot; any id works

// A message as the kernel lays it out: header, genlmsghdr, then what `fill` puts.
template <class F>
Bytes kernel_message(uint16_t type, uint8_t cmd, F fill) {
  std::vector<uint8_t> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* h = mnl_nlmsg_put_header(buf.data());
  h->nlmsg_type = type;
  auto* g = static_cast<genlmsghdr*>(mnl_nlmsg_put_extra_header(h, sizeof(genlmsghdr)));
  g->cmd = cmd;
  g->version = 1;
  fill(h);
  buf.resize(h->nlmsg_len);
  return buf;
}

const genlmsghdr* genl_of(const Bytes& msg) {
  return static_cast<const genlmsghdr*>(mnl_nlmsg_get_payload(reinterpret_cast<const nlmsghdr*>(msg.data())));
}

}  // namespace

TEST_CASE("CTRL_CMD_GETFAMILY for devlink, and the controller's answer") {
  auto req = build_get_family("devlink");
  REQUIRE(req);
  auto nlh = reinterpret_cast<const nlmsghdr*>(req->data());
  CHECK(nlh->nlmsg_type == GENL_ID_CTRL);
  CHECK(nlh->nlmsg_flags == NLM_F_REQUEST);
  CHECK(genl_of(*req)->cmd == CTRL_CMD_GETFAMILY);
  auto a = attrs(*req, sizeof(genlmsghdr));
  REQUIRE(a.size() == 1);
  CHECK(mnl_attr_get_type(a[0]) == CTRL_ATTR_FAMILY_NAME);
  CHECK(std::string(mnl_attr_get_str(a[0])) == "devlink");
  CHECK_FALSE(build_get_family(""));
  CHECK_FALSE(build_get_family("a-name-of-16-chr"));

  auto answer = kernel_message(GENL_ID_CTRL, CTRL_CMD_NEWFAMILY, [](nlmsghdr* h) {
    mnl_attr_put_strz(h, CTRL_ATTR_FAMILY_NAME, "devlink");
    mnl_attr_put_u16(h, CTRL_ATTR_FAMILY_ID, kFamily);
    mnl_attr_put_u32(h, CTRL_ATTR_VERSION, DEVLINK_GENL_VERSION);
    mnl_attr_put_u32(h, CTRL_ATTR_HDRSIZE, 0);
    mnl_attr_put_u32(h, CTRL_ATTR_MAXATTR, DEVLINK_ATTR_MAX);
    nlattr* ops = mnl_attr_nest_start(h, CTRL_ATTR_OPS);
    nlattr* op = mnl_attr_nest_start(h, 1);
    mnl_attr_put_u32(h, CTRL_ATTR_OP_ID, DEVLINK_CMD_ESWITCH_GET);
    mnl_attr_nest_end(h, op);
    mnl_attr_nest_end(h, ops);
  });
  auto fam = decode_family(answer);
  REQUIRE(fam);
  CHECK(fam->id == kFamily);
  CHECK(fam->name == "devlink");

  auto no_id = kernel_message(GENL_ID_CTRL, CTRL_CMD_NEWFAMILY,
                              [](nlmsghdr* h) { mnl_attr_put_strz(h, CTRL_ATTR_FAMILY_NAME, "devlink"); });
  auto e = decode_family(no_id);
  REQUIRE_FALSE(e);
  CHECK(e.error().message.find("CTRL_ATTR_FAMILY_ID") != std::string::npos);
  CHECK_FALSE(decode_family(kernel_message(kFamily, CTRL_CMD_NEWFAMILY, [](nlmsghdr*) {})));
}

TEST_CASE("DEVLINK_CMD_ESWITCH_SET and _GET on pci/<address>, read back") {
  auto set = build_eswitch_set(kFamily, "pci", "0000:17:00.0", EswitchMode::switchdev);
  REQUIRE(set);
  auto nlh = reinterpret_cast<const nlmsghdr*>(set->data());
  CHECK(nlh->nlmsg_type == kFamily);
  CHECK(nlh->nlmsg_flags == (NLM_F_REQUEST | NLM_F_ACK));
  CHECK(genl_of(*set)->cmd == DEVLINK_CMD_ESWITCH_SET);
  CHECK(genl_of(*set)->version == DEVLINK_GENL_VERSION);
  auto a = attrs(*set, sizeof(genlmsghdr));
  REQUIRE(a.size() == 3);
  CHECK(mnl_attr_get_type(a[0]) == DEVLINK_ATTR_BUS_NAME);
  CHECK(std::string(mnl_attr_get_str(a[0])) == "pci");
  CHECK(mnl_attr_get_type(a[1]) == DEVLINK_ATTR_DEV_NAME);
  CHECK(std::string(mnl_attr_get_str(a[1])) == "0000:17:00.0");
  CHECK(mnl_attr_get_type(a[2]) == DEVLINK_ATTR_ESWITCH_MODE);
  CHECK(mnl_attr_get_payload_len(a[2]) == 2);
  CHECK(mnl_attr_get_u16(a[2]) == DEVLINK_ESWITCH_MODE_SWITCHDEV);
  auto back = decode_eswitch(*set, kFamily);
  REQUIRE(back);
  CHECK(back->cmd == DEVLINK_CMD_ESWITCH_SET);
  CHECK(back->bus == "pci");
  CHECK(back->dev == "0000:17:00.0");
  CHECK(back->mode == DEVLINK_ESWITCH_MODE_SWITCHDEV);
  CHECK_FALSE(back->inline_mode);

  auto get = build_eswitch_get(kFamily, "netdevsim", "netdevsim1");
  REQUIRE(get);
  CHECK(reinterpret_cast<const nlmsghdr*>(get->data())->nlmsg_flags == NLM_F_REQUEST);
  CHECK(genl_of(*get)->cmd == DEVLINK_CMD_ESWITCH_GET);
  CHECK(attrs(*get, sizeof(genlmsghdr)).size() == 2);
  CHECK_FALSE(build_eswitch_get(kFamily, "", "x"));
  CHECK_FALSE(build_eswitch_set(kFamily, "pci", std::string(65, 'a'), EswitchMode::legacy));

  // The kernel's answer: handle, mode, inline mode and encap mode (devlink_nl_eswitch_fill).
  auto answer = kernel_message(kFamily, DEVLINK_CMD_ESWITCH_GET, [](nlmsghdr* h) {
    mnl_attr_put_strz(h, DEVLINK_ATTR_BUS_NAME, "pci");
    mnl_attr_put_strz(h, DEVLINK_ATTR_DEV_NAME, "0000:3b:00.0");
    mnl_attr_put_u16(h, DEVLINK_ATTR_ESWITCH_MODE, DEVLINK_ESWITCH_MODE_LEGACY);
    mnl_attr_put_u8(h, DEVLINK_ATTR_ESWITCH_INLINE_MODE, DEVLINK_ESWITCH_INLINE_MODE_LINK);
    mnl_attr_put_u8(h, DEVLINK_ATTR_ESWITCH_ENCAP_MODE, DEVLINK_ESWITCH_ENCAP_MODE_BASIC);
  });
  auto info = decode_eswitch(answer, kFamily);
  REQUIRE(info);
  CHECK(info->dev == "0000:3b:00.0");
  CHECK(info->mode == DEVLINK_ESWITCH_MODE_LEGACY);
  CHECK(info->inline_mode == DEVLINK_ESWITCH_INLINE_MODE_LINK);
  CHECK(info->encap_mode == DEVLINK_ESWITCH_ENCAP_MODE_BASIC);
}

TEST_CASE("devlink eswitch decoder: another family or command, a short mode, bad attributes") {
  auto set = *build_eswitch_set(kFamily, "pci", "0000:17:00.0", EswitchMode::legacy);
  CHECK_FALSE(decode_eswitch(set, kFamily + 1));
  CHECK_FALSE(decode_eswitch(kernel_message(kFamily, DEVLINK_CMD_GET, [](nlmsghdr*) {}), kFamily));
  auto byte_mode = kernel_message(kFamily, DEVLINK_CMD_ESWITCH_GET,
                                  [](nlmsghdr* h) { mnl_attr_put_u8(h, DEVLINK_ATTR_ESWITCH_MODE, 1); });
  auto e = decode_eswitch(byte_mode, kFamily);
  REQUIRE_FALSE(e);
  CHECK(e.error().message.find("DEVLINK_ATTR_ESWITCH_MODE") != std::string::npos);
  CHECK(e.error().errnum == EBADMSG);
  Bytes cut(set.begin(), set.end() - 2);  // nlmsg_len now runs past the bytes
  CHECK_FALSE(decode_eswitch(cut, kFamily));
  Bytes header_only(set.begin(), set.begin() + 16);
  reinterpret_cast<nlmsghdr*>(header_only.data())->nlmsg_len = 16;
  CHECK_FALSE(decode_eswitch(header_only, kFamily));  // no genlmsghdr
}
