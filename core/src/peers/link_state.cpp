#include "peers/link_state.hpp"

namespace thrum::core::peers {

LinkState next_state(LinkState s, LinkEvent e, bool dialer) {
  const bool terminal = s == LinkState::kDriftReconcileFailed || s == LinkState::kRemovedByPeer;
  switch (e) {
    case LinkEvent::kRepair:
      return dialer ? LinkState::kConnecting : LinkState::kWaitingForPeer;
    case LinkEvent::kTokenRejected:
      return LinkState::kDriftReconcileFailed;
    case LinkEvent::kRemovedByPeer:
      return LinkState::kRemovedByPeer;
    case LinkEvent::kLinkUp:
      // A link that proved itself ends drift; a peer that removed us never links again.
      return s == LinkState::kRemovedByPeer ? s : LinkState::kConnected;
    default:
      break;
  }
  if (terminal) return s;
  switch (e) {
    case LinkEvent::kDial:
      return LinkState::kConnecting;
    case LinkEvent::kDialFailed:
      return s == LinkState::kQuarantined ? s : LinkState::kBackoff;
    case LinkEvent::kQuarantine:
      return LinkState::kQuarantined;
    case LinkEvent::kLinkDown:
      return dialer ? LinkState::kBackoff : LinkState::kWaitingForPeer;
    default:
      return s;
  }
}

std::string state_text(LinkState s, std::chrono::milliseconds backoff_left) {
  switch (s) {
    case LinkState::kIdle:
      return "idle";
    case LinkState::kConnecting:
      return "connecting";
    case LinkState::kConnected:
      return "connected";
    case LinkState::kBackoff:
      return "backoff " +
             std::to_string((std::max<long long>(0, backoff_left.count()) + 999) / 1000) + "s";
    case LinkState::kQuarantined:
      return "quarantined";
    case LinkState::kWaitingForPeer:
      return "waiting for peer";
    case LinkState::kDriftReconcileFailed:
      return "drift_reconcile_failed";
    case LinkState::kRemovedByPeer:
      return "removed by peer";
  }
  return "idle";
}

}  // namespace thrum::core::peers
