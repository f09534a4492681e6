#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include <sqlite3.h>

#include <utility>

#include "agent/state_store.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
using namespace sriovd::agent;

TEST_CASE("desired state persists across reopen") {
  test::TempDir dir;
  {
    auto s = StateStore::open(dir.path());
    REQUIRE(s.ok());
    CHECK((*s)->put("sriov", "0000:17:00.0", R"({"num_vfs":8})").ok());
    CHECK((*s)->put("sriov", "0000:17:00.1", R"({"num_vfs":2})").ok());
    CHECK((*s)->put("sriov", "0000:17:00.1", R"({"num_vfs":4})").ok());  // replaces
    CHECK((*s)->put("driver", "0000:17:01.0", R"({"driver":"vfio-pci","previous":"iavf"})").ok());
  }
  auto s = StateStore::open(dir.path());
  REQUIRE(s.ok());
  auto all = (*s)->all("sriov");
  REQUIRE(all.ok());
  CHECK(all->size() == 2);
  CHECK(all->at("0000:17:00.1") == R"({"num_vfs":4})");
  auto one = (*s)->get("driver", "0000:17:01.0");
  REQUIRE(one.ok());
  REQUIRE(one->has_value());
  CHECK(nlohmann::json::parse(**one)["previous"] == "iavf");
  CHECK_FALSE((*s)->get("driver", "0000:99:00.0")->has_value());
  CHECK((*s)->erase("sriov", "0000:17:00.0").ok());
  CHECK((*s)->all("sriov")->size() == 1);
}

TEST_CASE("a transaction that fails keeps nothing") {
  test::TempDir dir;
  auto s = std::move(StateStore::open(dir.path()).value());
  REQUIRE(s->put("sriov", "a", "1").ok());
  auto r = s->transaction([](StateStore::Tx& tx) -> Result<void> {
    if (auto p = tx.put("sriov", "a", "2"); !p) return p;
    if (auto p = tx.put("sriov", "b", "3"); !p) return p;
    return Error::make(ErrorCode::conflict, "interlock");
  });
  CHECK_FALSE(r.ok());
  CHECK(r.error().message == "interlock");
  CHECK(**s->get("sriov", "a") == "1");
  CHECK_FALSE(s->get("sriov", "b")->has_value());

  CHECK(s->transaction([](StateStore::Tx& tx) -> Result<void> {
           if (auto p = tx.put("sriov", "a", "2"); !p) return p;
           return tx.put("sriov", "b", "3");
         }).ok());
  CHECK(**s->get("sriov", "a") == "2");
  CHECK(**s->get("sriov", "b") == "3");
}

TEST_CASE("the operation journal records steps in order and survives a crash") {
  test::TempDir dir;
  int64_t id = 0;
  // A child process journals an operation and two steps, then dies without finishing it.
  pid_t pid = fork();
  if (pid == 0) {
    auto s = StateStore::open(dir.path());
    if (!s) _exit(2);
    auto op = (*s)->begin_operation(OperationKind::set_num_vfs, "0000:17:00.0", R"({"num_vfs":8})");
    if (!op) _exit(3);
    (void)(*s)->add_step(*op, R"({"write":"sriov_numvfs","from":"0","to":"8"})");
    (void)(*s)->add_step(*op, R"({"write":"driver_override","from":null,"to":"vfio-pci"})");
    _exit(9);  // no destructor, no close: as if killed
  }
  int st = 0;
  REQUIRE(waitpid(pid, &st, 0) == pid);
  REQUIRE(WEXITSTATUS(st) == 9);

  auto s = std::move(StateStore::open(dir.path()).value());
  auto pending = s->operations_in_state(OperationState::pending);
  REQUIRE(pending.ok());
  REQUIRE(pending->size() == 1);
  const auto& op = (*pending)[0];
  id = op.id;
  CHECK(op.kind == OperationKind::set_num_vfs);
  CHECK(op.target == "0000:17:00.0");
  REQUIRE(op.steps.size() == 2);
  CHECK(nlohmann::json::parse(op.steps[0])["write"] == "sriov_numvfs");
  CHECK(nlohmann::json::parse(op.steps[1])["to"] == "vfio-pci");
  REQUIRE(s->finish_operation(id, OperationState::rolled_back, "daemon restarted mid-operation").ok());
  CHECK(s->operations_in_state(OperationState::pending)->empty());
  auto done = s->operation(id);
  REQUIRE(done.ok());
  REQUIRE(done->has_value());
  CHECK((*done)->state == OperationState::rolled_back);
  CHECK((*done)->error == "daemon restarted mid-operation");
  CHECK_FALSE(s->finish_operation(id + 1000, OperationState::done).ok());
}

