// Libvirt against a real libvirtd started by this test, entirely inside a temp dir.
//
// The daemon runs in session mode (an unprivileged libvirtd keeps its sockets, state, logs and
// QEMU runtime under XDG_RUNTIME_DIR / XDG_CONFIG_HOME / XDG_CACHE_HOME, which point into the
// temp dir; as root every path of the system daemon is fixed under /run/libvirt, /var/lib/libvirt
// and /etc/libvirt). Run as root, the test drops the daemon to the unprivileged uid 65534; its own
// config puts the socket in the temp dir, with no authentication and no TCP. The test connects to
// qemu+unix:///session?socket=<tmp>/sock/libvirt-sock once the socket exists (inotify).
//
// What it proves, on libvirt 9 with QEMU under TCG (no KVM here):
// - config-only attach and detach of each kind of device sriovd generates, on a defined domain,
//   with the device checked in the persistent definition; domains_using on it;
// - libvirt's refusals turned into our errors (unknown domain, malformed XML, live change on a
//   domain that is off, detaching what is not there);
// - on a running (paused) domain: a live detach that returns on VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED
//   (a USB input device, which QEMU removes without the guest), and one that ends in
//   detach_timeout (a PCI NIC, whose removal waits for a guest that never acts).
// A live attach of a PCI hostdev cannot work here (no such device, no VFIO, an unprivileged
// daemon): the test records that libvirt refuses it with a clear error.
//
// Exit 77 (skipped) when libvirtd or qemu-system-x86_64 is not installed; 1 instead when CI=true.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <fcntl.h>
#include <grp.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"
#include "virt/device_xml.h"
#include "virt/domain_xml.h"
#include "virt/libvirt.h"

using namespace sriovd;
using namespace sriovd::virt;
using namespace std::chrono_literals;
using Kind = DeviceXmlSpec::Kind;
namespace fs = std::filesystem;

namespace {

// The error message of a failed Result, for assertion messages (evaluated also on success).
template <class R>
std::string why(const R& r) {
  return r.ok() ? std::string() : r.error().message;
}

std::string find_tool(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = std::string(path ? path : "") + ":/usr/sbin:/usr/bin:/sbin:/bin";
  std::stringstream ss(dirs);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (!dir.empty() && ::access((dir + "/" + name).c_str(), X_OK) == 0) return dir + "/" + name;
  }
  return {};
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

constexpr uid_t kUnprivileged = 65534;  // nobody

// One libvirtd of our own. Started once for the whole program (about a second, most of it the
// first QEMU capabilities probe); every test case uses its own domain names.
class Libvirtd {
 public:
  Libvirtd(std::string libvirtd, std::string qemu) : libvirtd_(std::move(libvirtd)), qemu_(std::move(qemu)) {}
  ~Libvirtd() { stop(); }

  // Returns an empty string on success, else why the daemon is not there.
  std::string start(std::chrono::milliseconds deadline) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    for (const char* d : {"run", "sock", "config", "cache", "home"}) fs::create_directory(dir_ / d);
    std::ofstream(dir_ / "libvirtd.conf") << "unix_sock_dir = \"" << (dir_ / "sock").string() << "\"\n"
                                          << "unix_sock_rw_perms = \"0700\"\n"
                                          << "auth_unix_rw = \"none\"\n"
                                          << "auth_unix_ro = \"none\"\n"
                                          << "listen_tcp = 0\n"
                                          << "listen_tls = 0\n"
                                          << "log_outputs = \"3:stderr\"\n";
    const bool root = ::geteuid() == 0;
    if (root) {
      // Root may connect to the unprivileged daemon's 0700 socket; the daemon owns its tree.
      if (::chown(dir_.path().c_str(), kUnprivileged, kUnprivileged) != 0) return "chown failed";
      for (const auto& e : fs::recursive_directory_iterator(dir_.path())) {
        if (::chown(e.path().c_str(), kUnprivileged, kUnprivileged) != 0) return "chown failed";
      }
    }
    socket_ = (dir_ / "sock" / "libvirt-sock").string();
    const std::string log = (dir_ / "libvirtd.log").string();

