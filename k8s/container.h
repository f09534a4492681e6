// What kubelet passes to a container for the devices sriovd-k8s allocated: environment, device
// nodes, and Container Device Interface (CDI) specs. Pure functions of the allocated devices,
// plus one atomic file write for the CDI spec. Stateless and thread-safe.
//
// Environment, per resource "<prefix>/<pool>":
//   PCIDEVICE_<RESOURCE>       comma-separated PCI addresses, in allocation order
//   PCIDEVICE_<RESOURCE>_INFO  {"<address>": {"generic": {"deviceID": ...},
//                                "vfio": {"mount": "/dev/vfio/vfio", "dev-mount": "/dev/vfio/<group>"},
//                                "netdev": {"name": ...}}}
// where <RESOURCE> is the resource name upper-cased with every character outside [A-Z0-9_]
// (".", "/", "-") as "_", so it is a portable shell variable name.
#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "k8s/pool.h"

namespace sriovd::k8s {

struct AllocatedDevice {
  PciAddress address;
  std::optional<int> iommu_group;  // needed for vfio
  std::vector<std::string> netdevs;
};

struct DeviceNode {
  std::string container_path;
  std::string host_path;
  std::string permissions;  // "rw"
  bool operator==(const DeviceNode&) const = default;
};

struct ContainerEdits {
  std::map<std::string, std::string> envs;
  std::vector<DeviceNode> devices;       // raw device specs (no CDI)
  std::vector<std::string> cdi_devices;  // fully qualified CDI names (with CDI)
};

std::string env_name(const std::string& resource);  // "sriovd.io/fast" → "PCIDEVICE_SRIOVD_IO_FAST"

// Env and either device specs (cdi = false) or CDI device names (cdi = true) for one container.
// A vfio device without an IOMMU group cannot be handed to a container: that is an error.
Result<ContainerEdits> container_edits(const std::string& resource, Mode mode,
                                       const std::vector<AllocatedDevice>& devices, bool cdi);

// The CDI device name of a PCI address (CDI names allow [A-Za-z0-9_.:-]): the address itself.
std::string cdi_device_name(const PciAddress& a);
// "<resource>=<address>": what goes into ContainerAllocateResponse.cdi_devices.
std::string cdi_qualified_name(const std::string& resource, const PciAddress& a);
// The spec file for a resource: "sriovd.io/fast" → "sriovd.io-fast.json".
std::string cdi_spec_file_name(const std::string& resource);

// A CDI spec (cdiVersion 0.6.0, kind = resource) naming every device; vfio devices carry their
// /dev/vfio/<group> node, and the spec-wide edits add /dev/vfio/vfio.
nlohmann::json cdi_spec(const std::string& resource, Mode mode, const std::vector<AllocatedDevice>& devices);

// Writes `content` to `path` so readers see the old file or the new one, never a part: a temp
// file in the same directory, fsync, rename, fsync of the directory.
Result<void> write_file_atomic(const std::filesystem::path& path, const std::string& content);

}  // namespace sriovd::k8s
