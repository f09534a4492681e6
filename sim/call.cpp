#include "sim/call.h"

#include <cstdio>

#include "pci/decode.h"
#include "sim/file_io.h"
#include "sim/sim_tree.h"

namespace sriovd::kernel::sim {

using namespace simio;

std::string join(std::string_view dir, std::string_view rel) {
  std::string p;
  p.reserve(dir.size() + 1 + rel.size());
  p += dir;
  p += '/';
  p += rel;
  return p;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return std::string(s);
}

std::string hex(unsigned v, int width) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%0*x", width, v);
  return buf;
}

void Call::uevent(const char* action, const fs::path& dir, const char* subsystem) {
  if (!uevents_) return;
  PendingUevent u{action, "/" + dir.string(), subsystem, {}};
  if (auto t = read_text(abs(dir / "uevent"))) {
    size_t i = 0;
    while (i < t->size()) {
      size_t j = t->find('\n', i);
      if (j == std::string::npos) j = t->size();
      if (j > i) u.pairs.push_back(t->substr(i, j - i));
      i = j + 1;
    }
  }
  uevents_->push_back(std::move(u));
}

Result<Dev> Call::dev(const PciAddress& a) const {
  auto d = simtree::device_dir(root_, a);
  if (!d) return std::move(d).error();
  std::string under_root = at(d->native());
  return Dev{a, std::move(*d), std::move(under_root)};
}

std::optional<Dev> Call::find_dev(std::string_view bdf) const {
  auto a = PciAddress::parse(bdf);
  if (!a || a->to_string() != bdf) return std::nullopt;  // the kernel's names are exact
  auto d = dev(*a);
  if (!d) return std::nullopt;
  return *d;
}

std::optional<std::string> Call::driver_of(const Dev& d) const {
  auto l = read_link(d.in("driver"));
  if (!l) return std::nullopt;
  const size_t slash = l->rfind('/');
  return slash == std::string::npos ? *l : l->substr(slash + 1);
}

std::optional<std::string> Call::override_of(const Dev& d) const {
  auto t = read_text(d.in("driver_override"));
  if (!t) return std::nullopt;
  return pci::parse_driver_override(*t);
}

std::optional<PciAddress> Call::physfn_of(const Dev& d) const {
  auto l = read_link(d.in("physfn"));
  if (!l) return std::nullopt;
  return pci::address_from_link(*l);
}

bool Call::is_pf(const Dev& d) const { return lexists(d.in("sriov_totalvfs")); }

unsigned Call::read_uint(const Dev& d, const char* file) const {
  auto t = read_text(d.in(file));
  if (!t) return 0;
  auto v = pci::parse_int(*t, 0, UINT32_MAX);
  return v ? static_cast<unsigned>(*v) : 0;
}

unsigned Call::num_vfs(const Dev& pf) const { return read_uint(pf, "sriov_numvfs"); }

bool Call::vf_autoprobe(const Dev& pf) const {
  auto t = read_text(pf.in("sriov_drivers_autoprobe"));
  return !t || trim(*t) != "0";
}

Ids Call::ids_of(const Dev& d) const {
  if (auto t = read_text(d.in("uevent"))) {
    const pci::Uevent u = pci::parse_uevent(*t);
    if (u.vendor_id && u.device_id && u.subsystem_vendor_id && u.subsystem_device_id && u.pci_class)
      return Ids{*u.vendor_id, *u.device_id, *u.subsystem_vendor_id, *u.subsystem_device_id, *u.pci_class};
  }
  return ids_from_files(d);
}

Ids Call::ids_from_files(const Dev& d) const {
  Ids ids;
  auto h16 = [&](const char* f) -> uint16_t {
    auto t = read_text(d.in(f));
    if (!t) return 0;
    return pci::parse_hex16(*t).value_or(0);
  };
  ids.vendor = h16("vendor");
  ids.device = h16("device");
  ids.subvendor = h16("subsystem_vendor");
  ids.subdevice = h16("subsystem_device");
  if (auto t = read_text(d.in("class"))) ids.cls = pci::parse_class(*t).value_or(0);
  return ids;
}

std::map<unsigned, PciAddress> Call::virtfns(const Dev& pf) const {
  std::map<unsigned, PciAddress> out;
  for (const auto& n : list_names(abs(pf.dir))) {
    auto i = pci::virtfn_index(n);
    if (!i) continue;
    if (auto l = read_link(pf.in(n)))
      if (auto a = pci::address_from_link(*l)) out[static_cast<unsigned>(*i)] = *a;
  }
  return out;
}

std::optional<unsigned> Call::vf_index_of(const Dev& pf, const PciAddress& vf) const {
  // pci_iov_virtfn_bus/devfn(): VF n is at the PF's routing ID + offset + n * stride.
  const unsigned offset = read_uint(pf, "sriov_offset"), stride = read_uint(pf, "sriov_stride");
  const int64_t delta = int64_t{vf.routing_id()} - pf.addr.routing_id() - offset;
  if (offset && stride && vf.domain == pf.addr.domain && delta >= 0 && delta % stride == 0 &&
      static_cast<uint64_t>(delta / stride) < num_vfs(pf))
    return static_cast<unsigned>(delta / stride);
  for (const auto& [i, a] : virtfns(pf))
    if (a == vf) return i;
  return std::nullopt;
}

std::vector<std::string> Call::netdevs_of(const Dev& d) const { return list_names(d.in("net")); }

std::optional<unsigned> Call::iommu_group_of(const Dev& d) const {
  auto l = read_link(d.in("iommu_group"));
  if (!l) return std::nullopt;
  auto g = pci::iommu_group_from_link(*l);
  if (!g) return std::nullopt;
  return static_cast<unsigned>(*g);
}

bool Call::driver_loaded(std::string_view drv) const {
  return !drv.empty() && drv.find('/') == std::string_view::npos && is_dir(at("bus/pci/drivers/" + std::string(drv)));
}

std::optional<Dev> Call::dev_at(const fs::path& real_dir) const {
  auto a = PciAddress::parse(real_dir.filename().string());
  if (!a) return std::nullopt;
  // bus/pci/devices/<a> leads there (the devices/ hierarchy holds directories, no links).
  auto d = dev(*a);
  if (!d || real_root_ / d->dir != real_dir) return std::nullopt;
  return *d;
}

SimState& Call::state() {
  if (!state_) state_ = std::make_unique<SimState>(read_state(at(kStateFile), boot_.max_ifindex));
  return *state_;
}

Result<void> Call::save_state() {
  if (!state_) return ok();
  dirty_ = false;
  return write_state(root_, *state_);
}

}  // namespace sriovd::kernel::sim
