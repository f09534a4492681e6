// Agent: the domain core that changes the host — SR-IOV VFs, VF attributes, drivers — safely.
//
// Every mutation follows one path: validate → check interlocks → journal the intent → apply to
// the kernel step by step, journalling each step's undo before taking it → on failure undo the
// taken steps in reverse → record the desired state and finish the journal entry, or mark it
// failed. A daemon killed mid-operation finds the entry pending at start, undoes its steps and
// reconciles: the host ends as it was before the operation or as the desired state says.
// Desired state changes only when an operation succeeds, so reconcile never redoes a refused
// or failed change.
//
// Thread-safe: mutations and refreshes are serialised by one mutex (public methods take it,
// *_locked and the other private helpers expect it); reads go through the HostModel's
// snapshots and never wait for them. Addresses are taken by value: a mutation publishes new
// snapshots, so a reference into one would not outlive the call.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/events.h"
#include "agent/host_model.h"
#include "agent/lease.h"
#include "agent/pool.h"
#include "agent/state_store.h"
#include "base/mutex.h"
#include "kernel/kernel.h"
#include "pci/names.h"
#include "pci/sysfs.h"

namespace sriovd::agent {

struct DriverRequest {
  // "vfio-pci", "host" (the driver recorded before sriovd changed it), or nullopt: no driver.
  std::optional<std::string> driver;
  bool group = false;  // every member of the IOMMU group, all or none
  bool force = false;  // even if a netdev is up with addresses or routes
};

struct AllocationRequest {
  std::optional<std::string> pool;
  std::optional<PciAddress> address;  // a specific device (a member of `pool` when both are given)
  std::string consumer_kind;          // vm, pod, other
  std::string consumer_name;
  std::optional<int> numa_node;
  std::optional<Policy> policy;       // overrides the pool's
  std::optional<VfConfig> vf_config;  // VF attributes to set on the device (a VF)
  std::optional<std::string> idempotency_key;
};

struct Allocation {
  Lease lease;
  bool created = true;  // false: an earlier request with the same Idempotency-Key made it
};

// A pool member as GET /v1/pools/{name} shows it.
struct PoolMember {
  const DeviceView* view = nullptr;
  PciAddress pf;  // the PF for a VF; the device itself otherwise
  bool healthy = true;
  std::string reason;  // why not healthy
  const Lease* lease = nullptr;
};
// The members of `pool` on `snap` (with `snap.book`'s leases), sorted by address. A device
// matching several pools belongs to the oldest of them.
std::vector<PoolMember> pool_members(const PoolSpec& pool, const Snapshot& snap);

// The PoolIndex of `s` (its book's pools over its devices): `before`'s, or `before`'s with the
// devices that changed between the two moved, when their functions are at the same positions
// and the pools are the same; made anew from every device otherwise.
std::shared_ptr<const PoolIndex> index_pools(const Snapshot* before, const Snapshot& s);

// True when `current` already has every IFLA_VF attribute `wanted` sets (its mtu aside).
bool vf_config_overlay_equal(const VfConfig& current, const VfConfig& wanted);

// A function's first netdev and its MTU, read from sysfs now (nullopt: it has no netdev).
struct NetdevMtu {
  std::string ifname;
  uint32_t mtu = 0;
};
std::optional<NetdevMtu> netdev_mtu(const pci::SysfsRoot& root, const PciAddress& address);

struct ReconcileReport {
  std::vector<std::string> recovered;  // interrupted operations undone
  std::vector<std::string> applied;    // what was changed to reach the desired state
  std::vector<std::string> drift;      // what could not be brought to the desired state
};

class Agent {
 public:
  Agent(const pci::SysfsRoot& root, kernel::Kernel& kernel, StateStore& store, HostModel& model, pci::NameDb* names);

  // Where the agent reports what changed on the host (device.added/removed/changed,
  // vf_config.changed, drift): every published snapshot is diffed against the previous one.
  // Null (the default): no events. Set before the agent is used from other threads.
  void set_event_log(EventLog* events) { events_ = events; }

  // Rescans the host (PCI inventory and, for PFs with a netdev, VF attributes over rtnetlink)
  // and publishes a new snapshot.
  Result<void> refresh() SRIOVD_EXCLUDES(mu_);

  // Hotplug: re-reads only these functions (added, removed, rebound or changed, as uevents
  // said) and their IOMMU groups, and publishes the updated snapshot. The uevent's action is
  // only a hint: what the tree says now wins, so late or repeated events do no harm.
  Result<void> update_devices(const std::vector<PciAddress>& addresses) SRIOVD_EXCLUDES(mu_);
  // The same for uevents with their sequence numbers (nullopt: unnumbered). A function whose
  // last event is no newer than what the model already read (the agent re-reads what it
  // changes itself, after noting /sys/kernel/uevent_seqnum) is not read again.
  Result<void> update_devices(const std::map<PciAddress, std::optional<uint64_t>>& events) SRIOVD_EXCLUDES(mu_);

