// Mutex, MutexLock and CondVar: std::mutex and friends with Clang's thread-safety annotations,
// so that "guarded by" is checked by the compiler (-Wthread-safety) instead of stated in comments.
// Mark shared members SRIOVD_GUARDED_BY(mu_), functions that expect the lock SRIOVD_REQUIRES(mu_)
// and those that take it themselves SRIOVD_EXCLUDES(mu_). Under GCC the annotations compile to
// nothing. The macros carry the SRIOVD_ prefix because the bare names (GUARDED_BY,
// NO_THREAD_SAFETY_ANALYSIS, ...) are abseil's too, in base/internal/thread_annotations.h, which
// gRPC's headers bring into k8s/: whichever came second was a redefinition.
// Thread-safe, as the std types they wrap.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>

#if defined(__clang__)
#define SRIOVD_TSA(x) __attribute__((x))
#else
#define SRIOVD_TSA(x)
#endif

#define SRIOVD_CAPABILITY(x) SRIOVD_TSA(capability(x))
#define SRIOVD_SCOPED_CAPABILITY SRIOVD_TSA(scoped_lockable)
#define SRIOVD_GUARDED_BY(x) SRIOVD_TSA(guarded_by(x))
#define SRIOVD_PT_GUARDED_BY(x) SRIOVD_TSA(pt_guarded_by(x))
#define SRIOVD_ACQUIRED_BEFORE(...) SRIOVD_TSA(acquired_before(__VA_ARGS__))
#define SRIOVD_REQUIRES(...) SRIOVD_TSA(requires_capability(__VA_ARGS__))
#define SRIOVD_REQUIRES_SHARED(...) SRIOVD_TSA(requires_shared_capability(__VA_ARGS__))
#define SRIOVD_ACQUIRE(...) SRIOVD_TSA(acquire_capability(__VA_ARGS__))
#define SRIOVD_ACQUIRE_SHARED(...) SRIOVD_TSA(acquire_shared_capability(__VA_ARGS__))
#define SRIOVD_RELEASE(...) SRIOVD_TSA(release_capability(__VA_ARGS__))
#define SRIOVD_RELEASE_SHARED(...) SRIOVD_TSA(release_shared_capability(__VA_ARGS__))
#define SRIOVD_RELEASE_GENERIC(...) SRIOVD_TSA(release_generic_capability(__VA_ARGS__))
#define SRIOVD_TRY_ACQUIRE(...) SRIOVD_TSA(try_acquire_capability(__VA_ARGS__))
#define SRIOVD_EXCLUDES(...) SRIOVD_TSA(locks_excluded(__VA_ARGS__))
#define SRIOVD_RETURN_CAPABILITY(x) SRIOVD_TSA(lock_returned(x))
#define SRIOVD_NO_THREAD_SAFETY_ANALYSIS SRIOVD_TSA(no_thread_safety_analysis)

namespace sriovd {

class SRIOVD_CAPABILITY("mutex") Mutex {
 public:
  void lock() SRIOVD_ACQUIRE() { m_.lock(); }
  void unlock() SRIOVD_RELEASE() { m_.unlock(); }
  bool try_lock() SRIOVD_TRY_ACQUIRE(true) { return m_.try_lock(); }
  // For CondVar only.
  std::mutex& native() { return m_; }

 private:
  std::mutex m_;
};

// A reader-writer lock: many readers or one writer.
class SRIOVD_CAPABILITY("mutex") SharedMutex {
 public:
  void lock() SRIOVD_ACQUIRE() { m_.lock(); }
  void unlock() SRIOVD_RELEASE() { m_.unlock(); }
  void lock_shared() SRIOVD_ACQUIRE_SHARED() { m_.lock_shared(); }
  void unlock_shared() SRIOVD_RELEASE_SHARED() { m_.unlock_shared(); }

 private:
  std::shared_mutex m_;
};

// Holds `mu` for its scope (std::lock_guard with annotations); unlock()/lock() in between let a
// scope drop the lock around a slow call.
class SRIOVD_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) SRIOVD_ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() SRIOVD_RELEASE() {
    if (held_) mu_.unlock();
  }
  void unlock() SRIOVD_RELEASE() {
    mu_.unlock();
    held_ = false;
  }
  void lock() SRIOVD_ACQUIRE() {
    mu_.lock();
    held_ = true;
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  friend class CondVar;
  Mutex& mu_;
  bool held_ = true;
};

class SRIOVD_SCOPED_CAPABILITY WriterLock {
 public:
  explicit WriterLock(SharedMutex& mu) SRIOVD_ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~WriterLock() SRIOVD_RELEASE() { mu_.unlock(); }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  SharedMutex& mu_;
};

class SRIOVD_SCOPED_CAPABILITY ReaderLock {
 public:
  explicit ReaderLock(SharedMutex& mu) SRIOVD_ACQUIRE_SHARED(mu) : mu_(mu) { mu_.lock_shared(); }
  ~ReaderLock() SRIOVD_RELEASE() { mu_.unlock_shared(); }
  ReaderLock(const ReaderLock&) = delete;
  ReaderLock& operator=(const ReaderLock&) = delete;

 private:
  SharedMutex& mu_;
};

// A condition variable waited on with a MutexLock held. The analysis cannot see through the
// wait (the lock is released and taken again inside), which is sound: the caller holds the
// lock before and after.
class CondVar {
 public:
  void notify_one() noexcept { cv_.notify_one(); }
  void notify_all() noexcept { cv_.notify_all(); }

  void wait(MutexLock& lock) SRIOVD_NO_THREAD_SAFETY_ANALYSIS {
    std::unique_lock<std::mutex> ul(lock.mu_.native(), std::adopt_lock);
    cv_.wait(ul);
    ul.release();
  }
  template <class Pred>
  void wait(MutexLock& lock, Pred pred) SRIOVD_NO_THREAD_SAFETY_ANALYSIS {
    while (!pred()) wait(lock);
  }
  // Returns false on timeout.
  template <class Rep, class Period>
  bool wait_for(MutexLock& lock, std::chrono::duration<Rep, Period> d) SRIOVD_NO_THREAD_SAFETY_ANALYSIS {
    std::unique_lock<std::mutex> ul(lock.mu_.native(), std::adopt_lock);
    bool ok = cv_.wait_for(ul, d) == std::cv_status::no_timeout;
    ul.release();
    return ok;
  }
  // Waits until pred() or the deadline; returns pred().
  template <class Clock, class Duration, class Pred>
  bool wait_until(MutexLock& lock, std::chrono::time_point<Clock, Duration> deadline,
                  Pred pred) SRIOVD_NO_THREAD_SAFETY_ANALYSIS {
    std::unique_lock<std::mutex> ul(lock.mu_.native(), std::adopt_lock);
    bool ok = cv_.wait_until(ul, deadline, pred);
    ul.release();
    return ok;
  }
  template <class Rep, class Period, class Pred>
  bool wait_for(MutexLock& lock, std::chrono::duration<Rep, Period> d, Pred pred) SRIOVD_NO_THREAD_SAFETY_ANALYSIS {
    return wait_until(lock, std::chrono::steady_clock::now() + d, pred);
  }

 private:
  std::condition_variable cv_;
};

}  // namespace sriovd
