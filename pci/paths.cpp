#include "pci/paths.h"

namespace sriovd::pci {

namespace {
constexpr std::string_view kDevices = "bus/pci/devices/";
constexpr std::string_view kDrivers = "bus/pci/drivers/";
}  // namespace

std::string device_dir(const PciAddress& address) {
  std::string out(kDevices);
  out += address.to_string();
  return out;
}

std::string device_file(const PciAddress& address, std::string_view attr) {
  std::string out = device_dir(address);
  out += '/';
  out += attr;
  return out;
}

std::string driver_dir(std::string_view driver) {
  std::string out(kDrivers);
  out += driver;
  return out;
}

std::string driver_file(std::string_view driver, std::string_view file) {
  std::string out = driver_dir(driver);
  out += '/';
  out += file;
  return out;
}

std::string drivers_probe_file() { return "bus/pci/drivers_probe"; }

}  // namespace sriovd::pci
