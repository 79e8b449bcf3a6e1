// The loopback WebSocket `/ws` (SPEC §4): the daemon's own user's programs, authenticated with
// the client secret and bound to one agent, get a push for every message that agent is concerned
// by, and can call the same methods as over the Unix socket; nobody else gets in.
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/helpers.hpp"
#include "support/process.hpp"
#include "support/raw_http.hpp"
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
  WsAuth as(const std::string& agent) const { return ws_auth(repo_.var(), agent); }
  /// The HTTP status a raw `/ws` upgrade with `headers` gets (101 when it is accepted).
  int upgrade_status(const std::map<std::string, std::string>& headers) const {
    return raw_http_exchange(port_, websocket_upgrade_request(port_, "/ws", headers), 3s).status;
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
  WsRpcClient ws(port_, as("bob"));
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
  WsRpcClient a(port_, as("alice")), b(port_, as("bob"));
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
  WsRpcClient ws(port_, as("bob"));
  auto r = ws.call("message.send", {{"to", "@alice"}, {"content", "from a web tool"}});
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
  auto gone = std::make_unique<WsRpcClient>(port_, as("bob"));
  WsRpcClient stays(port_, as("bob"));
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
  EXPECT_THROW(WsRpcClient(port_, as("bob"), "/nope"), std::exception);
  WsRpcClient ok(port_, as("bob"));
  EXPECT_EQ(ok.call("health")["result"]["status"], "ok");
}

TEST_F(WebSocket, ASessionForOneAgentNeverReceivesAnotherAgentsPreview) {
  repo_.register_agent("carol");
  WsRpcClient alice(port_, as("alice"));
  WsRpcClient bob(port_, as("bob"));
  ASSERT_EQ(alice.call("health")["result"]["status"], "ok");
  ASSERT_EQ(bob.call("health")["result"]["status"], "ok");

  const std::string for_bob = cli_send("carol", {"send", "bob's private note", "--to", "@bob"});
  const std::string for_alice = cli_send("carol", {"send", "alice's turn", "--to", "@alice"});
  auto b = bob.next_notification("notification.message", 10s);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ((*b)["params"]["message_id"], for_bob);
  // alice's first push is her own message: bob's never reached her session.
  auto a = alice.next_notification("notification.message", 10s);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ((*a)["params"]["message_id"], for_alice);
  EXPECT_EQ((*a)["params"]["preview"], "alice's turn");
  // Nor can alice's session read bob's inbox by naming him.
  auto r = alice.call("message.list", {{"caller_agent_id", "bob"}});
  ASSERT_TRUE(r.contains("error")) << r.dump();
  EXPECT_EQ(r["error"]["code"], -32602);
}

TEST_F(WebSocket, ASessionReadsByIdOnlyMessagesItsAgentWroteOrReceived) {
  repo_.register_agent("carol");
  const std::string for_bob = cli_send("carol", {"send", "bob's private note", "--to", "@bob"});
  const std::string by_alice = cli_send("alice", {"send", "alice asks carol", "--to", "@carol"});
  ASSERT_FALSE(for_bob.empty());
  ASSERT_FALSE(by_alice.empty());
  WsRpcClient alice(port_, as("alice"));
  WsRpcClient bob(port_, as("bob"));
  // The recipient and the author may read it by id...
  auto b = bob.call("message.get", {{"message_id", for_bob}});
  ASSERT_TRUE(b.contains("result")) << b.dump();
  EXPECT_EQ(b["result"]["message"]["body"], "bob's private note");
  auto own = alice.call("message.get", {{"message_id", by_alice}});
  ASSERT_TRUE(own.contains("result")) << own.dump();
  EXPECT_EQ(own["result"]["message"]["body"], "alice asks carol");
  // ...another agent's session is told it does not exist, exactly as for a made-up id.
  auto stolen = alice.call("message.get", {{"message_id", for_bob}});
  ASSERT_TRUE(stolen.contains("error")) << stolen.dump();
  EXPECT_EQ(stolen["error"]["message"], "message not found: " + for_bob);
  EXPECT_EQ(stolen.dump().find("private note"), std::string::npos);
  // The owner's Unix socket is not bound to one agent and still reads any message.
  UnixRpcClient unix_client(repo_.var() / "thrum.sock");
  auto any = unix_client.call("message.get", {{"message_id", for_bob}});
  EXPECT_EQ(any["result"]["message"]["body"], "bob's private note") << any.dump();
}

