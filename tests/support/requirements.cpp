#include "tests/support/requirements.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace sriovd::test {
namespace {

std::vector<std::string>& skips() {
  static std::vector<std::string> reasons;
  return reasons;
}

}  // namespace

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string_view(ci) == "true";
}

bool have_tool(const std::string& tool) {
  const char* path = std::getenv("PATH");
  std::string_view dirs = path && *path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (!dirs.empty()) {
    const size_t colon = dirs.find(':');
    const std::string_view dir = dirs.substr(0, colon);
    dirs = colon == std::string_view::npos ? std::string_view{} : dirs.substr(colon + 1);
    if (dir.empty()) continue;  // the current directory: never where a test's tools are
    std::string candidate(dir);
    candidate += '/';
    candidate += tool;
    if (::access(candidate.c_str(), X_OK) == 0) return true;
  }
  return false;
}

void missing(const std::string& why) {
  if (in_ci()) {
    FAIL_CHECK("CI=true, cannot skip: " << why);
    return;
  }
  MESSAGE("SKIP: " << why);
  skips().push_back(why);
}

bool require_tool(const std::string& tool, const std::string& package) {
  if (have_tool(tool)) return true;
  std::string why = tool;
  why.append(" not installed (").append(package).append("; scripts/install-deps.sh --test)");
  missing(why);
  return false;
}

int exit_status(int status) {
  if (status != 0 || skips().empty()) return status;
  for (const auto& why : skips()) std::fprintf(stderr, "SKIP: %s\n", why.c_str());
  std::fprintf(stderr, "%zu case(s) skipped (CI=true runs them or fails)\n", skips().size());
  return 77;
}

}  // namespace sriovd::test
