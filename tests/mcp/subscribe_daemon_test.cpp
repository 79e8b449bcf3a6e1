// `message.subscribe` on a real daemon over its real Unix socket: pushes in the message.get
// shape for the subscriber's messages only, the connection still answers requests, the
// WebSocket refuses it, and a subscriber that stops reading is disconnected (bounded memory).
#include <sys/socket.h>

#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/helpers.hpp"
#include "support/rpc_socket.hpp"
#include "support/temp_repo.hpp"

namespace thrum::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

class Subscribe : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_.start_daemon();
    repo_.register_agent("alice");
    repo_.register_agent("bob");
    repo_.register_agent("carol");
  }
  std::string send(const std::string& from, const std::string& to, const std::string& body) {
    auto r = repo_.thrum({"--json", "send", body, "--to", to}, TempRepo::as(from));
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return parse_json(r.out).value("message_id", "");
  }
  std::filesystem::path sock() const { return repo_.var() / "thrum.sock"; }
  TempRepo repo_;
};

TEST_F(Subscribe, PushesTheSubscribersMessagesInTheShapeOfMessageGet) {
  UnixRpcClient sub(sock());
  json r = sub.call("message.subscribe", {{"caller_agent_id", "bob"}});
  ASSERT_TRUE(r.contains("result")) << r.dump();
  EXPECT_EQ(r["result"]["subscribed"], true);

  send("alice", "@carol", "not for bob");
  const std::string id = send("alice", "@bob", "for bob");
  auto line = sub.read_line(10s);
  ASSERT_TRUE(line) << "no notification for bob's message";
  json n = json::parse(*line);
  EXPECT_EQ(n["method"], "message.received");
  EXPECT_FALSE(n.contains("id"));
  const json& m = n["params"]["message"];
  EXPECT_EQ(m["message_id"], id) << "carol's message must not reach bob's subscription";
  EXPECT_EQ(m["body"], "for bob");
  EXPECT_EQ(m["author"], "alice");
  ASSERT_TRUE(m["recipients"].is_array());
  EXPECT_EQ(m["recipients"][0]["agent_id"], "bob");

  // The same shape as message.get, field for field.
  UnixRpcClient other(sock());
  json got = other.call("message.get", {{"message_id", id}})["result"]["message"];
  for (auto it = got.begin(); it != got.end(); ++it)
    EXPECT_TRUE(m.contains(it.key())) << "missing " << it.key();

  // The subscribed connection still answers requests.
  json w = sub.call("agent.whoami", {{"caller_agent_id", "bob"}});
  EXPECT_EQ(w["result"]["agent_id"], "bob");
}

TEST_F(Subscribe, RefusesUnknownAgents) {
  UnixRpcClient sub(sock());
  json r = sub.call("message.subscribe", {{"caller_agent_id", "nobody"}});
  ASSERT_TRUE(r.contains("error")) << r.dump();
  EXPECT_NE(r["error"]["message"].get<std::string>().find("unknown agent"), std::string::npos);
}

TEST_F(Subscribe, IsNotOfferedOverTheWebSocket) {
  auto port = read_ws_port(repo_.var());
  ASSERT_TRUE(port);
  WsRpcClient ws(*port, ws_auth(repo_.var(), "bob"));
  json r = ws.call("message.subscribe", {{"caller_agent_id", "bob"}});
  ASSERT_TRUE(r.contains("error")) << r.dump();
}

TEST_F(Subscribe, ASubscriberThatStopsReadingIsDisconnected) {
  UnixRpcClient sub(sock());
  ASSERT_TRUE(sub.call("message.subscribe", {{"caller_agent_id", "bob"}}).contains("result"));
  // Bodies of 256 KiB: the daemon's queue bound (8 MiB) plus the socket buffers fill after a
  // few dozen messages nobody reads; 64 are sure to pass it.
  UnixRpcClient sender(sock());
  const std::string body(256 * 1024, 'x');
  for (int i = 0; i < 64; ++i) {
    json r = sender.call("message.send",
                         {{"caller_agent_id", "alice"}, {"to", {"@bob"}}, {"content", body}}, 30s);
    ASSERT_TRUE(r.contains("result")) << r.dump().substr(0, 300);
  }
  // Others are still served while bob's connection is backed up.
  UnixRpcClient probe(sock());
  ASSERT_TRUE(probe.call("health").contains("result"));
  EXPECT_TRUE(sub.wait_closed(20s)) << "the daemon kept a subscriber that never reads";
  // The messages are not lost: they are in bob's inbox.
  auto r = repo_.thrum({"--json", "inbox", "--unread", "--limit", "1"}, TempRepo::as("bob"));
  EXPECT_EQ(parse_json(r.out).value("unread", 0), 64);
}

}  // namespace
}  // namespace thrum::test
