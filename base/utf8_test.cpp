#include "base/utf8.h"

#include <doctest/doctest.h>

using sriovd::valid_utf8;
using namespace std::string_view_literals;

TEST_CASE("valid_utf8: well-formed text of every length") {
  CHECK(valid_utf8(""));
  CHECK(valid_utf8("/v1/devices/0000:17:00.0"));
  CHECK(valid_utf8("caf\xC3\xA9"));       // U+00E9
  CHECK(valid_utf8("\xE2\x82\xAC"));      // U+20AC
  CHECK(valid_utf8("\xED\x9F\xBF"));      // U+D7FF, just below the surrogates
  CHECK(valid_utf8("\xEF\xBF\xBD"));      // U+FFFD
  CHECK(valid_utf8("\xF0\x9F\x98\x80"));  // U+1F600
  CHECK(valid_utf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF, the last
  CHECK(valid_utf8("a\0b"sv));            // NUL is a character
}

TEST_CASE("valid_utf8: what a JSON encoder refuses") {
  CHECK_FALSE(valid_utf8("\xC0"));              // the path of GET /v1/devices/%C0
  CHECK_FALSE(valid_utf8("\xC0\xAF"));          // overlong '/'
  CHECK_FALSE(valid_utf8("\xC1\xBF"));          // overlong
  CHECK_FALSE(valid_utf8("\x80"));              // a continuation byte first
  CHECK_FALSE(valid_utf8("\xC3"));              // truncated
  CHECK_FALSE(valid_utf8("\xE2\x82"));          // truncated
  CHECK_FALSE(valid_utf8("\xE0\x80\xAF"));      // overlong
  CHECK_FALSE(valid_utf8("\xED\xA0\x80"));      // U+D800, a surrogate
  CHECK_FALSE(valid_utf8("\xF0\x80\x80\xAF"));  // overlong
  CHECK_FALSE(valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  CHECK_FALSE(valid_utf8("\xF5\x80\x80\x80"));
  CHECK_FALSE(valid_utf8("\xFF"));
  CHECK_FALSE(valid_utf8("\xC3\x28"));  // a second byte that does not continue
  CHECK_FALSE(valid_utf8("ok\xE2\x28\xA1"));
}
