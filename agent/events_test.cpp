#include "agent/events.h"

#include <doctest/doctest.h>

#include <thread>

using namespace sriovd::agent;
using namespace std::chrono_literals;

TEST_CASE("events get increasing ids and carry their fields") {
  EventLog log;
  uint64_t a = log.publish("device.added", {{"address", "0000:17:00.0"}});
  uint64_t b = log.publish("lease.created", {{"lease", "x"}});
  CHECK(b == a + 1);
  auto batch = log.wait_after(0, 0ms);
  REQUIRE(batch.events.size() == 2);
  CHECK_FALSE(batch.gap);
  CHECK(batch.events[0]->data["address"] == "0000:17:00.0");
  CHECK(batch.events[0]->data["type"] == "device.added");
  CHECK(batch.events[1]->data["id"] == b);
  CHECK(log.wait_after(a, 0ms).events.size() == 1);
}

TEST_CASE("a reader that fell out of the ring, or comes from another run, is told so") {
  EventLog log(2);
  uint64_t a = log.publish("a");
  log.publish("b");
  log.publish("c");  // "a" leaves the ring
  auto caught_up = log.wait_after(a, 0ms);
  CHECK_FALSE(caught_up.gap);  // nothing after "a" was lost
  CHECK(caught_up.events.size() == 2);
  auto behind = log.wait_after(a - 1, 0ms);
  CHECK(behind.gap);  // "a" was lost
  auto other_run = log.wait_after(12345, 0ms);
  CHECK(other_run.gap);
  CHECK(other_run.events.size() == 2);
}

TEST_CASE("a waiter wakes on publish and on close") {
  EventLog log;
  uint64_t last = log.last_id();
  std::thread t([&] { log.publish("late"); });
  auto batch = log.wait_after(last, 10s);
  t.join();
  REQUIRE(batch.events.size() == 1);
  CHECK(batch.events[0]->type == "late");

  std::thread c([&] { log.close(); });
  auto closed = log.wait_after(log.last_id(), 10s);
  c.join();
  CHECK(closed.closed);
}

TEST_CASE("once closed, the daemon waits for every stream to let go of its subscription") {
  EventLog log;
  CHECK(log.wait_unsubscribed(0ms));  // nobody subscribed
  auto a = log.subscribe();
  auto b = log.subscribe();
  log.close();
  CHECK_FALSE(log.wait_unsubscribed(0ms));
  { auto moved = std::move(a); }  // a moved-from subscription holds nothing; the new owner lets go
  CHECK_FALSE(log.wait_unsubscribed(0ms));
  std::thread t([&] {
    // A stream sees the close, sends its end, and lets go.
    CHECK(log.wait_after(log.last_id(), 10s).closed);
    b = EventLog::Subscription();
  });
  CHECK(log.wait_unsubscribed(10s));
  t.join();
}
