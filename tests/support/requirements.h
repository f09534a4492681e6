// What a test needs from the machine (a tool, a kernel feature) and what happens when it is not
// there. Under CI (CI=true) every test must run: a missing requirement fails the case, naming
// it. Elsewhere the case is skipped, saying why, and the test program (tests/support/test_main.cpp)
// exits 77 once everything else passed, which ctest reports as skipped (SKIP_RETURN_CODE)
// instead of passed. Not thread-safe: call from the test's main thread.
#pragma once

#include <string>

namespace sriovd::test {

// CI=true in the environment: nothing may be skipped.
bool in_ci();

// `tool` is an executable on PATH.
bool have_tool(const std::string& tool);

// The current case cannot run: `why` names what is missing and where to get it. Fails the case
// under CI; otherwise prints "SKIP: <why>" and records the skip. The caller returns from the case.
void missing(const std::string& why);

// have_tool(tool), or missing("<tool> not installed (<package>; scripts/install-deps.sh --test)").
bool require_tool(const std::string& tool, const std::string& package);

// The program's exit status after doctest returned `status`: 77 when all that ran passed but
// some case was skipped (the reasons are printed again), `status` otherwise.
int exit_status(int status);

}  // namespace sriovd::test
