// simtree internals shared by the sim_tree*.cpp files: path and file helpers over the tree's root
// (errors name paths relative to it), number parsing, and the pieces add_function is made of.
// Not for use outside sim_tree; the public calls are in sim_tree.h.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/pci_address.h"
#include "base/result.h"
#include "sim/sim_tree.h"

namespace sriovd::simtree::detail {

constexpr mode_t kFileMode = 0644;
constexpr mode_t kDirMode = 0755;

// Where BARs go. Each bus gets a 4 GiB window: function BAR0s at devfn << 20 (1 MiB each), PF
// IOV BARs at +2 GiB + devfn << 23 (8 MiB each). Bridges' prefetchable windows cover their
// secondary..subordinate buses, so config space, `resource` and the windows agree.
constexpr uint64_t kMemBase = 0x200000000000ULL;
uint64_t bus_window(uint32_t domain, unsigned bus);
uint64_t default_bar0(const PciAddress& a);
uint64_t default_iov_bar(const PciAddress& a);

// snprintf into a string (at most 255 characters).
std::string fmt(const char* format, auto... args) {
  char buf[256];
  int n = std::snprintf(buf, sizeof buf, format, args...);
  return {buf, static_cast<size_t>(std::clamp(n, 0, static_cast<int>(sizeof buf) - 1))};
}

std::string bdf(const PciAddress& a);
// Splits a relative path on '/', dropping empty and "." components.
std::vector<std::string> components(const std::string& p);
Error sys(int err, const std::string& what);

// Files, links and directories at `rel` under `root`; errors name `rel`.
Result<void> write_at(int dirfd, const char* name, std::string_view data, const fs::path& dir);
Result<void> write_file(const fs::path& root, const fs::path& rel, std::string_view data);
Result<std::string> read_at(int dirfd, const char* name, const fs::path& dir);
Result<std::string> read_file(const fs::path& root, const fs::path& rel);
Result<std::string> read_link(const fs::path& root, const fs::path& rel);
// Creates root/rel; `exclusive` makes an existing directory EEXIST. Returns whether it made it.
Result<bool> make_dir(const fs::path& root, const fs::path& rel, bool exclusive = false);
// Creates the link `link` (relative to root) pointing where sysfs would point it at `target`.
Result<void> make_link(const fs::path& root, const fs::path& link, const fs::path& target);
// `rm -r`; ENOENT is success.
Result<void> remove_tree(const fs::path& root, const fs::path& rel);
// unlink; ENOENT is success.
Result<void> remove_path(const fs::path& root, const fs::path& rel);
bool exists(const fs::path& root, const fs::path& rel);
// Names in a directory, without "." and "..". ENOENT yields an empty list.
Result<std::vector<std::string>> list_dir(const fs::path& root, const fs::path& rel);

// Trailing newlines, blanks and NULs off.
std::string trim(std::string s);
// Parses "0x8086", "8086" (base 16) or "42" (base 10), with or without the trailing newline.
std::optional<uint64_t> parse_num(std::string_view s, int base);
Result<uint64_t> read_num(const fs::path& root, const fs::path& rel, int base);

// What add_function writes (sim_tree_function.cpp, sim_tree_config.cpp).
std::string resource_text(const FunctionSpec& s);
std::string uevent_text(const FunctionSpec& s, std::string_view driver);
std::string root_bus_name(uint32_t domain, uint8_t bus);
Result<void> ensure_pci_bus(const fs::path& root, const fs::path& parent, const std::string& name);
Result<fs::path> ensure_root_bus(const fs::path& root, uint32_t domain, uint8_t bus);
Result<void> join_iommu_group(const fs::path& root, const fs::path& devdir, const PciAddress& a, unsigned group,
                              std::string_view type);
Result<void> leave_iommu_group(const fs::path& root, const fs::path& devdir, const PciAddress& a);
Result<void> join_iommu_unit(const fs::path& root, const fs::path& devdir, const PciAddress& a,
                             const std::string& unit);
Result<void> rewrite_driver_line(const fs::path& root, const fs::path& devdir, std::string_view driver);
Result<void> write_attributes(const fs::path& root, const fs::path& devdir, const FunctionSpec& s,
                              const std::string& cpulist);
Result<void> add_function_in(const fs::path& root, const fs::path& parent_dir, const FunctionSpec& s);

}  // namespace sriovd::simtree::detail
