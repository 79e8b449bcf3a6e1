#include "peers/boot_plan.hpp"

#include <algorithm>

namespace thrum::core::peers {

std::vector<BootStart> plan_boot_reconcile(const std::vector<BootCandidate>& peers,
                                           const timing::Constants& c) {
  // A zero or negative setting would divide by zero or start everything at once: one at a time
  // is the safe reading of a nonsense value.
  const int parallel = std::max(1, c.reconcile_parallel);
  std::vector<BootStart> plan;
  for (const auto& p : peers) {
    if (p.linked || p.dialing || p.removed_by_peer || p.token_rejected) continue;
    const auto group = static_cast<int>(plan.size()) / parallel;
    plan.push_back({p.name, group * c.boot_reconcile_delay});
  }
  return plan;
}

}  // namespace thrum::core::peers
