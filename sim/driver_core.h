// The simulated driver core: matching a device to drivers (pci_match_device: driver_override,
// dynamic ids, the static tables), probing and what a probe refuses, bind and unbind with what
// drivers do at probe and remove, and the stores that drive them: bind, unbind, new_id,
// remove_id, drivers_probe, driver_override (drivers/base/bus.c, dd.c, drivers/pci/pci-driver.c,
// Linux 6.1). Functions of one Call, under SimKernel's lock.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/call.h"

namespace sriovd::kernel::sim {

// A probe that the driver (or the PCI core) refuses: the errno bind reports.
struct Refusal {
  int errnum;
  std::string why;
};

// The driver's "id table": what it claimed at boot plus the known VF ids.
bool static_match(Call& cx, const std::string& drv, const Ids& ids);

// drivers/pci/pci.h pci_match_one_id(): `id` (a table entry) against `dev`, 32-bit fields.
bool match_one(const DynId& id, const DynId& dev);

bool dynid_matches(const DynId& id, const Ids& d);

bool dynamic_match(Call& cx, const std::string& drv, const Ids& ids);

// pci_match_device(): driver_override set → only that driver, and it always matches;
// otherwise dynamic ids first, then the static table.
bool matches(Call& cx, const std::string& drv, const Dev& d, const Ids& ids);

// The drivers device_attach() would try, in the order the sim assumes for bus registration:
// the device's boot driver, the known VF driver of its ids, other drivers claiming its ids,
// then drivers with a matching dynamic id. Only loaded drivers.
std::vector<std::string> candidates(Call& cx, const Dev& d, const Ids& ids, bool ignore_override = false);

// drivers/pci/pci-driver.c pci_device_probe() and the probe functions the sim knows.
std::optional<Refusal> probe_refusal(Call& cx, const std::string& drv, const Dev& d, const Ids& ids);

// really_probe() succeeded: links, uevent, enable, and what the driver's probe registers.
Result<void> bind_device(Call& cx, const std::string& drv, const Dev& d, const Ids& ids,
                         std::optional<unsigned> vf_index = std::nullopt);

// device_release_driver(): the driver's remove, then the links. Most PF drivers disable SR-IOV
// in their remove (ice_free_vfs, i40e_free_vfs, igb_disable_sriov, mlx5_sriov_detach,
// vfio_pci_core_unregister_device), so the VFs go first.
Result<void> unbind_device(Call& cx, const Dev& d);

// `drv`: the driver bound now, as the caller read it.
Result<void> unbind_device(Call& cx, const Dev& d, const std::optional<std::string>& drv);

// drivers/base/dd.c __device_attach(): nothing if bound; else each matching driver in turn
// until one probes (probe failures are swallowed). Returns whether the device is bound.
Result<bool> attach(Call& cx, const Dev& d, std::optional<unsigned> vf_index = std::nullopt);

// drivers/pci/pci-sysfs.c driver_override_store() → drivers/base/driver.c
// driver_set_override(): the text up to the first newline; "" (after NULs) or "\n" clears.
// Setting it binds nothing: drivers_probe or bind does.
Result<void> store_driver_override(const Dev& d, std::string_view raw);

// drivers/base/bus.c bind_store(): ENODEV unless the device exists and the driver matches it
// (driver_match_device → pci_match_device); then device_driver_attach(): EBUSY if bound, the
// probe's own errno if it fails.
Result<void> store_bind(Call& cx, const std::string& drv, const std::string& buf);

// drivers/base/bus.c unbind_store(): ENODEV unless the device is bound to this driver.
Result<void> store_unbind(Call& cx, const std::string& drv, const std::string& buf);

// drivers/base/bus.c drivers_probe_store(): ENODEV for an unknown device; a bound device or
// one no driver takes is not an error.
Result<void> store_drivers_probe(Call& cx, const std::string& buf);

// drivers/pci/pci-driver.c new_id_store(): "vendor device [subvendor subdevice class
// class_mask driver_data]" in hex; fewer than 2 fields EINVAL; without all 7, EEXIST if the
// static table already has it or an identical dynamic id exists; then driver_attach() probes
// every unbound device it now matches. driver_data is not checked against the table.
Result<void> store_new_id(Call& cx, const std::string& drv, const std::string& buf);

// drivers/pci/pci-driver.c remove_id_store(): removes the first matching dynamic id; ENODEV
// when there is none. Devices stay bound.
Result<void> store_remove_id(Call& cx, const std::string& drv, const std::string& buf);

}  // namespace sriovd::kernel::sim