    // Watch for the socket before the daemon can create it.
    int ino = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (ino < 0 || ::inotify_add_watch(ino, (dir_ / "sock").c_str(), IN_CREATE) < 0) return "inotify failed";

    std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                                    "LC_ALL=C",
                                    "HOME=" + (dir_ / "home").string(),
                                    "XDG_RUNTIME_DIR=" + (dir_ / "run").string(),
                                    "XDG_CONFIG_HOME=" + (dir_ / "config").string(),
                                    "XDG_CACHE_HOME=" + (dir_ / "cache").string()};
    std::vector<std::string> argv = {libvirtd_, "--config", (dir_ / "libvirtd.conf").string()};
    std::vector<char*> cargv, cenv;
    for (auto& s : argv) cargv.push_back(s.data());
    cargv.push_back(nullptr);
    for (auto& s : env) cenv.push_back(s.data());
    cenv.push_back(nullptr);
    int logfd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) return "fork failed";
    if (pid_ == 0) {
      int devnull = ::open("/dev/null", O_RDONLY);
      ::dup2(devnull, 0);
      ::dup2(logfd, 1);
      ::dup2(logfd, 2);
      if (root) {
        if (::setgroups(0, nullptr) != 0 || ::setresgid(kUnprivileged, kUnprivileged, kUnprivileged) != 0 ||
            ::setresuid(kUnprivileged, kUnprivileged, kUnprivileged) != 0) {
          std::_Exit(126);
        }
      }
      // After the uid change (which clears it): the daemon goes when this test goes.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) std::_Exit(1);
      ::execve(cargv[0], cargv.data(), cenv.data());
      std::_Exit(127);
    }
    ::close(logfd);
    pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    auto remaining = [&] {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      return static_cast<int>(std::max<long>(0, left.count()));
    };
    auto died = [&](int timeout_ms) {
      pollfd p{pidfd_, POLLIN, 0};
      return ::poll(&p, 1, timeout_ms) == 1;
    };
    // 1. The socket file appears.
    while (!fs::exists(socket_)) {
      pollfd fds[2] = {{ino, POLLIN, 0}, {pidfd_, POLLIN, 0}};
      int n = ::poll(fds, 2, remaining());
      if (n == 0) {
        ::close(ino);
        return "libvirtd created no socket in time; its log:\n" + read_file(log);
      }
      if (fds[1].revents) {
        ::close(ino);
        return "libvirtd exited; its log:\n" + read_file(log);
      }
      char buf[4096];
      while (::read(ino, buf, sizeof buf) > 0) {
      }
    }
    ::close(ino);
    // 2. It accepts connections: the daemon binds the socket a moment before it listens on it,
    // so a refused connect is retried (watching the daemon) until the deadline.
    for (;;) {
      auto lv = Libvirt::connect(uri());
      if (lv) {
        if (!lv_) lv_ = std::move(*lv);  // after a restart the first one is kept: it must reconnect
        break;
      }
      if (remaining() == 0) return "cannot connect to libvirtd: " + lv.error().message;
      if (died(20)) return "libvirtd exited; its log:\n" + read_file(log);
    }
    raw_ = virConnectOpen(uri().c_str());
    if (!raw_) return "raw virConnectOpen failed";
    return {};
  }

  // Stops the daemon (after its domains) and forgets the connections.
  void stop() {
    if (raw_) {
      // A stopped libvirtd leaves its QEMU processes running: stop them first.
      virDomainPtr* doms = nullptr;
      int n = virConnectListAllDomains(raw_, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
      for (int i = 0; i < n; ++i) {
        virDomainDestroy(doms[i]);
        virDomainFree(doms[i]);
      }
      std::free(doms);
    }
    kill_daemon();
    lv_.reset();
  }

  // Stops the daemon process only; lv() stays (and must reconnect after start()).
  void kill_daemon() {
    if (raw_) {
      virConnectClose(raw_);
      raw_ = nullptr;
    }
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      pollfd p{pidfd_, POLLIN, 0};
      if (::poll(&p, 1, 20000) != 1) ::kill(pid_, SIGKILL);
      int st = 0;
      ::waitpid(pid_, &st, 0);
      ::close(pidfd_);
      pid_ = -1;
    }
  }

  std::string uri() const { return "qemu+unix:///session?socket=" + socket_; }
  Libvirt& lv() { return *lv_; }
  virConnectPtr raw() { return raw_; }
  const std::string& qemu() const { return qemu_; }
  std::string log() const { return read_file(dir_ / "libvirtd.log"); }

 private:
  std::string libvirtd_, qemu_;
  test::TempDir dir_{"sriovd-libvirtd"};
  std::string socket_;
  pid_t pid_ = -1;
  int pidfd_ = -1;
  std::unique_ptr<Libvirt> lv_;
  virConnectPtr raw_ = nullptr;
};

