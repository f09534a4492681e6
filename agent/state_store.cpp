#include "agent/state_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>

namespace sriovd::agent {

namespace {

// One use of a statement prepared once per connection (StateStore::prepared): reset and its
// bindings cleared on scope exit, ready for the next use.
class Stmt {
 public:
  explicit Stmt(sqlite3_stmt* st) : st_(st) {}
  ~Stmt() {
    if (st_) {
      sqlite3_reset(st_);
      sqlite3_clear_bindings(st_);
    }
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return st_ != nullptr; }
  Stmt& bind(int i, const std::string& s) {
    sqlite3_bind_text(st_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, std::string_view s) {
    sqlite3_bind_text(st_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(st_, i, v);
    return *this;
  }
  int step() { return sqlite3_step(st_); }
  std::string text(int col) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(st_, col))) : std::string();
  }
  int64_t int64(int col) const { return sqlite3_column_int64(st_, col); }

 private:
  sqlite3_stmt* st_ = nullptr;
};

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr int kSchemaVersion = 1;
constexpr int64_t kKeptOperations = 1000;
// Finished operations are pruned once every kPruneEvery operations, not at each: a delete
// touches the table's oldest pages, and doing it in batches keeps them out of most commits.
constexpr int64_t kPruneEvery = 100;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS desired (
  kind TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (kind, key)
);
CREATE TABLE IF NOT EXISTS operations (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  target TEXT NOT NULL,
  request TEXT NOT NULL,
  state TEXT NOT NULL,
  steps TEXT NOT NULL DEFAULT '[]',
  error TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  finished_at INTEGER
);
DROP INDEX IF EXISTS operations_state;
)sql";
// operations_state (an index on operations.state, in databases written before) is dropped: the
// only query by state reads the pending operations once at start, from at most ~1,100 rows, and
// the index cost two page writes in every operation's commits.

constexpr EnumTable<OperationKind, 8> kOperationKinds{{{
    {OperationKind::set_num_vfs, "set_num_vfs"},
    {OperationKind::set_vf_config, "set_vf_config"},
    {OperationKind::set_driver, "set_driver"},
    {OperationKind::reconcile, "reconcile"},
    {OperationKind::allocate, "allocate"},
    {OperationKind::release, "release"},
    {OperationKind::restore_lease, "restore_lease"},
    {OperationKind::set_mtu, "set_mtu"},
}}};

constexpr EnumTable<OperationState, 4> kOperationStates{{{
    {OperationState::pending, "pending"},
    {OperationState::done, "done"},
    {OperationState::failed, "failed"},
    {OperationState::rolled_back, "rolled_back"},
}}};

}  // namespace

std::string_view to_string(OperationKind k) { return kOperationKinds.name(k); }
std::string_view to_string(OperationState s) { return kOperationStates.name(s); }

Error StateStore::sql_error(const std::string& what) const {
  return Error::make(ErrorCode::io,
                     what + " in " + path_.string() + ": " + (db_ ? sqlite3_errmsg(db_) : "no database"));
}

Result<void> StateStore::exec(const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string m = msg ? msg : "unknown error";
    sqlite3_free(msg);
    return Error::make(ErrorCode::io, "state database " + path_.string() + ": " + m);
  }
  return ok();
}

Result<void> StateStore::run(const char* sql) {
  Stmt st(prepared(sql));
  if (!st.ok()) return sql_error(sql);
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
  }
  if (rc != SQLITE_DONE) return sql_error(sql);
  return ok();
}

