// devlink's eswitch mode on the simulated kernel (DEVLINK_CMD_ESWITCH_GET/SET), with the
// representor netdevs switchdev mode brings. Functions of one Call, under SimKernel's lock.
//
// Devlink instances: a PCI function bound to ice or mlx5_core (eswitch ops: legacy and
// switchdev) or i40e (devlink without eswitch ops: EOPNOTSUPP). Any other function, or another
// bus, has none: ENODEV, as devlink answers for a handle it does not know. The mode is kept in
// the PF's directory (kEswitchFile; absent: legacy), so another SimKernel on the tree sees it;
// a reboot (the driver probing anew) brings back legacy.
//
// In switchdev mode each VF has a representor: a netdev of the PF (its device link is the PF's)
// named <PF netdev>_<vf index> (eth<N> when that is over 15 bytes or taken), registered down,
// with phys_port_name "pf0vf<index>" and the PF's phys_switch_id, which the PF netdev then shows
// too. VFs enabled in switchdev mode get theirs; VFs disabled take theirs along; legacy removes
// them all.
#pragma once

#include <string>

#include "base/vf.h"
#include "sim/call.h"

namespace sriovd::kernel::sim {

constexpr const char* kEswitchFile = ".sriovd-sim-eswitch";

Result<EswitchMode> get_eswitch(Call& cx, const std::string& bus, const std::string& dev);
Result<void> set_eswitch(Call& cx, const std::string& bus, const std::string& dev, EswitchMode mode);

// The PF's eswitch mode as the tree keeps it (legacy when none is kept).
EswitchMode eswitch_of(const Dev& pf);
// Representors for the VFs that have none (switchdev mode only), and for none of the VFs that
// are gone.
Result<void> sync_representors(Call& cx, const Dev& pf);

}  // namespace sriovd::kernel::sim