Libvirtd* g_daemon = nullptr;

// A QEMU domain defined for one test case, destroyed and undefined at its end.
struct TestDomain {
  std::string name;
  virDomainPtr dom = nullptr;
  explicit TestDomain(std::string n) : name(std::move(n)) {
    // <acpi/>: without it libvirt 9 passes -no-acpi, an option QEMU 9 and later no longer have.
    std::string xml = "<domain type='qemu'>\n  <name>" + name +
                      "</name>\n  <memory unit='MiB'>64</memory>\n  <vcpu>1</vcpu>\n"
                      "  <os><type arch='x86_64' machine='pc'>hvm</type></os>\n"
                      "  <features><acpi/></features>\n"
                      "  <devices><emulator>" +
                      g_daemon->qemu() + "</emulator></devices>\n</domain>\n";
    dom = virDomainDefineXML(g_daemon->raw(), xml.c_str());
    virErrorPtr e = virGetLastError();
    REQUIRE_MESSAGE(dom != nullptr, (e && e->message ? e->message : "define failed"));
  }
  ~TestDomain() {
    if (virDomainIsActive(dom) == 1) virDomainDestroy(dom);
    virDomainUndefine(dom);
    virDomainFree(dom);
    virResetLastError();
  }
  void start_paused() {
    int rc = virDomainCreateWithFlags(dom, VIR_DOMAIN_START_PAUSED);
    virErrorPtr e = virGetLastError();
    REQUIRE_MESSAGE(rc == 0, (e && e->message ? e->message : "start failed"));
  }
  std::vector<DomainDevice> devices(bool inactive) {
    auto x = g_daemon->lv().domain_xml(name, inactive);
    REQUIRE_MESSAGE(x.ok(), why(x));
    auto d = parse_devices(*x);
    REQUIRE_MESSAGE(d.ok(), why(d));
    return *d;
  }
  bool has_alias(const std::string& alias, bool inactive) {
    for (const auto& d : devices(inactive)) {
      if (d.alias == alias) return true;
    }
    return false;
  }
};

std::string gen(const DeviceXmlSpec& s) {
  auto x = device_xml(s);
  REQUIRE_MESSAGE(x.ok(), why(x));
  return *x;
}

const Libvirt::Flags kConfig{.live = false, .config = true};
const Libvirt::Flags kLive{.live = true, .config = false};

}  // namespace

TEST_CASE("config attach and detach of every kind sriovd generates, on a defined domain") {
  TestDomain vm("sriovd-config");
  Libvirt& lv = g_daemon->lv();
  const std::vector<DeviceXmlSpec> specs = {
      {Kind::HostdevPci, PciAddress{0, 0x17, 0, 1}, std::nullopt, std::nullopt, std::nullopt},
      {Kind::HostdevInterface, PciAddress{0, 0x17, 0, 3}, "52:54:00:11:22:44", 42, std::nullopt},
      {Kind::Direct, PciAddress{0, 0x17, 0, 2}, "52:54:00:11:22:33", std::nullopt, "ens1f0v2"},
  };
  for (const auto& s : specs) {
    const std::string xml = gen(s);
    const std::string alias = device_alias(s.address);
    CAPTURE(xml);
    auto a = lv.attach(vm.name, xml, kConfig);
    REQUIRE_MESSAGE(a.ok(), why(a));

    // In the persistent definition, with our alias and the source asked for.
    auto want = parse_devices(xml);
    REQUIRE(want.ok());
    bool found = false;
    for (const auto& d : vm.devices(true)) {
      if (d.alias == alias) {
        found = true;
        CHECK(same_source(d, want->front()));
        CHECK(d.mac == s.mac);
      }
    }
    CHECK(found);
    std::vector<std::string> netdevs;
    if (s.netdev) netdevs.push_back(*s.netdev);
    auto users = lv.domains_using(s.address, netdevs);
    REQUIRE(users.ok());
    REQUIRE(users->size() == 1);
    CHECK(users->front() == DomainUse{vm.name, false, false, true});

    auto d = lv.detach(vm.name, xml, kConfig, 5s);
    REQUIRE_MESSAGE(d.ok(), why(d));
    CHECK_FALSE(vm.has_alias(alias, true));
    users = lv.domains_using(s.address, netdevs);
    REQUIRE(users.ok());
    CHECK(users->empty());
  }
}

