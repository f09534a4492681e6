#include "sim/stores.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>

#include "pci/decode.h"
#include "sim/driver_core.h"
#include "sim/drivers.h"
#include "sim/file_io.h"
#include "sim/hotplug.h"
#include "sim/kstrtox.h"
#include "sim/netdevs.h"
#include "sim/reboot.h"
#include "sim/sim_tree.h"
#include "sim/sriov.h"

namespace sriovd::kernel::sim {

using namespace simio;

bool read_only_device_attr(const std::string& name) {
  static const std::set<std::string> ro = {"vendor",
                                           "device",
                                           "subsystem_vendor",
                                           "subsystem_device",
                                           "class",
                                           "revision",
                                           "irq",
                                           "local_cpus",
                                           "local_cpulist",
                                           "modalias",
                                           "resource",
                                           "sriov_totalvfs",
                                           "sriov_offset",
                                           "sriov_stride",
                                           "sriov_vf_device",
                                           "current_link_speed",
                                           "current_link_width",
                                           "max_link_speed",
                                           "max_link_width",
                                           "consistent_dma_mask_bits",
                                           "dma_mask_bits",
                                           "ari_enabled"};
  return ro.count(name) != 0;
}

Result<void> store_reset(Call& cx, const Dev& d, const std::string& buf) {
  unsigned long long v = 0;
  if (kstrtoull(buf.c_str(), 0, &v) < 0 || v != 1)
    return Error::sys(EINVAL, d.name() + ": reset takes 1, not \"" + trim(buf) + "\"");
  // pci_reset_function() → __pci_reset_function_locked(): no method left to try is ENOTTY (the
  // `reset` attribute stays once created, even after reset_method was emptied).
  if (auto m = read_text(d.in("reset_method")); m && trim(*m).empty())
    return Error::sys(ENOTTY, d.name() + ": reset: no reset method (all disabled through reset_method)");
  ++cx.mutable_state().resets[d.name()];
  return ok();
}

Result<void> store_reset_method(const Dev& d, const std::string& file, const std::string& buf) {
  // drivers/pci/pci.c reset_method_store(): "" disables every method, "default" brings back
  // what the device supports; a list of names is kept as given (the sim does not probe them).
  if (trim(buf).empty()) return write_text(file, "\n");
  if (trim(buf) == "default")
    return write_text(file, lexists(d.in("physfn")) ? std::string("flr\n") : std::string("flr bus\n"));
  return write_text(file, trim(buf) + "\n");
}

Result<void> write_attr(Call& cx, const std::string& relpath, std::string_view value) {
  const fs::path rel(relpath);
  if (relpath.empty() || rel.is_absolute())
    return Error::sys(EINVAL, "\"" + relpath + "\" is not a path relative to the sysfs root");
  for (const auto& c : rel)
    if (c == "..") return Error::sys(EINVAL, "\"" + relpath + "\" leaves the sysfs root");
  // The paths sriovd itself writes, bus/pci/devices/<BDF>/<attr>, bus/pci/drivers/<drv>/<attr>
  // and bus/pci/<attr>, pass at most the device's bus link on their way: they are classified
  // from their components and one lstat that the attribute is a regular file. Any other path
  // (through driver/, or a tree whose bus/ is not laid out as the kernel's) is resolved whole.
  if (cx.boot().plain_bus) {
    std::vector<std::string> c;
    for (const auto& part : rel) c.push_back(part.string());
    auto regular = [](const std::string& p) {
      struct stat st;
      return ::lstat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
    };
    if (c.size() == 5 && c[0] == "bus" && c[1] == "pci" && c[2] == "devices") {
      if (auto d = cx.find_dev(c[3]); d && c[4] != ".")
        if (const std::string file = d->in(c[4]); regular(file))
          return value.empty() ? ok() : store_device_attr(cx, *d, c[4], file, value);
    } else if (const std::string file = cx.at(relpath);
               c.size() == 5 && c[0] == "bus" && c[1] == "pci" && c[2] == "drivers" && c[3] != "." && regular(file)) {
      return value.empty() ? ok() : store_driver_attr(cx, c[3], c[4], file, value);
    } else if (c.size() == 3 && c[0] == "bus" && c[1] == "pci" && regular(file)) {
      return value.empty() ? ok() : store_bus_attr(cx, c[2], file, value);
    }
  }
  // open(O_WRONLY) resolves every link on the way, so classify by where the path really leads:
  // bus/pci/devices/X/driver/unbind is bus/pci/drivers/<drv>/unbind.
  auto real = real_path(cx.abs(rel));
  if (!real) return Error::sys(errno == ENOTDIR ? ENOTDIR : ENOENT, relpath);
  if (is_dir(*real)) return Error::sys(EISDIR, relpath);
  const std::string rs = real->string(), rr = cx.real_root().string();
  if (rs.size() <= rr.size() || rs.compare(0, rr.size(), rr) != 0 || rs[rr.size()] != '/')
    return Error::sys(EINVAL, relpath + " resolves outside the sysfs root");
  // fs/sysfs/file.c sysfs_kf_write(): a zero-length write never reaches the store.
  if (value.empty()) return ok();

  const fs::path parent = real->parent_path();
  const std::string name = real->filename().string();
  if (parent == cx.real_root() / "bus/pci") return store_bus_attr(cx, name, real->native(), value);
  if (parent.parent_path() == cx.real_root() / "bus/pci/drivers")
    return store_driver_attr(cx, parent.filename().string(), name, real->native(), value);
  if (auto d = cx.dev_at(parent)) return store_device_attr(cx, *d, name, real->native(), value);
  return write_text(*real, value);
}

Result<void> store_bus_attr(Call& cx, const std::string& name, const std::string& file, std::string_view value) {
  const std::string buf = c_str_of(value);
  if (name == "drivers_probe") return store_drivers_probe(cx, buf);
  if (name == "drivers_autoprobe")  // drivers/base/bus.c drivers_autoprobe_store()
    return write_text(file, buf.empty() || buf[0] != '0' ? "1\n" : "0\n");
  if (name == "rescan") return Error::sys(EOPNOTSUPP, "bus/pci/rescan is not modelled by SimKernel");
  return write_text(file, value);
}

Result<void> store_driver_attr(Call& cx, const std::string& drv, const std::string& name, const std::string& file,
                               std::string_view value) {
  const std::string buf = c_str_of(value);
  if (name == "bind") return store_bind(cx, drv, buf);
  if (name == "unbind") return store_unbind(cx, drv, buf);
  if (name == "new_id") return store_new_id(cx, drv, buf);
  if (name == "remove_id") return store_remove_id(cx, drv, buf);
  if (name == "uevent") return ok();  // synthesises an event; the file does not change
  return write_text(file, value);
}

Result<void> store_device_attr(Call& cx, const Dev& d, const std::string& name, const std::string& file,
                               std::string_view value) {
  const std::string buf = c_str_of(value);
  if (name == "sriov_numvfs") return store_sriov_numvfs(cx, d, buf);
  if (name == "sriov_drivers_autoprobe") return store_sriov_drivers_autoprobe(d, buf);
  if (name == "driver_override") return store_driver_override(d, value);
  if (name == "reset") return store_reset(cx, d, buf);
  if (name == "reset_method") return store_reset_method(d, file, buf);
  if (name == "uevent") return ok();
  if (name == "remove" || name == "rescan")
    return Error::sys(EOPNOTSUPP, d.name() + ": " + name + " is not modelled by SimKernel");
  if (read_only_device_attr(name)) return Error::sys(EACCES, d.name() + ": " + name + " is read-only");
  return write_text(file, value);
}

}  // namespace sriovd::kernel::sim
