#include "kernel/open_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/fd.h"

namespace sriovd::kernel {

namespace {

bool all_digits(const char* s) {
  if (*s == '\0') return false;
  for (; *s; ++s)
    if (*s < '0' || *s > '9') return false;
  return true;
}

std::string read_comm(int pid_dir) {
  UniqueFd fd(::openat(pid_dir, "comm", O_RDONLY | O_CLOEXEC));
  if (!fd) return "?";
  char buf[64];
  ssize_t n = ::read(fd.get(), buf, sizeof buf);
  if (n <= 0) return "?";
  std::string s(buf, static_cast<size_t>(n));
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

// The fd links of one process that read one of `paths`.
void scan_process(int proc_dir, const char* pid_name, const std::vector<std::string>& paths,
                  std::vector<FileHolder>& out) {
  UniqueFd pid_dir(::openat(proc_dir, pid_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!pid_dir) return;  // exited meanwhile
  int fd_dir_fd = ::openat(pid_dir.get(), "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd_dir_fd < 0) return;  // exited, or not ours to read
  DIR* fds = ::fdopendir(fd_dir_fd);
  if (!fds) {
    ::close(fd_dir_fd);
    return;
  }
  while (const dirent* e = ::readdir(fds)) {
    if (!all_digits(e->d_name)) continue;
    char target[4096];
    ssize_t n = ::readlinkat(::dirfd(fds), e->d_name, target, sizeof target - 1);
    if (n <= 0) continue;
    std::string link(target, static_cast<size_t>(n));
    if (std::find(paths.begin(), paths.end(), link) == paths.end()) continue;
    out.push_back({static_cast<pid_t>(std::strtol(pid_name, nullptr, 10)), read_comm(pid_dir.get()), link});
    break;  // one line per process is enough to name it
  }
  ::closedir(fds);
}

}  // namespace

Result<std::vector<FileHolder>> find_holders(const std::filesystem::path& proc_root,
                                             const std::vector<std::string>& paths) {
  int dir_fd = ::open(proc_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return Error::sys(errno, "listing " + proc_root.string() + " for open files");
  DIR* procs = ::fdopendir(dir_fd);
  if (!procs) {
    int err = errno;
    ::close(dir_fd);
    return Error::sys(err, "listing " + proc_root.string() + " for open files");
  }
  std::vector<FileHolder> out;
  while (const dirent* e = ::readdir(procs))
    if (all_digits(e->d_name)) scan_process(::dirfd(procs), e->d_name, paths, out);
  ::closedir(procs);
  std::sort(out.begin(), out.end(), [](const FileHolder& a, const FileHolder& b) { return a.pid < b.pid; });
  return out;
}

}  // namespace sriovd::kernel
