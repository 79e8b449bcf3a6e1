// Peers over the local transport when one side is down or killed (issue 4 "Done when", issue
// 16's deferred acknowledgements): what was acknowledged is delivered once, in order, whichever
// daemon dies and when. Real daemons in real repos, driven through the real CLI and socket.
//
// Every daemon runs with THRUM_TIME_SCALE=0.05 (see peer_env.hpp).
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "e2e/peer_env.hpp"
#include "support/helpers.hpp"
#include "support/rpc_socket.hpp"

namespace thrum::test {
namespace {

// -- Other side down: durable, ordered, exactly once -----------------------------------------

class Outage : public MainAndApi {
 protected:
  static constexpr int kCount = 1000;

  /// kCount sends from coordinator_main to @api:reviewer over one Unix-socket connection (the
  /// same message.send the CLI uses), bodies "m0000".."m0999". All must succeed.
  void send_all() {
    UnixRpcClient c(main_.var() / "thrum.sock");
    for (int i = 0; i < kCount; ++i) {
      char body[16];
      std::snprintf(body, sizeof body, "m%04d", i);
      auto r = c.call("message.send", {{"caller_agent_id", "coordinator_main"},
                                       {"content", body},
                                       {"to", json::array({"@api:reviewer"})}});
      ASSERT_TRUE(r.contains("result")) << "send " << i << ": " << r.dump();
      ids_.push_back(r["result"]["message_id"].get<std::string>());
    }
  }
  /// What the sender and `peer status` show while api is down: everything queued.
  void expect_all_queued() {
    auto sent = j(main_, "coordinator_main", {"sent", "--limit", "1000"});
    ASSERT_EQ(sent["messages"].size(), static_cast<size_t>(kCount));
    int queued = 0;
    for (const auto& m : sent["messages"])
      for (const auto& r : m["recipients"])
        if (r.value("agent_id", "") == "api:reviewer" && r.value("state", "") == "queued") ++queued;
    EXPECT_EQ(queued, kCount);
    auto rec = peer_record(main_, "api");
    EXPECT_EQ(rec.value("queued", -1), kCount) << rec.dump();
    EXPECT_NE(rec.value("state", ""), "connected") << rec.dump();
  }
  /// reviewer's inbox holds exactly m0000..m0999, once each, in order (inbox is newest first).
  void expect_exactly_once_in_order() {
    auto box = j(api_, "reviewer", {"inbox", "--limit", "1000"});
    std::vector<std::string> bodies;
    for (const auto& m : box["messages"]) bodies.push_back(m.value("body", ""));
    std::reverse(bodies.begin(), bodies.end());
    EXPECT_EQ(box.value("total", -1), kCount);
    std::set<std::string> unique(bodies.begin(), bodies.end());
    EXPECT_EQ(unique.size(), bodies.size()) << "duplicates delivered";
    ASSERT_EQ(bodies.size(), static_cast<size_t>(kCount));
    for (int i = 0; i < kCount; ++i) {
      char want[16];
      std::snprintf(want, sizeof want, "m%04d", i);
      if (bodies[static_cast<size_t>(i)] != want) {
        ADD_FAILURE() << "out of order at position " << i << ": got "
                      << bodies[static_cast<size_t>(i)] << ", want " << want;
        break;
      }
    }
  }
  /// How many messages reviewer has (read or not), straight from the daemon.
  static int64_t total_of(UnixRpcClient& c) {
    auto r = c.call(
        "message.list",
        {{"caller_agent_id", "reviewer"}, {"limit", 1}, {"unread", false}, {"mark_read", false}});
    return r.contains("result") ? r["result"].value("total", int64_t{-1}) : -1;
  }

