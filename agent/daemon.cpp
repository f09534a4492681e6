#include "agent/daemon.h"

#include <signal.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "agent/events.h"
#include "agent/host_model.h"
#include "agent/lease_virt.h"
#include "agent/hotplug.h"
#include "agent/state_store.h"
#include "kernel/linux_kernel.h"
#include "kernel/sim_kernel.h"
#include "pci/names.h"
#include "pci/sysfs.h"
#include "rest/api.h"
#include "rest/encode.h"
#include "rest/server.h"
#include "schemas/openapi.h"

#ifndef SRIOVD_VERSION
#define SRIOVD_VERSION "0.0.0"
#endif

namespace sriovd::agent {

namespace {

// Blocks the stop signals in every thread (threads inherit the mask), so the main thread can
// wait for them with sigwait and shut down in order.
sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

// Logs go to stderr. Under systemd (JOURNAL_STREAM set) the journal adds time and unit, so
// each line carries only its sd-daemon priority prefix ("<4>" = warning) and the message.
class SdPriority : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    static const char* const prefix[] = {"<7>", "<7>", "<6>", "<4>", "<3>", "<2>", "<6>"};
    const char* p = prefix[static_cast<int>(msg.level)];
    dest.append(p, p + 3);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<SdPriority>(); }
};

void setup_logging(bool verbose) {
  auto logger = spdlog::stderr_logger_mt("sriovd");
  if (std::getenv("JOURNAL_STREAM")) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<SdPriority>('*').set_pattern("%*%v");
    logger->set_formatter(std::move(formatter));
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  }
  spdlog::set_default_logger(logger);
  spdlog::set_level(verbose ? spdlog::level::debug : spdlog::level::info);
}

}  // namespace

