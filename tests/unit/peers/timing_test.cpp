// Reconnect timing (core/src/timing.cpp): pure functions of (state, now, rng).
#include "thrum/core/timing.hpp"

#include <gtest/gtest.h>

namespace thrum::core::timing {
namespace {

using Clock = std::chrono::steady_clock;

TEST(Backoff, ALinkThatDiesRightAfterComingUpCountsAsAFailure) {
  // Issue 11 finding 5: a peer that accepted and closed at once was redialled ~6 times a second
  // for ever, because a link that came up reset nothing and counted nothing.
  Constants c;
  Backoff b;
  const auto t0 = Clock::now();
  for (int i = 0; i < 5; ++i) {
    b.healthy_since = t0 + std::chrono::seconds(i);
    on_disconnect(b, t0 + std::chrono::seconds(i) + std::chrono::milliseconds(50), c);
  }
  EXPECT_EQ(b.failures, 5);
  std::mt19937_64 rng(1);
  // Full jitter over 250 ms * 2^4 = 4 s: over many draws the delays use that range.
  long long most = 0;
  for (int i = 0; i < 200; ++i) most = std::max<long long>(most, next_delay(b, c, rng).count());
  EXPECT_GT(most, 2000);
}

TEST(Backoff, AHealthyLinkStartsOver) {
  Constants c;
  Backoff b;
  b.failures = 7;
  const auto t0 = Clock::now();
  b.healthy_since = t0;
  on_disconnect(b, t0 + c.healthy_reset, c);
  EXPECT_EQ(b.failures, 0);
}

TEST(Backoff, ALinkBetweenShortAndHealthyKeepsTheCount) {
  Constants c;
  Backoff b;
  b.failures = 3;
  const auto t0 = Clock::now();
  b.healthy_since = t0;
  on_disconnect(b, t0 + c.short_lived + std::chrono::seconds(1), c);
  EXPECT_EQ(b.failures, 3);
}

TEST(Backoff, QuarantineAfterTenFailuresProbesOncePerMinute) {
  Constants c;
  Backoff b;
  b.failures = c.quarantine_after;
  std::mt19937_64 rng(2);
  EXPECT_TRUE(quarantined(b, c));
  EXPECT_EQ(next_delay(b, c, rng), c.quarantine_probe);
}

}  // namespace
}  // namespace thrum::core::timing
