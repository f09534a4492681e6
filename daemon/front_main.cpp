// sriovd: the command operators type. `sriovd inventory` and `sriovd simulate-reboot` run here;
// everything else (`sriovd`, `sriovd serve ...`, `--help`) is the daemon, which this program
// becomes with execv: same process, same PID for systemd, same arguments. Keeping the daemon's
// libraries out of this binary makes `sriovd inventory` start like a small tool.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "daemon/daemon.h"

namespace {

// The daemon binary: $SRIOVD_DAEMON, else sriovd-daemon next to this executable.
std::string daemon_path() {
  if (const char* env = std::getenv("SRIOVD_DAEMON"); env && *env) return env;
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return "sriovd-daemon";
  std::string dir(self, static_cast<size_t>(n));
  return dir.substr(0, dir.rfind('/') + 1) + "sriovd-daemon";
}

}  // namespace

int main(int argc, char** argv) try {
  std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "inventory" || cmd == "simulate-reboot") {
    CLI::App app{"sriovd: SR-IOV and PCI passthrough host agent"};
    app.require_subcommand(1);
    std::string sysfs_root = "/sys", pci_ids;
    bool pretty = false;
    auto* inventory = app.add_subcommand("inventory", "print the host's inventory as JSON and exit");
    inventory->add_option("--sysfs-root", sysfs_root, "sysfs to read (a simulated host in tests)")
        ->capture_default_str();
    inventory->add_option("--pci-ids", pci_ids, "pci.ids file for vendor and device names (default: libpci's)");
    inventory->add_flag("--pretty", pretty, "indent the JSON");
    auto* reboot = app.add_subcommand("simulate-reboot", "do to a simulated host what a reboot does, and exit");
    reboot->add_option("--sysfs-root", sysfs_root, "the simulated host")->required();
    CLI11_PARSE(app, argc, argv);
    if (*inventory) return sriovd::agent::run_inventory(sysfs_root, pci_ids, pretty);
    return sriovd::agent::run_simulate_reboot(sysfs_root);
  }
  std::string daemon = daemon_path();
  std::vector<char*> args(argv, argv + argc);
  args.push_back(nullptr);
  ::execv(daemon.c_str(), args.data());
  std::fprintf(stderr, "sriovd: cannot run the daemon %s: %s\n", daemon.c_str(), std::strerror(errno));
  return 127;
} catch (const std::exception& e) {
  std::fprintf(stderr, "sriovd: %s\n", e.what());
  return 1;
} catch (...) {
  std::fprintf(stderr, "sriovd: unknown exception\n");
  return 1;
}
