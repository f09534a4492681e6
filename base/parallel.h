// parallel_for: runs fn(begin, end) over [0, n) split into contiguous slices, one per worker
// thread (the caller's thread takes the first slice). For syscall-bound scans of independent
// items; each call must touch only its own slice. Below `min_per_thread` items per worker it
// runs inline.
#pragma once

#include <algorithm>
#include <cstddef>
#include <thread>
#include <vector>

namespace sriovd {

template <class Fn>
void parallel_for(size_t n, Fn&& fn, size_t min_per_thread = 64, unsigned max_workers = 4) {
  unsigned workers = std::min(std::max(1u, std::thread::hardware_concurrency()), max_workers);
  workers = static_cast<unsigned>(std::min<size_t>(workers, std::max<size_t>(1, n / min_per_thread)));
  if (workers <= 1) {
    fn(size_t{0}, n);
    return;
  }
  size_t chunk = (n + workers - 1) / workers;
  std::vector<std::thread> threads;
  for (unsigned w = 1; w < workers; ++w) {
    size_t begin = std::min(n, w * chunk), end = std::min(n, begin + chunk);
    if (begin < end) threads.emplace_back([&fn, begin, end] { fn(begin, end); });
  }
  fn(size_t{0}, std::min(n, chunk));
  for (auto& t : threads) t.join();
}

}  // namespace sriovd
