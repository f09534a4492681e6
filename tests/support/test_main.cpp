// doctest's main for every sriovd_test, which also turns skipped cases (requirements.h) into
// exit status 77, so ctest reports the test as skipped instead of passed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "tests/support/requirements.h"

int main(int argc, char** argv) {
  doctest::Context ctx;
  ctx.applyCommandLine(argc, argv);
  int status = ctx.run();
  if (ctx.shouldExit()) return status;
  return sriovd::test::exit_status(status);
}
