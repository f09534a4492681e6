// The device choice sriovd-k8s offers kubelet in GetPreferredAllocation, as a pure function of the
// pool and kubelet's request, so it is tested without gRPC.
//
// Order of concerns: every must_include id first; then keep the whole allocation on one NUMA node
// when one node can hold it (the node of the must_include devices if they share one); then, on
// that node, either pack onto as few PFs as possible (policy pack: the PF whose free VFs fit the
// rest most tightly, leaving whole PFs free for later large requests) or spread over as many PFs
// as possible (policy spread: one VF per PF in turn, so one PF failing takes the fewest). Ties go
// to the lower address, so the answer is deterministic. Ids kubelet offers that are not pool
// members are used last. Stateless and thread-safe.
#pragma once

#include <string>
#include <vector>

#include "k8s/pool.h"

namespace sriovd::k8s {

std::vector<std::string> preferred_allocation(const Pool& pool, const std::vector<std::string>& available,
                                              const std::vector<std::string>& must_include, int size);

}  // namespace sriovd::k8s
