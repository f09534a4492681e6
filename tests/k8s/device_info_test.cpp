// sriovd-k8s's device-info files (k8s/device_info.h) against the device-info spec 1.1.0: the
// file names of SPEC.md §4.1, the content checked with the spec's format written as a JSON
// Schema (device-info-1.1.0.schema.json, test data), and the directory upkeep: atomic writes,
// removal, and pruning that leaves other device plugins' files alone.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "k8s/device_info.h"
#include "schemas/validator.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
using namespace sriovd::k8s;
using nlohmann::json;

namespace {

PciAddress A(const char* s) { return *PciAddress::parse(s); }

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const schemas::SchemaValidator& spec_schema() {
  static const schemas::SchemaValidator v("device-info", json::parse(slurp(SRIOVD_DEVICE_INFO_SCHEMA)));
  return v;
}

std::set<std::string> names_in(const std::filesystem::path& dir) {
  std::set<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

}  // namespace

TEST_CASE("device-info file names: <resource with / as ->-<device ID>-device.json, read back exactly") {
  CHECK(device_info_file_name("sriovd.io/fast", A("0000:3b:02.1")) == "sriovd.io-fast-0000:3b:02.1-device.json");
  CHECK(device_info_file_device("sriovd.io/fast", "sriovd.io-fast-0000:3b:02.1-device.json") == A("0000:3b:02.1"));
  // Pool "a-b"'s files are not pool "a"'s, and only the spelling we write is ours.
  CHECK(device_info_file_device("sriovd.io/a", "sriovd.io-a-b-0000:3b:02.1-device.json") == std::nullopt);
  CHECK(device_info_file_device("sriovd.io/a-b", "sriovd.io-a-b-0000:3b:02.1-device.json") == A("0000:3b:02.1"));
  CHECK(device_info_file_device("sriovd.io/fast", "sriovd.io-fast-3b:02.1-device.json") == std::nullopt);
  CHECK(device_info_file_device("sriovd.io/fast", "sriovd.io-fast-0000:3b:02.1-device.json.tmp") == std::nullopt);
  CHECK(device_info_file_device("sriovd.io/fast", "openshift.io-fast-0000:3b:02.1-device.json") == std::nullopt);
}

TEST_CASE("device-info content: type pci, version 1.1.0, addresses; valid against the spec") {
  json vf = device_info_json({A("0000:3b:02.1"), A("0000:3b:00.0"), {}, {}});
  CHECK(vf == json::parse(R"({"type": "pci", "version": "1.1.0",
                              "pci": {"pci-address": "0000:3b:02.1", "pf-pci-address": "0000:3b:00.0"}})"));
  json pf = device_info_json({A("0000:87:00.0"), std::nullopt, {}, {}});
  CHECK(pf == json::parse(R"({"type": "pci", "version": "1.1.0", "pci": {"pci-address": "0000:87:00.0"}})"));
  json full = device_info_json({A("0000:3b:02.1"), A("0000:3b:00.0"), "mlx5_2", "pf0vf1"});
  CHECK(full["pci"]["rdma-device"] == "mlx5_2");
  CHECK(full["pci"]["representor-device"] == "pf0vf1");
  for (const auto& doc : {vf, pf, full}) {
    auto r = spec_schema().validate("device-info", doc);
    CHECK_MESSAGE(r.ok(), doc.dump(), " ", r.ok() ? "" : r.error().message);
  }
  // The schema bites: a pci document without its address, a wrong type, an address not in
  // BDF form.
  CHECK_FALSE(spec_schema().validate("device-info", json::parse(R"({"type": "pci", "version": "1.1.0"})")).ok());
  CHECK_FALSE(spec_schema()
                  .validate("device-info", json::parse(R"({"type": "pcie", "version": "1.1.0",
                                                                   "pci": {"pci-address": "0000:3b:02.1"}})"))
                  .ok());
  CHECK_FALSE(spec_schema()
                  .validate("device-info", json::parse(R"({"type": "pci", "version": "1.1.0",
                                                                   "pci": {"pci-address": "3b:02.1"}})"))
                  .ok());
}

TEST_CASE("device-info directory: created when missing, files written whole and readable, pruned") {
  test::TempDir tmp{"k8s-devinfo"};
  DeviceInfoDir dir(tmp / "devinfo" / "dp");
  REQUIRE(dir.write("sriovd.io/fast", {A("0000:3b:02.1"), A("0000:3b:00.0"), {}, {}}).ok());
  REQUIRE(dir.write("sriovd.io/fast", {A("0000:3b:02.2"), A("0000:3b:00.0"), {}, {}}).ok());
  REQUIRE(dir.write("sriovd.io/gpu", {A("0000:87:00.0"), std::nullopt, {}, {}}).ok());
  auto f = dir.file("sriovd.io/fast", A("0000:3b:02.1"));
  json written = json::parse(slurp(f));
  CHECK(written["pci"]["pf-pci-address"] == "0000:3b:00.0");
  CHECK(spec_schema().validate("device-info", written).ok());
  struct stat st {};
  REQUIRE(::stat(f.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0644);  // Multus reads it, maybe not as us

  // Another device plugin's file in the shared directory.
  std::ofstream(dir.path() / "openshift.io-intelnics-0000:5e:02.0-device.json") << "{}";
  CHECK(names_in(dir.path()).size() == 4);  // no temp files left behind

  auto removed = dir.prune({"sriovd.io/fast", "sriovd.io/gpu"}, {{"sriovd.io/fast", A("0000:3b:02.2")}});
  REQUIRE(removed.ok());
  CHECK(*removed == 2);
  CHECK(names_in(dir.path()) == std::set<std::string>{"sriovd.io-fast-0000:3b:02.2-device.json",
                                                      "openshift.io-intelnics-0000:5e:02.0-device.json"});
  REQUIRE(dir.remove("sriovd.io/fast", A("0000:3b:02.2")).ok());
  CHECK(dir.remove("sriovd.io/fast", A("0000:3b:02.2")).ok());  // already gone: fine
  CHECK(names_in(dir.path()).size() == 1);

  DeviceInfoDir missing(tmp / "nowhere");
  auto none = missing.prune({"sriovd.io/fast"}, {});
  REQUIRE(none.ok());
  CHECK(*none == 0);
  // A path that cannot be a directory: the error says which.
  std::ofstream(tmp / "file") << "x";
  auto bad = DeviceInfoDir(tmp / "file" / "dp").write("sriovd.io/fast", {A("0000:3b:02.1"), std::nullopt, {}, {}});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("file/dp") != std::string::npos);
}
