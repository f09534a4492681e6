// Test support for the Agent's sim tier: a generated host with SimKernel (behind a fault
// injector), a state store and an Agent; a whole-tree snapshot to compare hosts before and
// after; and the two drivers of failure tests: a fault at every kernel call, and kill -9 before
// every kernel call followed by a restart.
#pragma once

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agent/agent.h"
#include "agent/vf_config_json.h"
#include "sim/fault_kernel.h"
#include "sim/sim_kernel.h"
#include "tests/fixtures/profiles.h"
#include "tests/support/temp_dir.h"

namespace sriovd::agent::testing {

namespace fs = std::filesystem;

inline const PciAddress kE810 = *PciAddress::parse("0000:17:00.0");  // ice, 128 VFs possible, ens1f0
inline const PciAddress kX710 = *PciAddress::parse("0000:3b:00.0");  // i40e, 4 VFs enabled (iavf)
inline const PciAddress kGpu = *PciAddress::parse("0000:87:00.0");   // shares a group with its audio

// Everything a host would see of the tree: file contents and link targets. The simulator's own
// bookkeeping (counters like the kernel's ifindex counter, its files of VF attributes) is not
// compared as bytes: VF attributes are compared as get_vfs() reports them (see host_state).
inline std::map<std::string, std::string> tree(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    std::string rel = fs::relative(it->path(), root).string();
    // The uevent counter only counts: the kernel never winds it back, so a rollback leaves it.
    if (rel == ".sriovd-sim/state.json" || it->path().filename() == ".sriovd-sim-vf" || rel == "kernel/uevent_seqnum") {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_symlink()) {
      out[rel] = "-> " + fs::read_symlink(it->path()).string();
      it.disable_recursion_pending();
    } else if (it->is_regular_file()) {
      std::ifstream in(it->path(), std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      out[rel] = ss.str();
    } else {
      out[rel] = "<dir>";
    }
  }
  return out;
}

inline std::string diff(const std::map<std::string, std::string>& a, const std::map<std::string, std::string>& b) {
  std::string out;
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end()) out += "- " + k + "\n";
    else if (it->second != v) out += "~ " + k + "\n";
  }
  for (const auto& [k, v] : b)
    if (!a.count(k)) out += "+ " + k + "\n";
  return out.size() > 2000 ? out.substr(0, 2000) + "...\n" : out;
}

// Linux cannot recreate destroyed VFs identically: their netdevs get new ifindexes and start
// down with fresh MACs. After a rollback through sriov_numvfs=0 these per-netdev runtime files
// (and the VFs' config space, which the simulator writes afresh) are compared by presence only.
inline std::map<std::string, std::string> without_vf_runtime(std::map<std::string, std::string> t) {
  for (auto& [k, v] : t) {
    auto base = fs::path(k).filename().string();
    bool netdev_file =
        k.find("/net/") != std::string::npos && (base == "ifindex" || base == "address" || base == "carrier" ||
                                                 base == "flags" || base == "operstate" || base == "uevent");
    if (netdev_file || (base == "config" && k.find(":02.") != std::string::npos)) v = "<runtime>";
  }
  return t;
}

struct Host {
  test::TempDir dir{"sriovd-agent"};
  fs::path sys = dir / "sys";
  std::unique_ptr<kernel::SimKernel> sim;
  std::unique_ptr<kernel::FaultKernel> faults;
  std::unique_ptr<StateStore> store;
  std::unique_ptr<pci::SysfsRoot> root;
  HostModel model;
  std::unique_ptr<Agent> agent;

  explicit Host(const char* profile = "dual-socket") {
    REQUIRE(fixtures::write_profile(profile, sys).ok());
    start();
  }
  // What a daemon's exit does: the agent and its database connection go (the state database
  // admits one process at a time).
  void stop() {
    agent.reset();
    store.reset();
  }
  void start() {
    stop();
    sim = std::move(kernel::SimKernel::open(sys).value());
    faults = std::make_unique<kernel::FaultKernel>(*sim);
    store = std::move(StateStore::open(dir / "state").value());
    root = std::make_unique<pci::SysfsRoot>(std::move(pci::SysfsRoot::open(sys).value()));
    agent = std::make_unique<Agent>(*root, *faults, *store, model, nullptr);
    REQUIRE(agent->refresh().ok());
  }
  const DeviceView* dev(const PciAddress& a) { return model.current()->find(a); }
  // The tree plus every PF's VF attributes as rtnetlink (the simulator) reports them.
  std::map<std::string, std::string> state() {
    auto t = tree(sys);
    for (const auto& v : model.current()->devices) {
      if (!v.device.sriov || v.device.netdevs.empty()) continue;
      auto vfs = sim->get_vfs(v.device.netdevs.front());
      if (!vfs) continue;
      for (const auto& info : *vfs)
        t["vf_config " + v.device.netdevs.front() + "#" + std::to_string(info.index)] =
            vf_config_to_json(info.config).dump();
    }
    return t;
  }
  std::vector<const DeviceView*> vfs_of(const PciAddress& pf) {
    std::vector<const DeviceView*> out;
    for (const auto& v : model.current()->devices)
      if (v.device.physfn == pf) out.push_back(&v);
    return out;
  }
};

