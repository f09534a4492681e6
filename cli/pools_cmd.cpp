#include "cli/pools_cmd.h"

#include <cstdio>
#include <memory>
#include <optional>

#include "cli/table.h"

namespace sriovd::cli {

using nlohmann::json;

namespace {

int show_pools(const Globals& g, const json& pools) {
  Table t({"POOL", "TYPE", "MODE", "POLICY", "RESET", "CAPACITY", "FREE", "LEASED", "UNHEALTHY", "NETWORK"});
  for (const auto& p : pools)
    t.add({str(p, "name"), str(p, "device_type"), str(p, "mode"), str(p, "policy"), str(p, "reset"), str(p, "capacity"),
           str(p, "free"), str(p, "leased"), str(p, "unhealthy"), str(p, "physical_network")});
  (void)g;
  std::fputs(t.render().c_str(), stdout);
  return 0;
}

int show_pool(const json& p) {
  show_pools({}, json::array({p}));
  std::printf("selectors: %s\n", p["selectors"].dump().c_str());
  Table t({"ADDRESS", "PF", "VF", "NUMA", "GROUP", "DRIVER", "NETDEV", "LEASE", "HEALTH"});
  for (const auto& d : p["devices"])
    t.add({str(d, "address"), str(d, "pf"), str(d, "vf_index"), str(d, "numa_node"), str(d, "iommu_group"),
           str(d, "driver"), join(d["netdevs"]), str(d, "lease"),
           d["healthy"].get<bool>() ? "ok" : "unhealthy: " + str(d, "reason")});
  std::fputs(t.render().c_str(), stdout);
  return 0;
}

void lease_row(Table& t, const json& l) {
  std::string consumer = str(l["consumer"], "kind") + "/" + str(l["consumer"], "name");
  std::string attached = l["attached_to"].is_object() ? str(l["attached_to"], "domain") : "-";
  t.add({str(l, "id"), str(l, "pool"), str(l, "address"), consumer, str(l, "state"), attached, str(l, "created_at")});
}

int show_leases(const json& list) {
  Table t({"LEASE", "POOL", "ADDRESS", "CONSUMER", "STATE", "ATTACHED", "CREATED"});
  for (const auto& l : list) lease_row(t, l);
  std::fputs(t.render().c_str(), stdout);
  return 0;
}

// Prints a lease (table, or --json); the libvirt XML follows the table, ready to paste.
int print_lease(const Globals& g, const json& l) {
  if (g.json_out) return print_json(l), 0;
  show_leases(json::array({l}));
  if (l["libvirt_xml"].is_string()) std::printf("%s", l["libvirt_xml"].get<std::string>().c_str());
  return 0;
}

}  // namespace

void add_pool_commands(CLI::App& app, Globals& g, std::function<int()>& action) {
  app.add_subcommand("pools", "list pools with capacity, free and leased devices")->callback([&] {
    action = [&] {
      int status;
      auto j = fetch(g, "/v1/pools", status);
      if (!j) return status;
      if (g.json_out) return print_json(*j), 0;
      return show_pools(g, (*j)["pools"]);
    };
  });

  struct PoolArgs {
    std::string verb = "show", name, type, mode, policy, reset, network, rdma;
    std::vector<std::string> vendors, devices, drivers, pfs, pf_addresses, addresses, link_types;
    std::vector<int> numa;
    bool pf_link_health = false;
  };
  auto pa = std::make_shared<PoolArgs>();
  auto* pool = app.add_subcommand("pool", "show, create or delete a pool");
  pool->add_option("VERB", pa->verb, "show, create or delete")
      ->check(CLI::IsMember({"show", "create", "delete"}))
      ->required();
  pool->add_option("NAME", pa->name, "pool name")->required();
  pool->add_option("--vendor", pa->vendors, "vendor id(s), e.g. 8086")->delimiter(',');
  pool->add_option("--device-id", pa->devices, "device id(s), e.g. 1889")->delimiter(',');
  pool->add_option("--driver", pa->drivers, "host driver(s), e.g. iavf")->delimiter(',');
  pool->add_option("--pf", pa->pfs, "PF netdev(s) with optional VF range, e.g. ens1f0#0-7")->delimiter(',');
  pool->add_option("--pf-address", pa->pf_addresses, "PF PCI address(es) with optional VF range, e.g. 0000:17:00.0#0-7")
      ->delimiter(',');
  pool->add_option("--address", pa->addresses, "PCI address(es)")->delimiter(',');
  pool->add_option("--link-type", pa->link_types, "ether or infiniband (the PF's netdev)")
      ->delimiter(',')
      ->check(CLI::IsMember({"ether", "infiniband"}));
  pool->add_option("--rdma", pa->rdma, "yes: only devices with RDMA; no: only without")
      ->check(CLI::IsMember({"yes", "no"}));
  pool->add_option("--numa", pa->numa, "NUMA node(s)")->delimiter(',');
  pool->add_option("--type", pa->type, "vf, pf or any (default vf)")->check(CLI::IsMember({"vf", "pf", "any"}));
  pool->add_option("--mode", pa->mode, "vfio or netdev (default vfio)")->check(CLI::IsMember({"vfio", "netdev"}));
  pool->add_option("--policy", pa->policy, "pack or spread (default pack)")->check(CLI::IsMember({"pack", "spread"}));
  pool->add_option("--reset", pa->reset,
                   "what a release gives a VF back: restore (the attributes it was leased with, default) or defaults")
      ->check(CLI::IsMember({"restore", "defaults"}));
  pool->add_option("--physical-network", pa->network, "the network these devices reach");
  pool->add_flag("--pf-link-health", pa->pf_link_health,
                 "members whose PF has no carrier are unhealthy (health.pf_link)");
  pool->callback([&g, &action, pa] {
    action = [&g, pa] {
      int status;
      if (pa->verb == "show") {
        auto j = fetch(g, "/v1/pools/" + pa->name, status);
        if (!j) return status;
        if (g.json_out) return print_json(*j), 0;
        return show_pool(*j);
      }
      if (pa->verb == "delete") {
        call(g, "DELETE", "/v1/pools/" + pa->name, {}, status);
        if (status == 0 && !g.json_out) std::printf("pool %s deleted\n", pa->name.c_str());
        return status;
      }
      json sel = json::object();
      if (!pa->vendors.empty()) sel["vendor_ids"] = pa->vendors;
      if (!pa->devices.empty()) sel["device_ids"] = pa->devices;
      if (!pa->drivers.empty()) sel["drivers"] = pa->drivers;
      if (!pa->pfs.empty()) sel["pf_names"] = pa->pfs;
      if (!pa->pf_addresses.empty()) sel["pf_addresses"] = pa->pf_addresses;
      if (!pa->link_types.empty()) sel["link_types"] = pa->link_types;
      if (!pa->rdma.empty()) sel["rdma"] = pa->rdma == "yes";
      if (!pa->addresses.empty()) sel["addresses"] = pa->addresses;
      if (!pa->numa.empty()) sel["numa_nodes"] = pa->numa;
      json body = {{"name", pa->name}, {"selectors", sel}};
      if (!pa->type.empty()) body["device_type"] = pa->type;
      if (!pa->mode.empty()) body["mode"] = pa->mode;
      if (!pa->policy.empty()) body["policy"] = pa->policy;
      if (!pa->reset.empty()) body["reset"] = pa->reset;
      if (!pa->network.empty()) body["physical_network"] = pa->network;
      if (pa->pf_link_health) body["health"] = {{"pf_link", true}};
      auto j = call(g, "POST", "/v1/pools", body.dump(), status);
      if (!j) return status;
      if (g.json_out) return print_json(*j), 0;
      return show_pool(*j);
    };
  });

  struct AllocArgs {
    std::string pool, address, consumer = "other", name, key, policy, mac, spoofchk, trust;
    std::optional<int> numa;
    std::optional<unsigned> vlan, qos, mtu;
  };
  auto aa = std::make_shared<AllocArgs>();
  auto* alloc = app.add_subcommand("alloc", "lease a device from a pool (or by address)");
  alloc->add_option("POOL", aa->pool, "pool name");
  alloc->add_option("--address", aa->address, "a specific device");
  alloc->add_option("--consumer", aa->consumer, "vm, pod or other")->check(CLI::IsMember({"vm", "pod", "other"}));
  alloc->add_option("--name", aa->name, "the consumer's name, e.g. the VM")->required();
  alloc->add_option("--numa", aa->numa, "only a device on this NUMA node");
  alloc->add_option("--policy", aa->policy, "pack or spread")->check(CLI::IsMember({"pack", "spread"}));
  alloc->add_option("--key", aa->key, "Idempotency-Key: a retry with the same key returns the same lease");
  alloc->add_option("--mac", aa->mac, "VF MAC");
  alloc->add_option("--vlan", aa->vlan, "VF VLAN id")->check(CLI::Range(0, 4095));
  alloc->add_option("--qos", aa->qos, "VLAN priority")->check(CLI::Range(0, 7));
  alloc->add_option("--spoofchk", aa->spoofchk, "VF MAC/VLAN spoof checking: on or off")
      ->check(CLI::IsMember({"on", "off"}));
  alloc->add_option("--trust", aa->trust, "VF trusted mode: on or off")->check(CLI::IsMember({"on", "off"}));
  alloc->add_option("--mtu", aa->mtu, "VF netdev MTU (netdev pools)")->check(CLI::Range(68, 65535));
  alloc->callback([&g, &action, aa] {
    action = [&g, aa] {
      if (aa->pool.empty() && aa->address.empty()) {
        std::fprintf(stderr, "sriovd-cli: alloc: give a POOL or --address\n");
        return kExitUsage;
      }
      json body = {{"consumer", {{"kind", aa->consumer}, {"name", aa->name}}}};
      if (!aa->pool.empty()) body["pool"] = aa->pool;
      if (!aa->address.empty()) body["address"] = aa->address;
      if (aa->numa) body["numa_node"] = *aa->numa;
      if (!aa->policy.empty()) body["policy"] = aa->policy;
      json vf = json::object();
      if (!aa->mac.empty()) vf["mac"] = aa->mac;
      if (aa->vlan) vf["vlan"] = *aa->vlan;
      if (aa->qos) vf["qos"] = *aa->qos;
      if (!aa->spoofchk.empty()) vf["spoofchk"] = aa->spoofchk == "on";
      if (!aa->trust.empty()) vf["trust"] = aa->trust == "on";
      if (aa->mtu) vf["mtu"] = *aa->mtu;
      if (!vf.empty()) body["vf_config"] = vf;
      int status;
      auto j =
          call(g, "POST", "/v1/allocations", body.dump(), status, aa->key.empty() ? "" : "Idempotency-Key: " + aa->key);
      if (!j) return status;
      return print_lease(g, *j);
    };
  });

  auto leases_pool = std::make_shared<std::string>();
  auto* leases = app.add_subcommand("leases", "list leases");
  leases->add_option("--pool", *leases_pool, "only this pool's");
  leases->callback([&g, &action, leases_pool] {
    action = [&g, leases_pool] {
      int status;
      auto j = fetch(g, "/v1/allocations" + (leases_pool->empty() ? "" : "?pool=" + *leases_pool), status);
      if (!j) return status;
      if (g.json_out) return print_json(*j), 0;
      return show_leases((*j)["allocations"]);
    };
  });

  auto id = std::make_shared<std::string>();
  auto* lease = app.add_subcommand("lease", "one lease, with its libvirt XML");
  lease->add_option("ID", *id, "lease id")->required();
  lease->callback([&g, &action, id] {
    action = [&g, id] {
      int status;
      auto j = fetch(g, "/v1/allocations/" + *id, status);
      if (!j) return status;
      return print_lease(g, *j);
    };
  });

  auto* release = app.add_subcommand("release", "release a lease: detach, reset the VF, restore its driver");
  release->add_option("ID", *id, "lease id")->required();
  release->callback([&g, &action, id] {
    action = [&g, id] {
      int status;
      auto j = call(g, "DELETE", "/v1/allocations/" + *id, {}, status);
      if (!j) return status;
      if (g.json_out) return print_json(*j), 0;
      std::printf("released %s: %s is free, driver %s\n", id->c_str(), str((*j)["lease"], "address").c_str(),
                  (*j)["device"].is_object() ? str((*j)["device"], "driver", "none").c_str() : "-");
      if (str((*j)["lease"], "reset") == "failed")
        std::printf("warning: the function was not reset: %s\n", str((*j)["lease"], "reset_error").c_str());
      // What did not come back as it was found (or clean), attribute by attribute: the release
      // itself is done, so these are warnings (the JSON answer has them all).
      const json& report = (*j)["lease"].value("release_report", json::object());
      if (report.is_object() && report.contains("attributes"))
        for (const auto& [name, a] : report["attributes"].items()) {
          const std::string st = str(a, "status");
          if (st != "differs" && st != "unread") continue;
          std::fprintf(stderr, "warning: %s %s: wanted %s, now %s%s\n", name.c_str(), st.c_str(),
                       a["wanted"].dump().c_str(), a["now"].dump().c_str(),
                       a.contains("error") ? (" (" + str(a, "error") + ")").c_str() : "");
        }
      return 0;
    };
  });

  struct AttachArgs {
    std::string id, domain;
    bool config = false, no_live = false;
  };
  for (const char* verb : {"attach", "detach"}) {
    auto at = std::make_shared<AttachArgs>();
    const bool attach = std::string(verb) == "attach";
    auto* cmd = app.add_subcommand(
        verb, attach ? "attach a leased device to a libvirt domain" : "detach a leased device from its libvirt domain");
    cmd->add_option("ID", at->id, "lease id")->required();
    auto* dom = cmd->add_option("DOMAIN", at->domain, "libvirt domain name");
    if (attach) dom->required();
    cmd->add_flag("--config", at->config, "also change the persistent definition");
    cmd->add_flag("--no-live", at->no_live, "do not change the running domain");
    cmd->callback([&g, &action, at, attach] {
      action = [&g, at, attach] {
        json body = json::object();
        if (!at->domain.empty()) body["domain"] = at->domain;
        if (at->config) body["config"] = true;
        if (at->no_live) body["live"] = false;
        int status;
        auto j = call(g, "POST", "/v1/allocations/" + at->id + (attach ? "/attach" : "/detach"), body.dump(), status);
        if (!j) return status;
        return print_lease(g, *j);
      };
    });
  }
}

}  // namespace sriovd::cli
