#include "sim/vfio.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "base/fd.h"
#include "sim/file_io.h"
#include "sim/sim_state.h"

namespace sriovd::kernel::sim {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kVfioFile = "vfio.json";
constexpr const char* kVfioLock = "vfio.lock";

// The flock on .sriovd-sim/vfio.lock for one read or update.
class FileLock {
 public:
  FileLock(const fs::path& root, int op) {
    const fs::path p = root / kStateDir / kVfioLock;
    fd_ = UniqueFd(::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd_) {
      error_ = Error::sys(errno, "opening " + p.string());
      return;
    }
    while (::flock(fd_.get(), op) != 0)
      if (errno != EINTR) {
        error_ = Error::sys(errno, "locking " + p.string());
        return;
      }
  }
  const std::optional<Error>& error() const { return error_; }

 private:
  UniqueFd fd_;  // closing it releases the lock
  std::optional<Error> error_;
};

Result<VfioState> read_locked(const fs::path& root) {
  VfioState s;
  auto text = simio::read_text(root / kStateDir / kVfioFile);
  if (!text) return s;
  auto j = json::parse(*text, nullptr, false);
  if (!j.is_object()) return Error::sys(EINVAL, "unreadable " + (root / kStateDir / kVfioFile).string());
  if (auto h = j.find("holders"); h != j.end() && h->is_object())
    for (auto g = h->begin(); g != h->end(); ++g)
      for (const auto& one : *g)
        s.holders[static_cast<unsigned>(std::stoul(g.key()))].push_back(
            {one.value("pid", 0), one.value("comm", std::string("?")), "/dev/vfio/" + g.key()});
  if (auto b = j.find("blocked"); b != j.end() && b->is_object())
    for (auto n = b->begin(); n != b->end(); ++n) s.blocked[n.key()] = n->get<size_t>();
  if (auto ms = j.find("bound_ms"); ms != j.end() && ms->is_number_integer())
    s.bound = std::chrono::milliseconds(ms->get<int64_t>());
  return s;
}

}  // namespace

// The file is only ever replaced whole by rename: a read needs no lock (and makes no lock
// file, so a tree nobody held anything in stays as it was).
Result<VfioState> read_vfio(const fs::path& root) { return read_locked(root); }

Result<void> update_vfio(const fs::path& root, const std::function<Result<void>(VfioState&)>& change) {
  FileLock lock(root, LOCK_EX);
  if (lock.error()) return *lock.error();
  auto s = read_locked(root);
  if (!s) return std::move(s).error();
  if (auto r = change(*s); !r) return r;
  json j = {{"holders", json::object()}, {"blocked", json::object()}, {"bound_ms", s->bound.count()}};
  for (const auto& [group, list] : s->holders) {
    if (list.empty()) continue;
    auto& out = j["holders"][std::to_string(group)] = json::array();
    for (const auto& h : list) out.push_back({{"pid", h.pid}, {"comm", h.comm}});
  }
  for (const auto& [bdf, n] : s->blocked) j["blocked"][bdf] = n;
  return simio::write_atomic(root / kStateDir / kVfioFile, j.dump(1) + "\n");
}

Result<void> wait_until_closed(const fs::path& root, unsigned group, const std::string& bdf) {
  auto held = [&]() -> Result<std::vector<FileHolder>> {
    auto s = read_vfio(root);
    if (!s) return std::move(s).error();
    auto it = s->holders.find(group);
    return it == s->holders.end() ? std::vector<FileHolder>{} : it->second;
  };
  auto now = held();
  if (!now) return std::move(now).error();
  if (now->empty()) return ok();
  std::chrono::milliseconds bound{};
  auto counted = update_vfio(root, [&](VfioState& s) -> Result<void> {
    ++s.blocked[bdf];
    bound = s.bound;
    return ok();
  });
  if (!counted) return counted;
  // Watch before looking again, so a release between the look and the wait is not missed: the
  // state file is replaced by rename (IN_MOVED_TO).
  UniqueFd in(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!in) return Error::sys(errno, "inotify_init1");
  if (::inotify_add_watch(in.get(), (root / kStateDir).c_str(), IN_MOVED_TO | IN_CLOSE_WRITE) < 0)
    return Error::sys(errno, "watching " + (root / kStateDir).string());
  const auto deadline = std::chrono::steady_clock::now() + bound;
  for (;;) {
    now = held();
    if (!now) return std::move(now).error();
    if (now->empty()) return ok();
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{in.get(), POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()) + 1);
    if (n < 0 && errno != EINTR) return Error::sys(errno, "waiting for /dev/vfio/" + std::to_string(group));
    char buf[4096];
    while (::read(in.get(), buf, sizeof buf) > 0) {
    }
  }
  return Error::sys(ETIMEDOUT, "vfio-pci remove of " + bdf + ": /dev/vfio/" + std::to_string(group) +
                                   " still held open by " + describe(*now) + " after " + std::to_string(bound.count()) +
                                   " ms; Linux would still be waiting (the simulator gives up at its bound)");
}

}  // namespace sriovd::kernel::sim
