// sriovd-cli's pool and lease commands: pools, pool (show|create|delete), alloc, leases, lease,
// release, attach, detach.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "cli/common.h"

namespace sriovd::cli {

// Adds the commands to `app`; the one the user picks sets `action`.
void add_pool_commands(CLI::App& app, Globals& g, std::function<int()>& action);

}  // namespace sriovd::cli
