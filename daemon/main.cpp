// sriovd: the SR-IOV and PCI passthrough host agent.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "daemon/daemon.h"

int main(int argc, char** argv) try {
  CLI::App app{"sriovd: SR-IOV and PCI passthrough host agent"};
  app.set_version_flag("--version", SRIOVD_VERSION);
  app.require_subcommand(0, 1);

  sriovd::agent::DaemonOptions opt;
  std::string sysfs_root = "/sys";
  bool sysfs_given = false;

  auto add_common = [&](CLI::App* a) {
    a->add_option_function<std::string>(
        "--sysfs-root", [&](const std::string& v) { sysfs_root = v, sysfs_given = true; },
        "sysfs to read and change (a simulated host in tests) [default: /sys]");
    a->add_option("--pci-ids", opt.pci_ids, "pci.ids file for vendor and device names (default: libpci's)");
  };
  // Every daemon flag overrides the configuration file's value; see --config.
  auto add_serve = [&](CLI::App* a) {
    add_common(a);
    a->add_option("--config", opt.config_file,
                  "configuration file (JSON, schemas/config.schema.json) [default: /etc/sriovd/sriovd.json if it "
                  "exists]");
    a->add_option("--listen", opt.listen,
                  "unix:PATH or tcp:HOST:PORT; repeatable (default unix:/run/sriovd/sriovd.sock)");
    a->add_option("--state-dir", opt.state_dir, "where desired state and leases are kept [default: /var/lib/sriovd]");
    a->add_option("--threads,--max-connections", opt.max_connections,
                  "connections served at once per listener, one worker thread each [default: 64]")
        ->check(CLI::Range(1, 1024));
    a->add_option("--log-level", opt.log_level, "trace, debug, info, warning, error or critical [default: info]");
    a->add_option("--token-file", opt.token_file, "bearer tokens, one 'name:token' a line (mode 0600 or 0640)");
    a->add_option("--tls-cert", opt.tls_cert, "PEM certificate for the tcp: listeners");
    a->add_option("--tls-key", opt.tls_key, "PEM private key of --tls-cert");
    a->add_option("--tls-client-ca", opt.tls_client_ca,
                  "PEM CA bundle: TLS clients must present a certificate it signed");
    a->add_flag("--sim", opt.sim, "simulate the kernel on --sysfs-root (a tree from sriovd-fakehost)");
    a->add_option("--libvirt-uri", opt.libvirt_uri,
                  "libvirt to attach leased devices through (connected on first use) [default: qemu:///system]");
    a->add_option("--hotplug", opt.hotplug,
                  "hotplug event source: auto (sim with --sim; udev, else kernel, on /sys), udev, kernel, sim, off")
        ->check(CLI::IsMember({"auto", "udev", "kernel", "sim", "off"}))
        ->capture_default_str();
    a->add_flag("-v,--verbose", opt.verbose, "debug logging (--log-level debug)");
  };

  auto* serve = app.add_subcommand("serve", "run the daemon (the default)");
  add_serve(serve);
  add_serve(&app);
  bool pretty = false;
  auto* inventory = app.add_subcommand("inventory", "print the host's inventory as JSON and exit");
  add_common(inventory);
  inventory->add_flag("--pretty", pretty, "indent the JSON");

  auto* reboot = app.add_subcommand("simulate-reboot", "do to a simulated host what a reboot does, and exit");
  reboot->add_option("--sysfs-root", sysfs_root, "the simulated host")->required();

  auto* hotplug =
      app.add_subcommand("simulate-hotplug", "hot-remove a function of a simulated host, or add it back, and exit");
  std::string hp_action, hp_address;
  hotplug->add_option("ACTION", hp_action, "remove or add")->required()->check(CLI::IsMember({"add", "remove"}));
  hotplug->add_option("ADDRESS", hp_address, "the PCI function, e.g. 0000:17:00.0")->required();
  hotplug->add_option("--sysfs-root", sysfs_root, "the simulated host")->required();

  auto* link = app.add_subcommand("simulate-link",
                                  "pull (down) or plug (up) the cable of a netdev of a simulated host, and exit");
  std::string link_ifname, link_state;
  link->add_option("IFNAME", link_ifname, "the netdev, e.g. ens2f0")->required();
  link->add_option("STATE", link_state, "down (no carrier) or up")->required()->check(CLI::IsMember({"up", "down"}));
  link->add_option("--sysfs-root", sysfs_root, "the simulated host")->required();

  CLI11_PARSE(app, argc, argv);
  if (*link) return sriovd::agent::run_simulate_link(sysfs_root, link_ifname, link_state);
  if (*hotplug) return sriovd::agent::run_simulate_hotplug(sysfs_root, hp_action, hp_address);
  if (*reboot) return sriovd::agent::run_simulate_reboot(sysfs_root);
  if (*inventory) return sriovd::agent::run_inventory(sysfs_root, opt.pci_ids, pretty);
  if (sysfs_given) opt.sysfs_root = sysfs_root;
  return sriovd::agent::run_daemon(opt);
} catch (const std::exception& e) {
  std::fprintf(stderr, "sriovd: %s\n", e.what());
  return 1;
} catch (...) {
  std::fprintf(stderr, "sriovd: unknown exception\n");
  return 1;
}
