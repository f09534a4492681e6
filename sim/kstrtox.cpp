#include "sim/kstrtox.h"

#include <cctype>
#include <cerrno>
#include <climits>

namespace sriovd::kernel::sim {

// A sysfs store sees the written bytes NUL-terminated (kernfs_fop_write_iter), so C-string
// parsers stop at an embedded NUL.
std::string c_str_of(std::string_view v) { return std::string(v.substr(0, v.find('\0'))); }

// lib/kstrtox.c _kstrtoull(): optional '+', base 0 picks 16 for "0x" + hex digit, 8 for a
// leading 0, else 10; digits; one optional trailing newline; nothing else. -ERANGE on overflow.
int kstrtoull(const char* s, unsigned base, unsigned long long* res) {
  if (s[0] == '+') ++s;
  if (base == 0) {
    if (s[0] == '0')
      base = std::tolower(static_cast<unsigned char>(s[1])) == 'x' && std::isxdigit(static_cast<unsigned char>(s[2]))
                 ? 16
                 : 8;
    else base = 10;
  }
  if (base == 16 && s[0] == '0' && std::tolower(static_cast<unsigned char>(s[1])) == 'x') s += 2;
  unsigned long long r = 0;
  unsigned digits = 0;
  bool overflow = false;
  for (;; ++s) {
    const unsigned c = static_cast<unsigned char>(*s), lc = c | 0x20;
    unsigned v;
    if (c >= '0' && c <= '9') v = c - '0';
    else if (lc >= 'a' && lc <= 'f') v = lc - 'a' + 10;
    else break;
    if (v >= base) break;
    if (r > (ULLONG_MAX - v) / base) overflow = true;
    r = r * base + v;
    ++digits;
  }
  if (overflow) return -ERANGE;
  if (digits == 0) return -EINVAL;
  if (*s == '\n') ++s;
  if (*s) return -EINVAL;
  *res = r;
  return 0;
}

// lib/kstrtox.c kstrtobool(): only the first character counts (two for "on"/"off").
int kstrtobool(const char* s, bool* res) {
  switch (s[0]) {
    case 'y':
    case 'Y':
    case 't':
    case 'T':
    case '1': *res = true; return 0;
    case 'n':
    case 'N':
    case 'f':
    case 'F':
    case '0': *res = false; return 0;
    case 'o':
    case 'O':
      if (s[1] == 'n' || s[1] == 'N') {
        *res = true;
        return 0;
      }
      if (s[1] == 'f' || s[1] == 'F') {
        *res = false;
        return 0;
      }
      return -EINVAL;
    default: return -EINVAL;
  }
}

// sscanf(buf, "%x %x ...") as lib/vsprintf.c vsscanf does it: blanks skipped, an optional "0x",
// at least one hex digit; stops at the first field that does not convert. Returns the count.
int scan_hex_fields(const char* s, int max, uint32_t* out) {
  int n = 0;
  while (n < max) {
    while (std::isspace(static_cast<unsigned char>(*s))) ++s;
    if (!std::isxdigit(static_cast<unsigned char>(*s))) break;
    if (s[0] == '0' && std::tolower(static_cast<unsigned char>(s[1])) == 'x' &&
        std::isxdigit(static_cast<unsigned char>(s[2])))
      s += 2;
    unsigned long long v = 0;
    while (std::isxdigit(static_cast<unsigned char>(*s))) {
      const unsigned c = static_cast<unsigned char>(*s) | 0x20;
      v = v * 16 + (c <= '9' ? c - '0' : c - 'a' + 10);
      ++s;
    }
    out[n++] = static_cast<uint32_t>(v);
  }
  return n;
}

// drivers/base/core.c device_match_name() → sysfs_streq(): equal but for one trailing newline.
std::string device_name_of(std::string_view v) {
  std::string s = c_str_of(v);
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

}  // namespace sriovd::kernel::sim
