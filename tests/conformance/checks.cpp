#include "tests/conformance/checks.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "agent/agent.h"
#include "agent/host_model.h"
#include "agent/state_store.h"
#include "pci/decode.h"
#include "pci/inventory.h"
#include "pci/sysfs.h"
#include "sim/fault_kernel.h"

namespace fs = std::filesystem;

namespace sriovd::conformance {
namespace {

// The last answer err() saw, shown (lazily, through INFO) when an assertion fails.
std::string last_answer;

// 0 for success, else the errno the kernel answered.
int err(const Result<void>& r) {
  last_answer = r.ok() ? "success" : r.error().message + " (errno " + std::to_string(r.error().errnum) + ")";
  return r.ok() ? 0 : r.error().errnum;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

std::string dev_attr(const PciAddress& a, const std::string& attr) {
  return "bus/pci/devices/" + a.to_string() + "/" + attr;
}

pci::Device read(const pci::SysfsRoot& root, const PciAddress& a) {
  auto d = pci::read_device(root, a);
  REQUIRE_MESSAGE(d.ok(), a.to_string() << ": " << (d.ok() ? "" : d.error().message));
  return std::move(d).value();
}

// What a host sees of a PF's VFs: address, index, driver, group, sorted by index.
struct VfView {
  PciAddress address;
  int index = -1;
  std::optional<std::string> driver;
  std::optional<int> group;
  bool operator==(const VfView&) const = default;
};

std::vector<VfView> vfs_of(const pci::SysfsRoot& root, const PciAddress& pf) {
  auto inv = pci::scan(root);
  REQUIRE(inv.ok());
  std::vector<VfView> out;
  for (const auto& d : inv->devices)
    if (d.physfn == pf) out.push_back({d.address, d.vf_index.value_or(-1), d.driver, d.iommu_group});
  std::sort(out.begin(), out.end(), [](const VfView& a, const VfView& b) { return a.index < b.index; });
  return out;
}

std::string override_of(const pci::SysfsRoot& root, const PciAddress& a) {
  auto r = root.read(dev_attr(a, "driver_override"));
  REQUIRE(r.ok());
  std::string s = *r;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

bool path_exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

// Every check starts from the same PF state: no VFs, VF autoprobe off (a VF of the lab's NVMe
// cannot be probed by nvme without the PF assigning it resources first).
void start_clean(Target& t) {
  REQUIRE(err(t.kernel.write_attr(dev_attr(t.pf, "sriov_numvfs"), "0")) == 0);
  REQUIRE(err(t.kernel.write_attr(dev_attr(t.pf, "sriov_drivers_autoprobe"), "0")) == 0);
}

}  // namespace

void check_sriov_numvfs(Target& t) {
  INFO("last kernel answer: " << last_answer);
  auto root_r = pci::SysfsRoot::open(t.sysfs);
  REQUIRE_MESSAGE(root_r.ok(), (root_r.ok() ? "" : root_r.error().message));
  const pci::SysfsRoot& root = *root_r;
  start_clean(t);
  const pci::Device pf = read(root, t.pf);
  REQUIRE(pf.sriov.has_value());
  const uint32_t total = pf.sriov->total_vfs;
  REQUIRE(total >= 5);
  CHECK(pf.sriov->drivers_autoprobe == false);
  CHECK(vfs_of(root, t.pf).empty());
  const std::string numvfs = dev_attr(t.pf, "sriov_numvfs");

  // 0 → 4: four VFs, each with physfn, vf_index 0..3, an IOMMU group of its own, no driver.
  CHECK(err(t.kernel.write_attr(numvfs, "4")) == 0);
  const auto four = vfs_of(root, t.pf);
  REQUIRE(four.size() == 4);
  std::set<int> groups;
  for (int i = 0; i < 4; ++i) {
    CAPTURE(four[i].address.to_string());
    CHECK(four[i].index == i);
    CHECK(!four[i].driver);
    REQUIRE(four[i].group.has_value());
    CHECK(four[i].group != pf.iommu_group);
    groups.insert(*four[i].group);
    auto members = root.list("kernel/iommu_groups/" + std::to_string(*four[i].group) + "/devices");
    REQUIRE(members.ok());
    CHECK(members->size() == 1);
  }
  CHECK(groups.size() == 4);
  CHECK(read(root, t.pf).sriov->num_vfs == 4);

  // The same count again: success, nothing changes (same functions, same groups).
  CHECK(err(t.kernel.write_attr(numvfs, "4")) == 0);
  CHECK(vfs_of(root, t.pf) == four);
  CHECK(err(t.kernel.write_attr(numvfs, "4\n")) == 0);
  CHECK(vfs_of(root, t.pf) == four);

  // A different non-zero count while VFs exist: EBUSY, and nothing changes.
  CHECK(err(t.kernel.write_attr(numvfs, "2")) == EBUSY);
  CHECK(vfs_of(root, t.pf) == four);
  // Above TotalVFs: ERANGE (checked before the "same count" shortcut and the EBUSY).
  CHECK(err(t.kernel.write_attr(numvfs, std::to_string(total + 1))) == ERANGE);
  CHECK(err(t.kernel.write_attr(numvfs, "65535")) == ERANGE);
  // Not a u16: EINVAL.
  CHECK(err(t.kernel.write_attr(numvfs, "abc")) == EINVAL);
  CHECK(err(t.kernel.write_attr(numvfs, "-1")) == EINVAL);
  // Past 16 bits: EINVAL, not ERANGE (what 6.1 answers in the lab; sriov_numvfs_store returns
  // -EINVAL for any kstrtou16 failure).
  CHECK(err(t.kernel.write_attr(numvfs, "65536")) == EINVAL);
  CHECK(err(t.kernel.write_attr(numvfs, "4 ")) == EINVAL);
  CHECK(vfs_of(root, t.pf) == four);

  // 4 → 0: the VFs and their groups are gone.
  CHECK(err(t.kernel.write_attr(numvfs, "0")) == 0);
  CHECK(vfs_of(root, t.pf).empty());
  CHECK(read(root, t.pf).sriov->num_vfs == 0);
  for (const auto& v : four) {
    CHECK(!root.exists("bus/pci/devices/" + v.address.to_string()));
    CHECK(!root.exists("kernel/iommu_groups/" + std::to_string(*v.group)));
  }
  // 0 → 0 is fine too.
  CHECK(err(t.kernel.write_attr(numvfs, "0")) == 0);
}

void check_vfio_binding(Target& t) {
  INFO("last kernel answer: " << last_answer);
  auto root_r = pci::SysfsRoot::open(t.sysfs);
  REQUIRE_MESSAGE(root_r.ok(), (root_r.ok() ? "" : root_r.error().message));
  const pci::SysfsRoot& root = *root_r;
  start_clean(t);
  REQUIRE(err(t.kernel.write_attr(dev_attr(t.pf, "sriov_numvfs"), "2")) == 0);
  const auto vfs = vfs_of(root, t.pf);
  REQUIRE(vfs.size() == 2);
  const PciAddress vf = vfs[1].address;
  const std::string bdf = vf.to_string();
  REQUIRE(vfs[1].group.has_value());
  const fs::path group_dev = "/dev/vfio/" + std::to_string(*vfs[1].group);
  const std::string pf_driver = read(root, t.pf).driver.value_or("");
  REQUIRE(!pf_driver.empty());
  CAPTURE(bdf);
  CHECK(!read(root, vf).driver);
  CHECK(override_of(root, vf) == "(null)");
  if (t.real) CHECK(!path_exists(group_dev));

  // Misuse while unbound: unbind from a driver it is not bound to is ENODEV.
  CHECK(err(t.kernel.write_attr("bus/pci/drivers/vfio-pci/unbind", bdf)) == ENODEV);
  // drivers_probe of an unbound VF no driver may probe (autoprobe 0, no override): success, no driver.
  CHECK(err(t.kernel.write_attr("bus/pci/drivers_probe", bdf)) == 0);
  CHECK(!read(root, vf).driver);
  // bind_store of a device that does not exist: ENODEV.
  CHECK(err(t.kernel.write_attr("bus/pci/drivers/vfio-pci/bind", "0000:ff:1f.7")) == ENODEV);

  // driver_override + drivers_probe: vfio-pci takes it.
  CHECK(err(t.kernel.write_attr(dev_attr(vf, "driver_override"), "vfio-pci")) == 0);
  CHECK(override_of(root, vf) == "vfio-pci");
  CHECK(!read(root, vf).driver);  // setting the override binds nothing by itself
  CHECK(err(t.kernel.write_attr("bus/pci/drivers_probe", bdf)) == 0);
  CHECK(read(root, vf).driver == std::string("vfio-pci"));
  CHECK(!read(root, vfs[0].address).driver);  // the other VF is left alone
  if (t.real) CHECK(path_exists(group_dev));

  // Misuse while bound to vfio-pci.
  // bind to the driver it is bound to: driver matches, __driver_probe_device() sees dev->driver.
  CHECK(err(t.kernel.write_attr("bus/pci/drivers/vfio-pci/bind", bdf)) == EBUSY);
  // bind to another driver: driver_override makes driver_match_device() fail → ENODEV.
  CHECK(err(t.kernel.write_attr("bus/pci/drivers/" + pf_driver + "/bind", bdf)) == ENODEV);
  // unbind from a driver it is not bound to.
  CHECK(err(t.kernel.write_attr("bus/pci/drivers/" + pf_driver + "/unbind", bdf)) == ENODEV);
  // drivers_probe of a bound device: success, no change.
  CHECK(err(t.kernel.write_attr("bus/pci/drivers_probe", bdf)) == 0);
  CHECK(read(root, vf).driver == std::string("vfio-pci"));

  // Back: unbind, clear the override with "\n", probe → no driver (autoprobe 0).
  CHECK(err(t.kernel.write_attr("bus/pci/drivers/vfio-pci/unbind", bdf)) == 0);
  CHECK(!read(root, vf).driver);
  if (t.real) CHECK(!path_exists(group_dev));
  CHECK(err(t.kernel.write_attr(dev_attr(vf, "driver_override"), "\n")) == 0);
  CHECK(override_of(root, vf) == "(null)");
  CHECK(err(t.kernel.write_attr("bus/pci/drivers_probe", bdf)) == 0);
  CHECK(!read(root, vf).driver);

  // bind without an override to a driver whose id table claims it: autoprobe 0 still refuses
  // the probe (pci_device_can_probe) → ENODEV from pci_device_probe through bind_store.
  {
    int e = err(t.kernel.write_attr("bus/pci/drivers/" + pf_driver + "/bind", bdf));
    CHECK(e == ENODEV);
    CHECK(!read(root, vf).driver);
  }

  CHECK(err(t.kernel.write_attr(dev_attr(t.pf, "sriov_numvfs"), "0")) == 0);
}

void check_agent(Target& t, const fs::path& state_dir) {
  INFO("last kernel answer: " << last_answer);
  start_clean(t);
  auto root_r = pci::SysfsRoot::open(t.sysfs);
  REQUIRE_MESSAGE(root_r.ok(), (root_r.ok() ? "" : root_r.error().message));
  const pci::SysfsRoot& root = *root_r;
  kernel::FaultKernel fk(t.kernel);
  auto store = agent::StateStore::open(state_dir);
  REQUIRE_MESSAGE(store.ok(), (store.ok() ? "" : store.error().message));
  agent::HostModel model;
  agent::Agent a(root, fk, **store, model, nullptr);
  {
    auto r = a.refresh();
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
  }
  auto ok = [](const Result<void>& r) {
    if (!r.ok()) MESSAGE(r.error().message);
    return r.ok();
  };

  fk.reset_calls();
  REQUIRE(ok(a.set_num_vfs(t.pf, 4)));
  CHECK(joined(fk.log()) == "write " + dev_attr(t.pf, "sriov_numvfs") + " 4\n");  // 0 → 4 is one write
  const auto four = vfs_of(root, t.pf);
  REQUIRE(four.size() == 4);

  fk.reset_calls();
  REQUIRE(ok(a.set_num_vfs(t.pf, 4)));
  CHECK(fk.calls() == 0);
  CHECK(vfs_of(root, t.pf) == four);

  const PciAddress vf = four[2].address;
  CAPTURE(vf.to_string());
  fk.reset_calls();
  REQUIRE(ok(a.set_driver(vf, {.driver = "vfio-pci"})));
  CHECK(read(root, vf).driver == std::string("vfio-pci"));
  CHECK(override_of(root, vf) == "vfio-pci");
  const std::string bdf = vf.to_string();
  CHECK(joined(fk.log()) ==
        "write " + dev_attr(vf, "driver_override") + " vfio-pci\n" + "write bus/pci/drivers_probe " + bdf + "\n");
  if (t.real) CHECK(path_exists("/dev/vfio/" + std::to_string(*four[2].group)));
  {
    auto* v = model.current()->find(vf);
    REQUIRE(v != nullptr);
    CHECK(v->device.driver == std::string("vfio-pci"));
  }

  // The interlock: a VF on vfio-pci keeps num_vfs from changing, with no kernel write.
  fk.reset_calls();
  CHECK(!a.set_num_vfs(t.pf, 0).ok());
  CHECK(fk.calls() == 0);

  fk.reset_calls();
  REQUIRE(ok(a.set_driver(vf, {.driver = "host"})));
  CHECK(!read(root, vf).driver);  // it had none before sriovd moved it
  CHECK(override_of(root, vf) == "(null)");
  CHECK(joined(fk.log()) == "write bus/pci/drivers/vfio-pci/unbind " + bdf + "\n" + "write " +
                                dev_attr(vf, "driver_override") + " \n\n" + "write bus/pci/drivers_probe " + bdf +
                                "\n");

  fk.reset_calls();
  REQUIRE(ok(a.set_num_vfs(t.pf, 0)));
  CHECK(joined(fk.log()) == "write " + dev_attr(t.pf, "sriov_numvfs") + " 0\n");
  CHECK(vfs_of(root, t.pf).empty());

  // Reconcile on a host that matches the desired state changes nothing.
  fk.reset_calls();
  auto rep = a.reconcile();
  CHECK(rep.drift.empty());
  CHECK(fk.calls() == 0);
}

void check_vf_attributes(kernel::Kernel& k, const std::string& ifname) {
  INFO("last kernel answer: " << last_answer);
  auto get = [&](uint32_t vf) {
    auto vfs = k.get_vfs(ifname);
    REQUIRE_MESSAGE(vfs.ok(), (vfs.ok() ? "" : vfs.error().message));
    REQUIRE(vfs->size() > vf);
    CHECK((*vfs)[vf].index == vf);
    return (*vfs)[vf].config;
  };
  auto set = [&](uint32_t vf, const VfConfig& c) { return err(k.set_vf(ifname, vf, c)); };
  {
    auto vfs = k.get_vfs(ifname);
    REQUIRE(vfs.ok());
    REQUIRE(vfs->size() >= 8);
  }
  const MacAddress mac{0x02, 0, 0, 0, 0x03, 0x03};

  CHECK(set(3, {.mac = mac}) == 0);
  CHECK(get(3).mac == mac);

  CHECK(set(3, {.vlan = 100, .qos = 5}) == 0);
  auto c = get(3);
  CHECK(c.vlan == 100);
  CHECK(c.qos == 5);
  CHECK(c.vlan_proto.value_or(0x8100) == 0x8100);

  CHECK(set(3, {.vlan = 200, .qos = 3, .vlan_proto = 0x88a8}) == 0);
  c = get(3);
  CHECK(c.vlan == 200);
  CHECK(c.qos == 3);
  CHECK(c.vlan_proto == 0x88a8);

  CHECK(set(3, {.max_tx_rate_mbps = 1000, .min_tx_rate_mbps = 100}) == 0);
  c = get(3);
  CHECK(c.max_tx_rate_mbps == 1000);
  CHECK(c.min_tx_rate_mbps == 100);

  CHECK(set(3, {.spoofchk = false}) == 0);
  CHECK(get(3).spoofchk == false);
  CHECK(set(3, {.spoofchk = true}) == 0);
  CHECK(get(3).spoofchk == true);

  CHECK(set(3, {.trust = true}) == 0);
  CHECK(get(3).trust == true);

  CHECK(set(3, {.link_state = LinkState::disable}) == 0);
  CHECK(get(3).link_state == LinkState::disable);
  CHECK(set(3, {.link_state = LinkState::enable}) == 0);
  CHECK(get(3).link_state == LinkState::enable);

  // Everything set on VF 3 is still there; VF 2 is untouched.
  c = get(3);
  CHECK(c.mac == mac);
  CHECK(c.vlan == 200);
  CHECK(c.max_tx_rate_mbps == 1000);
  CHECK(c.trust == true);
  const VfConfig vf2_before = get(2);

  // The kernel's own refusals (the Agent refuses these before asking).
  CHECK(set(2, {.vlan = 10, .qos = 8}) == EINVAL);
  CHECK(set(2, {.mac = MacAddress{0x01, 0x00, 0x5e, 0, 0, 1}}) == EINVAL);
  CHECK(set(2, {.vlan = 4096}) == EINVAL);
  CHECK(get(2) == vf2_before);
  // qos or protocol without a vlan: refused by every Kernel before a request goes out (the
  // VLAN attribute carries all three), naming the field; vlan 0 with a qos is a priority tag,
  // which the kernel passes to the driver and the driver keeps.
  {
    auto r = k.set_vf(ifname, 5, {.qos = 2});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().errnum == EINVAL);
    CHECK(r.error().field == "qos");
    r = k.set_vf(ifname, 5, {.vlan_proto = 0x88a8});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().field == "vlan_proto");
  }
  CHECK(set(5, {.vlan = 0, .qos = 2}) == 0);
  c = get(5);
  CHECK(c.vlan.value_or(0) == 0);
  CHECK(c.qos == 2);
  // A VF number past the enabled ones.
  {
    auto vfs = k.get_vfs(ifname);
    REQUIRE(vfs.ok());
    CHECK(set(static_cast<uint32_t>(vfs->size()), {.mac = mac}) == EINVAL);
  }

