// sriovd-cli: the operator's command line for sriovd. Human tables by default, --json for
// scripts. Exit status: 0 success, 1 the daemon refused or failed the request, 2 bad usage,
// 3 the daemon could not be reached.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "base/sse_parser.h"
#include "cli/client.h"
#include "cli/common.h"
#include "cli/pools_cmd.h"
#include "cli/table.h"

using nlohmann::json;
using namespace sriovd::cli;

namespace {

std::string sriov_cell(const json& d) {
  if (d.contains("sriov") && d["sriov"].is_object())
    return str(d["sriov"], "num_vfs") + "/" + str(d["sriov"], "total_vfs") + " VFs";
  if (!d["physfn"].is_null()) return "VF " + str(d, "vf_index", "?") + " of " + d["physfn"].get<std::string>();
  return "-";
}

std::string name_cell(const json& d) {
  std::string v = str(d, "vendor", ""), n = str(d, "device", "");
  if (v.empty() && n.empty()) return "-";
  // "Intel Corporation" → "Intel": the first word is enough in a table.
  auto sp = v.find(' ');
  if (sp != std::string::npos) v = v.substr(0, sp);
  return n.empty() ? v : v + " " + n;
}

int cmd_host(const Globals& g) {
  int status;
  auto j = fetch(g, "/v1/host", status);
  if (!j) return status;
  if (g.json_out) return print_json(*j), 0;
  const auto& c = (*j)["counts"];
  const auto& io = (*j)["iommu"];
  const auto& vf = (*j)["vfio"];
  Table t({"FIELD", "VALUE"});
  t.add({"sysfs root", str(*j, "sysfs_root")});
  t.add({"version", str(*j, "version")});
  t.add({"ready", str(*j, "ready")});
  t.add({"passthrough ready", str(*j, "passthrough_ready")});
  t.add({"IOMMU", std::string(io["enabled"].get<bool>() ? "on" : "off") + ", " + io["group_count"].dump() +
                      " groups (" + c["viable_iommu_groups"].dump() + " viable), units " + join(io["units"])});
  t.add({"VFIO", "vfio " + str(vf, "vfio") + ", vfio-pci " + str(vf, "vfio_pci") + ", vfio_iommu_type1 " +
                     str(vf, "vfio_iommu_type1")});
  t.add({"devices", c["devices"].dump() + " functions: " + c["physical_functions"].dump() + " PFs, " +
                        c["virtual_functions"].dump() + " VFs, " + c["bridges"].dump() + " bridges"});
  t.add({"warnings", c["devices_with_warnings"].dump() + " devices with warnings"});
  std::string out = t.render();
  // Drop the header line: a key/value listing reads better without it.
  std::fputs(out.substr(out.find('\n') + 1).c_str(), stdout);
  for (const auto& p : (*j)["problems"]) std::printf("problem: %s\n", p.get<std::string>().c_str());
  return 0;
}

int cmd_devices_once(const Globals& g, const std::vector<std::pair<std::string, std::string>>& filters);
int follow_events(const Globals& g, const std::string& since, const std::function<void()>& on_subscribed,
                  const std::function<bool(const json&)>& on_event);

// --watch: subscribe first, print once subscribed (nothing can slip between the table and the
// stream), then again after each device event or resync.
int cmd_devices(const Globals& g, bool watch, const std::vector<std::pair<std::string, std::string>>& filters) {
  if (!watch) return cmd_devices_once(g, filters);
  int status = 0;
  int rc = follow_events(
      g, {},
      [&] {
        status = cmd_devices_once(g, filters);
        std::fflush(stdout);
      },
      [&](const json& e) {
        std::string type = e.value("type", "");
        if (type.rfind("device.", 0) != 0 && type != "resync") return true;
        std::printf("\n-- %s %s %s\n", e.value("time", "").c_str(), type.c_str(), e.value("address", "").c_str());
        status = cmd_devices_once(g, filters);
        std::fflush(stdout);
        return status == 0;
      });
  return rc != 0 ? rc : status;
}

int cmd_devices_once(const Globals& g, const std::vector<std::pair<std::string, std::string>>& filters) {
  std::string path = "/v1/devices";
  char sep = '?';
  for (const auto& [k, v] : filters) {
    if (v.empty()) continue;
    path += sep;
    path += k;
    path += '=';
    path += v;
    sep = '&';
  }
  int status;
  auto j = fetch(g, path, status);
  if (!j) return status;
  if (g.json_out) return print_json(*j), 0;
  Table t({"ADDRESS", "KIND", "ID", "CLASS", "DRIVER", "NUMA", "GROUP", "NETDEV", "SR-IOV", "NAME"});
  for (const auto& d : (*j)["devices"]) {
    t.add({str(d, "address"), str(d, "kind"), str(d, "vendor_id", "????") + ":" + str(d, "device_id", "????"),
           str(d, "class_id"), str(d, "driver"), str(d, "numa_node"), str(d, "iommu_group"), join(d["netdevs"]),
           sriov_cell(d), name_cell(d)});
  }
  std::fputs(t.render().c_str(), stdout);
  return 0;
}

int cmd_device(const Globals& g, const std::string& address) {
  int status;
  auto j = fetch(g, "/v1/devices/" + address, status);
  if (!j) return status;
  if (g.json_out) return print_json(*j), 0;
  const json& d = *j;
  Table t({"FIELD", "VALUE"});
  t.add({"address", str(d, "address")});
  t.add({"kind", str(d, "kind")});
  t.add({"vendor", str(d, "vendor_id") + " " + str(d, "vendor", "")});
  t.add({"device", str(d, "device_id") + " " + str(d, "device", "")});
  t.add({"subsystem", str(d, "subsystem_vendor_id") + ":" + str(d, "subsystem_device_id")});
  t.add({"class", str(d, "class_id")});
  t.add({"driver", str(d, "driver")});
  t.add({"iommu group", str(d, "iommu_group")});
  t.add({"numa node", str(d, "numa_node")});
  t.add({"netdevs", join(d["netdevs"])});
  if (d["sriov"].is_object()) {
    const auto& s = d["sriov"];
    t.add({"sr-iov", str(s, "num_vfs") + " of " + str(s, "total_vfs") + " VFs enabled, VF device " +
                         str(s, "vf_device_id") + ", drivers autoprobe " + str(s, "drivers_autoprobe")});
  }
  if (!d["physfn"].is_null()) t.add({"physfn", str(d, "physfn") + " (VF " + str(d, "vf_index", "?") + ")"});
  t.add({"lease", str(d, "lease")});
  std::string out = t.render();
  std::fputs(out.substr(out.find('\n') + 1).c_str(), stdout);
  for (const auto& w : d["warnings"]) std::printf("warning: %s\n", w.get<std::string>().c_str());
  return 0;
}

void add_group_row(Table& t, const json& gr) {
  t.add({gr["number"].dump(), str(gr, "type"), gr["viable"].get<bool>() ? "yes" : "no", join(gr["members"]),
         gr["viable"].get<bool>() ? "" : str(gr, "reason")});
}

int cmd_groups(const Globals& g) {
  int status;
  auto j = fetch(g, "/v1/iommu-groups", status);
  if (!j) return status;
  if (g.json_out) return print_json(*j), 0;
  Table t({"GROUP", "TYPE", "VIABLE", "MEMBERS", "WHY NOT"});
  for (const auto& gr : (*j)["iommu_groups"]) add_group_row(t, gr);
  std::fputs(t.render().c_str(), stdout);
  return 0;
}

int cmd_group(const Globals& g, const std::string& number) {
  int status;
  auto j = fetch(g, "/v1/iommu-groups/" + number, status);
  if (!j) return status;
  if (g.json_out) return print_json(*j), 0;
  Table t({"GROUP", "TYPE", "VIABLE", "MEMBERS", "WHY NOT"});
  add_group_row(t, *j);
  std::fputs(t.render().c_str(), stdout);
  std::printf("%s\n", str(*j, "reason").c_str());
  return 0;
}

// One line for an event: time, type, what it is about, and what changed.
std::string event_line(const json& e) {
  std::string type = str(e, "type");
  std::string subject = e.contains("address") ? str(e, "address")
                        : e.contains("lease") ? str(e, "lease")
                        : e.contains("pool")  ? str(e, "pool")
                                              : "-";
  std::string summary;
  if (e.contains("changes") && e["changes"].is_object()) {
    for (const auto& [field, c] : e["changes"].items()) {
      if (!summary.empty()) summary += ", ";
      auto v = [](const json& x) {
        return x.is_null() ? std::string("none") : x.is_string() ? x.get<std::string>() : x.dump();
      };
      summary += field + " " + v(c.value("from", json())) + " -> " + v(c.value("to", json()));
    }
  } else if (type == "vf_config.changed") {
    summary = "VF " + str(e, "vf_index", "?") + " of " + str(e, "physfn") + ": " + e.value("vf_config", json()).dump();
  } else if (type == "drift") {
    summary = str(e, "count", "0") + " drift(s)";
    for (const auto& d : e.value("drift", json::array())) summary += "; " + d.get<std::string>();
  } else if (type == "device.added" || type == "device.removed") {
    summary = "driver " + str(e, "driver", "none");
    if (!e.value("physfn", json()).is_null()) summary += ", VF " + str(e, "vf_index", "?") + " of " + str(e, "physfn");
  } else {
    json rest = e;
    for (const char* k : {"id", "type", "time", "address", "lease"}) rest.erase(k);
    summary = rest.dump();
  }
  return str(e, "time") + "  " + type + "  " + subject + "  " + summary;
}

// Follows GET /v1/events; `on_event` gets each event's JSON (resync too, as {"type":"resync"})
// and returns false to stop; `on_subscribed` runs once the stream is open.
int follow_events(const Globals& g, const std::string& since, const std::function<void()>& on_subscribed,
                  const std::function<bool(const json&)>& on_event) {
  Client client(endpoint_of(g));
  SseParser parser;
  bool subscribed = false;
  bool bad = false;
  std::string path = "/v1/events";
  if (!since.empty()) path += "?since=" + since;
  auto r = client.stream(path, {}, [&](std::string_view bytes) {
    for (const auto& ev : parser.feed(bytes)) {
      auto j = json::parse(ev.data, nullptr, false);
      if (!j.is_object()) {
        bad = true;
        return false;
      }
      if (!j.contains("type")) j["type"] = ev.type;
      if (!on_event(j)) return false;
    }
    if (parser.failed()) {
      bad = true;
      return false;
    }
    if (!subscribed && parser.comments() > 0) {
      subscribed = true;
      if (on_subscribed) on_subscribed();
    }
    return true;
  });
  if (!r) {
    std::fprintf(stderr, "sriovd-cli: %s\n", r.error().message.c_str());
    return kExitUnreachable;
  }
  if (r->status >= 400) {
    std::fprintf(stderr, "sriovd-cli: %s\n", error_message(*r).c_str());
    return kExitRefused;
  }
  if (bad) {
    std::fprintf(stderr, "sriovd-cli: the event stream carried something that is not an event\n");
    return kExitRefused;
  }
  return 0;
}

int cmd_events(const Globals& g, const std::string& since, long count, const std::string& type,
               const std::string& address) {
  long seen = 0;
  return follow_events(g, since, {}, [&](const json& e) {
    if (!type.empty() && e.value("type", "") != type) return true;
    if (!address.empty() && e.value("address", "") != address) return true;
    if (g.json_out) std::printf("%s\n", e.dump().c_str());
    else std::printf("%s\n", event_line(e).c_str());
    std::fflush(stdout);
    return count <= 0 || ++seen < count;
  });
}

}  // namespace