TEST_F(WebSocket, MissingOrWrongClientSecretIsRefused) {
  const std::string secret = as("bob").secret;
  ASSERT_EQ(secret.size(), 64u) << "var/ws.secret holds 32 random bytes in hex";
  EXPECT_EQ(upgrade_status({{"Thrum-Agent", "bob"}}), 401);
  std::string wrong = secret;
  wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
  EXPECT_EQ(upgrade_status({{"Thrum-Agent", "bob"}, {"Thrum-Client-Secret", wrong}}), 401);
  EXPECT_EQ(upgrade_status({{"Thrum-Agent", "bob"}, {"Thrum-Client-Secret", secret + "00"}}), 401);
  EXPECT_EQ(upgrade_status({{"Thrum-Agent", "bob"}, {"Thrum-Client-Secret", secret}}), 101);
  EXPECT_THROW(WsRpcClient(port_, WsAuth{"", "bob", {}}), std::exception);
  const std::string log = repo_.daemon_log();
  EXPECT_EQ(log.find(secret), std::string::npos) << "the secret never reaches the log";
  EXPECT_EQ(log.find(wrong), std::string::npos) << "nor what a client presented";
}

TEST_F(WebSocket, TheAgentIsRequiredAtTheUpgrade) {
  const std::string secret = as("bob").secret;
  EXPECT_EQ(upgrade_status({{"Thrum-Client-Secret", secret}}), 400);
  EXPECT_EQ(upgrade_status({{"Thrum-Client-Secret", secret}, {"Thrum-Agent", "Not A Name"}}), 400);
}

TEST_F(WebSocket, OriginIsComparedExactly) {
  const std::string secret = as("bob").secret;
  const std::string port = std::to_string(port_);
  auto with_origin = [&](const std::string& origin) {
    return upgrade_status(
        {{"Thrum-Client-Secret", secret}, {"Thrum-Agent", "bob"}, {"Origin", origin}});
  };
  for (const std::string& bad :
       {std::string("http://localhost.evil.example"), std::string("http://127.0.0.1.nip.io"),
        "http://localhost.evil.example:" + port, "http://127.0.0.1.nip.io:" + port,
        std::string("http://localhost"), "http://localhost:" + std::to_string(port_ + 1),
        "ftp://localhost:" + port, std::string("null"), "http://evil.example:" + port,
        "http://localhost:" + port + ".evil.example"}) {
    EXPECT_EQ(with_origin(bad), 403) << bad;
  }
  for (const std::string& good :
       {"http://localhost:" + port, "https://127.0.0.1:" + port, "http://[::1]:" + port}) {
    EXPECT_EQ(with_origin(good), 101) << good;
  }
}

TEST_F(WebSocket, TheSecretIsPrivateToTheDaemonsUserAndNewAtEveryStart) {
  const auto path = repo_.var() / "ws.secret";
  EXPECT_EQ(file_mode(path), 0600);
  const std::string before = as("bob").secret;
  repo_.stop_daemon();
  repo_.start_daemon();
  port_ = *read_ws_port(repo_.var());
  const std::string after = as("bob").secret;
  EXPECT_NE(before, after);
  EXPECT_EQ(upgrade_status({{"Thrum-Client-Secret", before}, {"Thrum-Agent", "bob"}}), 401);
  WsRpcClient ws(port_, as("bob"));
  EXPECT_EQ(ws.call("health")["result"]["status"], "ok");
}

}  // namespace
}  // namespace thrum::test
