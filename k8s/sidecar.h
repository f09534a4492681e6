// Sidecar: sriovd-k8s's core. It turns sriovd's pools into kubelet device-plugin resources
// ("<prefix>/<pool>"), keeps their device lists live from sriovd's event stream, takes and
// returns leases in sriovd for kubelet's allocations, and survives restarts of kubelet, sriovd
// and itself.
//
// Threads (all owned here): the caller's thread runs run(): it registers plugins with kubelet
// and re-registers them when inotify sees kubelet.sock created; a refresh thread re-reads pools
// and leases when an event (or a reconnection) asks for it and updates the plugins' lists; a
// release thread asks kubelet's PodResources which devices pods hold, periodically and after list
// changes, and releases pod leases nobody holds; the event stream has its own thread; gRPC handler
// threads call allocate() and preferred(). Shared state is under mu_ (see the members).
//
// Leases are sriovd's, so nothing here is persisted: a restarted sidecar adopts the pod leases of
// its pools that sriovd reports (and releases those no pod holds, after the grace period).
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/fd.h"
#include "base/mutex.h"
#include "base/result.h"
#include "k8s/container.h"
#include "k8s/device_info.h"
#include "k8s/event_stream.h"
#include "k8s/plugin.h"
#include "k8s/pool.h"
#include "k8s/sriovd_api.h"

namespace sriovd::k8s {

struct Config {
  std::filesystem::path kubelet_dir = "/var/lib/kubelet/device-plugins";
  std::filesystem::path pod_resources_socket = "/var/lib/kubelet/pod-resources/kubelet.sock";
  std::filesystem::path sriovd_socket = "/run/sriovd/sriovd.sock";
  std::string resource_prefix = "sriovd.io";
  std::vector<std::string> pools;  // empty: every pool sriovd has, including ones created later
  std::filesystem::path cdi_dir;   // empty: no CDI, raw device specs
  // Where the device-info files (k8s/device_info.h) of allocated devices go; empty: none.
  std::filesystem::path device_info_dir = kDeviceInfoDir;
  // How often kubelet's PodResources is asked which devices pods hold.
  std::chrono::milliseconds release_interval{5000};
  // How long a pod lease must go unheld by any pod before it is released. kubelet calls
  // Allocate before it records the devices for the pod (and a failed admission records nothing),
  // and a restarted kubelet lists pods only once it has re-admitted them: a lease is released
  // only after it was seen unheld for this long, and never within this long of a (re)registration.
  std::chrono::milliseconds release_grace{30000};
};

class Sidecar final : public AllocationHandler {
 public:
  explicit Sidecar(Config cfg);
  ~Sidecar() override;
  Sidecar(const Sidecar&) = delete;
  Sidecar& operator=(const Sidecar&) = delete;

  // Runs until `stop_fd` is readable (a signalfd for SIGTERM/SIGINT). Fails only when it cannot
  // start (kubelet dir not watchable); everything after that is retried.
  Result<void> run(int stop_fd);

  grpc::Status allocate(const std::string& pool, const v1beta1::AllocateRequest& req,
                        v1beta1::AllocateResponse* resp) override;
  std::vector<std::string> preferred(const std::string& pool, const std::vector<std::string>& available,
                                     const std::vector<std::string>& must_include, int size) override;

  std::string resource_of(const std::string& pool) const { return cfg_.resource_prefix + "/" + pool; }

 private:
  using Clock = std::chrono::steady_clock;

  void request_refresh();
  void refresh_loop();
  Result<void> refresh();
  void request_release();
  void release_loop();
  Result<void> release_unheld();
  void register_all(const std::string& why);
  bool wanted(const std::string& pool) const;
  Result<Lease> take_lease(const std::string& pool, const PciAddress& address);
  std::vector<v1beta1::Device> device_list(const Pool& pool) const SRIOVD_REQUIRES(mu_);
  Result<void> write_cdi_spec(const Pool& pool, const std::vector<AllocatedDevice>& fresh) const;
  // At the first refresh, before any plugin serves: the device-info files of the pod leases of
  // our pools are written (a restarted sidecar adopts them) and other files of our resources
  // removed (left by a sidecar that did not stop cleanly).
  void sync_device_info(const std::vector<Lease>& leases) SRIOVD_REQUIRES(mu_);
  DeviceInfoEntry device_info_entry(const Pool& pool, const PciAddress& a) const;

  const Config cfg_;
  const SriovdApi api_;
  UniqueFd wake_fd_;  // eventfd: asks run() to register plugins created by the refresh thread

  mutable Mutex mu_;
  CondVar cv_;
  // By pool; never erased while running.
  std::map<std::string, std::unique_ptr<ResourcePlugin>> plugins_ SRIOVD_GUARDED_BY(mu_);
  std::set<std::string> unregistered_ SRIOVD_GUARDED_BY(mu_);                // pools whose plugin awaits Register
  std::map<std::string, Pool> pools_ SRIOVD_GUARDED_BY(mu_);                 // last read, wanted pools only
  std::set<std::string> pod_leases_ SRIOVD_GUARDED_BY(mu_);                  // pod lease ids in our pools
  std::map<std::string, Clock::time_point> created_ SRIOVD_GUARDED_BY(mu_);  // leases we took, when
  Clock::time_point quiet_until_ SRIOVD_GUARDED_BY(mu_){};                   // no releases before
  bool refresh_wanted_ SRIOVD_GUARDED_BY(mu_) = true;
  bool release_wanted_ SRIOVD_GUARDED_BY(mu_) = false;
  bool stopping_ SRIOVD_GUARDED_BY(mu_) = false;
  bool device_info_synced_ SRIOVD_GUARDED_BY(mu_) = false;

  std::map<std::string, Clock::time_point> unheld_since_;  // release thread only
  std::unique_ptr<EventStream> events_;
  std::thread refresher_;
  std::thread releaser_;
  mutable Mutex cdi_mu_;                            // one CDI spec writer at a time per process
  const std::optional<DeviceInfoDir> device_info_;  // nullopt: no device-info files
};

}  // namespace sriovd::k8s
