// The Debian package: built with CPack from this build tree, unpacked into a throwaway root,
// checked file by file, its unit verified against that root, and the unit's ExecStart run from
// that root on a simulated host until it reports READY=1 over NOTIFY_SOCKET. (systemd is not
// PID 1 where tests run, so the unit itself cannot be started by systemctl here.)
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/fixtures/profiles.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

unsigned mode_of(const fs::path& p) {
  struct stat st;
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

}  // namespace

TEST_CASE("cpack builds a .deb that installs, verifies and starts") {
  test::TempDir dir("sriovd-package");
  auto built = test::run(
      {CPACK, "-G", "DEB", "--config", std::string(BUILD_DIR) + "/CPackConfig.cmake", "-B", (dir / "out").string()});
  REQUIRE_MESSAGE(built.exit_code == 0, (built.out + built.err));
  fs::path deb;
  for (const auto& e : fs::directory_iterator(dir / "out"))
    if (e.path().extension() == ".deb") deb = e.path();
  REQUIRE_MESSAGE(!deb.empty(), built.out);

  // Control data: computed library dependencies, the configuration as a conffile, maintainer scripts.
  auto info = test::run({"/usr/bin/dpkg-deb", "-I", deb.string()});
  REQUIRE(info.exit_code == 0);
  CHECK(info.out.find("Package: sriovd") != std::string::npos);
  CHECK(info.out.find("libcpp-httplib") != std::string::npos);  // from dpkg-shlibdeps
  CHECK(info.out.find("libsystemd0") != std::string::npos);
  CHECK(info.out.find("postinst") != std::string::npos);
  auto conffiles = test::run({"/usr/bin/dpkg-deb", "-f", deb.string(), "Package"});
  CHECK(conffiles.out == "sriovd\n");
  fs::path ctrl = dir / "control";
  REQUIRE(test::run({"/usr/bin/dpkg-deb", "-e", deb.string(), ctrl.string()}).exit_code == 0);
  CHECK(slurp(ctrl / "conffiles") == "/etc/sriovd/sriovd.json\n");
  CHECK(mode_of(ctrl / "postinst") == 0755);

  fs::path root = dir / "root";
  REQUIRE(test::run({"/usr/bin/dpkg-deb", "-x", deb.string(), root.string()}).exit_code == 0);
  for (const char* bin : {"usr/bin/sriovd", "usr/bin/sriovd-daemon", "usr/bin/sriovd-cli"}) {
    REQUIRE_MESSAGE(fs::exists(root / bin), bin);
    CHECK(mode_of(root / bin) == 0755);
  }
  for (const char* f :
       {"lib/systemd/system/sriovd.service", "usr/lib/sysusers.d/sriovd.conf", "usr/lib/tmpfiles.d/sriovd.conf",
        "etc/sriovd/sriovd.json", "usr/share/bash-completion/completions/sriovd-cli", "usr/share/man/man8/sriovd.8",
        "usr/share/man/man1/sriovd-cli.1", "usr/share/doc/sriovd/config.schema.json"}) {
    REQUIRE_MESSAGE(fs::exists(root / f), f);
    CHECK_MESSAGE(mode_of(root / f) == 0644, f);
  }
  CHECK(slurp(root / "usr/lib/sysusers.d/sriovd.conf").find("g sriovd -") != std::string::npos);
  CHECK(slurp(root / "usr/lib/tmpfiles.d/sriovd.conf").find("d /run/sriovd 0750 root sriovd") != std::string::npos);
  auto help = test::run({(root / "usr/bin/sriovd-cli").string(), "--help"});
  CHECK(help.out.find("--cacert") != std::string::npos);
  auto completion = test::run({"/bin/bash", "-c",
                               "source " + (root / "usr/share/bash-completion/completions/sriovd-cli").string() +
                                   " && complete -p sriovd-cli"});
  CHECK(completion.out.find("_sriovd_cli") != std::string::npos);

  // The unit as systemd reads it, with its paths pointing into that root (systemd-analyze verify
  // checks that ExecStart exists; --root= would need a whole systemd tree in the root).
  const std::string unit = slurp(root / "lib/systemd/system/sriovd.service");
  std::string rooted = unit;
  for (size_t p = rooted.find("=/usr/bin/"); p != std::string::npos; p = rooted.find("=/usr/bin/", p + 1))
    rooted.insert(p + 1, root.string());
  fs::create_directories(dir / "units");
  std::ofstream(dir / "units/sriovd.service") << rooted;
  auto verify = test::run({"/usr/bin/systemd-analyze", "verify", (dir / "units/sriovd.service").string()},
                          {{"MANPATH", (root / "usr/share/man").string()}});
  CHECK_MESSAGE(verify.exit_code == 0, (verify.out + verify.err));
  CHECK_MESSAGE(verify.err.empty(), verify.err);

  // Its ExecStart, run from the root: paths in the command mapped into it, and the host
  // simulated (a generated tree, state and socket in the temp dir).
  auto pos = unit.find("\nExecStart=");
  REQUIRE(pos != std::string::npos);
  auto line = unit.substr(pos + 11, unit.find('\n', pos + 1) - pos - 11);
  auto argv = split(line);
  REQUIRE(argv.size() >= 2);
  CHECK(argv[0] == "/usr/bin/sriovd");
  for (auto& a : argv)
    if (!a.empty() && a[0] == '/') a = (root / a.substr(1)).string();
  REQUIRE(fixtures::build_profile("dual-socket", dir / "sys").ok());
  fs::path sock = dir / "sriovd.sock";
  const std::vector<std::string> sim{
      "--sim",    "--sysfs-root",         (dir / "sys").string(), "--state-dir", (dir / "state").string(),
      "--listen", "unix:" + sock.string()};
  argv.insert(argv.end(), sim.begin(), sim.end());
  test::Daemon d;
  REQUIRE_MESSAGE(d.start(argv, 30s, {{"WATCHDOG_USEC", "2000000"}}), d.error());
  CHECK(d.wait_notify("WATCHDOG=1", 5s));
  CHECK(d.stderr_text().find("configuration from " + (root / "etc/sriovd/sriovd.json").string()) != std::string::npos);
  auto host = test::run({(root / "usr/bin/sriovd-cli").string(), "--socket", sock.string(), "host"});
  CHECK_MESSAGE(host.exit_code == 0, host.err);
  CHECK(d.stop(SIGTERM) == 0);
}
