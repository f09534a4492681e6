// The short-lived commands of `sriovd`: print the inventory, simulate a reboot. They live apart
// from the daemon so that the `sriovd` front binary that runs them loads none of the daemon's
// libraries (HTTP, TLS, SQLite, systemd): a process start there costs a third of an inventory.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "agent/host_model.h"
#include "daemon/daemon.h"
#include "pci/names.h"
#include "pci/sysfs.h"
#include "rest/encode.h"
#include "sim/sim_kernel.h"

namespace sriovd::agent {

int run_simulate_reboot(const std::string& sysfs_root) {
  auto k = kernel::SimKernel::open(sysfs_root);
  if (!k) {
    std::fprintf(stderr, "sriovd: %s\n", k.error().message.c_str());
    return 1;
  }
  if (auto r = (*k)->simulate_reboot(); !r) {
    std::fprintf(stderr, "sriovd: %s\n", r.error().message.c_str());
    return 1;
  }
  return 0;
}

int run_simulate_hotplug(const std::string& sysfs_root, const std::string& action, const std::string& address) {
  auto a = PciAddress::parse(address);
  if (!a) {
    std::fprintf(stderr, "sriovd: ADDRESS: '%s' is not a PCI address like 0000:17:00.0\n", address.c_str());
    return 2;
  }
  auto k = kernel::SimKernel::open(sysfs_root);
  if (!k) {
    std::fprintf(stderr, "sriovd: %s\n", k.error().message.c_str());
    return 1;
  }
  auto r = action == "add" ? (*k)->hot_add(*a) : (*k)->hot_remove(*a);
  if (!r) {
    std::fprintf(stderr, "sriovd: %s %s: %s\n", action.c_str(), a->to_string().c_str(), r.error().message.c_str());
    return 1;
  }
  return 0;
}

int run_simulate_link(const std::string& sysfs_root, const std::string& ifname, const std::string& state) {
  auto k = kernel::SimKernel::open(sysfs_root);
  if (!k) {
    std::fprintf(stderr, "sriovd: %s\n", k.error().message.c_str());
    return 1;
  }
  if (auto r = (*k)->set_carrier(ifname, state == "up"); !r) {
    std::fprintf(stderr, "sriovd: carrier %s on %s: %s\n", state.c_str(), ifname.c_str(), r.error().message.c_str());
    return 1;
  }
  return 0;
}

int run_inventory(const std::string& sysfs_root, const std::string& pci_ids, bool pretty) {
  auto root = pci::SysfsRoot::open(sysfs_root);
  if (!root) {
    std::fprintf(stderr, "sriovd: %s\n", root.error().message.c_str());
    return 1;
  }
  pci::NameDb names(pci_ids);
  auto snap = build_snapshot(*root, &names, 1);
  if (!snap) {
    std::fprintf(stderr, "sriovd: %s\n", snap.error().message.c_str());
    return 1;
  }
  std::string out = rest::encode_inventory(**snap);
  if (pretty) out = nlohmann::json::parse(out).dump(2);
  out += '\n';
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace sriovd::agent
