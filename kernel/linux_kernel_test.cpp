// LinuxKernel against what this machine allows without changing its network: sysfs writes into
// a temp-dir tree, rtnetlink reads of `lo`, a refused VF request on `lo`; and, when the test may
// create a network namespace, links, addresses and routes it makes itself inside it (a forked
// child does all of that and reports back; nothing it does outlives it).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "kernel/linux_kernel.h"
#include "net/rtnl_socket.h"
#include "tests/support/requirements.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
using namespace sriovd::kernel;

namespace {

// The error text of a failed Result, "" for a good one (doctest may print messages of passing
// assertions, so the message must be safe to build either way).
template <class R>
std::string why(const R& r) {
  return r ? std::string() : r.error().message;
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::unique_ptr<LinuxKernel> open_kernel(const std::filesystem::path& root = "/sys") {
  auto k = LinuxKernel::open(root);
  REQUIRE_MESSAGE(k, why(k));
  return std::move(*k);
}

}  // namespace

TEST_CASE("write_attr: one write(2) under the root, with the kernel's errno and the path") {
  test::TempDir tmp;
  const std::string dev = "bus/pci/devices/0000:17:00.0";
  std::filesystem::create_directories(tmp / dev);
  std::ofstream(tmp / (dev + "/sriov_numvfs")).close();
  auto k = open_kernel(tmp.path());
  CHECK(k->sysfs_root() == tmp.path());

  REQUIRE(k->write_attr(dev + "/sriov_numvfs", "8"));
  CHECK(slurp(tmp / (dev + "/sriov_numvfs")) == "8");  // as given: no newline added

  SUBCASE("a missing attribute is ENOENT, not created") {
    auto r = k->write_attr(dev + "/sriov_totalvfs", "8");
    REQUIRE_FALSE(r);
    CHECK(r.error().errnum == ENOENT);
    CHECK(r.error().code == ErrorCode::not_found);
    CHECK(r.error().message.find((tmp / dev).string() + "/sriov_totalvfs") != std::string::npos);
    CHECK(r.error().message.find("\"8\"") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(tmp / (dev + "/sriov_totalvfs")));
    CHECK(k->write_attr("bus/pci/devices/0000:99:00.0/reset", "1").error().errnum == ENOENT);
  }
  SUBCASE("a directory is EISDIR") { CHECK(k->write_attr(dev, "1").error().errnum == EISDIR); }
  SUBCASE("paths must stay under the root") {
    for (const char* p : {"/sys/bus/pci/drivers_probe", "../x", "bus/../../x", "bus/pci/..", ""}) {
      auto r = k->write_attr(p, "1");
      REQUIRE_FALSE(r);
      CHECK(r.error().errnum == EINVAL);
    }
    CHECK(k->write_attr("bus/pci/devices/0000:17:00.0/..sriov_numvfs", "1").error().errnum == ENOENT);
  }
  SUBCASE("a symlinked device directory, as in /sys/bus/pci/devices") {
    std::filesystem::create_directories(tmp / "devices/pci0000:00/0000:00:02.0");
    std::ofstream(tmp / "devices/pci0000:00/0000:00:02.0/driver_override").close();
    std::filesystem::create_directory_symlink("../../../devices/pci0000:00/0000:00:02.0",
                                              tmp / "bus/pci/devices/0000:00:02.0");
    REQUIRE(k->write_attr("bus/pci/devices/0000:00:02.0/driver_override", "vfio-pci"));
    CHECK(slurp(tmp / "devices/pci0000:00/0000:00:02.0/driver_override") == "vfio-pci");
  }
  SUBCASE("a root that does not exist") {
    auto bad = LinuxKernel::open(tmp / "nope");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().errnum == ENOENT);
  }
}