  // PUT /v1/devices/{pf}/sriov. The same count is a no-op (it only records the desired state);
  // a different non-zero count goes through 0, refused while a VF is bound to vfio-pci.
  // `drivers_autoprobe`, when given, is written to sriov_drivers_autoprobe first (false: new VFs
  // stay unbound until bound explicitly, as for passthrough) and kept in the desired state, so a
  // reboot's reconcile sets it again before recreating the VFs.
  Result<void> set_num_vfs(PciAddress pf, uint32_t num_vfs, std::optional<bool> drivers_autoprobe = std::nullopt)
      SRIOVD_EXCLUDES(mu_);
  // PUT /v1/devices/{address}/mtu: the MTU of the device's netdev (IFLA_MTU), kept as desired
  // state and set again at start. For PFs and other devices with a netdev; a VF's goes in its
  // vf_config. Lowering a PF's MTU below one of its VFs' netdevs' is a conflict naming the VF:
  // a VF may not send frames its PF's port would not take.
  Result<void> set_mtu(PciAddress address, uint32_t mtu) SRIOVD_EXCLUDES(mu_);
  // PATCH /v1/devices/{vf}/vf-config: the set fields only, one netlink request per attribute
  // group; on a NACK the groups already applied are restored.
  Result<void> set_vf_config(PciAddress vf, const VfConfig& patch) SRIOVD_EXCLUDES(mu_);
  // PUT /v1/devices/{address}/driver.
  Result<void> set_driver(PciAddress address, const DriverRequest& request) SRIOVD_EXCLUDES(mu_);

  // Every VF of the PF netdev with its traffic counters (one RTM_GETLINK), for metrics. Does
  // not take the agent's lock: the kernel calls are thread-safe and this changes nothing.
  Result<std::vector<VfInfo>> vf_stats(const std::string& pf_ifname) { return kernel_.get_vfs(pf_ifname); }

  // How long a VF rate refused for want of a link waits for the PF's link to come back before
  // the refusal stands (10 s unless set; see link_coming_back).
  void set_carrier_wait(std::chrono::milliseconds wait) { carrier_wait_ = wait; }

  // At start: undo interrupted operations, then bring the host to the desired state, then finish
  // leases left half-allocated (undone) or half-released (released).
  ReconcileReport reconcile() SRIOVD_EXCLUDES(mu_);

  // Pools (POST/PUT/DELETE /v1/pools). A pool whose selectors could match a device of another
  // pool — a device present now, or a VF slot a PF could enable — is a conflict naming both.
  // Replacing a pool must keep every leased device in it; deleting needs it to have no leases.
  Result<PoolSpec> create_pool(const PoolSpec& spec, bool replace = false) SRIOVD_EXCLUDES(mu_);
  Result<void> delete_pool(const std::string& name) SRIOVD_EXCLUDES(mu_);
  // pool_members as GET /v1/pools shows them now: a member sriovd has not leased that a process
  // holds open through VFIO (a domain or program outside sriovd) is not free but unhealthy,
  // naming what holds it, as allocation finds it; when the kernel cannot say, unhealthy with
  // that reason (fail closed). One scan of the process table (Kernel::vfio_holders_of), only
  // for such members on vfio-pci. Does not take the agent's lock.
  std::vector<PoolMember> members_now(const PoolSpec& pool, const Snapshot& snap);

  // POST /v1/allocations: picks, configures and binds a free device and records the lease.
  Result<Allocation> allocate(const AllocationRequest& request) SRIOVD_EXCLUDES(mu_);
  // DELETE /v1/allocations/{id}: detaches (through `detach` when set and the lease is attached),
  // resets the VF's attributes and the function, restores its driver, forgets the lease. A
  // function reset the kernel refuses (ENOTTY) does not stop the release: the returned lease
  // (and the lease.released event) carry reset "failed" with the kernel's answer.
  Result<Lease> release(const std::string& id) SRIOVD_EXCLUDES(mu_);
  // Records (or clears) where a lease is attached; `action` runs under the agent's lock first
  // and the record changes only when it succeeds. A conflict, before `action`, when the lease
  // is not active, is attached already (attach) or is not attached (detach).
  Result<Lease> set_attachment(const std::string& id, std::optional<Attachment> attachment,
                               const std::function<Result<void>(const Lease&)>& action) SRIOVD_EXCLUDES(mu_);
  // Detaches a lease from its domain before release; set by the daemon when libvirt is in use.
  void set_detacher(std::function<Result<void>(const Lease&)> detach) { detach_ = std::move(detach); }
  // Asks whether a running domain uses a device (a conflict naming the domain; another error
  // when it cannot tell); set by the daemon when libvirt is in use. It is asked, besides the
  // kernel (Kernel::vfio_holders), before anything takes a device off vfio-pci, resets it or
  // hands it out again (see check_not_in_use).
  void set_in_use_check(std::function<Result<void>(const PciAddress&)> check) { in_use_ = std::move(check); }

