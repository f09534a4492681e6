// sriovd-k8s: the kubelet device-plugin sidecar. Flags, logging and signals; the work is in
// Sidecar.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <sstream>

#include "base/fd.h"
#include "k8s/sidecar.h"

using namespace sriovd;

int main(int argc, char** argv) try {
  CLI::App app{"sriovd-k8s: offers sriovd's pools to kubelet as device-plugin resources"};
  k8s::Config cfg;
  std::string sriovd_socket, pools, log_level = "info";
  double release_interval = 5, release_grace = 30;
  app.add_option("--kubelet-dir", cfg.kubelet_dir, "kubelet's device-plugin directory (kubelet.sock and ours)")
      ->capture_default_str();
  app.add_option("--pod-resources-socket", cfg.pod_resources_socket, "kubelet's PodResources API socket")
      ->capture_default_str();
  app.add_option("--sriovd-socket", sriovd_socket,
                 "sriovd's unix socket (default $SRIOVD_SOCKET or /run/sriovd/sriovd.sock)");
  app.add_option("--resource-prefix", cfg.resource_prefix, "resources are named <prefix>/<pool>")
      ->capture_default_str();
  app.add_option("--pools", pools, "comma-separated pools to offer (default: every pool)");
  app.add_option("--cdi-dir", cfg.cdi_dir, "write CDI specs here and answer with CDI device names");
  app.add_option("--device-info-dir", cfg.device_info_dir,
                 "write the network plumbing WG's device-info files of allocated devices here (\"\": none)")
      ->capture_default_str();
  app.add_option("--release-interval", release_interval, "seconds between PodResources checks")
      ->capture_default_str()
      ->check(CLI::Range(0.05, 3600.0));
  app.add_option("--release-grace", release_grace, "seconds a pod lease must be unheld before it is released")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
  app.add_option("--log-level", log_level, "debug, info, warn or error")
      ->capture_default_str()
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  CLI11_PARSE(app, argc, argv);

  if (!pools.empty()) {
    std::stringstream ss(pools);
    for (std::string p; std::getline(ss, p, ',');) {
      if (p.empty()) {
        std::fprintf(stderr, "sriovd-k8s: --pools: empty pool name in '%s'\n", pools.c_str());
        return 2;
      }
      cfg.pools.push_back(p);
    }
  }
  if (cfg.resource_prefix.empty() || cfg.resource_prefix.find('/') != std::string::npos) {
    std::fprintf(stderr, "sriovd-k8s: --resource-prefix: '%s' must be a non-empty domain without '/'\n",
                 cfg.resource_prefix.c_str());
    return 2;
  }
  if (sriovd_socket.empty())
    if (const char* env = std::getenv("SRIOVD_SOCKET")) sriovd_socket = env;
  if (!sriovd_socket.empty()) cfg.sriovd_socket = sriovd_socket;
  cfg.release_interval = std::chrono::milliseconds(static_cast<long>(release_interval * 1000));
  cfg.release_grace = std::chrono::milliseconds(static_cast<long>(release_grace * 1000));

  auto logger = spdlog::stderr_color_mt("sriovd-k8s");
  logger->set_pattern("%^%l%$ %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(log_level));

  // Signals arrive as a readable fd in the main loop; blocked before any thread starts so every
  // thread inherits the mask.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  sigdelset(&mask, SIGPIPE);
  UniqueFd sfd(::signalfd(-1, &mask, SFD_CLOEXEC));
  if (!sfd) {
    std::perror("sriovd-k8s: signalfd");
    return 1;
  }

  spdlog::info("sriovd-k8s: kubelet dir {}, sriovd at {}, resources {}/{}", cfg.kubelet_dir.string(),
               "unix:" + cfg.sriovd_socket.string(), cfg.resource_prefix, pools.empty() ? "<every pool>" : pools);
  k8s::Sidecar sidecar(cfg);
  auto r = sidecar.run(sfd.get());
  if (!r) {
    std::fprintf(stderr, "sriovd-k8s: %s\n", r.error().message.c_str());
    return 1;
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "sriovd-k8s: %s\n", e.what());
  return 1;
} catch (...) {
  std::fprintf(stderr, "sriovd-k8s: unknown exception\n");
  return 1;
}
