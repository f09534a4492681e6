#include "daemon/lease_virt.h"

#include "agent/vf_config_json.h"
#include "virt/device_xml.h"
#include "virt/libvirt.h"

namespace sriovd::agent {

std::optional<std::string> lease_device_xml(const Lease& lease, const Snapshot& snap) {
  const DeviceView* v = snap.find(lease.address);
  if (!v) return std::nullopt;
  const pci::Device& d = v->device;
  virt::DeviceXmlSpec spec;
  spec.address = d.address;
  const bool nic = d.class_id && (*d.class_id >> 16) == 0x02;
  if (lease.mode == PoolMode::netdev) {
    if (d.netdevs.empty()) return std::nullopt;
    spec.kind = virt::DeviceXmlSpec::Kind::Direct;
    spec.netdev = d.netdevs.front();
  } else if (nic && d.is_vf()) {
    spec.kind = virt::DeviceXmlSpec::Kind::HostdevInterface;
  } else {
    spec.kind = virt::DeviceXmlSpec::Kind::HostdevPci;
  }
  if (spec.kind != virt::DeviceXmlSpec::Kind::HostdevPci && lease.vf_config) {
    if (lease.vf_config->mac) spec.mac = lease.vf_config->mac->to_string();
    // The VLAN is set on the VF by sriovd already; the hostdev interface repeats it so libvirt
    // (which programs it through the PF too) keeps it rather than clearing it.
    if (spec.kind == virt::DeviceXmlSpec::Kind::HostdevInterface && lease.vf_config->vlan.value_or(0) != 0)
      spec.vlan = *lease.vf_config->vlan;
  }
  auto xml = virt::device_xml(spec);
  if (!xml) return std::nullopt;
  return *xml;
}

LeaseLibvirt::LeaseLibvirt(const std::string& uri, std::chrono::milliseconds detach_deadline)
    : deadline_(detach_deadline), libvirt_(virt::Libvirt::deferred(uri)) {}

LeaseLibvirt::~LeaseLibvirt() = default;

Result<void> LeaseLibvirt::named(Result<void> r) const {
  // A failed connect names the URI already; a connection that broke during the call does not.
  if (!r && r.error().code == ErrorCode::unavailable && r.error().message.find(libvirt_->uri()) == std::string::npos)
    return std::move(r).error().context("libvirt at " + libvirt_->uri() + " went away");
  return r;
}

Result<void> LeaseLibvirt::attach(const std::string& xml, const Attachment& at) {
  return named(libvirt_->attach(at.domain, xml, {at.live, at.config}));
}

Result<void> LeaseLibvirt::detach(const std::string& xml, const Attachment& at) {
  // Refusals that mean the device is not there to detach: the domain is gone, the definition
  // lacks the device, or (live) the domain was shut down since the attach.
  auto absent = [](const Error& e, bool live) {
    return e.reason == "domain_not_found" || e.reason == "device_not_attached" ||
           (live && e.reason == "domain_not_running");
  };
  auto r = libvirt_->detach(at.domain, xml, {at.live, at.config}, deadline_);
  if (r || !absent(r.error(), at.live)) return named(std::move(r));
  if (at.live && at.config && r.error().reason != "domain_not_found") {
    // libvirt refuses a change to both definitions when one of them cannot take it, and then
    // changes neither: detach from each on its own.
    for (virt::Libvirt::Flags one : {virt::Libvirt::Flags{true, false}, virt::Libvirt::Flags{false, true}}) {
      auto part = libvirt_->detach(at.domain, xml, one, deadline_);
      if (!part && !absent(part.error(), one.live)) return named(std::move(part));
    }
  }
  return ok();
}

Result<void> LeaseLibvirt::check_not_in_use(const PciAddress& address) {
  auto uses = libvirt_->domains_using(address);
  if (!uses) {
    // No libvirtd to ask (none installed, or stopped): no domain runs through it, and a QEMU it
    // left running still holds the device's VFIO nodes, which the kernel is asked about.
    if (uses.error().reason == "libvirt_unreachable") return ok();
    return named(std::move(uses).error());
  }
  std::string running;
  for (const auto& u : *uses)
    if (u.running && u.live) running += (running.empty() ? "" : ", ") + u.domain;
  if (running.empty()) return ok();
  return Error::make(ErrorCode::conflict, address.to_string() + " is in use by running domain(s) " + running);
}

}  // namespace sriovd::agent
