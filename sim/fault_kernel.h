// FaultKernel: wraps another Kernel and fails chosen changes, for rollback tests.
//
// Every mutating call (write_attr, set_vf, set_mtu, set_eswitch_mode) is counted, failed ones included. fail_at(n,
// errno) makes the n-th mutating call from now fail with that errno without reaching the inner kernel (for set_vf this
// stands for a netlink NACK, for write_attr the errno of write(2)), so the tree is exactly as it was before that call;
// every other call passes through unchanged. Reads (get_vfs, get_link, vfio_holders) pass through and are not counted,
// except that fail_get_link and fail_vfio_holders make every such call fail (for the interlocks' fail-closed tests).
// Several faults may be pending. Thread-safe; the wrapped kernel must outlive the wrapper.
//
// A test runs an operation once to learn calls(), then for n = 1..calls() restores the tree,
// arms fail_at(n, ...) and checks that the operation rolls back to the state it started from.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/mutex.h"
#include "kernel/kernel.h"

namespace sriovd::kernel {

class FaultKernel : public Kernel {
 public:
  explicit FaultKernel(Kernel& inner) : inner_(inner) {}

  // The n-th (1-based) mutating call from now fails with `errnum`; `message` replaces the
  // default text ("injected fault: ..."). n = 0 is ignored.
  void fail_at(uint64_t n, int errnum, std::string message = {}) SRIOVD_EXCLUDES(mu_);
  // Every get_link from now fails with `errnum` (0: passes through again).
  void fail_get_link(int errnum) SRIOVD_EXCLUDES(mu_);
  // Every vfio_holders from now fails with `errnum` (0: passes through again).
  void fail_vfio_holders(int errnum) SRIOVD_EXCLUDES(mu_);
  // Drops every pending fault.
  void clear_faults() SRIOVD_EXCLUDES(mu_);
  // Mutating calls made so far (since construction or reset_calls()), failed ones included.
  uint64_t calls() const SRIOVD_EXCLUDES(mu_);
  // Restarts the count (and the call log); pending faults keep their absolute position.
  void reset_calls() SRIOVD_EXCLUDES(mu_);
  // One line per mutating call, in order: "write <relpath> <value>" or
  // "set_vf <ifname> <vf>", with " -> injected <errno>" on the failed ones.
  std::vector<std::string> log() const SRIOVD_EXCLUDES(mu_);

  Result<void> write_attr(const std::string& relpath, std::string_view value) override;
  Result<std::vector<VfInfo>> get_vfs(const std::string& pf_ifname) override;
  Result<void> set_vf(const std::string& pf_ifname, uint32_t vf, const VfConfig& config) override;
  Result<void> set_mtu(const std::string& ifname, uint32_t mtu) override;
  Result<std::vector<std::string>> get_altnames(const std::string& ifname) override {
    return inner_.get_altnames(ifname);
  }
  Result<LinkFacts> get_link(const std::string& ifname) override;
  Result<EswitchMode> get_eswitch_mode(const std::string& bus, const std::string& dev) override {
    return inner_.get_eswitch_mode(bus, dev);
  }
  Result<void> set_eswitch_mode(const std::string& bus, const std::string& dev, EswitchMode mode) override;
  Result<bool> wait_carrier(const std::string& ifname, std::chrono::milliseconds timeout) override {
    return inner_.wait_carrier(ifname, timeout);
  }
  Result<std::vector<FileHolder>> vfio_holders(const PciAddress& address) override;

 private:
  struct Fault {
    int errnum;
    std::string message;
  };
  // Counts one mutating call; returns the fault to inject, if any.
  std::optional<Error> next_call(std::string what) SRIOVD_EXCLUDES(mu_);

  Kernel& inner_;
  mutable Mutex mu_;
  uint64_t calls_ SRIOVD_GUARDED_BY(mu_) = 0;
  uint64_t base_ SRIOVD_GUARDED_BY(mu_) = 0;                 // absolute count at the last reset_calls()
  std::map<uint64_t, Fault> faults_ SRIOVD_GUARDED_BY(mu_);  // by absolute call number
  int get_link_errnum_ SRIOVD_GUARDED_BY(mu_) = 0;
  int vfio_holders_errnum_ SRIOVD_GUARDED_BY(mu_) = 0;
  std::vector<std::string> log_ SRIOVD_GUARDED_BY(mu_);
};

}  // namespace sriovd::kernel
