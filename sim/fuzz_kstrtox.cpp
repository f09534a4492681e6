// libFuzzer target for the kstrtox emulation (sim/kstrtox.h). The first byte picks the parser
// (and kstrtoull's base), the rest is what was written to the attribute. Checked properties:
// kstrtoull agrees with a plain reference parser (value and errno), and what it accepts
// round-trips through printing; kstrtobool depends on the first two characters only and agrees
// with the table; scan_hex_fields' fields print and scan back to the same values; the C-string
// views are prefixes without NULs.
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sim/kstrtox.h"

using namespace sriovd::kernel::sim;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

int digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'z') return c - 'a' + 10;
  if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
  return 99;
}

// _kstrtoull written out the long way: prefix, digits, tail, with 128-bit arithmetic.
int reference_ull(std::string_view s, unsigned base, unsigned long long* res) {
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  const bool hex_prefix = s.size() >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
  if (base == 0) {
    if (hex_prefix && s.size() >= 3 && digit(s[2]) < 16) base = 16, s.remove_prefix(2);
    else base = !s.empty() && s[0] == '0' ? 8 : 10;
  } else if (base == 16 && hex_prefix) {
    s.remove_prefix(2);
  }
  size_t n = 0;
  unsigned __int128 v = 0;
  bool overflow = false;
  while (n < s.size() && digit(s[n]) < static_cast<int>(base)) {
    v = v * base + static_cast<unsigned>(digit(s[n]));
    if (v > ULLONG_MAX) overflow = true, v &= ULLONG_MAX;
    ++n;
  }
  if (overflow) return -ERANGE;
  if (n == 0) return -EINVAL;
  const std::string_view tail = s.substr(n);
  if (!tail.empty() && tail != "\n") return -EINVAL;
  *res = static_cast<unsigned long long>(v);
  return 0;
}

void check_ull(const std::string& s, unsigned base) {
  unsigned long long got = 0, want = 0;
  const int r = kstrtoull(s.c_str(), base, &got);
  require(r == reference_ull(s, base, &want));
  if (r != 0) return;
  require(got == want);
  char text[32];
  unsigned long long again = 0;
  std::snprintf(text, sizeof text, "%llu\n", got);
  require(kstrtoull(text, 10, &again) == 0 && again == got);
  std::snprintf(text, sizeof text, "0x%llx", got);
  require(kstrtoull(text, 0, &again) == 0 && again == got);
}

void check_bool(const std::string& s) {
  bool got = false, first_two = false;
  const int r = kstrtobool(s.c_str(), &got);
  require(r == kstrtobool(s.substr(0, 2).c_str(), &first_two));
  if (r == 0) require(got == first_two);
  const char c = s.empty() ? '\0' : s[0];
  const std::string_view yes = "yYtT1", no = "nNfF0";
  if (yes.find(c) != std::string_view::npos && c) require(r == 0 && got);
  else if (no.find(c) != std::string_view::npos && c) require(r == 0 && !got);
  else if (c != 'o' && c != 'O') require(r == -EINVAL);
}

void check_hex(const std::string& s) {
  uint32_t f[7];
  const int n = scan_hex_fields(s.c_str(), 7, f);
  require(n >= 0 && n <= 7);
  std::string printed;
  for (int i = 0; i < n; ++i) {
    char text[16];
    std::snprintf(text, sizeof text, i % 2 ? "0x%x " : "%x\t", f[i]);
    printed += text;
  }
  uint32_t g[7];
  require(scan_hex_fields(printed.c_str(), 7, g) == n);
  for (int i = 0; i < n; ++i) require(f[i] == g[i]);
  require(scan_hex_fields(s.c_str(), 2, g) == std::min(n, 2));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view written(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string s = c_str_of(written);
  require(s.find('\0') == std::string::npos && written.substr(0, s.size()) == s);
  const std::string name = device_name_of(written);
  require(name == s || name + "\n" == s);
  switch (data[0] % 6) {
    case 0: check_ull(s, 0); break;
    case 1: check_ull(s, 8); break;
    case 2: check_ull(s, 10); break;
    case 3: check_ull(s, 16); break;
    case 4: check_bool(s); break;
    default: check_hex(s); break;
  }
  return 0;
}