TEST_CASE("a real daemon's refusals become our errors") {
  TestDomain vm("sriovd-errors");
  Libvirt& lv = g_daemon->lv();
  const std::string xml = gen({Kind::HostdevPci, PciAddress{0, 0x17, 0, 1}, std::nullopt, std::nullopt, std::nullopt});

  auto unknown = lv.attach("sriovd-no-such-domain", xml, kConfig);
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().code == ErrorCode::not_found);
  CHECK(unknown.error().reason == "domain_not_found");

  auto malformed = lv.attach(vm.name, "<hostdev mode='subsystem' type='pci'><source>", kConfig);
  REQUIRE_FALSE(malformed.ok());
  CHECK(malformed.error().code == ErrorCode::invalid);
  CHECK(malformed.error().reason == "invalid_xml");
  MESSAGE("malformed XML: " << malformed.error().message);

  auto off = lv.attach(vm.name, xml, kLive);
  REQUIRE_FALSE(off.ok());
  CHECK(off.error().code == ErrorCode::conflict);
  CHECK(off.error().reason == "domain_not_running");
  MESSAGE("live attach to a domain that is off: " << off.error().message);

  auto absent = lv.detach(vm.name, xml, kConfig, 5s);
  REQUIRE_FALSE(absent.ok());
  CHECK(absent.error().code == ErrorCode::not_found);
  CHECK(absent.error().reason == "device_not_attached");
  MESSAGE("config detach of an absent device: " << absent.error().message);

  CHECK(unknown.error().errnum == 0);
  CHECK(malformed.error().errnum == 0);
}

