#include "sim/eswitch.h"

#include <unistd.h>

#include <cerrno>
#include <map>

#include "pci/decode.h"
#include "sim/file_io.h"
#include "sim/netdevs.h"
#include "sim/sim_tree.h"

namespace sriovd::kernel::sim {

using namespace simio;

namespace {

// The devlink instance bus/dev names, with eswitch ops.
Result<Dev> eswitch_device(Call& cx, const std::string& bus, const std::string& dev, const char* what) {
  const std::string handle = bus + "/" + dev;
  auto a = bus == "pci" ? PciAddress::parse(dev) : std::nullopt;
  if (!a) return Error::sys(ENODEV, std::string(what) + ": no devlink device " + handle);
  auto d = cx.dev(*a);
  if (!d) return Error::sys(ENODEV, std::string(what) + ": no devlink device " + handle);
  const auto drv = cx.driver_of(*d).value_or("");
  if (drv == "ice" || drv == "mlx5_core") return d;
  if (drv == "i40e") return Error::sys(EOPNOTSUPP, std::string(what) + ": " + handle + ": i40e has no eswitch");
  return Error::sys(ENODEV, std::string(what) + ": no devlink device " + handle);
}

// "0000:17:00.0" → "0000000000017000": an 8-byte switch id of the PF (ice uses its DSN).
std::string switch_id(const PciAddress& a) {
  std::string hex;
  for (char c : a.to_string())
    if (c != ':' && c != '.') hex += c;
  return std::string(16 - hex.size(), '0') + hex;
}

// The PF's representors by VF index: its netdevs whose phys_port_name is "pf0vf<N>".
std::map<unsigned, std::string> representors(Call& cx, const Dev& pf) {
  std::map<unsigned, std::string> out;
  for (const auto& n : cx.netdevs_of(pf)) {
    auto t = read_text(pf.in("net/" + n + "/phys_port_name"));
    if (!t) continue;
    const std::string s = trim(*t);
    if (!s.starts_with("pf0vf")) continue;
    if (auto i = pci::parse_int(s.substr(5), 0, 65535)) out.emplace(static_cast<unsigned>(*i), n);
  }
  return out;
}

}  // namespace

EswitchMode eswitch_of(const Dev& pf) {
  auto t = read_text(pf.in(kEswitchFile));
  return t && trim(*t) == "switchdev" ? EswitchMode::switchdev : EswitchMode::legacy;
}

Result<void> sync_representors(Call& cx, const Dev& pf) {
  const bool on = eswitch_of(pf) == EswitchMode::switchdev;
  const auto vfs = cx.virtfns(pf);
  const auto reps = representors(cx, pf);
  for (const auto& [i, name] : reps) {
    if (on && vfs.count(i)) continue;
    cx.uevent("remove", pf.dir / "net" / name, "net");
    if (auto r = simtree::remove_netdev(cx.root(), name); !r) return r;
  }
  const std::string primary = primary_netdev(cx, pf);
  if (!primary.empty()) {
    const std::string id_file = pf.in("net/" + primary + "/phys_switch_id");
    if (on) {
      if (auto r = write_text(id_file, switch_id(pf.addr) + "\n"); !r) return r;
    } else if (::unlink(id_file.c_str()) != 0 && errno != ENOENT) {
      return Error::sys(errno, "removing " + id_file);
    }
  }
  if (!on) return ok();
  for (const auto& [i, vf] : vfs) {
    if (reps.count(i)) continue;
    NetdevRecord n;
    n.name = primary.empty() ? "" : primary + "_" + std::to_string(i);
    if (n.name.empty() || n.name.size() > 15 || lexists(cx.at("class/net/" + n.name))) n.name = free_eth_name(cx);
    n.mac = generated_mac(vf, 0x7e);
    if (auto r = add_netdev(cx, pf, n, false); !r) return r;
    if (auto r = write_text(pf.in("net/" + n.name + "/phys_port_name"), "pf0vf" + std::to_string(i) + "\n"); !r)
      return r;
    if (auto r = write_text(pf.in("net/" + n.name + "/phys_switch_id"), switch_id(pf.addr) + "\n"); !r) return r;
  }
  return ok();
}

Result<EswitchMode> get_eswitch(Call& cx, const std::string& bus, const std::string& dev) {
  auto d = eswitch_device(cx, bus, dev, "DEVLINK_CMD_ESWITCH_GET");
  if (!d) return std::move(d).error();
  return eswitch_of(*d);
}

Result<void> set_eswitch(Call& cx, const std::string& bus, const std::string& dev, EswitchMode mode) {
  auto d = eswitch_device(cx, bus, dev, "DEVLINK_CMD_ESWITCH_SET");
  if (!d) return std::move(d).error();
  if (eswitch_of(*d) == mode) return ok();  // devlink_nl_cmd_eswitch_set: the driver sees no change
  if (mode == EswitchMode::switchdev) {
    if (auto r = write_text(d->in(kEswitchFile), "switchdev\n"); !r) return r;
  } else if (::unlink(d->in(kEswitchFile).c_str()) != 0 && errno != ENOENT) {
    return Error::sys(errno, "removing " + d->in(kEswitchFile));
  }
  return sync_representors(cx, *d);
}

}  // namespace sriovd::kernel::sim
