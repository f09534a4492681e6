// sriovd-bench-hotplug: how long a hot-plugged or hot-removed function takes to show in sriovd.
//
// Writes the `large` host (1,040 functions) to a temp dir, starts `sriovd serve --sim` on it,
// follows GET /v1/events, and then removes and adds back a VF with the simulated kernel
// (SimKernel::hot_remove / hot_add: the tree changes, then the kernel-format uevent goes to the
// daemon's socket) EVENTS times. For each it measures from the uevent sent (the call's return)
// and from the start of the call to the arrival of the device.removed / device.added event on the
// stream, which the daemon publishes after the new snapshot, so REST already shows it (checked
// with a GET after each one). Prints one JSON line:
//   {"events": 200, "p50_ms": .., "p99_ms": .., "max_ms": .., "p50_with_tree_ms": .., ...}
// Usage: sriovd-bench-hotplug SRIOVD_BIN [EVENTS]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "base/mutex.h"
#include "base/sse_parser.h"
#include "cli/client.h"
#include "sim/sim_kernel.h"
#include "tests/fixtures/profiles.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {

double pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  auto i = static_cast<size_t>(std::lround(p * static_cast<double>(v.size() - 1)));
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s SRIOVD_BIN [EVENTS]\n", argv[0]);
    return 2;
  }
  const int events = argc > 2 ? std::stoi(argv[2]) : 200;
  test::TempDir dir("sriovd-bench-hotplug");
  auto m = fixtures::build_profile("large", dir / "sys");
  if (!m) {
    std::fprintf(stderr, "fakehost: %s\n", m.error().message.c_str());
    return 1;
  }
  const std::string sock = (dir / "s.sock").string();
  test::Daemon d;
  if (!d.start({argv[1], "serve", "--sim", "--sysfs-root", (dir / "sys").string(), "--state-dir",
                (dir / "state").string(), "--listen", "unix:" + sock})) {
    std::fprintf(stderr, "start failed: %s\n", d.error().c_str());
    return 1;
  }
  PciAddress target;
  for (const auto& f : m->functions)
    if (f.physfn) {
      target = f.address;
      break;
    }
  const std::string bdf = target.to_string();

  // What the follower thread has seen of the event stream.
  struct Stream {
    Mutex mu;
    CondVar cv;
    std::vector<std::pair<std::string, Clock::time_point>> arrived SRIOVD_GUARDED_BY(mu);  // type, when
    bool subscribed SRIOVD_GUARDED_BY(mu) = false;
  } stream;
  std::thread follower([&] {
    cli::Client c(cli::Endpoint::resolve("", sock));
    cli::SseParser parser;
    (void)c.stream("/v1/events", {}, [&](std::string_view bytes) {
      auto now = Clock::now();
      auto evs = parser.feed(bytes);
      MutexLock lock(stream.mu);
      stream.subscribed = true;
      for (const auto& e : evs) {
        auto j = json::parse(e.data, nullptr, false);
        if (j.is_object() && j.value("address", "") == bdf) stream.arrived.emplace_back(e.type, now);
      }
      stream.cv.notify_all();
      return true;
    });
  });
  {
    MutexLock lock(stream.mu);
    if (!stream.cv.wait_for(lock, std::chrono::seconds(10),
                            [&]() SRIOVD_REQUIRES(stream.mu) { return stream.subscribed; })) {
      std::fprintf(stderr, "no event stream\n");
      return 1;
    }
  }
  auto sim = kernel::SimKernel::open(dir / "sys");
  if (!sim) return 1;
  cli::Client rest(cli::Endpoint::resolve("", sock));
  std::vector<double> from_sent, from_start;
  for (int i = 0; i < events; ++i) {
    const bool remove = i % 2 == 0;
    const std::string want = remove ? "device.removed" : "device.added";
    size_t seen;
    {
      MutexLock lock(stream.mu);
      seen = stream.arrived.size();
    }
    auto t0 = Clock::now();
    auto r = remove ? (*sim)->hot_remove(target) : (*sim)->hot_add(target);
    auto t1 = Clock::now();
    if (!r) {
      std::fprintf(stderr, "%s: %s\n", want.c_str(), r.error().message.c_str());
      return 1;
    }
    Clock::time_point t2;
    {
      MutexLock lock(stream.mu);
      bool got = stream.cv.wait_for(lock, std::chrono::seconds(10), [&]() SRIOVD_REQUIRES(stream.mu) {
        for (size_t k = seen; k < stream.arrived.size(); ++k)
          if (stream.arrived[k].first == want) {
            t2 = stream.arrived[k].second;
            return true;
          }
        return false;
      });
      if (!got) {
        std::fprintf(stderr, "no %s event for %s within 10 s\n", want.c_str(), bdf.c_str());
        return 1;
      }
    }
    auto g = rest.request("GET", "/v1/devices/" + bdf);
    if (!g || g->status != (remove ? 404 : 200)) {
      std::fprintf(stderr, "REST disagrees after %s: %ld\n", want.c_str(), g ? g->status : -1L);
      return 1;
    }
    from_sent.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
    from_start.push_back(std::chrono::duration<double, std::milli>(t2 - t0).count());
  }
  d.stop();
  follower.join();
  std::printf(
      "{\"events\": %d, \"device\": \"%s\", \"p50_ms\": %.2f, \"p99_ms\": %.2f, \"max_ms\": %.2f, "
      "\"p50_with_tree_ms\": %.2f, \"p99_with_tree_ms\": %.2f}\n",
      events, bdf.c_str(), pct(from_sent, 0.5), pct(from_sent, 0.99),
      *std::max_element(from_sent.begin(), from_sent.end()), pct(from_start, 0.5), pct(from_start, 0.99));
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "sriovd-bench-hotplug: %s\n", e.what());
  return 1;
} catch (...) {
  std::fprintf(stderr, "sriovd-bench-hotplug: unknown exception\n");
  return 1;
}
