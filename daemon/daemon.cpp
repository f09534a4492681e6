#include "daemon/daemon.h"

#include <malloc.h>
#include <poll.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "agent/agent.h"
#include "agent/events.h"
#include "agent/host_model.h"
#include "agent/hotplug.h"
#include "agent/state_store.h"
#include "base/fd.h"
#include "daemon/config.h"
#include "daemon/lease_virt.h"
#include "kernel/linux_kernel.h"
#include "pci/names.h"
#include "pci/sysfs.h"
#include "rest/api.h"
#include "rest/auth.h"
#include "rest/encode.h"
#include "rest/server.h"
#include "schemas/openapi.h"
#include "sim/sim_kernel.h"

#ifndef SRIOVD_VERSION
#define SRIOVD_VERSION "0.0.0"
#endif

namespace sriovd::agent {

namespace {

// Blocks the stop and reload signals in every thread (threads inherit the mask), so the main
// thread alone receives them, through a signalfd, and shuts down or reloads in order.
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

std::optional<spdlog::level::level_enum> parse_level(const std::string& name) {
  static const std::pair<const char*, spdlog::level::level_enum> levels[] = {
      {"trace", spdlog::level::trace},  {"debug", spdlog::level::debug}, {"info", spdlog::level::info},
      {"warning", spdlog::level::warn}, {"error", spdlog::level::err},   {"critical", spdlog::level::critical}};
  for (const auto& [n, l] : levels)
    if (name == n) return l;
  return std::nullopt;
}

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

// The path the configuration comes from, and whether its absence is fine (the default path).
std::pair<std::string, bool> config_path(const DaemonOptions& o) {
  if (!o.config_file.empty()) return {o.config_file, false};
  return {Config::kDefaultPath, true};
}

// Tells what changed between two configurations that a reload cannot apply.
std::vector<std::string> needs_restart(const Config& running, const Config& fresh) {
  std::vector<std::string> out;
  if (running.listen != fresh.listen) out.emplace_back("listen");
  if (running.tls != fresh.tls) out.emplace_back("tls");
  if (running.state_dir != fresh.state_dir) out.emplace_back("state_dir");
  if (running.sysfs_root != fresh.sysfs_root) out.emplace_back("sysfs_root");
  if (running.limits != fresh.limits) out.emplace_back("limits");
  if (running.libvirt_uri != fresh.libvirt_uri) out.emplace_back("libvirt_uri");
  if (running.auth.reads_open != fresh.auth.reads_open) out.emplace_back("auth.reads");
  return out;
}

// The watchdog interval systemd asked for (WATCHDOG_USEC, for this PID), or 0.
uint64_t watchdog_usec() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0) return usec;
  return 0;
}

}  // namespace

Result<Config> effective_config(const DaemonOptions& o) {
  auto [path, optional] = config_path(o);
  auto c = load_config(path, optional);
  if (!c) return c;
  if (o.sysfs_root) c->sysfs_root = *o.sysfs_root;
  if (o.state_dir) c->state_dir = *o.state_dir;
  if (!o.listen.empty()) c->listen = o.listen;
  if (o.max_connections) c->limits.max_connections = *o.max_connections;
  if (o.log_level) c->log_level = *o.log_level;
  if (o.verbose) c->log_level = "debug";
  if (o.token_file) c->auth.token_file = *o.token_file;
  if (o.libvirt_uri) c->libvirt_uri = *o.libvirt_uri;
  if (o.tls_cert) c->tls.cert = *o.tls_cert;
  if (o.tls_key) c->tls.key = *o.tls_key;
  if (o.tls_client_ca) c->tls.client_ca = *o.tls_client_ca;
  if (!parse_level(c->log_level))
    return Error::make(ErrorCode::invalid,
                       "--log-level: '" + c->log_level +
                           "' is not one of trace, debug, info, "
                           "warning, error, critical",
                       "log_level");
  if (c->tls.cert.empty() != c->tls.key.empty())
    return Error::make(ErrorCode::invalid, "tls: a certificate needs its key and a key its certificate", "tls");
  if (!c->tls.client_ca.empty() && c->tls.cert.empty())
    return Error::make(ErrorCode::invalid, "tls.client_ca: client certificates need TLS (tls.cert, tls.key)",
                       "tls.client_ca");
  return c;
}