TEST_CASE("a file that is not a database is a clear error") {
  test::TempDir dir;
  {
    std::ofstream f(dir / "state.db");
    f << "this is not an SQLite database, it is a text file of some length that sqlite must reject. "
         "padding padding padding padding padding padding padding padding padding padding padding";
  }
  auto s = StateStore::open(dir.path());
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message.find((dir / "state.db").string()) != std::string::npos);
  CHECK(s.error().message.find("not a database") != std::string::npos);
}

TEST_CASE("the database is WAL and private to its owner") {
  test::TempDir dir;
  auto s = std::move(StateStore::open(dir.path()).value());
  REQUIRE(s->put("sriov", "x", "1").ok());
  struct stat st;
  REQUIRE(::stat((dir / "state.db").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(std::filesystem::exists(dir / "state.db-wal"));
}

TEST_CASE("one process at a time: a second opener of the same state directory is refused, saying why") {
  test::TempDir dir("sriovd-state");
  auto first = StateStore::open(dir.path());
  REQUIRE(first.ok());
  REQUIRE((*first)->put("sriov", "0000:17:00.0", R"({"num_vfs":4})").ok());
  auto second = StateStore::open(dir.path());
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().message.find("in use by another process") != std::string::npos);
  first->reset();
  auto again = StateStore::open(dir.path());  // once the first is closed
  REQUIRE(again.ok());
  auto v = (*again)->get("sriov", "0000:17:00.0");
  REQUIRE(v.ok());
  CHECK(v->value_or("") == R"({"num_vfs":4})");
}

namespace {

// A VFS in front of SQLite's default one that counts the syncs of write-ahead logs: what
// reaches the disk before a call returns.
struct SyncCounter {
  static inline sqlite3_vfs* real = nullptr;
  static inline sqlite3_vfs shim{};
  static inline int wal_syncs = 0;

  struct File {
    sqlite3_file base;
    bool wal;
    sqlite3_file* inner() { return reinterpret_cast<sqlite3_file*>(this + 1); }
  };
  static File* of(sqlite3_file* f) { return reinterpret_cast<File*>(f); }

  static int close(sqlite3_file* f) { return of(f)->inner()->pMethods->xClose(of(f)->inner()); }
  static int read(sqlite3_file* f, void* b, int n, sqlite3_int64 o) {
    return of(f)->inner()->pMethods->xRead(of(f)->inner(), b, n, o);
  }
  static int write(sqlite3_file* f, const void* b, int n, sqlite3_int64 o) {
    return of(f)->inner()->pMethods->xWrite(of(f)->inner(), b, n, o);
  }
  static int truncate(sqlite3_file* f, sqlite3_int64 n) {
    return of(f)->inner()->pMethods->xTruncate(of(f)->inner(), n);
  }
  static int sync(sqlite3_file* f, int flags) {
    if (of(f)->wal) ++wal_syncs;
    return of(f)->inner()->pMethods->xSync(of(f)->inner(), flags);
  }
  static int size(sqlite3_file* f, sqlite3_int64* n) { return of(f)->inner()->pMethods->xFileSize(of(f)->inner(), n); }
  static int lock(sqlite3_file* f, int l) { return of(f)->inner()->pMethods->xLock(of(f)->inner(), l); }
  static int unlock(sqlite3_file* f, int l) { return of(f)->inner()->pMethods->xUnlock(of(f)->inner(), l); }
  static int reserved(sqlite3_file* f, int* r) {
    return of(f)->inner()->pMethods->xCheckReservedLock(of(f)->inner(), r);
  }
  static int control(sqlite3_file* f, int op, void* a) {
    return of(f)->inner()->pMethods->xFileControl(of(f)->inner(), op, a);
  }
  static int sector(sqlite3_file* f) { return of(f)->inner()->pMethods->xSectorSize(of(f)->inner()); }
  static int caps(sqlite3_file* f) { return of(f)->inner()->pMethods->xDeviceCharacteristics(of(f)->inner()); }
  static int shm_map(sqlite3_file* f, int r, int s, int e, void volatile** p) {
    return of(f)->inner()->pMethods->xShmMap(of(f)->inner(), r, s, e, p);
  }
  static int shm_lock(sqlite3_file* f, int o, int n, int fl) {
    return of(f)->inner()->pMethods->xShmLock(of(f)->inner(), o, n, fl);
  }
  static void shm_barrier(sqlite3_file* f) { of(f)->inner()->pMethods->xShmBarrier(of(f)->inner()); }
  static int shm_unmap(sqlite3_file* f, int d) { return of(f)->inner()->pMethods->xShmUnmap(of(f)->inner(), d); }
  static int fetch(sqlite3_file* f, sqlite3_int64 o, int n, void** p) {
    return of(f)->inner()->pMethods->xFetch(of(f)->inner(), o, n, p);
  }
  static int unfetch(sqlite3_file* f, sqlite3_int64 o, void* p) {
    return of(f)->inner()->pMethods->xUnfetch(of(f)->inner(), o, p);
  }
  static inline const sqlite3_io_methods methods = {3,        close,       read,      write,   truncate, sync, size,
                                                    lock,     unlock,      reserved,  control, sector,   caps, shm_map,
                                                    shm_lock, shm_barrier, shm_unmap, fetch,   unfetch};

  static int open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out) {
    File* file = of(f);
    file->base.pMethods = nullptr;
    file->wal = (flags & SQLITE_OPEN_WAL) != 0;
    int rc = real->xOpen(real, name, file->inner(), flags, out);
    if (rc == SQLITE_OK && file->inner()->pMethods) file->base.pMethods = &methods;
    return rc;
  }

  SyncCounter() {
    real = sqlite3_vfs_find(nullptr);
    shim = *real;
    shim.zName = "sriovd-sync-counter";
    shim.szOsFile = static_cast<int>(sizeof(File)) + real->szOsFile;
    shim.xOpen = open;
    sqlite3_vfs_register(&shim, 1);
  }
  ~SyncCounter() {
    sqlite3_vfs_unregister(&shim);
    sqlite3_vfs_register(real, 1);
  }
};

}  // namespace

