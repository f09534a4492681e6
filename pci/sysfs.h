// SysfsRoot: the one place sriovd reads the kernel's sysfs from.
//
// Every path is relative to a root directory (default "/sys"; any directory in tests) that is
// opened once; reads go through openat/readlinkat from directory fds, so no code builds absolute
// /sys paths. All fds are O_CLOEXEC and owned by UniqueFd. A SysfsRoot is immutable after open
// and safe to use from many threads.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "base/fd.h"
#include "base/result.h"

namespace sriovd::pci {

struct DirEntry {
  std::string name;
  unsigned char type;  // DT_DIR, DT_LNK, DT_REG, or DT_UNKNOWN
};

// Reads at most `max` bytes of the attribute `name` under the directory `dirfd`. A read shorter
// than asked is taken as the end (true of sysfs attributes and regular files; not of pipes or
// of /proc files, which are not read through here).
Result<std::string> read_at(int dirfd, const char* name, size_t max = 4096);
// Reads the target of the symlink `name` under `dirfd`.
Result<std::string> readlink_at(int dirfd, const char* name);
// How a directory listing knows it reached the end.
enum class DirEnd {
  empty_read,  // getdents returns 0: right on every file system
  short_read,  // a getdents that did not fill the buffer was the last one: only where the file
               // system fills each buffer while entries remain (sysfs, tmpfs; see SysfsRoot)
};
// Lists a directory (without "." and "..") from an fd freshly opened on it: reading moves the
// fd's position, so never pass an fd another thread may be listing.
Result<std::vector<DirEntry>> list_dir_fd(int dirfd, DirEnd end = DirEnd::empty_read);
// Opens `name` under `dirfd` as a directory (O_RDONLY|O_DIRECTORY|O_CLOEXEC).
Result<UniqueFd> open_dir_at(int dirfd, const char* name);

class SysfsRoot {
 public:
  // How listings under this root end: short_read on sysfs (kernfs) and tmpfs, whose readdir
  // stops only when the caller's buffer is full or the directory is done, which saves one
  // getdents per directory; empty_read on anything else.
  DirEnd dir_end() const { return dir_end_; }

  // Opens `root` and checks that it looks like sysfs: it must hold bus/pci/devices. A tree that
  // does not is a clear error naming what is missing.
  static Result<SysfsRoot> open(const std::filesystem::path& root);

  const std::filesystem::path& path() const { return path_; }
  int fd() const { return fd_.get(); }
  // Only for openat() relative to bus/pci/devices; list it with list("bus/pci/devices").
  int pci_devices_fd() const { return devices_fd_.get(); }

  Result<std::string> read(const std::string& relpath, size_t max = 4096) const;
  Result<std::string> readlink(const std::string& relpath) const;
  bool exists(const std::string& relpath) const;
  Result<std::vector<DirEntry>> list(const std::string& relpath) const;

  SysfsRoot(SysfsRoot&&) = default;
  SysfsRoot& operator=(SysfsRoot&&) = default;

 private:
  SysfsRoot() = default;
  std::filesystem::path path_;
  UniqueFd fd_;
  UniqueFd devices_fd_;  // <root>/bus/pci/devices
  DirEnd dir_end_ = DirEnd::empty_read;
};

}  // namespace sriovd::pci