int main(int argc, char** argv) try {
  CLI::App app{"sriovd-cli: inspect and drive sriovd, the SR-IOV and PCI passthrough agent"};
  app.require_subcommand(1);
  Globals g;
  app.add_option("--socket", g.socket, "sriovd's unix socket (default $SRIOVD_SOCKET or /run/sriovd/sriovd.sock)");
  app.add_option("--url", g.url,
                 "sriovd over TCP, e.g. http://127.0.0.1:8080 or https://host:8443 (overrides --socket)");
  app.add_option("--token", g.token, "bearer token for a daemon with a token file (default $SRIOVD_TOKEN)");
  app.add_option("--cacert", g.cacert, "https: CA certificate (PEM) that signed the daemon's certificate");
  app.add_option("--cert", g.cert, "https: client certificate (PEM), for a daemon that requires one");
  app.add_option("--key", g.key, "https: the client certificate's private key (PEM)");
  app.add_flag("--json", g.json_out, "print the API's JSON instead of a table");
  app.add_option("--wait", g.wait_s, "wait up to SECONDS for the daemon to be ready")->check(CLI::Range(0.0, 3600.0));

  std::function<int()> action;
  app.add_subcommand("host", "host readiness for passthrough, and counts")->callback([&] {
    action = [&] { return cmd_host(g); };
  });

  auto* devices = app.add_subcommand("devices", "list PCI functions");
  std::string vendor_id, driver, physfn, numa_node, class_id;
  devices->add_option("--vendor-id", vendor_id, "4 hex digits, e.g. 8086");
  devices->add_option("--driver", driver, "bound driver, or 'none'");
  devices->add_option("--physfn", physfn, "only the VFs of this PF");
  devices->add_option("--numa-node", numa_node, "NUMA node (-1: none)");
  devices->add_option("--class-id", class_id, "class prefix: 02 network, 0108 NVMe, 020000 Ethernet");
  bool watch = false;
  devices->add_flag("--watch", watch, "print the table again whenever a device is added, removed or changed");
  devices->callback([&] {
    action = [&] {
      return cmd_devices(g, watch,
                         {{"vendor_id", vendor_id},
                          {"driver", driver},
                          {"physfn", physfn},
                          {"numa_node", numa_node},
                          {"class_id", class_id}});
    };
  });

  auto* events = app.add_subcommand("events", "follow the daemon's events (one line each; --json: one object each)");
  std::string since;
  long count = 0;
  events->add_option("--since", since, "start after this event id (0: every event the daemon still keeps)")
      ->check(CLI::TypeValidator<uint64_t>());
  events->add_option("--count", count, "stop after N (matching) events")->check(CLI::PositiveNumber);
  std::string ev_type, ev_address;
  events->add_option("--type", ev_type, "only events of this type, e.g. device.changed");
  events->add_option("--address", ev_address, "only events about this PCI function");
  events->callback([&] { action = [&] { return cmd_events(g, since, count, ev_type, ev_address); }; });

  auto* device = app.add_subcommand("device", "one PCI function");
  std::string address;
  device->add_option("ADDRESS", address, "PCI address, e.g. 0000:17:00.0")->required();
  device->callback([&] { action = [&] { return cmd_device(g, address); }; });

  app.add_subcommand("groups", "list IOMMU groups and whether each can be passed through")->callback([&] {
    action = [&] { return cmd_groups(g); };
  });
  auto* group = app.add_subcommand("group", "one IOMMU group");
  std::string number;
  group->add_option("N", number, "group number")->required();
  group->callback([&] { action = [&] { return cmd_group(g, number); }; });

  auto* vfs = app.add_subcommand("vfs", "enable N VFs on a PF (0 disables them)");
  std::string pf;
  unsigned num_vfs = 0;
  vfs->add_option("PF", pf, "PF address")->required();
  std::string autoprobe;
  vfs->add_option("N", num_vfs, "number of VFs")->required();
  vfs->add_option("--autoprobe", autoprobe, "on: host drivers probe the new VFs; off: they stay unbound (passthrough)")
      ->check(CLI::IsMember({"on", "off"}));
  vfs->callback([&] {
    action = [&] {
      json body = {{"num_vfs", num_vfs}};
      if (!autoprobe.empty()) body["drivers_autoprobe"] = autoprobe == "on";
      return send(g, "PUT", "/v1/devices/" + pf + "/sriov", body);
    };
  });

  auto* mtu = app.add_subcommand("mtu", "set the MTU of a PF's (or another non-VF device's) netdev");
  std::string mtu_addr;
  unsigned mtu_value = 0;
  mtu->add_option("ADDRESS", mtu_addr, "device address")->required();
  mtu->add_option("MTU", mtu_value, "MTU, e.g. 9000")->required()->check(CLI::Range(68, 65535));
  mtu->callback([&] {
    action = [&] { return send(g, "PUT", "/v1/devices/" + mtu_addr + "/mtu", json{{"mtu", mtu_value}}); };
  });

  auto* vf = app.add_subcommand("vf", "set VF attributes (only those given change)");
  std::string vf_addr, mac, vlan_proto, spoofchk, trust, link_state;
  std::optional<unsigned> vlan, qos, max_rate, min_rate, vf_mtu;
  vf->add_option("VF", vf_addr, "VF address")->required();
  vf->add_option("--mac", mac, "unicast MAC, e.g. 52:54:00:12:34:56");
  vf->add_option("--vlan", vlan, "VLAN id, 0 for none")->check(CLI::Range(0, 4095));
  vf->add_option("--qos", qos, "VLAN priority 0-7")->check(CLI::Range(0, 7));
  vf->add_option("--proto", vlan_proto, "VLAN protocol")->check(CLI::IsMember({"802.1Q", "802.1ad"}));
  vf->add_option("--max-rate", max_rate, "max tx rate, Mbit/s (0: unlimited)");
  vf->add_option("--min-rate", min_rate, "min tx rate, Mbit/s");
  vf->add_option("--spoofchk", spoofchk, "on or off")->check(CLI::IsMember({"on", "off"}));
  vf->add_option("--trust", trust, "on or off")->check(CLI::IsMember({"on", "off"}));
  vf->add_option("--link-state", link_state, "auto, enable or disable")
      ->check(CLI::IsMember({"auto", "enable", "disable"}));
  vf->add_option("--mtu", vf_mtu, "the VF netdev's MTU (not above its PF's)")->check(CLI::Range(68, 65535));
  vf->callback([&] {
    action = [&] {
      json body = json::object();
      if (!mac.empty()) body["mac"] = mac;
      if (vlan) body["vlan"] = *vlan;
      if (qos) body["qos"] = *qos;
      if (!vlan_proto.empty()) body["vlan_proto"] = vlan_proto;
      if (max_rate) body["max_tx_rate_mbps"] = *max_rate;
      if (min_rate) body["min_tx_rate_mbps"] = *min_rate;
      if (!spoofchk.empty()) body["spoofchk"] = spoofchk == "on";
      if (!trust.empty()) body["trust"] = trust == "on";
      if (!link_state.empty()) body["link_state"] = link_state;
      if (vf_mtu) body["mtu"] = *vf_mtu;
      if (body.empty()) {
        std::fprintf(stderr, "sriovd-cli: vf: give at least one attribute (--mac, --vlan, ...)\n");
        return kExitUsage;
      }
      return send(g, "PATCH", "/v1/devices/" + vf_addr + "/vf-config", body);
    };
  });

  add_pool_commands(app, g, action);

  auto* bind = app.add_subcommand("bind", "bind a device to vfio-pci, back to its host driver, or to none");
  std::string bind_addr, bind_driver;
  bool bind_group = false, bind_force = false;
  bind->add_option("ADDRESS", bind_addr, "PCI address")->required();
  bind->add_option("DRIVER", bind_driver, "vfio-pci, host or none")
      ->required()
      ->check(CLI::IsMember({"vfio-pci", "host", "none"}));
  bind->add_flag("--group", bind_group, "the whole IOMMU group, all or none");
  bind->add_flag("--force", bind_force, "even if a netdev is up with addresses");
  bind->callback([&] {
    action = [&] {
      json body = {{"driver", bind_driver == "none" ? json(nullptr) : json(bind_driver)},
                   {"group", bind_group},
                   {"force", bind_force}};
      return send(g, "PUT", "/v1/devices/" + bind_addr + "/driver", body);
    };
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  if (g.wait_s > 0 && !wait_ready(g)) {
    std::fprintf(stderr, "sriovd-cli: sriovd at %s was not ready within %g s\n", endpoint_of(g).describe().c_str(),
                 g.wait_s);
    return kExitUnreachable;
  }
  return action ? action() : kExitUsage;
} catch (const std::exception& e) {
  std::fprintf(stderr, "sriovd-cli: %s\n", e.what());
  return 1;
} catch (...) {
  std::fprintf(stderr, "sriovd-cli: unknown exception\n");
  return 1;
}