Result<std::unique_ptr<StateStore>> StateStore::open(const std::filesystem::path& state_dir) {
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  if (ec) return Error::sys(ec.value(), "creating state directory " + state_dir.string());
  std::unique_ptr<StateStore> s(new StateStore());
  s->path_ = state_dir / "state.db";
  MutexLock lock(s->mu_);  // no other thread has it yet; the helpers expect the lock
  int rc = sqlite3_open_v2(s->path_.c_str(), &s->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) return s->sql_error("opening the state database");
  ::chmod(s->path_.c_str(), 0600);
  sqlite3_busy_timeout(s->db_, 2000);  // a daemon that is still exiting
  // WAL: readers never block the writer. synchronous=NORMAL: a commit writes the log without
  // syncing it; a commit that must survive a power loss syncs the log itself after it
  // (sync_log_locked), which is what synchronous=FULL does at every commit. The setting is not
  // switched per transaction: a PRAGMA is compiled anew each time it runs.
  // cache_size: the state is a few kilobytes; SQLite's default 2 MiB page cache would be most
  // of the daemon's memory.
  // locking_mode=EXCLUSIVE (before WAL): one process owns the database while it has it open: no
  // file lock or shared-memory index per transaction, and a second daemon on the same state
  // directory is refused instead of interleaving with the first.
  for (const char* pragma : {"PRAGMA locking_mode=EXCLUSIVE", "PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL",
                             "PRAGMA foreign_keys=ON", "PRAGMA cache_size=-256"}) {
    if (auto r = s->exec(pragma); !r) {
      if (sqlite3_errcode(s->db_) == SQLITE_BUSY)
        return Error::make(ErrorCode::conflict, s->path_.string() +
                                                    " is in use by another process (another sriovd "
                                                    "with the same state directory?)");
      return std::move(r).error().context("not a usable state database");
    }
  }
  if (auto r = s->exec(kSchema); !r) return std::move(r).error();
  Stmt v(s->prepared("SELECT value FROM meta WHERE key='schema_version'"));
  if (!v.ok()) return s->sql_error("reading the schema version");
  if (v.step() == SQLITE_ROW) {
    int have = std::stoi(v.text(0));
    if (have > kSchemaVersion)
      return Error::make(ErrorCode::unavailable, s->path_.string() + " was written by a newer sriovd (schema " +
                                                     std::to_string(have) + ", this one knows " +
                                                     std::to_string(kSchemaVersion) + ")");
  } else {
    Stmt put(s->prepared("INSERT INTO meta(key, value) VALUES('schema_version', ?1)"));
    put.bind(1, std::to_string(kSchemaVersion));
    if (put.step() != SQLITE_DONE) return s->sql_error("writing the schema version");
  }
  return s;
}

StateStore::~StateStore() {
  for (auto& [sql, st] : prepared_) sqlite3_finalize(st);
  if (db_) sqlite3_close_v2(db_);
  if (const int fd = log_fd_.load(); fd >= 0) ::close(fd);
}

sqlite3_stmt* StateStore::prepared(const char* sql) {
  auto it = prepared_.find(sql);
  if (it != prepared_.end()) return it->second;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, nullptr) != SQLITE_OK) return nullptr;
  prepared_.emplace(sql, st);
  return st;
}

