// StateStore: sriovd's durable state in SQLite (WAL): what the operator asked for (desired
// state: VFs per PF, VF attributes, drivers) and a journal of operations, so a restarted daemon
// knows what to converge the host to and which operation it was in the middle of.
//
// Desired state is a map (kind, key) → JSON value, each kind owned by one part of the agent:
//   "sriov"     key PF address                → {"num_vfs": N}
//   "vf_config" key "<PF address>#<VF index>"  → the VF's attributes
//   "driver"    key device address             → {"driver": "vfio-pci", "previous": "ice"}
// Every change is one SQLite transaction, committed and its log synced to disk before the call
// returns: a crash after a call keeps it, a crash during one leaves the state as before. The
// exception is what only has to outlive the process, not the machine (Durability): the steps of
// an operation, whose changes to the running kernel a power loss undoes anyway.
// One StateStore per process; it is thread-safe because every public method holds its mutex
// (SQLite's connection is not shared between threads) and the *_locked helpers behind them
// expect it held; a transaction's Tx works under the lock its transaction() took. Another process opening the same
// directory waits up to the busy timeout for the lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/enum_table.h"
#include "base/mutex.h"
#include "base/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace sriovd::agent {

// What an operation in the journal does.
enum class OperationKind {
  set_num_vfs,
  set_vf_config,
  set_driver,
  reconcile,
  allocate,
  release,
  restore_lease,
  set_mtu
};
// Where it is: pending until it ends done, failed (its steps undone, or a release left to finish)
// or rolled_back (undone at start after the daemon stopped mid-operation).
enum class OperationState { pending, done, failed, rolled_back };
// The journal's spelling: "set_num_vfs", ...; "pending", "done", "failed", "rolled_back".
std::string_view to_string(OperationKind k);
std::string_view to_string(OperationState s);

struct Operation {
  int64_t id = 0;
  OperationKind kind = OperationKind::reconcile;
  std::string target;   // the device address
  std::string request;  // JSON
  OperationState state = OperationState::pending;
  std::vector<std::string> steps;  // JSON of each applied step, in order (for undo)
  std::string error;
};

// What a commit must survive before it returns. power_loss: the write-ahead log is synced after
// the commit (what synchronous=FULL does); process_crash: it is written without a sync, so the
// commit survives the process being killed (the kernel has the write) but maybe not a power
// loss. A later power_loss commit syncs everything before it too. group: written as
// process_crash, and the caller makes it survive a power loss with sync_through(written()) before
// it tells anyone the change is made, after it has let go of its own locks: the syncs of
// concurrent commits are then one (group commit).
enum class Durability { power_loss, process_crash, group };

class StateStore {
 public:
  // Opens (creating if needed) <state_dir>/state.db. Errors name the path and SQLite's reason,
  // e.g. for a file that is not a database.
  static Result<std::unique_ptr<StateStore>> open(const std::filesystem::path& state_dir);
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  Result<std::optional<std::string>> get(const std::string& kind, const std::string& key) SRIOVD_EXCLUDES(mu_);
  Result<std::map<std::string, std::string>> all(const std::string& kind) SRIOVD_EXCLUDES(mu_);
  Result<void> put(const std::string& kind, const std::string& key, const std::string& json) SRIOVD_EXCLUDES(mu_);
  Result<void> erase(const std::string& kind, const std::string& key) SRIOVD_EXCLUDES(mu_);

  // Several changes in one transaction: `fn` calls the Tx's methods; if it returns an error
  // (or throws), nothing is kept. A Tx lives only inside transaction(), which holds the store's
  // lock throughout: its methods are the store's *_locked helpers. Calling the store's own
  // public methods from `fn` deadlocks.
  class Tx {
   public:
    Result<void> put(const std::string& kind, const std::string& key, const std::string& json);
    Result<void> erase(const std::string& kind, const std::string& key);
    Result<std::optional<std::string>> get(const std::string& kind, const std::string& key);
    // The journal's begin_operation, add_step and finish_operation, within the transaction.
    Result<int64_t> begin_operation(OperationKind kind, const std::string& target, const std::string& request);
    Result<void> add_step(int64_t id, const std::string& step_json);
    Result<void> finish_operation(int64_t id, OperationState state, const std::string& error = {});

   private:
    friend class StateStore;
    explicit Tx(StateStore& s) : s_(s) {}
    StateStore& s_;
  };
  Result<void> transaction(const std::function<Result<void>(Tx&)>& fn, Durability durability = Durability::power_loss)
      SRIOVD_EXCLUDES(mu_);

