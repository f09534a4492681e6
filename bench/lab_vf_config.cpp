// sriovd-bench-lab-vf-config: configures every VF of a netdev (netdevsim's eth0 with 64 VFs in the
// lab guest) two ways and compares the times, in one boot:
//   sriovd  kernel::LinuxKernel (the production netlink code): one get_vfs (the agent reads the
//           current attributes first), then one set_vf per attribute group per VF, as
//           Agent::apply_vf_config does: mac; vlan+qos+proto; max+min rate; spoofchk; trust;
//   ip      one `ip link set DEV vf N mac M vlan V qos Q max_tx_rate R spoofchk off trust on`
//           process per VF (posix_spawn, no shell: the cheapest way to run that loop);
//   batch   one `ip -batch FILE` process carrying the same command for every VF (one netlink
//           socket, one RTM_SETLINK per VF: iproute2's fastest way).
// Before every round the VFs are reset to the driver's defaults (sriov_numvfs 0, then N), and
// after it the result is checked with get_vfs and with `ip -d link show DEV`. Rounds alternate
// (sriovd, ip, sriovd, ...); the medians are compared.
// Prints one line per round and, last, "RESULT vfs=N sriovd_ms=… ip_ms=… ratio=…".
// Usage: sriovd-bench-lab-vf-config [--ifname eth0] [--numvfs-path PATH] [--vfs 64] [--rounds 5]
// Needs root (CAP_NET_ADMIN) and a PF whose VFs are already enabled (the script writes
// sriov_numvfs first). Exit 0 when every round verified, 1 otherwise, 2 on bad usage.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <regex>
#include <string>
#include <vector>

#include "kernel/linux_kernel.h"

extern char** environ;

namespace {

using sriovd::MacAddress;
using sriovd::VfConfig;
using sriovd::kernel::LinuxKernel;
using Clock = std::chrono::steady_clock;

struct Want {
  MacAddress mac;
  uint16_t vlan;
  uint8_t qos;
  uint32_t max_rate;
};

Want want_for(uint32_t i) {
  return Want{{0x02, 0x5d, 0x00, 0x00, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i & 0xff)},
              static_cast<uint16_t>(100 + i),
              static_cast<uint8_t>(i % 8),
              1000 + 10 * i};
}

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

bool write_sysfs(const std::string& path, const std::string& value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return std::perror(path.c_str()), false;
  bool ok = ::write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
  if (!ok) std::fprintf(stderr, "writing %s to %s: %s\n", value.c_str(), path.c_str(), std::strerror(errno));
  ::close(fd);
  return ok;
}

int run(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid;
  if (int e = posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ); e != 0) {
    std::fprintf(stderr, "spawn %s: %s\n", argv[0], std::strerror(e));
    return -1;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string capture(const std::string& cmd) {
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
  }
  return out;
}

// The sriovd way: one RTM_GETLINK, then one RTM_SETLINK per attribute group and VF.
bool configure_sriovd(LinuxKernel& k, const std::string& ifname, uint32_t vfs) {
  auto current = k.get_vfs(ifname);
  if (!current) return std::fprintf(stderr, "get_vfs: %s\n", current.error().message.c_str()), false;
  for (uint32_t i = 0; i < vfs; ++i) {
    const Want w = want_for(i);
    VfConfig groups[5];
    groups[0].mac = w.mac;
    groups[1].vlan = w.vlan, groups[1].qos = w.qos, groups[1].vlan_proto = 0x8100;
    groups[2].max_tx_rate_mbps = w.max_rate, groups[2].min_tx_rate_mbps = 0;
    groups[3].spoofchk = false;
    groups[4].trust = true;
    for (const auto& g : groups)
      if (auto r = k.set_vf(ifname, i, g); !r)
        return std::fprintf(stderr, "set_vf %u: %s\n", i, r.error().message.c_str()), false;
  }
  return true;
}

// The ip way: one process per VF carrying the same attributes.
bool configure_ip(const std::string& ifname, uint32_t vfs) {
  for (uint32_t i = 0; i < vfs; ++i) {
    const Want w = want_for(i);
    int rc = run({"ip", "link", "set", ifname, "vf", std::to_string(i), "mac", w.mac.to_string(), "vlan",
                  std::to_string(w.vlan), "qos", std::to_string(w.qos), "max_tx_rate", std::to_string(w.max_rate),
                  "spoofchk", "off", "trust", "on"});
    if (rc != 0) return std::fprintf(stderr, "ip link set %s vf %u: exit %d\n", ifname.c_str(), i, rc), false;
  }
  return true;
}

