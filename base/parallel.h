// parallel_for: runs fn(begin, end) over [0, n) on up to `max_workers` threads (the caller's
// thread is one of them). For syscall-bound scans of independent items: each call must touch
// only the items of its own range, which is never empty. Below `min_per_thread` items per
// worker it runs inline.
//
// The ranges are small chunks handed out from a shared counter, not one slice per thread: a
// worker whose items were cheap (VFs) takes more of them while another reads costly ones
// (bridges, PFs), so the split follows the cost of the items whatever order they come in.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <thread>
#include <vector>

namespace sriovd {

template <class Fn>
void parallel_for(size_t n, Fn&& fn, size_t min_per_thread = 64, unsigned max_workers = 4) {
  if (n == 0) return;
  unsigned workers = std::min(std::max(1u, std::thread::hardware_concurrency()), max_workers);
  workers = static_cast<unsigned>(std::min<size_t>(workers, std::max<size_t>(1, n / min_per_thread)));
  if (workers <= 1) {
    fn(size_t{0}, n);
    return;
  }
  // About 16 chunks per worker: few enough that the counter is not contended, enough that the
  // last chunk to finish is a small part of the whole.
  const size_t chunk = std::max<size_t>(8, n / (size_t{workers} * 16));
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (;;) {
      const size_t begin = next.fetch_add(chunk, std::memory_order_relaxed);
      if (begin >= n) return;
      fn(begin, std::min(n, begin + chunk));
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(workers - 1);
  for (unsigned w = 1; w < workers; ++w) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
}

}  // namespace sriovd
