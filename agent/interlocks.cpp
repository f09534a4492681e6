// The Agent's interlocks: what refuses handing out a device, or taking a netdev the host uses.
#include "agent/interlocks.h"

#include <cerrno>

#include "agent/agent.h"

namespace sriovd::agent {

bool leasable(const pci::Device& d) {
  if (!d.class_id) return true;
  uint32_t base_sub = *d.class_id >> 8;
  return base_sub != 0x0604 && base_sub != 0x0600 && base_sub != 0x0601 && (*d.class_id >> 16) != 0x08;
}

std::string group_blockers(const Snapshot& s, const iommu::Group& g, const PciAddress& address) {
  std::string blockers;
  for (const auto& a : g.members) {
    if (a == address) continue;
    const DeviceView* o = s.find(a);
    if (!o || o->device.is_bridge() || iommu::driver_allows_passthrough(o->device.driver)) continue;
    blockers += (blockers.empty() ? "" : ", ") + a.to_string() + " (" + *o->device.driver + ")";
  }
  return blockers;
}

Result<std::vector<const DeviceView*>> group_companions(const DeviceView& v, const Snapshot& s, const PoolSpec* pool) {
  std::vector<const DeviceView*> out;
  const pci::Device& d = v.device;
  if (!d.iommu_group) return out;
  auto g = s.groups.find(*d.iommu_group);
  if (g == s.groups.end()) return out;
  const std::string where = pool ? "pool '" + pool->name + "'" : std::string("no pool");
  std::string host, leased, apart;  // members that cannot go with it, by why
  auto add = [](std::string& list, const std::string& item) { list += (list.empty() ? "" : ", ") + item; };
  for (const auto& a : g->second.members) {
    if (a == d.address) continue;
    const DeviceView* o = s.find(a);
    if (!o || o->device.is_bridge()) continue;
    const Lease* l = s.book ? s.book->lease_of(a) : nullptr;
    const PoolSpec* home = home_pool(*o, s);
    // Members of the same pool go along whatever their driver (being in the pool is consent to
    // take them from it); members of no pool only when no host driver uses them.
    const bool same_pool = pool && home && home->name == pool->name;
    const bool unclaimed = !home && iommu::driver_allows_passthrough(o->device.driver);
    const bool pf_with_vfs = o->device.sriov && o->device.sriov->num_vfs > 0;
    if (l) {
      add(leased, a.to_string() + " (lease " + l->id + ")");
    } else if (!(same_pool || unclaimed) || !leasable(o->device) || pf_with_vfs) {
      if (!iommu::driver_allows_passthrough(o->device.driver))
        add(host, a.to_string() + " (" + *o->device.driver + ")");
      else add(apart, a.to_string() + (home ? " (pool '" + home->name + "')" : std::string(" (no pool)")));
    } else {
      out.push_back(o);
    }
  }
  const std::string group = "IOMMU group " + std::to_string(*d.iommu_group) + " of " + d.address.to_string();
  const std::string whole = "; VFIO hands a group to one user whole, and a lease from " + where +
                            " takes along only members of it and members of no pool on no host driver";
  if (!host.empty())
    return conflict(group + " is not viable: other members are bound to host drivers: " + host + whole);
  if (!leased.empty()) return conflict(group + " is leased in part already: " + leased + whole);
  if (!apart.empty()) return conflict(group + " also holds " + apart + whole);
  return out;
}

Result<void> Agent::check_netdev_quiet(const pci::Device& dev) {
  for (const auto& n : dev.netdevs) {
    auto f = kernel_.get_link(n);
    if (!f) {
      // A netdev that went away (ENODEV) carries nothing; any other error means the check could
      // not be made, and an interlock that cannot be checked refuses (fail closed).
      if (f.error().errnum == ENODEV) continue;
      return Error::make(ErrorCode::conflict, "cannot tell whether netdev " + n + " of " + dev.address.to_string() +
                                                  " is in use (" + f.error().message +
                                                  "); refusing (pass force to take it anyway)");
    }
    if (f->up && (!f->addresses.empty() || f->routes > 0)) {
      std::string what = f->addresses.empty() ? "" : " with addresses ";
      for (size_t i = 0; i < f->addresses.size(); ++i) {
        if (i) what += ", ";
        what += f->addresses[i];
      }
      if (f->routes) what += " and " + std::to_string(f->routes) + " route(s)";
      std::string message = "netdev " + n + " of " + dev.address.to_string() + " is up";
      message += what;
      message += "; the host is using it (pass force to take it anyway)";
      return Error::make(ErrorCode::conflict, std::move(message));
    }
  }
  return ok();
}

Result<void> Agent::check_not_in_use(const pci::Device& d, const std::string& change) {
  if (d.driver != std::string("vfio-pci")) return ok();
  const std::string a = d.address.to_string();
  // The kernel first: a process holding the group or device node is what an unbind would wait
  // for, however the process got the device (libvirt, a hand-started QEMU, a DPDK program).
  auto held = kernel_.vfio_holders(d.address);
  if (!held)
    return conflict("cannot " + change + ": cannot tell whether " + a + " is held open through VFIO (" +
                    held.error().message + "); refusing while it may be in use");
  std::string why;
  if (in_use_) {
    if (auto r = in_use_(d.address); !r) {
      // Not a refusal but a failed question (libvirt answered with an error): refuse with it.
      if (r.error().code != ErrorCode::conflict) {
        Error e = std::move(r).error().context("cannot " + change + ": cannot tell whether a running domain uses " + a);
        e.code = ErrorCode::unavailable;
        return e;
      }
      why = r.error().message;
    }
  }
  if (!held->empty()) {
    why += (why.empty() ? a + " is in use: " : "; ") + kernel::held_paths(*held) + " held open by " +
           kernel::describe(*held);
  }
  if (why.empty()) return ok();
  return conflict("cannot " + change + ": " + why + " (stop the domain or process, or detach the device, first)");
}

Result<void> Agent::check_lease_interlocks(const DeviceView& v, const Snapshot& s, PoolMode mode,
                                           const PoolSpec* pool) {
  const pci::Device& d = v.device;
  const std::string a = d.address.to_string();
  if (const Lease* l = book_->lease_of(d.address))
    return conflict(a + " is leased already (lease " + l->id + " to " + l->consumer_kind + " " + l->consumer_name +
                    ")");
  if (d.physfn)
    if (const Lease* l = book_->lease_of(*d.physfn))
      return conflict(a + " is a VF of " + d.physfn->to_string() + ", which is leased whole (lease " + l->id + ")");
  if (d.sriov && d.sriov->num_vfs > 0)
    return conflict(a + " has " + std::to_string(d.sriov->num_vfs) +
                    " VFs enabled: a PF with VFs cannot be leased whole (set num_vfs to 0 first)");
  if (!leasable(d)) return conflict(a + " is a bridge or system device and cannot be leased");
  if (mode == PoolMode::vfio) {
    if (!d.iommu_group) return conflict(a + " is in no IOMMU group: is the IOMMU enabled?");
    if (auto c = group_companions(v, s, pool); !c) return std::move(c).error();
  } else if (!d.physfn) {
    return conflict(a + " is not a VF: netdev mode hands out VFs by their netdev");
  }
  return ok();
}
}  // namespace sriovd::agent
