// Sysfs paths of PCI devices and drivers, relative to the sysfs root: the one place they are
// spelled (as libvirt's virPCIFile/virPCIDriverDir are), so a recipe, a reader and a journalled
// undo name the same file the same way. Pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "base/pci_address.h"

namespace sriovd::pci {

// "bus/pci/devices/<address>"
std::string device_dir(const PciAddress& address);
// "bus/pci/devices/<address>/<attr>", e.g. driver_override, sriov_numvfs, reset.
std::string device_file(const PciAddress& address, std::string_view attr);
// "bus/pci/drivers/<driver>"
std::string driver_dir(std::string_view driver);
// "bus/pci/drivers/<driver>/<file>": bind, unbind, new_id...
std::string driver_file(std::string_view driver, std::string_view file);
// "bus/pci/drivers_probe": writing an address there asks the kernel to find it a driver.
std::string drivers_probe_file();

}  // namespace sriovd::pci
