// WorkerPool: the threads that serve a listener's connections (cpp-httplib's TaskQueue).
//
// At most `workers` connections are served at once, `workers` more wait in the pool, and beyond
// that enqueue (the accept loop) waits, so further clients wait in the kernel's listen backlog:
// nothing in the daemon grows with the number of clients.
//
// Workers are started when a connection finds none idle, and one idle for `idle_exit` leaves: an
// idle daemon holds no worker threads (each is a stack and an allocator arena), a busy one keeps
// those it uses. Connections already handed to the pool are served even when it shuts down.
//
// Thread-safety: enqueue and shutdown may be called from any thread.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <thread>
#include <vector>

#include "base/mutex.h"

namespace sriovd::rest {

class WorkerPool : public httplib::TaskQueue {
 public:
  // `live` counts this pool's worker threads, started and not yet returned; it is notified
  // (std::atomic::notify_all) at each change. It may be shared by several pools.
  WorkerPool(size_t workers, std::chrono::milliseconds idle_exit, std::atomic<int>& live);
  ~WorkerPool() override;

  void enqueue(std::function<void()> fn) override SRIOVD_EXCLUDES(mu_);
  // Serves what was enqueued, then joins every worker. Idempotent.
  void shutdown() override SRIOVD_EXCLUDES(mu_);
  // On a worker: true while other connections wait for a worker of its pool (queued, or an
  // accept loop waiting to queue one). Its connection should then go after its answer instead of
  // staying open for the next request: a keep-alive connection held by a busy client must not
  // keep the others waiting. False on any other thread.
  static bool others_waiting();

 private:
  void work() SRIOVD_EXCLUDES(mu_);
  void reap_locked() SRIOVD_REQUIRES(mu_);

  const size_t max_workers_;
  const size_t max_waiting_;
  const std::chrono::milliseconds idle_exit_;
  std::atomic<int>& live_;
  Mutex mu_;
  CondVar ready_, space_;
  std::deque<std::function<void()>> jobs_ SRIOVD_GUARDED_BY(mu_);
  size_t idle_ SRIOVD_GUARDED_BY(mu_) = 0;  // workers waiting for a job
  std::map<std::thread::id, std::thread> threads_ SRIOVD_GUARDED_BY(mu_);
  std::vector<std::thread::id> left_ SRIOVD_GUARDED_BY(mu_);  // left for idleness, not yet joined
  bool shutdown_ SRIOVD_GUARDED_BY(mu_) = false;
  std::atomic<size_t> waiting_{0};  // connections queued or being queued, not yet taken by a worker
  std::atomic<size_t> busy_{0};     // workers serving a connection
};

}  // namespace sriovd::rest
