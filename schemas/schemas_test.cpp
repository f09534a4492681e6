#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "schemas/openapi.h"
#include "schemas/validator.h"

using nlohmann::json;
using namespace sriovd::schemas;

TEST_CASE("the compiled-in document is OpenAPI 3.1 and every component compiles") {
  auto doc = json::parse(openapi_json());
  CHECK(doc["openapi"] == "3.1.0");
  const auto& v = api_validator();
  for (const auto& name : {"Device", "DeviceList", "IommuGroup", "IommuGroupList", "Host", "Problem"})
    CHECK_MESSAGE(v.has(name), name);
}

TEST_CASE("validation names the failing field") {
  const auto& v = api_validator();
  json group = {{"number", 3},    {"type", "DMA"}, {"members", {"0000:17:00.0"}},
                {"viable", true}, {"reason", "x"}, {"blocking", json::array()}};
  CHECK(v.validate("IommuGroup", group).ok());

  SUBCASE("a member that is not an address") {
    group["members"] = {"17:00.0"};
    auto r = v.validate("IommuGroup", group);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().field.find("members") != std::string::npos);
  }
  SUBCASE("a wrong type") {
    group["number"] = "three";
    auto r = v.validate("IommuGroup", group);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().field == "number");
  }
  SUBCASE("an unknown field") {
    group["colour"] = "blue";
    CHECK_FALSE(v.validate("IommuGroup", group).ok());
  }
  SUBCASE("a missing field") {
    group.erase("viable");
    CHECK_FALSE(v.validate("IommuGroup", group).ok());
  }
}
