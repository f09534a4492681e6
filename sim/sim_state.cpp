#include "sim/sim_state.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "pci/decode.h"
#include "sim/call.h"
#include "sim/file_io.h"
#include "sim/kstrtox.h"
#include "sim/sim_tree.h"

namespace sriovd::kernel::sim {

using namespace simio;

json to_json(const NetdevRecord& n) {
  return {{"name", n.name},         {"mac", n.mac},   {"operstate", n.operstate},
          {"ifindex", n.ifindex},   {"mtu", n.mtu},   {"flags", n.flags},
          {"dev_port", n.dev_port}, {"type", n.type}, {"carrier", n.carrier}};
}

NetdevRecord netdev_from_json(const json& j) {
  NetdevRecord n;
  n.name = j.value("name", "");
  n.mac = j.value("mac", "00:00:00:00:00:00");
  n.operstate = j.value("operstate", "up");
  n.ifindex = j.value("ifindex", 0u);
  n.mtu = j.value("mtu", 1500u);
  n.flags = j.value("flags", 0x1003u);
  n.dev_port = j.value("dev_port", 0u);
  n.type = j.value("type", 1u);
  n.carrier = j.value("carrier", true);
  return n;
}

json to_json(const SimState& s) {
  json dyn = json::object();
  for (const auto& [drv, ids] : s.dynids) {
    json a = json::array();
    for (const auto& d : ids)
      a.push_back({{"vendor", d.vendor},
                   {"device", d.device},
                   {"subvendor", d.subvendor},
                   {"subdevice", d.subdevice},
                   {"class", d.cls},
                   {"class_mask", d.cls_mask}});
    dyn[drv] = a;
  }
  json resets = json::object();
  for (const auto& [bdf, n] : s.resets) resets[bdf] = n;
  return {{"last_ifindex", s.last_ifindex}, {"dynids", dyn}, {"resets", resets}};
}

SimState state_from_json(const json& j) {
  SimState s;
  s.last_ifindex = j.value("last_ifindex", 1u);
  if (j.contains("dynids"))
    for (const auto& [drv, arr] : j["dynids"].items())
      for (const auto& d : arr)
        s.dynids[drv].push_back(DynId{d.value("vendor", 0u), d.value("device", 0u), d.value("subvendor", kAnyId),
                                      d.value("subdevice", kAnyId), d.value("class", 0u), d.value("class_mask", 0u)});
  if (j.contains("resets"))
    for (const auto& [bdf, n] : j["resets"].items()) s.resets[bdf] = n.get<size_t>();
  return s;
}

// The attributes a PF driver keeps per VF, with the kernel's defaults for a new VF.
json to_json(const VfAttrs& a) {
  return {{"mac", a.mac.to_string()},
          {"vlan", a.vlan},
          {"qos", a.qos},
          {"vlan_proto", a.proto},
          {"max_tx_rate", a.max_rate},
          {"min_tx_rate", a.min_rate},
          {"spoofchk", a.spoofchk},
          {"trust", a.trust},
          {"link_state", static_cast<unsigned>(a.link)}};
}

VfAttrs vf_attrs_from_json(const json& j) {
  VfAttrs a;
  if (j.empty()) return a;  // a VF nothing was set on: the driver's defaults
  if (auto m = MacAddress::parse(j.value("mac", ""))) a.mac = *m;
  a.vlan = j.value("vlan", uint16_t{0});
  a.qos = j.value("qos", uint8_t{0});
  a.proto = j.value("vlan_proto", kEthP8021Q);
  a.max_rate = j.value("max_tx_rate", 0u);
  a.min_rate = j.value("min_tx_rate", 0u);
  a.spoofchk = j.value("spoofchk", true);
  a.trust = j.value("trust", false);
  a.link = static_cast<LinkState>(j.value("link_state", 0u));
  return a;
}

VfConfig to_config(const VfAttrs& a) {
  VfConfig c;
  c.mac = a.mac;
  c.vlan = a.vlan;
  c.qos = a.qos;
  c.vlan_proto = a.proto;
  c.max_tx_rate_mbps = a.max_rate;
  c.min_tx_rate_mbps = a.min_rate;
  c.spoofchk = a.spoofchk;
  c.trust = a.trust;
  c.link_state = a.link;
  return c;
}

// Reads the tree as it is now: the boot record.
Result<BootData> record_boot(const fs::path& root) {
  BootData b;
  for (const auto& name : list_names(root / "bus/pci/devices")) {
    auto a = PciAddress::parse(name);
    if (!a) continue;
    auto dir = simtree::device_dir(root, *a);
    if (!dir) continue;
    const fs::path d = root / *dir;
    BootDevice bd;
    if (auto l = read_link(d / "driver")) bd.driver = fs::path(*l).filename().string();
    if (auto t = read_text(d / "vendor")) bd.vendor = pci::parse_hex16(*t).value_or(0);
    if (auto t = read_text(d / "device")) bd.device = pci::parse_hex16(*t).value_or(0);
    bd.vf = lexists(d / "physfn");
    for (const auto& n : list_names(d / "net")) {
      const fs::path nd = d / "net" / n;
      NetdevRecord r;
      r.name = n;
      auto num = [&](const char* f, unsigned dflt) -> unsigned {
        auto t = read_text(nd / f);
        if (!t) return dflt;
        unsigned long long v = 0;
        return kstrtoull(trim(*t).c_str(), 0, &v) == 0 ? static_cast<unsigned>(v) : dflt;
      };
      if (auto t = read_text(nd / "address")) r.mac = trim(*t);
      if (auto t = read_text(nd / "operstate")) r.operstate = trim(*t);
      r.ifindex = num("ifindex", 0);
      r.mtu = num("mtu", 1500);
      r.flags = num("flags", 0x1003);
      r.dev_port = num("dev_port", 0);
      r.type = num("type", 1);
      r.carrier = num("carrier", 1) != 0;
      b.max_ifindex = std::max(b.max_ifindex, r.ifindex);
      bd.netdevs.push_back(std::move(r));
    }
    b.devices[name] = std::move(bd);
  }
  // What VFs present at boot report as subsystem device, per PF (the VF's config space says;
  // the sim reuses it for VFs it creates later).
  for (auto& [name, bd] : b.devices) {
    if (bd.vf) continue;
    auto a = PciAddress::parse(name);
    auto dir = simtree::device_dir(root, *a);
    if (!dir) continue;
    for (const auto& e : list_names(root / *dir)) {
      if (!pci::virtfn_index(e)) continue;
      if (auto t = read_text(root / *dir / e / "subsystem_device")) {
        bd.vf_subsystem_device = pci::parse_hex16(*t);
        break;
      }
    }
  }
  // Netdevs not on PCI functions (lo, bridges...) count for ifindexes too.
  for (const auto& n : list_names(root / "class/net"))
    if (auto t = read_text(root / "class/net" / n / "ifindex"))
      if (auto v = pci::parse_int(*t, 0, INT32_MAX)) b.max_ifindex = std::max(b.max_ifindex, static_cast<unsigned>(*v));
  return b;
}

json to_json(const BootData& b) {
  json devs = json::object();
  for (const auto& [bdf, d] : b.devices) {
    json nds = json::array();
    for (const auto& n : d.netdevs) nds.push_back(to_json(n));
    json j = {{"driver", d.driver.empty() ? json(nullptr) : json(d.driver)},
              {"vendor", hex(d.vendor, 4)},
              {"device", hex(d.device, 4)},
              {"vf", d.vf},
              {"netdevs", nds}};
    if (d.vf_subsystem_device) j["vf_subsystem_device"] = hex(*d.vf_subsystem_device, 4);
    devs[bdf] = j;
  }
  return {{"version", 1}, {"max_ifindex", b.max_ifindex}, {"devices", devs}};
}

BootData boot_from_json(const json& j) {
  BootData b;
  b.max_ifindex = j.value("max_ifindex", 1u);
  if (j.contains("devices"))
    for (const auto& [bdf, d] : j["devices"].items()) {
      BootDevice bd;
      if (d.contains("driver") && d["driver"].is_string()) bd.driver = d["driver"].get<std::string>();
      bd.vendor = pci::parse_bare_hex16(d.value("vendor", "")).value_or(0);
      bd.device = pci::parse_bare_hex16(d.value("device", "")).value_or(0);
      bd.vf = d.value("vf", false);
      if (d.contains("netdevs"))
        for (const auto& n : d["netdevs"]) bd.netdevs.push_back(netdev_from_json(n));
      if (d.contains("vf_subsystem_device"))
        bd.vf_subsystem_device = pci::parse_bare_hex16(d.value("vf_subsystem_device", ""));
      b.devices[bdf] = std::move(bd);
    }
  return b;
}

Result<BootData> load_or_record_boot(const fs::path& root) {
  const fs::path dir = root / kStateDir, file = dir / "boot.json";
  if (auto t = read_text(file)) {
    auto j = json::parse(*t, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return Error::sys(EINVAL, "unreadable " + file.string());
    return boot_from_json(j);
  }
  auto b = record_boot(root);
  if (!b) return std::move(b).error();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error::sys(ec.value(), "creating " + dir.string());
  if (auto r = write_atomic(file, to_json(*b).dump(1) + "\n"); !r) return std::move(r).error();
  return b;
}

SimState read_state(const std::string& file, unsigned boot_max_ifindex) {
  SimState s;
  if (auto t = read_text(file)) {
    auto j = json::parse(*t, nullptr, false);
    if (!j.is_discarded() && j.is_object()) s = state_from_json(j);
  } else {
    s.last_ifindex = boot_max_ifindex;
  }
  return s;
}

Result<void> write_state(const fs::path& root, const SimState& s) {
  const std::string file = join(root.native(), kStateFile);
  const std::string text = to_json(s).dump(1) + "\n";
  auto r = write_atomic(file, text);
  if (r || r.error().errnum != ENOENT) return r;
  std::error_code ec;  // the state directory is made on first need
  fs::create_directories(root / kStateDir, ec);
  if (ec) return Error::sys(ec.value(), "creating " + std::string(kStateDir));
  return write_atomic(file, text);
}

namespace {

std::string vf_table_file(const std::string& pf_abs) { return join(pf_abs, std::string(kVfDir) + "/vfs.json"); }

}  // namespace

json read_vf_table(const std::string& pf_abs) {
  auto t = read_text(vf_table_file(pf_abs));
  if (!t) return json::object();
  auto j = json::parse(*t, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return json::object();
  return j;
}

json vf_record(const json& all, unsigned index) {
  auto it = all.find(std::to_string(index));
  return it != all.end() && it->is_object() ? *it : json::object();
}

Result<void> write_vf_record(const std::string& pf_abs, const fs::path& pf_dir, unsigned index, const VfAttrs& a,
                             const json* stats) {
  if (::mkdir(join(pf_abs, kVfDir).c_str(), 0755) != 0 && errno != EEXIST)
    return Error::sys(errno, "creating " + (pf_dir / kVfDir).string());
  json all = read_vf_table(pf_abs);
  json j = to_json(a);
  if (stats) {
    if (!stats->is_null()) j["stats"] = *stats;
  } else {
    json old = vf_record(all, index);
    if (old.contains("stats")) j["stats"] = old["stats"];
  }
  all[std::to_string(index)] = std::move(j);
  return write_atomic(vf_table_file(pf_abs), all.dump() + "\n");
}

Result<void> remove_vf_table(const std::string& pf_abs, const fs::path& pf_dir) {
  std::error_code ec;
  fs::remove_all(join(pf_abs, kVfDir), ec);
  if (ec) return Error::sys(ec.value(), "removing " + (pf_dir / kVfDir).string());
  return ok();
}

VfStats vf_stats_from(const json& j) {
  VfStats st;
  if (!j.contains("stats") || !j["stats"].is_object()) return st;
  const json& s = j["stats"];
  st.rx_packets = s.value("rx_packets", uint64_t{0});
  st.tx_packets = s.value("tx_packets", uint64_t{0});
  st.rx_bytes = s.value("rx_bytes", uint64_t{0});
  st.tx_bytes = s.value("tx_bytes", uint64_t{0});
  st.broadcast = s.value("broadcast", uint64_t{0});
  st.multicast = s.value("multicast", uint64_t{0});
  st.rx_dropped = s.value("rx_dropped", uint64_t{0});
  st.tx_dropped = s.value("tx_dropped", uint64_t{0});
  return st;
}

json to_json(const VfStats& st) {
  return {{"rx_packets", st.rx_packets}, {"tx_packets", st.tx_packets}, {"rx_bytes", st.rx_bytes},
          {"tx_bytes", st.tx_bytes},     {"broadcast", st.broadcast},   {"multicast", st.multicast},
          {"rx_dropped", st.rx_dropped}, {"tx_dropped", st.tx_dropped}};
}

void read_link_file(const std::string& netdev_dir, LinkFacts& f) {
  if (auto t = read_text(netdev_dir + "/" + kLinkFile)) {
    auto j = json::parse(*t, nullptr, false);
    if (!j.is_discarded() && j.is_object()) {
      f.addresses = j.value("addresses", std::vector<std::string>{});
      f.routes = j.value("routes", size_t{0});
    }
  }
}

Result<void> write_link_file(const std::string& netdev_dir, const std::vector<std::string>& addresses, size_t routes) {
  json j = {{"addresses", addresses}, {"routes", routes}};
  return write_atomic(netdev_dir + "/" + kLinkFile, j.dump() + "\n");
}

}  // namespace sriovd::kernel::sim
