#include "tests/support/libvirtd.h"

#include <fcntl.h>
#include <grp.h>
#include <libvirt/virterror.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace sriovd::test {

namespace fs = std::filesystem;

namespace {

constexpr uid_t kUnprivileged = 65534;  // nobody

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string last_libvirt_error() {
  virErrorPtr e = virGetLastError();
  std::string out = e && e->message ? e->message : "unknown libvirt error";
  virResetLastError();
  return out;
}

}  // namespace

std::string find_tool(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = std::string(path ? path : "") + ":/usr/sbin:/usr/bin:/sbin:/bin";
  std::stringstream ss(dirs);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    std::string tool = dir + "/";
    tool += name;
    if (::access(tool.c_str(), X_OK) == 0) return tool;
  }
  return {};
}

Libvirtd::Libvirtd() : libvirtd_(find_tool("libvirtd")), qemu_(find_tool("qemu-system-x86_64")) {}

Libvirtd::~Libvirtd() { stop(); }

std::string Libvirtd::missing() const {
  if (libvirtd_.empty()) return "libvirtd (libvirt-daemon-system)";
  if (qemu_.empty()) return "qemu-system-x86_64 (qemu-system-x86)";
  return {};
}

std::string Libvirtd::uri() const { return "qemu+unix:///session?socket=" + socket_; }

std::string Libvirtd::log() const { return read_text(dir_ / "libvirtd.log"); }

std::string Libvirtd::domain_xml(const std::string& name) const {
  // <acpi/>: without it libvirt 9 passes -no-acpi, an option QEMU 9 and later no longer have.
  return "<domain type='qemu'>\n  <name>" + name +
         "</name>\n  <memory unit='MiB'>64</memory>\n  <vcpu>1</vcpu>\n"
         "  <os><type arch='x86_64' machine='pc'>hvm</type></os>\n"
         "  <features><acpi/></features>\n"
         "  <devices><emulator>" +
         qemu_ + "</emulator></devices>\n</domain>\n";
}

