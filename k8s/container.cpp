#include "k8s/container.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <nlohmann/json.hpp>

#include "base/fd.h"

namespace sriovd::k8s {

using nlohmann::json;

namespace {

constexpr const char* kVfioContainer = "/dev/vfio/vfio";

std::string group_node(int group) { return "/dev/vfio/" + std::to_string(group); }

std::string upper_token(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch >= 'a' && ch <= 'z') out += static_cast<char>(ch - 'a' + 'A');
    else if ((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_') out += ch;
    else out += '_';
  }
  return out;
}

}  // namespace

std::string env_name(const std::string& resource) { return "PCIDEVICE_" + upper_token(resource); }

std::string cdi_device_name(const PciAddress& a) { return a.to_string(); }

std::string cdi_qualified_name(const std::string& resource, const PciAddress& a) {
  return resource + "=" + cdi_device_name(a);
}

std::string cdi_spec_file_name(const std::string& resource) {
  std::string out;
  for (char ch : resource) out += ch == '/' ? '-' : ch;
  return out + ".json";
}

Result<ContainerEdits> container_edits(const std::string& resource, Mode mode,
                                       const std::vector<AllocatedDevice>& devices, bool cdi) {
  ContainerEdits e;
  std::string list;
  json info = json::object();
  bool container_node = false;
  for (const auto& d : devices) {
    std::string addr = d.address.to_string();
    if (!list.empty()) list += ',';
    list += addr;
    json one = {{"generic", {{"deviceID", addr}}}};
    if (mode == Mode::vfio) {
      if (!d.iommu_group)
        return Error::make(ErrorCode::conflict,
                           "device " + addr + " has no IOMMU group: it cannot be passed to a container through vfio");
      one["vfio"] = {{"mount", kVfioContainer}, {"dev-mount", group_node(*d.iommu_group)}};
      if (cdi) {
        e.cdi_devices.push_back(cdi_qualified_name(resource, d.address));
      } else {
        if (!container_node) {
          e.devices.push_back({kVfioContainer, kVfioContainer, "rw"});
          container_node = true;
        }
        DeviceNode node{group_node(*d.iommu_group), group_node(*d.iommu_group), "rw"};
        // Two VFs of one IOMMU group share its node; kubelet wants each path once.
        if (std::find(e.devices.begin(), e.devices.end(), node) == e.devices.end()) e.devices.push_back(node);
      }
    } else if (cdi) {
      e.cdi_devices.push_back(cdi_qualified_name(resource, d.address));
    }
    if (!d.netdevs.empty()) one["netdev"] = {{"name", d.netdevs.front()}};
    info[addr] = std::move(one);
  }
  e.envs[env_name(resource)] = list;
  e.envs[env_name(resource) + "_INFO"] = info.dump();
  return e;
}

json cdi_spec(const std::string& resource, Mode mode, const std::vector<AllocatedDevice>& devices) {
  json devs = json::array();
  for (const auto& d : devices) {
    json edits = json::object();
    // Every CDI device needs at least one edit; the address in the environment is also what a
    // netdev-mode container uses to find its VF.
    edits["env"] = json::array({"SRIOVD_DEVICE_" + upper_token(d.address.to_string()) + "=" + d.address.to_string()});
    if (mode == Mode::vfio && d.iommu_group)
      edits["deviceNodes"] = json::array({{{"path", group_node(*d.iommu_group)}, {"permissions", "rw"}}});
    devs.push_back({{"name", cdi_device_name(d.address)}, {"containerEdits", std::move(edits)}});
  }
  json spec = {{"cdiVersion", "0.6.0"}, {"kind", resource}, {"devices", std::move(devs)}};
  if (mode == Mode::vfio)
    spec["containerEdits"] = {{"deviceNodes", json::array({{{"path", kVfioContainer}, {"permissions", "rw"}}})}};
  return spec;
}

Result<void> write_file_atomic(const std::filesystem::path& path, const std::string& content) {
  auto dir = path.parent_path();
  if (dir.empty()) dir = ".";
  std::string tmpl = (dir / ("." + path.filename().string() + ".XXXXXX")).string();
  int raw = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (raw < 0) return Error::sys(errno, "creating a temporary file in " + dir.string());
  UniqueFd fd(raw);
  auto fail = [&](const std::string& what) {
    int e = errno;
    ::unlink(tmpl.c_str());
    return Error::sys(e, what + " " + tmpl);
  };
  ::fchmod(fd.get(), 0644);  // CDI specs are read by the container runtime, maybe not as us
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd.get(), content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("writing");
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return fail("syncing");
  fd.reset();
  if (::rename(tmpl.c_str(), path.c_str()) != 0) return fail("renaming to " + path.string() + ":");
  UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd) ::fsync(dfd.get());
  return ok();
}

}  // namespace sriovd::k8s
