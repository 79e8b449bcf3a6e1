// The link state machine (peers/link_state.hpp): what `peer status` shows follows from events.
#include "peers/link_state.hpp"

#include <gtest/gtest.h>

namespace thrum::core::peers {
namespace {

using S = LinkState;
using E = LinkEvent;

TEST(LinkState, DialerCyclesThroughConnectingBackoffAndConnected) {
  S s = S::kIdle;
  s = next_state(s, E::kDial, true);
  EXPECT_EQ(s, S::kConnecting);
  s = next_state(s, E::kDialFailed, true);
  EXPECT_EQ(s, S::kBackoff);
  s = next_state(s, E::kDial, true);
  s = next_state(s, E::kLinkUp, true);
  EXPECT_EQ(s, S::kConnected);
  s = next_state(s, E::kLinkDown, true);
  EXPECT_EQ(s, S::kBackoff);
}

TEST(LinkState, ListenerWaitsForThePeerWhenTheLinkGoes) {
  EXPECT_EQ(next_state(S::kConnected, E::kLinkDown, false), S::kWaitingForPeer);
  EXPECT_EQ(next_state(S::kWaitingForPeer, E::kLinkUp, false), S::kConnected);
}

TEST(LinkState, QuarantineHoldsThroughFailedProbes) {
  S s = next_state(S::kBackoff, E::kQuarantine, true);
  EXPECT_EQ(s, S::kQuarantined);
  EXPECT_EQ(next_state(s, E::kDialFailed, true), S::kQuarantined);
  EXPECT_EQ(next_state(s, E::kLinkUp, true), S::kConnected);
}

TEST(LinkState, TokenRejectionIsTerminalUntilRepair) {
  S s = next_state(S::kConnecting, E::kTokenRejected, true);
  EXPECT_EQ(s, S::kDriftReconcileFailed);
  // Nothing but a repair (or a link that proved itself) leaves it.
  for (E e : {E::kDial, E::kDialFailed, E::kQuarantine, E::kLinkDown})
    EXPECT_EQ(next_state(s, e, true), S::kDriftReconcileFailed);
  EXPECT_EQ(next_state(s, E::kRepair, true), S::kConnecting);
  EXPECT_EQ(next_state(s, E::kRepair, false), S::kWaitingForPeer);
  EXPECT_EQ(next_state(s, E::kLinkUp, true), S::kConnected);
}

TEST(LinkState, APeerThatRemovedUsNeverLinksAgainWithoutRepair) {
  S s = next_state(S::kConnected, E::kRemovedByPeer, true);
  EXPECT_EQ(s, S::kRemovedByPeer);
  EXPECT_EQ(next_state(s, E::kLinkUp, true), S::kRemovedByPeer);
  EXPECT_EQ(next_state(s, E::kDial, true), S::kRemovedByPeer);
  EXPECT_EQ(next_state(s, E::kRepair, true), S::kConnecting);
}

TEST(LinkState, StatusTextRoundsTheBackoffUp) {
  using std::chrono::milliseconds;
  EXPECT_EQ(state_text(S::kBackoff, milliseconds(2001)), "backoff 3s");
  EXPECT_EQ(state_text(S::kBackoff, milliseconds(1000)), "backoff 1s");
  EXPECT_EQ(state_text(S::kBackoff, milliseconds(-5)), "backoff 0s");
  EXPECT_EQ(state_text(S::kDriftReconcileFailed), "drift_reconcile_failed");
  EXPECT_EQ(state_text(S::kWaitingForPeer), "waiting for peer");
}

}  // namespace
}  // namespace thrum::core::peers