std::string Libvirtd::start(std::chrono::milliseconds deadline) {
  if (std::string m = missing(); !m.empty()) return m + " is not installed";
  const auto until = std::chrono::steady_clock::now() + deadline;
  for (const char* d : {"run", "sock", "config", "cache", "home"}) fs::create_directories(dir_ / d);
  std::ofstream(dir_ / "libvirtd.conf") << "unix_sock_dir = \"" << (dir_ / "sock").string() << "\"\n"
                                        << "unix_sock_rw_perms = \"0700\"\n"
                                        << "auth_unix_rw = \"none\"\n"
                                        << "auth_unix_ro = \"none\"\n"
                                        << "listen_tcp = 0\n"
                                        << "listen_tls = 0\n"
                                        << "log_outputs = \"3:stderr\"\n";
  const bool root = ::geteuid() == 0;
  if (root) {
    // Root may connect to the unprivileged daemon's 0700 socket; the daemon owns its tree.
    if (::chown(dir_.path().c_str(), kUnprivileged, kUnprivileged) != 0) return "chown failed";
    for (const auto& e : fs::recursive_directory_iterator(dir_.path())) {
      if (::chown(e.path().c_str(), kUnprivileged, kUnprivileged) != 0) return "chown failed";
    }
  }
  socket_ = (dir_ / "sock" / "libvirt-sock").string();
  const std::string log_path = (dir_ / "libvirtd.log").string();

  // Watch for the socket before the daemon can create it.
  int ino = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (ino < 0 || ::inotify_add_watch(ino, (dir_ / "sock").c_str(), IN_CREATE) < 0) {
    if (ino >= 0) ::close(ino);
    return "inotify failed";
  }

  std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                                  "LC_ALL=C",
                                  "HOME=" + (dir_ / "home").string(),
                                  "XDG_RUNTIME_DIR=" + (dir_ / "run").string(),
                                  "XDG_CONFIG_HOME=" + (dir_ / "config").string(),
                                  "XDG_CACHE_HOME=" + (dir_ / "cache").string()};
  std::vector<std::string> argv = {libvirtd_, "--config", (dir_ / "libvirtd.conf").string()};
  std::vector<char*> cargv, cenv;
  for (auto& s : argv) cargv.push_back(s.data());
  cargv.push_back(nullptr);
  for (auto& s : env) cenv.push_back(s.data());
  cenv.push_back(nullptr);
  // Appended: a restarted daemon's log follows the first one's.
  int logfd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) {
    ::close(ino);
    if (logfd >= 0) ::close(logfd);
    return "fork failed";
  }
  if (pid_ == 0) {
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::dup2(logfd, 1);
    ::dup2(logfd, 2);
    if (root) {
      if (::setgroups(0, nullptr) != 0 || ::setresgid(kUnprivileged, kUnprivileged, kUnprivileged) != 0 ||
          ::setresuid(kUnprivileged, kUnprivileged, kUnprivileged) != 0) {
        std::_Exit(126);
      }
    }
    // After the uid change (which clears it): the daemon goes when the test goes.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) std::_Exit(1);
    ::execve(cargv[0], cargv.data(), cenv.data());
    std::_Exit(127);
  }
  if (logfd >= 0) ::close(logfd);
  pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  auto remaining = [&] {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<long>(0, left.count()));
  };
  auto died = [&](int timeout_ms) {
    pollfd p{pidfd_, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) == 1;
  };
  // 1. The socket file appears.
  while (!fs::exists(socket_)) {
    pollfd fds[2] = {{ino, POLLIN, 0}, {pidfd_, POLLIN, 0}};
    int n = ::poll(fds, 2, remaining());
    if (n == 0) {
      ::close(ino);
      return "libvirtd created no socket in time; its log:\n" + log();
    }
    if (fds[1].revents) {
      ::close(ino);
      return "libvirtd exited; its log:\n" + log();
    }
    char buf[4096];
    while (::read(ino, buf, sizeof buf) > 0) {
    }
  }
  ::close(ino);
  // 2. It accepts connections: the daemon binds the socket a moment before it listens on it, so
  // a refused connect is retried (watching the daemon) until the deadline.
  for (;;) {
    raw_ = virConnectOpen(uri().c_str());
    if (raw_) break;
    std::string why = last_libvirt_error();
    if (remaining() == 0) return "cannot connect to libvirtd: " + why;
    if (died(20)) return "libvirtd exited; its log:\n" + log();
  }
  return {};
}

void Libvirtd::stop() {
  if (raw_) {
    virDomainPtr* doms = nullptr;
    int n = virConnectListAllDomains(raw_, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    for (int i = 0; i < n; ++i) {
      virDomainDestroy(doms[i]);
      virDomainFree(doms[i]);
    }
    std::free(doms);
    virResetLastError();
  }
  kill_daemon();
}

void Libvirtd::kill_daemon() {
  if (raw_) {
    virConnectClose(raw_);
    raw_ = nullptr;
  }
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    pollfd p{pidfd_, POLLIN, 0};
    if (::poll(&p, 1, 20000) != 1) ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    if (pidfd_ >= 0) ::close(pidfd_);
    pidfd_ = -1;
    pid_ = -1;
  }
}

int prepare_libvirt_test(const char* program, const std::string& missing) {
  ::setenv("LIBVIRT_AUTOSTART", "0", 1);
  ::signal(SIGPIPE, SIG_IGN);
  if (missing.empty()) return -1;
  const char* ci = std::getenv("CI");
  const bool in_ci = ci && std::string(ci) == "true";
  std::fprintf(stderr, "%s: %s: %s not installed (scripts/install-deps.sh --test)\n", program,
               in_ci ? "FAIL (CI=true, cannot skip)" : "SKIP", missing.c_str());
  return in_ci ? 1 : 77;
}

}  // namespace sriovd::test
