#include "pci/recipes.h"

#include <cerrno>
#include <ranges>

#include "pci/decode.h"
#include "pci/paths.h"

namespace sriovd::pci {

namespace {

// What driver_override is cleared with. An empty write never reaches the kernel's store
// method (sysfs drops zero-length writes), but a lone newline does and clears it.
constexpr const char* kClearOverride = "\n";

SysfsWrite write(std::string path, std::string value) { return {std::move(path), std::move(value)}; }

}  // namespace

std::optional<std::string> current_driver(const SysfsRoot& root, const PciAddress& address) {
  auto r = root.readlink(device_file(address, "driver"));
  if (!r) return std::nullopt;
  return driver_from_link(*r);
}

std::optional<std::string> driver_override(const SysfsRoot& root, const PciAddress& address) {
  auto r = root.read(device_file(address, "driver_override"), 256);
  if (!r) return std::nullopt;
  return parse_driver_override(*r);
}

Result<void> bind_driver(const SysfsRoot& root, const PciAddress& address, const std::string& driver,
                         const StepRunner& run) {
  const std::string bdf = address.to_string();
  const auto cur = current_driver(root, address);
  if (cur == driver) return ok();
  const std::string override_path = device_file(address, "driver_override");
  const std::string old_override = driver_override(root, address).value_or(kClearOverride);
  // driver_override makes `driver` the only one that may bind the device; then the current
  // driver lets go of it and drivers_probe hands it over.
  if (auto r = run({write(override_path, driver), {write(override_path, old_override)}}); !r) return r;
  if (cur) {
    if (auto r = run({write(driver_file(*cur, "unbind"), bdf),
                      {write(override_path, old_override), write(driver_file(*cur, "bind"), bdf)}});
        !r)
      return r;
  }
  if (auto r = run({write(drivers_probe_file(), bdf), {write(driver_file(driver, "unbind"), bdf)}}); !r) return r;
  // drivers_probe succeeds even when no driver took the device: look.
  if (current_driver(root, address) != driver)
    return Error::make(ErrorCode::io, driver + " did not bind " + bdf + ": is the " + driver + " module loaded?");
  return ok();
}

Result<void> unbind_driver(const SysfsRoot& root, const PciAddress& address, const StepRunner& run) {
  const std::string bdf = address.to_string();
  const auto cur = current_driver(root, address);
  const auto override_now = driver_override(root, address);
  const std::string override_path = device_file(address, "driver_override");
  if (cur) {
    Step s{write(driver_file(*cur, "unbind"), bdf), {}};
    if (override_now) s.undo.push_back(write(override_path, *override_now));
    s.undo.push_back(write(driver_file(*cur, "bind"), bdf));
    if (auto r = run(s); !r) return r;
  }
  if (override_now)
    if (auto r = run({write(override_path, kClearOverride), {write(override_path, *override_now)}}); !r) return r;
  return ok();
}

Result<void> restore_host_driver(const SysfsRoot& root, const PciAddress& address,
                                 const std::optional<std::string>& host_driver, const StepRunner& run) {
  if (auto r = unbind_driver(root, address, run); !r) return r;
  const std::string bdf = address.to_string();
  if (host_driver)
    return run({write(driver_file(*host_driver, "bind"), bdf), {write(driver_file(*host_driver, "unbind"), bdf)}});
  // Nothing recorded: the kernel picks the driver that matches the device. There is nothing to
  // undo it to but no driver, and unbinding needs the driver's name, known only afterwards.
  return run({write(drivers_probe_file(), bdf), {}});
}

Result<bool> reset_function(const SysfsRoot& root, const PciAddress& address, const StepRunner& run) {
  const std::string path = device_file(address, "reset");
  // The attribute exists only for functions with a reset method (FLR, PM, bus...).
  if (!root.exists(path)) return false;
  if (auto r = run({write(path, "1"), {}}); !r) {
    // ENOTTY: no method works for this function now; EINVAL: older kernels' answer for the same.
    if (r.error().errnum == ENOTTY || r.error().errnum == EINVAL)
      return std::move(r).error().context("resetting the function: no reset method worked");
    return std::move(r).error().context("resetting the function");
  }
  return true;
}

Result<void> change_num_vfs(const PciAddress& pf, uint32_t current, uint32_t wanted, const StepRunner& run) {
  if (current == wanted) return ok();
  const std::string path = device_file(pf, "sriov_numvfs");
  if (current != 0)
    if (auto r = run({write(path, "0"), {write(path, std::to_string(current))}}); !r) return r;
  if (wanted != 0) return run({write(path, std::to_string(wanted)), {write(path, "0")}});
  return ok();
}

Result<void> change_drivers_autoprobe(const PciAddress& pf, std::optional<bool> current, bool wanted,
                                      const StepRunner& run) {
  if (current == wanted) return ok();
  const std::string path = device_file(pf, "sriov_drivers_autoprobe");
  // Unknown before: undone to the kernel's default, 1.
  const bool was = current.value_or(true);
  return run({write(path, wanted ? "1" : "0"), {write(path, was ? "1" : "0")}});
}

Result<void> KernelSteps::run(const Step& step) {
  if (auto r = kernel_.write_attr(step.change.path, step.change.value); !r) return r;
  taken_.push_back(step);
  return ok();
}

std::vector<std::string> KernelSteps::rollback() {
  std::vector<std::string> failures;
  for (const auto& step : std::views::reverse(taken_))
    for (const auto& u : step.undo)
      if (auto r = kernel_.write_attr(u.path, u.value); !r)
        failures.push_back("write '" + u.value + "' to " + u.path + ": " + r.error().message);
  taken_.clear();
  return failures;
}

}  // namespace sriovd::pci