TEST_CASE("write_attr on the real sysfs: a missing attribute is ENOENT (nothing is written)") {
  auto k = open_kernel();
  auto r = k->write_attr("class/net/lo/sriovd_no_such_attribute", "1");
  REQUIRE_FALSE(r);
  CHECK(r.error().errnum == ENOENT);
  CHECK(r.error().message.find("/sys/class/net/lo/sriovd_no_such_attribute") != std::string::npos);
}

TEST_CASE("get_link(\"lo\") on the real kernel") {
  auto k = open_kernel();
  auto lo = k->get_link("lo");
  REQUIRE_MESSAGE(lo, why(lo));
  CHECK(lo->ifname == "lo");
  CHECK(lo->ifindex == static_cast<int>(if_nametoindex("lo")));
  CHECK(lo->up);
  CHECK(std::find(lo->addresses.begin(), lo->addresses.end(), "127.0.0.1/8") != lo->addresses.end());
  for (const auto& a : lo->addresses) CHECK(a.rfind("fe80:", 0) != 0);  // link-local is left out

  auto missing = k->get_link("sriovd-none0");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().errnum == ENODEV);
  CHECK(missing.error().code == ErrorCode::not_found);
  CHECK(missing.error().message.find("sriovd-none0") != std::string::npos);
  CHECK(k->get_link("this-name-is-too-long").error().errnum == EINVAL);
}

TEST_CASE("get_vfs(\"lo\"): no VFs is an empty list, not an error") {
  auto k = open_kernel();
  auto vfs = k->get_vfs("lo");
  REQUIRE_MESSAGE(vfs, why(vfs));
  CHECK(vfs->empty());
  auto missing = k->get_vfs("sriovd-none0");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().errnum == ENODEV);
}

TEST_CASE("set_vf on lo: the kernel's errno, a clear message, nothing changed") {
  auto k = open_kernel();
  auto before = k->get_link("lo");
  REQUIRE(before);
  VfConfig c;
  c.mac = MacAddress{0x02, 0, 0, 0, 0, 0x01};
  c.vlan = 10;
  auto r = k->set_vf("lo", 0, c);
  REQUIRE_FALSE(r);
  // lo has no ndo_set_vf_mac: EOPNOTSUPP; without CAP_NET_ADMIN the kernel stops earlier, EPERM.
  const int expected = geteuid() == 0 ? EOPNOTSUPP : EPERM;
  CHECK(r.error().errnum == expected);
  const std::string& msg = r.error().message;
  INFO("set_vf(lo) error: ", msg);
  CHECK(msg.find("VF 0 of lo") != std::string::npos);
  CHECK(msg.find("mac 02:00:00:00:00:01") != std::string::npos);
  CHECK(msg.find("RTM_SETLINK") != std::string::npos);
  CHECK(msg.find(std::strerror(expected)) != std::string::npos);
  auto after = k->get_link("lo");
  REQUIRE(after);
  CHECK(after->up == before->up);
  CHECK(after->addresses == before->addresses);
  CHECK(after->routes == before->routes);

  SUBCASE("nothing to set: no request, success") { CHECK(k->set_vf("lo", 0, VfConfig{})); }
  SUBCASE("qos without vlan: refused before any request") {
    VfConfig q;
    q.qos = 3;
    auto e = k->set_vf("lo", 0, q);
    REQUIRE_FALSE(e);
    CHECK(e.error().errnum == EINVAL);
    CHECK(e.error().field == "qos");
  }
  SUBCASE("no such netdev") { CHECK(k->set_vf("sriovd-none0", 0, c).error().errnum == ENODEV); }
  SUBCASE("min_tx_rate alone reads the current max first; lo still refuses") {
    VfConfig m;
    m.min_tx_rate_mbps = 10;
    CHECK(k->set_vf("lo", 0, m).error().errnum == expected);
  }
}

// --- inside a private network namespace ---------------------------------------------------------