Result<void> StateStore::sync_log_locked() {
  // The write-ahead log's file, as SQLite has it open (SQLITE_FCNTL_JOURNAL_POINTER), synced as
  // synchronous=FULL syncs it at a commit. Without a log (nothing written yet) there is nothing
  // to sync.
  sqlite3_file* log = nullptr;
  if (sqlite3_file_control(db_, "main", SQLITE_FCNTL_JOURNAL_POINTER, &log) != SQLITE_OK)
    return sql_error("finding the write-ahead log");
  if (!log || !log->pMethods) return ok();
  const uint64_t through = written();
  if (log->pMethods->xSync(log, SQLITE_SYNC_NORMAL) != SQLITE_OK)
    return Error::make(ErrorCode::io, "syncing the write-ahead log of " + path_.string());
  syncs_.fetch_add(1, std::memory_order_relaxed);
  {
    MutexLock s(sync_mu_);
    synced_ = std::max(synced_, through);
  }
  // The log's own descriptor, for sync_through. SQLite keeps the file while the database is
  // open (locking_mode=EXCLUSIVE: it is reset and reused, never deleted), and its first sync,
  // just done, has synced the directory that holds it.
  if (log_fd_.load() < 0) {
    const std::string wal = path_.string() + "-wal";
    const int fd = ::open(wal.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Error::sys(errno, "opening " + wal);
    log_fd_.store(fd);
  }
  return ok();
}

Result<void> StateStore::durable_locked(Durability d) {
  // Inside a transaction the statement is not committed yet: the transaction's commit decides.
  if (!sqlite3_get_autocommit(db_)) return ok();
  written_.fetch_add(1, std::memory_order_release);
  if (d != Durability::power_loss) return ok();
  return sync_log_locked();
}

Result<void> StateStore::sync_through(uint64_t n) {
  MutexLock lock(sync_mu_);
  while (synced_ < n) {
    if (syncing_) {
      sync_done_.wait(lock);
      continue;
    }
    // The leader: one sync for every commit written by now.
    syncing_ = true;
    const uint64_t through = written();
    lock.unlock();
    Result<void> r = ok();
    if (const int fd = log_fd_.load(); fd >= 0) {
      if (::fdatasync(fd) != 0) r = Error::sys(errno, "syncing the write-ahead log of " + path_.string());
      else syncs_.fetch_add(1, std::memory_order_relaxed);
    } else {
      MutexLock store(mu_);  // no descriptor yet: SQLite's own sync, which opens it
      r = sync_log_locked();
    }
    lock.lock();
    syncing_ = false;
    sync_done_.notify_all();
    if (!r) return r;
    synced_ = std::max(synced_, through);
  }
  return ok();
}

Result<std::optional<std::string>> StateStore::get_locked(const std::string& kind, const std::string& key) {
  Stmt st(prepared("SELECT value FROM desired WHERE kind=?1 AND key=?2"));
  if (!st.ok()) return sql_error("reading desired state");
  st.bind(1, kind).bind(2, key);
  int rc = st.step();
  if (rc == SQLITE_ROW) return std::optional<std::string>(st.text(0));
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  return sql_error("reading desired state");
}

Result<void> StateStore::put_locked(const std::string& kind, const std::string& key, const std::string& json) {
  Stmt st(
      prepared("INSERT INTO desired(kind, key, value, updated_at) VALUES(?1, ?2, ?3, ?4) "
               "ON CONFLICT(kind, key) DO UPDATE SET value=excluded.value, updated_at=excluded.updated_at"));
  if (!st.ok()) return sql_error("writing desired state");
  st.bind(1, kind).bind(2, key).bind(3, json).bind(4, now_ms());
  if (st.step() != SQLITE_DONE) return sql_error("writing desired state");
  return ok();
}

Result<void> StateStore::erase_locked(const std::string& kind, const std::string& key) {
  Stmt st(prepared("DELETE FROM desired WHERE kind=?1 AND key=?2"));
  if (!st.ok()) return sql_error("erasing desired state");
  st.bind(1, kind).bind(2, key);
  if (st.step() != SQLITE_DONE) return sql_error("erasing desired state");
  return ok();
}

Result<std::optional<std::string>> StateStore::get(const std::string& kind, const std::string& key) {
  MutexLock lock(mu_);
  return get_locked(kind, key);
}

Result<std::map<std::string, std::string>> StateStore::all(const std::string& kind) {
  MutexLock lock(mu_);
  Stmt st(prepared("SELECT key, value FROM desired WHERE kind=?1 ORDER BY key"));
  if (!st.ok()) return sql_error("reading desired state");
  st.bind(1, kind);
  std::map<std::string, std::string> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) out.emplace(st.text(0), st.text(1));
  if (rc != SQLITE_DONE) return sql_error("reading desired state");
  return out;
}

Result<void> StateStore::put(const std::string& kind, const std::string& key, const std::string& json) {
  MutexLock lock(mu_);
  if (auto r = put_locked(kind, key, json); !r) return r;
  return durable_locked(Durability::power_loss);
}

