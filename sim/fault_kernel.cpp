#include "sim/fault_kernel.h"

#include <utility>

namespace sriovd::kernel {

void FaultKernel::fail_at(uint64_t n, int errnum, std::string message) {
  if (n == 0) return;
  MutexLock lock(mu_);
  faults_[base_ + calls_ + n] = Fault{errnum, std::move(message)};
}

void FaultKernel::clear_faults() {
  MutexLock lock(mu_);
  faults_.clear();
}

uint64_t FaultKernel::calls() const {
  MutexLock lock(mu_);
  return calls_;
}

void FaultKernel::reset_calls() {
  MutexLock lock(mu_);
  base_ += calls_;
  calls_ = 0;
  log_.clear();
}

std::vector<std::string> FaultKernel::log() const {
  MutexLock lock(mu_);
  return log_;
}

std::optional<Error> FaultKernel::next_call(std::string what) {
  MutexLock lock(mu_);
  ++calls_;
  auto it = faults_.find(base_ + calls_);
  if (it == faults_.end()) {
    log_.push_back(std::move(what));
    return std::nullopt;
  }
  Fault f = std::move(it->second);
  faults_.erase(it);
  log_.push_back(what + " -> injected " + std::to_string(f.errnum));
  return Error::sys(f.errnum, f.message.empty() ? "injected fault: " + what : f.message);
}

Result<void> FaultKernel::write_attr(const std::string& relpath, std::string_view value) {
  if (auto e = next_call("write " + relpath + " " + std::string(value))) return std::move(*e);
  return inner_.write_attr(relpath, value);
}

Result<void> FaultKernel::set_vf(const std::string& pf_ifname, uint32_t vf, const VfConfig& config) {
  if (auto e = next_call("set_vf " + pf_ifname + " " + std::to_string(vf))) return std::move(*e);
  return inner_.set_vf(pf_ifname, vf, config);
}

Result<std::vector<VfInfo>> FaultKernel::get_vfs(const std::string& pf_ifname) { return inner_.get_vfs(pf_ifname); }

void FaultKernel::fail_get_link(int errnum) {
  MutexLock lock(mu_);
  get_link_errnum_ = errnum;
}

Result<void> FaultKernel::set_mtu(const std::string& ifname, uint32_t mtu) {
  if (auto e = next_call("set_mtu " + ifname + " " + std::to_string(mtu))) return std::move(*e);
  return inner_.set_mtu(ifname, mtu);
}

Result<void> FaultKernel::set_eswitch_mode(const std::string& bus, const std::string& dev, EswitchMode mode) {
  if (auto e = next_call("set_eswitch_mode " + bus + "/" + dev + " " + to_string(mode))) return std::move(*e);
  return inner_.set_eswitch_mode(bus, dev, mode);
}

Result<LinkFacts> FaultKernel::get_link(const std::string& ifname) {
  int errnum = 0;
  {
    MutexLock lock(mu_);
    errnum = get_link_errnum_;
  }
  if (errnum != 0) return Error::sys(errnum, "injected fault: get_link " + ifname);
  return inner_.get_link(ifname);
}

void FaultKernel::fail_vfio_holders(int errnum) {
  MutexLock lock(mu_);
  vfio_holders_errnum_ = errnum;
}

Result<std::vector<FileHolder>> FaultKernel::vfio_holders(const PciAddress& address) {
  int errnum = 0;
  {
    MutexLock lock(mu_);
    errnum = vfio_holders_errnum_;
  }
  if (errnum != 0) return Error::sys(errnum, "injected fault: vfio_holders " + address.to_string());
  return inner_.vfio_holders(address);
}

}  // namespace sriovd::kernel
