// libFuzzer target for the rtnetlink and devlink decoders: any bytes, as an RTM_NEWLINK with VF
// info, an NLMSG_ERROR/NLMSG_DONE, an RTM_SETLINK request, an address or a route, a generic
// netlink family or a devlink eswitch answer, or a whole datagram,
// must decode to a value or an error — never crash or read out of bounds — and what decodes as a
// VF request must survive a build/decode round trip.
#include <cstdint>
#include <cstdlib>

#include "net/devlink.h"
#include "net/rtnl.h"

using namespace sriovd;
using namespace sriovd::net;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in(data, size);
  if (auto link = decode_link(in)) {
    for (const auto& vf : link->vfs) {
      if (vf.config.qos && !vf.config.vlan) std::abort();  // qos is read together with vlan
    }
  }
  (void)decode_error(in);
  (void)decode_done(in);
  (void)decode_addr(in);
  (void)decode_route(in);
  (void)decode_family(in);
  if (size >= 6) {
    // The family a devlink answer is read for: the message's own type, so the decoder's body runs.
    const auto family = static_cast<uint16_t>(data[4] | (data[5] << 8));
    if (auto e = decode_eswitch(in, family); e && e->cmd != 29 && e->cmd != 30) std::abort();  // ESWITCH_GET/SET
  }
  if (auto req = decode_set_vf(in)) {
    // A request that decodes is one build_set_vf can express; rebuilt, it reads back the same.
    auto again = build_set_vf(req->ifindex > 0 ? req->ifindex : 1, req->vf, req->config);
    if (!again) std::abort();
    auto back = decode_set_vf(*again);
    if (!back || back->config != req->config || back->vf != req->vf) std::abort();
  }
  if (auto msgs = split_messages(in)) {
    for (ByteView m : *msgs) {
      (void)decode_link(m);
      (void)decode_error(m);
    }
  }
  return 0;
}
