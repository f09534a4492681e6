#include "net/rtnl_socket.h"

#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace sriovd::net {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kInitialBuffer = size_t{32} * 1024;  // the kernel's dump datagrams are at most ~32 KiB
constexpr int kDumpAttempts = 3;

// A request for messages: its rtnetlink type's name, or a generic netlink family and command.
std::string request_name(int protocol, const Bytes& request) {
  nlmsghdr h;
  std::memcpy(&h, request.data(), sizeof h);
  if (protocol == NETLINK_GENERIC) {
    std::string s = "generic netlink family " + std::to_string(h.nlmsg_type);
    if (request.size() >= sizeof h + 1) s += " command " + std::to_string(request[sizeof h]);  // genlmsghdr.cmd
    return s;
  }
  switch (h.nlmsg_type) {
    case RTM_GETLINK: return "RTM_GETLINK";
    case RTM_SETLINK: return "RTM_SETLINK";
    case RTM_NEWLINK: return "RTM_NEWLINK";
    case RTM_GETADDR: return "RTM_GETADDR";
    case RTM_NEWADDR: return "RTM_NEWADDR";
    case RTM_GETROUTE: return "RTM_GETROUTE";
    case RTM_NEWROUTE: return "RTM_NEWROUTE";
    default: return "netlink message type " + std::to_string(h.nlmsg_type);
  }
}

Error kernel_error(const std::string& request, const NetlinkError& e) {
  return Error::sys(e.errnum, e.message.empty() ? request : request + ": " + e.message);
}

}  // namespace

void RtnlSocket::Closer::operator()(mnl_socket* s) const noexcept { mnl_socket_close(s); }

RtnlSocket::RtnlSocket(RtnlSocket&&) noexcept = default;
RtnlSocket& RtnlSocket::operator=(RtnlSocket&&) noexcept = default;
RtnlSocket::~RtnlSocket() = default;

Result<RtnlSocket> RtnlSocket::open(std::chrono::milliseconds timeout, int protocol) {
  if (protocol != NETLINK_ROUTE && protocol != NETLINK_GENERIC)
    return Error::sys(EPROTONOSUPPORT,
                      "netlink protocol " + std::to_string(protocol) + " is not one RtnlSocket speaks");
  RtnlSocket s;
  s.timeout_ = timeout;
  s.protocol_ = protocol;
  auto r = s.reopen();
  if (!r) return std::move(r).error();
  // Any start will do: matching is on (port id, sequence), and the port id is ours alone.
  s.seq_ = static_cast<uint32_t>(Clock::now().time_since_epoch().count());
  s.buf_.resize(kInitialBuffer);
  return s;
}

Result<void> RtnlSocket::reopen() {
  sock_.reset();
  portid_ = 0;
  const char* name = protocol_ == NETLINK_GENERIC ? "NETLINK_GENERIC" : "NETLINK_ROUTE";
  std::unique_ptr<mnl_socket, Closer> s(mnl_socket_open2(protocol_, SOCK_CLOEXEC));
  if (!s) return Error::sys(errno, std::string("opening a ") + name + " socket");
  // Both options exist since Linux 4.12 / 4.3; without them errors still carry the errno, so an
  // older kernel's ENOPROTOOPT is not fatal.
  int one = 1;
  for (int opt : {NETLINK_EXT_ACK, NETLINK_CAP_ACK}) {
    if (mnl_socket_setsockopt(s.get(), opt, &one, sizeof one) < 0 && errno != ENOPROTOOPT)
      return Error::sys(errno, "setting netlink socket option " + std::to_string(opt));
  }
  if (mnl_socket_bind(s.get(), 0, MNL_SOCKET_AUTOPID) < 0)
    return Error::sys(errno, std::string("binding a ") + name + " socket");
  for (unsigned g : groups_) {
    if (mnl_socket_setsockopt(s.get(), NETLINK_ADD_MEMBERSHIP, &g, sizeof g) < 0)
      return Error::sys(errno, "joining rtnetlink group " + std::to_string(g));
  }
  portid_ = mnl_socket_get_portid(s.get());
  sock_ = std::move(s);
  return {};
}

// Waits for the next datagram from the kernel and reads it whole into buf_.
Result<size_t> RtnlSocket::receive(Clock::time_point deadline) {
  const int fd = mnl_socket_get_fd(sock_.get());
  for (;;) {
    auto now = Clock::now();
    if (now >= deadline)
      return Error::sys(ETIMEDOUT, "no netlink answer within " + std::to_string(timeout_.count()) + " ms");
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(wait.count()));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Error::sys(errno, "waiting for a netlink answer");
    }
    if (r == 0) continue;  // the deadline check above reports the timeout
    // Learn the datagram's size first (as iproute2 does): one RTM_NEWLINK of a PF with many VFs
    // and their counters can be far larger than a page.
    ssize_t n = ::recv(fd, nullptr, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      if (errno == ENOBUFS) return Error::sys(ENOBUFS, "netlink receive queue overflowed, answers were lost");
      return Error::sys(errno, "reading a netlink answer");
    }
    if (static_cast<size_t>(n) > buf_.size()) buf_.resize(static_cast<size_t>(n));
    sockaddr_nl from{};
    iovec iov{buf_.data(), buf_.size()};
    msghdr mh{};
    mh.msg_name = &from;
    mh.msg_namelen = sizeof from;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    n = ::recvmsg(fd, &mh, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      if (errno == ENOBUFS) return Error::sys(ENOBUFS, "netlink receive queue overflowed, answers were lost");
      return Error::sys(errno, "reading a netlink answer");
    }
    if (mh.msg_flags & MSG_TRUNC) return Error::sys(EMSGSIZE, "netlink answer truncated");
    // Another process may send to our port id; only the kernel (port id 0) answers requests.
    if (mh.msg_namelen != sizeof from || from.nl_pid != 0) continue;
    return static_cast<size_t>(n);
  }
}

