#pragma once
// Which peers the boot reconcile starts, and when (SPEC §7.3): a pure function, so that its
// rules are unit-tested without a daemon (tests/unit/peers/boot_plan_test.cpp).

#include <string>
#include <vector>

#include "thrum/core/timing.hpp"

namespace thrum::core::peers {

/// What the boot reconcile needs to know of one paired peer.
struct BootCandidate {
  std::string name;
  bool linked = false;           ///< already has a link (it dialed us first)
  bool dialing = false;          ///< a dial is already under way
  bool removed_by_peer = false;  ///< the other side removed us: nothing to reconcile
  bool token_rejected = false;   ///< drift_reconcile_failed: terminal until repair or re-pair
};

struct BootStart {
  std::string name;
  timing::ms after;  ///< from the moment the settle wait (boot_reconcile_delay) ended
};

/// Peers that need a reconcile, in registry order, at most `c.reconcile_parallel` at the same
/// moment: the first group at once, each next group one `boot_reconcile_delay` later.
std::vector<BootStart> plan_boot_reconcile(const std::vector<BootCandidate>& peers,
                                           const timing::Constants& c);

}  // namespace thrum::core::peers
