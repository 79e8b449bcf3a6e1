// Messaging through a real daemon with the real CLI (SPEC §5): what agents see in their inboxes
// and outboxes, threads, broadcast, refusals, wait, and which identity the CLI acts as.
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/helpers.hpp"
#include "support/process.hpp"
#include "support/rpc_socket.hpp"
#include "support/temp_repo.hpp"

namespace thrum::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

class Messaging : public ::testing::Test {
 protected:
  /// `thrum --json args...` as `agent`; fails the test unless it exits 0 with a JSON document.
  json j(const std::string& agent, std::vector<std::string> args) {
    args.insert(args.begin(), "--json");
    auto r = repo_.thrum(args, TempRepo::as(agent));
    EXPECT_EQ(r.exit_code, 0) << "thrum " << join(args) << " as " << agent << ":\n"
                              << r.out << r.err;
    auto doc = parse_json(r.out);
    EXPECT_TRUE(doc.is_object()) << r.out;
    return doc.is_object() ? doc : json::object();
  }
  RunResult run(const std::string& agent, const std::vector<std::string>& args,
                const std::optional<std::string>& stdin_data = std::nullopt) {
    return repo_.thrum(args, TempRepo::as(agent), stdin_data);
  }
  std::string send(const std::string& from, const std::string& to, const std::string& body) {
    return j(from, {"send", body, "--to", to})["message_id"].get<std::string>();
  }
  /// Inbox without marking anything read.
  json unread(const std::string& agent) {
    return j(agent, {"inbox", "--unread", "--limit", "1000"});
  }
  std::vector<std::string> inbox_ids(const std::string& agent) {
    std::vector<std::string> ids;
    const json doc = unread(agent);  // keep it alive: the loop borrows from it
    for (const auto& m : doc["messages"]) ids.push_back(m["message_id"].get<std::string>());
    return ids;
  }
  static std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
    return s;
  }

  TempRepo repo_;
};

class TwoAgents : public Messaging {
 protected:
  void SetUp() override {
    repo_.start_daemon();
    repo_.register_agent("alice", "coordinator");
    repo_.register_agent("bob", "reviewer");
  }
};

TEST_F(TwoAgents, ExchangeMessages) {
  auto sent = j("alice", {"send", "please review PR 12", "--to", "@bob"});
  const std::string m1 = sent["message_id"].get<std::string>();
  EXPECT_EQ(m1.rfind("msg_", 0), 0u) << m1;
  EXPECT_EQ(sent["recipients"], json::array({"bob"}));

  auto bob_inbox = j("bob", {"inbox"});
  ASSERT_EQ(bob_inbox["messages"].size(), 1u) << bob_inbox.dump(2);
  EXPECT_EQ(bob_inbox["messages"][0]["message_id"], m1);
  EXPECT_EQ(bob_inbox["messages"][0]["author"], "alice");
  EXPECT_EQ(bob_inbox["messages"][0]["body"], "please review PR 12");

  const std::string m2 = send("bob", "@alice", "on it");
  auto alice_inbox = j("alice", {"inbox"});
  ASSERT_EQ(alice_inbox["messages"].size(), 1u);
  EXPECT_EQ(alice_inbox["messages"][0]["message_id"], m2);
  EXPECT_EQ(alice_inbox["messages"][0]["author"], "bob");

  // The human form shows the message too.
  auto text = run("alice", {"inbox"});
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find(m2), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("@bob"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("on it"), std::string::npos) << text.out;
}

