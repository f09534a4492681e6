// Test helpers to run the project's binaries: run a command to completion capturing its output,
// and run the daemon as a child that reports readiness over sd_notify (NOTIFY_SOCKET), so tests
// wait for the READY=1 event with a deadline instead of sleeping.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace sriovd::test {

struct RunResult {
  int exit_code = -1;  // or 128+signal
  std::string out;
  std::string err;
};

// Runs argv[0] with arguments, extra environment on top of ours, and waits (deadline 60 s).
RunResult run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {});

class Daemon {
 public:
  // Starts `argv`, with NOTIFY_SOCKET and `env` set, and waits for READY=1 up to `deadline`. If
  // the process exits first, start fails and its stderr is in error().
  bool start(const std::vector<std::string>& argv, std::chrono::milliseconds deadline = std::chrono::seconds(20),
             const std::map<std::string, std::string>& env = {});
  // Sends `sig` without waiting.
  void signal(int sig) const;
  // Waits for the process to exit (deadline); returns its status, or -1 if it is still running.
  int wait_exit(std::chrono::milliseconds deadline);
  // Waits until the daemon's stderr contains `text` (deadline).
  bool wait_log(const std::string& text, std::chrono::milliseconds deadline) const;
  // SIGTERM, wait; returns the exit status (or 128+signal).
  int stop(int sig = 15);
  ~Daemon();

  pid_t pid() const { return pid_; }
  const std::string& error() const { return error_; }
  // The datagram that carried READY=1 (with STATUS=..., if the daemon sent one).
  const std::string& ready_message() const { return ready_message_; }
  const std::vector<std::string>& notifications() const { return notifications_; }
  std::string stderr_text() const;
  // Waits for the next sd_notify datagram containing `token` (e.g. "WATCHDOG=1"); every
  // datagram received is appended to notifications().
  bool wait_notify(const std::string& token, std::chrono::milliseconds deadline);

 private:
  pid_t pid_ = -1;
  int notify_fd_ = -1;
  std::string notify_path_;
  std::string stderr_path_;
  std::string error_;
  std::string ready_message_;
  std::vector<std::string> notifications_;
};

}  // namespace sriovd::test
