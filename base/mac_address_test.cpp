#include "base/mac_address.h"

#include <doctest/doctest.h>

using sriovd::MacAddress;

TEST_CASE("a MAC address parses from the kernel's form and prints back in lower case") {
  auto m = MacAddress::parse("52:54:00:AA:bb:0c");
  REQUIRE(m);
  CHECK(*m == MacAddress{0x52, 0x54, 0x00, 0xaa, 0xbb, 0x0c});
  CHECK(m->to_string() == "52:54:00:aa:bb:0c");
  CHECK(MacAddress{}.to_string() == "00:00:00:00:00:00");
  CHECK(MacAddress{}.is_zero());
  CHECK_FALSE(m->is_zero());
}

TEST_CASE("anything but six colon-separated hex pairs is refused") {
  for (const char* bad : {"", "52:54:00:aa:bb", "52:54:00:aa:bb:0c:", " 52:54:00:aa:bb:0c", "52:54:00:aa:bb:0c\n",
                          "52-54-00-aa-bb-0c", "5:54:00:aa:bb:0cc", "52:54:00:aa:bb:0g", "52:54:00:aa:bb:+c"})
    CHECK_MESSAGE(!MacAddress::parse(bad), bad);
}

TEST_CASE("multicast is the I/G bit of the first octet, broadcast included") {
  CHECK(MacAddress::parse("01:00:5e:00:00:01")->is_multicast());
  CHECK(MacAddress::parse("ff:ff:ff:ff:ff:ff")->is_multicast());
  CHECK_FALSE(MacAddress::parse("02:00:00:00:00:01")->is_multicast());
}

TEST_CASE("from_bytes takes the octets in wire order") {
  const uint8_t wire[6] = {2, 0, 0, 0, 3, 3};
  CHECK(MacAddress::from_bytes(wire).to_string() == "02:00:00:00:03:03");
}
