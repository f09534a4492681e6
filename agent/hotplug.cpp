#include "agent/hotplug.h"

#include <fcntl.h>
#include <libudev.h>
#include <linux/if.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "net/rtnl.h"

namespace sriovd::agent {

namespace {

// The subsystems whose events can change what the model holds: PCI functions, and netdevs
// (a PF's netdev appearing or being renamed changes its device object and VF attributes).
bool relevant(const UEvent& e) { return e.subsystem == "pci" || e.subsystem == "net"; }

// A unix datagram socket bound at `path` (a file under the sim tree's .sriovd-sim/), replacing
// one a daemon that died left there.
Result<UniqueFd> bind_sim_socket(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return Error::sys(errno, "hotplug: unix datagram socket");
  // sun_path holds 107 bytes; a deeper root is reached through the directory's fd (the
  // simulated kernel does the same to send).
  UniqueFd dirfd;
  std::string where = path.string();
  if (where.size() >= sizeof(sockaddr_un::sun_path)) {
    dirfd = UniqueFd(::open(path.parent_path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dirfd) return Error::sys(errno, "hotplug: opening " + path.parent_path().string());
    where = "/proc/self/fd/" + std::to_string(dirfd.get()) + "/" + path.filename().string();
  }
  ::unlink(where.c_str());  // left by a daemon that died
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, where.c_str(), where.size() + 1);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    return Error::sys(errno, "hotplug: binding " + path.string());
  int size = 8 << 20;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  return fd;
}

// The PCI function of a netdev: class/net/<netdev>/device links to it (virtual netdevs have
// no such link, and netdevs of other buses link elsewhere).
std::optional<PciAddress> function_of(const std::string& sysfs_root, const std::string& ifname) {
  if (ifname.empty() || ifname.find('/') != std::string::npos || ifname == "." || ifname == "..") return std::nullopt;
  std::error_code ec;
  auto target = std::filesystem::read_symlink(std::filesystem::path(sysfs_root) / "class/net" / ifname / "device", ec);
  if (ec) return std::nullopt;
  return PciAddress::parse(target.filename().string());
}

}  // namespace

struct HotplugMonitor::Udev {
  udev* ctx = nullptr;
  udev_monitor* mon = nullptr;
  ~Udev() {
    if (mon) udev_monitor_unref(mon);
    if (ctx) udev_unref(ctx);
  }
};

const char* to_string(HotplugSource s) {
  switch (s) {
    case HotplugSource::udev: return "udev";
    case HotplugSource::kernel: return "kernel";
    case HotplugSource::sim: return "sim";
  }
  return "?";
}

HotplugSource detect_hotplug_source() {
  struct stat st;
  return ::stat("/run/udev/control", &st) == 0 ? HotplugSource::udev : HotplugSource::kernel;
}

Result<std::unique_ptr<HotplugMonitor>> HotplugMonitor::start(Agent& agent, HotplugSource source,
                                                              const std::string& sysfs_root) {
  std::unique_ptr<HotplugMonitor> m(new HotplugMonitor(agent, source));
  m->stop_fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!m->stop_fd_) return Error::sys(errno, "hotplug: eventfd");
  switch (source) {
    case HotplugSource::udev: {
      m->udev_ = std::make_unique<Udev>();
      m->udev_->ctx = udev_new();
      if (!m->udev_->ctx) return Error::sys(ENOMEM, "hotplug: udev_new");
      m->udev_->mon = udev_monitor_new_from_netlink(m->udev_->ctx, "udev");
      if (!m->udev_->mon) return Error::sys(errno ? errno : EPROTO, "hotplug: udev monitor on the udev source");
      udev_monitor_filter_add_match_subsystem_devtype(m->udev_->mon, "pci", nullptr);
      udev_monitor_filter_add_match_subsystem_devtype(m->udev_->mon, "net", nullptr);
      udev_monitor_set_receive_buffer_size(m->udev_->mon, 8 << 20);
      if (int r = udev_monitor_enable_receiving(m->udev_->mon); r < 0)
        return Error::sys(-r, "hotplug: enabling the udev monitor");
      break;
    }
    case HotplugSource::kernel: {
      UniqueFd fd(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_KOBJECT_UEVENT));
      if (!fd) return Error::sys(errno, "hotplug: NETLINK_KOBJECT_UEVENT socket");
      // A burst (128 VFs: ~500 events) must fit while the applier is busy; FORCE needs
      // CAP_NET_ADMIN, which the daemon has on a real host; else the plain limit applies.
      int size = 8 << 20;
      if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
        ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
      sockaddr_nl sa{};
      sa.nl_family = AF_NETLINK;
      sa.nl_groups = 1;  // the kernel's uevent multicast group (udevd listens on 2)
      if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
        return Error::sys(errno, "hotplug: binding the kernel uevent socket");
      m->fd_ = std::move(fd);
      break;
    }
    case HotplugSource::sim: {
      const auto path = std::filesystem::path(sysfs_root) / ".sriovd-sim" / "uevent.sock";
      auto fd = bind_sim_socket(path);
      if (!fd) return std::move(fd).error();
      m->fd_ = std::move(*fd);
      m->sim_path_ = path.string();
      break;
    }
  }
  m->sysfs_root_ = sysfs_root;
  if (source == HotplugSource::sim) {
    const auto path = std::filesystem::path(sysfs_root) / ".sriovd-sim" / "rtnl.sock";
    auto fd = bind_sim_socket(path);
    if (!fd) return std::move(fd).error();
    m->link_fd_ = std::move(*fd);
    m->sim_link_path_ = path.string();
  } else {
    UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE));
    if (!fd) return Error::sys(errno, "hotplug: NETLINK_ROUTE socket");
    int size = 1 << 20;
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
      ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    sa.nl_groups = RTMGRP_LINK;
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
      return Error::sys(errno, "hotplug: binding a NETLINK_ROUTE socket to RTNLGRP_LINK");
    m->link_fd_ = std::move(fd);
  }
  HotplugMonitor* raw = m.get();
  m->reader_ = std::thread([raw] { raw->read_loop(); });
  m->applier_ = std::thread([raw] { raw->apply_loop(); });
  return m;
}

