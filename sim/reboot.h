// A simulated reboot: every PF's VFs removed, every override and autoprobe setting back to its
// default, every boot device back on its boot driver with its boot netdevs, the runtime state
// cleared. A function of one Call, under SimKernel's lock.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/call.h"

namespace sriovd::kernel::sim {

Result<void> reboot(Call& cx);

}  // namespace sriovd::kernel::sim
