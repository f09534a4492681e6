#include "sim/sim_tree_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>

#include "base/fd.h"
#include "pci/sysfs.h"
#include "sim/file_io.h"

namespace sriovd::simtree::detail {

uint64_t bus_window(uint32_t domain, unsigned bus) {
  return kMemBase + (static_cast<uint64_t>(domain) << 40) + (static_cast<uint64_t>(bus) << 32);
}
uint64_t default_bar0(const PciAddress& a) {
  return bus_window(a.domain, a.bus) + (static_cast<uint64_t>(a.device << 3 | a.function) << 20);
}
uint64_t default_iov_bar(const PciAddress& a) {
  return bus_window(a.domain, a.bus) + 0x80000000ULL + (static_cast<uint64_t>(a.device << 3 | a.function) << 23);
}

std::string bdf(const PciAddress& a) { return a.to_string(); }

// Splits a relative path on '/', dropping empty and "." components.
std::vector<std::string> components(const std::string& p) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    if (j > i && !(j - i == 1 && p[i] == '.')) out.emplace_back(p, i, j - i);
    i = j + 1;
  }
  return out;
}

Error sys(int err, const std::string& what) { return Error::sys(err, what); }

// Writes `data` to dirfd/name, creating or truncating it; never through a link.
Result<void> write_at(int dirfd, const char* name, std::string_view data, const fs::path& dir) {
  auto r = simio::write_at(dirfd, name, data, O_NOFOLLOW);
  if (!r) return sys(r.error().errnum, "writing " + (dir / name).string());
  return ok();
}

Result<void> write_file(const fs::path& root, const fs::path& rel, std::string_view data) {
  auto r = write_at(AT_FDCWD, (root / rel).c_str(), data, {});
  if (!r) return sys(r.error().errnum, "writing " + rel.string());
  return ok();
}

Result<std::string> read_at(int dirfd, const char* name, const fs::path& dir) {
  auto r = simio::read_at(dirfd, name);
  if (!r) return sys(r.error().errnum, "reading " + (dir / name).string());
  return r;
}

Result<std::string> read_file(const fs::path& root, const fs::path& rel) {
  auto r = read_at(AT_FDCWD, (root / rel).c_str(), {});
  if (!r) return sys(r.error().errnum, "reading " + rel.string());
  return r;
}

Result<std::string> read_link(const fs::path& root, const fs::path& rel) {
  auto t = simio::read_link((root / rel).c_str());
  if (!t) return sys(errno, "reading link " + rel.string());
  return std::move(*t);
}

// Creates root/rel; `exclusive` makes an existing directory EEXIST.
Result<bool> make_dir(const fs::path& root, const fs::path& rel, bool exclusive) {
  if (::mkdir((root / rel).c_str(), kDirMode) == 0) return true;
  if (errno == EEXIST && !exclusive) return false;
  return sys(errno, "creating " + rel.string());
}

// Creates the link `link` (relative to root) pointing where sysfs would point it at `target`.
Result<void> make_link(const fs::path& root, const fs::path& link, const fs::path& target) {
  std::string text = relative_link(link.parent_path(), target);
  if (::symlink(text.c_str(), (root / link).c_str()) != 0)
    return sys(errno, "linking " + link.string() + " -> " + text);
  return ok();
}

// Removes the directory `name` under `dirfd` and everything in it, as `rm -r` does, from the
// entries' d_type (a tree's entries are files, links and directories); ENOENT is success.
Result<void> remove_tree_at(int dirfd, const char* name, const fs::path& where) {
  UniqueFd fd(::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return ok();
    if (errno == ENOTDIR || errno == ELOOP) {
      if (::unlinkat(dirfd, name, 0) != 0 && errno != ENOENT) return sys(errno, "removing " + where.string());
      return ok();
    }
    return sys(errno, "removing " + where.string());
  }
  auto entries = pci::list_dir_fd(fd.get());
  if (!entries) return std::move(entries).error().context("listing " + where.string());
  for (const auto& e : *entries) {
    unsigned char type = e.type;
    if (type == DT_UNKNOWN) {
      struct stat st;
      if (::fstatat(fd.get(), e.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      type = S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
    }
    if (type == DT_DIR) {
      if (auto r = remove_tree_at(fd.get(), e.name.c_str(), where / e.name); !r) return r;
    } else if (::unlinkat(fd.get(), e.name.c_str(), 0) != 0 && errno != ENOENT) {
      return sys(errno, "removing " + (where / e.name).string());
    }
  }
  if (::unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT) return sys(errno, "removing " + where.string());
  return ok();
}

Result<void> remove_tree(const fs::path& root, const fs::path& rel) {
  return remove_tree_at(AT_FDCWD, (root / rel).c_str(), rel);
}

Result<void> remove_path(const fs::path& root, const fs::path& rel) {
  if (::unlink((root / rel).c_str()) != 0 && errno != ENOENT) return sys(errno, "removing " + rel.string());
  return ok();
}

bool exists(const fs::path& root, const fs::path& rel) { return simio::lexists((root / rel).c_str()); }

Result<std::vector<std::string>> list_dir(const fs::path& root, const fs::path& rel) {
  auto names = simio::list_dir((root / rel).c_str());
  if (!names) return sys(names.error().errnum, "listing " + rel.string());
  return names;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

// Parses "0x8086", "8086" (base 16) or "42" (base 10), with or without the trailing newline.
std::optional<uint64_t> parse_num(std::string_view s, int base) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  if (base == 16 && s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2);
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

Result<uint64_t> read_num(const fs::path& root, const fs::path& rel, int base) {
  auto t = read_file(root, rel);
  if (!t) return std::move(t).error();
  auto v = parse_num(*t, base);
  if (!v) return Error::sys(EINVAL, "parsing " + rel.string() + " (\"" + trim(*t) + "\")");
  return *v;
}

}  // namespace sriovd::simtree::detail
