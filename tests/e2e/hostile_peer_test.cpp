// A real daemon against hand-written hostile peers (issue 11): frames that no real daemon
// sends, answers that lie, identities that do not match the pairing. The fake peers speak the
// real link authentication (with a token planted in the daemon's peers.json) or the real
// pairing handshake (with the code `peer add` printed), and then misbehave. Every test ends by
// showing the daemon is still alive and still serving.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "e2e/peer_env.hpp"
#include "peers/channel_binding.hpp"
#include "peers/link_auth.hpp"
#include "support/fake_peer.hpp"
#include "support/helpers.hpp"
#include "thrum/core/pairing.hpp"

namespace thrum::test {
namespace {

namespace fs = std::filesystem;

constexpr const char* kEvilId = "d_evil00000000000000000000";
constexpr const char* kGoodId = "d_good00000000000000000000";

std::string deep(int n) {
  return std::string(n, '[') + std::string(n, ']');
}

/// One real daemon ("target", agent bob) and up to two planted peers it believes it paired
/// with as the listener: "evil" and "good". The test plays them.
class HostilePeer : public PeerTest {
 protected:
  void SetUp() override {
    target_id_ = parse_json(slurp(target_.root() / ".thrum" / "config.json"))["identity"].value(
        "daemon_id", "");
    ASSERT_FALSE(target_id_.empty());
    evil_token_ = core::pairing::generate_token();
    good_token_ = core::pairing::generate_token();
    remember_secret(evil_token_);
    remember_secret(good_token_);
    auto record = [](const std::string& name, const std::string& id, const std::string& token) {
      return json{{"name", name},
                  {"address", "127.0.0.1:9"},
                  {"daemon_id", id},
                  {"token", token},
                  {"transport", "local"},
                  {"role", "listener"},
                  {"proxy_prefix", name},
                  {"remote_agents", json::array()},
                  {"paired_at", "2026-01-01T00:00:00Z"},
                  {"last_sync", "2026-01-01T00:00:00Z"},
                  {"last_seq", 0},
                  {"remote_repo_name", name},
                  {"remote_hostname", "host"},
                  {"remote_repo_path", "/nonexistent/" + name},
                  {"remote_git_origin_url", "git@example:" + name},
                  {"reconcile_status", ""}};
    };
    json doc = {
        {"schema", 1},
        {"local", {{"daemon_id", target_id_}}},
        {"peers", {record("evil", kEvilId, evil_token_), record("good", kGoodId, good_token_)}}};
    fs::create_directories(target_.var());
    std::ofstream(target_.var() / "peers.json") << doc.dump(2);
    ::chmod((target_.var() / "peers.json").c_str(), 0600);
    ASSERT_NO_FATAL_FAILURE(start(target_));
    ASSERT_NO_FATAL_FAILURE(target_.register_agent("bob", "reviewer"));
    port_ = read_ws_port(target_.var()).value_or(0);
    ASSERT_NE(port_, 0);
  }

  std::unique_ptr<FakePeerConn> link_as(const std::string& token, const std::string& id) {
    std::string error;
    auto c = fake_link(port_, token, id, target_id_, "local", &error);
    EXPECT_TRUE(c) << error << "\n" << target_.daemon_log();
    return c;
  }
  std::unique_ptr<FakePeerConn> evil() { return link_as(evil_token_, kEvilId); }

  /// The daemon is alive and answers a real command.
  void expect_alive() {
    EXPECT_TRUE(process_alive(target_.daemon_pid())) << target_.daemon_log();
    auto st = target_.thrum({"daemon", "status"});
    EXPECT_EQ(st.exit_code, 0) << st.out << st.err;
  }

  static json deliver_item(const std::string& id, const std::string& body,
                           json to = json::array({"bob"})) {
    return {{"message_id", id}, {"author", "mallory"},  {"to", to},
            {"body", body},     {"format", "markdown"}, {"created_at", "2026-01-01T00:00:00Z"}};
  }

  json bob_inbox() { return j(target_, "bob", {"inbox", "--unread", "--limit", "100"}); }