// The batch way: every VF's command in one file, one `ip -batch` process.
bool configure_ip_batch(const std::string& ifname, uint32_t vfs) {
  char path[] = "/tmp/sriovd-bench-batch.XXXXXX";
  int fd = ::mkstemp(path);
  if (fd < 0) return std::perror("mkstemp"), false;
  std::string text;
  for (uint32_t i = 0; i < vfs; ++i) {
    const Want w = want_for(i);
    text += "link set " + ifname + " vf " + std::to_string(i) + " mac " + w.mac.to_string() + " vlan " +
            std::to_string(w.vlan) + " qos " + std::to_string(w.qos) + " max_tx_rate " + std::to_string(w.max_rate) +
            " spoofchk off trust on\n";
  }
  bool wrote = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  int rc = wrote ? run({"ip", "-batch", path}) : -1;
  ::unlink(path);
  if (rc != 0) return std::fprintf(stderr, "ip -batch: exit %d\n", rc), false;
  return true;
}

// Checks every VF through get_vfs and through `ip -d link show`; prints the first mismatches.
bool verify(LinuxKernel& k, const std::string& ifname, uint32_t vfs) {
  int bad = 0;
  auto got = k.get_vfs(ifname);
  if (!got) return std::fprintf(stderr, "verify get_vfs: %s\n", got.error().message.c_str()), false;
  if (got->size() != vfs) std::fprintf(stderr, "get_vfs: %zu VFs, expected %u\n", got->size(), vfs), ++bad;
  for (const auto& v : *got) {
    if (v.index >= vfs) continue;
    const Want w = want_for(v.index);
    const VfConfig& c = v.config;
    bool ok = c.mac == w.mac && c.vlan == w.vlan && c.qos == w.qos && c.max_tx_rate_mbps == w.max_rate &&
              c.spoofchk == false && c.trust == true;
    if (!ok && bad++ < 3) std::fprintf(stderr, "get_vfs: VF %u does not match\n", v.index);
  }
  const std::string show = capture("ip -d link show " + ifname);
  for (uint32_t i = 0; i < vfs; ++i) {
    const Want w = want_for(i);
    std::regex re("\\n\\s*vf " + std::to_string(i) + "\\s+link/ether " + w.mac.to_string() + "[^\\n]*vlan " +
                  std::to_string(w.vlan) + (w.qos ? ", qos " + std::to_string(w.qos) : "(?!, qos)") +  // ip hides qos 0
                  "[^\\n]*max_tx_rate " + std::to_string(w.max_rate) + "Mbps[^\\n]*spoof checking off[^\\n]*trust on");
    if (!std::regex_search(show, re) && bad++ < 3) std::fprintf(stderr, "ip -d link show: VF %u does not match\n", i);
  }
  return bad == 0;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) try {
  std::string ifname = "eth0";
  std::string numvfs_path = "/sys/bus/netdevsim/devices/netdevsim1/sriov_numvfs";
  uint32_t vfs = 64;
  int rounds = 5;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return std::fprintf(stderr, "%s: %s needs a value\n", argv[0], a.c_str()), 2;
    if (a == "--ifname") ifname = argv[++i];
    else if (a == "--numvfs-path") numvfs_path = argv[++i];
    else if (a == "--vfs") vfs = static_cast<uint32_t>(std::stoul(argv[++i]));
    else if (a == "--rounds") rounds = std::max(1, std::stoi(argv[++i]));
    else return std::fprintf(stderr, "%s: unknown option %s\n", argv[0], a.c_str()), 2;
  }
  auto k = LinuxKernel::open("/sys");
  if (!k) return std::fprintf(stderr, "LinuxKernel::open: %s\n", k.error().message.c_str()), 1;
  LinuxKernel& kernel = **k;

  std::vector<double> ours, theirs, batch;
  bool all_ok = true;
  static const char* const kNames[] = {"sriovd", "ip", "batch"};
  for (int r = 0; r < rounds; ++r) {
    for (int which = 0; which < 3; ++which) {
      // Back to the driver's defaults: every attribute is a real change in every round.
      if (!write_sysfs(numvfs_path, "0") || !write_sysfs(numvfs_path, std::to_string(vfs))) return 1;
      auto t0 = Clock::now();
      bool done = which == 0   ? configure_sriovd(kernel, ifname, vfs)
                  : which == 1 ? configure_ip(ifname, vfs)
                               : configure_ip_batch(ifname, vfs);
      double ms = ms_since(t0);
      bool ok = done && verify(kernel, ifname, vfs);
      all_ok = all_ok && ok;
      (which == 0 ? ours : which == 1 ? theirs : batch).push_back(ms);
      std::printf("round %d %-6s %9.1f ms  %s\n", r + 1, kNames[which], ms,
                  ok ? "verified (get_vfs + ip -d link show)" : "FAILED verification");
      std::fflush(stdout);
    }
  }
  double a = median(ours), b = median(theirs), c = median(batch);
  std::printf(
      "RESULT vfs=%u rounds=%d sriovd_ms=%.1f ip_ms=%.1f batch_ms=%.1f ratio=%.1f batch_ratio=%.2f verified=%s\n", vfs,
      rounds, a, b, c, b / a, c / a, all_ok ? "yes" : "no");
  return all_ok ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "sriovd-bench-lab-vf-config: %s\n", e.what());
  return 1;
} catch (...) {
  std::fprintf(stderr, "sriovd-bench-lab-vf-config: unknown exception\n");
  return 1;
}
