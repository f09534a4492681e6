#include "rest/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <map>
#include <sstream>

#include "rest/encode.h"

namespace sriovd::rest {

namespace {

// Sysfs writes take microseconds, a VF count change on real hardware up to seconds (igb resets
// its link, mlx5 loads firmware): buckets from 100 µs to 30 s.
const prometheus::Histogram::BucketBoundaries kBuckets = {0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05,
                                                          0.1,    0.5,    1,     5,     10,   30};

}  // namespace

Metrics::Metrics() : ops_(std::make_shared<prometheus::Registry>()) {
  ops_total_ = &prometheus::BuildCounter()
                    .Name("sriovd_operations_total")
                    .Help("Operations that change the host, by operation and result (ok or the error code).")
                    .Register(*ops_);
  ops_seconds_ = &prometheus::BuildHistogram()
                      .Name("sriovd_operation_duration_seconds")
                      .Help("How long operations that change the host took, by operation and result.")
                      .Register(*ops_);
  releases_ = &prometheus::BuildCounter()
                   .Name("sriovd_lease_releases_total")
                   .Help(
                       "Leases released through the API, by whether the device came back as wanted (clean) or "
                       "some attribute differs (see the release's release_report).")
                   .Register(*ops_);
  // Both series from the start, so a rate over them works before the first unclean release.
  releases_->Add({{"result", "clean"}});
  releases_->Add({{"result", "differs"}});
}

void Metrics::count_release(bool clean) { releases_->Add({{"result", clean ? "clean" : "differs"}}).Increment(); }

Metrics::~Metrics() = default;

void Metrics::observe(const std::string& operation, const std::string& result, std::chrono::duration<double> took) {
  const prometheus::Labels labels{{"operation", operation}, {"result", result}};
  ops_total_->Add(labels).Increment();
  ops_seconds_->Add(labels, kBuckets).Observe(took.count());
}

void Metrics::add_collector(Collector c) {
  MutexLock lock(mu_);
  collectors_.push_back(std::move(c));
}

std::string Metrics::render(const agent::Snapshot& snap,
                            const std::function<Result<std::vector<VfInfo>>(const std::string&)>& vf_stats,
                            const std::function<void(prometheus::Registry&)>& extra) const {
  prometheus::Registry now;
  auto& devices =
      prometheus::BuildGauge()
          .Name("sriovd_devices")
          .Help("PCI functions on the host, by kind (pf, vf, bridge, function) and bound driver (none: unbound).")
          .Register(now);
  auto& vfs_total =
      prometheus::BuildGauge().Name("sriovd_pf_total_vfs").Help("VFs a PF can have (sriov_totalvfs).").Register(now);
  auto& vfs_enabled =
      prometheus::BuildGauge().Name("sriovd_pf_enabled_vfs").Help("VFs a PF has enabled (sriov_numvfs).").Register(now);
  auto& groups = prometheus::BuildGauge()
                     .Name("sriovd_iommu_groups")
                     .Help("IOMMU groups, by whether they can be passed through (viable).")
                     .Register(now);
  auto& drift = prometheus::BuildGauge()
                    .Name("sriovd_reconcile_drift")
                    .Help("Desired-state items the host does not match (see /v1/host drift).")
                    .Register(now);

  std::map<std::pair<std::string, std::string>, double> by_kind;
  for (const auto& v : snap.devices) {
    const auto& d = v.device;
    by_kind[{device_kind(d), d.driver.value_or("none")}] += 1;
    if (d.sriov) {
      const prometheus::Labels pf{{"pf", d.address.to_string()},
                                  {"netdev", d.netdevs.empty() ? "" : d.netdevs.front()}};
      vfs_total.Add(pf).Set(d.sriov->total_vfs);
      vfs_enabled.Add(pf).Set(d.sriov->num_vfs);
    }
  }
  for (const auto& [k, n] : by_kind) devices.Add({{"kind", k.first}, {"driver", k.second}}).Set(n);
  double viable = 0, not_viable = 0;
  for (const auto& [n, g] : snap.groups) (g.verdict.viable ? viable : not_viable) += 1;
  groups.Add({{"viable", "true"}}).Set(viable);
  groups.Add({{"viable", "false"}}).Set(not_viable);
  drift.Add({}).Set(static_cast<double>(snap.drift.size()));

  if (vf_stats) {
    // The exporter's names and labels; its counters are exposed as gauges there too, and the
    // driver may reset them (a VF recreated starts from 0).
    struct Stat {
      const char* name;
      const char* help;
      uint64_t VfStats::*field;
    };
    static const Stat stats[] = {
        {"sriov_vf_rx_bytes", "Bytes received by the VF (IFLA_VF_STATS_RX_BYTES).", &VfStats::rx_bytes},
        {"sriov_vf_tx_bytes", "Bytes sent by the VF (IFLA_VF_STATS_TX_BYTES).", &VfStats::tx_bytes},
        {"sriov_vf_rx_packets", "Packets received by the VF.", &VfStats::rx_packets},
        {"sriov_vf_tx_packets", "Packets sent by the VF.", &VfStats::tx_packets},
        {"sriov_vf_rx_dropped", "Packets dropped on receipt by the VF.", &VfStats::rx_dropped},
        {"sriov_vf_tx_dropped", "Packets dropped on transmit by the VF.", &VfStats::tx_dropped},
        {"sriov_vf_broadcast", "Broadcast packets received by the VF.", &VfStats::broadcast},
        {"sriov_vf_multicast", "Multicast packets received by the VF.", &VfStats::multicast},
    };
    std::vector<prometheus::Family<prometheus::Gauge>*> fams;
    for (const auto& s : stats) fams.push_back(&prometheus::BuildGauge().Name(s.name).Help(s.help).Register(now));
    // VF address by (PF, index), from the snapshot.
    std::map<std::pair<PciAddress, int>, const pci::Device*> vf_at;
    for (const auto& v : snap.devices)
      if (v.device.physfn && v.device.vf_index) vf_at[{*v.device.physfn, *v.device.vf_index}] = &v.device;
    for (const auto& v : snap.devices) {
      const auto& pf = v.device;
      if (!pf.sriov || pf.sriov->num_vfs == 0 || pf.netdevs.empty()) continue;
      auto vfs = vf_stats(pf.netdevs.front());
      if (!vfs) continue;  // a PF driver without VF ops: no figures for it
      for (const auto& info : *vfs) {
        if (!info.stats) continue;
        auto it = vf_at.find({pf.address, static_cast<int>(info.index)});
        const pci::Device* vf = it == vf_at.end() ? nullptr : it->second;
        const prometheus::Labels labels{
            {"pf", pf.netdevs.front()},
            {"vf", std::to_string(info.index)},
            {"address", vf ? vf->address.to_string() : ""},
            {"numa_node", vf && vf->numa_node ? std::to_string(*vf->numa_node)
                                              : (pf.numa_node ? std::to_string(*pf.numa_node) : "-1")}};
        for (size_t i = 0; i < std::size(stats); ++i)
          fams[i]->Add(labels).Set(static_cast<double>((*info.stats).*stats[i].field));
      }
    }
  }
  if (extra) extra(now);
  {
    MutexLock lock(mu_);
    for (const auto& c : collectors_) c(now);
  }
  auto families = ops_->Collect();
  auto state = now.Collect();
  families.insert(families.end(), state.begin(), state.end());
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace sriovd::rest
