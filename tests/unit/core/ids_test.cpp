// Ids and timestamps: message/thread ids sort in creation order and never collide; timestamps
// survive a round trip through their text form.
#include "thrum/common/ids.hpp"

#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace thrum::core {
namespace {

using namespace std::chrono_literals;

bool is_crockford(const std::string& s) {
  static const std::string alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return alphabet.find(c) != std::string::npos; });
}

TEST(Ulid, Is26CrockfordCharacters) {
  for (int i = 0; i < 1000; ++i) {
    auto id = new_ulid();
    ASSERT_EQ(id.size(), 26u) << id;
    ASSERT_TRUE(is_crockford(id)) << id;
    ASSERT_LE(id[0], '7') << "128 bits in 26 digits: the first digit carries 3 bits";
  }
}

TEST(Ulid, UniqueAndStrictlyIncreasingOver100kInATightLoop) {
  std::vector<std::string> ids;
  ids.reserve(100000);
  for (int i = 0; i < 100000; ++i) ids.push_back(new_ulid());
  for (size_t i = 1; i < ids.size(); ++i)
    ASSERT_LT(ids[i - 1], ids[i]) << "at " << i << ": ids must sort in creation order";
  std::set<std::string> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), ids.size());
}

TEST(Ulid, UniqueAcrossThreads) {
  constexpr int kThreads = 4, kEach = 20000;
  std::vector<std::vector<std::string>> per(kThreads);
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      per[static_cast<size_t>(t)].reserve(kEach);
      for (int i = 0; i < kEach; ++i) per[static_cast<size_t>(t)].push_back(new_ulid());
    });
  for (auto& t : ts) t.join();
  std::set<std::string> all;
  for (const auto& v : per) {
    for (size_t i = 1; i < v.size(); ++i) ASSERT_LT(v[i - 1], v[i]);
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kEach));
}

TEST(Ulid, TimePrefixFollowsTheClock) {
  auto a = new_ulid();
  std::this_thread::sleep_for(3ms);
  auto b = new_ulid();
  EXPECT_LT(a.substr(0, 10), b.substr(0, 10)) << "the first 10 digits are the millisecond time";
}

TEST(Ids, PrefixedIdsHaveTheirKind) {
  EXPECT_EQ(new_message_id().rfind("msg_", 0), 0u);
  EXPECT_EQ(new_thread_id().rfind("thr_", 0), 0u);
  EXPECT_EQ(new_session_id().rfind("ses_", 0), 0u);
  EXPECT_EQ(new_daemon_id().rfind("d_", 0), 0u);
  EXPECT_EQ(new_message_id().size(), 4u + 26u);
}

TEST(Rfc3339, RoundTripsToTheMicrosecond) {
  const auto now = Clock::now();
  for (auto t : {now, now - 1h * 24 * 400, Clock::time_point{} + 1577836800s + 999999us,
                 Clock::time_point{} + 1577836800s}) {
    auto text = rfc3339(t);
    auto back = parse_rfc3339(text);
    ASSERT_TRUE(back.has_value()) << text;
    auto want = std::chrono::time_point_cast<std::chrono::microseconds>(t);
    EXPECT_EQ(std::chrono::time_point_cast<std::chrono::microseconds>(*back), want) << text;
  }
  EXPECT_EQ(rfc3339(Clock::time_point{} + 1577836800s + 5us), "2020-01-01T00:00:00.000005Z");
}

TEST(Rfc3339, EachStampIsRightWhateverWasFormattedBefore) {
  // The date-and-time part is reused within a second: going back and forth across seconds,
  // days and years must never print a stale one.
  const auto base = Clock::time_point{} + 1577836799s;  // 2019-12-31T23:59:59Z
  EXPECT_EQ(rfc3339(base + 999999us), "2019-12-31T23:59:59.999999Z");
  EXPECT_EQ(rfc3339(base + 1s), "2020-01-01T00:00:00.000000Z");
  EXPECT_EQ(rfc3339(base + 123us), "2019-12-31T23:59:59.000123Z");
  EXPECT_EQ(rfc3339(base + 1s + 42us), "2020-01-01T00:00:00.000042Z");
  EXPECT_EQ(rfc3339(base + 86401s), "2020-01-02T00:00:00.000000Z");
  EXPECT_EQ(rfc3339(base + 1s + 7us), "2020-01-01T00:00:00.000007Z");
}

TEST(Rfc3339, SecondsFormRoundTripsAndSortsAsText) {
  const auto t = Clock::time_point{} + 1800000000s;
  EXPECT_EQ(rfc3339_seconds(t), "2027-01-15T08:00:00Z");
  auto back = parse_rfc3339(rfc3339_seconds(t));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, t);
  EXPECT_LT(rfc3339(t), rfc3339(t + 1us));
  EXPECT_LT(rfc3339(t + 999999us), rfc3339(t + 1s));
}

TEST(Rfc3339, RejectsTextWithoutZ) {
  EXPECT_FALSE(parse_rfc3339("2026-11-27T16:30:00").has_value());
  EXPECT_FALSE(parse_rfc3339("2026-11-27T16:30:00+02:00").has_value());
  EXPECT_FALSE(parse_rfc3339("yesterday").has_value());
  EXPECT_FALSE(parse_rfc3339("").has_value());
}

TEST(CompactTimestamp, IsFileNameSafe) {
  auto ts = compact_utc_timestamp();
  EXPECT_EQ(ts.size(), 16u) << ts;
  EXPECT_EQ(ts[8], 'T');
  EXPECT_EQ(ts.back(), 'Z');
  EXPECT_EQ(ts.find_first_of(":/ "), std::string::npos);
}

TEST(SecureRandom, FillsTheBuffer) {
  std::vector<unsigned char> a(64, 0), b(64, 0);
  secure_random_bytes(a.data(), a.size());
  secure_random_bytes(b.data(), b.size());
  EXPECT_NE(a, b);
  EXPECT_NE(a, std::vector<unsigned char>(64, 0));
}

}  // namespace
}  // namespace thrum::core
