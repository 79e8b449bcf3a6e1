// The boot reconcile's plan (SPEC §7.3): after the settle wait, every paired peer without a
// link is reconciled, at most reconcile_parallel at a time, the rest one wait per group later;
// a peer whose token was rejected, that removed us, or that is already linked or dialing is
// left alone.
#include "peers/boot_plan.hpp"

#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace thrum::core::peers {
namespace {

using timing::ms;

std::vector<BootCandidate> idle_peers(int n) {
  std::vector<BootCandidate> v;
  for (int i = 0; i < n; ++i) v.push_back({"peer-" + std::to_string(i)});
  return v;
}

TEST(BootPlan, TenIdlePeersStartFourAtATimeOneWaitApart) {
  timing::Constants c;  // the documented numbers: 2 s, 4 in parallel
  const auto plan = plan_boot_reconcile(idle_peers(10), c);
  ASSERT_EQ(plan.size(), 10u);
  for (std::size_t i = 0; i < plan.size(); ++i) {
    EXPECT_EQ(plan[i].name, "peer-" + std::to_string(i)) << "registry order is kept";
    EXPECT_EQ(plan[i].after, ms(2000) * static_cast<int>(i / 4)) << plan[i].name;
  }
  // Never more than four at the same moment.
  std::map<long long, int> at;
  for (const auto& s : plan) ++at[s.after.count()];
  for (const auto& [when, n] : at) EXPECT_LE(n, 4) << "at +" << when << " ms";
}

TEST(BootPlan, PeersThatNeedNoReconcileAreSkippedAndTakeNoSlot) {
  timing::Constants c;
  std::vector<BootCandidate> peers = idle_peers(6);
  peers[0].linked = true;           // dialed us before the settle wait ended
  peers[1].dialing = true;          // already being dialed
  peers[2].token_rejected = true;   // drift_reconcile_failed: only repair or re-pair clears it
  peers[3].removed_by_peer = true;  // the other side removed us
  const auto plan = plan_boot_reconcile(peers, c);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].name, "peer-4");
  EXPECT_EQ(plan[1].name, "peer-5");
  EXPECT_EQ(plan[0].after, ms(0));
  EXPECT_EQ(plan[1].after, ms(0)) << "skipped peers do not use up one of the four slots";
}

TEST(BootPlan, FollowsTheConfiguredParallelismAndWait) {
  timing::Constants c;
  c.reconcile_parallel = 2;
  c.boot_reconcile_delay = ms(100);  // what THRUM_TIME_SCALE=0.05 makes of 2 s
  const auto plan = plan_boot_reconcile(idle_peers(5), c);
  ASSERT_EQ(plan.size(), 5u);
  EXPECT_EQ(plan[1].after, ms(0));
  EXPECT_EQ(plan[2].after, ms(100));
  EXPECT_EQ(plan[4].after, ms(200));
}

TEST(BootPlan, ANonsenseParallelismStartsOneAtATimeInsteadOfDividingByZero) {
  timing::Constants c;
  c.reconcile_parallel = 0;
  const auto plan = plan_boot_reconcile(idle_peers(3), c);
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[2].after, ms(4000));
}

TEST(BootPlan, NoPeersNoPlan) {
  EXPECT_TRUE(plan_boot_reconcile({}, timing::Constants{}).empty());
}

}  // namespace
}  // namespace thrum::core::peers
