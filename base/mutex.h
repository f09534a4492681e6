// Mutex, MutexLock and CondVar: std::mutex and friends with Clang's thread-safety annotations,
// so that "guarded by" is checked by the compiler (-Wthread-safety) instead of stated in comments.
// Mark shared members GUARDED_BY(mu_), functions that expect the lock REQUIRES(mu_) and those that
// take it themselves EXCLUDES(mu_). Under GCC the annotations compile to nothing.
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

// abseil's base/internal/thread_annotations.h (which gRPC's headers bring) defines a few of these
// names too, with the same attributes: ours replace them where this header comes later, instead
// of a redefinition error.
#undef GUARDED_BY
#undef PT_GUARDED_BY
#undef ACQUIRED_BEFORE
#undef NO_THREAD_SAFETY_ANALYSIS
#define CAPABILITY(x) SRIOVD_TSA(capability(x))
#define SCOPED_CAPABILITY SRIOVD_TSA(scoped_lockable)
#define GUARDED_BY(x) SRIOVD_TSA(guarded_by(x))
#define PT_GUARDED_BY(x) SRIOVD_TSA(pt_guarded_by(x))
#define ACQUIRED_BEFORE(...) SRIOVD_TSA(acquired_before(__VA_ARGS__))
#define REQUIRES(...) SRIOVD_TSA(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) SRIOVD_TSA(requires_shared_capability(__VA_ARGS__))
#define ACQUIRE(...) SRIOVD_TSA(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) SRIOVD_TSA(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) SRIOVD_TSA(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) SRIOVD_TSA(release_shared_capability(__VA_ARGS__))
#define RELEASE_GENERIC(...) SRIOVD_TSA(release_generic_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) SRIOVD_TSA(try_acquire_capability(__VA_ARGS__))
#define EXCLUDES(...) SRIOVD_TSA(locks_excluded(__VA_ARGS__))
#define RETURN_CAPABILITY(x) SRIOVD_TSA(lock_returned(x))
#define NO_THREAD_SAFETY_ANALYSIS SRIOVD_TSA(no_thread_safety_analysis)

namespace sriovd {

class CAPABILITY("mutex") Mutex {
 public:
  void lock() ACQUIRE() { m_.lock(); }
  void unlock() RELEASE() { m_.unlock(); }
  bool try_lock() TRY_ACQUIRE(true) { return m_.try_lock(); }
  // For CondVar only.
  std::mutex& native() { return m_; }

 private:
  std::mutex m_;
};

// A reader-writer lock: many readers or one writer.
class CAPABILITY("mutex") SharedMutex {
 public:
  void lock() ACQUIRE() { m_.lock(); }
  void unlock() RELEASE() { m_.unlock(); }
  void lock_shared() ACQUIRE_SHARED() { m_.lock_shared(); }
  void unlock_shared() RELEASE_SHARED() { m_.unlock_shared(); }

 private:
  std::shared_mutex m_;
};

// Holds `mu` for its scope (std::lock_guard with annotations); unlock()/lock() in between let a
// scope drop the lock around a slow call.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() RELEASE() {
    if (held_) mu_.unlock();
  }
  void unlock() RELEASE() {
    mu_.unlock();
    held_ = false;
  }
  void lock() ACQUIRE() {
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

class SCOPED_CAPABILITY WriterLock {
 public:
  explicit WriterLock(SharedMutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~WriterLock() RELEASE() { mu_.unlock(); }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  SharedMutex& mu_;
};

class SCOPED_CAPABILITY ReaderLock {
 public:
  explicit ReaderLock(SharedMutex& mu) ACQUIRE_SHARED(mu) : mu_(mu) { mu_.lock_shared(); }
  ~ReaderLock() RELEASE() { mu_.unlock_shared(); }
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

  void wait(MutexLock& lock) NO_THREAD_SAFETY_ANALYSIS {
    std::unique_lock<std::mutex> ul(lock.mu_.native(), std::adopt_lock);
    cv_.wait(ul);
    ul.release();
  }
  template <class Pred>
  void wait(MutexLock& lock, Pred pred) NO_THREAD_SAFETY_ANALYSIS {
    while (!pred()) wait(lock);
  }
  // Returns false on timeout.
  template <class Rep, class Period>
  bool wait_for(MutexLock& lock, std::chrono::duration<Rep, Period> d) NO_THREAD_SAFETY_ANALYSIS {
    std::unique_lock<std::mutex> ul(lock.mu_.native(), std::adopt_lock);
    bool ok = cv_.wait_for(ul, d) == std::cv_status::no_timeout;
    ul.release();
    return ok;
  }
  // Waits until pred() or the deadline; returns pred().
  template <class Clock, class Duration, class Pred>
  bool wait_until(MutexLock& lock, std::chrono::time_point<Clock, Duration> deadline,
                  Pred pred) NO_THREAD_SAFETY_ANALYSIS {
    std::unique_lock<std::mutex> ul(lock.mu_.native(), std::adopt_lock);
    bool ok = cv_.wait_until(ul, deadline, pred);
    ul.release();
    return ok;
  }
  template <class Rep, class Period, class Pred>
  bool wait_for(MutexLock& lock, std::chrono::duration<Rep, Period> d, Pred pred) NO_THREAD_SAFETY_ANALYSIS {
    return wait_until(lock, std::chrono::steady_clock::now() + d, pred);
  }

 private:
  std::condition_variable cv_;
};

}  // namespace sriovd