TEST_CASE("live detach waits for DEVICE_REMOVED, or times out while the guest holds the device") {
  TestDomain vm("sriovd-live");
  vm.start_paused();
  Libvirt& lv = g_daemon->lv();

  // A PCI hostdev cannot be attached live here: no such host device, no VFIO.
  const std::string hostdev =
      gen({Kind::HostdevPci, PciAddress{0, 0x17, 0, 1}, std::nullopt, std::nullopt, std::nullopt});
  auto hd = lv.attach(vm.name, hostdev, kLive);
  CHECK_FALSE(hd.ok());
  if (!hd.ok()) MESSAGE("live hostdev attach: " << std::string(to_string(hd.error().code)) << "/" << hd.error().reason << ": " << hd.error().message);

  // A persistent-only hostdev on a running domain: in use at next start, not now.
  auto cfg = lv.attach(vm.name, hostdev, kConfig);
  REQUIRE_MESSAGE(cfg.ok(), why(cfg));
  auto users = lv.domains_using(PciAddress{0, 0x17, 0, 1});
  REQUIRE(users.ok());
  REQUIRE(users->size() == 1);
  CHECK(users->front() == DomainUse{vm.name, true, false, true});

  // A USB tablet: QEMU unplugs USB devices at once, without the guest, and libvirt then emits
  // DEVICE_REMOVED with the alias.
  const std::string tablet = "<input type='tablet' bus='usb'><alias name='ua-sriovd-test-tablet'/></input>";
  auto at = lv.attach(vm.name, tablet, kLive);
  REQUIRE_MESSAGE(at.ok(), why(at));
  CHECK(vm.has_alias("ua-sriovd-test-tablet", false));
  auto t0 = std::chrono::steady_clock::now();
  auto dt = lv.detach(vm.name, tablet, kLive, 20s);
  auto took = std::chrono::steady_clock::now() - t0;
  REQUIRE_MESSAGE(dt.ok(), why(dt));
  CHECK_FALSE(vm.has_alias("ua-sriovd-test-tablet", false));
  CHECK(took < 10s);
  // Gone means gone: a second live detach is refused by libvirt.
  auto again = lv.detach(vm.name, tablet, kLive, 5s);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().reason == "device_not_attached");
  MESSAGE("live detach of a device no longer there: " << again.error().message);
  MESSAGE("live detach with DEVICE_REMOVED took "
          << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");

  // A PCI NIC: its removal waits for the (paused, OS-less) guest to eject it, which never
  // happens. Detached by MAC without an alias in the XML: the alias comes from the live
  // definition.
  const std::string nic =
      "<interface type='user'><mac address='52:54:00:aa:bb:cc'/><model type='e1000'/>"
      "<alias name='ua-sriovd-test-nic'/></interface>";
  auto an = lv.attach(vm.name, nic, kLive);
  REQUIRE_MESSAGE(an.ok(), why(an));
  t0 = std::chrono::steady_clock::now();
  auto dn = lv.detach(vm.name, "<interface type='user'><mac address='52:54:00:AA:BB:CC'/></interface>", kLive, 1500ms);
  took = std::chrono::steady_clock::now() - t0;
  REQUIRE_FALSE(dn.ok());
  CHECK(dn.error().reason == "detach_timeout");
  CHECK(dn.error().code == ErrorCode::conflict);
  CHECK(dn.error().message.find("ua-sriovd-test-nic") != std::string::npos);
  CHECK(took >= 1500ms);
  CHECK(vm.has_alias("ua-sriovd-test-nic", false));  // still there, removal pending
  MESSAGE("detach_timeout after " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                                  << " ms: " << dn.error().message);
}

TEST_CASE("a restarted daemon is reconnected to; while it is down, libvirt_unreachable") {
  TestDomain vm("sriovd-restart");
  Libvirt& lv = g_daemon->lv();
  REQUIRE(lv.domain_xml(vm.name).ok());
  g_daemon->kill_daemon();
  auto down = lv.domain_xml(vm.name);
  REQUIRE_FALSE(down.ok());
  CHECK(down.error().code == ErrorCode::unavailable);
  CHECK(down.error().reason == "libvirt_unreachable");
  MESSAGE("daemon down: " << down.error().message);
  std::string problem = g_daemon->start(30s);
  REQUIRE_MESSAGE(problem.empty(), problem);
  auto up = lv.domain_xml(vm.name);
  REQUIRE_MESSAGE(up.ok(), why(up));
  CHECK(up->find("sriovd-restart") != std::string::npos);
}

int main(int argc, char** argv) {
  const char* ci = std::getenv("CI");
  const bool in_ci = ci && std::string(ci) == "true";
  std::string libvirtd = find_tool("libvirtd"), qemu = find_tool("qemu-system-x86_64");
  if (libvirtd.empty() || qemu.empty()) {
    std::fprintf(stderr, "virt_libvirtd_test: %s: %s not installed (scripts/install-deps.sh --test)\n",
                 in_ci ? "FAIL (CI=true, cannot skip)" : "SKIP",
                 libvirtd.empty() ? "libvirtd (libvirt-daemon-system)" : "qemu-system-x86_64 (qemu-system-x86)");
    return in_ci ? 1 : 77;
  }
  // A failed connect must not make the client library spawn a session daemon of its own.
  ::setenv("LIBVIRT_AUTOSTART", "0", 1);
  Libvirtd daemon(libvirtd, qemu);
  if (std::string why = daemon.start(30s); !why.empty()) {
    std::fprintf(stderr, "virt_libvirtd_test: could not start libvirtd: %s\n", why.c_str());
    return 1;
  }
  g_daemon = &daemon;
  doctest::Context ctx;
  ctx.applyCommandLine(argc, argv);
  int rc = ctx.run();
  if (rc != 0) std::fprintf(stderr, "--- libvirtd log ---\n%s\n", daemon.log().c_str());
  g_daemon = nullptr;
  daemon.stop();
  return rc;
}