TEST_F(TwoAgents, ReplyJoinsTheThreadAndReachesTheParentsAuthor) {
  repo_.register_agent("carol");
  const std::string parent = send("alice", "@bob", "can you check the build?");

  auto reply = j("bob", {"reply", parent, "build is green"});
  const std::string reply_id = reply["message_id"].get<std::string>();
  ASSERT_TRUE(reply["thread_id"].is_string()) << reply.dump(2);
  const std::string thread = reply["thread_id"].get<std::string>();
  EXPECT_EQ(thread.rfind("thr_", 0), 0u) << thread;
  EXPECT_EQ(reply["recipients"], json::array({"alice"})) << "a reply goes to the parent's author";

  UnixRpcClient c(repo_.var() / "thrum.sock");
  auto got = c.call("message.get", {{"message_id", parent}});
  ASSERT_TRUE(got.contains("result")) << got.dump();
  EXPECT_EQ(got["result"]["message"]["thread_id"], thread)
      << "the parent joined the reply's thread";

  auto alice = j("alice", {"inbox"});
  ASSERT_EQ(alice["messages"].size(), 1u) << alice.dump(2);
  EXPECT_EQ(alice["messages"][0]["message_id"], reply_id);
  EXPECT_EQ(alice["messages"][0]["reply_to"], parent);
  EXPECT_EQ(alice["messages"][0]["thread_id"], thread);
  EXPECT_TRUE(inbox_ids("carol").empty()) << "nobody else gets the reply";

  // Replying to the reply stays in the same thread.
  auto again = j("alice", {"reply", reply_id, "thanks"});
  EXPECT_EQ(again["thread_id"], thread);
  EXPECT_EQ(again["recipients"], json::array({"bob"}));
  // Replying marked the parent read for bob.
  auto bob = unread("bob");
  for (const auto& m : bob["messages"]) EXPECT_NE(m["message_id"], parent);
}

TEST_F(TwoAgents, InboxMarksReadButInboxUnreadDoesNot) {
  const std::string a = send("alice", "@bob", "first");
  const std::string b = send("alice", "@bob", "second");

  auto u1 = unread("bob");
  EXPECT_EQ(u1["unread"], 2);
  ASSERT_EQ(u1["messages"].size(), 2u);
  EXPECT_EQ(u1["messages"][0]["message_id"], b) << "newest first";
  EXPECT_EQ(u1["messages"][1]["message_id"], a);
  auto u2 = unread("bob");
  EXPECT_EQ(u2["unread"], 2) << "inbox --unread must not mark anything read";
  EXPECT_EQ(u2["messages"].size(), 2u);

  auto shown = run("bob", {"inbox"});
  ASSERT_EQ(shown.exit_code, 0);
  // Piped, the inbox is plain text: "* " marks unread, "  " read (issue 13 item 9).
  EXPECT_NE(shown.out.find("* " + b), std::string::npos) << "shown as unread this time:\n"
                                                         << shown.out;

  auto u3 = unread("bob");
  EXPECT_EQ(u3["unread"], 0) << "inbox marked what it showed";
  EXPECT_TRUE(u3["messages"].empty());
  auto all = j("bob", {"inbox"});
  EXPECT_EQ(all["total"], 2);
  ASSERT_EQ(all["messages"].size(), 2u);
  EXPECT_EQ(all["messages"][0]["is_read"], true);
  auto shown_again = run("bob", {"inbox"});
  EXPECT_NE(shown_again.out.find("  " + b), std::string::npos) << shown_again.out;
  EXPECT_EQ(shown_again.out.find("* " + b), std::string::npos) << shown_again.out;
}

TEST_F(TwoAgents, InboxMarksOnlyWhatItShowed) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(send("alice", "@bob", "m" + std::to_string(i)));
  auto shown = j("bob", {"inbox", "--limit", "2"});
  ASSERT_EQ(shown["messages"].size(), 2u);
  auto left = unread("bob");
  EXPECT_EQ(left["unread"], 3);
  std::set<std::string> still;
  for (const auto& m : left["messages"]) still.insert(m["message_id"].get<std::string>());
  EXPECT_EQ(still, (std::set<std::string>{ids[0], ids[1], ids[2]}));
}

