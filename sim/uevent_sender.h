// The simulated kernel's uevents: what a call collects (PendingUevent) and UeventSender, which
// sends them as kernel-format datagrams (ACTION@DEVPATH, then KEY=VALUE pairs, NUL-separated),
// numbered by kernel/uevent_seqnum, to the unix datagram socket .sriovd-sim/uevent.sock of the
// tree when someone listens there. Best effort, as the kernel's netlink broadcast is.
//
// Not thread-safe: its owner (SimKernel) sends under its lock.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "base/fd.h"

namespace sriovd::kernel {

// A uevent a call will send once it is done (so the receiver reads the tree as it ends up).
struct PendingUevent {
  std::string action, devpath, subsystem;
  std::vector<std::string> pairs;  // KEY=VALUE from the object's uevent file
};

namespace sim {

// Sends one datagram to the unix socket at `root`/`socket` (a path under .sriovd-sim/), as the
// kernel multicasts: nobody listening is not an error, a full receiver loses it.
void send_datagram(const std::filesystem::path& root, const char* socket, const std::vector<uint8_t>& bytes);

class UeventSender {
 public:
  explicit UeventSender(std::filesystem::path root) : root_(std::move(root)) {}
  ~UeventSender();
  UeventSender(const UeventSender&) = delete;
  UeventSender& operator=(const UeventSender&) = delete;

  // Bumps uevent_seqnum by the number of events, then sends one datagram per event in one
  // sendmmsg. Nobody listening is not an error; a full receiver loses what it cannot take.
  void send(const std::vector<PendingUevent>& list);

 private:
  std::filesystem::path root_;
  int fd_ = -1;      // the sending socket, opened on first use
  UniqueFd seq_fd_;  // kernel/uevent_seqnum, opened on first use
};

}  // namespace sim
}  // namespace sriovd::kernel
