// Wall-clock time as the API writes it: RFC 3339 in UTC to the second ("2026-11-23T17:14:55Z").
#pragma once

#include <chrono>
#include <ctime>
#include <string>

namespace sriovd {

inline std::string rfc3339_utc(std::chrono::system_clock::time_point t) {
  auto secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace sriovd
