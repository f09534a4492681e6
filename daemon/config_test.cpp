// The configuration loader: defaults, every field, and errors that name the field.
#include <doctest/doctest.h>

#include <fstream>

#include "daemon/config.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
using namespace sriovd::agent;

namespace {

std::string error_of(const std::string& text) {
  auto c = parse_config(text, "t.json");
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().code == ErrorCode::invalid);
  return c.error().message;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("an empty object is the defaults") {
  auto c = parse_config("{}", "t.json");
  REQUIRE(c.ok());
  CHECK(c->listen == std::vector<std::string>{"unix:/run/sriovd/sriovd.sock"});
  CHECK(c->state_dir == "/var/lib/sriovd");
  CHECK(c->log_level == "info");
  CHECK_FALSE(c->tls.enabled());
  CHECK(c->auth.token_file.empty());
  CHECK(c->limits.max_body_bytes == 1 << 20);
  CHECK(c->limits.max_connections == 64);
  CHECK(c->pools == nlohmann::json::array());
}

TEST_CASE("every field is read") {
  auto c = parse_config(R"({"listen":["tcp:[::]:8443","unix:/run/x.sock"],"state_dir":"/s","sysfs_root":"/y",
    "log_level":"debug","libvirt_uri":"qemu+ssh://h/system",
    "tls":{"cert":"/c.pem","key":"/k.pem","client_ca":"/ca.pem"},
    "auth":{"token_file":"/tokens","reads":"open"},
    "limits":{"max_body_bytes":4096,"read_timeout_s":3,"keep_alive_timeout_s":7,"request_timeout_s":9,"max_connections":5},
    "pools":[{"name":"p0","selectors":{"vendor_ids":["8086"],"pf_names":["ens1f0#0-7"],"numa_nodes":[0,-1]},
              "physical_network":"physnet1","device_type":"vf","mode":"vfio","policy":"spread"}]})",
                        "t.json");
  REQUIRE_MESSAGE(c.ok(), c.error().message);
  CHECK(c->listen.size() == 2);
  CHECK(c->state_dir == "/s");
  CHECK(c->sysfs_root == "/y");
  CHECK(c->log_level == "debug");
  CHECK(c->libvirt_uri == "qemu+ssh://h/system");
  CHECK(c->tls.cert == "/c.pem");
  CHECK(c->tls.key == "/k.pem");
  CHECK(c->tls.client_ca == "/ca.pem");
  CHECK(c->auth.token_file == "/tokens");
  CHECK(c->auth.reads_open);
  CHECK(c->limits.max_body_bytes == 4096);
  CHECK(c->limits.read_timeout_s == 3);
  CHECK(c->limits.keep_alive_timeout_s == 7);
  CHECK(c->limits.request_timeout_s == 9);
  CHECK(c->limits.max_connections == 5);
  REQUIRE(c->pools.size() == 1);
  CHECK(c->pools[0]["selectors"]["pf_names"][0] == "ens1f0#0-7");
  CHECK(c->source == "t.json");
}

TEST_CASE("errors name the file and the field") {
  CHECK(contains(error_of(R"({"limits":{"max_body_bytes":12}})"), "t.json: limits.max_body_bytes: "));
  CHECK(contains(error_of(R"({"listen":["http://x"]})"), "t.json: listen.0: "));
  CHECK(contains(error_of(R"({"listen":[]})"), "t.json: listen: "));
  CHECK(contains(error_of(R"({"log_level":"loud"})"), "t.json: log_level: "));
  CHECK(contains(error_of(R"({"tls":{"cert":"/c.pem"}})"), "t.json: tls: "));
  CHECK(contains(error_of(R"({"auth":{"reads":"sometimes"}})"), "t.json: auth.reads: "));
  CHECK(contains(error_of(R"({"listn":["unix:/x"]})"), "t.json: (top level): "));
  CHECK(contains(error_of(R"({"pools":[{"name":"p","selectors":{"vendor_ids":["80860"]}}]})"),
                 "t.json: pools.0.selectors.vendor_ids.0: "));
  CHECK(contains(error_of(R"({"pools":[{"name":"p","selectors":{},"mode":"sriov"}]})"), "t.json: pools.0.mode: "));
  CHECK(contains(error_of(R"({"pools":[{"name":"a","selectors":{}},{"name":"a","selectors":{}}]})"),
                 "t.json: pools.1.name: 'a' is declared twice"));
  CHECK(contains(error_of("{\"listen\": [\"unix:/x\",\n"), "t.json: not JSON: "));
  CHECK(contains(error_of("[]"), "t.json: (top level): "));
  // Valid JSON syntax that no double holds: refused, not thrown.
  CHECK(contains(error_of(R"({"limits":{"max_body_bytes":10E8575}})"), "t.json: "));
}

TEST_CASE("load_config: a missing default file is the defaults; a missing named file is an error") {
  test::TempDir dir("sriovd-config");
  auto missing = (dir / "nope.json").string();
  auto d = load_config(missing, true);
  REQUIRE(d.ok());
  CHECK(d->source.empty());
  auto e = load_config(missing, false);
  REQUIRE_FALSE(e.ok());
  CHECK(contains(e.error().message, missing));

  auto path = (dir / "sriovd.json").string();
  std::ofstream(path) << R"({"log_level":"warning"})";
  auto f = load_config(path, false);
  REQUIRE(f.ok());
  CHECK(f->log_level == "warning");
  CHECK(f->source == path);
}

TEST_CASE("the shipped default configuration is valid") {
  auto c = load_config(SRIOVD_DEFAULT_CONFIG, false);
  REQUIRE_MESSAGE(c.ok(), c.error().message);
  CHECK(c->listen == Config{}.listen);
}
