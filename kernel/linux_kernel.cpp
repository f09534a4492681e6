#include "kernel/linux_kernel.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "kernel/open_files.h"
#include "net/devlink.h"
#include "net/rtnl.h"

namespace sriovd::kernel {
namespace {

using net::Bytes;
using net::ByteView;

bool has_dotdot(std::string_view p) {
  size_t pos = 0;
  while (pos <= p.size()) {
    size_t end = p.find('/', pos);
    if (end == std::string_view::npos) end = p.size();
    if (p.substr(pos, end - pos) == "..") return true;
    pos = end + 1;
  }
  return false;
}

std::string describe(const VfConfig& c) {
  std::string s;
  auto add = [&](const std::string& part) { s += (s.empty() ? "" : ", ") + part; };
  if (c.mac) add("mac " + c.mac->to_string());
  if (c.vlan) {
    std::string v = "vlan " + std::to_string(*c.vlan);
    if (c.qos) v += " qos " + std::to_string(*c.qos);
    if (c.vlan_proto) {
      char proto[8];
      std::snprintf(proto, sizeof proto, "0x%04x", *c.vlan_proto);
      v += std::string(" proto ") + proto;
    }
    add(v);
  }
  if (c.max_tx_rate_mbps) add("max_tx_rate " + std::to_string(*c.max_tx_rate_mbps));
  if (c.min_tx_rate_mbps) add("min_tx_rate " + std::to_string(*c.min_tx_rate_mbps));
  if (c.spoofchk) add(std::string("spoofchk ") + (*c.spoofchk ? "on" : "off"));
  if (c.trust) add(std::string("trust ") + (*c.trust ? "on" : "off"));
  if (c.link_state) {
    static const char* const names[] = {"auto", "enable", "disable"};
    auto i = static_cast<unsigned>(*c.link_state);
    add(std::string("link_state ") + (i < 3 ? names[i] : "?"));
  }
  return s;
}

// The one RTM_NEWLINK answering an RTM_GETLINK.
Result<net::LinkMessage> one_link(const std::vector<Bytes>& replies) {
  for (const Bytes& m : replies) {
    auto link = net::decode_link(m);
    if (!link) return std::move(link).error();
    if (link->type == RTM_NEWLINK) return link;
  }
  return Error::sys(EBADMSG, "RTM_GETLINK answered without RTM_NEWLINK");
}

Result<net::LinkMessage> getlink(net::RtnlSocket& sock, const std::string& ifname, uint32_t ext_mask) {
  auto req = net::build_getlink(std::string_view(ifname), ext_mask);
  if (!req) return std::move(req).error();
  auto replies = sock.transact(std::move(*req));
  if (!replies) return std::move(replies).error();
  return one_link(*replies);
}

}  // namespace

Result<std::unique_ptr<LinuxKernel>> LinuxKernel::open(const std::filesystem::path& sysfs_root, Options options) {
  int fd = ::open(sysfs_root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Error::sys(errno, "opening sysfs root " + sysfs_root.string());
  return std::unique_ptr<LinuxKernel>(new LinuxKernel(sysfs_root, UniqueFd(fd), std::move(options)));
}

Result<net::RtnlSocket*> LinuxKernel::socket() const {
  if (!sock_) {
    auto s = net::RtnlSocket::open(options_.netlink_timeout);
    if (!s) return std::move(s).error();
    sock_.emplace(std::move(*s));
  }
  return &*sock_;
}

Result<void> LinuxKernel::write_attr(const std::string& relpath, std::string_view value) {
  const std::string path = (root_path_ / relpath).string();
  if (relpath.empty() || relpath.front() == '/' || has_dotdot(relpath)) {
    Error e = Error::make(ErrorCode::invalid, "sysfs attribute path \"" + relpath + "\" is not relative to the root");
    e.errnum = EINVAL;
    return e;
  }
  const std::string what = "writing \"" + std::string(value) + "\" to " + path;
  // No O_CREAT: an attribute that does not exist is ENOENT, as from the kernel; no O_TRUNC:
  // sysfs has nothing to truncate.
  UniqueFd fd(::openat(root_.get(), relpath.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return Error::sys(errno, what);
  ssize_t n;
  do {
    n = ::write(fd.get(), value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Error::sys(errno, what);
  if (static_cast<size_t>(n) != value.size())
    return Error::sys(EIO, what + " (" + std::to_string(n) + " of " + std::to_string(value.size()) + " bytes taken)");
  return {};
}

Result<std::vector<VfInfo>> LinuxKernel::get_vfs(const std::string& pf_ifname) {
  const std::string what = "reading VFs of " + pf_ifname;
  MutexLock lock(sock_mu_);
  auto sock = socket();
  if (!sock) return std::move(sock).error().context(what);
  net::RtnlSocket& s = **sock;

  auto full = getlink(s, pf_ifname, RTEXT_FILTER_VF);
  if (full && (!full->num_vf || full->vfs.size() >= *full->num_vf)) return std::move(full->vfs);
  // Either the kernel could not fit every VF with its counters into one message (EMSGSIZE; an
  // IFLA_VFINFO_LIST past 64 KiB, the nest length's limit, also reads as malformed), or some VFs
  // are missing. Without counters each entry is about a third of the size.
  if (!full && full.error().errnum != EMSGSIZE && full.error().errnum != EBADMSG)
    return std::move(full).error().context(what);
  auto lean = getlink(s, pf_ifname, RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS);
  if (!lean) {
    if (full) return std::move(full->vfs);
    return std::move(lean).error().context(what);
  }
  if (full && full->vfs.size() >= lean->vfs.size()) return std::move(full->vfs);
  return std::move(lean->vfs);
}

Result<void> LinuxKernel::set_vf(const std::string& pf_ifname, uint32_t vf, const VfConfig& config) {
  if (config == VfConfig{}) return {};
  const std::string what = "setting VF " + std::to_string(vf) + " of " + pf_ifname + " (" + describe(config) + ")";
  if (auto r = check_vf_vlan_fields(config); !r) return std::move(r).error().context(what);
  MutexLock lock(sock_mu_);
  auto sock = socket();
  if (!sock) return std::move(sock).error().context(what);
  net::RtnlSocket& s = **sock;

  VfConfig c = config;
  int ifindex = 0;
  if (c.min_tx_rate_mbps && !c.max_tx_rate_mbps) {
    // IFLA_VF_RATE sets both rates: keep the current max, as `ip link set ... min_tx_rate` does.
    auto link = getlink(s, pf_ifname, RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS);
    if (!link) return std::move(link).error().context(what + ": reading the current max_tx_rate");
    ifindex = link->ifindex;
    c.max_tx_rate_mbps = 0;  // a VF the PF does not report: the kernel will judge the index
    for (const VfInfo& v : link->vfs)
      if (v.index == vf) c.max_tx_rate_mbps = v.config.max_tx_rate_mbps.value_or(0);
  } else {
    ifindex = static_cast<int>(::if_nametoindex(pf_ifname.c_str()));
    if (ifindex == 0) return Error::sys(errno == 0 ? ENODEV : errno, what + ": no netdev " + pf_ifname);
  }
  auto req = net::build_set_vf(ifindex, vf, c);
  if (!req) return std::move(req).error().context(what);
  auto r = s.transact(std::move(*req));
  if (!r) return std::move(r).error().context(what);
  return {};
}

Result<std::vector<std::string>> LinuxKernel::get_altnames(const std::string& ifname) {
  const std::string what = "reading the altnames of " + ifname;
  MutexLock lock(sock_mu_);
  auto sock = socket();
  if (!sock) return std::move(sock).error().context(what);
  auto link = getlink(**sock, ifname, 0);
  if (!link) return std::move(link).error().context(what);
  return std::move(link->altnames);
}

Result<void> LinuxKernel::set_mtu(const std::string& ifname, uint32_t mtu) {
  const std::string what = "setting the MTU of " + ifname + " to " + std::to_string(mtu);
  const int ifindex = static_cast<int>(::if_nametoindex(ifname.c_str()));
  if (ifindex == 0) return Error::sys(errno == 0 ? ENODEV : errno, what + ": no netdev " + ifname);
  auto req = net::build_set_mtu(ifindex, mtu);
  if (!req) return std::move(req).error().context(what);
  MutexLock lock(sock_mu_);
  auto sock = socket();
  if (!sock) return std::move(sock).error().context(what);
  auto r = (*sock)->transact(std::move(*req));
  if (!r) return std::move(r).error().context(what);
  return {};
}

Result<std::pair<net::RtnlSocket*, uint16_t>> LinuxKernel::devlink() const {
  if (!genl_) {
    auto s = net::RtnlSocket::open(options_.netlink_timeout, NETLINK_GENERIC);
    if (!s) return std::move(s).error();
    genl_.emplace(std::move(*s));
  }
  if (devlink_family_ == 0) {
    auto req = net::build_get_family("devlink");
    if (!req) return std::move(req).error();
    auto r = genl_->transact(std::move(*req));
    // ENOENT: no devlink in this kernel (CONFIG_NET_DEVLINK off).
    if (!r) return std::move(r).error().context("looking up the devlink generic netlink family");
    if (r->empty()) return Error::sys(EBADMSG, "the generic netlink controller answered nothing for devlink");
    auto fam = net::decode_family(r->front());
    if (!fam) return std::move(fam).error();
    devlink_family_ = fam->id;
  }
  return std::pair{&*genl_, devlink_family_};
}

Result<EswitchMode> LinuxKernel::get_eswitch_mode(const std::string& bus, const std::string& dev) {
  const std::string what = "devlink dev eswitch show " + bus + "/" + dev;
  MutexLock lock(genl_mu_);
  auto dl = devlink();
  if (!dl) return std::move(dl).error().context(what);
  auto req = net::build_eswitch_get(dl->second, bus, dev);
  if (!req) return std::move(req).error().context(what);
  auto r = dl->first->transact(std::move(*req));
  if (!r) return std::move(r).error().context(what);
  if (r->empty()) return Error::sys(EBADMSG, what + ": no answer");
  auto info = net::decode_eswitch(r->front(), dl->second);
  if (!info) return std::move(info).error().context(what);
  if (!info->mode) return Error::sys(EBADMSG, what + ": the answer has no mode");
  if (*info->mode > static_cast<uint16_t>(EswitchMode::switchdev))
    return Error::sys(EOPNOTSUPP, what + ": mode " + std::to_string(*info->mode) + " is neither legacy nor switchdev");
  return static_cast<EswitchMode>(*info->mode);
}

Result<void> LinuxKernel::set_eswitch_mode(const std::string& bus, const std::string& dev, EswitchMode mode) {
  const std::string what = std::string("devlink dev eswitch set ") + bus + "/" + dev + " mode " + to_string(mode);
  MutexLock lock(genl_mu_);
  auto dl = devlink();
  if (!dl) return std::move(dl).error().context(what);
  auto req = net::build_eswitch_set(dl->second, bus, dev, mode);
  if (!req) return std::move(req).error().context(what);
  auto r = dl->first->transact(std::move(*req));
  if (!r) return std::move(r).error().context(what);
  return {};
}

Result<bool> LinuxKernel::wait_carrier(const std::string& ifname, std::chrono::milliseconds timeout) {
  const std::string what = "waiting for a link on " + ifname;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto opened = net::RtnlSocket::open(options_.netlink_timeout);
  if (!opened) return std::move(opened).error().context(what);
  net::RtnlSocket& s = *opened;
  if (auto r = s.join(RTNLGRP_LINK); !r) return std::move(r).error().context(what);
  constexpr unsigned kIffLowerUp = 1U << 16;  // <linux/if.h> IFF_LOWER_UP, which <net/if.h> lacks
  // nullopt: no verdict yet from this state of the link.
  auto verdict = [](const net::LinkMessage& m) -> std::optional<bool> {
    if (!(m.flags & IFF_UP)) return false;
    if (m.flags & kIffLowerUp) return true;
    return std::nullopt;
  };
  int ifindex = 0;
  bool ask = true;
  for (;;) {
    if (ask) {
      auto link = getlink(s, ifname, 0);
      if (!link) return std::move(link).error().context(what);
      ifindex = link->ifindex;
      if (auto v = verdict(*link)) return *v;
      ask = false;
    }
    auto batch = s.notifications(deadline);
    if (!batch) {
      if (batch.error().errnum == ETIMEDOUT) return false;
      if (batch.error().errnum == ENOBUFS) {
        ask = true;  // some were lost: the state now is what counts
        continue;
      }
      return std::move(batch).error().context(what);
    }
    for (const Bytes& m : *batch) {
      nlmsghdr h;
      std::memcpy(&h, m.data(), sizeof h);
      if (h.nlmsg_type != RTM_NEWLINK && h.nlmsg_type != RTM_DELLINK) continue;
      auto link = net::decode_link(m);
      if (!link) return std::move(link).error().context(what + ": a link notification");
      if (link->ifindex != ifindex) continue;
      if (link->type == RTM_DELLINK) return Error::sys(ENODEV, what + ": the netdev went away");
      if (auto v = verdict(*link)) return *v;
    }
  }
}

Result<LinkFacts> LinuxKernel::get_link(const std::string& ifname) {
  const std::string what = "reading link facts of " + ifname;
  MutexLock lock(sock_mu_);
  auto sock = socket();
  if (!sock) return std::move(sock).error().context(what);
  net::RtnlSocket& s = **sock;
  auto link = getlink(s, ifname, 0);
  if (!link) return std::move(link).error().context(what);

  LinkFacts facts;
  facts.ifname = link->ifname.empty() ? ifname : link->ifname;
  facts.ifindex = link->ifindex;
  facts.up = (link->flags & IFF_UP) != 0;

  auto addrs = s.transact(net::build_getaddr_dump());
  if (!addrs) return std::move(addrs).error().context(what);
  for (const Bytes& m : *addrs) {
    auto a = net::decode_addr(m);
    // A malformed entry is an error, not skipped: a missed address could let an interlock pass.
    if (!a) return std::move(a).error().context(what);
    if (*a && (*a)->ifindex == facts.ifindex) facts.addresses.push_back((*a)->address);
  }

  auto routes = s.transact(net::build_getroute_dump());
  if (!routes) return std::move(routes).error().context(what);
  for (const Bytes& m : *routes) {
    auto r = net::decode_route(m);
    if (!r) return std::move(r).error().context(what);
    // Without strict checking the kernel dumps every table (and, for IPv6 on some kernels,
    // cached clones): count what `ip route show table main dev X` shows, less the routes the
    // kernel makes itself (the prefix route of each address, fe80::/64 on every IPv6 link):
    // those say nothing the addresses do not, and would mark every up link as in use.
    if (r->table != RT_TABLE_MAIN || (r->flags & RTM_F_CLONED) || r->protocol == RTPROT_KERNEL) continue;
    for (int oif : r->oifs) {
      if (oif == facts.ifindex) {
        ++facts.routes;
        break;
      }
    }
  }
  return facts;
}

Result<std::vector<std::string>> LinuxKernel::vfio_nodes(const PciAddress& address) {
  // The device's directory as the PCI bus lists it (pci/paths.h builds the same path for
  // readers; the seam sits below pci/, so it is spelled out here).
  const std::string dev = "bus/pci/devices/" + address.to_string();
  const std::string what = "finding the processes holding the VFIO nodes of " + address.to_string();
  if (::faccessat(root_.get(), dev.c_str(), F_OK, 0) != 0) return Error::sys(errno == ENOENT ? ENODEV : errno, what);
  std::vector<std::string> nodes;
  char target[4096];
  ssize_t n = ::readlinkat(root_.get(), (dev + "/iommu_group").c_str(), target, sizeof target - 1);
  if (n > 0) {
    std::string link(target, static_cast<size_t>(n));
    nodes.push_back((options_.dev_root / "vfio" / link.substr(link.rfind('/') + 1)).string());
  } else if (errno != ENOENT) {
    return Error::sys(errno, what + " (reading its iommu_group)");
  }
  // Kernels with VFIO device cdevs (CONFIG_VFIO_DEVICE_CDEV, 6.2+) list the device's node in
  // vfio-dev/: a user may hold that instead of the group.
  int fd = ::openat(root_.get(), (dev + "/vfio-dev").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    if (DIR* d = ::fdopendir(fd)) {
      while (const dirent* e = ::readdir(d))
        if (std::string_view(e->d_name).rfind("vfio", 0) == 0)
          nodes.push_back((options_.dev_root / "vfio/devices" / e->d_name).string());
      ::closedir(d);
    } else {
      ::close(fd);
    }
  }
  return nodes;
}

Result<std::vector<FileHolder>> LinuxKernel::vfio_holders(const PciAddress& address) {
  auto nodes = vfio_nodes(address);
  if (!nodes) return std::move(nodes).error();
  if (nodes->empty()) return std::vector<FileHolder>{};
  auto held = find_holders(options_.proc_root, *nodes);
  if (!held)
    return std::move(held).error().context("finding the processes holding the VFIO nodes of " + address.to_string());
  return held;
}

Result<std::map<PciAddress, std::vector<FileHolder>>> LinuxKernel::vfio_holders_of(
    const std::vector<PciAddress>& addresses) {
  // One scan of the process table for every node; each holder goes back to the function whose
  // node it holds (functions of one IOMMU group share theirs).
  std::multimap<std::string, PciAddress> owner;
  std::vector<std::string> all;
  for (const auto& a : addresses) {
    auto nodes = vfio_nodes(a);
    if (!nodes) {
      if (nodes.error().errnum == ENODEV) continue;
      return std::move(nodes).error();
    }
    for (auto& n : *nodes) {
      if (owner.find(n) == owner.end()) all.push_back(n);
      owner.emplace(std::move(n), a);
    }
  }
  std::map<PciAddress, std::vector<FileHolder>> out;
  if (all.empty()) return out;
  auto held = find_holders(options_.proc_root, all);
  if (!held) return std::move(held).error().context("finding the processes holding VFIO nodes");
  for (const auto& h : *held) {
    auto [from, to] = owner.equal_range(h.path);
    for (auto it = from; it != to; ++it) out[it->second].push_back(h);
  }
  return out;
}

}  // namespace sriovd::kernel