TEST_F(TwoAgents, InboxPagesFollowEachOtherThroughNextBefore) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(send("alice", "@bob", "p" + std::to_string(i)));
  UnixRpcClient c(repo_.var() / "thrum.sock");
  auto page = [&](const json& extra) {
    json p = {{"caller_agent_id", "bob"}, {"limit", 2}, {"unread", false}, {"mark_read", false}};
    p.update(extra);
    return c.call("message.list", p);
  };
  std::vector<std::string> seen;
  json cursor = json::object();
  for (int n = 0; n < 5; ++n) {
    auto r = page(cursor);
    ASSERT_TRUE(r.contains("result")) << r.dump();
    EXPECT_EQ(r["result"]["total"], 5) << "every page counts the whole inbox";
    for (const auto& m : r["result"]["messages"]) seen.push_back(m["message_id"]);
    if (!r["result"].contains("next_before")) break;
    cursor = {{"before", r["result"]["next_before"]}};
  }
  EXPECT_EQ(seen, (std::vector<std::string>{ids[4], ids[3], ids[2], ids[1], ids[0]}));

  auto bad = page({{"before", "msg_not_here"}});
  ASSERT_TRUE(bad.contains("error")) << bad.dump();
  EXPECT_EQ(bad["error"]["code"], -32602);
  EXPECT_NE(bad["error"]["message"].get<std::string>().find("msg_not_here"), std::string::npos)
      << bad.dump();
}

TEST_F(TwoAgents, MessageReadMarksChosenMessages) {
  const std::string a = send("alice", "@bob", "one");
  const std::string b = send("alice", "@bob", "two");
  auto r = j("bob", {"message", "read", a});
  EXPECT_EQ(r["marked_count"], 1);
  EXPECT_EQ(inbox_ids("bob"), std::vector<std::string>{b});
  auto all = j("bob", {"message", "read", "--all"});
  EXPECT_EQ(all["marked_count"], 1);
  EXPECT_TRUE(inbox_ids("bob").empty());
}

TEST_F(TwoAgents, SentShowsDeliveredThenRead) {
  const std::string id = send("alice", "@bob", "status?");
  auto out1 = j("alice", {"sent"});
  ASSERT_EQ(out1["messages"].size(), 1u);
  EXPECT_EQ(out1["messages"][0]["message_id"], id);
  ASSERT_EQ(out1["messages"][0]["recipients"].size(), 1u);
  EXPECT_EQ(out1["messages"][0]["recipients"][0]["agent_id"], "bob");
  EXPECT_EQ(out1["messages"][0]["recipients"][0]["state"], "delivered");
  auto text1 = run("alice", {"sent"});
  EXPECT_NE(text1.out.find("@bob(delivered)"), std::string::npos) << text1.out;

  j("bob", {"inbox"});
  auto out2 = j("alice", {"sent"});
  EXPECT_EQ(out2["messages"][0]["recipients"][0]["state"], "read");
  EXPECT_TRUE(out2["messages"][0]["recipients"][0]["read_at"].is_string());
  auto text2 = run("alice", {"sent"});
  EXPECT_NE(text2.out.find("@bob(read)"), std::string::npos) << text2.out;
  EXPECT_NE(text2.out.find("1/1 read"), std::string::npos) << text2.out;
}

