// SimKernel's rtnetlink side: set_vf errnos per PF driver and in do_setvfinfo order, get_link.
#include "sim/sim_kernel.h"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "base/fd.h"
#include "pci/inventory.h"
#include "sim/netdevs.h"
#include "sim/sim_kernel_test_util.h"
#include "sim/sim_tree.h"
#include "tests/fixtures/profiles.h"
#include "tests/support/temp_dir.h"

using namespace sriovd;
using namespace sriovd::kernel;
using namespace sriovd::kernel::testing;
namespace fs = std::filesystem;

TEST_CASE("set_vf: errnos in do_setvfinfo order, partial application, persistence") {
  Host h("dual-socket");
  REQUIRE(err(h.k->write_attr(numvfs_path("0000:17:00.0"), "2")) == 0);
  auto vfs = h.k->get_vfs("ens1f0");
  REQUIRE(vfs.ok());
  REQUIRE(vfs->size() == 2);
  const VfConfig& d0 = (*vfs)[0].config;
  CHECK((*vfs)[1].index == 1);
  CHECK(d0.mac == MacAddress{});
  CHECK(d0.vlan == 0);
  CHECK(d0.qos == 0);
  CHECK(d0.vlan_proto == 0x8100);
  CHECK(d0.max_tx_rate_mbps == 0);
  CHECK(d0.min_tx_rate_mbps == 0);
  CHECK(d0.spoofchk == true);
  CHECK(d0.trust == false);
  CHECK(d0.link_state == LinkState::auto_);

  const MacAddress mac{0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
  auto e = [&](uint32_t vf, VfConfig c) { return err(h.k->set_vf("ens1f0", vf, c)); };
  CHECK(e(2, mac_cfg(mac)) == EINVAL);                                   // VF 2 of 2
  CHECK(e(0, mac_cfg({0x01, 0, 0x5e, 0, 0, 1})) == EINVAL);              // multicast
  CHECK(e(0, mac_cfg({0xff, 0xff, 0xff, 0xff, 0xff, 0xff})) == EINVAL);  // broadcast
  CHECK(e(5, VfConfig{}) == 0);                                          // nothing to send
  VfConfig c;
  c.vlan = 4096;
  CHECK(e(0, c) == EINVAL);
  c = {};
  c.vlan = 10;
  c.qos = 8;
  CHECK(e(0, c) == EINVAL);
  c = {};
  c.vlan = 10;
  c.vlan_proto = 0x9100;
  CHECK(e(0, c) == EPROTONOSUPPORT);
  c = {};
  c.max_tx_rate_mbps = 100;
  c.min_tx_rate_mbps = 200;
  CHECK(e(0, c) == EINVAL);
  CHECK(h.k->get_vfs("ens1f0")->at(0).config == d0);  // nothing applied so far

  // MAC first, then the VLAN fails: the MAC stays (the kernel does not roll back).
  c = mac_cfg(mac);
  c.vlan = 5000;
  c.trust = true;
  auto r = h.k->set_vf("ens1f0", 0, c);
  CHECK(err(r) == EINVAL);
  CHECK(r.error().message.find("Invalid Port VLAN parameters for VF 0, ID 5000") != std::string::npos);
  auto now = h.k->get_vfs("ens1f0")->at(0).config;
  CHECK(now.mac == mac);
  CHECK(now.vlan == 0);
  CHECK(now.trust == false);
  // ice: the VF is reset and iavf takes the new MAC.
  CHECK(slurp(h.root() / "class/net/ens1f0v0/address") == "02:11:22:33:44:55\n");

  c = {};
  c.vlan = 0;
  c.qos = 3;  // IFLA_VF_VLAN with vlan 0, which ice accepts (priority tagging)
  CHECK(e(0, c) == 0);
  CHECK(h.k->get_vfs("ens1f0")->at(0).config.qos == 3);
  c = {};
  c.vlan = 100;
  c.qos = 3;
  c.vlan_proto = 0x88a8;  // ice in Double VLAN Mode
  c.max_tx_rate_mbps = 1000;
  c.min_tx_rate_mbps = 10;
  c.spoofchk = false;
  c.link_state = LinkState::disable;
  c.trust = true;
  CHECK(e(0, c) == 0);
  now = h.k->get_vfs("ens1f0")->at(0).config;
  CHECK(now.vlan == 100);
  CHECK(now.qos == 3);
  CHECK(now.vlan_proto == 0x88a8);
  CHECK(now.max_tx_rate_mbps == 1000);
  CHECK(now.min_tx_rate_mbps == 10);
  CHECK(now.spoofchk == false);
  CHECK(now.link_state == LinkState::disable);
  CHECK(now.trust == true);
  CHECK(h.k->get_vfs("ens1f0")->at(1).config == d0);
  // One VLAN attribute carries vlan, qos and protocol: unset ones are sent as 0 and 802.1Q.
  c = {};
  c.vlan = 200;
  CHECK(e(1, c) == 0);
  auto one = h.k->get_vfs("ens1f0")->at(1).config;
  CHECK(one.vlan == 200);
  CHECK(one.qos == 0);
  CHECK(one.vlan_proto == 0x8100);
  // Rates are one IFLA_VF_RATE: an unset one keeps its value.
  c = {};
  c.min_tx_rate_mbps = 20;
  CHECK(e(0, c) == 0);
  CHECK(h.k->get_vfs("ens1f0")->at(0).config.max_tx_rate_mbps == 1000);
  CHECK(h.k->get_vfs("ens1f0")->at(0).config.min_tx_rate_mbps == 20);
  c = {};
  c.max_tx_rate_mbps = 15;  // below the current min
  CHECK(e(0, c) == EINVAL);
  c.min_tx_rate_mbps = 0;
  CHECK(e(0, c) == 0);
  now = h.k->get_vfs("ens1f0")->at(0).config;

  // A new SimKernel (a restarted daemon) reads them back.
  SimKernel again(h.root());
  CHECK(again.get_vfs("ens1f0")->at(0).config == now);
  // Disabling SR-IOV frees them: new VFs start from the defaults.
  REQUIRE(err(again.write_attr(numvfs_path("0000:17:00.0"), "0")) == 0);
  CHECK(again.get_vfs("ens1f0")->empty());
  REQUIRE(err(again.write_attr(numvfs_path("0000:17:00.0"), "1")) == 0);
  CHECK(again.get_vfs("ens1f0")->at(0).config == d0);
}

TEST_CASE("set_vf: per-driver differences and netdevs that are not PFs") {
  Host h("dual-socket");
  VfConfig qinq;
  qinq.vlan = 10;
  qinq.vlan_proto = 0x88a8;
  CHECK(err(h.k->set_vf("ens3f0", 0, qinq)) == EPROTONOSUPPORT);  // mlx5: 802.1Q only
  VfConfig min;
  min.min_tx_rate_mbps = 10;
  CHECK(err(h.k->set_vf("ens2f0", 0, min)) == EINVAL);  // i40e: no min rate
  CHECK(err(h.k->set_vf("ens3f0", 0, min)) == 0);
  VfConfig link;
  link.link_state = LinkState::enable;
  CHECK(err(h.k->set_vf("ens3f0", 7, link)) == 0);
  CHECK(err(h.k->set_vf("ens3f0", 8, link)) == EINVAL);
  // A VF's own netdev (iavf has no ndo_set_vf_*): EOPNOTSUPP.
  CHECK(err(h.k->set_vf("ens2f0v0", 0, link)) == EOPNOTSUPP);
  CHECK(h.k->get_vfs("ens2f0v0")->empty());
  // igb on an I210 has the ops but no VFs: the driver's VF check says EINVAL.
  CHECK(err(h.k->set_vf("eno1", 0, mac_cfg({0x02, 0, 0, 0, 0, 1}))) == EINVAL);
  CHECK(h.k->get_vfs("eno1")->empty());
  CHECK(err(h.k->set_vf("nosuch0", 0, link)) == ENODEV);
  CHECK(h.k->get_vfs("nosuch0").error().errnum == ENODEV);
  CHECK(h.k->get_vfs("ens3f0")->size() == 8);
  CHECK(h.k->get_vfs("ens1f1")->empty());
}

TEST_CASE("get_link: up from flags, addresses and routes from the sim") {
  Host h("minimal");
  auto l = h.k->get_link("enp1s0f0");
  REQUIRE(l.ok());
  CHECK(l->ifname == "enp1s0f0");
  CHECK(l->ifindex == std::stoi(slurp(h.root() / "class/net/enp1s0f0/ifindex")));
  CHECK(l->up);
  CHECK(l->addresses.empty());
  CHECK(l->routes == 0);
  REQUIRE(h.k->set_link_addresses("enp1s0f0", {"192.0.2.1/24", "2001:db8::1/64"}, 2).ok());
  REQUIRE(err(h.k->write_attr("class/net/enp1s0f0/flags", "0x1002\n")) == 0);
  l = h.k->get_link("enp1s0f0");
  CHECK(!l->up);
  CHECK(l->addresses == std::vector<std::string>{"192.0.2.1/24", "2001:db8::1/64"});
  CHECK(l->routes == 2);
  CHECK(h.k->get_link("nope0").error().errnum == ENODEV);
  CHECK(h.k->set_link_addresses("nope0", {}, 0).error().errnum == ENODEV);
  // A new VF netdev starts down.
  REQUIRE(err(h.k->write_attr(numvfs_path("0000:01:00.0"), "1")) == 0);
  l = h.k->get_link("enp1s0f0v0");
  REQUIRE(l.ok());
  CHECK(!l->up);
  CHECK(l->ifindex > 0);
}

TEST_CASE("set_mtu: within ETH_MIN_MTU and the driver's max_mtu, as dev_validate_mtu answers") {
  Host h("dual-socket");
  REQUIRE(h.k->set_mtu("ens3f0", 9978).ok());  // mlx5_core's largest
  CHECK(slurp(h.root() / "class/net/ens3f0/mtu") == "9978\n");
  auto big = h.k->set_mtu("ens3f0", 9979);
  CHECK(err(big) == EINVAL);
  CHECK(big.error().message.find("mtu greater than device maximum") != std::string::npos);
  CHECK(err(h.k->set_mtu("ens1f0", 9703)) == EINVAL);  // ice: 9702
  CHECK(err(h.k->set_mtu("ens3f0", 67)) == EINVAL);
  CHECK(slurp(h.root() / "class/net/ens3f0/mtu") == "9978\n");
  CHECK(err(h.k->set_mtu("nosuch0", 1500)) == ENODEV);
}

TEST_CASE("set_vf: qos or protocol without a vlan, as LinuxKernel and the PF drivers answer") {
  Host h("dual-socket");
  REQUIRE(err(h.k->write_attr(numvfs_path("0000:17:00.0"), "2")) == 0);
  // No vlan at all: refused before the netdev is looked up, EINVAL naming the field, exactly as
  // LinuxKernel refuses it before sending a request (IFLA_VF_VLAN carries all three).
  VfConfig q;
  q.qos = 3;
  auto r = h.k->set_vf("ens1f0", 0, q);
  REQUIRE_FALSE(r);
  CHECK(r.error().errnum == EINVAL);
  CHECK(r.error().field == "qos");
  CHECK(h.k->set_vf("nosuch0", 0, q).error().field == "qos");
  VfConfig p;
  p.vlan_proto = 0x88a8;
  CHECK(h.k->set_vf("ens1f0", 0, p).error().field == "vlan_proto");
  CHECK(h.k->get_vfs("ens1f0")->at(0).config.qos == 0);
  // vlan 0 with a qos: a priority tag, which do_setvfinfo passes on and every driver takes.
  VfConfig tag;
  tag.vlan = 0;
  tag.qos = 5;
  REQUIRE(h.k->set_vf("ens1f0", 0, tag).ok());
  CHECK(h.k->get_vfs("ens1f0")->at(0).config.vlan == 0);
  CHECK(h.k->get_vfs("ens1f0")->at(0).config.qos == 5);
  // 802.1ad with vlan 0: the driver's protocol check decides (i40e takes 802.1Q only; ice
  // accepts it in Double VLAN Mode).
  VfConfig ad;
  ad.vlan = 0;
  ad.vlan_proto = 0x88a8;
  CHECK(err(h.k->set_vf("ens2f0", 0, ad)) == EPROTONOSUPPORT);
  CHECK(err(h.k->set_vf("ens1f0", 1, ad)) == 0);
}

TEST_CASE("set_vf: igb limits VF rates on the 82576 only, and only while the link is up") {
  Host h("igb");
  // 82576 (2 VFs enabled by the profile): a rate within the link speed, with the link up.
  VfConfig rate;
  rate.max_tx_rate_mbps = 300;
  REQUIRE(h.k->set_vf("enp1s0", 1, rate).ok());
  CHECK(h.k->get_vfs("enp1s0")->at(1).config.max_tx_rate_mbps == 300);
  rate.max_tx_rate_mbps = 1001;  // igb_link_mbps: 1000 on a gigabit link
  CHECK(err(h.k->set_vf("enp1s0", 1, rate)) == EINVAL);
  VfConfig min;
  min.max_tx_rate_mbps = 500;
  min.min_tx_rate_mbps = 10;
  CHECK(err(h.k->set_vf("enp1s0", 1, min)) == EINVAL);
  // No carrier (E1000_STATUS_LU clear): EINVAL for any rate, 0 too; the earlier one stays.
  REQUIRE(err(h.k->write_attr("class/net/enp1s0/carrier", "0\n")) == 0);
  rate.max_tx_rate_mbps = 100;
  auto r = h.k->set_vf("enp1s0", 1, rate);
  CHECK(err(r) == EINVAL);
  CHECK(r.error().message.find("link is down") != std::string::npos);
  rate.max_tx_rate_mbps = 0;
  CHECK(err(h.k->set_vf("enp1s0", 1, rate)) == EINVAL);
  CHECK(h.k->get_vfs("enp1s0")->at(1).config.max_tx_rate_mbps == 300);
  // The I350 has the ops but no rate limits: EOPNOTSUPP before anything else is looked at.
  REQUIRE(err(h.k->write_attr(numvfs_path("0000:03:00.0"), "2")) == 0);
  rate.max_tx_rate_mbps = 100;
  CHECK(err(h.k->set_vf("enp3s0", 0, rate)) == EOPNOTSUPP);
  CHECK(err(h.k->set_vf("enp3s0", 0, min)) == EOPNOTSUPP);
  CHECK(h.k->get_vfs("enp3s0")->at(0).config.max_tx_rate_mbps == 0);
}

TEST_CASE("igb: a VF count change takes the PF's link away for the settle time, and wait_carrier sees it back") {
  Host h("igb");
  auto carrier = [&] { return slurp(h.root() / "class/net/enp1s0/carrier"); };
  // No settle time set: the link stays.
  REQUIRE(err(h.k->write_attr(numvfs_path("0000:01:00.0"), "0")) == 0);
  CHECK(carrier() == "1\n");
  REQUIRE(h.k->set_link_settle(std::chrono::seconds(2)).ok());
  CHECK(slurp(h.root() / sim::kLinkSettleFile) == "2000\n");
  REQUIRE(err(h.k->write_attr(numvfs_path("0000:01:00.0"), "2")) == 0);
  CHECK(carrier() == "0\n");
  CHECK(slurp(h.root() / "class/net/enp1s0/operstate") == "down\n");
  VfConfig rate;
  rate.max_tx_rate_mbps = 100;
  CHECK(err(h.k->set_vf("enp1s0", 0, rate)) == EINVAL);
  // Back only after the wait asked for: false at once.
  auto short_wait = h.k->wait_carrier("enp1s0", std::chrono::milliseconds(1));
  REQUIRE(short_wait.ok());
  CHECK_FALSE(*short_wait);
  // Another SimKernel on the tree (a restarted daemon) sees the same link and waits for it.
  SimKernel other(h.root());
  auto back = other.wait_carrier("enp1s0", std::chrono::seconds(20));
  REQUIRE(back.ok());
  CHECK(*back);
  CHECK(carrier() == "1\n");
  CHECK(slurp(h.root() / "class/net/enp1s0/operstate") == "up\n");
  CHECK_FALSE(fs::exists(h.root() / "class/net/enp1s0" / sim::kLinkBackFile));
  CHECK(err(h.k->set_vf("enp1s0", 0, rate)) == 0);
  // The I350 (enp3s0) is down: igb reopens only a running netdev, and no wait is any use.
  REQUIRE(err(h.k->write_attr("class/net/enp3s0/flags", "0x1002\n")) == 0);
  REQUIRE(err(h.k->write_attr(numvfs_path("0000:03:00.0"), "2")) == 0);
  CHECK_FALSE(fs::exists(h.root() / "class/net/enp3s0" / sim::kLinkBackFile));
  auto down = h.k->wait_carrier("enp3s0", std::chrono::seconds(20));
  REQUIRE(down.ok());
  CHECK_FALSE(*down);
  // A carrier lost with nothing to bring it back: false at once.
  REQUIRE(err(h.k->write_attr("class/net/enp1s0/carrier", "0\n")) == 0);
  auto lost = h.k->wait_carrier("enp1s0", std::chrono::seconds(20));
  REQUIRE(lost.ok());
  CHECK_FALSE(*lost);
  CHECK(h.k->wait_carrier("nosuch0", std::chrono::seconds(1)).error().errnum == ENODEV);
}

TEST_CASE("altnames: added as ip link property add does, refused when taken, read back in order") {
  Host h("dual-socket");
  CHECK(h.k->get_altnames("ens2f0")->empty());
  REQUIRE(h.k->add_altname("ens2f0", "enp59s0f0np0").ok());
  REQUIRE(h.k->add_altname("ens2f0", "x710-port0").ok());
  CHECK(*h.k->get_altnames("ens2f0") == std::vector<std::string>{"enp59s0f0np0", "x710-port0"});
  CHECK(err(h.k->add_altname("ens3f0", "x710-port0")) == EEXIST);  // another netdev's altname
  CHECK(err(h.k->add_altname("ens3f0", "ens2f0")) == EEXIST);      // another netdev's name
  CHECK(err(h.k->add_altname("ens3f0", "a/b")) == EINVAL);
  CHECK(err(h.k->add_altname("nosuch0", "y")) == ENODEV);
  CHECK(h.k->get_altnames("nosuch0").error().errnum == ENODEV);
}
