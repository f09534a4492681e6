#include "agent/uevent.h"

#include <charconv>
#include <vector>

namespace sriovd::agent {

namespace {

Error bad(const std::string& why) { return Error::make(ErrorCode::invalid, "uevent: " + why); }

bool printable(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

}  // namespace

std::optional<PciAddress> UEvent::pci_function() const {
  if (subsystem == "pci") {
    auto it = env.find("PCI_SLOT_NAME");
    if (it != env.end())
      if (auto a = PciAddress::parse(it->second)) return a;
  }
  // "/devices/pci0000:00/0000:00:01.0/0000:17:00.0/net/ens1f0": the last PCI address on the way.
  std::optional<PciAddress> found;
  size_t i = 0;
  while (i < devpath.size()) {
    size_t j = devpath.find('/', i);
    if (j == std::string::npos) j = devpath.size();
    std::string_view part(devpath.data() + i, j - i);
    if (part.size() == 12)
      if (auto a = PciAddress::parse(std::string(part)); a && a->to_string() == part) found = a;
    i = j + 1;
  }
  return found;
}

Result<UEvent> parse_uevent(std::string_view d) {
  if (d.size() > kMaxUeventBytes) return bad("datagram of " + std::to_string(d.size()) + " bytes is too long");
  if (d.substr(0, 8) == std::string_view("libudev\0", 8))
    return bad("a libudev-format message (read it through libudev), not a kernel uevent");
  // Split on NUL; a trailing NUL ends the last field.
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < d.size()) {
    size_t j = d.find('\0', i);
    if (j == std::string_view::npos) j = d.size();
    fields.push_back(d.substr(i, j - i));
    i = j + 1;
  }
  if (fields.empty() || fields[0].empty()) return bad("empty datagram");
  const std::string_view header = fields[0];
  const size_t at = header.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= header.size() || header[at + 1] != '/')
    return bad("header '" + std::string(header.substr(0, 64)) + "' is not ACTION@/DEVPATH");
  UEvent e;
  e.action.assign(header.substr(0, at));
  e.devpath.assign(header.substr(at + 1));
  if (!printable(header)) return bad("header has control characters");
  for (size_t k = 1; k < fields.size(); ++k) {
    std::string_view f = fields[k];
    if (f.empty()) continue;  // consecutive NULs: tolerated, as udevd does
    size_t eq = f.find('=');
    if (eq == std::string_view::npos || eq == 0)
      return bad("field '" + std::string(f.substr(0, 64)) + "' is not KEY=VALUE");
    e.env.insert_or_assign(std::string(f.substr(0, eq)), std::string(f.substr(eq + 1)));
  }
  if (auto it = e.env.find("ACTION"); it != e.env.end() && it->second != e.action)
    return bad("ACTION=" + it->second + " differs from the header's " + e.action);
  if (auto it = e.env.find("DEVPATH"); it != e.env.end() && it->second != e.devpath)
    return bad("DEVPATH=" + it->second + " differs from the header's " + e.devpath);
  if (auto it = e.env.find("SUBSYSTEM"); it != e.env.end()) e.subsystem = it->second;
  if (auto it = e.env.find("DRIVER"); it != e.env.end()) e.driver = it->second;
  if (auto it = e.env.find("SEQNUM"); it != e.env.end()) {
    uint64_t n = 0;
    const std::string& v = it->second;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || p != v.data() + v.size() || v.empty()) return bad("SEQNUM '" + v + "' is not a number");
    e.seqnum = n;
  }
  return e;
}

std::string format_uevent(const UEvent& e) {
  std::string out = e.action + "@" + e.devpath;
  out += '\0';
  auto pair = [&](const std::string& k, const std::string& v) {
    out += k;
    out += '=';
    out += v;
    out += '\0';
  };
  pair("ACTION", e.action);
  pair("DEVPATH", e.devpath);
  if (!e.subsystem.empty()) pair("SUBSYSTEM", e.subsystem);
  if (e.driver && !e.env.count("DRIVER")) pair("DRIVER", *e.driver);
  for (const auto& [k, v] : e.env)
    if (k != "ACTION" && k != "DEVPATH" && k != "SUBSYSTEM" && k != "SEQNUM") pair(k, v);
  if (e.seqnum) pair("SEQNUM", std::to_string(*e.seqnum));
  return out;
}

}  // namespace sriovd::agent
