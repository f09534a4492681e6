#include "tests/support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace sriovd::test {

namespace {

std::string read_all(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::vector<char*> cstrings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

int decode_status(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

std::string temp_name(const char* what) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/sriovd-" + what + ".XXXXXX";
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) throw std::runtime_error("mkstemp");
  ::close(fd);
  return tmpl;
}

}  // namespace

RunResult run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) {
  // Output goes to temp files: no pipe can fill up and deadlock the child.
  std::string out_path = temp_name("out"), err_path = temp_name("err");
  pid_t pid = ::fork();
  if (pid == 0) {
    int o = ::open(out_path.c_str(), O_WRONLY | O_TRUNC);
    int e = ::open(err_path.c_str(), O_WRONLY | O_TRUNC);
    ::dup2(o, 1);
    ::dup2(e, 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    auto args = cstrings(argv);
    ::execv(args[0], args.data());
    std::_Exit(127);
  }
  RunResult r;
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = decode_status(st);
  int fo = ::open(out_path.c_str(), O_RDONLY), fe = ::open(err_path.c_str(), O_RDONLY);
  r.out = read_all(fo);
  r.err = read_all(fe);
  ::close(fo);
  ::close(fe);
  ::unlink(out_path.c_str());
  ::unlink(err_path.c_str());
  return r;
}

bool Daemon::start(const std::vector<std::string>& argv, std::chrono::milliseconds deadline,
                   const std::map<std::string, std::string>& env) {
  // A Daemon may be started again (a restart): the last run's files go first.
  if (notify_fd_ >= 0) ::close(notify_fd_);
  if (!notify_path_.empty()) ::unlink(notify_path_.c_str());
  if (!stderr_path_.empty()) ::unlink(stderr_path_.c_str());
  notify_path_ = temp_name("notify");
  ::unlink(notify_path_.c_str());
  notify_fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, notify_path_.c_str(), sizeof sa.sun_path - 1);
  if (::bind(notify_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    error_ = "cannot bind notify socket";
    return false;
  }
  stderr_path_ = temp_name("daemon-err");
  pid_ = ::fork();
  if (pid_ == 0) {
    int e = ::open(stderr_path_.c_str(), O_WRONLY | O_TRUNC);
    ::dup2(e, 2);
    ::dup2(e, 1);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::setenv("NOTIFY_SOCKET", notify_path_.c_str(), 1);
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    auto args = cstrings(argv);
    ::execv(args[0], args.data());
    std::_Exit(127);
  }
  if (wait_notify("READY=1", deadline)) return true;
  int st = 0;
  if (::waitpid(pid_, &st, WNOHANG) == pid_) {
    pid_ = -1;
    error_ = "daemon exited with status " + std::to_string(decode_status(st)) + ": " + stderr_text();
  } else {
    error_ = "daemon did not report READY=1 in time: " + stderr_text();
  }
  return false;
}

bool Daemon::wait_notify(const std::string& token, std::chrono::milliseconds deadline) {
  auto end = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    // Also wake up every 100 ms to notice a child that died without notifying.
    pollfd p{notify_fd_, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 100)));
    if (n > 0) {
      char buf[4096];
      ssize_t got = ::recv(notify_fd_, buf, sizeof buf, 0);
      std::string msg(buf, got > 0 ? static_cast<size_t>(got) : 0);
      notifications_.push_back(msg);
      if (msg.find(token) != std::string::npos) {
        if (token == "READY=1") ready_message_ = msg;
        return true;
      }
      continue;
    }
    int st = 0;
    if (pid_ > 0 && ::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      error_ = "daemon exited with status " + std::to_string(decode_status(st));
      return false;
    }
  }
}

int Daemon::stop(int sig) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, sig);
  int st = 0;
  while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  return decode_status(st);
}

void Daemon::signal(int sig) const {
  if (pid_ > 0) ::kill(pid_, sig);
}

int Daemon::wait_exit(std::chrono::milliseconds deadline) {
  if (pid_ <= 0) return -1;
  // A pidfd becomes readable when the process exits: wait for that, not for a timer.
  int pfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  if (pfd >= 0) {
    pollfd p{pfd, POLLIN, 0};
    int n;
    while ((n = ::poll(&p, 1, static_cast<int>(deadline.count()))) < 0 && errno == EINTR) {
    }
    ::close(pfd);
    if (n == 0) return -1;
  }
  int st = 0;
  while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  return decode_status(st);
}

bool Daemon::wait_log(const std::string& text, std::chrono::milliseconds deadline) const {
  // inotify tells when the daemon writes its stderr file; look again each time.
  int in = ::inotify_init1(IN_CLOEXEC);
  int wd = in >= 0 ? ::inotify_add_watch(in, stderr_path_.c_str(), IN_MODIFY) : -1;
  auto end = std::chrono::steady_clock::now() + deadline;
  bool found = false;
  for (;;) {
    if (stderr_text().find(text) != std::string::npos) {
      found = true;
      break;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0 || wd < 0) break;
    pollfd p{in, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) > 0) {
      char buf[4096];
      (void)!::read(in, buf, sizeof buf);
    }
  }
  if (in >= 0) ::close(in);
  return found;
}

std::string Daemon::stderr_text() const {
  std::ifstream in(stderr_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Daemon::~Daemon() {
  if (pid_ > 0) stop(SIGKILL);
  if (notify_fd_ >= 0) ::close(notify_fd_);
  if (!notify_path_.empty()) ::unlink(notify_path_.c_str());
  if (!stderr_path_.empty()) ::unlink(stderr_path_.c_str());
}

}  // namespace sriovd::test
