// The change recipes of PCI functions: bind to a driver, take a function off its driver,
// restore its host driver, reset it, change its SR-IOV VFs. Each recipe is a short sequence of
// sysfs writes; every write is handed over as a Step that carries the writes undoing it.
//
// A recipe does not write by itself: it passes each step to a StepRunner, which takes it (and
// may first journal its undo, as the agent does, so a daemon killed between two steps can undo
// them at start). A runner's error stops the recipe there; the steps taken before it are the
// runner's to undo. Recipes read the tree (the current driver, driver_override) under `root`
// before their first step. KernelSteps is the plain runner: it writes through the Kernel seam
// and keeps the undo of what it took. Recipes are stateless; one runner serves one thread.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/pci_address.h"
#include "base/result.h"
#include "kernel/kernel.h"
#include "pci/sysfs.h"

namespace sriovd::pci {

// One write of `value` to the attribute at `path` (relative to the sysfs root).
struct SysfsWrite {
  std::string path;
  std::string value;
  bool operator==(const SysfsWrite&) const = default;
};

// A step of a recipe: the write it makes and the writes that undo it, in order. The undo
// writes set old values back, so undoing a step that never happened changes nothing.
struct Step {
  SysfsWrite change;
  std::vector<SysfsWrite> undo;
};

// Takes one step (journals it, writes it); an error stops the recipe.
using StepRunner = std::function<Result<void>(const Step&)>;

// Binds `address` to `driver` as libvirt does (virPCIDeviceBindWithDriverOverride):
// driver_override names `driver`, the current driver (if any) lets go, drivers_probe binds it.
// Nothing happens when `driver` has it already. An io error when the driver did not take it
// (the module is not loaded, or it does not handle the device).
Result<void> bind_driver(const SysfsRoot& root, const PciAddress& address, const std::string& driver,
                         const StepRunner& run);

// Takes `address` off its driver (if any) and clears driver_override (if set): no driver at
// all afterwards, and any driver may bind it again.
Result<void> unbind_driver(const SysfsRoot& root, const PciAddress& address, const StepRunner& run);

// Gives `address` back to the host: unbind_driver, then a bind to `host_driver`, or, when it is
// not known, drivers_probe (the kernel picks the driver matching the device).
Result<void> restore_host_driver(const SysfsRoot& root, const PciAddress& address,
                                 const std::optional<std::string>& host_driver, const StepRunner& run);

// A function-level reset through the `reset` attribute: nothing the last user left in the
// device's state survives. No undo (state that is reset stays reset). Returns false, and
// changes nothing, when the function has no `reset` attribute (the kernel found no reset method
// when it created the device). A kernel that answers the write with an error did not reset the
// function, and says so: ENOTTY when no method worked (reset_method emptied, a bus reset with
// other devices on the bus), EINVAL from older kernels for the same; the error is returned.
Result<bool> reset_function(const SysfsRoot& root, const PciAddress& address, const StepRunner& run);

// sriov_numvfs of the PF `pf` from `current` to `wanted`, through 0 when both are non-zero
// (Linux refuses any other change with EBUSY). Nothing when they are equal.
Result<void> change_num_vfs(const PciAddress& pf, uint32_t current, uint32_t wanted, const StepRunner& run);

// sriov_drivers_autoprobe of `pf` from `current` (nullopt: unknown, written anyway) to `wanted`
// (false: new VFs stay without a driver). Nothing when they are equal.
Result<void> change_drivers_autoprobe(const PciAddress& pf, std::optional<bool> current, bool wanted,
                                      const StepRunner& run);

// The driver `address` is bound to now (its `driver` link), nullopt for none.
std::optional<std::string> current_driver(const SysfsRoot& root, const PciAddress& address);
// The device's driver_override, nullopt when unset.
std::optional<std::string> driver_override(const SysfsRoot& root, const PciAddress& address);

// The plain StepRunner: writes each step through `kernel` and remembers its undo; rollback()
// undoes the taken steps, newest first. Not thread-safe.
class KernelSteps {
 public:
  explicit KernelSteps(kernel::Kernel& kernel) : kernel_(kernel) {}
  Result<void> run(const Step& step);
  StepRunner runner() {
    return [this](const Step& s) { return run(s); };
  }
  // Undoes every taken step, newest first; a failing undo write is reported and the rest still
  // run. Returns what failed, as "write 'v' to path: reason".
  std::vector<std::string> rollback();
  const std::vector<Step>& taken() const { return taken_; }

 private:
  kernel::Kernel& kernel_;
  std::vector<Step> taken_;
};

}  // namespace sriovd::pci