// Runs `op` once to count its kernel calls, then, on fresh hosts prepared by `setup`, fails
// each call in turn: every failure must leave the tree exactly as before.
template <class Setup, class Op>
void fail_every_step(const char* profile, Setup setup, Op op, std::vector<int> errnos = {EBUSY, EIO, EINVAL, ERANGE},
                     bool recreates_vfs = false) {
  uint64_t calls = 0;
  {
    Host h(profile);
    setup(h);
    h.faults->reset_calls();
    REQUIRE(op(h).ok());
    calls = h.faults->calls();
  }
  REQUIRE(calls > 0);
  for (uint64_t n = 1; n <= calls; ++n) {
    int e = errnos[(n - 1) % errnos.size()];
    CAPTURE(n);
    CAPTURE(e);
    Host h(profile);
    setup(h);
    auto before = h.state();
    h.faults->reset_calls();
    h.faults->fail_at(n, e);
    auto r = op(h);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().errnum == e);
    auto after = h.state();
    if (recreates_vfs && n > 1) {
      before = without_vf_runtime(before);
      after = without_vf_runtime(after);
    }
    CHECK_MESSAGE(before == after, diff(before, after));
    // Nothing recorded as desired by a failed operation.
    CHECK(h.store->operations_in_state(OperationState::pending)->empty());
  }
}

// Kills a child running `op` at each of its kernel calls in turn (before the call, as SIGKILL
// between steps would), restarts on the same tree and state, reconciles, and checks the host is
// either exactly as before (the operation was undone) or as `done` says (it had finished).
// A kernel that kills the process (exit status 9) at its n-th change, before making it: what
// SIGKILL between two steps leaves behind.
struct DyingKernel : kernel::Kernel {
  kernel::Kernel& in;
  int left;
  DyingKernel(kernel::Kernel& k, int n) : in(k), left(n) {}
  Result<void> write_attr(const std::string& p, std::string_view v) override {
    if (--left == 0) _exit(9);
    return in.write_attr(p, v);
  }
  Result<std::vector<VfInfo>> get_vfs(const std::string& i) override { return in.get_vfs(i); }
  Result<void> set_vf(const std::string& i, uint32_t vf, const VfConfig& c) override {
    if (--left == 0) _exit(9);
    return in.set_vf(i, vf, c);
  }
  Result<void> set_mtu(const std::string& i, uint32_t mtu) override {
    if (--left == 0) _exit(9);
    return in.set_mtu(i, mtu);
  }
  Result<LinkFacts> get_link(const std::string& i) override { return in.get_link(i); }
  Result<EswitchMode> get_eswitch_mode(const std::string& b, const std::string& d) override {
    return in.get_eswitch_mode(b, d);
  }
  Result<void> set_eswitch_mode(const std::string& b, const std::string& d, EswitchMode m) override {
    if (--left == 0) _exit(9);
    return in.set_eswitch_mode(b, d, m);
  }
  Result<std::vector<std::string>> get_altnames(const std::string& i) override { return in.get_altnames(i); }
  Result<bool> wait_carrier(const std::string& i, std::chrono::milliseconds t) override {
    return in.wait_carrier(i, t);
  }
  Result<std::vector<kernel::FileHolder>> vfio_holders(const PciAddress& a) override { return in.vfio_holders(a); }
};

// Runs `op` on an agent in a child process whose kernel dies at its n-th change (the daemon
// killed there), then restarts `h` on the same tree and state. Returns the child's wait status.
template <class Op>
int run_dying(Host& h, int n, Op op) {
  h.stop();  // the child is the daemon now, with its own connection to the state
  pid_t pid = fork();
  if (pid == 0) {
    auto store = StateStore::open(h.dir / "state");
    if (!store) _exit(2);
    DyingKernel dying(*h.sim, n);
    Agent a(*h.root, dying, **store, h.model, nullptr);
    (void)a.refresh();
    _exit(op(a).ok() ? 0 : 1);
  }
  int st = 0;
  REQUIRE(waitpid(pid, &st, 0) == pid);
  h.start();
  return st;
}

// `rebinds_netdevs`: the operation may unbind and rebind a netdev's driver, which (as on Linux)
// registers the netdev afresh: its runtime files are compared by presence only.
template <class Op, class Done, class Setup>
void crash_at_every_step(Op op, Done done, Setup setup, bool rebinds_netdevs = false) {
  for (int n = 1;; ++n) {
    CAPTURE(n);
    Host h;
    setup(h);
    auto before = h.state();
    const int st = run_dying(h, n, op);
    auto report = h.agent->reconcile();
    CHECK(report.drift.empty());
    CHECK(h.store->operations_in_state(OperationState::pending)->empty());
    if (WEXITSTATUS(st) != 9) {
      // The operation finished before call n: the desired state holds and the host matches it.
      CHECK(WEXITSTATUS(st) == 0);
      done(h);
      break;
    }
    CHECK(report.recovered.size() >= 1);
    auto after = h.state();
    if (rebinds_netdevs) {
      before = without_vf_runtime(before);
      after = without_vf_runtime(after);
    }
    CHECK_MESSAGE(before == after, diff(before, after));
  }
}

template <class Op, class Done>
void crash_at_every_step(Op op, Done done) {
  crash_at_every_step(op, done, [](Host&) {});
}

}  // namespace sriovd::agent::testing
