// The loopback WebSocket `/ws` (SPEC §4): local programs get a push for every message stored for
// a local agent, and can call the same methods as over the Unix socket.
#include <memory>
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

using json = nlohmann::json;
using namespace std::chrono_literals;

class WebSocket : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_.start_daemon();
    repo_.register_agent("alice");
    repo_.register_agent("bob");
    auto p = read_ws_port(repo_.var());
    ASSERT_TRUE(p.has_value());
    port_ = *p;
  }
  std::string cli_send(const std::string& from, const std::vector<std::string>& args) {
    std::vector<std::string> full = {"--json"};
    full.insert(full.end(), args.begin(), args.end());
    auto r = repo_.thrum(full, TempRepo::as(from));
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    auto doc = parse_json(r.out);
    return doc.is_object() ? doc.value("message_id", "") : "";
  }

  TempRepo repo_;
  unsigned short port_ = 0;
};

TEST_F(WebSocket, ClientReceivesNotificationForAMessageSentByTheCli) {
  WsRpcClient ws(port_);
  // A round trip first, so the session is certainly registered before the send.
  ASSERT_EQ(ws.call("health")["result"]["status"], "ok");

  const std::string id = cli_send("alice", {"send", "hello over the wire", "--to", "@bob"});
  ASSERT_FALSE(id.empty());
  auto n = ws.next_notification("notification.message", 10s);
  ASSERT_TRUE(n.has_value()) << "no notification.message within 10s";
  EXPECT_EQ((*n)["jsonrpc"], "2.0");
  EXPECT_FALSE(n->contains("id")) << "a notification carries no id";
  const auto& p = (*n)["params"];
  EXPECT_EQ(p["message_id"], id);
  EXPECT_EQ(p["author"]["agent_id"], "alice");
  EXPECT_EQ(p["recipients"], json::array({"bob"}));
  EXPECT_EQ(p["preview"], "hello over the wire");
}

TEST_F(WebSocket, EveryConnectedClientGetsEveryMessageInOrder) {
  WsRpcClient a(port_), b(port_);
  ASSERT_EQ(a.call("health")["result"]["status"], "ok");
  ASSERT_EQ(b.call("health")["result"]["status"], "ok");
  EXPECT_EQ(a.call("health")["result"]["ws_clients"], 2);

  const std::string m1 = cli_send("alice", {"send", "one", "--to", "@bob"});
  const std::string m2 = cli_send("bob", {"reply", m1, "two"});
  const std::string m3 = cli_send("alice", {"send", "three", "--broadcast"});
  for (WsRpcClient* c : {&a, &b}) {
    std::vector<std::string> got;
    for (int i = 0; i < 3; ++i) {
      auto n = c->next_notification("notification.message", 10s);
      ASSERT_TRUE(n.has_value()) << "missing notification " << i;
      got.push_back((*n)["params"]["message_id"].get<std::string>());
      if (i == 1) {
        EXPECT_EQ((*n)["params"]["reply_to"], m1);
        EXPECT_TRUE((*n)["params"]["thread_id"].is_string());
      }
    }
    EXPECT_EQ(got, (std::vector<std::string>{m1, m2, m3}));
  }
}

TEST_F(WebSocket, SendOverWsIsAnsweredAndPushed) {
  WsRpcClient ws(port_);
  auto r = ws.call("message.send",
                   {{"caller_agent_id", "bob"}, {"to", "@alice"}, {"content", "from a web tool"}});
  ASSERT_TRUE(r.contains("result")) << r.dump();
  const std::string id = r["result"]["message_id"].get<std::string>();
  auto n = ws.next_notification("notification.message", 10s);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ((*n)["params"]["message_id"], id);

  auto inbox = repo_.thrum({"--json", "inbox"}, TempRepo::as("alice"));
  ASSERT_EQ(inbox.exit_code, 0) << inbox.err;
  auto doc = parse_json(inbox.out);
  ASSERT_EQ(doc["messages"].size(), 1u);
  EXPECT_EQ(doc["messages"][0]["message_id"], id);
  EXPECT_EQ(doc["messages"][0]["body"], "from a web tool");
}

TEST_F(WebSocket, ClosedClientDoesNotDisturbTheOthers) {
  auto gone = std::make_unique<WsRpcClient>(port_);
  WsRpcClient stays(port_);
  ASSERT_EQ(gone->call("health")["result"]["status"], "ok");
  ASSERT_EQ(stays.call("health")["result"]["status"], "ok");
  gone.reset();
  const std::string id = cli_send("alice", {"send", "still here?", "--to", "@bob"});
  auto n = stays.next_notification("notification.message", 10s);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ((*n)["params"]["message_id"], id);
  EXPECT_TRUE(wait_until([&] { return stays.call("health")["result"]["ws_clients"] == 1; }));
}

TEST_F(WebSocket, UnknownPathIsNotFound) {
  EXPECT_THROW(WsRpcClient(port_, "/nope"), std::exception);
  WsRpcClient ok(port_);
  EXPECT_EQ(ok.call("health")["result"]["status"], "ok");
}

}  // namespace
}  // namespace thrum::test
