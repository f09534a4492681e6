#include "sim/netdevs.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <map>

#include "pci/decode.h"
#include "sim/driver_core.h"
#include "sim/drivers.h"
#include "sim/file_io.h"
#include "sim/hotplug.h"
#include "sim/kstrtox.h"
#include "sim/reboot.h"
#include "sim/sim_tree.h"
#include "sim/sriov.h"
#include "sim/stores.h"

namespace sriovd::kernel::sim {

using namespace simio;

constexpr unsigned kIffUp = 0x1;  // IFF_UP

Result<unsigned> new_ifindex(Call& cx) {
  // net/core/dev.c dev_new_index(): the next number after the last one handed out that no
  // netdev has. Every netdev's ifindex is at most the last one handed out (at boot it is the
  // largest in the tree), so the next number is free: no netdev needs to be read.
  SimState& s = cx.mutable_state();
  s.last_ifindex = std::max(s.last_ifindex, 1u) + 1;
  return s.last_ifindex;
}

std::string free_eth_name(Call& cx) {
  // net/core/dev.c dev_alloc_name("eth%d"): the lowest free number.
  for (unsigned k = 0;; ++k) {
    std::string n = "eth" + std::to_string(k);
    if (!lexists(cx.at("class/net/" + n))) return n;
  }
}

std::string generated_mac(const PciAddress& a, uint8_t tag) {
  MacAddress m{0x02,
               tag,
               static_cast<uint8_t>(a.domain >> 8),
               static_cast<uint8_t>(a.domain),
               a.bus,
               static_cast<uint8_t>(a.device << 3 | a.function)};
  return m.to_string();
}

std::string primary_netdev(Call& cx, const Dev& d) {
  std::string best;
  unsigned best_port = UINT32_MAX;
  for (const auto& n : cx.netdevs_of(d)) {
    unsigned port = 0;
    if (auto t = read_text(d.in("net/" + n + "/dev_port")))
      port = static_cast<unsigned>(pci::parse_int(*t, 0, UINT32_MAX).value_or(0));
    if (port < best_port) best = n, best_port = port;
  }
  return best;
}

Result<void> add_netdev(Call& cx, const Dev& d, const NetdevRecord& n, bool exact) {
  simtree::NetdevSpec s;
  s.name = n.name;
  s.mac = n.mac;
  s.mtu = n.mtu;
  s.type = n.type;
  s.dev_port = n.dev_port;
  if (exact) {
    s.ifindex = n.ifindex;
    s.flags = n.flags;
    s.operstate = n.operstate;
    s.carrier = n.carrier;
  } else {
    // A netdev a driver registers is down until someone sets it up.
    auto i = new_ifindex(cx);
    if (!i) return std::move(i).error();
    s.ifindex = *i;
    s.flags = n.flags & ~kIffUp;
    s.operstate = "down";
    s.carrier = false;
  }
  if (auto r = simtree::add_netdev(cx.root(), d.addr, s); !r) return r;
  cx.uevent("add", d.dir / "net" / s.name, "net");
  return ok();
}

Result<void> add_netdevs_for(Call& cx, const std::string& drv, const Dev& d, const Ids& ids,
                             std::optional<unsigned> vf_index) {
  if ((ids.cls >> 16) != 0x02 || makes_no_netdev(drv)) return ok();
  if (auto pf = cx.physfn_of(d)) {
    auto pfd = cx.dev(*pf);
    if (!pfd) return std::move(pfd).error();
    auto index = vf_index ? vf_index : cx.vf_index_of(*pfd, d.addr);
    std::string base = primary_netdev(cx, *pfd);
    NetdevRecord n;
    n.name = base.empty() || !index ? free_eth_name(cx) : base + "v" + std::to_string(*index);
    if (lexists(cx.at("class/net/" + n.name))) n.name = free_eth_name(cx);
    n.mac = generated_mac(d.addr, 0x5f);
    if (index) {
      VfAttrs a = cx.load_vf(*pfd, *index);
      if (!a.mac.is_zero()) n.mac = a.mac.to_string();  // the PF tells the VF its admin MAC
    }
    return add_netdev(cx, d, n, false);
  }
  if (const BootDevice* b = cx.boot().find(d.addr); b && b->driver == drv) {
    for (const auto& n : b->netdevs)
      if (auto r = add_netdev(cx, d, n, false); !r) return r;
    return ok();
  }
  NetdevRecord n;
  n.name = free_eth_name(cx);
  n.mac = generated_mac(d.addr, 0x5e);
  return add_netdev(cx, d, n, false);
}

Result<void> remove_netdevs(Call& cx, const Dev& d) {
  const auto names = cx.netdevs_of(d);
  for (const auto& n : names) cx.uevent("remove", d.dir / "net" / n, "net");
  for (const auto& n : names)
    if (auto r = simtree::remove_netdev(cx.root(), n); !r) return r;
  return ok();
}

Result<Netdev> netdev(Call& cx, const std::string& ifname) {
  // rtnl_dev_get(): an unknown name is ENODEV.
  if (ifname.empty() || ifname.size() >= 16 || ifname.find('/') != std::string::npos || ifname == "." || ifname == "..")
    return Error::sys(ENODEV, "netdev \"" + ifname + "\"");
  if (cx.boot().plain_bus) {
    // class/net/<name> -> ../../devices/.../net/<name> and its device -> ../../../<BDF>:
    // relative links through the devices/ hierarchy, which holds directories only, so they are
    // followed lexically, and the function is the one its bus link names.
    auto link = read_link(cx.at("class/net/" + ifname));
    auto rel = link ? simtree::join_normal("class/net", *link) : std::nullopt;
    if (rel && rel->rfind("devices/", 0) == 0) {
      Netdev n{ifname, cx.at(*rel), std::nullopt};
      if (auto up = read_link(n.dir + "/device")) {
        if (auto devrel = simtree::join_normal(*rel, *up)) {
          const size_t slash = devrel->rfind('/');
          if (auto a = PciAddress::parse(std::string_view(*devrel).substr(slash == std::string::npos ? 0 : slash + 1)))
            if (auto d = cx.dev(*a); d && d->dir.native() == *devrel) n.pci = *d;
        }
        return n;
      }
      if (!is_dir(n.dir)) return Error::sys(ENODEV, "netdev \"" + ifname + "\"");
      return n;  // a netdev without a parent device
    }
  }
  auto dir = real_path(cx.at("class/net/" + ifname));
  if (!dir || !is_dir(*dir)) return Error::sys(ENODEV, "netdev \"" + ifname + "\"");
  Netdev n{ifname, dir->native(), std::nullopt};
  if (auto devdir = real_path(*dir / "device")) n.pci = cx.dev_at(*devdir);
  return n;
}

Result<std::vector<VfInfo>> get_vfs(Call& cx, const std::string& ifname) {
  auto n = netdev(cx, ifname);
  if (!n) return std::move(n).error();
  std::vector<VfInfo> out;
  // rtnl_fill_vf(): IFLA_NUM_VF is the parent's pci_num_vf(); VF entries only when the
  // driver has ndo_get_vf_config.
  if (!n->pci || !pf_ops(cx.driver_of(*n->pci))) return out;
  const unsigned count = cx.is_pf(*n->pci) ? cx.num_vfs(*n->pci) : 0;
  const json all = count ? cx.load_vfs_json(*n->pci) : json::object();
  out.reserve(count);
  static const json kNone = json::object();  // a VF nothing was set on
  std::string key;
  for (unsigned i = 0; i < count; ++i) {
    key = std::to_string(i);
    auto it = all.find(key);
    const json& j = it != all.end() && it->is_object() ? *it : kNone;
    out.push_back(VfInfo{i, to_config(vf_attrs_from_json(j)), vf_stats_from(j)});
  }
  return out;
}

namespace {

using SystemClock = std::chrono::system_clock;

int64_t epoch_ms(SystemClock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// Brings back the carrier of the netdev in `dir` once its time has come (see reinit_link);
// returns when it is due when that is later.
Result<std::optional<SystemClock::time_point>> settle_link(const std::string& dir) {
  auto t = read_text(dir + "/" + kLinkBackFile);
  if (!t) return std::optional<SystemClock::time_point>{};
  unsigned long long ms = 0;
  if (kstrtoull(trim(*t).c_str(), 10, &ms) != 0)
    return Error::sys(EIO, dir + "/" + kLinkBackFile + ": not a time: \"" + trim(*t) + "\"");
  const SystemClock::time_point back{std::chrono::milliseconds(ms)};
  if (SystemClock::now() < back) return std::optional<SystemClock::time_point>{back};
  // igb_watchdog_task(): link up, netif_carrier_on(); the operstate follows the carrier.
  if (auto r = write_text(dir + "/carrier", "1\n"); !r) return std::move(r).error();
  if (auto r = write_text(dir + "/operstate", "up\n"); !r) return std::move(r).error();
  if (::unlink((dir + "/" + kLinkBackFile).c_str()) != 0 && errno != ENOENT)
    return Error::sys(errno, "removing " + dir + "/" + kLinkBackFile);
  return std::optional<SystemClock::time_point>{};
}

// The netdev's flags and ifindex as its attributes show them (0 when unreadable).
unsigned long long netdev_flags(const std::string& dir) {
  unsigned long long flags = 0;
  if (auto t = read_text(dir + "/flags"); !t || kstrtoull(trim(*t).c_str(), 0, &flags) != 0) return 0;
  return flags;
}
int netdev_ifindex(const std::string& dir) {
  auto t = read_text(dir + "/ifindex");
  return t ? static_cast<int>(pci::parse_int(*t, 0, INT32_MAX).value_or(0)) : 0;
}

bool flags_up(const std::string& dir) { return (netdev_flags(dir) & kIffUp) != 0; }

}  // namespace

Result<void> reinit_link(Call& cx, const Dev& pf) {
  unsigned long long settle_ms = 0;
  if (auto t = read_text(cx.at(kLinkSettleFile))) kstrtoull(trim(*t).c_str(), 10, &settle_ms);
  if (settle_ms == 0) return ok();
  const auto back = SystemClock::now() + std::chrono::milliseconds(settle_ms);
  for (const auto& name : cx.netdevs_of(pf)) {
    const std::string dir = pf.in("net/" + name);
    if (!flags_up(dir)) continue;  // igb_sriov_reinit reopens only a running netdev
    if (auto r = write_text(dir + "/carrier", "0\n"); !r) return r;
    if (auto r = write_text(dir + "/operstate", "down\n"); !r) return r;
    if (auto r = write_text(dir + "/" + kLinkBackFile, std::to_string(epoch_ms(back)) + "\n"); !r) return r;
  }
  return ok();
}

Result<LinkState> link_state(Call& cx, const std::string& ifname) {
  auto n = netdev(cx, ifname);
  if (!n) return std::move(n).error();
  auto back = settle_link(n->dir);
  if (!back) return std::move(back).error();
  LinkState st;
  st.up = flags_up(n->dir);
  auto carrier = read_text(n->dir + "/carrier");
  st.carrier = carrier && trim(*carrier) == "1";
  st.back_at = *back;
  return st;
}

Result<LinkFacts> get_link(Call& cx, const std::string& ifname) {
  auto n = netdev(cx, ifname);
  if (!n) return std::move(n).error();
  if (auto r = settle_link(n->dir); !r) return std::move(r).error();
  LinkFacts f;
  f.ifname = ifname;
  f.ifindex = netdev_ifindex(n->dir);
  f.up = flags_up(n->dir);
  read_link_file(n->dir, f);
  return f;
}

Result<CarrierChange> set_carrier(Call& cx, const std::string& ifname, bool carrier) {
  constexpr uint32_t kIffRunning = 0x40, kIffLowerUp = 0x10000;  // include/uapi/linux/if.h
  constexpr uint8_t kOperDown = 2, kOperUp = 6;                  // IF_OPER_DOWN, IF_OPER_UP
  auto n = netdev(cx, ifname);
  if (!n) return std::move(n).error();
  if (!flags_up(n->dir)) return Error::sys(ENETDOWN, ifname + " is down: its carrier is not known until it is up");
  CarrierChange c;
  c.ifindex = netdev_ifindex(n->dir);
  c.flags = static_cast<uint32_t>(netdev_flags(n->dir)) | (carrier ? kIffRunning | kIffLowerUp : 0);
  c.operstate = carrier ? kOperUp : kOperDown;
  if (auto r = write_text(n->dir + "/carrier", carrier ? "1\n" : "0\n"); !r) return std::move(r).error();
  if (auto r = write_text(n->dir + "/operstate", carrier ? "up\n" : "down\n"); !r) return std::move(r).error();
  if (::unlink((n->dir + "/" + kLinkBackFile).c_str()) != 0 && errno != ENOENT)
    return Error::sys(errno, "removing " + n->dir + "/" + kLinkBackFile);
  return c;
}

Result<void> set_link_addresses(Call& cx, const std::string& ifname, const std::vector<std::string>& addresses,
                                size_t routes) {
  auto n = netdev(cx, ifname);
  if (!n) return std::move(n).error();
  return write_link_file(n->dir, addresses, routes);
}

Result<void> set_vf_stats(Call& cx, const std::string& ifname, uint32_t vf, const VfStats& st) {
  auto n = netdev(cx, ifname);
  if (!n) return std::move(n).error();
  if (!n->pci || !cx.is_pf(*n->pci) || vf >= cx.num_vfs(*n->pci))
    return Error::sys(EINVAL, ifname + ": no VF " + std::to_string(vf));
  const json s = to_json(st);
  return cx.save_vf(*n->pci, vf, cx.load_vf(*n->pci, vf), &s);
}

namespace {

// ndo_set_vf_vlan's checks (VLAN ID and QoS range, protocol, VF number) in the order the PF
// driver makes them: the first that fails, if any.
std::optional<Error> vlan_refusal(const PfOps& ops, const std::string& who, const std::string& vfs, uint32_t vlan,
                                  uint32_t qos, uint16_t proto, bool vf_ok, const auto& bad_vf) {
  const bool range_ok = vlan <= 4095 && qos <= 7;
  const bool proto_ok = proto == kEthP8021Q || (proto == kEthP8021AD && ops.qinq);
  auto bad_range = [&] {
    return Error::sys(EINVAL, who + "Invalid Port VLAN parameters for " + vfs + ", ID " + std::to_string(vlan) +
                                  ", QoS " + std::to_string(qos));
  };
  auto bad_proto = [&] {
    return Error::sys(EPROTONOSUPPORT, who + "VF VLAN protocol 0x" + hex(proto, 4) + " is not supported");
  };
  switch (ops.vlan_checks) {
    case VlanChecks::range_proto_vf:
      if (!range_ok) return bad_range();
      if (!proto_ok) return bad_proto();
      if (!vf_ok) return bad_vf();
      break;
    case VlanChecks::proto_vf_range:
      if (!proto_ok) return bad_proto();
      if (!vf_ok) return bad_vf();
      if (!range_ok) return bad_range();
      break;
    case VlanChecks::vf_range_proto:
      if (!vf_ok) return bad_vf();
      if (!range_ok) return bad_range();
      if (!proto_ok) return bad_proto();
      break;
  }
  return std::nullopt;
}

}  // namespace

// The attributes in do_setvfinfo's order, each checked and saved in turn (a failure leaves the
// earlier ones applied): one function so the order is read top to bottom.
Result<void> set_vf(Call& cx, const std::string& ifname, uint32_t vf, const VfConfig& c) {
  if (c == VfConfig{}) return ok();
  // Before the netdev is looked up, as LinuxKernel refuses it before sending anything.
  if (auto r = check_vf_vlan_fields(c); !r) return r;
  auto n = netdev(cx, ifname);
  if (!n) return std::move(n).error();
  if (auto r = settle_link(n->dir); !r) return std::move(r).error();
  const std::optional<std::string> drv = n->pci ? cx.driver_of(*n->pci) : std::nullopt;
  const PfOps* ops = pf_ops(drv);
  const std::string who = (drv ? *drv : std::string("netdev")) + " " + ifname + ": ";
  if (c == VfConfig{}) return ok();
  if (vf >= static_cast<uint32_t>(INT_MAX)) return Error::sys(EINVAL, who + "VF number out of range");
  if (!ops)
    return Error::sys(EOPNOTSUPP, who + "the driver has no ndo_set_vf_* (not an SR-IOV PF netdev the sim knows)");
  const Dev& pf = *n->pci;
  const unsigned count = cx.is_pf(pf) ? cx.num_vfs(pf) : 0;
  const bool vf_ok = vf < count;
  const std::string vfs = "VF " + std::to_string(vf);
  auto bad_vf = [&] {
    return Error::sys(
        EINVAL, who + "Invalid VF Identifier " + std::to_string(vf) + " (" + std::to_string(count) + " VFs enabled)");
  };
  const json record = vf_ok ? cx.load_vf_json(pf, vf) : json::object();
  VfAttrs a = vf_attrs_from_json(record);
  const json stats = record.contains("stats") ? record["stats"] : json();
  // Each applied attribute is saved at once: a later failure leaves it applied.
  auto save = [&]() { return cx.save_vf(pf, vf, a, &stats); };

  if (c.mac) {
    // ice_set_vf_mac, i40e_ndo_set_vf_mac, igb/ixgbe_ndo_set_vf_mac, mlx5_eswitch_set_vport_mac:
    // a multicast (or broadcast) address is EINVAL; all zeroes clears the admin MAC.
    if (c.mac->is_multicast()) return Error::sys(EINVAL, who + c.mac->to_string() + " not a valid unicast address");
    if (!vf_ok) return bad_vf();
    a.mac = *c.mac;
    if (auto r = save(); !r) return r;
    if (ops->live_mac && !a.mac.is_zero()) {
      // ice resets the VF; iavf comes back with the new MAC.
      if (auto vfa = cx.virtfns(pf); vfa.count(vf))
        if (auto vd = cx.dev(vfa[vf]))
          for (const auto& nd : cx.netdevs_of(*vd))
            if (auto r = write_text(vd->in("net/" + nd + "/address"), a.mac.to_string() + "\n"); !r) return r;
    }
  }
  if (c.vlan || c.qos || c.vlan_proto) {
    const uint32_t vlan = c.vlan.value_or(0), qos = c.qos.value_or(0);
    const uint16_t proto = c.vlan_proto.value_or(kEthP8021Q);
    if (auto e = vlan_refusal(*ops, who, vfs, vlan, qos, proto, vf_ok, bad_vf)) return std::move(*e);
    a.vlan = static_cast<uint16_t>(vlan);
    a.qos = static_cast<uint8_t>(qos);
    a.proto = proto;
    if (auto r = save(); !r) return r;
  }
  if (c.max_tx_rate_mbps || c.min_tx_rate_mbps) {
    const uint32_t max = c.max_tx_rate_mbps.value_or(a.max_rate), min = c.min_tx_rate_mbps.value_or(a.min_rate);
    // rtnl_set_vf_rate(): a maximum below the minimum is EINVAL before the driver sees it.
    if (max && max < min)
      return Error::sys(
          EINVAL, who + vfs + ": max_tx_rate " + std::to_string(max) + " is below min_tx_rate " + std::to_string(min));
    if (!vf_ok) return bad_vf();
    if (*drv == "igb") {
      // igb_ndo_set_vf_bw(): no rate limits but on the 82576, then no minimum, then the VF, the
      // link (E1000_STATUS_LU: the PF netdev's carrier) and the link speed, all EINVAL.
      if (!igb_limits_vf_rates(cx.ids_of(pf).device))
        return Error::sys(EOPNOTSUPP, who + "VF transmit rate limits need an 82576 (device 0x" +
                                          hex(cx.ids_of(pf).device, 4) + " has none)");
      if (min) return Error::sys(EINVAL, who + vfs + ": min_tx_rate " + std::to_string(min) + " is not supported");
      auto carrier = read_text(n->dir + "/carrier");
      if (!carrier || trim(*carrier) != "1")
        return Error::sys(EINVAL, who + vfs + ": max_tx_rate " + std::to_string(max) + " while the link is down");
      unsigned long long speed = 1000;  // igb_link_mbps(): 1000 on a gigabit link
      if (auto t = read_text(n->dir + "/speed")) kstrtoull(trim(*t).c_str(), 10, &speed);
      if (max > speed)
        return Error::sys(EINVAL, who + vfs + ": max_tx_rate " + std::to_string(max) + " exceeds the link speed " +
                                      std::to_string(speed));
    }
    if (min && !ops->min_rate)
      return Error::sys(
          EINVAL, who + "Invalid min tx rate (" + std::to_string(min) + ") (greater than 0) specified for " + vfs);
    a.max_rate = max;
    a.min_rate = min;
    if (auto r = save(); !r) return r;
  }
  if (c.spoofchk) {
    if (!vf_ok) return bad_vf();
    a.spoofchk = *c.spoofchk;
    if (auto r = save(); !r) return r;
  }
  if (c.link_state) {
    if (!ops->link_state) return Error::sys(EOPNOTSUPP, who + "setting a VF link state is not supported");
    if (!vf_ok) return bad_vf();
    if (static_cast<unsigned>(*c.link_state) > 2)
      return Error::sys(EINVAL, who + vfs + ": link state " + std::to_string(static_cast<unsigned>(*c.link_state)));
    a.link = *c.link_state;
    if (auto r = save(); !r) return r;
  }
  if (c.trust) {
    if (!vf_ok) return bad_vf();
    a.trust = *c.trust;
    if (auto r = save(); !r) return r;
  }
  return ok();
}

}  // namespace sriovd::kernel::sim

namespace sriovd::kernel::sim {

uint32_t max_mtu(const std::string& driver) {
  static const std::map<std::string, uint32_t, std::less<>> kMax = {
      {"mlx5_core", 9978}, {"ice", 9702}, {"i40e", 9702},  {"iavf", 9702},       {"ixgbe", 9710},
      {"ixgbevf", 9710},   {"igb", 9216}, {"igbvf", 9216}, {"netdevsim", 65535},
  };
  auto it = kMax.find(driver);
  return it == kMax.end() ? 9000 : it->second;
}

Result<void> set_mtu(Call& cx, const std::string& ifname, uint32_t mtu) {
  auto n = netdev(cx, ifname);
  if (!n) return std::move(n).error();
  const std::optional<std::string> drv = n->pci ? cx.driver_of(*n->pci) : std::nullopt;
  constexpr uint32_t kMinMtu = 68;  // ETH_MIN_MTU
  const uint32_t most = max_mtu(drv.value_or(""));
  // dev_validate_mtu(), net/core/dev.c
  if (mtu < kMinMtu) return Error::sys(EINVAL, ifname + ": mtu less than device minimum");
  if (mtu > most)
    return Error::sys(EINVAL, ifname + ": mtu greater than device maximum (" + std::to_string(most) + ")");
  return write_text(n->dir + "/mtu", std::to_string(mtu) + "\n");
}

constexpr const char* kAltnamesFile = ".sriovd-sim-altnames";

Result<std::vector<std::string>> get_altnames(Call& cx, const std::string& ifname) {
  auto n = netdev(cx, ifname);
  if (!n) return std::move(n).error();
  std::vector<std::string> out;
  auto text = read_text(n->dir + "/" + kAltnamesFile);
  if (!text) return out;
  std::string line;
  for (char c : *text) {
    if (c != '\n') {
      line += c;
    } else if (!line.empty()) {
      out.push_back(std::move(line));
      line.clear();
    }
  }
  return out;
}

Result<void> add_altname(Call& cx, const std::string& ifname, const std::string& alt) {
  // net/core/rtnetlink.c rtnl_alt_ifname / dev_valid_name: 1..ALTIFNAMSIZ-1 bytes, no '/', ':'
  // or whitespace, not "." or "..".
  if (alt.empty() || alt.size() > 127 || alt == "." || alt == ".." || alt.find_first_of("/: \t\n") != std::string::npos)
    return Error::sys(EINVAL, "altname \"" + alt + "\": not a valid interface name");
  auto n = netdev(cx, ifname);
  if (!n) return std::move(n).error();
  if (netdev(cx, alt)) return Error::sys(EEXIST, "altname \"" + alt + "\": a netdev has that name");
  auto mine = get_altnames(cx, ifname);
  if (!mine) return std::move(mine).error();
  // Another netdev's altname: every netdev's altnames file is looked at.
  for (const auto& e : fs::directory_iterator(cx.at("class/net"))) {
    auto theirs = get_altnames(cx, e.path().filename().string());
    if (theirs && std::find(theirs->begin(), theirs->end(), alt) != theirs->end())
      return Error::sys(EEXIST, "altname \"" + alt + "\": taken by " + e.path().filename().string());
  }
  std::string text;
  for (const auto& a : *mine) text += a + "\n";
  return write_text(n->dir + "/" + kAltnamesFile, text + alt + "\n");
}

}  // namespace sriovd::kernel::sim
