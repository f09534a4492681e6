#include "k8s/sidecar.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <nlohmann/json.hpp>
#include <ranges>

#include "k8s/container.h"
#include "k8s/preferred.h"
#include "k8s/proto/podresources.grpc.pb.h"
#include "k8s/sriovd_api.h"

namespace sriovd::k8s {

namespace {

constexpr const char* kKubeletSocket = "kubelet.sock";
// How long a lease we just took counts as ours before sriovd's lease list shows it.
constexpr auto kCreatedMemory = std::chrono::seconds(10);

grpc::Status to_status(const Error& e) {
  grpc::StatusCode code = grpc::StatusCode::INTERNAL;
  switch (e.code) {
    case ErrorCode::conflict: code = grpc::StatusCode::FAILED_PRECONDITION; break;
    case ErrorCode::not_found: code = grpc::StatusCode::NOT_FOUND; break;
    case ErrorCode::invalid:
    case ErrorCode::bad_request: code = grpc::StatusCode::INVALID_ARGUMENT; break;
    case ErrorCode::unavailable: code = grpc::StatusCode::UNAVAILABLE; break;
    case ErrorCode::unsupported: code = grpc::StatusCode::UNIMPLEMENTED; break;
    default: break;
  }
  return {code, e.message};
}

void wake(int fd) {
  uint64_t one = 1;
  (void)!::write(fd, &one, sizeof one);
}

}  // namespace

Sidecar::Sidecar(Config cfg)
    : cfg_(std::move(cfg)),
      api_(cfg_.sriovd_socket.string()),
      wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      device_info_(cfg_.device_info_dir.empty() ? std::nullopt : std::optional(DeviceInfoDir(cfg_.device_info_dir))) {}

Sidecar::~Sidecar() {
  {
    MutexLock lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (events_) events_->stop();
  if (refresher_.joinable()) refresher_.join();
  if (releaser_.joinable()) releaser_.join();
  for (auto& [pool, p] : plugins_) p->shutdown();
  // The spec has the device plugin delete its files when it stops (device-info SPEC.md §4.1.1);
  // no Allocate runs any more.
  if (device_info_ && !plugins_.empty()) {
    try {
      std::set<std::string> resources;
      for (const auto& [pool, p] : plugins_) resources.insert(p->resource());
      if (auto r = device_info_->prune(resources, {}); !r)
        spdlog::warn("removing device-info files: {}", r.error().message);
      else if (*r) spdlog::info("removed {} device-info files from {}", *r, device_info_->path().string());
    } catch (const std::exception& e) {  // out of memory: the files stay, as after a crash
      spdlog::warn("removing device-info files: {}", e.what());
    }
  }
}

bool Sidecar::wanted(const std::string& pool) const {
  return cfg_.pools.empty() || std::find(cfg_.pools.begin(), cfg_.pools.end(), pool) != cfg_.pools.end();
}

// ---- run: registration and kubelet restarts -------------------------------------------------

Result<void> Sidecar::run(int stop_fd) {
  std::error_code ec;
  std::filesystem::create_directories(cfg_.kubelet_dir, ec);
  UniqueFd in(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!in) return Error::sys(errno, "inotify_init1");
  // kubelet (re)creates kubelet.sock when it starts, after deleting every plugin socket: that is
  // the signal to serve again and re-register.
  if (::inotify_add_watch(in.get(), cfg_.kubelet_dir.c_str(), IN_CREATE | IN_MOVED_TO) < 0)
    return Error::sys(errno, "watching kubelet dir " + cfg_.kubelet_dir.string());
  if (!wake_fd_) return Error::sys(errno, "eventfd");

  events_ = std::make_unique<EventStream>(
      cfg_.sriovd_socket.string(),
      EventStream::Callbacks{[this] {
                               spdlog::info("following sriovd events at {}", api_.describe());
                               request_refresh();  // whatever happened while disconnected
                             },
                             [this](const cli::SseEvent& ev) {
                               spdlog::debug("sriovd event {} {}", ev.type, ev.id);
                               request_refresh();
                             },
                             [](const std::string& why) { spdlog::warn("{}; reconnecting", why); }});
  events_->start();
  refresher_ = std::thread([this] { refresh_loop(); });
  releaser_ = std::thread([this] { release_loop(); });
  {
    MutexLock lk(mu_);
    quiet_until_ = Clock::now() + cfg_.release_grace;
  }

  alignas(inotify_event) char buf[4096];
  while (true) {
    pollfd fds[3] = {{stop_fd, POLLIN, 0}, {in.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      return Error::sys(errno, "poll");
    }
    if (fds[0].revents) break;
    bool kubelet_restarted = false;
    if (fds[1].revents) {
      ssize_t n;
      while ((n = ::read(in.get(), buf, sizeof buf)) > 0) {
        for (char* p = buf; p < buf + n;) {
          auto* ev = reinterpret_cast<inotify_event*>(p);
          if (ev->len && std::string_view(ev->name) == kKubeletSocket) kubelet_restarted = true;
          p += sizeof(inotify_event) + ev->len;
        }
      }
    }
    if (fds[2].revents) {
      uint64_t v;
      (void)!::read(wake_fd_.get(), &v, sizeof v);
    }
    if (kubelet_restarted) {
      {
        MutexLock lk(mu_);
        for (auto& [pool, p] : plugins_) unregistered_.insert(pool);
        quiet_until_ = Clock::now() + cfg_.release_grace;
      }
      register_all("kubelet.sock was created");
    } else if (fds[2].revents) {
      register_all("new pools");
    }
  }
  spdlog::info("stopping");
  return ok();
}

void Sidecar::register_all(const std::string& why) {
  auto kubelet = cfg_.kubelet_dir / kKubeletSocket;
  std::vector<ResourcePlugin*> todo;
  {
    MutexLock lk(mu_);
    for (const auto& pool : unregistered_) todo.push_back(plugins_.at(pool).get());
  }
  if (todo.empty() || !std::filesystem::exists(kubelet)) return;
  for (ResourcePlugin* p : todo) {
    if (!p->serving() || !p->socket_present()) {
      if (auto r = p->serve(); !r) {
        spdlog::error("{}: {}", p->resource(), r.error().message);
        continue;
      }
    }
    auto r = p->register_with(kubelet, std::chrono::seconds(5));
    if (!r) {
      spdlog::warn("{}", r.error().message);  // retried when kubelet.sock is created again
      continue;
    }
    spdlog::info("registered {} with kubelet as {} ({})", p->resource(), p->endpoint(), why);
    MutexLock lk(mu_);
    unregistered_.erase(p->pool());
  }
}

// ---- refresh: pools and leases from sriovd → device lists -----------------------------------

void Sidecar::request_refresh() {
  {
    MutexLock lk(mu_);
    refresh_wanted_ = true;
  }
  cv_.notify_all();
}

void Sidecar::refresh_loop() {
  MutexLock lk(mu_);
  while (true) {
    cv_.wait(lk, [&]() SRIOVD_REQUIRES(mu_) { return refresh_wanted_ || stopping_; });
    if (stopping_) return;
    refresh_wanted_ = false;
    lk.unlock();
    if (auto r = refresh(); !r) spdlog::warn("reading pools from sriovd: {}", r.error().message);
    lk.lock();
  }
}

std::vector<v1beta1::Device> Sidecar::device_list(const Pool& pool) const {
  std::vector<v1beta1::Device> out;
  for (const auto& d : pool.devices) {
    v1beta1::Device dev;
    dev.set_id(d.address.to_string());
    // A device leased to anything but our pods (a VM, another tool) is not kubelet's to give.
    bool ours = !d.lease || pod_leases_.count(*d.lease) != 0;
    dev.set_health(d.healthy && ours ? kHealthy : kUnhealthy);
    if (d.numa_node) dev.mutable_topology()->add_nodes()->set_id(*d.numa_node);
    out.push_back(std::move(dev));
  }
  return out;
}

Result<void> Sidecar::refresh() {
  const SriovdApi& api = api_;
  auto pools = api.pools();
  if (!pools) return std::move(pools).error();
  auto leases = api.leases("consumer_kind=pod");
  if (!leases) return std::move(leases).error();

  bool changed = false, created = false;
  {
    MutexLock lk(mu_);
    pools_.clear();
    for (auto& p : *pools)
      if (wanted(p.name)) pools_.emplace(p.name, std::move(p));
    pod_leases_.clear();
    for (const auto& l : *leases)
      if (l.consumer_kind == "pod" && pools_.count(l.pool)) pod_leases_.insert(l.id);
    if (!device_info_synced_) sync_device_info(*leases);
    auto now = Clock::now();
    for (auto it = created_.begin(); it != created_.end();) {
      if (now - it->second > kCreatedMemory) {
        it = created_.erase(it);
      } else {
        pod_leases_.insert(it->first);
        ++it;
      }
    }
    for (const auto& [name, pool] : pools_) {
      auto& plugin = plugins_[name];
      if (!plugin) {
        plugin = std::make_unique<ResourcePlugin>(name, resource_of(name), cfg_.kubelet_dir, *this);
        unregistered_.insert(name);
        created = true;
      }
      changed |= plugin->set_devices(device_list(pool));
    }
    for (auto& [name, plugin] : plugins_)
      if (!pools_.count(name)) changed |= plugin->set_devices({});  // pool deleted: nothing to offer
  }
  if (created) wake(wake_fd_.get());
  if (changed) request_release();
  return ok();
}

// ---- allocation -----------------------------------------------------------------------------

std::vector<std::string> Sidecar::preferred(const std::string& pool, const std::vector<std::string>& available,
                                            const std::vector<std::string>& must_include, int size) {
  Pool p;
  {
    MutexLock lk(mu_);
    if (auto it = pools_.find(pool); it != pools_.end()) p = it->second;
  }
  return preferred_allocation(p, available, must_include, size);
}

DeviceInfoEntry Sidecar::device_info_entry(const Pool& pool, const PciAddress& a) const {
  DeviceInfoEntry e{a, std::nullopt, {}, {}};
  if (const auto* d = pool.find(a)) e.pf = d->pf;
  return e;
}

void Sidecar::sync_device_info(const std::vector<Lease>& leases) {
  device_info_synced_ = true;
  if (!device_info_) return;
  std::set<std::string> resources;
  for (const auto& [name, pool] : pools_) resources.insert(resource_of(name));
  std::set<std::pair<std::string, PciAddress>> keep;
  for (const auto& l : leases) {
    auto pool = pools_.find(l.pool);
    if (l.consumer_kind != "pod" || pool == pools_.end()) continue;
    keep.emplace(resource_of(l.pool), l.address);
    if (auto r = device_info_->write(resource_of(l.pool), device_info_entry(pool->second, l.address)); !r)
      spdlog::warn("device-info file of {}: {}", l.address.to_string(), r.error().message);
  }
  if (auto r = device_info_->prune(resources, keep); !r)
    spdlog::warn("removing stale device-info files: {}", r.error().message);
  else if (*r) spdlog::info("removed {} stale device-info files from {}", *r, device_info_->path().string());
}

Result<Lease> Sidecar::take_lease(const std::string& pool, const PciAddress& address) {
  const SriovdApi& api = api_;
  const std::string consumer = resource_of(pool);
  auto lease = api.allocate(pool, address, consumer, random_key());
  if (lease || lease.error().code != ErrorCode::conflict) return lease;
  auto all = api.leases();
  if (!all) return lease;
  auto holder = std::find_if(all->begin(), all->end(), [&](const Lease& l) { return l.address == address; });
  if (holder == all->end()) return lease;  // no free device for another reason: sriovd's words
  if (holder->consumer_kind == "pod" && holder->pool == pool) {
    // kubelet gives a device only when no pod of its holds it: this lease is left from a pod
    // that is gone and not yet released. Release it (sriovd resets the VF) and lease again.
    spdlog::info("releasing lease {} of {}: kubelet reassigned the device", holder->id, address.to_string());
    if (auto r = api.release(holder->id); !r) return std::move(r).error();
    return api.allocate(pool, address, consumer, random_key());
  }
  return Error::make(ErrorCode::conflict, "device " + address.to_string() + " is leased to " + holder->consumer_kind +
                                              " '" + holder->consumer_name + "' (lease " + holder->id +
                                              "); it cannot go to a pod");
}

Result<void> Sidecar::write_cdi_spec(const Pool& pool, const std::vector<AllocatedDevice>& fresh) const {
  std::vector<AllocatedDevice> all;
  all.reserve(pool.devices.size() + fresh.size());
  for (const auto& d : pool.devices) all.push_back({d.address, d.iommu_group, d.netdevs});
  for (const auto& f : fresh) {
    auto it = std::find_if(all.begin(), all.end(), [&](const auto& a) { return a.address == f.address; });
    if (it != all.end()) *it = f;
    else all.push_back(f);
  }
  std::string resource = resource_of(pool.name);
  MutexLock lk(cdi_mu_);
  std::error_code ec;
  std::filesystem::create_directories(cfg_.cdi_dir, ec);
  return write_file_atomic(cfg_.cdi_dir / cdi_spec_file_name(resource),
                           cdi_spec(resource, pool.mode, all).dump(2) + "\n");
}

grpc::Status Sidecar::allocate(const std::string& pool_name, const v1beta1::AllocateRequest& req,
                               v1beta1::AllocateResponse* resp) {
  const SriovdApi& api = api_;
  const std::string resource = resource_of(pool_name);
  Pool pool;
  {
    MutexLock lk(mu_);
    auto it = pools_.find(pool_name);
    if (it == pools_.end()) return {grpc::StatusCode::FAILED_PRECONDITION, "sriovd has no pool '" + pool_name + "'"};
    pool = it->second;
  }
  std::vector<std::string> taken;    // leases of this call, released again if a later step fails
  std::vector<PciAddress> informed;  // device-info files of this call, removed again
  auto fail = [&](const std::string& id, const Error& e) {
    if (device_info_)
      for (const auto& a : informed)
        if (auto r = device_info_->remove(resource, a); !r) spdlog::error("allocate rollback: {}", r.error().message);
    for (const auto& lease : std::views::reverse(taken)) {
      if (auto r = api.release(lease); !r)
        spdlog::error("allocate rollback: releasing lease {}: {}", lease, r.error().message);
      MutexLock lk(mu_);
      created_.erase(lease);
    }
    Error ctx = e;
    ctx.message = "allocating " + id + " for " + resource + ": " + e.message;
    spdlog::warn("{}", ctx.message);
    request_refresh();
    return to_status(ctx);
  };

  std::vector<AllocatedDevice> every;
  for (const auto& creq : req.container_requests()) {
    std::vector<AllocatedDevice> devs;
    for (const auto& id : creq.devices_ids()) {
      auto addr = PciAddress::parse(id);
      if (!addr) return fail(id, Error::make(ErrorCode::invalid, "not a PCI address", "devices_ids"));
      if (!pool.find(*addr))
        return fail(id, Error::make(ErrorCode::not_found, "not a member of pool '" + pool_name + "'"));
      auto lease = take_lease(pool_name, *addr);
      if (!lease) return fail(id, lease.error());
      taken.push_back(lease->id);
      {
        MutexLock lk(mu_);
        created_[lease->id] = Clock::now();
        pod_leases_.insert(lease->id);
      }
      auto info = api.device(*addr);
      if (!info) return fail(id, info.error());
      devs.push_back({*addr, info->iommu_group, info->netdevs});
    }
    auto edits = container_edits(resource, pool.mode, devs, !cfg_.cdi_dir.empty());
    if (!edits) return fail(devs.empty() ? "" : devs.front().address.to_string(), edits.error());
    auto* out = resp->add_container_responses();
    for (const auto& [k, v] : edits->envs) (*out->mutable_envs())[k] = v;
    for (const auto& n : edits->devices) {
      auto* spec = out->add_devices();
      spec->set_container_path(n.container_path);
      spec->set_host_path(n.host_path);
      spec->set_permissions(n.permissions);
    }
    for (const auto& name : edits->cdi_devices) out->add_cdi_devices()->set_name(name);
    every.insert(every.end(), devs.begin(), devs.end());
  }
  if (!cfg_.cdi_dir.empty()) {
    if (auto r = write_cdi_spec(pool, every); !r)
      return fail(every.empty() ? "" : every.front().address.to_string(), r.error());
  }
  if (device_info_) {
    for (const auto& d : every) {
      if (auto r = device_info_->write(resource, device_info_entry(pool, d.address)); !r)
        return fail(d.address.to_string(), r.error());
      informed.push_back(d.address);
    }
  }
  for (const auto& d : every) spdlog::info("allocated {} to a pod as {}", d.address.to_string(), resource);
  request_refresh();
  return grpc::Status::OK;
}

// ---- release: leases no pod holds -----------------------------------------------------------

void Sidecar::request_release() {
  {
    MutexLock lk(mu_);
    release_wanted_ = true;
  }
  cv_.notify_all();
}

void Sidecar::release_loop() {
  MutexLock lk(mu_);
  while (true) {
    cv_.wait_for(lk, cfg_.release_interval, [&]() SRIOVD_REQUIRES(mu_) { return release_wanted_ || stopping_; });
    if (stopping_) return;
    release_wanted_ = false;
    lk.unlock();
    if (auto r = release_unheld(); !r) spdlog::debug("release check: {}", r.error().message);
    lk.lock();
  }
}

Result<void> Sidecar::release_unheld() {
  auto channel = grpc::CreateChannel("unix:" + cfg_.pod_resources_socket.string(), grpc::InsecureChannelCredentials());
  auto stub = v1::PodResourcesLister::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::ListPodResourcesRequest req;
  v1::ListPodResourcesResponse resp;
  grpc::Status st = stub->List(&ctx, req, &resp);
  // Without kubelet's answer nothing is known to be free: release nothing.
  if (!st.ok()) return Error::make(ErrorCode::unavailable, "kubelet PodResources List: " + st.error_message());
  std::set<std::pair<std::string, std::string>> held;  // (resource, device id)
  for (const auto& pod : resp.pod_resources())
    for (const auto& c : pod.containers())
      for (const auto& d : c.devices())
        for (const auto& id : d.device_ids()) held.emplace(d.resource_name(), id);

  const SriovdApi& api = api_;
  auto leases = api.leases("consumer_kind=pod");
  if (!leases) return std::move(leases).error();
  auto now = Clock::now();
  Clock::time_point quiet;
  {
    MutexLock lk(mu_);
    quiet = quiet_until_;
  }
  std::set<std::string> seen;
  bool released = false;
  for (const auto& l : *leases) {
    if (l.consumer_kind != "pod" || l.pool.empty() || !wanted(l.pool)) continue;
    {
      MutexLock lk(mu_);
      if (!plugins_.count(l.pool)) continue;  // a pool we do not serve (yet)
    }
    seen.insert(l.id);
    if (held.count({resource_of(l.pool), l.address.to_string()})) {
      unheld_since_.erase(l.id);
      continue;
    }
    auto since = unheld_since_.emplace(l.id, now).first->second;
    if (now - since < cfg_.release_grace || now < quiet) continue;
    // The file goes first: once sriovd says the lease is released, nothing points at the device.
    if (device_info_) {
      if (auto r = device_info_->remove(resource_of(l.pool), l.address); !r)
        spdlog::warn("device-info file of {}: {}", l.address.to_string(), r.error().message);
    }
    auto r = api.release(l.id);
    if (!r) {
      spdlog::warn("releasing lease {} of {}: {}", l.id, l.address.to_string(), r.error().message);
      continue;
    }
    spdlog::info("released lease {} of {} ({}): no pod holds it", l.id, l.address.to_string(), resource_of(l.pool));
    unheld_since_.erase(l.id);
    released = true;
    MutexLock lk(mu_);
    created_.erase(l.id);
  }
  for (auto it = unheld_since_.begin(); it != unheld_since_.end();)
    it = seen.count(it->first) ? std::next(it) : unheld_since_.erase(it);
  if (released) request_refresh();
  return ok();
}

}  // namespace sriovd::k8s
