#pragma once
// A peer's link state (SPEC §6.6 STATE) as a value with one transition function, so that what
// `peer status` shows follows from events instead of strings written from many places.

#include <chrono>
#include <string>

namespace thrum::core::peers {

enum class LinkState {
  kIdle,                  ///< nothing tried yet (auto_connect off, or just loaded)
  kConnecting,            ///< a dial or handshake is in flight
  kConnected,             ///< a link is up
  kBackoff,               ///< waiting to dial again
  kQuarantined,           ///< failed often: one probe per quarantine interval
  kWaitingForPeer,        ///< we are the listener and no link is up: the dialer will come
  kDriftReconcileFailed,  ///< the peer rejected our token: terminal until repair or re-pair
  kRemovedByPeer,         ///< the peer removed us: terminal until repair or re-pair
};

enum class LinkEvent {
  kDial,           ///< a dialer starts a dial
  kDialFailed,     ///< the dial or handshake failed (not a token rejection)
  kQuarantine,     ///< failed often enough to quarantine
  kLinkUp,         ///< a link came up (ours or theirs)
  kLinkDown,       ///< the link went away
  kTokenRejected,  ///< the other side does not know our token (HTTP 401)
  kRemovedByPeer,  ///< peer.removed arrived
  kRepair,         ///< the user ran `peer join --type repair`
};

/// The state after `e` in `s`, for a dialer (`dialer`) or a listener.
LinkState next_state(LinkState s, LinkEvent e, bool dialer);

/// What `peer status` prints: "connected", "backoff 3s" (`backoff_left` rounded up), ...
std::string state_text(LinkState s, std::chrono::milliseconds backoff_left = {});

}  // namespace thrum::core::peers
