#include "rest/worker_pool.h"

#include <algorithm>

namespace sriovd::rest {

WorkerPool::WorkerPool(size_t workers, std::chrono::milliseconds idle_exit, std::atomic<int>& live)
    : max_workers_(std::max<size_t>(workers, 1)),
      max_waiting_(std::max<size_t>(workers, 1)),
      idle_exit_(idle_exit),
      live_(live) {}

WorkerPool::~WorkerPool() { shutdown(); }

namespace {
thread_local const WorkerPool* t_pool = nullptr;  // the pool this thread works for
}  // namespace

bool WorkerPool::others_waiting() {
  // Waiting for a worker only when every worker the pool may have is serving a connection.
  return t_pool && t_pool->waiting_.load(std::memory_order_relaxed) > 0 &&
         t_pool->busy_.load(std::memory_order_relaxed) >= t_pool->max_workers_;
}

void WorkerPool::enqueue(std::function<void()> fn) {
  waiting_.fetch_add(1, std::memory_order_relaxed);
  MutexLock lock(mu_);
  space_.wait(lock, [&]() SRIOVD_REQUIRES(mu_) { return jobs_.size() < max_waiting_ || shutdown_; });
  jobs_.push_back(std::move(fn));
  reap_locked();
  if (idle_ < jobs_.size() && threads_.size() < max_workers_) {
    live_.fetch_add(1);
    live_.notify_all();
    // The new thread waits for mu_ before it looks at anything, so it is in threads_ first.
    std::thread t([this] {
      work();
      live_.fetch_sub(1);
      live_.notify_all();
    });
    auto id = t.get_id();
    threads_.emplace(id, std::move(t));
  }
  ready_.notify_one();
}

void WorkerPool::shutdown() {
  std::map<std::thread::id, std::thread> threads;
  {
    MutexLock lock(mu_);
    shutdown_ = true;
    threads.swap(threads_);
    left_.clear();
  }
  ready_.notify_all();
  space_.notify_all();
  for (auto& [id, t] : threads) t.join();
}

void WorkerPool::work() {
  t_pool = this;
  MutexLock lock(mu_);
  for (;;) {
    ++idle_;
    bool woken = ready_.wait_for(lock, idle_exit_, [&]() SRIOVD_REQUIRES(mu_) { return !jobs_.empty() || shutdown_; });
    --idle_;
    if (jobs_.empty()) {
      // Idle too long: leave, to be joined by the next enqueue (or by shutdown). Stopping: the
      // thread is in shutdown's list already.
      if (!woken) left_.push_back(std::this_thread::get_id());
      return;
    }
    std::function<void()> fn = std::move(jobs_.front());
    jobs_.pop_front();
    waiting_.fetch_sub(1, std::memory_order_relaxed);
    busy_.fetch_add(1, std::memory_order_relaxed);
    lock.unlock();
    space_.notify_one();
    fn();
    fn = nullptr;  // the connection's state goes before the worker waits again
    busy_.fetch_sub(1, std::memory_order_relaxed);
    lock.lock();
  }
}

// Joins the workers that left for idleness: they released mu_ and return without taking it again.
void WorkerPool::reap_locked() {
  for (auto id : left_) {
    auto it = threads_.find(id);
    if (it == threads_.end()) continue;
    it->second.join();
    threads_.erase(it);
  }
  left_.clear();
}

}  // namespace sriovd::rest