TEST_F(TwoAgents, UnknownRecipientIsRefusedAndNothingIsStored) {
  send("alice", "@bob", "baseline");
  const auto sent_before = j("alice", {"sent"})["total"];
  const auto bob_before = inbox_ids("bob");

  auto r = run("alice", {"send", "hello?", "--to", "@nobody"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("Error: unknown recipient @nobody"), std::string::npos) << r.err;

  // One bad name among good ones: still nothing stored, for anyone.
  auto mixed = run("alice", {"send", "hello both", "--to", "@bob", "--to", "@ghost"});
  EXPECT_EQ(mixed.exit_code, 1);
  EXPECT_NE(mixed.err.find("unknown recipient @ghost"), std::string::npos) << mixed.err;

  EXPECT_EQ(j("alice", {"sent"})["total"], sent_before);
  EXPECT_EQ(inbox_ids("bob"), bob_before);
}

TEST_F(TwoAgents, SendWithoutRecipientIsAUsageError) {
  auto r = run("alice", {"send", "to whom?"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--to"), std::string::npos) << r.err;
}

TEST_F(TwoAgents, SendReadsTheBodyFromStdin) {
  auto r = repo_.thrum({"--json", "send", "--stdin", "--to", "@bob"}, TempRepo::as("alice"),
                       std::string("line one\nline two\n"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto inbox = j("bob", {"inbox"});
  ASSERT_EQ(inbox["messages"].size(), 1u);
  EXPECT_EQ(inbox["messages"][0]["body"], "line one\nline two");
}

TEST_F(TwoAgents, EveryoneReachesEveryOtherAgentButNotTheSender) {
  repo_.register_agent("carol");
  auto sent = j("alice", {"send", "standup in 5", "--to", "@everyone"});
  const std::string id = sent["message_id"].get<std::string>();
  EXPECT_EQ(sent["recipients"], json::array({"bob", "carol"}));
  EXPECT_EQ(inbox_ids("bob"), std::vector<std::string>{id});
  EXPECT_EQ(inbox_ids("carol"), std::vector<std::string>{id});
  EXPECT_TRUE(inbox_ids("alice").empty()) << "the sender does not get its own broadcast";

  auto b = j("bob", {"send", "same via --broadcast", "--broadcast"});
  EXPECT_EQ(b["recipients"], json::array({"alice", "carol"}));
  EXPECT_EQ(inbox_ids("alice"), std::vector<std::string>{b["message_id"].get<std::string>()});
}

TEST_F(TwoAgents, WaitReturnsWhenAMessageArrives) {
  Child waiter(THRUM_TEST_BINARY, {"wait", "--timeout", "30s"}, repo_.root(), TempRepo::as("bob"));
  ASSERT_TRUE(process_alive(waiter.pid()));
  const auto t0 = std::chrono::steady_clock::now();
  const std::string id = send("alice", "@bob", "wake up");
  auto r = waiter.wait(20s);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("MESSAGES_RECEIVED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(id), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("wake up"), std::string::npos) << r.out;
  EXPECT_LT(took, 10s) << "wait must return on arrival, not at its timeout";
}

TEST_F(TwoAgents, WaitTimesOutWithExitOne) {
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run("bob", {"wait", "--timeout", "1s"});
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("NO_MESSAGES_TIMEOUT"), std::string::npos) << r.err;
  EXPECT_GE(took, 900ms);
  EXPECT_LT(took, 10s);
}

TEST_F(TwoAgents, SeveralIdentitiesWithoutThrumNameIsAnErrorListingThem) {
  auto r = repo_.thrum({"whoami"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("alice, bob"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("THRUM_NAME"), std::string::npos) << r.err;
  auto send_r = repo_.thrum({"send", "hi", "--to", "@bob"});
  EXPECT_EQ(send_r.exit_code, 1);
  EXPECT_NE(send_r.err.find("alice, bob"), std::string::npos) << send_r.err;

  auto who = j("bob", {"whoami"});
  EXPECT_EQ(who["agent_id"], "bob");
  EXPECT_EQ(who["role"], "reviewer");
}

TEST_F(TwoAgents, ReplyToAnUnknownMessageIsRefused) {
  auto r = run("bob", {"reply", "msg_01NOSUCHMESSAGE0000000000", "hello"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("msg_01NOSUCHMESSAGE0000000000"), std::string::npos) << r.err;
  EXPECT_EQ(j("bob", {"sent"})["total"], 0);
}

TEST_F(TwoAgents, JsonFlagWorksAfterTheCommandToo) {
  send("alice", "@bob", "hi");
  auto r = run("bob", {"inbox", "--unread", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto doc = parse_json(r.out);
  ASSERT_TRUE(doc.is_object()) << r.out;
  EXPECT_EQ(doc["unread"], 1);
}

TEST_F(TwoAgents, TeamListsRegisteredAgents) {
  auto team = j("alice", {"team"});
  std::set<std::string> names;
  for (const auto& m : team["members"]) names.insert(m["agent_id"].get<std::string>());
  EXPECT_EQ(names, (std::set<std::string>{"alice", "bob"}));
  auto text = run("alice", {"team"});
  EXPECT_NE(text.out.find("reviewer"), std::string::npos) << text.out;
}

TEST_F(TwoAgents, TeamSummaryViewCarriesOnlyWhatTheTableShows) {
  send("alice", "@bob", "hi");
  UnixRpcClient c(repo_.var() / "thrum.sock");
  auto summary = c.call("team.list", {{"view", "summary"}});
  ASSERT_TRUE(summary["result"]["members"].is_array()) << summary.dump();
  ASSERT_EQ(summary["result"]["members"].size(), 2u) << summary.dump();
  for (const auto& m : summary["result"]["members"]) {
    std::set<std::string> keys;
    for (const auto& [k, v] : m.items()) keys.insert(k);
    EXPECT_EQ(keys, (std::set<std::string>{"agent_id", "role", "status", "is_local"})) << m.dump();
    EXPECT_EQ(m["status"], "active");
    EXPECT_EQ(m["is_local"], true);
  }
  auto full = c.call("team.list", json::object());
  bool saw_bob = false;
  for (const auto& m : full["result"]["members"]) {
    EXPECT_TRUE(m.contains("registered_at")) << m.dump();
    if (m["agent_id"] == "bob") {
      saw_bob = true;
      EXPECT_EQ(m["inbox_unread"], 1) << "the full view keeps the inbox counts";
    }
  }
  EXPECT_TRUE(saw_bob) << full.dump();
  auto bad = c.call("team.list", {{"view", "everything"}});
  EXPECT_EQ(bad["error"]["code"], -32602) << bad.dump();
  EXPECT_NE(bad["error"]["message"].get<std::string>().find("view"), std::string::npos);
}

TEST_F(Messaging, AgentNamesAreValidated) {
  repo_.start_daemon();
  auto bad = repo_.thrum({"quickstart", "--name", "Bad Name!", "--role", "x"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("invalid agent name"), std::string::npos) << bad.err;
  auto reserved = repo_.thrum({"quickstart", "--name", "everyone", "--role", "x"});
  EXPECT_EQ(reserved.exit_code, 1);
  EXPECT_NE(reserved.err.find("reserved"), std::string::npos) << reserved.err;
  EXPECT_FALSE(fs::exists(repo_.root() / ".thrum" / "identities" / "everyone.json"));
}

TEST_F(Messaging, SingleIdentityIsUsedWithoutThrumName) {
  repo_.start_daemon();
  repo_.register_agent("solo", "builder");
  EXPECT_TRUE(fs::exists(repo_.root() / ".thrum" / "identities" / "solo.json"));
  auto r = repo_.thrum({"--json", "whoami"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(parse_json(r.out)["agent_id"], "solo");
  auto team = repo_.thrum({"team"});
  EXPECT_EQ(team.exit_code, 0);
  EXPECT_NE(team.out.find("solo"), std::string::npos) << team.out;
}

TEST_F(Messaging, NoIdentityTellsHowToRegister) {
  repo_.start_daemon();
  auto r = repo_.thrum({"inbox"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("thrum quickstart"), std::string::npos) << r.err;
}

TEST_F(Messaging, BodyOverTheConfiguredLimitIsRefusedWithBothSizes) {
  const auto cfg = repo_.root() / ".thrum" / "config.json";
  auto doc = nlohmann::ordered_json::parse(slurp(cfg));
  doc["daemon"]["max_message_body_bytes"] = 64;
  std::ofstream(cfg) << doc.dump(2);
  repo_.start_daemon();
  repo_.register_agent("alice");
  repo_.register_agent("bob");

  auto r = run("alice", {"send", std::string(65, 'x'), "--to", "@bob"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("65"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("64"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("max_message_body_bytes"), std::string::npos) << r.err;
  EXPECT_TRUE(inbox_ids("bob").empty());

  auto ok = run("alice", {"send", std::string(64, 'y'), "--to", "@bob"});
  EXPECT_EQ(ok.exit_code, 0) << "exactly the limit is allowed: " << ok.err;
  EXPECT_EQ(inbox_ids("bob").size(), 1u);
}

TEST_F(Messaging, CommandsWithoutADaemonSayHowToStartIt) {
  auto r = repo_.thrum({"team"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("thrum daemon start"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace thrum::test