 private:
  class Applier;
  Result<void> refresh_locked() SRIOVD_REQUIRES(mu_);
  // Publishes `s` (with the current drift) and the events that lead to it from the last one.
  void publish_locked(std::shared_ptr<Snapshot> s) SRIOVD_REQUIRES(mu_);
  // Reads again only the devices at `changed` (see update_snapshot).
  Result<void> refresh_devices_locked(const std::vector<PciAddress>& changed) SRIOVD_REQUIRES(mu_);
  // /sys/kernel/uevent_seqnum, read before a rescan: the model then reflects every uevent up to it.
  std::optional<uint64_t> uevent_seqnum() const;
  Result<void> load_book() SRIOVD_REQUIRES(mu_);
  // `detached`: the result of detaching the lease from its domain, when the caller did it
  // (without the lock); else an attached lease is detached here.
  // A release's function reset (its outcome into `lease`) and driver restore for `d`, when `r`
  // (what the release did before) succeeded; returns the release's result so far.
  Result<void> reset_and_restore(Applier& a, Lease& lease, const pci::Device& d,
                                 const std::optional<std::string>& previous_driver, Result<void> r)
      SRIOVD_REQUIRES(mu_);
  // `lease` ends as the release left it: with its reset outcome, or its error when it failed.
  Result<void> release_locked(Lease& lease, bool at_start, std::optional<Result<void>> detached = std::nullopt)
      SRIOVD_REQUIRES(mu_);
  // The Applier's Begin for a lease operation: its journal entry of `kind` and `lease` (as it
  // is then; it must outlive the Applier) written together.
  std::function<Result<int64_t>(StateStore::Tx&)> lease_entry(OperationKind kind, const Lease& lease);
  // The device an allocation gets (by address, or picked from its pool by policy), the pool it
  // belongs to (null: none) and how it is handed out; interlocks checked.
  struct Choice {
    const DeviceView* device = nullptr;
    const PoolSpec* pool = nullptr;
    PoolMode mode = PoolMode::vfio;
  };
  Result<Choice> choose_device(const AllocationRequest& req, const std::shared_ptr<const Snapshot>& s)
      SRIOVD_REQUIRES(mu_);
  // `pool`: the pool the lease comes from (null: none), whose members may share v's IOMMU group.
  Result<void> check_lease_interlocks(const DeviceView& v, const Snapshot& s, PoolMode mode, const PoolSpec* pool)
      SRIOVD_REQUIRES(mu_);
  void recover_leases(ReconcileReport& report) SRIOVD_REQUIRES(mu_);
  // The phases of reconcile(); `journal` opens (once) and returns its journal entry. Each says
  // whether it changed the host.
  using Journal = std::function<Result<int64_t>()>;
  bool reconcile_num_vfs(ReconcileReport& report, const Journal& journal) SRIOVD_REQUIRES(mu_);
  bool reconcile_vf_configs(ReconcileReport& report, const Journal& journal) SRIOVD_REQUIRES(mu_);
  bool reconcile_mtus(ReconcileReport& report, const Journal& journal) SRIOVD_REQUIRES(mu_);
  bool reconcile_drivers(ReconcileReport& report, const Journal& journal, bool changed) SRIOVD_REQUIRES(mu_);
  Result<void> recover_pending(ReconcileReport& report) SRIOVD_REQUIRES(mu_);
  // Before an undo writes 0 to a PF's sriov_numvfs (`numvfs_path`): check_not_in_use for each of
  // its VFs on vfio-pci, which sriov_disable would unbind (and wait for while a VM holds it).
  Result<void> check_vfs_not_in_use(const std::string& numvfs_path) SRIOVD_REQUIRES(mu_);
  Result<void> apply_vf_config(Applier& a, const std::string& pf_ifname, uint32_t index, const VfConfig& current,
                               const VfConfig& wanted);
  // A PF driver's refusal of a VF rate (EINVAL, EOPNOTSUPP) with the field and the reason: no
  // rate limits on this device (unsupported), or no link on the PF (conflict: igb refuses
  // max_tx_rate while the link is down).
  Error explain_rate_refusal(Error e, const std::string& pf_ifname, const VfConfig& wanted) const;
  // After such a refusal: whether the PF, without a link now, has one again within
  // carrier_wait_ (Kernel::wait_carrier; at once false when it is administratively down). igb
  // resets its link whenever VFs are enabled, so a rate set right after (a reconcile after a
  // reboot, a PATCH after a VF count change) would otherwise fail for seconds.
  bool link_coming_back(const std::string& pf_ifname);
  // Sets every attribute group of VF `index` that differs from `target` (every field set: what
  // the VF had when leased, or a clean VF's) back to it. Groups the driver does not implement
  // (EOPNOTSUPP) are skipped: there is nothing to reset. With `refused`, a value the driver
  // refuses now (EINVAL, ERANGE: igb takes no rate while its PF has no link) is noted there by
  // group field, with the kernel's answer, and the others are still set; any other error fails.
  Result<void> reset_vf_config(Applier& a, const std::string& pf_ifname, uint32_t index, const VfConfig& current,
                               const VfConfig& target, std::map<std::string, std::string>* refused);
  Result<void> bind(Applier& a, const pci::Device& dev, const std::optional<std::string>& driver);
  // Sets the MTU of the netdev of `vf` (read from sysfs now) to `wanted`, a journalled step with
  // its undo; nothing when it has it already. A conflict when it has no netdev; the kernel's
  // EINVAL (outside the device's min/max MTU) is `invalid`, field "mtu".
  Result<void> apply_mtu(Applier& a, const PciAddress& vf, uint32_t wanted);
  // A VF's MTU may not exceed its PF's: `invalid` naming both, field "mtu".
  Result<void> check_vf_mtu(const Snapshot& s, const DeviceView& vf, uint32_t mtu) const;
  // A legacy VF VLAN (vlan, qos, vlan_proto) on a VF whose PF is in switchdev mode: a 409 naming
  // the PF and the VF's representor (mlx5 refuses it there; the representor carries VLANs, with
  // tc or OVS). `field` prefixes the field named ("vf_config.").
  Result<void> check_vf_vlan_mode(const Snapshot& s, const DeviceView& vf, const VfConfig& c,
                                  const std::string& field) const;
  Result<void> check_netdev_quiet(const pci::Device& dev);
  // Before `change` ("release lease X", "unbind 0000:... from vfio-pci") touches `d` on
  // vfio-pci: a conflict naming what uses it — processes holding its VFIO group or device node
  // open (vfio-pci's remove would wait for them without a bound, and a reset would pull the
  // device from under them) and running domains (in_use_). A question that cannot be answered
  // refuses too (fail closed); no `force` overrides this. Nothing to check off vfio-pci.
  Result<void> check_not_in_use(const pci::Device& d, const std::string& change);
  Result<void> reapply_vf_state(Applier& a, const PciAddress& pf) SRIOVD_REQUIRES(mu_);
  Result<void> change_autoprobe(Applier& a, const pci::Device& pf, std::optional<bool> want);
  // Rolls back what `a` applied, marks its operation failed, republishes the host; returns `e`.
  Error abandon(Applier& a, Error e) SRIOVD_REQUIRES(mu_);
  std::shared_ptr<const Snapshot> snap() const { return model_.current(); }

  const pci::SysfsRoot& root_;
  kernel::Kernel& kernel_;
  std::chrono::milliseconds carrier_wait_{10000};
  StateStore& store_;
  HostModel& model_;
  pci::NameDb* names_;
  EventLog* events_ = nullptr;
  Mutex mu_;  // serialises mutations and refreshes
  uint64_t generation_ SRIOVD_GUARDED_BY(mu_) = 0;
  // The uevent sequence number each function (or, for all, the last full rescan) was read after.
  std::map<PciAddress, uint64_t> read_after_seqnum_ SRIOVD_GUARDED_BY(mu_);
  uint64_t rescanned_after_seqnum_ SRIOVD_GUARDED_BY(mu_) = 0;
  std::vector<std::string> drift_ SRIOVD_GUARDED_BY(mu_);         // published with each snapshot
  std::shared_ptr<const LeaseBook> book_ SRIOVD_GUARDED_BY(mu_);  // published with each snapshot
  std::set<std::string> lease_busy_ SRIOVD_GUARDED_BY(mu_);       // leases in a libvirt call made without mu_
  std::function<Result<void>(const Lease&)> detach_;
  std::function<Result<void>(const PciAddress&)> in_use_;
};

}  // namespace sriovd::agent
