// Daemon: the sriovd process — reads its configuration, opens the sysfs root, builds the host
// model, serves the REST API until told to stop. main() only parses flags into DaemonOptions
// and calls run_daemon().
//
// Signals: SIGTERM/SIGINT stop it (no new connections; requests in progress, mutations included,
// finish and are answered; exit 0); SIGHUP reloads the configuration file (see daemon/config.h
// for what a reload changes). Under systemd it reports READY=1 after the first inventory and
// reconcile, and pings the watchdog (WATCHDOG=1) at half of WatchdogSec= while serving.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "daemon/config.h"

namespace sriovd::agent {

// Process exit status for a configuration that cannot be used (EX_CONFIG): the unit does not
// restart on it (RestartPreventExitStatus=78), since a restart would fail the same way.
constexpr int kExitConfig = 78;

// Command-line flags of `sriovd serve`. Each one set overrides the configuration file's value.
struct DaemonOptions {
  std::string config_file;  // empty: Config::kDefaultPath, if it exists
  std::optional<std::string> sysfs_root;
  std::optional<std::string> state_dir;
  std::vector<std::string> listen;  // empty: the file's (default unix:/run/sriovd/sriovd.sock)
  std::optional<int> max_connections;
  std::optional<std::string> log_level;
  std::optional<std::string> token_file;
  std::optional<std::string> tls_cert, tls_key, tls_client_ca;
  std::string pci_ids;  // override pci.ids path
  bool sim = false;     // SimKernel on sysfs_root instead of the real kernel
  // Where hotplug events come from: "auto" (sim with --sim; on /sys udev when udevd runs,
  // else the kernel's uevents; on another root none), "udev", "kernel", "sim" or "off".
  std::string hotplug = "auto";
  // libvirt, for attaching leased devices to domains; connected on first use. Unset: the file's.
  std::optional<std::string> libvirt_uri;
  bool verbose = false;  // same as --log-level debug
};

// The configuration the daemon runs with: the file (or defaults), then the flags on top.
Result<Config> effective_config(const DaemonOptions& options);

// Runs until SIGTERM or SIGINT; returns the process exit status.
int run_daemon(const DaemonOptions& options);

// What a reboot does to a simulated host (VFs gone, boot drivers back, VF attributes cleared).
int run_simulate_reboot(const std::string& sysfs_root);

// Hot-removes ("remove") or hot-adds back ("add") a function of a simulated host, with the
// uevents a running `sriovd --sim` on that tree follows.
int run_simulate_hotplug(const std::string& sysfs_root, const std::string& action, const std::string& address);

// Pulls ("down") or plugs ("up") the cable of a netdev of a simulated host: its carrier, with
// the netlink link notification a running `sriovd --sim` on that tree follows.
int run_simulate_link(const std::string& sysfs_root, const std::string& ifname, const std::string& state);

// Prints the inventory JSON of `sysfs_root` to stdout; returns the exit status.
int run_inventory(const std::string& sysfs_root, const std::string& pci_ids, bool pretty);

}  // namespace sriovd::agent
