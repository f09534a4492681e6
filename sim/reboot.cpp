#include "sim/reboot.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>

#include "pci/decode.h"
#include "sim/driver_core.h"
#include "sim/drivers.h"
#include "sim/eswitch.h"
#include "sim/file_io.h"
#include "sim/hotplug.h"
#include "sim/kstrtox.h"
#include "sim/netdevs.h"
#include "sim/sim_tree.h"
#include "sim/sriov.h"
#include "sim/stores.h"

namespace sriovd::kernel::sim {

using namespace simio;

Result<void> reboot(Call& cx) {
  auto names = list_names(cx.abs("bus/pci/devices"));
  // 1. VFs go: nothing recreates them at boot.
  for (const auto& name : names) {
    auto d = cx.find_dev(name);
    if (!d || !cx.is_pf(*d)) continue;
    if (cx.num_vfs(*d) > 0 || !cx.virtfns(*d).empty())
      if (auto r = disable_sriov(cx, *d); !r) return r;
    if (auto r = cx.clear_vfs_attrs(*d); !r) return r;
    // The driver probes anew: its eswitch starts in legacy mode.
    if (::unlink(d->in(kEswitchFile).c_str()) != 0 && errno != ENOENT)
      return Error::sys(errno, "removing " + d->in(kEswitchFile));
  }
  // 2. Every function back to what the boot record says: driver, netdevs, no override.
  names = list_names(cx.abs("bus/pci/devices"));
  for (const auto& name : names) {
    auto d = cx.find_dev(name);
    if (!d) continue;
    if (auto r = remove_netdevs(cx, *d); !r) return r;
    if (auto r = simtree::unbind_driver(cx.root(), d->addr); !r) return r;
    if (auto r = write_text(d->in("driver_override"), "(null)\n"); !r) return r;
    if (cx.is_pf(*d))
      if (auto r = write_text(d->in("sriov_drivers_autoprobe"), "1\n"); !r) return r;
  }
  for (const auto& name : names) {
    auto d = cx.find_dev(name);
    if (!d) continue;
    const BootDevice* b = cx.boot().find(d->addr);
    if (!b || b->driver.empty()) continue;
    if (auto r = simtree::bind_driver(cx.root(), d->addr, b->driver); !r) return r;
    for (const auto& n : b->netdevs)
      if (auto r = add_netdev(cx, *d, n, true); !r) return r;
  }
  if (lexists(cx.abs("bus/pci/drivers_autoprobe")))
    if (auto r = write_text(cx.abs("bus/pci/drivers_autoprobe"), "1\n"); !r) return r;
  SimState& s = cx.mutable_state();
  s = SimState{};
  s.last_ifindex = cx.boot().max_ifindex;
  return ok();
}

}  // namespace sriovd::kernel::sim