  /// Queues kCount sends while api is down, starts api and SIGKILLs `victim`'s daemon once
  /// ~300 have arrived: delivery is cut short in the middle of the drain.
  void kill_mid_drain(TempRepo& victim) {
    ASSERT_NO_FATAL_FAILURE(api_.stop_daemon());
    ASSERT_NO_FATAL_FAILURE(send_all());
    ASSERT_NO_FATAL_FAILURE(expect_all_queued());
    ASSERT_NO_FATAL_FAILURE(start(api_));
    const int pid = victim.daemon_pid();
    int64_t seen = 0;
    {
      UnixRpcClient c(api_.var() / "thrum.sock");
      // Tight poll (no sleep): kill as soon as ~300 have arrived.
      auto deadline = std::chrono::steady_clock::now() + 60s;
      while (std::chrono::steady_clock::now() < deadline) {
        seen = total_of(c);
        if (seen >= 300) break;
      }
    }
    ASSERT_GE(seen, 300) << peer_state(main_, "api");
    ::kill(pid, SIGKILL);
    ASSERT_TRUE(wait_until([&] { return !process_alive(pid); }, 5s));
    // The scenario only means something if delivery was really cut short.
    EXPECT_LT(seen, kCount) << "all messages arrived before the kill; nothing was cut short";
  }
  /// After the restart: every message arrives, main's queue empties, once each, in order.
  void expect_drained_exactly_once() {
    ASSERT_TRUE(wait_reviewer_total(kCount, 60s)) << peer_state(main_, "api");
    EXPECT_TRUE(wait_until([&] { return peer_record(main_, "api").value("queued", -1) == 0; }, 10s))
        << peer_state(main_, "api");
    ASSERT_NO_FATAL_FAILURE(expect_exactly_once_in_order());
  }

  std::vector<std::string> ids_;
};

TEST_F(Outage, ThousandSendsQueueThenDeliverOnceInOrder) {
  ASSERT_NO_FATAL_FAILURE(pair_and_configure());
  ASSERT_NO_FATAL_FAILURE(api_.stop_daemon());
  ASSERT_NO_FATAL_FAILURE(send_all());
  ASSERT_NO_FATAL_FAILURE(expect_all_queued());

  ASSERT_NO_FATAL_FAILURE(start(api_));
  ASSERT_TRUE(wait_reviewer_total(kCount, 60s)) << peer_state(main_, "api");
  EXPECT_TRUE(wait_until([&] { return peer_record(main_, "api").value("queued", -1) == 0; }, 10s))
      << peer_state(main_, "api");
  // Give a duplicate the chance to show up before counting.
  EXPECT_TRUE(wait_peer_state(main_, "api", "connected"));
  ASSERT_NO_FATAL_FAILURE(expect_exactly_once_in_order());
  // The inbox above showed and so read them all; the receipts cross back in frames.
  EXPECT_TRUE(wait_until([&] { return sent_state(ids_.front()) == "read"; }, 10s))
      << sent_state(ids_.front());
}

TEST_F(Outage, ReceiverKilledMidDeliveryStillExactlyOnce) {
  ASSERT_NO_FATAL_FAILURE(pair_and_configure());
  ASSERT_NO_FATAL_FAILURE(kill_mid_drain(api_));
  ASSERT_NO_FATAL_FAILURE(start(api_));  // recovers the stale pid file and socket
  ASSERT_NO_FATAL_FAILURE(expect_drained_exactly_once());
}

TEST_F(Outage, SenderKilledWhileAcknowledgementsWaitToCommitStillExactlyOnce) {
  // The sender records a peer's acknowledgement with its next commit (or 5 ms later): killed
  // in between, it has not recorded them, sends those rows again after the restart, and the
  // receiver must recognise every one of them.
  ASSERT_NO_FATAL_FAILURE(pair_and_configure());
  ASSERT_NO_FATAL_FAILURE(kill_mid_drain(main_));
  ASSERT_NO_FATAL_FAILURE(start(main_));
  ASSERT_NO_FATAL_FAILURE(expect_drained_exactly_once());
  // And the sender's view agrees: every one delivered, none left queued or failed.
  auto sent = j(main_, "coordinator_main", {"sent", "--limit", "1000"});
  int delivered = 0;
  for (const auto& m : sent["messages"])
    for (const auto& r : m["recipients"])
      if (r.value("state", "") == "delivered" || r.value("state", "") == "read") ++delivered;
  EXPECT_EQ(delivered, kCount);
}

}  // namespace
}  // namespace thrum::test
