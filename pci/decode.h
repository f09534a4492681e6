// Pure decoders for the text the kernel puts in sysfs. No I/O: each takes the bytes of one
// attribute or one link target and returns a value, or nullopt when the text is not what the
// kernel writes (empty, garbage, truncated). They are tested and fuzzed on plain strings.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/pci_address.h"

namespace sriovd::pci {

// Strips one trailing newline and surrounding blanks: sysfs attributes end in "\n".
std::string_view trim(std::string_view s) noexcept;

// "0x8086\n" → 0x8086 (vendor, device, subsystem_*); at most 16 bits.
std::optional<uint16_t> parse_hex16(std::string_view s) noexcept;
// "0x020000\n" → 0x020000 (class); at most 24 bits.
std::optional<uint32_t> parse_class(std::string_view s) noexcept;
// "1889\n" (sriov_vf_device: hex without prefix) → 0x1889.
std::optional<uint16_t> parse_bare_hex16(std::string_view s) noexcept;
// Signed decimal ("-1\n", "63\n"), within [min, max].
std::optional<int64_t> parse_int(std::string_view s, int64_t min, int64_t max) noexcept;
// "0"/"1" (sriov_drivers_autoprobe, carrier).
std::optional<bool> parse_bool01(std::string_view s) noexcept;
// driver_override: "(null)\n" or empty → nullopt, else the driver name.
std::optional<std::string> parse_driver_override(std::string_view s);

// What one read of a PCI device's `uevent` gives. Fields are absent when their line is.
struct Uevent {
  std::optional<std::string> driver;  // DRIVER=ice (only while bound)
  std::optional<uint32_t> pci_class;  // PCI_CLASS=20000 (hex)
  std::optional<uint16_t> vendor_id;  // PCI_ID=8086:1593
  std::optional<uint16_t> device_id;
  std::optional<uint16_t> subsystem_vendor_id;  // PCI_SUBSYS_ID=8086:0002
  std::optional<uint16_t> subsystem_device_id;
  std::optional<PciAddress> slot;  // PCI_SLOT_NAME=0000:17:00.0
};
Uevent parse_uevent(std::string_view text);

// Link targets. Each takes the last path component, checking the component before it where the
// kernel's layout fixes it:
//   iommu_group → "../../../kernel/iommu_groups/12"           → 12
//   driver      → "../../../bus/pci/drivers/ice"               → "ice"
//   physfn, virtfnN, bus/pci/devices/X → ".../0000:17:00.0"    → the address
std::optional<int> iommu_group_from_link(std::string_view target) noexcept;
std::optional<std::string> driver_from_link(std::string_view target);
std::optional<PciAddress> address_from_link(std::string_view target) noexcept;

// "virtfn12" → 12; anything else → nullopt.
std::optional<int> virtfn_index(std::string_view name) noexcept;

}  // namespace sriovd::pci