  // The operation journal. Steps are committed with Durability::process_crash; the journal keeps
  // the last 1,000 finished operations (pruned in batches of 100).
  // An entry whose kind or state is not one of these (a damaged database) is an io error.
  Result<int64_t> begin_operation(OperationKind kind, const std::string& target, const std::string& request)
      SRIOVD_EXCLUDES(mu_);
  Result<void> add_step(int64_t id, const std::string& step_json) SRIOVD_EXCLUDES(mu_);
  Result<void> finish_operation(int64_t id, OperationState state, const std::string& error = {}) SRIOVD_EXCLUDES(mu_);
  Result<std::vector<Operation>> operations_in_state(OperationState state) SRIOVD_EXCLUDES(mu_);
  Result<std::optional<Operation>> operation(int64_t id) SRIOVD_EXCLUDES(mu_);

  const std::filesystem::path& path() const { return path_; }

  // Group commit. Every commit is numbered as it is written; written() is the number of the
  // latest. sync_through(n) returns once commits up to n survive a power loss: one thread syncs
  // the log for all that wait (the leader, without the store's lock, so commits go on meanwhile)
  // and the others wait for its sync, or lead the next one when theirs came after it started.
  // An error (the sync failed) is returned to every waiter of that sync; a later call tries again.
  uint64_t written() const { return written_.load(std::memory_order_acquire); }
  Result<void> sync_through(uint64_t n) SRIOVD_EXCLUDES(mu_, sync_mu_);
  // How many times the log has been synced (each power_loss commit, each leader's sync).
  uint64_t syncs() const { return syncs_.load(std::memory_order_relaxed); }

 private:
  StateStore() = default;
  Result<void> exec(const char* sql) SRIOVD_REQUIRES(mu_);  // any SQL text, statements parsed each time
  Result<void> run(const char* sql) SRIOVD_REQUIRES(mu_);   // one statement (a literal), prepared once
  // The statement for `sql` (a string literal), prepared on first use and kept; nullptr when it
  // does not compile.
  sqlite3_stmt* prepared(const char* sql) SRIOVD_REQUIRES(mu_);
  // After a statement or a commit: for Durability::power_loss outside a transaction, syncs the
  // write-ahead log (the connection runs with synchronous=NORMAL).
  Result<void> durable_locked(Durability d) SRIOVD_REQUIRES(mu_);
  Result<void> sync_log_locked() SRIOVD_REQUIRES(mu_);
  Error sql_error(const std::string& what) const SRIOVD_REQUIRES(mu_);
  // The work of the public methods and of Tx, with the lock held.
  Result<std::optional<std::string>> get_locked(const std::string& kind, const std::string& key) SRIOVD_REQUIRES(mu_);
  Result<void> put_locked(const std::string& kind, const std::string& key, const std::string& json)
      SRIOVD_REQUIRES(mu_);
  Result<void> erase_locked(const std::string& kind, const std::string& key) SRIOVD_REQUIRES(mu_);
  Result<int64_t> begin_operation_locked(OperationKind kind, const std::string& target, const std::string& request)
      SRIOVD_REQUIRES(mu_);
  Result<void> add_step_locked(int64_t id, const std::string& step_json) SRIOVD_REQUIRES(mu_);
  Result<void> finish_operation_locked(int64_t id, OperationState state, const std::string& error) SRIOVD_REQUIRES(mu_);

  std::filesystem::path path_;
  Mutex mu_;
  sqlite3* db_ SRIOVD_GUARDED_BY(mu_) = nullptr;
  std::atomic<uint64_t> written_{0};  // commits written so far (outside a transaction, each statement)
  std::atomic<uint64_t> syncs_{0};
  std::atomic<int> log_fd_{-1};  // the write-ahead log, for syncs without mu_; opened at the first sync
  Mutex sync_mu_;                // after mu_ when both are held
  CondVar sync_done_;
  uint64_t synced_ SRIOVD_GUARDED_BY(sync_mu_) = 0;  // commits up to this survive a power loss
  bool syncing_ SRIOVD_GUARDED_BY(sync_mu_) = false;
  // By the address of the SQL literal: every statement is a literal of this file, so the lookup
  // needs no string built or compared.
  std::unordered_map<const char*, sqlite3_stmt*> prepared_ SRIOVD_GUARDED_BY(mu_);
};

}  // namespace sriovd::agent

namespace sriovd {
template <>
std::optional<agent::OperationKind> from_string(std::string_view s);
template <>
std::optional<agent::OperationState> from_string(std::string_view s);
}  // namespace sriovd
