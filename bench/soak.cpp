// sriovd-bench-soak: mixed load against a running daemon for a while, then one JSON line.
//   sriovd-bench-soak SOCKET PID SECONDS WARMUP_SECONDS CLIENTS STREAMS POOL CONFIG_PF
// CLIENTS threads each loop over a mix of requests on a keep-alive connection: single devices
// (55%), the pool (10%), the host (5%), one PF's VFs (2%), the whole device list (1%), an
// allocation from POOL and its release (15%, two requests; 409 when every member is leased is
// the intended answer), and a VF attribute change on one of CONFIG_PF's VFs (12%). STREAMS
// threads follow GET /v1/events for the whole run. Every 5 s the daemon's (PID) VmRSS and open
// descriptors are read. Counted: requests by status, any answer that is not 2xx or an intended
// 409, latency percentiles and requests over 1 s, event streams that ended early, and RSS and
// descriptors after the warm-up against their values at its end.
#include <dirent.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "base/mutex.h"
#include "bench/proc_status.h"
#include "cli/client.h"

using namespace sriovd;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {

long rss_kib(int pid) { return bench::status_kib(pid, "VmRSS"); }

long open_fds(int pid) {
  DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (!d) return -1;
  long n = 0;
  while (const dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n;
}

struct Totals {
  Mutex mu;
  std::vector<double> ms SRIOVD_GUARDED_BY(mu);
  std::map<long, long> statuses SRIOVD_GUARDED_BY(mu);
  std::vector<std::string> unexpected SRIOVD_GUARDED_BY(mu);  // the first few, for the report
  long unexpected_count SRIOVD_GUARDED_BY(mu) = 0;
};

}  // namespace

int main(int argc, char** argv) try {
  if (argc != 9) {
    std::fprintf(stderr, "usage: sriovd-bench-soak SOCKET PID SECONDS WARMUP_SECONDS CLIENTS STREAMS POOL CONFIG_PF\n");
    return 2;
  }
  const std::string socket = argv[1];
  const int pid = std::stoi(argv[2]);
  const double seconds = std::stod(argv[3]), warmup = std::stod(argv[4]);
  const int clients = std::stoi(argv[5]), streams = std::stoi(argv[6]);
  const std::string pool = argv[7], config_pf = argv[8];
  const auto endpoint = cli::Endpoint::resolve("", socket);

  // What to ask for: every device's address, and the VFs of CONFIG_PF.
  std::vector<std::string> devices, config_vfs;
  std::string pf_address;
  {
    cli::Client c(endpoint);
    auto r = c.request("GET", "/v1/devices");
    if (!r || r->status != 200) throw std::runtime_error("GET /v1/devices failed");
    const json all = json::parse(r->body)["devices"];
    for (const auto& d : all) {
      devices.push_back(d["address"].get<std::string>());
      for (const auto& n : d["netdevs"])
        if (n == config_pf) pf_address = d["address"].get<std::string>();
    }
    for (const auto& d : all)
      if (d["physfn"].is_string() && d["physfn"] == pf_address) config_vfs.push_back(d["address"].get<std::string>());
    if (config_vfs.empty()) throw std::runtime_error("no VFs of " + config_pf);
  }

  Totals totals;
  std::atomic<bool> stop{false};
  std::atomic<long> events{0}, streams_ended_early{0}, over_1s{0};
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));

  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(clients) + static_cast<size_t>(streams));
  for (int i = 0; i < streams; ++i)
    threads.emplace_back([&] {
      cli::Client c(endpoint);
      auto r = c.stream("/v1/events", {}, [&](std::string_view bytes) {
        for (size_t at = bytes.find("event:"); at != std::string_view::npos; at = bytes.find("event:", at + 1))
          ++events;
        return !stop.load();
      });
      if (!stop.load()) ++streams_ended_early;
    });
  for (int i = 0; i < clients; ++i)
    threads.emplace_back([&, i] {
      cli::Client c(endpoint);
      std::mt19937 rng(static_cast<unsigned>(i) * 7919u + 17u);
      std::vector<double> mine;
      std::map<long, long> statuses;
      std::vector<std::string> odd;
      long odd_count = 0;
      const std::string allocate = json({{"pool", pool}, {"consumer", {{"kind", "vm"}, {"name", "soak"}}}}).dump();
      auto ask = [&](const std::string& method, const std::string& path, const std::string& body,
                     bool conflict_ok) -> std::optional<cli::HttpResult> {
        const auto s = Clock::now();
        auto r = c.request(method, path, body);
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - s).count();
        mine.push_back(ms);
        if (ms > 1000) ++over_1s;
        const long status = r ? r->status : 0;
        ++statuses[status];
        const bool fine = status >= 200 && status < 300;
        if (!fine && !(conflict_ok && status == 409)) {
          ++odd_count;
          if (odd.size() < 5) {
            std::string what = method;
            what += ' ';
            what += path;
            what += ": ";
            if (r) {
              what += std::to_string(status);
              what += ' ';
              what += r->body.substr(0, 200);
            } else {
              what += r.error().message;
            }
            odd.push_back(std::move(what));
          }
        }
        if (!r) return std::nullopt;
        return *r;
      };
      while (Clock::now() < end) {
        const unsigned pick = rng() % 100;
        if (pick < 55) {
          ask("GET", "/v1/devices/" + devices[rng() % devices.size()], {}, false);
        } else if (pick < 65) {
          ask("GET", "/v1/pools/" + pool, {}, false);
        } else if (pick < 70) {
          ask("GET", "/v1/host", {}, false);
        } else if (pick < 72) {
          ask("GET", "/v1/devices?physfn=" + pf_address, {}, false);
        } else if (pick < 73) {
          ask("GET", "/v1/devices", {}, false);
        } else if (pick < 88) {
          auto a = ask("POST", "/v1/allocations", allocate, true);
          if (a && a->status == 201)
            ask("DELETE", "/v1/allocations/" + json::parse(a->body)["id"].get<std::string>(), {}, false);
        } else {
          // Another client may be changing the same VF: a 409 (busy) is an intended answer.
          const json change = {{"vlan", rng() % 4000 + 1}, {"trust", (rng() & 1) != 0}};
          ask("PATCH", "/v1/devices/" + config_vfs[rng() % config_vfs.size()] + "/vf-config", change.dump(), true);
        }
      }
      MutexLock lock(totals.mu);
      totals.ms.insert(totals.ms.end(), mine.begin(), mine.end());
      for (auto [s, n] : statuses) totals.statuses[s] += n;
      totals.unexpected_count += odd_count;
      for (auto& o : odd)
        if (totals.unexpected.size() < 10) totals.unexpected.push_back(o);
    });

  // The daemon's footprint every 5 s; the warm-up's last sample is the baseline.
  json samples = json::array();
  long rss_warm = -1, fds_warm = -1, rss_max_after = -1, fds_max_after = -1;
  for (auto next = t0 + std::chrono::seconds(5); next <= end; next += std::chrono::seconds(5)) {
    std::this_thread::sleep_until(next);  // a sampling interval, not a wait for an event
    const double at = std::chrono::duration<double>(Clock::now() - t0).count();
    const long rss = rss_kib(pid), fds = open_fds(pid);
    samples.push_back({{"s", std::round(at)}, {"rss_kib", rss}, {"fds", fds}});
    if (at <= warmup + 1) {
      rss_warm = rss;
      fds_warm = fds;
    } else {
      rss_max_after = std::max(rss_max_after, rss);
      fds_max_after = std::max(fds_max_after, fds);
    }
  }
  std::this_thread::sleep_until(end);
  stop = true;
  for (int i = 0; i < clients + streams; ++i) threads[static_cast<size_t>(i)].join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();

  MutexLock lock(totals.mu);
  auto& ms = totals.ms;
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) {
    return ms.empty() ? 0.0 : ms[std::min(ms.size() - 1, static_cast<size_t>(p * static_cast<double>(ms.size())))];
  };
  json statuses = json::object();
  for (auto [s, n] : totals.statuses) statuses[std::to_string(s)] = n;
  std::printf("%s\n", json({{"seconds", elapsed},
                            {"clients", clients},
                            {"streams", streams},
                            {"requests", ms.size()},
                            {"requests_per_s", static_cast<double>(ms.size()) / elapsed},
                            {"statuses", statuses},
                            {"unexpected", totals.unexpected_count},
                            {"unexpected_first", totals.unexpected},
                            {"p50_ms", pct(0.5)},
                            {"p99_ms", pct(0.99)},
                            {"max_ms", ms.empty() ? 0.0 : ms.back()},
                            {"over_1s", over_1s.load()},
                            {"events", events.load()},
                            {"streams_ended_early", streams_ended_early.load()},
                            {"rss_warm_kib", rss_warm},
                            {"rss_max_after_kib", rss_max_after},
                            {"rss_end_kib", rss_kib(pid)},
                            {"fds_warm", fds_warm},
                            {"fds_max_after", fds_max_after},
                            {"fds_end", open_fds(pid)},
                            {"samples", samples}})
                          .dump()
                          .c_str());
  const bool ok = totals.unexpected_count == 0 && over_1s.load() == 0 && streams_ended_early.load() == 0;
  return ok ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "sriovd-bench-soak: %s\n", e.what());
  return 1;
}
