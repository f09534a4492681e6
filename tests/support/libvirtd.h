// Libvirtd: a real libvirtd of a test's own, entirely inside a temp dir, for tests that attach
// and detach devices through libvirt (virt/ against the library, tests/integration through the
// daemon's REST API).
//
// The daemon runs in session mode: an unprivileged libvirtd keeps its sockets, state, logs and
// QEMU runtime under XDG_RUNTIME_DIR / XDG_CONFIG_HOME / XDG_CACHE_HOME, which point into the temp
// dir (as root every path of the system daemon is fixed under /run/libvirt, /var/lib/libvirt and
// /etc/libvirt). Run as root, the daemon is dropped to the unprivileged uid 65534; its own config
// puts the socket in the temp dir, with no authentication and no TCP. Readiness is the socket
// appearing (inotify) and then accepting a connection, with a deadline; the daemon gets SIGTERM
// when the test process dies.
//
// Programs using it call prepare_libvirt_test() first (see there).
//
// Not thread-safe: one test thread drives it.
#pragma once

#include <libvirt/libvirt.h>
#include <sys/types.h>

#include <chrono>
#include <string>

#include "tests/support/temp_dir.h"

namespace sriovd::test {

// The absolute path of `name` in PATH or the sbin/bin directories, or empty.
std::string find_tool(const std::string& name);

class Libvirtd {
 public:
  // Finds libvirtd and qemu-system-x86_64; missing() says which is not installed.
  Libvirtd();
  ~Libvirtd();
  Libvirtd(const Libvirtd&) = delete;
  Libvirtd& operator=(const Libvirtd&) = delete;

  // Empty when both tools are there, else what to install.
  std::string missing() const;

  // Starts the daemon and waits until it accepts connections (or `deadline`). Returns an empty
  // string on success, else why the daemon is not there (with its log). May be called again
  // after kill_daemon(): the same socket, state and domains.
  std::string start(std::chrono::milliseconds deadline);

  // Destroys the running domains (a stopped libvirtd leaves its QEMU processes behind), then
  // stops the daemon.
  void stop();
  // Stops the daemon process only (SIGTERM, SIGKILL after 20 s); its domains stay defined.
  void kill_daemon();

  // qemu+unix:///session?socket=<temp dir>/sock/libvirt-sock
  std::string uri() const;
  // The test's own connection (valid between start() and kill_daemon()), for defining domains
  // and reading them back independently of the code under test.
  virConnectPtr raw() const { return raw_; }
  const std::string& qemu() const { return qemu_; }
  std::string log() const;

  // The XML of a QEMU (TCG) domain `name` with no devices but the emulator, for defining.
  std::string domain_xml(const std::string& name) const;

 private:
  std::string libvirtd_, qemu_;
  TempDir dir_{"sriovd-libvirtd"};
  std::string socket_;
  pid_t pid_ = -1;
  int pidfd_ = -1;
  virConnectPtr raw_ = nullptr;
};

// For a test program's main(), before anything touches libvirt:
// - sets LIBVIRT_AUTOSTART=0, so that a failed connect never makes the client library spawn a
//   session daemon of its own;
// - ignores SIGPIPE: libvirt writes to its sockets with write(2), so a call on a connection
//   whose daemon was stopped would kill the test instead of failing;
// - when `missing` (Libvirtd::missing()) is not empty, prints why the test cannot run and
//   returns the exit status to use: 77 (skipped), or 1 when CI=true, where it must run.
// Returns -1 when the test can go on.
int prepare_libvirt_test(const char* program, const std::string& missing);

}  // namespace sriovd::test
