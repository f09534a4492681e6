// Daemon: the sriovd process — opens the sysfs root, builds the host model, serves the REST API
// until told to stop. main() only parses flags into DaemonOptions and calls run().
#pragma once

#include <string>
#include <vector>

namespace sriovd::agent {

struct DaemonOptions {
  std::string sysfs_root = "/sys";
  std::string state_dir = "/var/lib/sriovd";
  std::vector<std::string> listen;  // empty: unix:/run/sriovd/sriovd.sock
  int worker_threads = 64;
  std::string pci_ids;              // override pci.ids path
  bool sim = false;                 // SimKernel on sysfs_root instead of the real kernel
  // Where hotplug events come from: "auto" (sim with --sim; on /sys udev when udevd runs,
  // else the kernel's uevents; on another root none), "udev", "kernel", "sim" or "off".
  std::string hotplug = "auto";
  // libvirt, for attaching leased devices to domains; connected on first use.
  std::string libvirt_uri = "qemu:///system";
  bool verbose = false;
};

// Runs until SIGTERM or SIGINT; returns the process exit status.
int run_daemon(const DaemonOptions& options);

// What a reboot does to a simulated host (VFs gone, boot drivers back, VF attributes cleared).
int run_simulate_reboot(const std::string& sysfs_root);

// Hot-removes ("remove") or hot-adds back ("add") a function of a simulated host, with the
// uevents a running `sriovd --sim` on that tree follows.
int run_simulate_hotplug(const std::string& sysfs_root, const std::string& action, const std::string& address);

// Prints the inventory JSON of `sysfs_root` to stdout; returns the exit status.
int run_inventory(const std::string& sysfs_root, const std::string& pci_ids, bool pretty);

}  // namespace sriovd::agent
