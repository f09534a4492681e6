// WorkerPool: workers start as jobs need them, never more than the bound, and leave when idle.
#include "rest/worker_pool.h"

#include <doctest/doctest.h>

#include <latch>
#include <semaphore>

using namespace sriovd::rest;
using namespace std::chrono_literals;

namespace {

// Blocks until `live` holds `want` (woken by the pool's notify at each change).
void wait_for_count(std::atomic<int>& live, int want) {
  for (int v = live.load(); v != want; v = live.load()) live.wait(v);
}

}  // namespace

TEST_CASE("no worker runs before a job needs one; each waiting job gets one, up to the bound") {
  std::atomic<int> live{0};
  WorkerPool pool(3, 1h, live);
  CHECK(live.load() == 0);

  std::counting_semaphore<8> release(0);
  std::latch started(3);
  std::atomic<int> done{0};
  for (int i = 0; i < 5; ++i) {
    pool.enqueue([&] {
      started.count_down();
      release.acquire();
      ++done;
    });
  }
  started.wait();  // three run at once: one worker each
  CHECK(live.load() == 3);
  CHECK(done.load() == 0);
  release.release(5);  // the two waiting jobs run on the same three workers
  pool.shutdown();
  CHECK(done.load() == 5);
  CHECK(live.load() == 0);
}

TEST_CASE("idle workers leave after idle_exit and new ones start for the next job") {
  std::atomic<int> live{0};
  WorkerPool pool(4, 20ms, live);
  std::latch ran(2);
  std::counting_semaphore<2> hold(0);  // released twice at once: a binary one could overflow
  pool.enqueue([&] {
    ran.count_down();
    hold.acquire();
  });
  pool.enqueue([&] {
    ran.count_down();
    hold.acquire();
  });
  ran.wait();
  CHECK(live.load() == 2);
  hold.release(2);
  wait_for_count(live, 0);  // both idle past 20 ms: gone

  std::latch again(1);
  pool.enqueue([&] { again.count_down(); });
  again.wait();
  CHECK(live.load() >= 1);
  pool.shutdown();
  CHECK(live.load() == 0);
}

TEST_CASE("jobs enqueued before shutdown are all run") {
  std::atomic<int> live{0};
  std::atomic<int> done{0};
  {
    WorkerPool pool(1, 1h, live);
    std::binary_semaphore gate(0);
    pool.enqueue([&] {
      gate.acquire();
      ++done;
    });
    pool.enqueue([&] { ++done; });  // waits in the pool behind the first
    gate.release();
    pool.shutdown();
    CHECK(done.load() == 2);
  }
  CHECK(live.load() == 0);
}
