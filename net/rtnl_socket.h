// RtnlSocket: a NETLINK_ROUTE socket that sends one request at a time and collects its answer.
//
// The socket is opened with SOCK_CLOEXEC, bound to a kernel-assigned port id, and asks for
// extended acks (NETLINK_EXT_ACK: the kernel's error text comes back with the errno) and capped
// acks (NETLINK_CAP_ACK: errors do not echo the whole request). Each request gets the next
// sequence number; answers with another sequence number, port id, or not sent by the kernel
// (sender port id 0) are dropped, so a late reply to an earlier, timed-out request is never taken
// for the current one. Every wait is bounded by the socket's timeout (poll), so nothing hangs on
// a kernel that does not answer.
//
// Not thread-safe: one request at a time on one socket. Give each thread or caller its own; they
// are cheap (a socket, two setsockopt, a bind). Move-only; closing happens on destruction.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "base/result.h"
#include "net/rtnl.h"

struct mnl_socket;

namespace sriovd::net {

class RtnlSocket {
 public:
  static constexpr std::chrono::milliseconds kDefaultTimeout{5000};

  // Opens and binds the socket: NETLINK_ROUTE, or NETLINK_GENERIC for devlink (net/devlink.h;
  // the same requests, acks and errors). Errors carry socket(2)/bind(2)'s errno.
  static Result<RtnlSocket> open(std::chrono::milliseconds timeout = kDefaultTimeout, int protocol = 0);

  // Sends `request` (a message from the rtnl.h builders; its nlmsg_seq and nlmsg_pid are set
  // here) and returns the answer's messages, each exactly nlmsg_len bytes:
  //  - a dump (NLM_F_DUMP): every message up to NLMSG_DONE (not included). A dump the kernel
  //    marks NLM_F_DUMP_INTR (the table changed under it) is restarted, at most 3 times in all,
  //    then fails with EAGAIN;
  //  - NLM_F_ACK: the messages before the ACK (none for RTM_SETLINK);
  //  - otherwise: the one reply (RTM_NEWLINK for RTM_GETLINK).
  // Failures: the kernel's errno with its extended-ack text in the message ("RTM_SETLINK: <text>:
  // Operation not supported"); ETIMEDOUT when no complete answer arrives within the timeout;
  // ENOBUFS when the socket's receive queue overflowed and replies were lost; EBADMSG for a
  // malformed answer. The socket stays usable after any failure: late replies to an earlier
  // request are dropped by sequence number, and after an answer that was not read to its end
  // (a dump still running in the kernel) the next call first replaces the socket (new port id).
  Result<std::vector<Bytes>> transact(Bytes request);

  // Joins rtnetlink multicast group `group` (RTNLGRP_LINK, ...): the kernel then sends this
  // socket its notifications, which notifications() reads. Kept across the socket being
  // replaced. Errors carry setsockopt(2)'s errno.
  Result<void> join(unsigned group);

  // Waits until `deadline` for the next datagram of notifications and returns its messages
  // (RTM_NEWLINK, RTM_DELLINK, ...). Join before a request that reads the current state, then
  // read notifications after its answer: a change after the answer is never missed, and one
  // before it is in the answer. ETIMEDOUT at the deadline; ENOBUFS when the receive queue
  // overflowed and notifications were lost (read the state again). Not for use while a request's
  // answer is being read: transact() drops the notifications it meets.
  Result<std::vector<Bytes>> notifications(std::chrono::steady_clock::time_point deadline);

  uint32_t portid() const { return portid_; }
  std::chrono::milliseconds timeout() const { return timeout_; }
  void set_timeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }

  RtnlSocket(RtnlSocket&&) noexcept;
  RtnlSocket& operator=(RtnlSocket&&) noexcept;
  ~RtnlSocket();

 private:
  struct Closer {
    void operator()(mnl_socket* s) const noexcept;
  };
  RtnlSocket() = default;
  Result<std::vector<Bytes>> transact_once(Bytes& request, bool& interrupted);
  Result<size_t> receive(std::chrono::steady_clock::time_point deadline);
  Result<void> reopen();

  std::unique_ptr<mnl_socket, Closer> sock_;
  uint32_t portid_ = 0;
  uint32_t seq_ = 0;
  std::chrono::milliseconds timeout_ = kDefaultTimeout;
  int protocol_ = 0;              // NETLINK_ROUTE (0) or NETLINK_GENERIC
  bool incomplete_ = false;       // the last answer was not read to its end
  std::vector<unsigned> groups_;  // multicast groups joined
  Bytes buf_;                     // receive buffer, grown to the largest datagram seen
};

}  // namespace sriovd::net