Result<void> StateStore::erase(const std::string& kind, const std::string& key) {
  MutexLock lock(mu_);
  if (auto r = erase_locked(kind, key); !r) return r;
  return durable_locked(Durability::power_loss);
}

// The Tx's methods run inside transaction(), under the lock it holds (see Tx): the analysis
// cannot follow the lock through the std::function it calls.
Result<void> StateStore::Tx::put(const std::string& kind, const std::string& key,
                                 const std::string& json) SRIOVD_NO_THREAD_SAFETY_ANALYSIS {
  return s_.put_locked(kind, key, json);
}
Result<void> StateStore::Tx::erase(const std::string& kind, const std::string& key) SRIOVD_NO_THREAD_SAFETY_ANALYSIS {
  return s_.erase_locked(kind, key);
}
Result<std::optional<std::string>> StateStore::Tx::get(const std::string& kind,
                                                       const std::string& key) SRIOVD_NO_THREAD_SAFETY_ANALYSIS {
  return s_.get_locked(kind, key);
}
Result<int64_t> StateStore::Tx::begin_operation(OperationKind kind, const std::string& target,
                                                const std::string& request) SRIOVD_NO_THREAD_SAFETY_ANALYSIS {
  return s_.begin_operation_locked(kind, target, request);
}
Result<void> StateStore::Tx::add_step(int64_t id, const std::string& step_json) SRIOVD_NO_THREAD_SAFETY_ANALYSIS {
  return s_.add_step_locked(id, step_json);
}
Result<void> StateStore::Tx::finish_operation(int64_t id, OperationState state,
                                              const std::string& error) SRIOVD_NO_THREAD_SAFETY_ANALYSIS {
  return s_.finish_operation_locked(id, state, error);
}

Result<void> StateStore::transaction(const std::function<Result<void>(Tx&)>& fn, Durability durability) {
  MutexLock lock(mu_);
  // IMMEDIATE: take the write lock now, so a second process waits here, not at COMMIT.
  if (auto r = run("BEGIN IMMEDIATE"); !r) return r;
  Tx tx(*this);
  Result<void> result = ok();
  try {
    result = fn(tx);
  } catch (...) {
    (void)run("ROLLBACK");
    throw;
  }
  if (!result) {
    (void)run("ROLLBACK");
    return result;
  }
  if (auto r = run("COMMIT"); !r) {
    (void)run("ROLLBACK");
    return r;
  }
  return durable_locked(durability);
}

Result<int64_t> StateStore::begin_operation(OperationKind kind, const std::string& target, const std::string& request) {
  MutexLock lock(mu_);
  return begin_operation_locked(kind, target, request);
}

Result<void> StateStore::add_step(int64_t id, const std::string& step_json) {
  MutexLock lock(mu_);
  return add_step_locked(id, step_json);
}

Result<void> StateStore::finish_operation(int64_t id, OperationState state, const std::string& error) {
  MutexLock lock(mu_);
  return finish_operation_locked(id, state, error);
}

Result<int64_t> StateStore::begin_operation_locked(OperationKind kind, const std::string& target,
                                                   const std::string& request) {
  Stmt st(prepared("INSERT INTO operations(kind, target, request, state, created_at) VALUES(?1, ?2, ?3, ?5, ?4)"));
  if (!st.ok()) return sql_error("journalling an operation");
  st.bind(1, to_string(kind)).bind(2, target).bind(3, request).bind(4, now_ms());
  st.bind(5, to_string(OperationState::pending));
  if (st.step() != SQLITE_DONE) return sql_error("journalling an operation");
  const auto id = static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
  if (auto r = durable_locked(Durability::power_loss); !r) return std::move(r).error();
  return id;
}

Result<void> StateStore::add_step_locked(int64_t id, const std::string& step_json) {
  // A step records a change to the running kernel, which a power loss undoes by itself: the
  // step only has to outlive the process (see Durability), so its commit is not synced.
  // json_insert appends to the array in SQL: one statement, atomic.
  Stmt st(prepared("UPDATE operations SET steps=json_insert(steps, '$[#]', json(?2)) WHERE id=?1"));
  if (!st.ok()) return sql_error("journalling an operation step");
  st.bind(1, id).bind(2, step_json);
  if (st.step() != SQLITE_DONE || sqlite3_changes(db_) != 1) return sql_error("journalling an operation step");
  return ok();
}

