// sriovd-bench-startup: starts `sriovd serve` on a sysfs root, measures the time from exec to the
// READY=1 notification and the resident memory once ready, then stops it. Prints one JSON line:
//   {"start_to_ready_ms": 41.2, "rss_kib": 9876, "hwm_kib": 11000}
// Usage: sriovd-bench-startup SRIOVD_BIN SYSFS_ROOT [RUNS]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace {

long status_kib(int pid, const char* key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(line.find(':') + 1));
  return -1;
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
  std::printf(
      "{\"start_to_ready_ms\": %.1f, \"start_to_ready_min_ms\": %.1f, \"rss_kib\": %ld, \"hwm_kib\": %ld, \"runs\": "
      "%d}\n",
      ms[ms.size() / 2], ms.front(), rss, hwm, runs);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "sriovd-bench-startup: %s\n", e.what());
  return 1;
} catch (...) {
  std::fprintf(stderr, "sriovd-bench-startup: unknown exception\n");
  return 1;
}
