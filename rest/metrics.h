// Metrics: GET /metrics in the Prometheus text format, built with prometheus-cpp.
//
// Two kinds of figures. Operation counters and latency histograms live as long as the daemon
// (sriovd_operations_total, sriovd_operation_duration_seconds, by operation and result); every
// handler that changes the host reports through observe(). The host's state is read fresh at
// each scrape from the current snapshot — devices by kind and driver, VFs total/enabled per PF,
// IOMMU groups by viability, drift — plus per-VF traffic counters over rtnetlink (one
// RTM_GETLINK of each PF with VFs), named as the SR-IOV network metrics exporter names them
// (sriov_vf_rx_bytes, sriov_vf_tx_packets, ...{pf, vf, address, numa_node}) so dashboards
// written for it keep working; its camelCase `pciAddr` label is `address` here, the snake_case
// Prometheus asks for (promtool flags camelCase). Other parts of the daemon (pools and leases) add their gauges
// through collectors called at each scrape. Thread-safe: observe() and render() may run on any
// threads; collectors are added before serving.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/host_model.h"
#include "base/mutex.h"
#include "base/vf.h"

namespace prometheus {
class Registry;
template <typename T>
class Family;
class Counter;
class Histogram;
}  // namespace prometheus

namespace sriovd::rest {

class Metrics {
 public:
  Metrics();
  ~Metrics();

  // One finished operation: `result` is "ok" or the error's code ("conflict", "invalid"...).
  void observe(const std::string& operation, const std::string& result, std::chrono::duration<double> took);

  // One lease released through the API: `clean` when every attribute came back as wanted (the
  // lease's release_report), for sriovd_lease_releases_total{result="clean"|"differs"}.
  void count_release(bool clean);

  // Adds a collector that fills a per-scrape registry (gauges of pools, leases...).
  using Collector = std::function<void(prometheus::Registry&)>;
  void add_collector(Collector c) SRIOVD_EXCLUDES(mu_);

  // The text exposition. `vf_stats` reads one PF's VFs (with counters) over rtnetlink; null:
  // no per-VF traffic figures. `extra` adds gauges of the caller's own (open event streams).
  std::string render(const agent::Snapshot& snap,
                     const std::function<Result<std::vector<VfInfo>>(const std::string&)>& vf_stats,
                     const std::function<void(prometheus::Registry&)>& extra = {}) const SRIOVD_EXCLUDES(mu_);

 private:
  std::shared_ptr<prometheus::Registry> ops_;  // lives as long as the daemon
  prometheus::Family<prometheus::Counter>* ops_total_;
  prometheus::Family<prometheus::Histogram>* ops_seconds_;
  prometheus::Family<prometheus::Counter>* releases_;
  mutable Mutex mu_;
  std::vector<Collector> collectors_ SRIOVD_GUARDED_BY(mu_);
};

}  // namespace sriovd::rest