  TempRepo target_{"target"};
  std::string target_id_, evil_token_, good_token_;
  unsigned short port_ = 0;
};

TEST_F(HostilePeer, DeepIdBeforeAuthenticationLeavesTheListenerServing) {
  // Finding 1: while `peer add` waits, one frame with an id nested 60,000 deep SIGSEGVed it.
  auto add = start_peer_add(target_.root(), "local");
  auto code = wait_for_peercode(*add);
  ASSERT_TRUE(code) << add->out() << add->err();
  remember_secret(code_of(*code));
  auto d = fake_dial(port_);
  ASSERT_TRUE(d.conn) << d.http_status << " " << d.body;
  d.conn->send("{\"jsonrpc\":\"2.0\",\"method\":\"pair.hello\",\"id\":" + deep(60000) + "}");
  // A frame too large for a link that has not authenticated closes it; the daemon goes on.
  d.conn->send(std::string(100 * 1024, ' ') + "{}");
  EXPECT_TRUE(d.conn->wait_closed()) << "an oversized pre-auth frame must close the link";
  expect_alive();
  // The pairing session still works: a well-formed hello gets its answer.
  auto d2 = fake_dial(port_);
  ASSERT_TRUE(d2.conn);
  auto id = d2.conn->call(
      "pair.hello",
      {{"daemon_id", "d_joiner"}, {"nonce", std::string(64, 'a')}, {"transport", "local"}});
  auto ans = d2.conn->answer(id);
  ASSERT_TRUE(ans.is_object()) << target_.daemon_log();
  EXPECT_TRUE(ans["result"].contains("nonce")) << ans.dump();
  add->kill(SIGINT);
  add->wait(10s);
}

TEST_F(HostilePeer, MalformedAnswersFromAPairedPeerCostNothing) {
  // Finding 3: a non-integer error.code or a non-string message_id threw out of ioc.run().
  auto c = evil();
  ASSERT_TRUE(c);
  c->call("peer.hello", {{"daemon_id", kEvilId}, {"name", "evil"}});
  auto presence =
      c->read_until([](const json& f) { return f.value("method", "") == "peer.presence"; });
  ASSERT_TRUE(presence.is_object()) << target_.daemon_log();
  c->send(json{
      {"jsonrpc", "2.0"}, {"id", presence["id"]}, {"error", {{"code", "boom"}, {"message", 5}}}}
              .dump());
  // A message for evil's proxy: the daemon sends it, the answer is garbage.
  ASSERT_EQ(target_.thrum({"peer", "configure", "evil", "add-agent", "victim"}).exit_code, 0);
  auto sent = j(target_, "bob", {"send", "to evil", "--to", "@evil:victim"});
  auto deliver =
      c->read_until([](const json& f) { return f.value("method", "") == "peer.deliver"; });
  ASSERT_TRUE(deliver.is_object()) << target_.daemon_log();
  c->send(json{
      {"jsonrpc", "2.0"}, {"id", deliver["id"]}, {"result", {{"results", {{{"message_id", 5}}}}}}}
              .dump());
  c->send(json{{"jsonrpc", "2.0"}, {"id", deliver["id"]}, {"result", "gotcha"}}.dump());
  c->send("{\"jsonrpc\":\"2.0\",\"id\":" + deep(60000) + "}");
  std::this_thread::sleep_for(300ms);
  expect_alive();
  // Nothing was taken for an acknowledgement: the message is still queued for evil.
  auto out = j(target_, "bob", {"sent"});
  ASSERT_FALSE(out["messages"].empty());
  EXPECT_EQ(out["messages"][0]["recipients"][0].value("state", ""), "queued") << out.dump(2);
}

TEST_F(HostilePeer, FakeListenersGotchaAnswerFailsTheJoinCleanly) {
  // Finding 3, before any authentication: `"result":"gotcha"` to pair.hello.
  FakeListener fake;
  TempRepo other("other");
  std::thread joiner([&] {
    auto res = target_.thrum({"peer", "join", "--type", "local", "--peercode",
                              "x:127.0.0.1:" + std::to_string(fake.port()) + ":4829175036284719",
                              "--repo-path", other.root().string()});
    EXPECT_NE(res.exit_code, 0);
    EXPECT_NE(res.err.find("not a Thrum pairing answer"), std::string::npos) << res.err;
  });
  auto conn = fake.accept();
  ASSERT_TRUE(conn);
  auto hello =
      conn->read_until([](const json& f) { return f.value("method", "") == "pair.hello"; });
  ASSERT_TRUE(hello.is_object());
  conn->send(json{{"jsonrpc", "2.0"}, {"id", hello["id"]}, {"result", "gotcha"}}.dump());
  joiner.join();
  expect_alive();
  EXPECT_EQ(target_.thrum({"peer", "list"}).out.find("\nx "), std::string::npos);
}

TEST_F(HostilePeer, OversizedAndTooDeepFramesAreRefusedAndAnswersStaySmall) {
  auto c = evil();
  ASSERT_TRUE(c);
  // Finding 7: a 3.9 MB frame of empty items drew a 43 MB reply.
  std::string items = "{\"items\":[";
  for (int i = 0; i < 1000000; ++i) items += i ? ",{}" : "{}";
  items += "]}";
  c->send("{\"jsonrpc\":\"2.0\",\"id\":77,\"method\":\"peer.deliver\",\"params\":" + items + "}");
  auto ans = c->read_until([](const json& f) { return f.value("id", json()) == json(77); }, 10s);
  ASSERT_TRUE(ans.is_object()) << target_.daemon_log();
  EXPECT_LT(ans.dump().size(), 1024u) << "the answer must be bounded by the request";
  EXPECT_NE(ans["error"].value("message", "").find("more than 256"), std::string::npos)
      << ans.dump();
  // Too deep params: refused, the link stays up, and a good frame afterwards is served.
  c->send("{\"jsonrpc\":\"2.0\",\"id\":78,\"method\":\"peer.deliver\",\"params\":{\"a\":" +
          deep(5000) + "}}");
  auto id = c->call("peer.deliver", {{"items", {deliver_item("msg_ok1", "still here")}}});
  auto ok = c->answer(id);
  ASSERT_TRUE(ok.is_object()) << target_.daemon_log();
  EXPECT_TRUE(ok["result"]["results"][0].contains("message_id")) << ok.dump();
  expect_alive();
  EXPECT_EQ(bob_inbox()["messages"].size(), 1u);
}

TEST_F(HostilePeer, InboundDeliveriesObeyTheRulesOfALocalSend) {
  // Finding 7: inbound deliveries skipped the body limit (3.9 MB stored) and accepted `to: []`.
  ASSERT_NO_FATAL_FAILURE(target_.stop_daemon());
  patch_config(target_, {{"daemon", {{"max_message_body_bytes", 1000}}}});
  ASSERT_NO_FATAL_FAILURE(start(target_));
  port_ = read_ws_port(target_.var()).value_or(0);
  auto c = evil();
  ASSERT_TRUE(c);
  auto id =
      c->call("peer.deliver", {{"items",
                                {deliver_item("msg_big", std::string(1001, 'x')),
                                 deliver_item("msg_none", "nobody", json::array()),
                                 deliver_item("msg_ghost", "ghost", json::array({"nobody_here"})),
                                 deliver_item("msg_fine", "fine")}}});
  auto ans = c->answer(id);
  ASSERT_TRUE(ans.is_object()) << target_.daemon_log();
  const json& r = ans["result"]["results"];
  ASSERT_EQ(r.size(), 4u) << ans.dump();
  EXPECT_NE(r[0].value("refused", "").find("too large"), std::string::npos) << r.dump();
  EXPECT_NE(r[1].value("refused", "").find("no recipient"), std::string::npos) << r.dump();
  EXPECT_NE(r[2].value("refused", "").find("no agent named @nobody_here"), std::string::npos);
  EXPECT_TRUE(r[3].contains("message_id")) << r.dump();
  auto box = bob_inbox();
  ASSERT_EQ(box["messages"].size(), 1u) << box.dump(2);
  EXPECT_EQ(box["messages"][0]["body"], "fine");
}

TEST_F(HostilePeer, ForgedOriginCannotMakeAnotherPeersMessageADuplicate) {
  // Finding 6: dedup trusted the origin_daemon a peer claimed, so evil could get good's
  // genuine message acknowledged and dropped.
  auto e = evil();
  ASSERT_TRUE(e);
  json forged = deliver_item("msg_shared_id", "forged");
  forged["origin_daemon"] = kGoodId;
  auto a1 = e->answer(e->call("peer.deliver", {{"items", {forged}}}));
  ASSERT_TRUE(a1.is_object());
  auto g = link_as(good_token_, kGoodId);
  ASSERT_TRUE(g);
  json genuine = deliver_item("msg_shared_id", "genuine");
  genuine["author"] = "alice";
  auto a2 = g->answer(g->call("peer.deliver", {{"items", {genuine}}}));
  ASSERT_TRUE(a2.is_object());
  EXPECT_NE(a1["result"]["results"][0]["message_id"], a2["result"]["results"][0]["message_id"]);
  auto box = bob_inbox();
  ASSERT_EQ(box["messages"].size(), 2u) << box.dump(2);
  std::set<std::string> authors;
  for (const auto& m : box["messages"])
    authors.insert(m.value("author", "") + "=" + m.value("body", ""));
  EXPECT_TRUE(authors.count("good:alice=genuine")) << box.dump(2);
  EXPECT_TRUE(authors.count("evil:mallory=forged")) << box.dump(2);
}

TEST_F(HostilePeer, HelloCannotRewriteThePairedIdentity) {
  // Finding 6: a hello rewrote the recorded daemon_id, repo path and git URL.
  auto c = evil();
  ASSERT_TRUE(c);
  auto ans = c->answer(c->call("peer.hello", {{"daemon_id", "d_someone_else"},
                                              {"repo_path", "/etc"},
                                              {"git_origin_url", "https://evil.example/x.git"}}));
  ASSERT_TRUE(ans.is_object());
  auto rec = peer_record(target_, "evil");
  EXPECT_EQ(rec.value("daemon_id", ""), kEvilId) << rec.dump();
  EXPECT_EQ(rec.value("remote_repo_path", ""), "/nonexistent/evil");
  EXPECT_EQ(rec.value("remote_git_origin_url", ""), "git@example:evil");
}

TEST_F(HostilePeer, ALinkMustComeFromThePairedDaemonAndProveTheToken) {
  // The right token from another daemon id is refused before the 101.
  std::string error;
  EXPECT_FALSE(fake_link(port_, evil_token_, "d_impostor", target_id_, "local", &error));
  EXPECT_NE(error.find("403"), std::string::npos) << error;
  // A token id with a wrong proof: the link closes without serving anything.
  namespace la = core::peers::link_auth;
  auto d = fake_dial(port_, {{la::kLinkHeader, la::kVersion},
                             {la::kTokenIdHeader, la::token_id(evil_token_)},
                             {la::kNonceHeader, std::string(64, 'b')},
                             {la::kDaemonIdHeader, kEvilId}});
  ASSERT_TRUE(d.conn) << d.http_status << d.body;
  d.conn->call("link.auth", {{"proof", std::string(64, 'c')}});
  d.conn->call("peer.deliver", {{"items", {deliver_item("msg_x", "x")}}});
  EXPECT_TRUE(d.conn->wait_closed());
  // Frames before link.auth are not served either.
  auto d2 = fake_dial(port_, {{la::kLinkHeader, la::kVersion},
                              {la::kTokenIdHeader, la::token_id(evil_token_)},
                              {la::kNonceHeader, std::string(64, 'b')},
                              {la::kDaemonIdHeader, kEvilId}});
  ASSERT_TRUE(d2.conn);
  d2.conn->call("peer.deliver", {{"items", {deliver_item("msg_y", "y")}}});
  EXPECT_TRUE(d2.conn->wait_closed());
  EXPECT_TRUE(bob_inbox()["messages"].empty());
  // An old-style bearer token is refused outright, with what to do.
  auto bearer = fake_dial(port_, {{"Authorization", "Bearer " + evil_token_}});
  EXPECT_EQ(bearer.http_status, 401);
  EXPECT_NE(bearer.body.find("no longer accepts bearer tokens"), std::string::npos) << bearer.body;
  expect_alive();
}

TEST_F(HostilePeer, AJoinerThatLeavesAfterItsProofEndsPeerAdd) {
  // Finding 8: `peer add` blocked for ever when the joiner disconnected after a correct proof.
  auto add = start_peer_add(target_.root(), "local");
  auto code = wait_for_peercode(*add);
  ASSERT_TRUE(code) << add->out() << add->err();
  remember_secret(code_of(*code));
  auto d = fake_dial(port_);
  ASSERT_TRUE(d.conn);
  const std::string nonce_j = core::pairing::generate_nonce();
  auto hello = d.conn->answer(d.conn->call(
      "pair.hello", {{"daemon_id", "d_joiner"}, {"nonce", nonce_j}, {"transport", "local"}}));
  ASSERT_TRUE(hello.is_object());
  core::pairing::Transcript tr{hello["result"].value("nonce", ""),
                               nonce_j,
                               hello["result"].value("daemon_id", ""),
                               "d_joiner",
                               "",
                               "",
                               "local",
                               d.conn->endpoint_binding(true)};
  auto proof = d.conn->answer(
      d.conn->call("pair.proof", {{"proof", core::pairing::proof(code_of(*code), "joiner", tr)},
                                  {"identity", {{"name", "quitter"}}}}));
  ASSERT_TRUE(proof.is_object() && proof.contains("result")) << proof.dump();
  remember_secret(proof["result"].value("token", ""));
  d.conn->close();
  auto res = add->wait(20s);
  EXPECT_NE(res.exit_code, 0) << res.out << res.err;
  EXPECT_NE(res.err.find("disconnected before confirming"), std::string::npos) << res.err;
  EXPECT_TRUE(peer_record(target_, "quitter").is_null());
  expect_alive();
}

}  // namespace
}  // namespace thrum::test
