// simtree: primitives that write a fake sysfs tree in the real kernel's layout.
//
// Every function takes `root`, a directory that stands for /sys, and touches nothing outside it.
// The fixture generator (tests/fixtures) builds whole hosts with these, and SimKernel uses the
// same calls to apply what the kernel would do at runtime (create/remove VFs, move driver
// links). They therefore find everything through the tree itself — a device's directory through
// the `bus/pci/devices/<BDF>` link, its driver through the `driver` link, and so on — and work on
// any tree with the kernel's layout, not only trees made here.
//
// Layout facts relied upon (checked against a running kernel; see the comments in the .cpp):
//   devices/pci<DDDD>:<BB>/                         a root bus (host bridge), e.g. pci0000:00
//   devices/pci0000:00/0000:00:01.0/0000:01:00.0/   functions nest below their upstream bridge
//   VFs are siblings of their PF (same parent directory), whatever bus number they get
//   bus/pci/devices/<BDF>  -> ../../../devices/...  (relative, one link per function)
//   <dev>/subsystem        -> ../../../bus/pci      (as many "../" as the device is deep)
//   <dev>/driver           -> ../../../bus/pci/drivers/<name>, back-link drivers/<name>/<BDF>
//   <dev>/iommu_group      -> ../../../kernel/iommu_groups/N, back-link N/devices/<BDF>
//   <pf>/virtfnN -> ../<VF BDF>, <vf>/physfn -> ../<PF BDF>
//   <dev>/net/<ifname>/, class/net/<ifname> -> ../../devices/.../net/<ifname>
// Relative links are computed the way sysfs does (sysfs_get_target_path): up from the link's
// directory to the closest common ancestor with the target's *parent*, then down.
//
// Files are plain files, all mode 0644 (not the kernel's modes), so a non-root SimKernel and
// tests can rewrite and inspect any attribute. Writes are not atomic and not transactional: a
// failure returns the first error and leaves what was written so far. Not thread-safe for
// concurrent changes to the same device or the same IOMMU group; distinct devices are fine.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/pci_address.h"
#include "base/result.h"

namespace sriovd::simtree {

namespace fs = std::filesystem;

// The PCI Express Capabilities register's Device/Port Type, or `none` for a conventional PCI
// function (no PCIe capability, 256-byte config space instead of 4096).
enum class PcieType : uint8_t {
  none,
  endpoint,         // type 0x0
  legacy_endpoint,  // type 0x1
  root_port,        // type 0x4
  upstream_port,    // type 0x5
  downstream_port,  // type 0x6
  rc_endpoint,      // type 0x9, root complex integrated endpoint (no link)
};

// Bus numbers of a type-1 (bridge) header; primary is the bridge's own bus.
struct BridgeSpec {
  uint8_t secondary = 0;
  uint8_t subordinate = 0;
};

// The SR-IOV extended capability of a PF, mirrored in the sriov_* files.
struct SriovSpec {
  uint16_t total_vfs = 0;
  uint16_t num_vfs = 0;    // what is written to sriov_numvfs / NumVFs; VFs are added apart
  uint16_t offset = 1;     // First VF Offset, in routing IDs
  uint16_t stride = 1;     // VF Stride, in routing IDs
  uint16_t vf_device = 0;  // VF Device ID
  bool drivers_autoprobe = true;
  uint64_t vf_bar_size = uint64_t{64} * 1024;  // VF BAR0 size; the PF's IOV BAR0 holds total_vfs of them
};

struct FunctionSpec {
  PciAddress address;
  // The upstream bridge whose directory this function's directory goes in. Unset: the function
  // sits on a root bus, devices/pci<domain>:<bus>/ (created when missing). Ignored for VFs,
  // which go next to their PF.
  std::optional<PciAddress> parent;

  uint16_t vendor = 0;
  uint16_t device = 0;
  uint16_t subsystem_vendor = 0;
  uint16_t subsystem_device = 0;
  uint32_t class_code = 0;  // 24 bits: base class, subclass, prog-if (0x020000)
  uint8_t revision = 0;

  PcieType pcie = PcieType::endpoint;
  uint8_t link_speed = 3;            // PCIe generation in Link Capabilities/Status (1..5)
  uint8_t link_width = 8;            // lanes
  bool multifunction = false;        // header type bit 7: other functions share the device
  std::optional<BridgeSpec> bridge;  // set: type-1 header, pci_bus/<DDDD:SS>/ directory
  std::optional<SriovSpec> sriov;    // set: a PF (sriov_* files, SR-IOV capability)
  std::optional<PciAddress> physfn;  // set: a VF of that PF (physfn/virtfnN links)
  unsigned vf_index = 0;             // N of the PF's virtfnN link, with physfn

