#include "sim/uevent_sender.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

#include "pci/decode.h"
#include "sim/sim_kernel.h"

namespace sriovd::kernel::sim {

namespace fs = std::filesystem;

namespace {

// The address of the socket at `root`/`socket`. sun_path holds 107 bytes; a deeper root is
// reached through its directory's fd, which `dirfd` keeps open while the address is used.
// nullopt when that directory cannot be opened (nobody listens there).
std::optional<sockaddr_un> socket_address(const fs::path& root, const char* socket, UniqueFd& dirfd) {
  const fs::path path = root / socket;
  std::string where = path.string();
  if (where.size() >= sizeof(sockaddr_un::sun_path)) {
    dirfd = UniqueFd(::open(path.parent_path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dirfd) return std::nullopt;
    where = "/proc/self/fd/" + std::to_string(dirfd.get()) + "/" + path.filename().string();
  }
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, where.c_str(), where.size() + 1);
  return sa;
}

}  // namespace

void send_datagram(const fs::path& root, const char* socket, const std::vector<uint8_t>& bytes) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return;
  UniqueFd dirfd;
  auto sa = socket_address(root, socket, dirfd);
  if (!sa) return;
  (void)!::sendto(fd.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&*sa), sizeof *sa);
}

UeventSender::~UeventSender() {
  if (fd_ >= 0) ::close(fd_);
}

void UeventSender::send(const std::vector<PendingUevent>& list) {
  if (list.empty()) return;
  if (fd_ < 0) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    // A receiver that reads on its own thread keeps up; one that does not must not hang the
    // simulated kernel (the real one drops what a full netlink socket cannot take: ENOBUFS).
    timeval tv{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  UniqueFd dirfd;
  auto addr = socket_address(root_, SimKernel::kUeventSocket, dirfd);
  if (!addr) return;
  sockaddr_un& sa = *addr;
  // /sys/kernel/uevent_seqnum: the number of the last uevent sent, shared by every process
  // acting on this tree. It is bumped before the events go out, as the kernel numbers an event
  // when it sends it: whoever reads N and then the tree has seen every change of events <= N.
  // The file is kept open (a call's read and write are then two system calls); it is rewritten
  // in place, never replaced, and its number only grows, so no write leaves a longer old tail.
  if (!seq_fd_)
    seq_fd_ = UniqueFd(::open((root_ / "kernel/uevent_seqnum").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  uint64_t seqnum = 0;
  char text[32];
  if (seq_fd_) {
    ssize_t n = ::pread(seq_fd_.get(), text, sizeof text - 1, 0);
    if (n > 0)
      seqnum = static_cast<uint64_t>(
          pci::parse_int(std::string_view(text, static_cast<size_t>(n)), 0, INT64_MAX).value_or(0));
    const int len = std::snprintf(text, sizeof text, "%llu\n", static_cast<unsigned long long>(seqnum) + list.size());
    (void)!::pwrite(seq_fd_.get(), text, static_cast<size_t>(len), 0);  // best effort, as sending is
  }
  std::vector<std::string> msgs;
  msgs.reserve(list.size());
  for (const auto& u : list) {
    std::string& msg = msgs.emplace_back(u.action + "@" + u.devpath);
    msg += '\0';
    auto pair = [&](const std::string& kv) {
      msg += kv;
      msg += '\0';
    };
    pair("ACTION=" + u.action);
    pair("DEVPATH=" + u.devpath);
    pair("SUBSYSTEM=" + u.subsystem);
    for (const auto& kv : u.pairs) pair(kv);
    pair("SEQNUM=" + std::to_string(++seqnum));
  }
  // One datagram per uevent, as the kernel sends them, handed over in one sendmmsg: the
  // receiver is woken once for the call's events rather than once for each.
  std::vector<iovec> iov(msgs.size());
  std::vector<mmsghdr> hdrs(msgs.size());
  for (size_t i = 0; i < msgs.size(); ++i) {
    iov[i] = {msgs[i].data(), msgs[i].size()};
    hdrs[i] = {};
    hdrs[i].msg_hdr.msg_name = &sa;
    hdrs[i].msg_hdr.msg_namelen = sizeof sa;
    hdrs[i].msg_hdr.msg_iov = &iov[i];
    hdrs[i].msg_hdr.msg_iovlen = 1;
  }
  for (size_t sent = 0; sent < hdrs.size();) {
    int n = ::sendmmsg(fd_, hdrs.data() + sent, static_cast<unsigned>(hdrs.size() - sent), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOENT || errno == ECONNREFUSED || errno == ENOTDIR) return;  // nobody listens
      ++sent;  // this one is lost (a full receiver: ENOBUFS/EAGAIN after the timeout), as the kernel drops it
      continue;
    }
    sent += static_cast<size_t>(n);
  }
}

}  // namespace sriovd::kernel::sim
