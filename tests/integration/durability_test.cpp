// Durability (issue 2, "Done when"): a send is acknowledged only once it is on disk. Four clients
// send concurrently, the daemon is killed with SIGKILL mid-stream, and after a restart every
// acknowledged message is there exactly once, with the id the client was given.
#include <signal.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/helpers.hpp"
#include "support/process.hpp"
#include "support/rpc_socket.hpp"
#include "support/temp_repo.hpp"

namespace thrum::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr int kClients = 4;
constexpr int kPerClient = 250;
constexpr int kKillAfterAcks = 400;

struct Ack {
  std::string body;
  std::string message_id;
};

/// Every message `agent` sent, by body, as the daemon reports it (message.outbox, newest first).
std::map<std::string, std::vector<std::string>> outbox_by_body(UnixRpcClient& c,
                                                               const std::string& agent) {
  auto r = c.call("message.outbox", {{"caller_agent_id", agent}, {"limit", 1000}}, 30s);
  std::map<std::string, std::vector<std::string>> out;
  EXPECT_TRUE(r.contains("result")) << r.dump();
  if (!r.contains("result")) return out;
  EXPECT_LE(r["result"]["total"].get<int>(), 1000) << "more rows than were ever sent";
  for (const auto& m : r["result"]["messages"])
    out[m["body"].get<std::string>()].push_back(m["message_id"].get<std::string>());
  return out;
}

/// The store configurations a daemon can run with (THRUM_STORE_COMMIT, THRUM_WAL_BATCH): each
/// must keep every acknowledged message through a kill, mid-write included.
using StoreEnv = std::map<std::string, std::string>;
class Durability : public ::testing::TestWithParam<StoreEnv> {};

TEST_P(Durability, EveryAcknowledgedSendSurvivesKill9ExactlyOnce) {
  TempRepo repo;
  repo.start_daemon(GetParam());
  repo.register_agent("sink");
  for (int c = 0; c < kClients; ++c) repo.register_agent("sender" + std::to_string(c));
  const int pid = repo.daemon_pid();
  ASSERT_GT(pid, 0);

  std::atomic<int> acks{0};
  std::atomic<bool> killed{false};
  std::mutex mu;
  std::vector<std::vector<Ack>> acked(kClients);
  std::vector<int> attempted(kClients, 0);
  std::vector<std::string> errors;

  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      const std::string agent = "sender" + std::to_string(c);
      UnixRpcClient conn(repo.var() / "thrum.sock");
      for (int i = 0; i < kPerClient; ++i) {
        const std::string body = "durable c" + std::to_string(c) + " #" + std::to_string(i);
        attempted[static_cast<size_t>(c)] = i + 1;
        auto r = conn.call("message.send",
                           {{"caller_agent_id", agent}, {"to", "@sink"}, {"content", body}}, 20s);
        if (r.is_discarded()) return;  // the daemon died: this send was never acknowledged
        if (!r.contains("result")) {
          std::lock_guard lk(mu);
          errors.push_back(r.dump());
          return;
        }
        acked[static_cast<size_t>(c)].push_back(
            Ack{body, r["result"]["message_id"].get<std::string>()});
        // The client that sees the 400th acknowledgement pulls the plug at once, so the kill
        // lands while every other client has a send in flight.
        if (acks.fetch_add(1) + 1 == kKillAfterAcks) {
          ::kill(pid, SIGKILL);
          killed = true;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  ASSERT_TRUE(errors.empty()) << "a send failed before the kill: " << errors.front();
  ASSERT_TRUE(killed) << "all sends finished before the kill; the test proved nothing";
  ASSERT_TRUE(wait_until([&] { return !process_alive(pid); }));

  int total_acked = 0;
  for (const auto& a : acked) total_acked += static_cast<int>(a.size());
  EXPECT_GE(total_acked, kKillAfterAcks);
  EXPECT_LT(total_acked, kClients * kPerClient) << "the kill was not mid-stream";

  auto restarted = repo.thrum({"daemon", "start"}, GetParam());
  ASSERT_EQ(restarted.exit_code, 0) << restarted.out << restarted.err << repo.daemon_log();

  UnixRpcClient check(repo.var() / "thrum.sock");
  int present = 0;
  for (int c = 0; c < kClients; ++c) {
    const std::string agent = "sender" + std::to_string(c);
    auto stored = outbox_by_body(check, agent);
    for (const auto& [body, ids] : stored)
      EXPECT_EQ(ids.size(), 1u) << "duplicated after restart: " << body;
    // Only what was attempted can exist (at most the one in flight beyond the acks).
    EXPECT_LE(stored.size(), static_cast<size_t>(attempted[static_cast<size_t>(c)]));
    EXPECT_GE(stored.size(), acked[static_cast<size_t>(c)].size());
    for (const auto& a : acked[static_cast<size_t>(c)]) {
      auto it = stored.find(a.body);
      if (it == stored.end()) {
        ADD_FAILURE() << "acknowledged but lost after kill -9: " << a.body << " (" << a.message_id
                      << ")";
        continue;
      }
      EXPECT_EQ(it->second.front(), a.message_id) << a.body;
      ++present;
    }
  }
  EXPECT_EQ(present, total_acked);

  // The recipient sees each acknowledged message exactly once as well.
  auto inbox = check.call("message.list", {{"caller_agent_id", "sink"}, {"limit", 1000}}, 30s);
  ASSERT_TRUE(inbox.contains("result")) << inbox.dump();
  std::map<std::string, int> seen;
  for (const auto& m : inbox["result"]["messages"]) ++seen[m["message_id"].get<std::string>()];
  for (const auto& [id, n] : seen) EXPECT_EQ(n, 1) << id;
  int acked_in_inbox = 0;
  for (const auto& per : acked)
    for (const auto& a : per) acked_in_inbox += seen.count(a.message_id) ? 1 : 0;
  EXPECT_EQ(acked_in_inbox, total_acked);
  EXPECT_GE(inbox["result"]["total"].get<int>(), total_acked);
}

INSTANTIATE_TEST_SUITE_P(StoreModes, Durability,
                         ::testing::Values(StoreEnv{}, StoreEnv{{"THRUM_WAL_BATCH", "off"}},
                                           StoreEnv{{"THRUM_STORE_COMMIT", "thread"}}),
                         [](const ::testing::TestParamInfo<StoreEnv>& p) -> std::string {
                           if (p.param.empty()) return "Defaults";
                           return p.param.count("THRUM_WAL_BATCH") ? "WalBatchOff" : "WriterThread";
                         });

}  // namespace
}  // namespace thrum::test