int run_daemon(const DaemonOptions& options) {
  auto t0 = std::chrono::steady_clock::now();
  setup_logging(options.verbose);
  sigset_t stop_set = block_stop_signals();

  auto root = pci::SysfsRoot::open(options.sysfs_root);
  if (!root) {
    spdlog::critical("cannot start: {}", root.error().message);
    return 1;
  }

  std::unique_ptr<kernel::Kernel> kern;
  if (options.sim) {
    auto k = kernel::SimKernel::open(options.sysfs_root);
    if (!k) {
      spdlog::critical("cannot start: simulated kernel on {}: {}", options.sysfs_root, k.error().message);
      return 1;
    }
    kern = std::move(*k);
  } else {
    auto k = kernel::LinuxKernel::open(options.sysfs_root);
    if (!k) {
      spdlog::critical("cannot start: {}", k.error().message);
      return 1;
    }
    kern = std::move(*k);
  }
  auto store = StateStore::open(options.state_dir);
  if (!store) {
    spdlog::critical("cannot start: {}", store.error().message);
    return 1;
  }

  pci::NameDb names(options.pci_ids);
  HostModel model;
  // The one record of what happens to the host and its leases: the agent (and the pools and
  // hotplug code through it) publish, GET /v1/events streams it.
  EventLog events;
  Agent agent(*root, *kern, **store, model, &names);
  agent.set_event_log(&events);
  // Hotplug, before reconcile reads the host: nothing that changes from here on is missed.
  std::unique_ptr<HotplugMonitor> hotplug;
  {
    std::optional<HotplugSource> source;
    const std::string& h = options.hotplug;
    if (h == "udev") source = HotplugSource::udev;
    else if (h == "kernel") source = HotplugSource::kernel;
    else if (h == "sim") source = HotplugSource::sim;
    else if (h == "auto" && options.sim) source = HotplugSource::sim;
    // The kernel's events are about /sys: a daemon reading another tree without --sim follows none.
    else if (h == "auto" && std::filesystem::path(options.sysfs_root).lexically_normal() == "/sys")
      source = detect_hotplug_source();
    if (source) {
      auto m = HotplugMonitor::start(agent, *source, options.sysfs_root);
      if (!m) {
        spdlog::critical("cannot start: {}", m.error().message);
        return 1;
      }
      hotplug = std::move(*m);
      spdlog::info("hotplug: following {} events", to_string(*source));
    }
  }

  // Undo what a previous run left half-done, then bring the host to the desired state (after a
  // reboot: recreate VFs, reapply VF attributes and drivers).
  ReconcileReport report = agent.reconcile();
  auto snap = model.current();
  if (!snap) {
    spdlog::critical("cannot start: reading the host failed: {}", report.drift.empty() ? "" : report.drift.front());
    return 1;
  }
  size_t with_warnings = 0;
  for (const auto& d : snap->devices) {
    for (const auto& w : d.device.warnings) spdlog::warn("{}: {}", d.device.address.to_string(), w);
    if (!d.device.warnings.empty()) ++with_warnings;
  }
  for (const auto& w : snap->warnings) spdlog::warn("{}", w);

  rest::ApiOptions api_options;
  api_options.version = SRIOVD_VERSION;
  api_options.openapi_json = std::string(schemas::openapi_json());
  LeaseLibvirt libvirt(options.libvirt_uri);
  api_options.lease_xml = lease_device_xml;
  api_options.attach = [&libvirt](const Lease&, const std::string& xml, const Attachment& at) { return libvirt.attach(xml, at); };
  api_options.detach = [&libvirt](const Lease&, const std::string& xml, const Attachment& at) { return libvirt.detach(xml, at); };
  // Releasing an attached lease detaches it first, with the XML it was attached with.
  agent.set_detacher([&libvirt, &model](const Lease& l) -> Result<void> {
    auto xml = lease_device_xml(l, *model.current());
    if (!xml || !l.attached) return ok();
    return libvirt.detach(*xml, *l.attached);
  });
  agent.set_in_use_check([&libvirt](const PciAddress& a) { return libvirt.check_not_in_use(a); });
  rest::Api api(model, std::move(api_options), &agent);
  api.set_event_log(&events);

  rest::ServerOptions server_options;
  server_options.worker_threads = options.worker_threads;
  rest::HttpServer server(api, server_options);
  std::vector<std::string> listen = options.listen;
  if (listen.empty()) listen.push_back("unix:/run/sriovd/sriovd.sock");
  for (const auto& text : listen) {
    auto addr = rest::ListenAddress::parse(text);
    if (!addr) {
      spdlog::critical("cannot start: {}", addr.error().message);
      return 1;
    }
    if (auto r = server.bind(*addr); !r) {
      spdlog::critical("cannot start: {}", r.error().message);
      return 1;
    }
  }
  server.start();
  api.set_ready(true);
  auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::string where;
  for (const auto& a : server.bound()) where += (where.empty() ? "" : ", ") + a.to_string();
  spdlog::info("ready in {:.1f} ms: {} PCI functions ({} with warnings), {} IOMMU groups, sysfs root {}{}; "
               "reconcile: {} recovered, {} applied, {} drift; listening on {}",
               ms, snap->devices.size(), with_warnings, snap->groups.size(), options.sysfs_root,
               options.sim ? " (simulated kernel)" : "", report.recovered.size(), report.applied.size(),
               report.drift.size(), where);
  sd_notifyf(0, "READY=1\nSTATUS=serving %zu PCI functions on %s", snap->devices.size(), where.c_str());

  for (;;) {
    int sig = 0;
    if (sigwait(&stop_set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      spdlog::info("SIGHUP: configuration reload is not supported yet; ignoring");
      continue;
    }
    spdlog::info("{}: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    break;
  }
  sd_notify(0, "STOPPING=1");
  api.set_ready(false);
  if (hotplug) hotplug->stop();
  // Ends the event streams first: each holds a server worker until its log closes.
  events.close();
  server.stop();
  return 0;
}

}  // namespace sriovd::agent
