#include "sim/file_io.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/fd.h"

namespace sriovd::simio {

Result<std::string> read_at(int dirfd, const char* name) {
  UniqueFd fd(::openat(dirfd, name, O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::sys(errno, std::string("reading ") + name);
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::sys(errno, std::string("reading ") + name);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    // The tree's files are regular files (or sysfs attributes, which come whole in one read):
    // a short read is the end.
    if (static_cast<size_t>(n) < sizeof buf) break;
  }
  return out;
}

Result<std::string> read_text(const char* p) { return read_at(AT_FDCWD, p); }

Result<void> write_at(int dirfd, const char* name, std::string_view data, int extra_flags) {
  UniqueFd fd(::openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | extra_flags, 0644));
  if (!fd) return Error::sys(errno, std::string("writing ") + name);
  while (!data.empty()) {
    ssize_t n = ::write(fd.get(), data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::sys(errno, std::string("writing ") + name);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return ok();
}

Result<void> write_text(const char* p, std::string_view data) { return write_at(AT_FDCWD, p, data); }

Result<void> write_atomic(const char* p, std::string_view data) {
  const std::string tmp = std::string(p) + ".tmp";
  if (auto r = write_text(tmp.c_str(), data); !r) return r;
  if (::rename(tmp.c_str(), p) != 0) return Error::sys(errno, "renaming " + tmp);
  return ok();
}

std::optional<std::string> read_link(const char* p) {
  char buf[PATH_MAX];
  ssize_t n = ::readlink(p, buf, sizeof buf);
  if (n < 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

bool lexists(const char* p) {
  struct stat st;
  return ::lstat(p, &st) == 0;
}

bool is_dir(const char* p) {
  struct stat st;
  return ::stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

Result<std::vector<std::string>> list_dir(const char* p) {
  std::vector<std::string> out;
  DIR* d = ::opendir(p);
  if (!d) {
    if (errno == ENOENT) return out;
    return Error::sys(errno, std::string("listing ") + p);
  }
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    out.emplace_back(e->d_name);
  }
  ::closedir(d);
  return out;
}

std::vector<std::string> list_names(const char* p) {
  auto names = list_dir(p);
  if (!names) return {};
  std::sort(names->begin(), names->end());
  return std::move(*names);
}

std::optional<std::filesystem::path> real_path(const char* p) {
  int fd = ::open(p, O_PATH | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char proc[40];
  std::snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  char buf[PATH_MAX];
  ssize_t n = ::readlink(proc, buf, sizeof buf);
  ::close(fd);
  if (n > 0 && static_cast<size_t>(n) < sizeof buf && buf[0] == '/')
    return std::filesystem::path(std::string(buf, static_cast<size_t>(n)));
  // No /proc: the C library's walk.
  char* r = ::realpath(p, nullptr);
  if (!r) return std::nullopt;
  std::filesystem::path out(r);
  std::free(r);
  return out;
}

}  // namespace sriovd::simio
