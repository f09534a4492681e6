// The domain's enums and their one string table each: every value has its stored spelling, the
// spelling reads back to the value, and nothing else parses.
#include <doctest/doctest.h>

#include "agent/lease.h"
#include "agent/state_store.h"

using namespace sriovd;
using namespace sriovd::agent;

namespace {

template <class E>
void round_trip(std::initializer_list<std::pair<E, std::string_view>> expected) {
  for (const auto& pair : expected) {
    // Named copies, not a structured binding: CAPTURE's lambda may not capture one before C++20
    // compilers caught up (clang 16), and clang-tidy 14 parses this file.
    const E value = pair.first;
    const std::string_view name = pair.second;
    CAPTURE(name);
    CHECK(to_string(value) == name);
    CHECK(from_string<E>(name) == value);
  }
  CHECK_FALSE(from_string<E>(""));
  CHECK_FALSE(from_string<E>("ACTIVE"));
  CHECK_FALSE(from_string<E>("done "));
}

}  // namespace

TEST_CASE("lease states: the API's and the store's spelling") {
  round_trip<LeaseState>({{LeaseState::allocating, "allocating"},
                          {LeaseState::active, "active"},
                          {LeaseState::releasing, "releasing"},
                          {LeaseState::released, "released"}});
}

TEST_CASE("operation states and kinds: the journal's spelling") {
  round_trip<OperationState>({{OperationState::pending, "pending"},
                              {OperationState::done, "done"},
                              {OperationState::failed, "failed"},
                              {OperationState::rolled_back, "rolled_back"}});
  round_trip<OperationKind>({{OperationKind::set_num_vfs, "set_num_vfs"},
                             {OperationKind::set_vf_config, "set_vf_config"},
                             {OperationKind::set_driver, "set_driver"},
                             {OperationKind::reconcile, "reconcile"},
                             {OperationKind::allocate, "allocate"},
                             {OperationKind::release, "release"},
                             {OperationKind::restore_lease, "restore_lease"}});
}

TEST_CASE("EnumTable: a value missing from a table is named empty") {
  enum class E { a, b };
  constexpr EnumTable<E, 1> t{{{{E::a, "a"}}}};
  static_assert(t.name(E::a) == "a");
  static_assert(t.name(E::b).empty());
  static_assert(t.parse("a") == E::a);
  static_assert(!t.parse("b"));
}
