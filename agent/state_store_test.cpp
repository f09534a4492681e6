#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

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
    auto op = (*s)->begin_operation("set_num_vfs", "0000:17:00.0", R"({"num_vfs":8})");
    if (!op) _exit(3);
    (void)(*s)->add_step(*op, R"({"write":"sriov_numvfs","from":"0","to":"8"})");
    (void)(*s)->add_step(*op, R"({"write":"driver_override","from":null,"to":"vfio-pci"})");
    _exit(9);  // no destructor, no close: as if killed
  }
  int st = 0;
  REQUIRE(waitpid(pid, &st, 0) == pid);
  REQUIRE(WEXITSTATUS(st) == 9);

  auto s = std::move(StateStore::open(dir.path()).value());
  auto pending = s->operations_in_state("pending");
  REQUIRE(pending.ok());
  REQUIRE(pending->size() == 1);
  const auto& op = (*pending)[0];
  id = op.id;
  CHECK(op.kind == "set_num_vfs");
  CHECK(op.target == "0000:17:00.0");
  REQUIRE(op.steps.size() == 2);
  CHECK(nlohmann::json::parse(op.steps[0])["write"] == "sriov_numvfs");
  CHECK(nlohmann::json::parse(op.steps[1])["to"] == "vfio-pci");
  REQUIRE(s->finish_operation(id, "rolled_back", "daemon restarted mid-operation").ok());
  CHECK(s->operations_in_state("pending")->empty());
  auto done = s->operation(id);
  REQUIRE(done.ok());
  REQUIRE(done->has_value());
  CHECK((*done)->state == "rolled_back");
  CHECK((*done)->error == "daemon restarted mid-operation");
  CHECK_FALSE(s->finish_operation(id + 1000, "done").ok());
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
