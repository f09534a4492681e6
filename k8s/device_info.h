// Device-information files of the Network Plumbing Working Group's device-info spec, version
// 1.1.0 (github.com/k8snetworkplumbingwg/device-info-spec, SPEC.md §3 and §4.1). Multus reads
// the file of each device kubelet allocated to a pod and hands it on to sriov-cni and the pod's
// network-status annotation.
//
// One file per allocated device: <dir>/<resource, "/" as "-">-<device ID>-device.json, e.g.
// /var/run/k8s.cni.cncf.io/devinfo/dp/sriovd.io-fast-0000:3b:02.1-device.json, holding
//   {"type": "pci", "version": "1.1.0",
//    "pci": {"pci-address": "0000:3b:02.1", "pf-pci-address": "0000:3b:00.0"}}
// Our device IDs are PCI addresses. Files are written atomically (readers see the whole file or
// none) and readable by everyone. Thread-safe: no shared state; callers that race on one file
// get one of the writes.
#pragma once

#include <cstddef>
#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "base/pci_address.h"
#include "base/result.h"

namespace sriovd::k8s {

inline constexpr const char* kDeviceInfoVersion = "1.1.0";
inline constexpr const char* kDeviceInfoDir = "/var/run/k8s.cni.cncf.io/devinfo/dp";

// What one file says about a PCI device (SPEC.md §3.1.3).
struct DeviceInfoEntry {
  PciAddress address;
  std::optional<PciAddress> pf;  // a VF's PF: "pf-pci-address"
  std::string rdma_device;       // "rdma-device", when the function has one
  std::string representor;       // "representor-device", a switchdev VF's representor netdev
};

nlohmann::json device_info_json(const DeviceInfoEntry& e);

// "sriovd.io/fast", 0000:3b:02.1 → "sriovd.io-fast-0000:3b:02.1-device.json" (§4.1).
std::string device_info_file_name(const std::string& resource, const PciAddress& a);
// The device of a file name of `resource`; nullopt when the name is not one of that resource's.
std::optional<PciAddress> device_info_file_device(const std::string& resource, std::string_view file_name);

class DeviceInfoDir {
 public:
  explicit DeviceInfoDir(std::filesystem::path dir) : dir_(std::move(dir)) {}
  const std::filesystem::path& path() const { return dir_; }
  std::filesystem::path file(const std::string& resource, const PciAddress& a) const {
    return dir_ / device_info_file_name(resource, a);
  }

  // Creates the directory when missing (§4.1.1), then writes the file atomically.
  Result<void> write(const std::string& resource, const DeviceInfoEntry& e) const;
  // A file that is not there is not an error.
  Result<void> remove(const std::string& resource, const PciAddress& a) const;
  // Removes every file of `resources` whose (resource, device) is not in `keep`; other files in
  // the directory (other device plugins') are left alone. Returns how many were removed.
  Result<size_t> prune(const std::set<std::string>& resources,
                       const std::set<std::pair<std::string, PciAddress>>& keep) const;

 private:
  std::filesystem::path dir_;
};

}  // namespace sriovd::k8s
