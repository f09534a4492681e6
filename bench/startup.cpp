// sriovd-bench-startup: starts `sriovd serve` on a sysfs root RUNS times each way:
// - as systemd would: from exec to the READY=1 notification, and the resident memory then;
// - as a client sees it: from exec until `GET /readyz` on the daemon's socket answers 200
//   (asking every millisecond, as a client polling for readiness does), then one full
//   `GET /v1/devices`, and the resident memory after serving it.
// Prints one JSON line:
//   {"start_to_ready_ms": 41.2, "start_to_ready_min_ms": 40.1, "rss_kib": 9876, "hwm_kib": 11000,
//    "readyz_from_exec_ms": 52.0, "rss_after_devices_kib": 10500, "devices_bytes": 812345, "runs": 10}
// Usage: sriovd-bench-startup SRIOVD_BIN SYSFS_ROOT [RUNS]
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/proc_status.h"
#include "tests/support/process.h"
#include "tests/support/raw_http.h"
#include "tests/support/temp_dir.h"

namespace {

using sriovd::bench::status_kib;

std::string get(const std::string& socket, const std::string& path) {
  auto c = sriovd::test::RawConnection::unix_socket(socket);
  if (!c.connected()) return {};
  if (!c.send("GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")) return {};
  return c.read_response(std::chrono::seconds(30));
}

struct ClientView {
  double readyz_ms = 0;
  long rss_kib = 0;
  size_t devices_bytes = 0;
};

// One start as a client sees it. No NOTIFY_SOCKET: nothing tells the client the daemon is up.
ClientView client_view(const char* sriovd, const char* sysfs_root) {
  sriovd::test::TempDir dir("sriovd-bench");
  const std::string state = (dir / "state").string(), socket = (dir / "s.sock").string();
  const std::string listen = "unix:" + socket;
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::unsetenv("NOTIFY_SOCKET");
    ::execl(sriovd, sriovd, "serve", "--sysfs-root", sysfs_root, "--state-dir", state.c_str(), "--listen",
            listen.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ClientView v;
  for (;;) {
    if (sriovd::test::status_of(get(socket, "/readyz")) == 200) break;
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) throw std::runtime_error("sriovd exited before it was ready");
    if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(60)) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      throw std::runtime_error("sriovd not ready within 60 s");
    }
    ::poll(nullptr, 0, 1);  // a client asking every millisecond
  }
  v.readyz_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const std::string devices = get(socket, "/v1/devices");
  if (sriovd::test::status_of(devices) != 200) throw std::runtime_error("GET /v1/devices did not answer 200");
  v.devices_bytes = devices.size();
  v.rss_kib = status_kib(pid, "VmRSS");
  ::kill(pid, SIGTERM);
  ::waitpid(pid, nullptr, 0);
  return v;
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s SRIOVD_BIN SYSFS_ROOT [RUNS]\n", argv[0]);
    return 2;
  }
  int runs = argc > 3 ? std::stoi(argv[3]) : 10;
  std::vector<double> ms;
  long rss = 0, hwm = 0;
  for (int i = 0; i < runs; ++i) {
    sriovd::test::TempDir dir("sriovd-bench");
    sriovd::test::Daemon d;
    auto t0 = std::chrono::steady_clock::now();
    if (!d.start({argv[1], "serve", "--sysfs-root", argv[2], "--state-dir", (dir / "state").string(), "--listen",
                  "unix:" + (dir / "s.sock").string()})) {
      std::fprintf(stderr, "start failed: %s\n", d.error().c_str());
      return 1;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    rss = std::max(rss, status_kib(d.pid(), "VmRSS"));
    hwm = std::max(hwm, status_kib(d.pid(), "VmHWM"));
    d.stop();
  }
  std::sort(ms.begin(), ms.end());
  std::vector<double> readyz;
  long rss_served = 0;
  size_t devices_bytes = 0;
  for (int i = 0; i < runs; ++i) {
    ClientView v = client_view(argv[1], argv[2]);
    readyz.push_back(v.readyz_ms);
    rss_served = std::max(rss_served, v.rss_kib);
    devices_bytes = v.devices_bytes;
  }
  std::sort(readyz.begin(), readyz.end());
  std::printf(
      "{\"start_to_ready_ms\": %.1f, \"start_to_ready_min_ms\": %.1f, \"rss_kib\": %ld, \"hwm_kib\": %ld, "
      "\"readyz_from_exec_ms\": %.1f, \"rss_after_devices_kib\": %ld, \"devices_bytes\": %zu, \"runs\": %d}\n",
      ms[ms.size() / 2], ms.front(), rss, hwm, readyz[readyz.size() / 2], rss_served, devices_bytes, runs);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "sriovd-bench-startup: %s\n", e.what());
  return 1;
} catch (...) {
  std::fprintf(stderr, "sriovd-bench-startup: unknown exception\n");
  return 1;
}
