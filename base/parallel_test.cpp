#include "base/parallel.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>
#include <vector>

#include "base/mutex.h"

using sriovd::parallel_for;

TEST_CASE("parallel_for: every index exactly once, in ranges that do not overlap") {
  for (size_t n : {size_t{0}, size_t{1}, size_t{63}, size_t{64}, size_t{129}, size_t{1040}, size_t{4128}}) {
    CAPTURE(n);
    std::vector<std::atomic<int>> seen(n);
    std::atomic<bool> bad_range{false};
    parallel_for(n, [&](size_t begin, size_t end) {
      if (begin >= end || end > n) bad_range = true;
      for (size_t i = begin; i < end; ++i) seen[i].fetch_add(1);
    });
    CHECK_FALSE(bad_range.load());
    size_t once = 0;
    for (auto& s : seen) once += s.load() == 1;
    CHECK(once == n);
  }
}

TEST_CASE("parallel_for: no more threads than asked, inline below the per-thread minimum") {
  sriovd::Mutex mu;
  std::set<std::thread::id> ids;
  auto record = [&](size_t, size_t) {
    sriovd::MutexLock lock(mu);
    ids.insert(std::this_thread::get_id());
  };
  parallel_for(4000, record, 8, 3);
  CHECK(ids.size() <= 3);
  ids.clear();
  parallel_for(100, record, 64, 4);  // 100 / 64 rounds down to one worker: the caller's thread
  REQUIRE(ids.size() == 1);
  CHECK(*ids.begin() == std::this_thread::get_id());
}

TEST_CASE("parallel_for: a slow item holds back only its own small range; the other workers take the rest") {
  if (std::thread::hardware_concurrency() < 2) {
    MESSAGE("one CPU: parallel_for runs inline, nothing to share");
    return;
  }
  // The call that holds item 0 waits until nine tenths of all items are done by other calls. With
  // one fixed slice per thread (half the items each on two cores) they never would be.
  const size_t n = 4000;
  sriovd::Mutex mu;
  sriovd::CondVar cv;
  size_t done = 0;
  bool waited_out = false;
  parallel_for(
      n,
      [&](size_t begin, size_t end) {
        sriovd::MutexLock lock(mu);
        if (begin == 0) {
          if (!cv.wait_for(lock, std::chrono::seconds(20), [&] { return done >= n * 9 / 10; })) waited_out = true;
        }
        done += end - begin;
        cv.notify_all();
      },
      64, 2);
  CHECK_FALSE(waited_out);
  CHECK(done == n);
}
