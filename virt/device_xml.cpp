#include "virt/device_xml.h"

#include <cstdio>

namespace sriovd::virt {

namespace {

// Characters XML 1.0 cannot carry even escaped: C0 controls other than tab, LF and CR. A kernel
// netdev name may contain them (dev_valid_name only refuses '/', ':' and whitespace).
bool xml_representable(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return false;
  }
  return true;
}

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

// "52:54:00:AB:cd:EF" -> "52:54:00:ab:cd:ef", or nullopt. Multicast (bit 0 of the first octet)
// is refused: the kernel refuses it on a VF and libvirt on an interface.
std::optional<std::string> normalize_mac(std::string_view mac) {
  if (mac.size() != 17) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < 17; ++i) {
    char c = mac[i];
    if (i % 3 == 2) {
      if (c != ':') return std::nullopt;
      out += ':';
    } else {
      if (!is_hex(c)) return std::nullopt;
      out += static_cast<char>(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
    }
  }
  if (hex_value(mac[1]) & 1) return std::nullopt;
  return out;
}

// A netdev name both the kernel and libvirt take. The kernel's dev_valid_name(): 1..15 bytes
// (IFNAMSIZ - 1), not "." or "..", no '/', ':' or whitespace. libvirt's domain schema
// (deviceName in basictypes.rng) allows only [a-zA-Z0-9_.\-\\:/] in <source dev=...>, and
// validating definitions (virsh define --validate) refuse anything else, so the intersection is
// what we write: letters, digits, '_', '.', '-' and '\\'.
std::optional<std::string> netdev_problem(std::string_view name) {
  if (name.empty()) return "is empty";
  if (name.size() > 15) return "is longer than 15 bytes";
  if (name == "." || name == "..") return "is not a device name";
  for (unsigned char c : name) {
    if (c == '/' || c == ':' || c == ' ' || (c >= '\t' && c <= '\r')) {
      return "contains '/', ':' or whitespace, which the kernel refuses";
    }
  }
  for (unsigned char c : name) {
    bool fine = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
                c == '-' || c == '\\';
    if (!fine) return "has characters libvirt does not take in a device name (letters, digits, '_', '.', '-')";
  }
  return std::nullopt;
}

std::string hex(unsigned value, int digits) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%0*x", digits, value);
  return buf;
}

// domain='0x0000' bus='0x17' slot='0x00' function='0x1': the attributes of a PCI <address/>.
std::string address_attributes(const PciAddress& a) {
  return "domain='" + hex(a.domain, 4) + "' bus='" + hex(a.bus, 2) + "' slot='" + hex(a.device, 2) + "' function='" +
         hex(a.function, 1) + "'";
}

}  // namespace

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string device_alias(const PciAddress& a) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "ua-sriovd-%04x-%02x-%02x-%x", a.domain, a.bus, a.device, a.function);
  return buf;
}

Result<std::string> device_xml(const DeviceXmlSpec& spec) {
  using Kind = DeviceXmlSpec::Kind;
  std::optional<std::string> mac;
  if (spec.mac) {
    if (spec.kind == Kind::HostdevPci) {
      return Error::make(ErrorCode::invalid, "a MAC address applies to network interfaces only, not to a PCI hostdev",
                         "mac");
    }
    mac = normalize_mac(*spec.mac);
    if (!mac) {
      return Error::make(ErrorCode::invalid,
                         "MAC address '" + (xml_representable(*spec.mac) ? *spec.mac : std::string("?")) +
                             "' is not six hex octets separated by ':', or is multicast",
                         "mac");
    }
  }
  if (spec.vlan) {
    if (spec.kind == Kind::HostdevPci) {
      return Error::make(ErrorCode::invalid, "a VLAN applies to network interfaces only, not to a PCI hostdev", "vlan");
    }
    if (*spec.vlan > 4095) {
      return Error::make(ErrorCode::invalid, "VLAN " + std::to_string(*spec.vlan) + " is above 4095", "vlan");
    }
  }

  const std::string alias = "  <alias name='" + device_alias(spec.address) + "'/>\n";
  std::string x;
  switch (spec.kind) {
    case Kind::HostdevInterface:
      // libvirt itself programs the MAC and the VLAN into the VF through its PF (rtnetlink) when
      // the interface is attached; sriovd has set the same values on the VF for the lease.
      x += "<interface type='hostdev' managed='no'>\n";
      if (mac) x += "  <mac address='" + xml_escape(*mac) + "'/>\n";
      x += "  <driver name='vfio'/>\n";
      x += "  <source>\n    <address type='pci' " + address_attributes(spec.address) + "/>\n  </source>\n";
      if (spec.vlan) x += "  <vlan>\n    <tag id='" + std::to_string(*spec.vlan) + "'/>\n  </vlan>\n";
      x += alias;
      x += "</interface>\n";
      break;
    case Kind::HostdevPci:
      // In a <hostdev> source libvirt takes the address without type='pci' (and drops it when
      // it formats the definition back).
      x += "<hostdev mode='subsystem' type='pci' managed='no'>\n";
      x += "  <driver name='vfio'/>\n";
      x += "  <source>\n    <address " + address_attributes(spec.address) + "/>\n  </source>\n";
      x += alias;
      x += "</hostdev>\n";
      break;
    case Kind::Direct: {
      if (!spec.netdev) {
        return Error::make(ErrorCode::invalid, "a direct (macvtap) interface needs the VF's host netdev", "netdev");
      }
      if (auto problem = netdev_problem(*spec.netdev)) {
        return Error::make(
            ErrorCode::invalid,
            "netdev name " + (xml_representable(*spec.netdev) ? "'" + *spec.netdev + "' " : std::string()) + *problem,
            "netdev");
      }
      // No <vlan> here: sriovd sets the lease's VLAN on the VF itself (IFLA_VF_VLAN through the
      // PF) before the guest gets it, so the macvtap device on top of the VF needs none; a tag
      // in this XML would only make libvirt program the VF a second time. spec.vlan is
      // therefore ignored for Direct. virtio: without a model libvirt emulates an rtl8139.
      x += "<interface type='direct'>\n";
      if (mac) x += "  <mac address='" + xml_escape(*mac) + "'/>\n";
      x += "  <source dev='" + xml_escape(*spec.netdev) + "' mode='passthrough'/>\n";
      x += "  <model type='virtio'/>\n";
      x += alias;
      x += "</interface>\n";
      break;
    }
  }
  return x;
}

}  // namespace sriovd::virt