  int numa_node = -1;         // -1: no NUMA affinity ("-1\n")
  std::string local_cpulist;  // empty: node N's cpulist from the tree, else "0"
  unsigned irq = 0;
  bool has_reset = true;     // the `reset` and `reset_method` files exist
  std::string reset_method;  // empty: "flr" for VFs, "flr bus" otherwise
  uint64_t bar0_start = 0;   // 0: derived from the address (64-bit prefetchable)
  uint64_t bar0_size = 0;    // 0: 1 MiB; bridges have no BAR

  std::string driver;                    // empty: unbound
  std::optional<unsigned> iommu_group;   // unset: no iommu_group link (IOMMU off)
  std::string iommu_group_type = "DMA";  // written when the group is created
  std::string iommu_unit;                // "dmar0": `iommu` link to devices/virtual/iommu/dmar0
};

struct NetdevSpec {
  std::string name;      // "ens1f0"
  std::string mac;       // "3c:fd:fe:00:17:00", lower case
  unsigned ifindex = 0;  // 0: next_free_ifindex()
  unsigned mtu = 1500;
  std::string operstate = "up";
  bool carrier = true;
  unsigned type = 1;        // ARPHRD_ETHER
  unsigned flags = 0x1003;  // IFF_UP | IFF_BROADCAST | IFF_MULTICAST
  unsigned dev_port = 0;
};

// What a PF's own files say about its SR-IOV capability and identity (read_sriov_pf).
struct SriovPfInfo {
  PciAddress address;
  fs::path dir;  // relative to root
  uint16_t vendor = 0, subsystem_vendor = 0, subsystem_device = 0;
  uint32_t class_code = 0;
  uint8_t revision = 0;
  int numa_node = -1;
  std::string local_cpulist;
  std::string iommu_unit;  // from the PF's `iommu` link, empty if none
  uint16_t total_vfs = 0, num_vfs = 0, offset = 0, stride = 0, vf_device = 0;
  uint64_t iov_bar_start = 0, vf_bar_size = 0;  // from line 7 of `resource`; 0 if absent
};

struct VfOptions {
  std::string driver;                         // empty: VFs stay unbound
  std::optional<unsigned> first_iommu_group;  // unset: lowest free group numbers
  std::string iommu_group_type = "DMA";
  std::optional<uint16_t> subsystem_device;  // unset: the PF's
  unsigned first_index = 0;                  // add VFs first_index..first_index+count-1
  bool iommu_groups = true;                  // false: no IOMMU groups (the PF has none)
  // Set: every VF joins this existing group instead of a new one (no ACS above the PF: the
  // kernel groups VFs with their PF's upstream bridge). Wins over first_iommu_group.
  std::optional<unsigned> shared_iommu_group;
};

// --- the tree as a whole ------------------------------------------------------------------

// Creates the skeleton every tree has: bus/pci/{devices,drivers,slots}, bus/pci/drivers_probe,
// drivers_autoprobe ("1"), rescan, resource_alignment, uevent; kernel/iommu_groups; class/net;
// class/pci_bus; class/iommu; devices/system/node; module. Idempotent.
Result<void> init_tree(const fs::path& root);

// devices/system/node/node<N>/cpulist and the node's bit in devices/system/node/{online,
// possible,has_cpu} (rewritten as a range list of all declared nodes).
Result<void> add_numa_node(const fs::path& root, int node, std::string_view cpulist);

// An IOMMU hardware unit: devices/virtual/iommu/<name>/ and class/iommu/<name> -> it. Idempotent.
Result<void> add_iommu_unit(const fs::path& root, std::string_view name);

// A loaded module: module/<name>/ with initstate "live" and refcnt. Idempotent.
Result<void> add_module(const fs::path& root, std::string_view name);

// bus/pci/drivers/<name>/ with bind, unbind, new_id, remove_id, uevent, and for modular drivers
// (all but pcieport) the module link and module/<mod>/drivers/pci:<name> back-link, mod being
// the name with '-' as '_' (vfio-pci -> vfio_pci). Idempotent.
Result<void> ensure_driver(const fs::path& root, std::string_view name);

// --- functions ----------------------------------------------------------------------------

// The function's directory relative to root ("devices/pci0000:00/0000:00:01.0/0000:01:00.0"),
// found through bus/pci/devices/<BDF>. ENOENT if there is no such function.
Result<fs::path> device_dir(const fs::path& root, const PciAddress& address);

// The relative symlink target `link` resolved lexically against the relative directory `dir`,
// as a relative path without "." or ".." ("bus/pci/devices" + "../../../devices/x" is
// "devices/x"); nullopt for an absolute target or one that climbs above the root.
std::optional<std::string> join_normal(std::string_view dir, std::string_view link);

// Writes a function: its directory with every attribute, its config space, the bus link, the
// subsystem link, its IOMMU group, driver and (for a VF) physfn/virtfn links. EEXIST if the
// function exists, ENOENT if its parent bridge or PF does not.
Result<void> add_function(const fs::path& root, const FunctionSpec& spec);

// Removes a function as the kernel would on hot-unplug: its VFs first (a PF's driver disables
// SR-IOV when it goes), the functions below it (a bridge), then its netdevs' class links, its
// driver back-link, its IOMMU group membership (and the group when it becomes empty), its
// IOMMU unit back-link, its bus link, the PF's virtfnN link if it is a VF, and the directory.
Result<void> remove_function(const fs::path& root, const PciAddress& address);

// Moves the `driver` link, the drivers/<name>/<BDF> back-link, the DRIVER= line of `uevent` and
// `enable` ("1" bound, "0" not). Binding to the driver it already has is a no-op; binding a
// function bound elsewhere is EBUSY. Unbinding an unbound function is a no-op.
Result<void> bind_driver(const fs::path& root, const PciAddress& address, std::string_view driver);
Result<void> unbind_driver(const fs::path& root, const PciAddress& address);

// Moves the function into IOMMU group N (created with `type` if new); leaves its old group,
// removing that group when it becomes empty.
Result<void> set_iommu_group(const fs::path& root, const PciAddress& address, unsigned group,
                             std::string_view type = "DMA");

// The lowest group number not in kernel/iommu_groups, as the kernel's ida allocator picks it.
Result<unsigned> next_free_iommu_group(const fs::path& root);

// <pf>/virtfn<index> -> ../<vf> and <vf>/physfn -> ../<pf>.
Result<void> link_vf(const fs::path& root, const PciAddress& pf, const PciAddress& vf, unsigned index);

// --- SR-IOV -------------------------------------------------------------------------------

// Reads a PF's identity and SR-IOV files. ENOENT if the function has no sriov_totalvfs.
Result<SriovPfInfo> read_sriov_pf(const fs::path& root, const PciAddress& pf);

// VF `index` (0-based) of a PF: routing ID = PF's + offset + stride * index.
PciAddress vf_address(const PciAddress& pf, uint16_t offset, uint16_t stride, unsigned index);

// Adds VFs 0..count-1 of a PF (options.first_index shifts the range) the way the kernel's
// pci_iov_add_virtfn does: BDF from sriov_offset/stride, device id from sriov_vf_device,
// identity and NUMA node from the PF, directory next to the PF, virtfn/physfn links, one new
// IOMMU group each (none with options.iommu_groups false, the shared one when given), BAR0 inside the PF's IOV BAR,
// bound to `options.driver` if set. Does not touch sriov_numvfs (write_numvfs). ERANGE if the range passes
// sriov_totalvfs, EEXIST if a VF is there already. Returns the VF addresses in index order.
Result<std::vector<PciAddress>> add_vfs(const fs::path& root, const PciAddress& pf, unsigned count,
                                        const VfOptions& options = {});

// Records N enabled VFs: sriov_numvfs, and NumVFs / VF Enable / VF MSE in the SR-IOV capability
// of `config` (found by walking the extended capability list).
Result<void> write_numvfs(const fs::path& root, const PciAddress& pf, unsigned num_vfs);

// --- netdevs ------------------------------------------------------------------------------

// <dev>/net/<name>/ with address, addr_len, ifindex, operstate, carrier, mtu, type, flags,
// dev_port, uevent (INTERFACE=, IFINDEX=), device and subsystem links, and class/net/<name>.
// EEXIST if a netdev of that name exists anywhere. (The kernel has ~30 more attributes and
// queues/, statistics/; only these are written, to keep trees cheap.)
Result<void> add_netdev(const fs::path& root, const PciAddress& address, const NetdevSpec& spec);

// Removes class/net/<name> and the netdev's directory (and <dev>/net/ when it becomes empty).
Result<void> remove_netdev(const fs::path& root, std::string_view name);

// One more than the highest ifindex under class/net (at least 2: lo is 1).
Result<unsigned> next_free_ifindex(const fs::path& root);

// --- helpers (exposed for tests and SimKernel) --------------------------------------------

// The link text sysfs would create at `link_dir` (relative to root) for `target` (relative to
// root): "../" up to the common ancestor of link_dir and target's parent, then down.
std::string relative_link(const fs::path& link_dir, const fs::path& target);

// "pci:v00008086d00001593sv00008086sd00000002bc02sc00i00" (upper-case hex, as the kernel).
std::string modalias(uint16_t vendor, uint16_t device, uint16_t subsystem_vendor, uint16_t subsystem_device,
                     uint32_t class_code);

// The config space add_function writes for `spec`: 256 bytes for conventional functions, 4096
// for PCIe ones.
std::string config_space(const FunctionSpec& spec);

}  // namespace sriovd::simtree
