#include "sim/kstrtox.h"

#include <doctest/doctest.h>

#include <cerrno>
#include <string>

using namespace sriovd::kernel::sim;
using namespace std::string_literals;

namespace {

// kstrtoull's result as "value" or "-errno".
std::string ull(const char* s, unsigned base) {
  unsigned long long v = 12345;
  const int r = kstrtoull(s, base, &v);
  return r == 0 ? std::to_string(v) : std::to_string(r);
}

std::string boolean(const char* s) {
  bool b = false;
  const int r = kstrtobool(s, &b);
  return r == 0 ? (b ? "1" : "0") : std::to_string(r);
}

}  // namespace

TEST_CASE("kstrtoull: radix from the prefix with base 0, one trailing newline, nothing else") {
  CHECK(ull("42", 0) == "42");
  CHECK(ull("42\n", 0) == "42");
  CHECK(ull("+42", 0) == "42");
  CHECK(ull("0x1f", 0) == "31");
  CHECK(ull("0X1F\n", 0) == "31");
  CHECK(ull("017", 0) == "15");
  CHECK(ull("0", 0) == "0");
  CHECK(ull("1f", 16) == "31");
  CHECK(ull("0x1f", 16) == "31");
  CHECK(ull("017", 10) == "17");
  CHECK(ull("18446744073709551615", 0) == "18446744073709551615");

  const std::string einval = std::to_string(-EINVAL), erange = std::to_string(-ERANGE);
  CHECK(ull("", 0) == einval);
  CHECK(ull("\n", 0) == einval);
  CHECK(ull("42\n\n", 0) == einval);
  CHECK(ull(" 42", 0) == einval);  // no leading blanks, unlike strtoull
  CHECK(ull("42 ", 0) == einval);
  CHECK(ull("-1", 0) == einval);
  CHECK(ull("++1", 0) == einval);
  CHECK(ull("08", 0) == einval);   // octal
  CHECK(ull("0x", 0) == einval);   // "0x" without a hex digit is octal 0 then 'x'
  CHECK(ull("0x", 16) == einval);  // base 16 skips "0x", then no digits
  CHECK(ull("1a", 10) == einval);
  CHECK(ull("18446744073709551616", 0) == erange);
  CHECK(ull("99999999999999999999x", 0) == erange);  // the overflow is reported first
}

TEST_CASE("kstrtobool: the first character, two for on/off") {
  for (const char* yes : {"y", "Y", "yes", "t", "True", "1", "1\n", "10", "on", "ON", "oN\n"})
    CHECK(boolean(yes) == "1");
  for (const char* no : {"n", "N", "no", "f", "false", "0", "0x", "off", "of", "OFF"}) CHECK(boolean(no) == "0");
  const std::string einval = std::to_string(-EINVAL);
  for (const char* bad : {"", "\n", " 1", "2", "o", "ox", "enable"}) CHECK(boolean(bad) == einval);
}

TEST_CASE("scan_hex_fields: vsscanf's %x, stopping at the first field that does not convert") {
  uint32_t f[7] = {};
  CHECK(scan_hex_fields("8086 1889", 7, f) == 2);
  CHECK(f[0] == 0x8086);
  CHECK(f[1] == 0x1889);
  CHECK(scan_hex_fields("  0x8086\t0X10ca ffffffff\n", 7, f) == 3);
  CHECK(f[1] == 0x10ca);
  CHECK(f[2] == 0xffffffff);
  CHECK(scan_hex_fields("8086 zz 1", 7, f) == 1);
  CHECK(scan_hex_fields("", 7, f) == 0);
  CHECK(scan_hex_fields("1 2 3", 2, f) == 2);
  CHECK(scan_hex_fields("123456789", 1, f) == 1);
  CHECK(f[0] == 0x23456789);  // modulo 2^32
}

TEST_CASE("c_str_of and device_name_of: a C string, less one trailing newline") {
  CHECK(c_str_of("abc\0def"s) == "abc");
  CHECK(c_str_of("abc\n") == "abc\n");
  CHECK(device_name_of("0000:01:00.0\n") == "0000:01:00.0");
  CHECK(device_name_of("0000:01:00.0\n\n") == "0000:01:00.0\n");
  CHECK(device_name_of("0000:01:00.0\0\n"s) == "0000:01:00.0");
  CHECK(device_name_of("") == "");
}