Result<void> RtnlSocket::join(unsigned group) {
  if (mnl_socket_setsockopt(sock_.get(), NETLINK_ADD_MEMBERSHIP, &group, sizeof group) < 0)
    return Error::sys(errno, "joining rtnetlink group " + std::to_string(group));
  groups_.push_back(group);
  return {};
}

Result<std::vector<Bytes>> RtnlSocket::notifications(Clock::time_point deadline) {
  auto n = receive(deadline);
  if (!n) {
    Error e = std::move(n).error();
    if (e.errnum == ETIMEDOUT) e.message = "no rtnetlink notification before the deadline";
    return e;
  }
  auto msgs = split_messages(ByteView(buf_.data(), *n));
  if (!msgs) return std::move(msgs).error().context("rtnetlink notification");
  std::vector<Bytes> out;
  for (ByteView msg : *msgs) {
    nlmsghdr h;
    std::memcpy(&h, msg.data(), sizeof h);
    // A notification's port id is the one of whoever made the change (ip's, for `ip link set
    // up`) and its sequence number theirs too: neither tells it apart. Control messages do.
    if (h.nlmsg_type == NLMSG_NOOP || h.nlmsg_type == NLMSG_ERROR || h.nlmsg_type == NLMSG_DONE) continue;
    if (h.nlmsg_type == NLMSG_OVERRUN) return Error::sys(ENOBUFS, "rtnetlink notifications overran");
    out.emplace_back(msg.begin(), msg.end());
  }
  return out;
}

Result<std::vector<Bytes>> RtnlSocket::transact(Bytes request) {
  nlmsghdr h;
  if (request.size() < sizeof h) return Error::make(ErrorCode::internal, "netlink request shorter than a header");
  std::memcpy(&h, request.data(), sizeof h);
  bool dump = (h.nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
  for (int attempt = 1;; ++attempt) {
    // A dump left unfinished (timeout, lost or malformed answer) keeps running in the kernel for
    // this socket, which would answer the next dump with EBUSY: start over on a fresh socket.
    if (!sock_ || incomplete_) {
      auto r = reopen();
      if (!r) return std::move(r).error().context(request_name(protocol_, request));
      incomplete_ = false;
    }
    bool interrupted = false;
    incomplete_ = true;  // until the answer has been read to its end
    auto r = transact_once(request, interrupted);
    if (!interrupted || !r.ok()) return r;
    // The kernel marks a dump NLM_F_DUMP_INTR when the table changed while it was being read:
    // what we hold may miss or duplicate entries. Read it again.
    if (!dump || attempt >= kDumpAttempts)
      return Error::sys(EAGAIN, request_name(protocol_, request) + ": dump interrupted by changes " +
                                    std::to_string(attempt) + " times");
  }
}

Result<std::vector<Bytes>> RtnlSocket::transact_once(Bytes& request, bool& interrupted) {
  nlmsghdr h;
  std::memcpy(&h, request.data(), sizeof h);
  const std::string name = request_name(protocol_, request);
  h.nlmsg_seq = ++seq_;
  h.nlmsg_pid = portid_;
  std::memcpy(request.data(), &h, sizeof h);
  const bool dump = (h.nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
  const bool ack = (h.nlmsg_flags & NLM_F_ACK) != 0;

  if (mnl_socket_sendto(sock_.get(), request.data(), request.size()) < 0) return Error::sys(errno, "sending " + name);

  const auto deadline = Clock::now() + timeout_;
  std::vector<Bytes> replies;
  for (;;) {
    auto n = receive(deadline);
    if (!n) return std::move(n).error().context(name);
    auto msgs = split_messages(ByteView(buf_.data(), *n));
    if (!msgs) return std::move(msgs).error().context(name);
    for (ByteView msg : *msgs) {
      nlmsghdr rh;
      std::memcpy(&rh, msg.data(), sizeof rh);
      if (rh.nlmsg_seq != h.nlmsg_seq || rh.nlmsg_pid != portid_) continue;  // stale or not ours
      if (rh.nlmsg_flags & NLM_F_DUMP_INTR) interrupted = true;
      switch (rh.nlmsg_type) {
        case NLMSG_NOOP: continue;
        case NLMSG_OVERRUN: return Error::sys(EOVERFLOW, name + ": NLMSG_OVERRUN");
        case NLMSG_ERROR: {
          auto e = decode_error(msg);
          if (!e) return std::move(e).error().context(name);
          incomplete_ = false;  // an error or the ACK ends the answer
          if (e->errnum != 0) return kernel_error(name, *e);
          return replies;
        }
        case NLMSG_DONE: {
          auto e = decode_done(msg);
          if (!e) return std::move(e).error().context(name);
          incomplete_ = false;
          if (e->errnum != 0) return kernel_error(name, *e);
          return replies;
        }
        default:
          replies.emplace_back(msg.begin(), msg.end());
          if (!dump && !ack) {  // a plain GET is answered by one message
            incomplete_ = false;
            return replies;
          }
      }
    }
  }
}

}  // namespace sriovd::net