  // One request, attributes applied in order: the MAC before the bad VLAN stays applied.
  const MacAddress mac4{0x02, 0, 0, 0, 0x04, 0x04};
  CHECK(set(4, {.mac = mac4, .vlan = 10, .qos = 8}) == EINVAL);
  c = get(4);
  CHECK(c.mac == mac4);
  CHECK(c.vlan.value_or(0) == 0);
  CHECK(c.qos.value_or(0) == 0);
}

void check_set_mtu(kernel::Kernel& k, const std::filesystem::path& sysfs, const std::string& ifname) {
  const auto mtu_file = sysfs / "class/net" / ifname / "mtu";
  auto read_mtu = [&]() -> std::string {
    auto text = pci::SysfsRoot::open(sysfs).value().read("class/net/" + ifname + "/mtu");
    REQUIRE_MESSAGE(text.ok(), "reading " << mtu_file.string());
    return std::string(pci::trim(*text));
  };
  const std::string was = read_mtu();
  REQUIRE(k.set_mtu(ifname, 9000).ok());
  CHECK(read_mtu() == "9000");
  auto low = k.set_mtu(ifname, 67);
  REQUIRE_FALSE(low.ok());
  CHECK(low.error().errnum == EINVAL);
  auto high = k.set_mtu(ifname, 65536);
  REQUIRE_FALSE(high.ok());
  CHECK(high.error().errnum == EINVAL);
  CHECK(read_mtu() == "9000");
  CHECK(k.set_mtu("sriovdnone0", 1500).error().errnum == ENODEV);
  REQUIRE(k.set_mtu(ifname, static_cast<uint32_t>(std::stoul(was))).ok());
  CHECK(read_mtu() == was);
}

namespace {

// The representors of the device `pf_ifname` belongs to, by VF index: netdevs of the same
// device whose phys_port_name is "pf0vf<N>", with their phys_switch_id.
std::map<unsigned, std::pair<std::string, std::string>> representors(const std::filesystem::path& sysfs,
                                                                     const std::string& pf_ifname) {
  namespace fs = std::filesystem;
  auto read = [](const fs::path& p) -> std::string {
    std::ifstream in(p);
    std::string s;
    std::getline(in, s);
    return s;
  };
  std::error_code ec;
  const fs::path device = fs::canonical(sysfs / "class/net" / pf_ifname / "device", ec);
  REQUIRE_MESSAGE(!ec, "the device of " << pf_ifname);
  std::map<unsigned, std::pair<std::string, std::string>> out;
  for (const auto& e : fs::directory_iterator(sysfs / "class/net")) {
    const std::string name = e.path().filename().string();
    std::error_code ec2;
    if (fs::canonical(e.path() / "device", ec2) != device || ec2) continue;
    const std::string port = read(e.path() / "phys_port_name");  // EOPNOTSUPP reads as empty
    if (port.rfind("pf0vf", 0) != 0) continue;
    out[static_cast<unsigned>(std::stoul(port.substr(5)))] = {name, read(e.path() / "phys_switch_id")};
  }
  return out;
}

}  // namespace

void check_eswitch(kernel::Kernel& k, const std::filesystem::path& sysfs, const std::string& bus,
                   const std::string& dev, const std::string& pf_ifname, unsigned num_vfs) {
  auto mode = k.get_eswitch_mode(bus, dev);
  REQUIRE_MESSAGE(mode.ok(), (mode.ok() ? "" : mode.error().message));
  CHECK(*mode == EswitchMode::legacy);
  CHECK(representors(sysfs, pf_ifname).empty());

  auto on = k.set_eswitch_mode(bus, dev, EswitchMode::switchdev);
  REQUIRE_MESSAGE(on.ok(), (on.ok() ? "" : on.error().message));
  CHECK(k.get_eswitch_mode(bus, dev).value() == EswitchMode::switchdev);
  auto reps = representors(sysfs, pf_ifname);
  REQUIRE(reps.size() == num_vfs);
  std::ifstream id_file(sysfs / "class/net" / pf_ifname / "phys_switch_id");
  std::string switch_id;
  std::getline(id_file, switch_id);
  CHECK_FALSE(switch_id.empty());
  for (unsigned i = 0; i < num_vfs; ++i) {
    CAPTURE(i);
    REQUIRE(reps.count(i));
    CHECK(reps[i].second == switch_id);
    CHECK(reps[i].first != pf_ifname);
  }
  CHECK(k.set_eswitch_mode(bus, dev, EswitchMode::switchdev).ok());  // no change
  CHECK(representors(sysfs, pf_ifname).size() == num_vfs);

  REQUIRE(k.set_eswitch_mode(bus, dev, EswitchMode::legacy).ok());
  CHECK(k.get_eswitch_mode(bus, dev).value() == EswitchMode::legacy);
  CHECK(representors(sysfs, pf_ifname).empty());

  auto none = k.get_eswitch_mode("pci", "0000:ff:1f.7");
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().errnum == ENODEV);
}

}  // namespace sriovd::conformance
