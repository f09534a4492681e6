// kstrtox: how Linux parses what is written to a sysfs attribute, as pure functions on the
// written bytes, with the kernel's negative errnos. The simulated kernel's stores use these so
// that a value the real kernel rejects is rejected the same way (and one it takes, taken).
//
// Followed: lib/kstrtox.c (Linux 6.1) _kstrtoull and kstrtobool, lib/vsprintf.c vsscanf's "%x",
// kernfs_fop_write_iter (a store sees the bytes NUL-terminated), sysfs_streq. Stateless.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sriovd::kernel::sim {

// The written bytes as a store sees them: a C string, so everything from an embedded NUL on is
// gone.
std::string c_str_of(std::string_view v);

// _kstrtoull(): an optional '+'; base 0 picks 16 for "0x" followed by a hex digit, 8 for a
// leading 0, else 10 (base 16 also skips a "0x"); one or more digits; one optional trailing
// newline; nothing else. 0 and *res set, or -EINVAL (no digits, other characters) or -ERANGE
// (over 64 bits; checked before the rest, as the kernel does). *res is untouched on failure.
int kstrtoull(const char* s, unsigned base, unsigned long long* res);

// kstrtobool(): only the first character counts, two for "on"/"off": y/Y/t/T/1 and n/N/f/F/0,
// "on"/"of..." in any case. 0 and *res set, or -EINVAL.
int kstrtobool(const char* s, bool* res);

// sscanf(s, "%x %x ...") for up to `max` fields as vsscanf does it: blanks skipped, an optional
// "0x" before a hex digit, at least one hex digit; stops at the first field that does not
// convert. The value is taken modulo 2^32 (the kernel's %x into an unsigned int). Returns how
// many fields were stored in `out`.
int scan_hex_fields(const char* s, int max, uint32_t* out);

// The device name a bus attribute (bind, unbind, drivers_probe) compares: device_match_name()
// → sysfs_streq() equal but for one trailing newline, of the C string.
std::string device_name_of(std::string_view v);

}  // namespace sriovd::kernel::sim
