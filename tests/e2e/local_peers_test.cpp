// Peers over the local transport, end to end (issue 4 "Done when", SPEC §6–§7): two real repos
// on this machine, each with its own real daemon, paired and driven through the real CLI.
//
// Every daemon runs with THRUM_TIME_SCALE=0.05 (see peer_env.hpp): link timers, backoff and the
// pairing expiry are 20× shorter so that restarts and outages resolve in well under a second.

#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "e2e/peer_env.hpp"
#include "support/helpers.hpp"
#include "support/raw_http.hpp"
#include "support/rpc_socket.hpp"
#include "thrum/core/sqlite.hpp"

namespace thrum::test {
namespace {

namespace fs = std::filesystem;

// -- The brief's scenario --------------------------------------------------------------------

TEST_F(MainAndApi, BriefScenarioSendReplyOneThreadAndReadReceipt) {
  Pairing p;
  ASSERT_NO_FATAL_FAILURE(pair(api_, main_, &p));
  // Both sides print the brief's line.
  EXPECT_TRUE(std::regex_search(
      p.add.out, std::regex(R"(Paired with "main" \(127\.0\.0\.1:\d+\)\. Syncing started\.)")))
      << p.add.out;
  EXPECT_TRUE(std::regex_search(
      p.join.out, std::regex(R"(Paired with "api" \(127\.0\.0\.1:\d+\)\. Syncing started\.)")))
      << p.join.out;
  EXPECT_NE(p.add.out.find("Waiting for connection...\n\nShare this with the other machine:\n"
                           "  thrum peer join --type local --peercode api:127.0.0.1:"),
            std::string::npos)
      << p.add.out;

  auto cfg = main_.thrum({"peer", "configure", "api", "add-agent", "reviewer"});
  ASSERT_EQ(cfg.exit_code, 0) << cfg.out << cfg.err;
  EXPECT_NE(cfg.out.find("✓ api: add-agent reviewer"), std::string::npos) << cfg.out;

  // No restart needed: the proxy takes a message at once.
  auto sent = main_.thrum({"send", "Auth module ready for review", "--to", "@api:reviewer"},
                          TempRepo::as("coordinator_main"));
  ASSERT_EQ(sent.exit_code, 0) << sent.out << sent.err;
  std::smatch mm;
  ASSERT_TRUE(std::regex_search(sent.out, mm, std::regex(R"(Message sent: (msg_[0-9A-Za-z]+))")))
      << sent.out;
  const std::string original = mm[1];

  // The reviewer gets it, authored by main's prefix:sender.
  ASSERT_TRUE(wait_reviewer_total(1)) << peer_state(main_, "api");
  // main records the acknowledgement with its next commit, or within 5 ms (Store::kDeferredWait).
  EXPECT_TRUE(wait_until([&] { return sent_state(original) == "delivered"; }, 10s))
      << sent_state(original);
  auto inbox = j(api_, "reviewer", {"inbox"});  // shows it, and so marks it read
  ASSERT_EQ(inbox["messages"].size(), 1u) << inbox.dump(2);
  const json& got = inbox["messages"][0];
  EXPECT_EQ(got["author"], "main:coordinator_main");
  EXPECT_EQ(got["body"], "Auth module ready for review");
  const std::string remote_copy = got["message_id"].get<std::string>();

  // Read receipt: the sender's `sent` shows read.
  EXPECT_TRUE(wait_until([&] { return sent_state(original) == "read"; }, 10s))
      << sent_state(original);

  // Reply from the api side: goes back to main, into the same thread.
  auto reply = api_.thrum({"reply", remote_copy, "LGTM, merging"}, TempRepo::as("reviewer"));
  ASSERT_EQ(reply.exit_code, 0) << reply.out << reply.err;

  json reply_seen;
  ASSERT_TRUE(wait_until(
      [&] {
        auto box = j(main_, "coordinator_main", {"inbox", "--unread"});
        for (const auto& m : box["messages"])
          if (m.value("body", "") == "LGTM, merging") reply_seen = m;
        return reply_seen.is_object();
      },
      10s))
      << peer_state(main_, "api");
  EXPECT_EQ(reply_seen["author"], "api:reviewer");
  EXPECT_EQ(reply_seen["reply_to"], original)
      << "the reply must point at main's own copy of the original";

  // One thread on main: the original (in sent) and the reply (in the inbox) share a thread id.
  auto outbox = j(main_, "coordinator_main", {"sent"});
  json orig_in_sent;
  for (const auto& m : outbox["messages"])
    if (m.value("message_id", "") == original) orig_in_sent = m;
  ASSERT_TRUE(orig_in_sent.is_object()) << outbox.dump(2);
  ASSERT_TRUE(orig_in_sent["thread_id"].is_string()) << orig_in_sent.dump(2);
  EXPECT_EQ(reply_seen["thread_id"], orig_in_sent["thread_id"]);

  // One thread on api: reviewer's copy of the original and reviewer's reply (in sent) match.
  auto api_box = j(api_, "reviewer", {"inbox", "--unread"});  // nothing unread; use the full list
  auto api_all = j(api_, "reviewer", {"inbox", "--limit", "10"});
  ASSERT_EQ(api_all["messages"].size(), 1u) << api_all.dump(2);
  auto api_sent = j(api_, "reviewer", {"sent"});
  ASSERT_EQ(api_sent["messages"].size(), 1u) << api_sent.dump(2);
  EXPECT_TRUE(api_all["messages"][0]["thread_id"].is_string()) << api_all.dump(2);
  EXPECT_EQ(api_all["messages"][0]["thread_id"], api_sent["messages"][0]["thread_id"]);
  EXPECT_EQ(api_sent["messages"][0]["reply_to"], remote_copy);
  (void)api_box;

  // Replying again from main lands in the same thread on api (message map, both directions).
  auto again =
      main_.thrum({"--json", "reply", reply_seen["message_id"].get<std::string>(), "thanks"},
                  TempRepo::as("coordinator_main"));
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  ASSERT_TRUE(wait_reviewer_total(2));
  auto api_after = j(api_, "reviewer", {"inbox", "--limit", "10"});
  ASSERT_EQ(api_after["messages"].size(), 2u);
  EXPECT_EQ(api_after["messages"][0]["body"], "thanks");
  EXPECT_EQ(api_after["messages"][0]["thread_id"], api_sent["messages"][0]["thread_id"]);

  // And both peer lists show the other side.
  auto ml = main_.thrum({"peer", "list"});
  EXPECT_TRUE(std::regex_search(ml.out, std::regex(R"(\napi\s+127\.0\.0\.1:\d+\s+)"))) << ml.out;
  auto al = api_.thrum({"peer", "list"});
  EXPECT_TRUE(std::regex_search(al.out, std::regex(R"(\nmain\s+127\.0\.0\.1:\d+\s+)"))) << al.out;
}

TEST_F(MainAndApi, ProxyShowsInTeamAsActiveViaPeer) {
  ASSERT_NO_FATAL_FAILURE(pair_and_configure());
  std::string last;
  EXPECT_TRUE(wait_until(
      [&] {
        last = main_.thrum({"team"}).out;
        return std::regex_search(last,
                                 std::regex(R"(\napi:reviewer\s+reviewer\s+active \(via peer\))"));
      },
      10s))
      << last;
}

TEST_F(MainAndApi, EveryoneReachesEachPeerOnceWithoutLoops) {
  ASSERT_NO_FATAL_FAILURE(pair_and_configure());
  ASSERT_NO_FATAL_FAILURE(main_.register_agent("helper", "helper"));
  ASSERT_NO_FATAL_FAILURE(api_.register_agent("tester", "tester"));
  auto r =
      main_.thrum({"send", "standup in 5", "--to", "@everyone"}, TempRepo::as("coordinator_main"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // Both of api's agents get one copy each.
  ASSERT_TRUE(wait_reviewer_total(1)) << peer_state(main_, "api");
  auto tester = j(api_, "tester", {"inbox", "--unread"});
  EXPECT_TRUE(wait_until(
      [&] {
        return j(api_, "tester", {"inbox", "--unread"})["messages"].size() == 1;
      },
      5s))
      << tester.dump(2);
  // And nothing comes back around: main's helper has exactly the local copy, the sender none.
  auto from_api =
      api_.thrum({"send", "ack from api", "--to", "@everyone"}, TempRepo::as("reviewer"));
  ASSERT_EQ(from_api.exit_code, 0) << from_api.err;
  ASSERT_TRUE(wait_until(
      [&] {
        return j(main_, "coordinator_main", {"inbox", "--unread"})["messages"].size() == 1;
      },
      5s));
  auto helper = j(main_, "helper", {"inbox", "--unread"});
  ASSERT_EQ(helper["messages"].size(), 2u)
      << helper.dump(2);  // "standup in 5" (local) + "ack from api"
  auto coord = j(main_, "coordinator_main", {"inbox", "--unread"});
  ASSERT_EQ(coord["messages"].size(), 1u) << coord.dump(2);
  EXPECT_EQ(coord["messages"][0]["body"], "ack from api");
  EXPECT_EQ(coord["messages"][0]["author"], "api:reviewer");
  EXPECT_EQ(reviewer_unread()["messages"].size(), 1u) << "reviewer got its own broadcast back";
}

// -- Restarts --------------------------------------------------------------------------------

TEST_F(MainAndApi, DialerRestartReconnectsWithoutRepairing) {
  ASSERT_NO_FATAL_FAILURE(pair_and_configure());
  ASSERT_NO_FATAL_FAILURE(main_.stop_daemon());
  ASSERT_NO_FATAL_FAILURE(start(main_));

  auto list = main_.thrum({"peer", "list"});
  EXPECT_NE(list.out.find("\napi "), std::string::npos) << list.out;
  ASSERT_TRUE(wait_peer_state(main_, "api", "connected")) << peer_state(main_, "api");
  EXPECT_TRUE(wait_peer_state(api_, "main", "connected")) << peer_state(api_, "main");

  const std::string id = send_to_reviewer("after dialer restart");
  ASSERT_TRUE(wait_reviewer_total(1)) << peer_state(main_, "api");
  EXPECT_EQ(reviewer_unread()["messages"][0]["body"], "after dialer restart");
  EXPECT_TRUE(wait_until([&] { return sent_state(id) == "delivered"; }, 5s)) << sent_state(id);
}

TEST_F(MainAndApi, ListenerRestartReconnectsWithoutRepairing) {
  ASSERT_NO_FATAL_FAILURE(pair_and_configure());
  ASSERT_NO_FATAL_FAILURE(api_.stop_daemon());
  ASSERT_NO_FATAL_FAILURE(start(api_));

  auto list = api_.thrum({"peer", "list"});
  EXPECT_NE(list.out.find("\nmain "), std::string::npos) << list.out;
  ASSERT_TRUE(wait_peer_state(main_, "api", "connected")) << peer_state(main_, "api");
  EXPECT_TRUE(wait_peer_state(api_, "main", "connected")) << peer_state(api_, "main");

  const std::string id = send_to_reviewer("after listener restart");
  ASSERT_TRUE(wait_reviewer_total(1)) << peer_state(main_, "api");
  EXPECT_EQ(reviewer_unread()["messages"][0]["body"], "after listener restart");
  EXPECT_TRUE(wait_until([&] { return sent_state(id) == "delivered"; }, 5s)) << sent_state(id);
}

TEST_F(MainAndApi, DialerFollowsListenerToNewWsPort) {
  ASSERT_NO_FATAL_FAILURE(pair_and_configure());
  const auto old_port = read_ws_port(api_.var());
  ASSERT_TRUE(old_port);
  ASSERT_NO_FATAL_FAILURE(api_.stop_daemon());
  unsigned short new_port = 0;
  do new_port = free_port();
  while (new_port == *old_port);
  ASSERT_NO_FATAL_FAILURE(start(api_, {{"THRUM_WS_PORT", std::to_string(new_port)}}));
  ASSERT_EQ(read_ws_port(api_.var()), new_port);

  ASSERT_TRUE(wait_peer_state(main_, "api", "connected")) << peer_state(main_, "api");
  auto rec = peer_record(main_, "api");
  EXPECT_EQ(rec.value("address", ""), "127.0.0.1:" + std::to_string(new_port)) << rec.dump();

  const std::string id = send_to_reviewer("on the new port");
  ASSERT_TRUE(wait_reviewer_total(1)) << peer_state(main_, "api");
  EXPECT_EQ(reviewer_unread()["messages"][0]["body"], "on the new port");
  EXPECT_TRUE(wait_until([&] { return sent_state(id) == "delivered"; }, 5s)) << sent_state(id);
}

TEST_F(MainAndApi, DialerOnANewWsPortIsLearnedByTheListener) {
  ASSERT_NO_FATAL_FAILURE(pair_and_configure());
  const auto old_port = read_ws_port(main_.var());
  ASSERT_TRUE(old_port);
  ASSERT_NO_FATAL_FAILURE(main_.stop_daemon());
  unsigned short new_port = 0;
  do new_port = free_port();
  while (new_port == *old_port);
  ASSERT_NO_FATAL_FAILURE(start(main_, {{"THRUM_WS_PORT", std::to_string(new_port)}}));
  // The listener keeps the dialer's current address (port only: the IP stays 127.0.0.1), which
  // is where it announces its own moves.
  const std::string want = "127.0.0.1:" + std::to_string(new_port);
  EXPECT_TRUE(wait_until(
      [&] {
        auto rec = peer_record(api_, "main");
        return rec.is_object() && rec.value("address", "") == want;
      },
      10s))
      << peer_state(api_, "main");
}

TEST_F(MainAndApi, ListenerAnnouncesItsNewPortToTheDialer) {
  ASSERT_NO_FATAL_FAILURE(pair_and_configure());
  // main would also find api by re-reading ws.port; what this checks is that api itself tells
  // main (peer.address_changed with the token) and main accepts it under the local rule.
  ASSERT_NO_FATAL_FAILURE(api_.stop_daemon());
  unsigned short new_port = free_port();
  ASSERT_NO_FATAL_FAILURE(start(api_, {{"THRUM_WS_PORT", std::to_string(new_port)}}));
  const std::string want = "127.0.0.1:" + std::to_string(new_port);
  ASSERT_TRUE(wait_until(
      [&] {
        auto rec = peer_record(main_, "api");
        return rec.is_object() && rec.value("address", "") == want &&
               rec.value("state", "") == "connected";
      },
      10s))
      << peer_state(main_, "api");
  // api's log shows the change was told and accepted.
  EXPECT_TRUE(wait_until(
      [&] {
        return slurp(api_.var() / "daemon.log").find("address change accepted by peer=main") !=
               std::string::npos;
      },
      10s))
      << api_.daemon_log();
}

TEST_F(MainAndApi, ListenerThatForgotUsEndsInDriftAndRepairSaysWhy) {
  ASSERT_NO_FATAL_FAILURE(pair_and_configure());
  ASSERT_NO_FATAL_FAILURE(api_.stop_daemon());
  std::filesystem::remove(api_.var() / "peers.json");
  ASSERT_NO_FATAL_FAILURE(start(api_));
  ASSERT_TRUE(wait_peer_state(main_, "api", "drift_reconcile_failed", 20s))
      << peer_state(main_, "api");
  auto list = main_.thrum({"peer", "list"});
  EXPECT_NE(list.out.find("  `- drift detected - run: thrum peer join --type repair api"),
            std::string::npos)
      << list.out;
  auto rep = main_.thrum({"peer", "join", "--type", "repair", "api"});
  EXPECT_NE(rep.exit_code, 0);
  EXPECT_NE(rep.err.find("peer \"api\" no longer recognises our token; re-pair with 'thrum peer "
                         "add' on api and 'thrum peer join' here"),
            std::string::npos)
      << rep.out << rep.err;
  // Still flagged: a failed repair does not clear it.
  EXPECT_TRUE(wait_peer_state(main_, "api", "drift_reconcile_failed", 5s));
}

// -- No single message stops a link (issue 11 finding 5) --------------------------------------

TEST_F(MainAndApi, AMessageThatCannotFitALinkFrameIsRefusedAtSend) {
  // A 1 MiB body of control characters passes the 1 MiB body limit but escapes to ~6 MiB on the
  // wire, over the 4 MiB frame limit: the receiver closed, the sender redialled for ever, and
  // every later message to that peer waited.
  ASSERT_NO_FATAL_FAILURE(pair_and_configure());
  UnixRpcClient rpc(main_.var() / "thrum.sock");
  auto res = rpc.call("message.send",
                      {{"caller_agent_id", "coordinator_main"},
                       {"to", "@api:reviewer"},
                       {"content", std::string(1048576, '\x01')}},
                      30s);
  ASSERT_TRUE(res.contains("error")) << res.dump().substr(0, 300);
  const std::string msg = res["error"].value("message", "");
  EXPECT_NE(msg.find("too large for peer \"api\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("shorten it"), std::string::npos) << msg;
  EXPECT_TRUE(j(main_, "coordinator_main", {"sent"})["messages"].empty()) << "nothing is stored";
  // The link is untouched: the next message crosses at once.
  const std::string id = send_to_reviewer("after the big one");
  EXPECT_TRUE(wait_until([&] { return sent_state(id) == "delivered"; }, 10s))
      << peer_state(main_, "api");
}

TEST_F(MainAndApi, AnOutboxRowThatCannotFitAFrameIsFailedNotRetried) {
  // A row queued before the send-time check existed: failed with its reason, and the queue
  // behind it flows.
  ASSERT_NO_FATAL_FAILURE(pair_and_configure());
  ASSERT_NO_FATAL_FAILURE(api_.stop_daemon());
  const std::string big = send_to_reviewer("to be made too large");
  const std::string after = send_to_reviewer("behind it");
  ASSERT_NO_FATAL_FAILURE(main_.stop_daemon());
  {
    core::sql::Db db((main_.var() / "thrum.db").string());
    auto q = db.prepare("SELECT id, payload FROM outbox WHERE message_id=?1");
    q.bind(1, big);
    ASSERT_TRUE(q.step());
    const int64_t row = q.integer(0);
    const std::string text = q.text(1);
    const auto nl = text.find('\n');
    json wire = json::parse(text.substr(0, nl));
    std::string body;
    for (int i = 0; i < 5 * 1024 * 1024 / 6 + 1; ++i) body += '\x01';
    wire["body"] = body;
    db.prepare("UPDATE outbox SET payload=?1 WHERE id=?2")
        .bind(1, wire.dump() + text.substr(nl))
        .bind(2, row)
        .run();
  }
  ASSERT_NO_FATAL_FAILURE(start(main_));
  ASSERT_NO_FATAL_FAILURE(start(api_));
  EXPECT_TRUE(wait_until([&] { return sent_state(after) == "delivered"; }, 20s))
      << peer_state(main_, "api");
  EXPECT_EQ(sent_state(big), "failed");
  auto msg = j(main_, "coordinator_main", {"--json", "sent"});
  std::string reason;
  for (const auto& m : msg["messages"])
    if (m.value("message_id", "") == big) reason = m["recipients"][0].value("reason", "");
  EXPECT_NE(reason.find("too large to cross a peer link"), std::string::npos) << msg.dump(2);
  ASSERT_TRUE(wait_reviewer_total(1));
  EXPECT_EQ(reviewer_unread()["messages"][0]["body"], "behind it");
}

// -- Authentication on /peer ------------------------------------------------------------------

/// peers.json without the link's own bookkeeping (last_sync, last_seq move while a link is up):
/// what an unauthenticated request must never change. Compared, never printed (it holds tokens).
std::string registry_shape(const fs::path& peers_json) {
  auto doc = parse_json(slurp(peers_json));
  if (!doc.is_object()) return "(unreadable)";
  if (doc.contains("peers"))
    for (auto& p : doc["peers"]) {
      p.erase("last_sync");
      p.erase("last_seq");
    }
  return doc.dump();
}

/// How many "peer link refused" lines `r`'s daemon.log has.
size_t refusals_logged(const TempRepo& r) {
  const std::string log = r.daemon_log();
  size_t n = 0;
  for (size_t at = log.find("peer link refused"); at != std::string::npos;
       at = log.find("peer link refused", at + 1))
    ++n;
  return n;
}

TEST_F(MainAndApi, PeerEndpointRefusesWrongTokenWith401) {
  ASSERT_NO_FATAL_FAILURE(pair_and_configure());
  const fs::path peers_json = api_.var() / "peers.json";
  const std::string before = registry_shape(peers_json);
  ASSERT_NE(before, "(unreadable)");
  const auto port = read_ws_port(api_.var());
  ASSERT_TRUE(port);
  const size_t refused_before = refusals_logged(api_);

  // A well-formed token that api never issued.
  const std::string wrong(64, 'a');
  remember_secret(wrong);
  auto bad = raw_http_exchange(
      *port, websocket_upgrade_request(*port, "/peer", {{"Authorization", "Bearer " + wrong}}));
  EXPECT_EQ(bad.status, 401) << bad.raw;
  EXPECT_EQ(bad.raw.find(wrong), std::string::npos) << "the refusal echoes the token";

  // Logged, without the token.
  EXPECT_TRUE(wait_until([&] { return refusals_logged(api_) > refused_before; }, 5s))
      << api_.daemon_log();
  EXPECT_EQ(api_.daemon_log().find(wrong), std::string::npos);

  // Nothing changed: the registry is byte for byte the same and the real link is still up.
  EXPECT_TRUE(registry_shape(peers_json) == before) << "peers.json changed";
  EXPECT_EQ(peer_record(api_, "main").value("state", ""), "connected") << peer_state(api_, "main");
  const std::string id = send_to_reviewer("still linked");
  EXPECT_TRUE(wait_reviewer_total(1)) << peer_state(main_, "api");
  EXPECT_TRUE(wait_until([&] { return sent_state(id) == "delivered"; }, 5s));
}

TEST_F(MainAndApi, PeerEndpointRefusesNoTokenWhenNeverPairedWith401) {
  // No `peer add` has ever run on api: an upgrade without a token has nothing to pair with.
  const auto port = read_ws_port(api_.var());
  ASSERT_TRUE(port);
  auto none = raw_http_exchange(*port, websocket_upgrade_request(*port, "/peer"));
  EXPECT_EQ(none.status, 401) << none.raw;
  EXPECT_TRUE(wait_until([&] { return refusals_logged(api_) >= 1; }, 5s)) << api_.daemon_log();
  EXPECT_FALSE(std::filesystem::exists(api_.var() / "peers.json") &&
               !parse_json(slurp(api_.var() / "peers.json")).value("peers", json::array()).empty());
}

TEST_F(MainAndApi, PeerEndpointRefusesNoTokenAfterPairingFinishedWith401) {
  // api paired once; its pairing session is over (paired). A token-less upgrade now must be
  // refused like any other unauthenticated one: no session is in progress.
  ASSERT_NO_FATAL_FAILURE(pair_and_configure());
  const fs::path peers_json = api_.var() / "peers.json";
  const std::string before = registry_shape(peers_json);
  const auto port = read_ws_port(api_.var());
  ASSERT_TRUE(port);
  const size_t refused_before = refusals_logged(api_);

  auto none = raw_http_exchange(*port, websocket_upgrade_request(*port, "/peer"), 2s);
  EXPECT_EQ(none.status, 401) << none.raw;
  EXPECT_TRUE(wait_until([&] { return refusals_logged(api_) > refused_before; }, 3s))
      << api_.daemon_log();
  EXPECT_TRUE(registry_shape(peers_json) == before) << "peers.json changed";
  EXPECT_EQ(peer_record(api_, "main").value("state", ""), "connected") << peer_state(api_, "main");
}

// -- peer remove -------------------------------------------------------------------------------

TEST_F(MainAndApi, RemoveWhileLinkedDropsProxiesAndTellsTheOtherSide) {
  ASSERT_NO_FATAL_FAILURE(pair_and_configure());
  const std::string id = send_to_reviewer("before remove");
  ASSERT_TRUE(wait_reviewer_total(1));
  ASSERT_TRUE(wait_until([&] { return sent_state(id) == "delivered"; }, 5s));

  auto rm = main_.thrum({"peer", "remove", "api"});
  ASSERT_EQ(rm.exit_code, 0) << rm.out << rm.err;
  EXPECT_NE(rm.out.find("Removed peer \"api\". Dropped 0 queued messages."), std::string::npos)
      << rm.out;

  // Its proxies are gone at once: sending to one fails as an unknown recipient.
  auto send = main_.thrum({"send", "after remove", "--to", "@api:reviewer"},
                          TempRepo::as("coordinator_main"));
  EXPECT_NE(send.exit_code, 0) << send.out;
  EXPECT_NE(send.err.find("unknown recipient @api:reviewer"), std::string::npos) << send.err;
  EXPECT_EQ(main_.thrum({"peer", "list"}).out.find("\napi "), std::string::npos);

  // The other side was told, shows it, and is still healthy.
  EXPECT_TRUE(wait_peer_state(api_, "main", "removed by peer", 10s)) << peer_state(api_, "main");
  auto st = api_.thrum({"daemon", "status"});
  EXPECT_EQ(st.exit_code, 0) << st.out << st.err;
  EXPECT_TRUE(process_alive(api_.daemon_pid()));
  EXPECT_TRUE(wait_until([&] { return peer_record(main_, "api").is_null(); }, 2s));
}

TEST_F(MainAndApi, RemoveDropsAndCountsTheQueue) {
  ASSERT_NO_FATAL_FAILURE(pair_and_configure());
  ASSERT_NO_FATAL_FAILURE(api_.stop_daemon());
  for (int i = 0; i < 3; ++i) send_to_reviewer("queued " + std::to_string(i));
  ASSERT_EQ(peer_record(main_, "api").value("queued", -1), 3) << peer_state(main_, "api");

  auto rm = main_.thrum({"peer", "remove", "api"});
  ASSERT_EQ(rm.exit_code, 0) << rm.out << rm.err;
  EXPECT_NE(rm.out.find("Dropped 3 queued messages."), std::string::npos) << rm.out;

  // Nothing is delivered later, and api, back up, is not crashed by the refused link.
  ASSERT_NO_FATAL_FAILURE(start(api_));
  auto st = api_.thrum({"daemon", "status"});
  EXPECT_EQ(st.exit_code, 0) << st.out << st.err;
  auto send = main_.thrum({"send", "x", "--to", "@api:reviewer"}, TempRepo::as("coordinator_main"));
  EXPECT_NE(send.exit_code, 0);
  EXPECT_EQ(reviewer_unread()["messages"].size(), 0u);
}

TEST_F(MainAndApi, OutboxRowQueuedByAnOlderBuildIsStillDelivered) {
  // Older builds stored an outbox payload as one JSON object with the queued recipients inside;
  // this build stores "<wire params>\n<recipients>". A row left queued across the upgrade
  // must still go out, once, and settle its delivery row.
  ASSERT_NO_FATAL_FAILURE(pair_and_configure());
  ASSERT_NO_FATAL_FAILURE(api_.stop_daemon());
  const std::string id = send_to_reviewer("queued before the upgrade");
  ASSERT_FALSE(id.empty());
  ASSERT_NO_FATAL_FAILURE(main_.stop_daemon());
  {
    core::sql::Db db((main_.var() / "thrum.db").string());
    auto q = db.prepare("SELECT id, payload FROM outbox WHERE message_id=?1");
    q.bind(1, id);
    ASSERT_TRUE(q.step());
    const int64_t row = q.integer(0);
    const std::string text = q.text(1);
    const auto nl = text.find('\n');
    ASSERT_NE(nl, std::string::npos) << text;
    json old = json::parse(text.substr(0, nl));
    old["queued_recipients"] = json::parse(text.substr(nl + 1));
    ASSERT_EQ(old["queued_recipients"], json::array({"api:reviewer"})) << text;
    db.prepare("UPDATE outbox SET payload=?1 WHERE id=?2").bind(1, old.dump()).bind(2, row).run();
  }
  ASSERT_NO_FATAL_FAILURE(start(main_));
  ASSERT_NO_FATAL_FAILURE(start(api_));
  ASSERT_TRUE(wait_reviewer_total(1)) << peer_state(main_, "api");
  EXPECT_TRUE(wait_until([&] { return sent_state(id) == "delivered"; }, 5s)) << sent_state(id);
  auto box = reviewer_unread();
  ASSERT_EQ(box["messages"].size(), 1u) << box.dump(2);
  EXPECT_EQ(box["messages"][0]["body"], "queued before the upgrade");
}

}  // namespace
}  // namespace thrum::test
