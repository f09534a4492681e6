// sriovd-bench-sim-cycle: the simulated kernel's own share of a vfio-mode lease cycle.
//
// Writes the dual-socket host to a temp dir and makes, CYCLES times, the kernel calls sriovd
// makes for one allocate + release of a ConnectX-6 Dx VF (0000:86:00.2, mlx5_core, netdev
// ens3f0v0) in a vfio pool, straight on a SimKernel: no daemon, no SQLite, no REST.
//   allocate: get_link of the VF's netdev (the interlock), driver_override = vfio-pci, unbind
//             from mlx5_core (its netdev goes), drivers_probe (vfio-pci binds)
//   release:  get_vfs of the PF (the VF's attributes), reset, unbind from vfio-pci,
//             driver_override cleared, bind to mlx5_core (its netdev comes back)
// Nobody listens to the uevents (the daemon's hotplug thread would). Prints one JSON line:
//   {"cycles": N, "cycles_per_s": .., "us_per_cycle": ..}
// The floor under bench/alloc_cycles.sh's vfio figures: those cycles do all of this and more.
// Usage: sriovd-bench-sim-cycle [CYCLES]
#include <chrono>
#include <cstdio>
#include <exception>
#include <string>

#include "sim/sim_kernel.h"
#include "tests/fixtures/profiles.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
using Clock = std::chrono::steady_clock;

namespace {

bool check(const Result<void>& r, const char* what) {
  if (!r) std::fprintf(stderr, "%s: %s\n", what, r.error().message.c_str());
  return r.ok();
}

}  // namespace

int main(int argc, char** argv) try {
  const int cycles = argc > 1 ? std::stoi(argv[1]) : 2000;
  test::TempDir dir("sriovd-bench-sim-cycle");
  auto m = fixtures::build_profile("dual-socket", dir / "sys");
  if (!m) {
    std::fprintf(stderr, "fakehost: %s\n", m.error().message.c_str());
    return 1;
  }
  auto k = kernel::SimKernel::open(dir / "sys");
  if (!k) {
    std::fprintf(stderr, "SimKernel: %s\n", k.error().message.c_str());
    return 1;
  }
  kernel::SimKernel& sim = **k;
  const std::string vf = "0000:86:00.2", dev = "bus/pci/devices/" + vf + "/";
  auto one = [&]() -> bool {
    if (!sim.get_link("ens3f0v0")) return false;
    if (!check(sim.write_attr(dev + "driver_override", "vfio-pci"), "override")) return false;
    if (!check(sim.write_attr("bus/pci/drivers/mlx5_core/unbind", vf), "unbind mlx5_core")) return false;
    if (!check(sim.write_attr("bus/pci/drivers_probe", vf), "drivers_probe")) return false;
    if (!sim.get_vfs("ens3f0")) return false;
    if (!check(sim.write_attr(dev + "reset", "1"), "reset")) return false;
    if (!check(sim.write_attr("bus/pci/drivers/vfio-pci/unbind", vf), "unbind vfio-pci")) return false;
    if (!check(sim.write_attr(dev + "driver_override", "\n"), "override cleared")) return false;
    return check(sim.write_attr("bus/pci/drivers/mlx5_core/bind", vf), "bind mlx5_core");
  };
  for (int i = 0; i < 20; ++i)  // warm-up
    if (!one()) return 1;
  const auto t0 = Clock::now();
  for (int i = 0; i < cycles; ++i)
    if (!one()) return 1;
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("{\"cycles\": %d, \"cycles_per_s\": %.1f, \"us_per_cycle\": %.1f}\n", cycles, cycles / s,
              s * 1e6 / cycles);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "sriovd-bench-sim-cycle: %s\n", e.what());
  return 1;
} catch (...) {
  std::fprintf(stderr, "sriovd-bench-sim-cycle: unknown exception\n");
  return 1;
}