namespace {

// Requests the test needs to build its own links; sriovd itself never creates links.
class Req {
 public:
  Req(uint16_t type, uint16_t flags) : buf_(1024, 0) {
    nlh_ = mnl_nlmsg_put_header(buf_.data());
    nlh_->nlmsg_type = type;
    nlh_->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
  }
  template <class T>
  T* extra() {
    return static_cast<T*>(mnl_nlmsg_put_extra_header(nlh_, sizeof(T)));
  }
  nlmsghdr* nlh() { return nlh_; }
  net::Bytes bytes() const { return {buf_.begin(), buf_.begin() + nlh_->nlmsg_len}; }

 private:
  net::Bytes buf_;
  nlmsghdr* nlh_;
};

net::Bytes veth_request(const char* name, const char* peer) {
  Req r(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  r.extra<ifinfomsg>();
  mnl_attr_put_strz(r.nlh(), IFLA_IFNAME, name);
  nlattr* info = mnl_attr_nest_start(r.nlh(), IFLA_LINKINFO);
  mnl_attr_put_strz(r.nlh(), IFLA_INFO_KIND, "veth");
  nlattr* data = mnl_attr_nest_start(r.nlh(), IFLA_INFO_DATA);
  nlattr* p = mnl_attr_nest_start(r.nlh(), VETH_INFO_PEER);
  r.extra<ifinfomsg>();  // VETH_INFO_PEER holds an ifinfomsg, then the peer's attributes
  mnl_attr_put_strz(r.nlh(), IFLA_IFNAME, peer);
  mnl_attr_nest_end(r.nlh(), p);
  mnl_attr_nest_end(r.nlh(), data);
  mnl_attr_nest_end(r.nlh(), info);
  return r.bytes();
}

net::Bytes updown_request(int ifindex, bool up) {
  Req r(RTM_NEWLINK, 0);
  auto* ifi = r.extra<ifinfomsg>();
  ifi->ifi_index = ifindex;
  ifi->ifi_flags = up ? IFF_UP : 0;
  ifi->ifi_change = IFF_UP;
  return r.bytes();
}

net::Bytes addr_request(int ifindex, int family, const char* addr, uint8_t prefix) {
  Req r(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
  auto* ifa = r.extra<ifaddrmsg>();
  ifa->ifa_family = static_cast<uint8_t>(family);
  ifa->ifa_prefixlen = prefix;
  ifa->ifa_flags = family == AF_INET6 ? IFA_F_NODAD : 0;
  ifa->ifa_index = static_cast<uint32_t>(ifindex);
  unsigned char bin[16];
  inet_pton(family, addr, bin);
  size_t len = family == AF_INET ? 4 : 16;
  mnl_attr_put(r.nlh(), IFA_LOCAL, len, bin);
  mnl_attr_put(r.nlh(), IFA_ADDRESS, len, bin);
  return r.bytes();
}

net::Bytes route_request(int ifindex, const char* dst, uint8_t prefix, const char* via, uint32_t table) {
  Req r(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
  auto* rtm = r.extra<rtmsg>();
  rtm->rtm_family = AF_INET;
  rtm->rtm_dst_len = prefix;
  rtm->rtm_table = RT_TABLE_UNSPEC;
  rtm->rtm_protocol = RTPROT_STATIC;
  rtm->rtm_scope = via ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  rtm->rtm_type = RTN_UNICAST;
  unsigned char bin[4];
  inet_pton(AF_INET, dst, bin);
  mnl_attr_put(r.nlh(), RTA_DST, 4, bin);
  if (via) {
    inet_pton(AF_INET, via, bin);
    mnl_attr_put(r.nlh(), RTA_GATEWAY, 4, bin);
  }
  mnl_attr_put_u32(r.nlh(), RTA_OIF, static_cast<uint32_t>(ifindex));
  mnl_attr_put_u32(r.nlh(), RTA_TABLE, table);
  return r.bytes();
}

// Failures collected in the child, reported to the parent through a pipe.
struct Report {
  std::string text;
  void fail(int line, const std::string& what) { text += "line " + std::to_string(line) + ": " + what + "\n"; }
};
#define EXPECT(cond)                           \
  do {                                         \
    if (!(cond)) report.fail(__LINE__, #cond); \
  } while (0)
#define EXPECT_OK(res)                                              \
  do {                                                              \
    auto&& r_ = (res);                                              \
    if (!r_) report.fail(__LINE__, #res ": " + r_.error().message); \
  } while (0)

constexpr int kSkip = 77;

// Runs in a child that owns a fresh network namespace. Returns the process exit status.
int namespace_scenario(Report& report) {
  auto opened = LinuxKernel::open("/sys");
  if (!opened) return report.fail(__LINE__, opened.error().message), 1;
  LinuxKernel& k = **opened;
  auto sock_r = net::RtnlSocket::open();
  if (!sock_r) return report.fail(__LINE__, sock_r.error().message), 1;
  net::RtnlSocket& sock = *sock_r;

  // A new namespace's lo is down and has no address.
  auto lo = k.get_link("lo");
  EXPECT_OK(lo);
  if (!lo) return 1;
  EXPECT(!lo->up);
  EXPECT(lo->addresses.empty());
  EXPECT(lo->routes == 0);
  EXPECT_OK(sock.transact(updown_request(lo->ifindex, true)));
  lo = k.get_link("lo");
  EXPECT_OK(lo);
  if (!lo) return 1;
  EXPECT(lo->up);
  EXPECT(std::find(lo->addresses.begin(), lo->addresses.end(), "127.0.0.1/8") != lo->addresses.end());

  // veth is what this host can create (dummy is a module that is not loaded here); its peer
  // stays down, so sv0 has no carrier and IPv6 adds no link-local address on its own.
  auto created = sock.transact(veth_request("sv0", "sv1"));
  if (!created) {
    report.fail(__LINE__, "cannot create a veth pair: " + created.error().message);
    return kSkip;
  }
  auto sv0 = k.get_link("sv0");
  EXPECT_OK(sv0);
  if (!sv0) return 1;
  const int ix = sv0->ifindex;
  EXPECT(ix > 0 && ix == static_cast<int>(if_nametoindex("sv0")));
  EXPECT(!sv0->up);
  EXPECT(sv0->addresses.empty());
  EXPECT(sv0->routes == 0);
  auto vfs = k.get_vfs("sv0");
  EXPECT_OK(vfs);
  EXPECT(vfs && vfs->empty());

  EXPECT_OK(sock.transact(addr_request(ix, AF_INET, "192.0.2.1", 24)));
  EXPECT_OK(sock.transact(addr_request(ix, AF_INET6, "2001:db8::1", 64)));
  EXPECT_OK(sock.transact(updown_request(ix, true)));
  EXPECT_OK(sock.transact(route_request(ix, "198.51.100.0", 24, "192.0.2.254", RT_TABLE_MAIN)));
  EXPECT_OK(sock.transact(route_request(ix, "203.0.113.0", 24, nullptr, 100)));  // not main
  auto busy = k.get_link("sv0");
  EXPECT_OK(busy);
  if (!busy) return 1;
  EXPECT(busy->up);
  std::set<std::string> addrs(busy->addresses.begin(), busy->addresses.end());
  EXPECT((addrs == std::set<std::string>{"192.0.2.1/24", "2001:db8::1/64"}));
  // Only 198.51.100.0/24 via .254 counts: the kernel's own prefix routes (192.0.2.0/24,
  // 2001:db8::/64, fe80::/64), table 100's route and the local table's entries do not.
  EXPECT(busy->routes == 1);
  if (busy->routes != 1) report.fail(__LINE__, "routes = " + std::to_string(busy->routes));
  auto lo_again = k.get_link("lo");
  EXPECT(lo_again && lo_again->routes == 0);

  // A VF request on a netdev without VFs: refused, nothing changes.
  VfConfig c;
  c.trust = true;
  auto refused = k.set_vf("sv0", 0, c);
  EXPECT(!refused);
  if (!refused) EXPECT(refused.error().errnum == EOPNOTSUPP);
  auto same = k.get_link("sv0");
  EXPECT(same && same->up && same->addresses == busy->addresses && same->routes == busy->routes);

  // A veth has a carrier only while its peer is up: none now (sv1 is down), so the wait ends at
  // its timeout; it ends true once sv1 comes up, from the link notification or the first look.
  auto none = k.wait_carrier("sv0", std::chrono::milliseconds(100));
  EXPECT_OK(none);
  EXPECT(none && !*none);
  std::optional<Result<bool>> got;
  std::thread waiter([&] { got = k.wait_carrier("sv0", std::chrono::seconds(30)); });
  EXPECT_OK(sock.transact(updown_request(static_cast<int>(if_nametoindex("sv1")), true)));
  waiter.join();
  EXPECT(got && got->ok() && **got);
  auto missing = k.wait_carrier("nosuch0", std::chrono::seconds(30));
  EXPECT(!missing && missing.error().errnum == ENODEV);

  // Down: IPv4 keeps its address, IPv6 drops it, the routes through sv0 go.
  EXPECT_OK(sock.transact(updown_request(ix, false)));
  auto down = k.get_link("sv0");
  EXPECT_OK(down);
  if (!down) return 1;
  EXPECT(!down->up);
  EXPECT((down->addresses == std::vector<std::string>{"192.0.2.1/24"}));
  EXPECT(down->routes == 0);
  // Administratively down: no carrier can come, so no waiting (the timeout is 30 s).
  const auto t0 = std::chrono::steady_clock::now();
  auto admin_down = k.wait_carrier("sv0", std::chrono::seconds(30));
  EXPECT(admin_down && !*admin_down);
  EXPECT(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(15));

  // Every call opens and closes its own socket: a hundred calls leave no fd behind.
  auto fds = [] {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
  };
  const size_t fds_before = fds();
  for (int i = 0; i < 100; ++i) {
    auto again = k.get_link("sv0");
    if (!again) {
      report.fail(__LINE__, again.error().message);
      break;
    }
  }
  EXPECT(fds() == fds_before);
  return report.text.empty() ? 0 : 1;
}

}  // namespace

TEST_CASE("get_link/get_vfs/set_vf in a private network namespace (veth, addresses, routes, up/down)") {
  int pipefd[2];
  REQUIRE(pipe2(pipefd, O_CLOEXEC) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(pipefd[0]);
    Report report;
    int status = kSkip;
    if (unshare(CLONE_NEWNET) == 0 || unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0) status = namespace_scenario(report);
    else report.fail(__LINE__, std::string("unshare: ") + std::strerror(errno));
    ssize_t ignored = write(pipefd[1], report.text.data(), report.text.size());
    (void)ignored;
    _exit(status);
  }
  close(pipefd[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(pipefd[0]);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  if (WEXITSTATUS(status) == kSkip) {
    sriovd::test::missing(
        "no private network namespace with a veth pair here (unshare(CLONE_NEWNET), the veth "
        "module): " +
        out);
    return;
  }
  INFO(out);
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(out.empty());
}

TEST_CASE("vfio_holders: this process holding a device's group node, then its cdev, then nothing") {
  test::TempDir tmp;
  const std::filesystem::path sys = tmp / "sys", dev = tmp / "dev";
  const std::string bdf = "0000:02:00.1";
  std::filesystem::create_directories(sys / "kernel/iommu_groups/7");
  std::filesystem::create_directories(sys / "bus/pci/devices" / bdf / "vfio-dev/vfio3");
  std::filesystem::create_directory_symlink("../../../kernel/iommu_groups/7",
                                            sys / "bus/pci/devices" / bdf / "iommu_group");
  std::filesystem::create_directories(dev / "vfio/devices");
  std::ofstream(dev / "vfio/7").put('\n');
  std::ofstream(dev / "vfio/devices/vfio3").put('\n');
  LinuxKernelOptions o;
  o.dev_root = dev;
  auto k = LinuxKernel::open(sys, o);
  REQUIRE(k);
  const PciAddress a = *PciAddress::parse(bdf);

  auto none = (*k)->vfio_holders(a);
  REQUIRE_MESSAGE(none, why(none));
  CHECK(none->empty());

  int group = ::open((dev / "vfio/7").c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(group >= 0);
  auto held = (*k)->vfio_holders(a);
  REQUIRE_MESSAGE(held, why(held));
  REQUIRE(held->size() == 1);
  CHECK((*held)[0].pid == ::getpid());
  CHECK((*held)[0].path == (dev / "vfio/7").string());
  ::close(group);

  int cdev = ::open((dev / "vfio/devices/vfio3").c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(cdev >= 0);
  held = (*k)->vfio_holders(a);
  REQUIRE_MESSAGE(held, why(held));
  REQUIRE(held->size() == 1);
  CHECK((*held)[0].path == (dev / "vfio/devices/vfio3").string());
  ::close(cdev);
  CHECK((*k)->vfio_holders(a)->empty());

  auto gone = (*k)->vfio_holders(*PciAddress::parse("0000:09:00.0"));
  REQUIRE_FALSE(gone);
  CHECK(gone.error().errnum == ENODEV);

  // A /proc that cannot be listed: the question has no answer, which is an error (fail closed).
  o.proc_root = tmp / "no-proc";
  auto blind = LinuxKernel::open(sys, o);
  REQUIRE(blind);
  auto unknown = (*blind)->vfio_holders(a);
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().errnum == ENOENT);
  CHECK((*blind)->vfio_holders_of({a}).error().errnum == ENOENT);
}

TEST_CASE("vfio_holders_of: one scan for several functions; group mates share a holder; gone ones left out") {
  test::TempDir tmp;
  const std::filesystem::path sys = tmp / "sys", dev = tmp / "dev";
  // 02:00.0 and 02:00.1 share group 7; 03:00.0 is alone in group 8.
  for (auto [bdf, group] : {std::pair{"0000:02:00.0", "7"}, {"0000:02:00.1", "7"}, {"0000:03:00.0", "8"}}) {
    std::filesystem::create_directories(sys / "kernel/iommu_groups" / group);
    std::filesystem::create_directories(sys / "bus/pci/devices" / bdf);
    std::filesystem::create_directory_symlink(std::string("../../../kernel/iommu_groups/") + group,
                                              sys / "bus/pci/devices" / bdf / "iommu_group");
  }
  std::filesystem::create_directories(dev / "vfio");
  std::ofstream(dev / "vfio/7").put('\n');
  std::ofstream(dev / "vfio/8").put('\n');
  LinuxKernelOptions o;
  o.dev_root = dev;
  auto k = LinuxKernel::open(sys, o);
  REQUIRE(k);
  const PciAddress a = *PciAddress::parse("0000:02:00.0"), b = *PciAddress::parse("0000:02:00.1"),
                   c = *PciAddress::parse("0000:03:00.0"), gone = *PciAddress::parse("0000:09:00.0");

  auto none = (*k)->vfio_holders_of({a, b, c, gone});
  REQUIRE_MESSAGE(none, why(none));
  CHECK(none->empty());

  int group = ::open((dev / "vfio/7").c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(group >= 0);
  auto held = (*k)->vfio_holders_of({a, b, c, gone});
  ::close(group);
  REQUIRE_MESSAGE(held, why(held));
  CHECK(held->size() == 2);
  for (const auto& x : {a, b}) {
    REQUIRE(held->count(x) == 1);
    REQUIRE(held->at(x).size() == 1);
    CHECK(held->at(x)[0].pid == ::getpid());
    CHECK(held->at(x)[0].path == (dev / "vfio/7").string());
  }
  CHECK(held->count(c) == 0);
  // The same answer, one function at a time.
  CHECK((*k)->vfio_holders(c)->empty());
}
