// Where a write to sysfs lands: the path classified the way open(2) resolves it (bus/pci/<attr>,
// bus/pci/drivers/<drv>/<attr>, a function's attribute, any other file), and the store of each
// attribute dispatched to its piece (driver core, SR-IOV), read-only attributes refused and
// plain files replaced; plus the function's reset. Functions of one Call, under SimKernel's lock.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/call.h"

namespace sriovd::kernel::sim {

// Device attributes a write cannot change: kernfs_fop_open() refuses to open a file without a
// write permission or a ->store for writing (EACCES), even for root.
bool read_only_device_attr(const std::string& name);

// drivers/pci/pci-sysfs.c reset_store(): kstrtoul base 0, only 1; pci_reset_function(), which
// is ENOTTY when reset_method was emptied.
Result<void> store_reset(Call& cx, const Dev& d, const std::string& buf);
// drivers/pci/pci.c reset_method_store(): "" disables every method, "default" restores them.
Result<void> store_reset_method(const Dev& d, const std::string& file, const std::string& buf);

Result<void> write_attr(Call& cx, const std::string& relpath, std::string_view value);

// bus/pci/<name>: drivers_probe, drivers_autoprobe, rescan; other files are plain files.
Result<void> store_bus_attr(Call& cx, const std::string& name, const std::string& file, std::string_view value);

// bus/pci/drivers/<drv>/<name>.
Result<void> store_driver_attr(Call& cx, const std::string& drv, const std::string& name, const std::string& file,
                               std::string_view value);

// An attribute `name` of the PCI function `d`.
Result<void> store_device_attr(Call& cx, const Dev& d, const std::string& name, const std::string& file,
                               std::string_view value);

}  // namespace sriovd::kernel::sim
