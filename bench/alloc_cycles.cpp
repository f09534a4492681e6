// sriovd-bench-alloc: durable allocate + release cycles over REST. Each of CLIENTS threads runs
// POST /v1/allocations then DELETE /v1/allocations/{id} against POOL for SECONDS, over the unix
// socket with keep-alive; prints one JSON line with cycles/s, cycle latency percentiles and
// request latency percentiles (each POST and each DELETE on its own).
//   sriovd-bench-alloc SOCKET POOL SECONDS CLIENTS
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "base/mutex.h"
#include "cli/client.h"

using namespace sriovd;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) try {
  if (argc != 5) {
    std::fprintf(stderr, "usage: sriovd-bench-alloc SOCKET POOL SECONDS CLIENTS\n");
    return 2;
  }
  const std::string socket = argv[1], pool = argv[2];
  const double seconds = std::stod(argv[3]);
  const int clients = std::stoi(argv[4]);
  const std::string body = nlohmann::json({{"pool", pool}, {"consumer", {{"kind", "vm"}, {"name", "bench"}}}}).dump();
  struct Cycles {
    Mutex mu;
    std::vector<double> ms SRIOVD_GUARDED_BY(mu);          // every client's cycle times
    std::vector<double> request_ms SRIOVD_GUARDED_BY(mu);  // and request times
  } cycles;
  std::atomic<int> failures{0}, conflicts{0};
  auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(std::max(clients, 0)));
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&] {
      cli::Client c(cli::Endpoint::resolve("", socket));
      std::vector<double> mine, requests;
      auto since = [](Clock::time_point t) {
        return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
      };
      while (Clock::now() < end) {
        auto s = Clock::now();
        auto a = c.request("POST", "/v1/allocations", body);
        const double post_ms = since(s);
        if (!a || (a->status != 201 && a->status != 409)) {
          ++failures;
          break;
        }
        if (a->status == 409) {  // every device leased by the other clients: try again
          ++conflicts;
          continue;
        }
        auto id = nlohmann::json::parse(a->body)["id"].get<std::string>();
        auto ds = Clock::now();
        auto d = c.request("DELETE", "/v1/allocations/" + id);
        if (!d || d->status != 200) {
          ++failures;
          break;
        }
        requests.push_back(post_ms);
        requests.push_back(since(ds));
        mine.push_back(since(s));
      }
      MutexLock lock(cycles.mu);
      cycles.ms.insert(cycles.ms.end(), mine.begin(), mine.end());
      cycles.request_ms.insert(cycles.request_ms.end(), requests.begin(), requests.end());
    });
  }
  for (auto& t : threads) t.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<double> cycle_ms, request_ms;
  {
    MutexLock lock(cycles.mu);
    cycle_ms = std::move(cycles.ms);
    request_ms = std::move(cycles.request_ms);
  }
  std::sort(cycle_ms.begin(), cycle_ms.end());
  std::sort(request_ms.begin(), request_ms.end());
  auto pct_of = [](const std::vector<double>& v, double p) {
    if (v.empty()) return 0.0;
    return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
  };
  auto pct = [&](double p) { return pct_of(cycle_ms, p); };
  std::printf("%s\n", nlohmann::json({{"cycles", cycle_ms.size()},
                                      {"seconds", elapsed},
                                      {"cycles_per_s", static_cast<double>(cycle_ms.size()) / elapsed},
                                      {"p50_ms", pct(0.50)},
                                      {"p99_ms", pct(0.99)},
                                      {"max_ms", cycle_ms.empty() ? 0.0 : cycle_ms.back()},
                                      {"request_p50_ms", pct_of(request_ms, 0.50)},
                                      {"request_p99_ms", pct_of(request_ms, 0.99)},
                                      {"request_max_ms", request_ms.empty() ? 0.0 : request_ms.back()},
                                      {"clients", clients},
                                      {"conflicts", conflicts.load()},
                                      {"failures", failures.load()}})
                          .dump()
                          .c_str());
  return failures.load() == 0 ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "sriovd-bench-alloc: %s\n", e.what());
  return 1;
} catch (...) {
  std::fprintf(stderr, "sriovd-bench-alloc: unknown exception\n");
  return 1;
}