// Pools declared in the configuration: each is created, or replaced when one of that name
// exists (through the same checks as POST/PUT /v1/pools: a pool overlapping another, or one that
// would drop a leased device, is refused and logged). A pool dropped from the file stays until
// it is deleted through the API: the daemon cannot tell it from a pool created there.
static void apply_declared_pools(Agent& agent, const HostModel& model, const nlohmann::json& pools, const char* when) {
  for (const auto& j : pools) {
    auto spec = pool_from_json(j);
    if (!spec) {
      spdlog::error("{}: pool {}: {}", when, j.value("name", "?"), spec.error().message);
      continue;
    }
    auto snap = model.current();
    const PoolSpec* now = snap && snap->book ? snap->book->pool(spec->name) : nullptr;
    if (now && pool_to_json(*now) == pool_to_json(*spec)) continue;
    if (auto r = agent.create_pool(*spec, now != nullptr); !r)
      spdlog::error("{}: pool {} from the configuration refused: {}", when, spec->name, r.error().message);
    else spdlog::info("{}: pool {} {} from the configuration", when, spec->name, now ? "replaced" : "created");
  }
}

namespace {

// Reads the configuration (the file, then the flags) and sets the log level it asks for.
Result<Config> load_startup_config(const DaemonOptions& options) {
  auto loaded = effective_config(options);
  if (!loaded) return loaded;
  spdlog::set_level(*parse_level(loaded->log_level));
  if (!loaded->source.empty()) spdlog::info("configuration from {}", loaded->source);
  return loaded;
}

// Security first, before anything on the host is touched: refuses an insecure combination of
// listeners, TLS and tokens, and gives `authorizer` the token file's tokens.
Result<void> set_up_auth(const Config& config, rest::Authorizer& authorizer) {
  std::vector<rest::ListenerSpec> specs;
  for (const auto& text : config.listen) {
    auto addr = rest::ListenAddress::parse(text);
    if (!addr) return std::move(addr).error();
    specs.push_back({addr->kind == rest::ListenAddress::Kind::tcp, addr->host, text});
  }
  if (auto sec = rest::check_deployment(specs, config.tls.enabled(), !config.auth.token_file.empty(), config.tls.key);
      !sec)
    return sec;
  if (config.auth.token_file.empty()) return ok();
  auto tokens = rest::TokenSet::load(config.auth.token_file);
  if (!tokens) return std::move(tokens).error();
  spdlog::info("auth: {} bearer tokens from {}; reads {}", tokens->size(), config.auth.token_file,
               config.auth.reads_open ? "open" : "need a token");
  authorizer.set_tokens(std::make_shared<const rest::TokenSet>(std::move(*tokens)));
  return ok();
}

// The kernel seam the agent changes the host through: simulated on the tree with --sim.
Result<std::unique_ptr<kernel::Kernel>> build_kernel(const DaemonOptions& options, const std::string& sysfs_root) {
  if (options.sim) {
    auto k = kernel::SimKernel::open(sysfs_root);
    if (!k) return std::move(k).error().context("simulated kernel on " + sysfs_root);
    return std::unique_ptr<kernel::Kernel>(std::move(*k));
  }
  auto k = kernel::LinuxKernel::open(sysfs_root);
  if (!k) return std::move(k).error();
  return std::unique_ptr<kernel::Kernel>(std::move(*k));
}

// Starts following hotplug events from the source --hotplug names; null when none is followed.
Result<std::unique_ptr<HotplugMonitor>> start_hotplug(const DaemonOptions& options, Agent& agent,
                                                      const std::string& sysfs_root) {
  std::optional<HotplugSource> source;
  const std::string& h = options.hotplug;
  if (h == "udev") source = HotplugSource::udev;
  else if (h == "kernel") source = HotplugSource::kernel;
  else if (h == "sim" || (h == "auto" && options.sim)) source = HotplugSource::sim;
  // The kernel's events are about /sys: a daemon reading another tree without --sim follows none.
  else if (h == "auto" && std::filesystem::path(sysfs_root).lexically_normal() == "/sys")
    source = detect_hotplug_source();
  if (!source) return std::unique_ptr<HotplugMonitor>();
  auto m = HotplugMonitor::start(agent, *source, sysfs_root);
  if (!m) return m;
  spdlog::info("hotplug: following {} events", to_string(*source));
  return m;
}

// Logs the warnings of the first snapshot; returns how many functions have some.
size_t log_start_warnings(const Snapshot& snap) {
  size_t with_warnings = 0;
  for (const auto& d : snap.devices) {
    for (const auto& w : d.device.warnings) spdlog::warn("{}: {}", d.device.address.to_string(), w);
    if (!d.device.warnings.empty()) ++with_warnings;
  }
  for (const auto& w : snap.warnings) spdlog::warn("{}", w);
  return with_warnings;
}

// Wires leases to libvirt: the API's attach and detach, the detach before a release, and the
// in-use check before a device is unbound. `libvirt` and `model` outlive the agent and the API.
rest::ApiOptions wire_libvirt(Agent& agent, LeaseLibvirt& libvirt, const HostModel& model) {
  rest::ApiOptions api_options;
  api_options.version = SRIOVD_VERSION;
  api_options.openapi_json = std::string(schemas::openapi_json());
  api_options.lease_xml = lease_device_xml;
  api_options.attach = [&libvirt](const Lease&, const std::string& xml, const Attachment& at) {
    return libvirt.attach(xml, at);
  };
  api_options.detach = [&libvirt](const Lease&, const std::string& xml, const Attachment& at) {
    return libvirt.detach(xml, at);
  };
  // Releasing an attached lease detaches it first, with the XML it was attached with.
  agent.set_detacher([&libvirt, &model](const Lease& l) -> Result<void> {
    auto xml = lease_device_xml(l, *model.current());
    if (!xml || !l.attached) return ok();
    return libvirt.detach(*xml, *l.attached);
  });
  agent.set_in_use_check([&libvirt](const PciAddress& a) { return libvirt.check_not_in_use(a); });
  return api_options;
}

// The HTTP server's options from the configuration's limits and TLS files.
rest::ServerOptions server_options_for(const Config& config, const rest::Authorizer& authorizer) {
  rest::ServerOptions server_options;
  server_options.worker_threads = config.limits.max_connections;
  server_options.max_body_bytes = config.limits.max_body_bytes;
  server_options.read_timeout_s = config.limits.read_timeout_s;
  server_options.keep_alive_timeout_s = config.limits.keep_alive_timeout_s;
  server_options.request_timeout_s = config.limits.request_timeout_s;
  server_options.auth = &authorizer;
  server_options.tls_cert = config.tls.cert;
  server_options.tls_key = config.tls.key;
  server_options.tls_client_ca = config.tls.client_ca;
  return server_options;
}

// Binds every configured listen address: a bad address or a socket in use fails the start.
Result<void> bind_listeners(rest::HttpServer& server, const Config& config) {
  for (const auto& text : config.listen) {
    auto addr = rest::ListenAddress::parse(text);
    if (!addr) return std::move(addr).error();
    if (auto r = server.bind(*addr); !r) return r;
  }
  return ok();
}

// SIGHUP: reads the file again and applies what can change while serving (log level, tokens,
// declared pools); a file that does not load leaves everything as it was. Flags given at start
// still override the file.
void reload_config(const DaemonOptions& options, Config& running, rest::Authorizer& authorizer, Agent& agent,
                   const HostModel& model) {
  sd_notify(0, "RELOADING=1");
  auto fresh = effective_config(options);
  if (!fresh) {
    spdlog::error("SIGHUP: configuration not reloaded, the previous one stays: {}", fresh.error().message);
    sd_notify(0, "READY=1");
    return;
  }
  if (fresh->log_level != running.log_level) {
    spdlog::set_level(*parse_level(fresh->log_level));
    spdlog::info("SIGHUP: log level {} -> {}", running.log_level, fresh->log_level);
    running.log_level = fresh->log_level;
  }
  // Tokens: the file is read again even when its name did not change (rotated tokens). A file
  // that does not load keeps the tokens in force; dropping the file altogether while tokens are
  // in force is refused (it would open the API).
  if (!fresh->auth.token_file.empty()) {
    auto tokens = rest::TokenSet::load(fresh->auth.token_file);
    if (!tokens) {
      spdlog::error("SIGHUP: tokens not reloaded, the previous ones stay: {}", tokens.error().message);
    } else {
      spdlog::info("SIGHUP: {} bearer tokens from {}", tokens->size(), fresh->auth.token_file);
      authorizer.set_tokens(std::make_shared<const rest::TokenSet>(std::move(*tokens)));
      running.auth.token_file = fresh->auth.token_file;
    }
  } else if (authorizer.has_tokens()) {
    spdlog::error(
        "SIGHUP: the configuration no longer names a token file; the tokens in force stay until a "
        "restart (which checks that the result is safe)");
  }
  if (fresh->pools != running.pools) {
    running.pools = fresh->pools;
    spdlog::info("SIGHUP: {} pools declared in the configuration", running.pools.size());
    apply_declared_pools(agent, model, running.pools, "SIGHUP");
  }
  for (const auto& f : needs_restart(running, *fresh))
    spdlog::warn("SIGHUP: {} changed in {}; it takes effect at the next restart", f,
                 fresh->source.empty() ? "the flags" : fresh->source);
  spdlog::info("SIGHUP: configuration reloaded{}", fresh->source.empty() ? "" : " from " + fresh->source);
  sd_notify(0, "READY=1");
}

// The main loop: waits for the stop and reload signals on a signalfd, calling `on_reload` for
// each SIGHUP, and pings the watchdog at half its interval (systemd's advice) as long as every
// listener still accepts. Returns on SIGTERM or SIGINT (0), or when it cannot wait (1).
int serve_until_stopped(const sigset_t& stop_set, const rest::HttpServer& server,
                        const std::function<void()>& on_reload) {
  UniqueFd sigfd(::signalfd(-1, &stop_set, SFD_CLOEXEC));
  if (!sigfd) {
    spdlog::critical("signalfd: {}", std::strerror(errno));
    return 1;
  }
  const uint64_t wd_usec = watchdog_usec();
  const int wd_ms = wd_usec ? static_cast<int>(std::max<uint64_t>(wd_usec / 2000, 1)) : -1;
  if (wd_usec) {
    spdlog::info("watchdog: every {} ms", wd_ms);
    if (server.running()) sd_notify(0, "WATCHDOG=1");
  }
  auto next_ping = std::chrono::steady_clock::now() + std::chrono::milliseconds(wd_ms);
  // Memory the workers freed stays in glibc's per-thread arenas, each keeping its own free
  // pages: under load from many connections the RSS would creep up with them. Every 30 s they
  // are given back (malloc_trim walks the arenas; it takes well under a millisecond here).
  constexpr auto kTrimEvery = std::chrono::seconds(30);
  auto next_trim = std::chrono::steady_clock::now() + kTrimEvery;
  for (;;) {
    auto until = next_trim;
    if (wd_usec) until = std::min(until, next_ping);
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    const int timeout = static_cast<int>(std::max<long>(left.count(), 0));
    pollfd p{sigfd.get(), POLLIN, 0};
    int n = ::poll(&p, 1, timeout);
    if (n < 0 && errno != EINTR) {
      spdlog::critical("poll: {}", std::strerror(errno));
      return 0;
    }
    if (std::chrono::steady_clock::now() >= next_trim) {
      ::malloc_trim(0);
      next_trim = std::chrono::steady_clock::now() + kTrimEvery;
    }
    if (wd_usec && std::chrono::steady_clock::now() >= next_ping) {
      // A listener whose accept loop died would leave the daemon up but unreachable: no ping
      // then, and systemd restarts the service when the interval runs out.
      if (server.running()) sd_notify(0, "WATCHDOG=1");
      else spdlog::error("watchdog: a listener stopped accepting; not pinging");
      next_ping = std::chrono::steady_clock::now() + std::chrono::milliseconds(wd_ms);
    }
    if (n <= 0 || !(p.revents & POLLIN)) continue;
    signalfd_siginfo si{};
    if (::read(sigfd.get(), &si, sizeof si) != static_cast<ssize_t>(sizeof si)) continue;
    if (si.ssi_signo == SIGHUP) {
      on_reload();
      continue;
    }
    spdlog::info("{}: stopping; requests in progress finish first", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
    return 0;
  }
}

// Stops in order: not ready, no more hotplug, the event streams ended, then the server, which
// lets every request already read run to its answer (a mutation completes or rolls back: its
// journal entry is settled) before it joins the workers.
void shut_down(rest::Api& api, HotplugMonitor* hotplug, EventLog& events, rest::HttpServer& server) {
  sd_notify(0, "STOPPING=1");
  api.set_ready(false);
  if (hotplug) hotplug->stop();
  // Ends the event streams first: each holds a server worker until its log closes. Each sends
  // the end of its body once it sees the close; stopping the server before they have would cut
  // them off mid-stream (httplib stops calling a streamed body's provider when it stops).
  events.close();
  if (!events.wait_unsubscribed(std::chrono::seconds(2)))
    spdlog::warn("stopping: some event streams did not end within 2 s; closing them");
  server.stop();
  spdlog::info("stopped");
}

// Logs the start's summary and tells systemd the daemon is ready.
void announce_ready(std::chrono::steady_clock::time_point t0, const Snapshot& snap, size_t with_warnings,
                    const ReconcileReport& report, const rest::HttpServer& server, const std::string& sysfs_root,
                    bool sim) {
  auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::string where;
  for (const auto& a : server.bound()) where += (where.empty() ? "" : ", ") + a.to_string();
  spdlog::info(
      "ready in {:.1f} ms: {} PCI functions ({} with warnings), {} IOMMU groups, sysfs root {}{}; "
      "reconcile: {} recovered, {} applied, {} drift; listening on {}",
      ms, snap.devices.size(), with_warnings, snap.groups.size(), sysfs_root, sim ? " (simulated kernel)" : "",
      report.recovered.size(), report.applied.size(), report.drift.size(), where);
  sd_notifyf(0, "READY=1\nSTATUS=serving %zu PCI functions on %s", snap.devices.size(), where.c_str());
}

// A start-up step's failure, logged once: "cannot start: ...".
int cannot_start(const Error& e, int status) {
  spdlog::critical("cannot start: {}", e.message);
  return status;
}

}  // namespace

// The steps in order: configuration and auth (exit 78 on failure), the host (sysfs root, kernel,
// state), the agent with hotplug and reconcile, the API and its servers, then the signal loop
// until a stop and the ordered shutdown. Long because it owns every object of the daemon for its
// whole life, in the order they must be built and torn down; each step is a named function.
int run_daemon(const DaemonOptions& options) {
  auto t0 = std::chrono::steady_clock::now();
  setup_logging(options.verbose);
  sigset_t stop_set = block_stop_signals();
  // A peer that went away must be an EPIPE error where we write, not the end of the daemon:
  // libvirt writes to its daemon's socket with write(2), so a libvirtd that stops before the
  // event loop has seen its socket close would otherwise kill us on our next libvirt call.
  ::signal(SIGPIPE, SIG_IGN);

  auto loaded = load_startup_config(options);
  if (!loaded) return cannot_start(loaded.error(), kExitConfig);
  Config config = std::move(*loaded);
  const std::string sysfs_root = config.sysfs_root;
  rest::Authorizer authorizer(config.auth.reads_open);
  if (auto r = set_up_auth(config, authorizer); !r) return cannot_start(r.error(), kExitConfig);

  auto root = pci::SysfsRoot::open(sysfs_root);
  if (!root) return cannot_start(root.error(), 1);
  auto kern = build_kernel(options, sysfs_root);
  if (!kern) return cannot_start(kern.error(), 1);
  auto store = StateStore::open(config.state_dir);
  if (!store) return cannot_start(store.error(), 1);

  pci::NameDb names(options.pci_ids);
  HostModel model;
  // The one record of what happens to the host and its leases: the agent (and the pools and
  // hotplug code through it) publish, GET /v1/events streams it.
  EventLog events;
  Agent agent(*root, **kern, **store, model, &names);
  agent.set_event_log(&events);
  // Hotplug, before reconcile reads the host: nothing that changes from here on is missed.
  auto hotplug = start_hotplug(options, agent, sysfs_root);
  if (!hotplug) return cannot_start(hotplug.error(), 1);

  // Undo what a previous run left half-done, then bring the host to the desired state (after a
  // reboot: recreate VFs, reapply VF attributes and drivers).
  ReconcileReport report = agent.reconcile();
  apply_declared_pools(agent, model, config.pools, "start");
  auto snap = model.current();
  if (!snap) {
    spdlog::critical("cannot start: reading the host failed: {}", report.drift.empty() ? "" : report.drift.front());
    return 1;
  }
  const size_t with_warnings = log_start_warnings(*snap);

  LeaseLibvirt libvirt(config.libvirt_uri);
  rest::ApiOptions api_options = wire_libvirt(agent, libvirt, model);
  // An event stream holds a worker for as long as it is open: at most half of them, whatever
  // max_connections is, so that streams never leave the other requests without one.
  api_options.max_event_streams = std::clamp(config.limits.max_connections / 2, 1, api_options.max_event_streams);
  rest::Api api(model, std::move(api_options), &agent);
  api.set_event_log(&events);
  rest::HttpServer server(api, server_options_for(config, authorizer));
  if (auto r = bind_listeners(server, config); !r) return cannot_start(r.error(), 1);
  server.start();
  // The start's scratch (the scan's per-thread buffers, the first snapshot's predecessors) is
  // freed but still held by the allocator's arenas: give those pages back before serving.
  ::malloc_trim(0);
  api.set_ready(true);
  announce_ready(t0, *snap, with_warnings, report, server, sysfs_root, options.sim);

  int status = serve_until_stopped(stop_set, server, [&] { reload_config(options, config, authorizer, agent, model); });
  if (status != 0) return status;
  shut_down(api, hotplug->get(), events, server);
  return 0;
}

}  // namespace sriovd::agent