TEST_CASE("a change is synced to disk before it returns; an operation's steps are only written") {
  SyncCounter counter;
  test::TempDir dir;
  auto s = std::move(StateStore::open(dir.path()).value());
  auto syncs = [&] { return std::exchange(SyncCounter::wal_syncs, 0); };
  syncs();
  REQUIRE(s->put("sriov", "a", "1").ok());
  CHECK(syncs() >= 1);
  auto op = s->begin_operation(OperationKind::set_driver, "0000:17:00.0", "{}");
  REQUIRE(op.ok());
  CHECK(syncs() >= 1);
  REQUIRE(s->add_step(*op, R"({"do":{}})").ok());
  REQUIRE(s->add_step(*op, R"({"do":{}})").ok());
  CHECK(syncs() == 0);
  REQUIRE(
      s->transaction([](StateStore::Tx& tx) { return tx.put("lease", "x", "{}"); }, Durability::process_crash).ok());
  CHECK(syncs() == 0);
  REQUIRE(s->transaction([&](StateStore::Tx& tx) -> Result<void> {
             if (auto r = tx.put("lease", "x", R"({"state":"active"})"); !r) return r;
             return tx.finish_operation(*op, OperationState::done);
           }).ok());
  CHECK(syncs() >= 1);
  REQUIRE(s->erase("lease", "x").ok());
  CHECK(syncs() >= 1);
}

TEST_CASE("group commit: commits are written without a sync, and one sync then covers all of them") {
  test::TempDir dir;
  auto s = std::move(StateStore::open(dir.path()).value());
  auto group_put = [&](const std::string& key) {
    return s->transaction([&](StateStore::Tx& tx) { return tx.put("lease", key, "{}"); }, Durability::group);
  };
  // The first sync of a fresh database (SQLite's own, which also syncs the log's directory).
  REQUIRE(group_put("a").ok());
  const uint64_t before = s->syncs();
  REQUIRE(s->sync_through(s->written()).ok());
  CHECK(s->syncs() == before + 1);

  const uint64_t base = s->syncs();
  for (const char* k : {"b", "c", "d"}) REQUIRE(group_put(k).ok());
  CHECK(s->syncs() == base);  // written, not synced
  const uint64_t third = s->written();
  REQUIRE(s->sync_through(third - 2).ok());  // the first of the three: one sync for all three
  CHECK(s->syncs() == base + 1);
  REQUIRE(s->sync_through(third).ok());
  CHECK(s->syncs() == base + 1);
  // A power_loss commit syncs what the group commits before it wrote.
  REQUIRE(group_put("e").ok());
  REQUIRE(s->put("sriov", "x", "1").ok());
  CHECK(s->syncs() == base + 2);
  REQUIRE(s->sync_through(s->written()).ok());
  CHECK(s->syncs() == base + 2);

  s.reset();
  auto again = std::move(StateStore::open(dir.path()).value());
  CHECK(again->all("lease")->size() == 5);
}

TEST_CASE("group commit: threads that commit and sync at once all get their changes on disk") {
  test::TempDir dir;
  auto s = std::move(StateStore::open(dir.path()).value());
  constexpr int kThreads = 8, kEach = 40;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string key = std::to_string(t) + "-" + std::to_string(i);
        Result<void> r = ok();
        if (i % 10 == 9) {
          r = s->put("lease", key, "{}");  // a power_loss commit in between
        } else {
          r = s->transaction([&](StateStore::Tx& tx) { return tx.put("lease", key, "{}"); }, Durability::group);
          if (r) r = s->sync_through(s->written());
        }
        if (!r) ++failures;
      }
    });
  for (auto& t : threads) t.join();
  CHECK(failures == 0);
  CHECK(s->syncs() <= static_cast<uint64_t>(kThreads * kEach));
  s.reset();
  auto again = std::move(StateStore::open(dir.path()).value());
  CHECK(again->all("lease")->size() == kThreads * kEach);
}
