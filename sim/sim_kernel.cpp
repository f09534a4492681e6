#include "sim/sim_kernel.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <thread>
#include <utility>

#include "net/rtnl.h"
#include "sim/call.h"
#include "sim/driver_core.h"
#include "sim/eswitch.h"
#include "sim/file_io.h"
#include "sim/hotplug.h"
#include "sim/kstrtox.h"
#include "sim/netdevs.h"
#include "sim/reboot.h"
#include "sim/sim_state.h"
#include "sim/stores.h"
#include "sim/vfio.h"

// The facade: SimKernel takes its locks, makes a sim::Call for each call and hands it to the
// piece that owns what the call does (sim/stores.h for writes, sim/netdevs.h for rtnetlink,
// sim/hotplug.h, sim/reboot.h), then sends the call's uevents. Kernel sources followed by the
// pieces are Linux 6.1 (Debian's linux-source-6.1). Each emulated store names the function it
// follows; the order of its checks is the kernel's, since callers see only the first failing one.

namespace sriovd::kernel {

namespace fs = std::filesystem;
using sim::BootData;
using sim::kStateDir;
using simio::is_dir;
using simio::real_path;

struct SimKernel::Boot : BootData {};

SimKernel::SimKernel(fs::path root) : root_(std::move(root)), uevents_(root_) {
  auto fail = [&](Error e) { init_error_ = std::move(e).context("SimKernel on " + root_.string()); };
  auto real = real_path(root_);
  if (!real || !is_dir(*real / "bus/pci/devices")) {
    fail(Error::sys(ENOENT, "no bus/pci/devices"));
    return;
  }
  real_root_ = *real;
  auto loaded = sim::load_or_record_boot(root_);
  if (!loaded) {
    fail(std::move(loaded).error());
    return;
  }
  auto boot = std::make_shared<Boot>();
  static_cast<BootData&>(*boot) = std::move(*loaded);
  boot->derive();
  boot->plain_bus = true;
  for (const char* d : {"bus", "bus/pci", "bus/pci/devices", "bus/pci/drivers"}) {
    struct stat st;
    if (::lstat((root_ / d).c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) boot->plain_bus = false;
  }
  boot_ = std::move(boot);
  const fs::path lock = root_ / kStateDir / "lock";
  lock_fd_ = UniqueFd(::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock_fd_) fail(Error::sys(errno, "opening " + lock.string()));
}

SimKernel::~SimKernel() = default;

Result<void> SimKernel::hot_remove(const PciAddress& address) {
  TreeLock lock(mu_, lock_fd_.get());
  if (auto r = check_ready(); !r) return r;
  sim::Call call(root_, real_root_, *boot_);
  std::vector<PendingUevent> uevents;
  call.collect_uevents(&uevents);
  auto r = call.finish(sim::hot_remove(call, address));
  if (r) uevents_.send(uevents);
  return r;
}

Result<void> SimKernel::hot_add(const PciAddress& address) {
  TreeLock lock(mu_, lock_fd_.get());
  if (auto r = check_ready(); !r) return r;
  sim::Call call(root_, real_root_, *boot_);
  std::vector<PendingUevent> uevents;
  call.collect_uevents(&uevents);
  auto r = call.finish(sim::hot_add(call, address));
  uevents_.send(uevents);
  return r;
}

SimKernel::TreeLock::TreeLock(Mutex& mu, int fd) : mu_(mu), fd_(fd) {
  mu_.lock();
  if (fd_ >= 0)
    while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
}

SimKernel::TreeLock::~TreeLock() {
  if (fd_ >= 0) ::flock(fd_, LOCK_UN);
  mu_.unlock();
}

Result<void> SimKernel::kill_between_calls(const fs::path& root, pid_t pid) {
  UniqueFd fd(::open((root / kStateDir / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return Error::sys(errno, "opening the simulated kernel's lock in " + root.string());
  while (::flock(fd.get(), LOCK_EX) != 0)
    if (errno != EINTR) return Error::sys(errno, "locking the simulated kernel");
  if (::kill(pid, SIGKILL) != 0) return Error::sys(errno, "kill " + std::to_string(pid));
  return ok();  // the lock goes with `fd`
}

Result<std::unique_ptr<SimKernel>> SimKernel::open(fs::path root) {
  auto k = std::make_unique<SimKernel>(std::move(root));
  if (k->init_error_) return *k->init_error_;
  return k;
}

Result<void> SimKernel::check_ready() const {
  if (init_error_) return *init_error_;
  return ok();
}

Result<void> SimKernel::write_attr(const std::string& relpath, std::string_view value) {
  bool disabled = false;
  Result<void> r = ok();
  {
    TreeLock lock(mu_, lock_fd_.get());
    if (auto ready = check_ready(); !ready) return ready;
    sim::Call call(root_, real_root_, *boot_);
    std::vector<PendingUevent> uevents;
    call.collect_uevents(&uevents);
    r = call.finish(sim::write_attr(call, relpath, value));
    uevents_.send(uevents);  // what happened happened, failed call or not
    disabled = call.sriov_disabled;
  }
  // drivers/pci/iov.c sriov_disable(): the VFs are gone (their uevents out), VF Enable is
  // cleared, then ssleep(1) before the write returns. Waited out of the tree lock: the sim's
  // lock is one for the whole kernel, and the real wait blocks only this PF (its device lock).
  if (r && disabled) wait_after_sriov_disable();
  if (!r) return std::move(r).error().context("writing " + relpath);
  return r;
}

void SimKernel::wait_after_sriov_disable() {
  std::chrono::milliseconds delay{0};
  if (auto t = simio::read_text((root_ / kSriovDisableDelayFile).string())) {
    unsigned long long ms = 0;
    if (sim::kstrtoull(sim::trim(*t).c_str(), 10, &ms) == 0) delay = std::chrono::milliseconds(ms);
  }
  MutexLock l(delay_mu_);
  ++disables_waiting_;
  delay_cv_.notify_all();
  const auto until = std::chrono::steady_clock::now() + delay;
  while (hold_disable_ || std::chrono::steady_clock::now() < until) {
    if (hold_disable_) delay_cv_.wait(l);
    else (void)delay_cv_.wait_for(l, until - std::chrono::steady_clock::now());
  }
  --disables_waiting_;
}

Result<void> SimKernel::set_sriov_disable_delay(std::chrono::milliseconds delay) {
  return simio::write_text((root_ / kSriovDisableDelayFile).string(), std::to_string(delay.count()) + "\n");
}

void SimKernel::hold_sriov_disable(bool hold) {
  MutexLock l(delay_mu_);
  hold_disable_ = hold;
  delay_cv_.notify_all();
}

bool SimKernel::wait_for_sriov_disable_held(std::chrono::milliseconds deadline) {
  MutexLock l(delay_mu_);
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (disables_waiting_ == 0) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) return false;
    (void)delay_cv_.wait_for(l, until - now);
  }
  return true;
}

Result<std::vector<VfInfo>> SimKernel::get_vfs(const std::string& pf_ifname) {
  TreeLock lock(mu_, lock_fd_.get());
  if (auto r = check_ready(); !r) return std::move(r).error();
  sim::Call call(root_, real_root_, *boot_);
  return call.finish(sim::get_vfs(call, pf_ifname));
}

Result<void> SimKernel::set_vf(const std::string& pf_ifname, uint32_t vf, const VfConfig& config) {
  TreeLock lock(mu_, lock_fd_.get());
  if (auto r = check_ready(); !r) return r;
  sim::Call call(root_, real_root_, *boot_);
  return call.finish(sim::set_vf(call, pf_ifname, vf, config));
}

Result<void> SimKernel::set_mtu(const std::string& ifname, uint32_t mtu) {
  TreeLock lock(mu_, lock_fd_.get());
  if (auto r = check_ready(); !r) return r;
  sim::Call call(root_, real_root_, *boot_);
  return call.finish(sim::set_mtu(call, ifname, mtu));
}

Result<std::vector<std::string>> SimKernel::get_altnames(const std::string& ifname) {
  TreeLock lock(mu_, lock_fd_.get());
  if (auto r = check_ready(); !r) return std::move(r).error();
  sim::Call call(root_, real_root_, *boot_);
  return sim::get_altnames(call, ifname);
}

Result<void> SimKernel::add_altname(const std::string& ifname, const std::string& alt) {
  TreeLock lock(mu_, lock_fd_.get());
  if (auto r = check_ready(); !r) return r;
  sim::Call call(root_, real_root_, *boot_);
  return call.finish(sim::add_altname(call, ifname, alt));
}

Result<void> SimKernel::set_carrier(const std::string& ifname, bool carrier) {
  TreeLock lock(mu_, lock_fd_.get());
  if (auto r = check_ready(); !r) return r;
  sim::Call call(root_, real_root_, *boot_);
  auto c = call.finish(sim::set_carrier(call, ifname, carrier));
  if (!c) return std::move(c).error();
  auto msg = net::build_link_notification(c->ifindex, ifname, c->flags, carrier, c->operstate);
  if (!msg) return std::move(msg).error();
  sim::send_datagram(root_, kRtnlSocket, *msg);
  return ok();
}

Result<EswitchMode> SimKernel::get_eswitch_mode(const std::string& bus, const std::string& dev) {
  TreeLock lock(mu_, lock_fd_.get());
  if (auto r = check_ready(); !r) return std::move(r).error();
  sim::Call call(root_, real_root_, *boot_);
  return sim::get_eswitch(call, bus, dev);
}

Result<void> SimKernel::set_eswitch_mode(const std::string& bus, const std::string& dev, EswitchMode mode) {
  TreeLock lock(mu_, lock_fd_.get());
  if (auto r = check_ready(); !r) return r;
  sim::Call call(root_, real_root_, *boot_);
  std::vector<PendingUevent> uevents;
  call.collect_uevents(&uevents);
  auto r = call.finish(sim::set_eswitch(call, bus, dev, mode));
  uevents_.send(uevents);  // the representors that came or went, failed call or not
  return r;
}

Result<LinkFacts> SimKernel::get_link(const std::string& ifname) {
  TreeLock lock(mu_, lock_fd_.get());
  if (auto r = check_ready(); !r) return std::move(r).error();
  sim::Call call(root_, real_root_, *boot_);
  return sim::get_link(call, ifname);
}

Result<void> SimKernel::set_link_addresses(const std::string& ifname, const std::vector<std::string>& addresses,
                                           size_t routes) {
  TreeLock lock(mu_, lock_fd_.get());
  if (auto r = check_ready(); !r) return r;
  sim::Call call(root_, real_root_, *boot_);
  return sim::set_link_addresses(call, ifname, addresses, routes);
}

Result<void> SimKernel::simulate_reboot() {
  TreeLock lock(mu_, lock_fd_.get());
  if (auto r = check_ready(); !r) return r;
  // Every process goes with the reboot, and the files it held open with it.
  if (auto r = sim::update_vfio(root_,
                                [](sim::VfioState& s) -> Result<void> {
                                  s.holders.clear();
                                  return ok();
                                });
      !r)
    return r;
  sim::Call call(root_, real_root_, *boot_);
  return call.finish(sim::reboot(call));
}

Result<std::vector<FileHolder>> SimKernel::vfio_holders(const PciAddress& address) {
  TreeLock lock(mu_, lock_fd_.get());
  if (auto r = check_ready(); !r) return std::move(r).error();
  sim::Call call(root_, real_root_, *boot_);
  auto d = call.dev(address);
  if (!d) return Error::sys(ENODEV, "no PCI device " + address.to_string());
  auto group = call.iommu_group_of(*d);
  if (!group) return std::vector<FileHolder>{};
  auto s = sim::read_vfio(root_);
  if (!s) return std::move(s).error();
  auto it = s->holders.find(*group);
  return it == s->holders.end() ? std::vector<FileHolder>{} : it->second;
}

Result<bool> SimKernel::wait_carrier(const std::string& ifname, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::system_clock::now() + timeout;
  for (;;) {
    std::chrono::system_clock::time_point back;
    {
      TreeLock lock(mu_, lock_fd_.get());
      if (auto r = check_ready(); !r) return std::move(r).error();
      sim::Call call(root_, real_root_, *boot_);
      auto st = sim::link_state(call, ifname);
      if (!st) return std::move(st).error();
      if (!st->up) return false;
      if (st->carrier) return true;
      if (!st->back_at || *st->back_at > deadline) return false;
      back = *st->back_at;
    }
    // The time the hardware takes to bring the link back, out of the tree lock as in Linux,
    // where the link comes up from a watchdog while every other call goes on.
    std::this_thread::sleep_until(back);
  }
}

Result<void> SimKernel::set_link_settle(std::chrono::milliseconds settle) {
  return simio::write_text((root_ / sim::kLinkSettleFile).string(), std::to_string(settle.count()) + "\n");
}

Result<void> SimKernel::hold_vfio(const PciAddress& address, pid_t pid, std::string comm) {
  if (auto r = check_ready(); !r) return r;
  // Read without the tree lock (see the header); the test makes no other change meanwhile.
  sim::Call call(root_, real_root_, *boot_);
  auto d = call.dev(address);
  if (!d) return Error::sys(ENODEV, "no PCI device " + address.to_string());
  auto group = call.iommu_group_of(*d);
  if (call.driver_of(*d) != std::string("vfio-pci") || !group)
    return Error::sys(ENODEV, address.to_string() + " is not bound to vfio-pci: its group has no /dev/vfio node");
  return sim::update_vfio(root_, [&](sim::VfioState& s) -> Result<void> {
    s.holders[*group].push_back({pid, comm, "/dev/vfio/" + std::to_string(*group)});
    return ok();
  });
}

Result<void> SimKernel::release_vfio(const PciAddress& address, pid_t pid) {
  if (auto r = check_ready(); !r) return r;
  sim::Call call(root_, real_root_, *boot_);
  auto d = call.dev(address);
  if (!d) return Error::sys(ENODEV, "no PCI device " + address.to_string());
  auto group = call.iommu_group_of(*d);
  return sim::update_vfio(root_, [&](sim::VfioState& s) -> Result<void> {
    auto& list = s.holders[group.value_or(~0u)];
    auto it = std::find_if(list.begin(), list.end(), [&](const FileHolder& h) { return h.pid == pid; });
    if (it == list.end())
      return Error::sys(ENOENT,
                        "pid " + std::to_string(pid) + " does not hold the VFIO group of " + address.to_string());
    list.erase(it);
    return ok();
  });
}

Result<void> SimKernel::set_vfio_unbind_bound(std::chrono::milliseconds bound) {
  if (auto r = check_ready(); !r) return r;
  return sim::update_vfio(root_, [&](sim::VfioState& s) -> Result<void> {
    s.bound = bound;
    return ok();
  });
}

size_t SimKernel::vfio_unbinds_blocked(const PciAddress& address) const {
  if (init_error_) return 0;
  auto s = sim::read_vfio(root_);
  if (!s) return 0;
  auto it = s->blocked.find(address.to_string());
  return it == s->blocked.end() ? 0 : it->second;
}

Result<void> SimKernel::set_vf_stats(const std::string& pf_ifname, uint32_t vf, const VfStats& stats) {
  MutexLock lock(mu_);
  if (auto r = check_ready(); !r) return r;
  sim::Call call(root_, real_root_, *boot_);
  return sim::set_vf_stats(call, pf_ifname, vf, stats);
}

size_t SimKernel::reset_count(const PciAddress& address) const {
  TreeLock lock(mu_, lock_fd_.get());
  if (init_error_) return 0;
  sim::Call call(root_, real_root_, *boot_);
  auto it = call.state().resets.find(address.to_string());
  return it == call.state().resets.end() ? 0 : it->second;
}

std::optional<std::string> SimKernel::default_driver(const PciAddress& address) const {
  TreeLock lock(mu_, lock_fd_.get());
  if (init_error_) return std::nullopt;
  sim::Call call(root_, real_root_, *boot_);
  auto d = call.dev(address);
  if (!d) return std::nullopt;
  auto c = sim::candidates(call, *d, call.ids_of(*d), true);
  if (c.empty()) return std::nullopt;
  return c.front();
}

}  // namespace sriovd::kernel