HotplugMonitor::HotplugMonitor(Agent& agent, HotplugSource source) : agent_(agent), source_(source) {}

HotplugMonitor::~HotplugMonitor() { stop(); }

void HotplugMonitor::stop() {
  {
    MutexLock lock(mu_);
    if (stopping_ && !reader_.joinable() && !applier_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (stop_fd_) {
    uint64_t one = 1;
    (void)!::write(stop_fd_.get(), &one, sizeof one);
  }
  if (reader_.joinable()) reader_.join();
  if (applier_.joinable()) applier_.join();
  for (std::string* path : {&sim_path_, &sim_link_path_}) {
    if (path->empty()) continue;
    std::error_code ec;
    std::filesystem::remove(*path, ec);
    path->clear();
  }
}

void HotplugMonitor::queue(const PciAddress& a) {
  {
    MutexLock lock(mu_);
    pending_[a] = std::nullopt;  // unnumbered: always read again
  }
  cv_.notify_one();
}

void HotplugMonitor::take_link(const net::LinkMessage& m) {
  if (m.type == RTM_DELLINK) {
    links_.erase(m.ifindex);  // the netdev's uevent says it is gone
    return;
  }
  LinkSeen now{m.ifname, m.carrier, m.operstate, m.flags & (IFF_UP | IFF_RUNNING | IFF_LOWER_UP)};
  auto [it, added] = links_.try_emplace(m.ifindex, now);
  if (!added) {
    if (it->second == now) return;  // a notification about something else (VF attributes, stats)
    it->second = now;
  }
  auto a = function_of(sysfs_root_, m.ifname);
  if (!a) return;
  spdlog::debug("hotplug: link {} (ifindex {}): carrier {}, operstate {}", m.ifname, m.ifindex,
                m.carrier ? (*m.carrier ? "on" : "off") : "?", m.operstate ? net::operstate_name(*m.operstate) : "?");
  link_changes_.fetch_add(1, std::memory_order_relaxed);
  queue(*a);
}

bool HotplugMonitor::read_links() {
  // A link notification carries the link's stats too: a few KiB at most.
  alignas(nlmsghdr) uint8_t buf[32768];
  for (;;) {
    sockaddr_storage from{};
    socklen_t fromlen = sizeof from;
    ssize_t n = ::recvfrom(link_fd_.get(), buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC,
                           reinterpret_cast<sockaddr*>(&from), &fromlen);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return true;
      if (errno == ENOBUFS) {
        spdlog::warn("hotplug: link notifications were lost (socket overflow); rescanning the host");
        MutexLock lock(mu_);
        rescan_ = true;
        cv_.notify_one();
        continue;
      }
      spdlog::error("hotplug: reading link notifications: {}", std::strerror(errno));
      return false;
    }
    if (source_ != HotplugSource::sim) {
      auto* nl = reinterpret_cast<const sockaddr_nl*>(&from);
      if (from.ss_family != AF_NETLINK || nl->nl_pid != 0) continue;  // only the kernel's
    }
    if (static_cast<size_t>(n) > sizeof buf) continue;  // truncated: not one we can read
    auto msgs = net::split_messages(net::ByteView(buf, static_cast<size_t>(n)));
    if (!msgs) {
      spdlog::debug("hotplug: link notification ignored: {}", msgs.error().message);
      continue;
    }
    for (const auto& msg : *msgs) {
      auto link = net::decode_link(msg);
      if (!link) {
        spdlog::debug("hotplug: link notification ignored: {}", link.error().message);
        continue;
      }
      take_link(*link);
    }
  }
}

void HotplugMonitor::take(const UEvent& e) {
  seen_.fetch_add(1, std::memory_order_relaxed);
  std::optional<PciAddress> a;
  if (relevant(e)) a = e.pci_function();
  {
    MutexLock lock(mu_);
    if (e.seqnum) taken_seq_ = std::max(taken_seq_, *e.seqnum);
    // An event with nothing to read again still wakes the applier: it moves handled_seqnum().
    if (!a && !e.seqnum) return;
    if (a) {
      spdlog::debug("hotplug: {} {} ({})", e.action, e.devpath, e.subsystem);
      // The newest event of the function counts; one without a number always does.
      auto [it, added] = pending_.try_emplace(*a, e.seqnum);
      if (!added && it->second) it->second = e.seqnum ? std::max(*it->second, *e.seqnum) : e.seqnum;
    }
  }
  cv_.notify_one();
}

bool HotplugMonitor::read_datagrams() {
  char buf[kMaxUeventBytes + 1];
  for (;;) {
    sockaddr_storage from{};
    socklen_t fromlen = sizeof from;
    ssize_t n = ::recvfrom(fd_.get(), buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &fromlen);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return true;
      if (errno == ENOBUFS) {
        // The kernel dropped events: what they said is unknown, so read everything again.
        spdlog::warn("hotplug: uevents were lost (socket overflow); rescanning the host");
        MutexLock lock(mu_);
        rescan_ = true;
        cv_.notify_one();
        continue;
      }
      spdlog::error("hotplug: reading uevents: {}", std::strerror(errno));
      return false;
    }
    if (source_ == HotplugSource::kernel) {
      // Only the kernel (port 0) speaks for the kernel: a process of the host may multicast to
      // the group too.
      auto* nl = reinterpret_cast<const sockaddr_nl*>(&from);
      if (from.ss_family != AF_NETLINK || nl->nl_pid != 0) continue;
    }
    if (static_cast<size_t>(n) > kMaxUeventBytes) continue;
    auto e = parse_uevent(std::string_view(buf, static_cast<size_t>(n)));
    if (!e) {
      spdlog::debug("hotplug: ignored: {}", e.error().message);
      continue;
    }
    take(*e);
  }
}