Result<void> StateStore::finish_operation_locked(int64_t id, OperationState state, const std::string& error) {
  Stmt st(prepared("UPDATE operations SET state=?2, error=?3, finished_at=?4 WHERE id=?1"));
  if (!st.ok()) return sql_error("finishing an operation");
  st.bind(1, id).bind(2, to_string(state)).bind(3, error).bind(4, now_ms());
  if (st.step() != SQLITE_DONE || sqlite3_changes(db_) != 1) return sql_error("finishing an operation");
  if (auto r = durable_locked(Durability::power_loss); !r) return r;
  // The journal keeps the last kKeptOperations finished operations (for a post-mortem with
  // sqlite3), not every one since the host was installed; between kKeptOperations and
  // kKeptOperations + kPruneEvery of them.
  if (id % kPruneEvery != 0) return ok();
  Stmt prune(prepared("DELETE FROM operations WHERE id <= ?1 AND state != ?2"));
  if (!prune.ok()) return sql_error("pruning the operation journal");
  prune.bind(1, id - kKeptOperations).bind(2, to_string(OperationState::pending));
  if (prune.step() != SQLITE_DONE) return sql_error("pruning the operation journal");
  return ok();
}

namespace {

Result<Operation> read_operation(const Stmt& st) {
  Operation op;
  op.id = st.int64(0);
  const std::string kind = st.text(1), state = st.text(4);
  auto k = from_string<OperationKind>(kind);
  auto s = from_string<OperationState>(state);
  if (!k || !s)
    return Error::make(ErrorCode::io, "operation " + std::to_string(op.id) + " in the journal: unknown " +
                                          (k ? "state '" + state + "'" : "kind '" + kind + "'"));
  op.kind = *k;
  op.state = *s;
  op.target = st.text(2);
  op.request = st.text(3);
  auto steps = nlohmann::json::parse(st.text(5), nullptr, false);
  if (steps.is_array())
    for (const auto& s : steps) op.steps.push_back(s.dump());
  op.error = st.text(6);
  return op;
}

}  // namespace

Result<std::vector<Operation>> StateStore::operations_in_state(OperationState state) {
  MutexLock lock(mu_);
  Stmt st(prepared("SELECT id, kind, target, request, state, steps, error FROM operations WHERE state=?1 ORDER BY id"));
  if (!st.ok()) return sql_error("reading the operation journal");
  st.bind(1, to_string(state));
  std::vector<Operation> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    auto op = read_operation(st);
    if (!op) return std::move(op).error();
    out.push_back(std::move(*op));
  }
  if (rc != SQLITE_DONE) return sql_error("reading the operation journal");
  return out;
}

Result<std::optional<Operation>> StateStore::operation(int64_t id) {
  MutexLock lock(mu_);
  Stmt st(prepared("SELECT id, kind, target, request, state, steps, error FROM operations WHERE id=?1"));
  if (!st.ok()) return sql_error("reading the operation journal");
  st.bind(1, id);
  int rc = st.step();
  if (rc == SQLITE_ROW) {
    auto op = read_operation(st);
    if (!op) return std::move(op).error();
    return std::optional<Operation>(std::move(*op));
  }
  if (rc == SQLITE_DONE) return std::optional<Operation>();
  return sql_error("reading the operation journal");
}

}  // namespace sriovd::agent

namespace sriovd {
template <>
std::optional<agent::OperationKind> from_string(std::string_view s) {
  return agent::kOperationKinds.parse(s);
}
template <>
std::optional<agent::OperationState> from_string(std::string_view s) {
  return agent::kOperationStates.parse(s);
}
}  // namespace sriovd
