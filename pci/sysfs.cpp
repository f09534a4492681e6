#include "pci/sysfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sriovd::pci {

Result<std::string> read_at(int dirfd, const char* name, size_t max) {
  UniqueFd fd(::openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd) return Error::sys(errno, std::string("opening ") + name);
  std::string out;
  out.resize(max);
  size_t got = 0;
  // A sysfs attribute comes whole in one read, and a regular file (a fake tree's) returns less
  // than asked only at its end: a short read is the end, with no read of 0 to confirm it.
  while (got < max) {
    const size_t want = max - got;
    ssize_t n = ::read(fd.get(), out.data() + got, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::sys(errno, std::string("reading ") + name);
    }
    got += static_cast<size_t>(n);
    if (static_cast<size_t>(n) < want) break;
  }
  out.resize(got);
  return out;
}

Result<std::string> readlink_at(int dirfd, const char* name) {
  char buf[4096];
  ssize_t n = ::readlinkat(dirfd, name, buf, sizeof buf);
  if (n < 0) return Error::sys(errno, std::string("reading link ") + name);
  return std::string(buf, static_cast<size_t>(n));
}

Result<UniqueFd> open_dir_at(int dirfd, const char* name) {
  UniqueFd fd(::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return Error::sys(errno, std::string("opening directory ") + name);
  return fd;
}

Result<std::vector<DirEntry>> list_dir_fd(int dirfd, DirEnd end) {
  // getdents64 straight on the fd: fdopendir() would cost a dup, an fstat and two fcntls per
  // directory, and the inventory lists one directory per netdev function.
  std::vector<DirEntry> out;
  alignas(8) char buf[16384];
  for (;;) {
    ssize_t n = ::getdents64(dirfd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::sys(errno, "reading directory");
    }
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      auto* de = reinterpret_cast<struct dirent64*>(buf + off);
      off += de->d_reclen;
      const char* name = de->d_name;
      if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
      out.push_back(DirEntry{name, de->d_type});
    }
    // Room for the longest entry (a 255-byte name) was left: the file system had no more.
    if (end == DirEnd::short_read && sizeof buf - static_cast<size_t>(n) > sizeof(struct dirent64)) break;
  }
  return out;
}

Result<SysfsRoot> SysfsRoot::open(const std::filesystem::path& root) {
  SysfsRoot r;
  r.path_ = root;
  r.fd_ = UniqueFd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!r.fd_) return Error::sys(errno, "opening sysfs root " + root.string());
  r.devices_fd_ = UniqueFd(::openat(r.fd_.get(), "bus/pci/devices", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!r.devices_fd_) {
    int e = errno;
    Error err = Error::sys(e, root.string() + " is not a sysfs tree: bus/pci/devices cannot be opened");
    err.code = ErrorCode::unavailable;
    return err;
  }
  struct statfs fs;
  if (::fstatfs(r.fd_.get(), &fs) == 0 && (fs.f_type == SYSFS_MAGIC || fs.f_type == TMPFS_MAGIC))
    r.dir_end_ = DirEnd::short_read;
  return r;
}

Result<std::string> SysfsRoot::read(const std::string& relpath, size_t max) const {
  auto r = read_at(fd_.get(), relpath.c_str(), max);
  if (!r) return Error(std::move(r).error());
  return r;
}

Result<std::string> SysfsRoot::readlink(const std::string& relpath) const {
  return readlink_at(fd_.get(), relpath.c_str());
}

bool SysfsRoot::exists(const std::string& relpath) const {
  struct stat st;
  return ::fstatat(fd_.get(), relpath.c_str(), &st, 0) == 0;
}

Result<std::vector<DirEntry>> SysfsRoot::list(const std::string& relpath) const {
  auto dir = open_dir_at(fd_.get(), relpath.c_str());
  if (!dir) return std::move(dir).error();
  return list_dir_fd(dir->get(), dir_end_);
}

}  // namespace sriovd::pci
