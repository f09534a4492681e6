#include "k8s/device_info.h"

#include <cerrno>
#include <nlohmann/json.hpp>
#include <system_error>

#include "k8s/container.h"

namespace sriovd::k8s {

namespace {

constexpr std::string_view kSuffix = "-device.json";

// §4.1: "If <resourceName> contains "/", they shall be replaced by "-" characters."
std::string file_prefix(const std::string& resource) {
  std::string s = resource;
  for (char& c : s)
    if (c == '/') c = '-';
  return s + "-";
}

}  // namespace

nlohmann::json device_info_json(const DeviceInfoEntry& e) {
  nlohmann::json pci = {{"pci-address", e.address.to_string()}};
  if (e.pf) pci["pf-pci-address"] = e.pf->to_string();
  if (!e.rdma_device.empty()) pci["rdma-device"] = e.rdma_device;
  if (!e.representor.empty()) pci["representor-device"] = e.representor;
  return {{"type", "pci"}, {"version", kDeviceInfoVersion}, {"pci", std::move(pci)}};
}

std::string device_info_file_name(const std::string& resource, const PciAddress& a) {
  return file_prefix(resource) + a.to_string() + std::string(kSuffix);
}

std::optional<PciAddress> device_info_file_device(const std::string& resource, std::string_view name) {
  std::string prefix = file_prefix(resource);
  if (!name.starts_with(prefix) || !name.ends_with(kSuffix)) return std::nullopt;
  if (name.size() < prefix.size() + kSuffix.size()) return std::nullopt;
  std::string_view id = name.substr(prefix.size(), name.size() - prefix.size() - kSuffix.size());
  auto a = PciAddress::parse(id);
  // Only the canonical spelling we write: "sriovd.io-a-b-…" is pool "a-b"'s, not pool "a"'s.
  if (!a || a->to_string() != id) return std::nullopt;
  return a;
}

Result<void> DeviceInfoDir::write(const std::string& resource, const DeviceInfoEntry& e) const {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return Error::sys(ec.value(), "creating " + dir_.string());
  return write_file_atomic(file(resource, e.address), device_info_json(e).dump(2) + "\n");
}

Result<void> DeviceInfoDir::remove(const std::string& resource, const PciAddress& a) const {
  std::error_code ec;
  auto f = file(resource, a);
  std::filesystem::remove(f, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) return Error::sys(ec.value(), "removing " + f.string());
  return ok();
}

Result<size_t> DeviceInfoDir::prune(const std::set<std::string>& resources,
                                    const std::set<std::pair<std::string, PciAddress>>& keep) const {
  std::error_code ec;
  std::filesystem::directory_iterator it(dir_, ec);
  if (ec == std::errc::no_such_file_or_directory) return size_t{0};
  if (ec) return Error::sys(ec.value(), "listing " + dir_.string());
  size_t removed = 0;
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::string name = it->path().filename().string();
    for (const auto& r : resources) {
      auto a = device_info_file_device(r, name);
      if (!a || keep.count({r, *a})) continue;
      if (auto rm = remove(r, *a); !rm) return std::move(rm).error();
      ++removed;
      break;
    }
  }
  if (ec) return Error::sys(ec.value(), "listing " + dir_.string());
  return removed;
}

}  // namespace sriovd::k8s
