#include "net/rtnl_attrs.h"

#include <linux/rtnetlink.h>

#include <cerrno>

namespace sriovd::net::detail {

Error bad(const std::string& what) { return Error::sys(EBADMSG, what); }

Error invalid(std::string what, std::string field) {
  Error e = Error::make(ErrorCode::invalid, std::move(what), std::move(field));
  e.errnum = EINVAL;
  return e;
}

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

Result<uint32_t> get_u32(const nlattr* a, const std::string& what) {
  if (mnl_attr_validate(a, MNL_TYPE_U32) < 0)
    return bad(what + ": " + std::to_string(mnl_attr_get_payload_len(a)) + " bytes, not a u32");
  return mnl_attr_get_u32(a);
}

Result<uint8_t> get_u8(const nlattr* a, const std::string& what) {
  if (mnl_attr_validate(a, MNL_TYPE_U8) < 0)
    return bad(what + ": " + std::to_string(mnl_attr_get_payload_len(a)) + " bytes, not a u8");
  return mnl_attr_get_u8(a);
}

Result<uint16_t> get_u16(const nlattr* a, const std::string& what) {
  if (mnl_attr_validate(a, MNL_TYPE_U16) < 0)
    return bad(what + ": " + std::to_string(mnl_attr_get_payload_len(a)) + " bytes, not a u16");
  return mnl_attr_get_u16(a);
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

std::string get_text(const nlattr* a) {
  auto p = static_cast<const char*>(mnl_attr_get_payload(a));
  size_t n = mnl_attr_get_payload_len(a);
  std::string s(p, strnlen(p, n));
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
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

}  // namespace sriovd::net::detail
