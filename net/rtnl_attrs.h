// Internal to net/: the safe reading of rtnetlink messages that every decoder of rtnl.h shares.
// A Message is a private, aligned copy of one message; the attribute readers check each length
// before libmnl reads through a typed pointer, and turn what libmnl's walk would skip quietly
// into EBADMSG errors. TRY and TRY_ASSIGN return a failed Result's error from the calling
// decoder. Everything here is pure and thread-safe.
#pragma once

#include <libmnl/libmnl.h>
#include <linux/netlink.h>

#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "net/rtnl.h"

namespace sriovd::net::detail {

// A structural fault in a message: EBADMSG.
Error bad(const std::string& what);
// A well-formed message that asks for something refused: `invalid`, errno EINVAL.
Error invalid(std::string what, std::string field = {});

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
      return bad(std::string(what) + ": " + std::to_string(h.nlmsg_len) + " bytes, too short for its family header");
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
  const char* attrs_begin() const { return static_cast<const char*>(mnl_nlmsg_get_payload_offset(nlh(), family_len_)); }
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
bool well_formed(const char* p, size_t len);

using AttrList = std::vector<const nlattr*>;

// An mnl_attr_cb_t that appends each attribute to the AttrList `data` points to.
int collect(const nlattr* attr, void* data);

// The top-level attributes of a message, or of a nested attribute, checked by well_formed.
Result<AttrList> attrs_of(const Message& m, const std::string& what);
Result<AttrList> nested(const nlattr* nest, const std::string& what);

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

Result<uint8_t> get_u8(const nlattr* a, const std::string& what);
Result<uint16_t> get_u16(const nlattr* a, const std::string& what);
Result<uint32_t> get_u32(const nlattr* a, const std::string& what);
Result<uint64_t> get_u64(const nlattr* a, const std::string& what);
Result<std::string> get_strz(const nlattr* a, const std::string& what);
// A string up to its first NUL or the end of the payload, for text meant for humans.
std::string get_text(const nlattr* a);

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

// Lays out one request with libmnl: the header, the family header (extra<T>()), attributes.
// Requests are small: the largest, an RTM_SETLINK with every VF attribute, is under 200 bytes.
class Builder {
 public:
  static constexpr size_t kRequestBuffer = 512;

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
  void put_u8(uint16_t type, uint8_t v) { ok_ = ok_ && mnl_attr_put_u8_check(nlh_, buf_.size(), type, v); }
  void put_u16(uint16_t type, uint16_t v) { ok_ = ok_ && mnl_attr_put_u16_check(nlh_, buf_.size(), type, v); }
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

// "RTM_NEWLINK", "NLMSG_ERROR"... for the messages read here, else "message type N".
std::string type_name(uint16_t type);
// An error naming the message if its type is none of `types`.
Result<void> expect_type(const Message& m, std::initializer_list<uint16_t> types, const char* what);

}  // namespace sriovd::net::detail

#define TRY(expr)                          \
  do {                                     \
    auto _r = (expr);                      \
    if (!_r) return std::move(_r).error(); \
  } while (0)

// `var` is the name of the variable declared, a declarator that cannot be parenthesised.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define TRY_ASSIGN(var, expr)                      \
  auto var##_r = (expr);                           \
  if (!var##_r) return std::move(var##_r).error(); \
  auto var = std::move(var##_r).value()
// NOLINTEND(bugprone-macro-parentheses)
