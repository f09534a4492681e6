#include "pci/decode.h"

#include <charconv>

namespace sriovd::pci {

namespace {

bool is_blank(char c) noexcept { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

std::optional<uint64_t> parse_hex(std::string_view s, uint64_t max) noexcept {
  if (s.empty() || s.size() > 16) return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec != std::errc() || p != s.data() + s.size() || v > max) return std::nullopt;
  return v;
}

std::string_view last_component(std::string_view target) noexcept {
  while (!target.empty() && target.back() == '/') target.remove_suffix(1);
  auto slash = target.rfind('/');
  return slash == std::string_view::npos ? target : target.substr(slash + 1);
}

// The component before the last one ("iommu_groups" in ".../iommu_groups/12").
std::string_view parent_component(std::string_view target) noexcept {
  while (!target.empty() && target.back() == '/') target.remove_suffix(1);
  auto slash = target.rfind('/');
  if (slash == std::string_view::npos) return {};
  return last_component(target.substr(0, slash));
}

}  // namespace

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

// "0x...\n" as the id and class attributes print it: the prefix is required.
std::optional<uint64_t> parse_0x_hex(std::string_view s, uint64_t max) noexcept {
  s = trim(s);
  if (s.size() < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) return std::nullopt;
  return parse_hex(s.substr(2), max);
}

std::optional<uint16_t> parse_hex16(std::string_view s) noexcept {
  auto v = parse_0x_hex(s, 0xffff);
  if (!v) return std::nullopt;
  return static_cast<uint16_t>(*v);
}

std::optional<uint32_t> parse_class(std::string_view s) noexcept {
  auto v = parse_0x_hex(s, 0xffffff);
  if (!v) return std::nullopt;
  return static_cast<uint32_t>(*v);
}

std::optional<uint16_t> parse_bare_hex16(std::string_view s) noexcept {
  s = trim(s);
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2);
  auto v = parse_hex(s, 0xffff);
  if (!v) return std::nullopt;
  return static_cast<uint16_t>(*v);
}

std::optional<int64_t> parse_int(std::string_view s, int64_t min, int64_t max) noexcept {
  s = trim(s);
  if (s.empty()) return std::nullopt;
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
  if (ec != std::errc() || p != s.data() + s.size() || v < min || v > max) return std::nullopt;
  return v;
}

std::optional<bool> parse_bool01(std::string_view s) noexcept {
  s = trim(s);
  if (s == "0") return false;
  if (s == "1") return true;
  return std::nullopt;
}

std::optional<std::string> parse_driver_override(std::string_view s) {
  s = trim(s);
  if (s.empty() || s == "(null)") return std::nullopt;
  return std::string(s);
}

Uevent parse_uevent(std::string_view text) {
  Uevent u;
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    auto eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = line.substr(0, eq);
    std::string_view val = trim(line.substr(eq + 1));
    if (key == "DRIVER") {
      if (!val.empty()) u.driver = std::string(val);
    } else if (key == "PCI_CLASS") {
      if (auto v = parse_hex(val, 0xffffff)) u.pci_class = static_cast<uint32_t>(*v);
    } else if (key == "PCI_ID" || key == "PCI_SUBSYS_ID") {
      auto colon = val.find(':');
      if (colon == std::string_view::npos) continue;
      auto a = parse_hex(val.substr(0, colon), 0xffff);
      auto b = parse_hex(val.substr(colon + 1), 0xffff);
      if (!a || !b) continue;
      if (key == "PCI_ID") {
        u.vendor_id = static_cast<uint16_t>(*a);
        u.device_id = static_cast<uint16_t>(*b);
      } else {
        u.subsystem_vendor_id = static_cast<uint16_t>(*a);
        u.subsystem_device_id = static_cast<uint16_t>(*b);
      }
    } else if (key == "PCI_SLOT_NAME") {
      u.slot = PciAddress::parse(val);
    }
  }
  return u;
}

std::optional<int> iommu_group_from_link(std::string_view target) noexcept {
  if (parent_component(target) != "iommu_groups") return std::nullopt;
  auto v = parse_int(last_component(target), 0, INT32_MAX);
  if (!v) return std::nullopt;
  return static_cast<int>(*v);
}

std::optional<std::string> driver_from_link(std::string_view target) {
  if (parent_component(target) != "drivers") return std::nullopt;
  auto name = last_component(target);
  if (name.empty() || name == "." || name == "..") return std::nullopt;
  return std::string(name);
}

std::optional<PciAddress> address_from_link(std::string_view target) noexcept {
  return PciAddress::parse(last_component(target));
}

std::optional<int> virtfn_index(std::string_view name) noexcept {
  constexpr std::string_view prefix = "virtfn";
  if (name.size() <= prefix.size() || name.substr(0, prefix.size()) != prefix) return std::nullopt;
  auto v = parse_int(name.substr(prefix.size()), 0, 65535);
  // parse_int trims blanks; reject names that had any.
  if (!v || name.find_first_of(" \n\t\r", prefix.size()) != std::string_view::npos) return std::nullopt;
  return static_cast<int>(*v);
}

}  // namespace sriovd::pci