bool HotplugMonitor::read_udev() {
  while (udev_device* d = udev_monitor_receive_device(udev_->mon)) {
    UEvent e;
    auto s = [](const char* p) { return p ? std::string(p) : std::string(); };
    e.action = s(udev_device_get_action(d));
    e.devpath = s(udev_device_get_devpath(d));
    e.subsystem = s(udev_device_get_subsystem(d));
    if (const char* drv = udev_device_get_driver(d)) e.driver = drv;
    for (udev_list_entry* p = udev_device_get_properties_list_entry(d); p; p = udev_list_entry_get_next(p))
      e.env.emplace(s(udev_list_entry_get_name(p)), s(udev_list_entry_get_value(p)));
    e.seqnum = udev_device_get_seqnum(d);
    udev_device_unref(d);
    take(e);
  }
  return true;
}

void HotplugMonitor::read_loop() {
  const int fd = udev_ ? udev_monitor_get_fd(udev_->mon) : fd_.get();
  // epoll rather than poll: the two descriptors are registered once, not on every wait (the
  // loop waits once per burst of uevents, a few times per change).
  UniqueFd ep(::epoll_create1(EPOLL_CLOEXEC));
  epoll_event source{}, stop{}, links{};
  source.events = EPOLLIN;
  source.data.fd = fd;
  stop.events = EPOLLIN;
  stop.data.fd = stop_fd_.get();
  links.events = EPOLLIN;
  links.data.fd = link_fd_.get();
  if (!ep || ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &source) != 0 ||
      ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, stop_fd_.get(), &stop) != 0 ||
      (link_fd_ && ::epoll_ctl(ep.get(), EPOLL_CTL_ADD, link_fd_.get(), &links) != 0)) {
    spdlog::error("hotplug: epoll: {}; hotplug stops", std::strerror(errno));
    return;
  }
  for (;;) {
    epoll_event ev[3];
    int r = ::epoll_wait(ep.get(), ev, 3, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      spdlog::error("hotplug: epoll_wait: {}", std::strerror(errno));
      return;
    }
    uint32_t events = 0;
    for (int i = 0; i < r; ++i) {
      if (ev[i].data.fd == stop_fd_.get()) return;
      if (ev[i].data.fd == link_fd_.get()) {
        // EPOLLERR on netlink is ENOBUFS, which recv reports and clears.
        if (!read_links()) {
          spdlog::error("hotplug: the link notification source failed; hotplug stops");
          return;
        }
        continue;
      }
      events |= ev[i].events;
    }
    if (!events) continue;
    if (events & EPOLLIN) {
      if (!(udev_ ? read_udev() : read_datagrams())) return;
    } else if (events & (EPOLLERR | EPOLLHUP)) {
      if (events & EPOLLERR) {
        // ENOBUFS is reported as an error on netlink sockets: recv clears it.
        if (!udev_ && read_datagrams()) continue;
      }
      spdlog::error("hotplug: the uevent source failed; hotplug stops");
      return;
    }
  }
}

void HotplugMonitor::apply_loop() {
  for (;;) {
    std::map<PciAddress, std::optional<uint64_t>> batch;
    bool rescan = false;
    uint64_t through = 0;
    {
      MutexLock lock(mu_);
      cv_.wait(lock, [&]() SRIOVD_REQUIRES(mu_) {
        return stopping_ || rescan_ || !pending_.empty() || taken_seq_ > handled_seq_.load();
      });
      if (stopping_) return;
      batch.swap(pending_);
      std::swap(rescan, rescan_);
      through = taken_seq_;
    }
    if (!rescan && batch.empty()) {
      handled_seq_.store(through);
      continue;
    }
    const auto t0 = std::chrono::steady_clock::now();
    Result<void> r = ok();
    if (rescan) {
      r = agent_.refresh();
    } else {
      r = agent_.update_devices(batch);
    }
    updates_.fetch_add(1, std::memory_order_relaxed);
    spdlog::debug("hotplug: {} in {:.2f} ms",
                  rescan ? "full rescan" : std::to_string(batch.size()) + " function(s) updated",
                  std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    if (!r) spdlog::warn("hotplug: updating the host model: {}", r.error().message);
    handled_seq_.store(through);
  }
}

}  // namespace sriovd::agent
