// What /proc says of a running process, for the benchmarks that watch the daemon.
#pragma once

#include <fstream>
#include <string>

namespace sriovd::bench {

// A "Key:  N kB" line of /proc/PID/status (VmRSS, VmHWM, ...), in KiB; -1 when it cannot be read.
inline long status_kib(int pid, const char* key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(line.find(':') + 1));
  return -1;
}

}  // namespace sriovd::bench
