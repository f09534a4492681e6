#include "base/sse_parser.h"

#include <doctest/doctest.h>

using sriovd::cli::SseParser;

TEST_CASE("events, comments, retry and ids as sriovd sends them") {
  SseParser p;
  auto evs = p.feed("retry: 2000\n: subscribed\n\nid: 7\nevent: device.added\ndata: {\"a\":1}\n\n: keepalive\n\n");
  REQUIRE(evs.size() == 1);
  CHECK(evs[0].id == "7");
  CHECK(evs[0].type == "device.added");
  CHECK(evs[0].data == "{\"a\":1}");
  CHECK(p.retry_ms() == 2000u);
  CHECK(p.comments() == 2);
  CHECK(p.last_id() == "7");
}

TEST_CASE("bytes split anywhere, CR, LF and CRLF line ends give the same events") {
  const std::string text = "event: x\r\ndata: one\r\ndata: two\r\n\r\nid: 3\rdata: three\r\r";
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    SseParser p;
    auto a = p.feed(text.substr(0, cut));
    auto b = p.feed(text.substr(cut));
    a.insert(a.end(), b.begin(), b.end());
    REQUIRE(a.size() == 2);
    CHECK(a[0].type == "x");
    CHECK(a[0].data == "one\ntwo");
    CHECK(a[1].type == "message");
    CHECK(a[1].data == "three");
    CHECK(a[1].id == "3");
  }
}

TEST_CASE("no data: nothing dispatched; field without colon; value without the space; bad retry ignored") {
  SseParser p;
  CHECK(p.feed("event: lonely\n\n").empty());
  auto evs = p.feed("data\ndata:x\nretry: 1x\n\n");
  REQUIRE(evs.size() == 1);
  CHECK(evs[0].data == "\nx");
  CHECK_FALSE(p.retry_ms().has_value());
  CHECK(evs[0].type == "message");  // the type does not carry over from the undispatched event
}

TEST_CASE("a line without end beyond the limit fails the parser") {
  SseParser p;
  std::string big(SseParser::kMaxLine + 1, 'a');
  CHECK(p.feed(big).empty());
  CHECK(p.failed());
}
