// SharedLibrary: loading on demand, and errors that say what is missing and what to install.
#include "base/shared_library.h"

#include <doctest/doctest.h>

#include <cmath>

using namespace sriovd;

namespace {
#define TEST_LIBM_FUNCTIONS(X) X(cos) X(floor)
struct Libm {
  SRIOVD_DECLARE_FUNCTIONS(TEST_LIBM_FUNCTIONS)
};
}  // namespace

TEST_CASE("functions are resolved into a table typed by their declarations") {
  auto lib = SharedLibrary::open("libm.so.6", "libc6");
  INFO((lib.ok() ? std::string() : lib.error().message));
  REQUIRE(lib.ok());
  Libm m;
  auto r = SRIOVD_RESOLVE_FUNCTIONS(*lib, m, TEST_LIBM_FUNCTIONS);
  REQUIRE(r.ok());
  CHECK(m.floor(2.5) == 2.0);
  CHECK(m.cos(0.0) == 1.0);
}

TEST_CASE("a library that is not installed: unavailable, naming it and the package") {
  auto lib = SharedLibrary::open("libsriovd-absent.so.9", "sriovd-absent");
  REQUIRE_FALSE(lib.ok());
  CHECK(lib.error().code == ErrorCode::unavailable);
  CHECK(lib.error().message.find("libsriovd-absent.so.9") != std::string::npos);
  CHECK(lib.error().message.find("install the sriovd-absent package") != std::string::npos);
}

TEST_CASE("a function the library lacks: unavailable, naming the function") {
  auto lib = SharedLibrary::open("libm.so.6", "libc6");
  REQUIRE(lib.ok());
  auto s = lib->symbol("sriovd_no_such_function");
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().code == ErrorCode::unavailable);
  CHECK(s.error().message.find("libm.so.6 has no sriovd_no_such_function") != std::string::npos);
}

TEST_CASE("load_once loads and initialises once; every caller gets the same table or the same error") {
  int inits = 0;
  auto first = SharedLibrary::load_once<Libm>("libm.so.6", "libc6", [&](const SharedLibrary& lib, Libm& t) {
    ++inits;
    return SRIOVD_RESOLVE_FUNCTIONS(lib, t, TEST_LIBM_FUNCTIONS);
  });
  REQUIRE(first.ok());
  CHECK((*first)->floor(1.5) == 1.0);

  auto load_absent = [&] {
    return SharedLibrary::load_once<Libm>("libsriovd-absent.so.9", "sriovd-absent", [&](const SharedLibrary&, Libm&) {
      ++inits;
      return ok();
    });
  };
  auto a = load_absent(), b = load_absent();
  REQUIRE_FALSE(a.ok());
  REQUIRE_FALSE(b.ok());
  CHECK(a.error().message == b.error().message);
  CHECK(inits == 1);  // the absent library never reached its init
}
