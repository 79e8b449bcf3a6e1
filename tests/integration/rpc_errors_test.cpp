// Bad requests on both CLI API sockets (SPEC §4): each gets the right JSON-RPC error code, and
// the same connection, other connections and the daemon keep working.
#include <signal.h>

#include <functional>
#include <memory>
#include <ostream>
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

enum class Channel { kUnix, kWebSocket };

void PrintTo(Channel ch, std::ostream* os) {
  *os << (ch == Channel::kUnix ? "unix" : "ws");
}

std::string channel_name(const ::testing::TestParamInfo<Channel>& info) {
  return info.param == Channel::kUnix ? "UnixSocket" : "WebSocket";
}

/// One connection to the daemon over the channel under test.
class Conn {
 public:
  Conn(Channel ch, const TempRepo& repo) {
    if (ch == Channel::kUnix) {
      unix_ = std::make_unique<UnixRpcClient>(repo.var() / "thrum.sock");
    } else {
      auto port = read_ws_port(repo.var());
      if (!port) throw std::runtime_error("no ws.port");
      // "ghost" is never registered: the tests that name a caller use it.
      ws_ = std::make_unique<WsRpcClient>(*port, ws_auth(repo.var(), "ghost"));
    }
  }
  json roundtrip(const std::string& text) {
    return unix_ ? unix_->roundtrip(text) : ws_->roundtrip(text);
  }
  json call(const std::string& method, const json& params = json::object()) {
    return unix_ ? unix_->call(method, params) : ws_->call(method, params);
  }

 private:
  std::unique_ptr<UnixRpcClient> unix_;
  std::unique_ptr<WsRpcClient> ws_;
};

class RpcErrors : public ::testing::TestWithParam<Channel> {
 protected:
  void SetUp() override {
    repo_.start_daemon();
    pid_ = repo_.daemon_pid();
    conn_ = std::make_unique<Conn>(GetParam(), repo_);
  }
  /// The connection that just got an error still answers, and so does the daemon.
  void expect_still_serving() {
    auto h = conn_->call("health");
    ASSERT_TRUE(h.is_object()) << "no answer on the same connection after the error";
    EXPECT_EQ(h["result"]["status"], "ok") << h.dump();
    EXPECT_TRUE(process_alive(pid_));
    auto st = repo_.thrum({"daemon", "status"});
    EXPECT_EQ(st.exit_code, 0) << st.out << st.err;
  }
  static int code(const json& r) {
    if (!r.is_object() || !r.contains("error")) return 0;
    return r["error"]["code"].get<int>();
  }

  TempRepo repo_;
  int pid_ = -1;
  std::unique_ptr<Conn> conn_;
};

TEST_P(RpcErrors, MalformedJsonIsParseError) {
  auto r = conn_->roundtrip("{\"jsonrpc\": \"2.0\", \"method\": \"health\", oops");
  ASSERT_TRUE(r.is_object()) << "expected an error response";
  EXPECT_EQ(code(r), -32700) << r.dump();
  EXPECT_TRUE(r["id"].is_null());
  expect_still_serving();
}

TEST_P(RpcErrors, WrongJsonrpcVersionIsInvalidRequest) {
  auto r = conn_->roundtrip(R"({"jsonrpc":"1.0","id":17,"method":"health"})");
  EXPECT_EQ(code(r), -32600) << r.dump();
  EXPECT_EQ(r["id"], 17);
  auto no_method = conn_->roundtrip(R"({"jsonrpc":"2.0","id":18})");
  EXPECT_EQ(code(no_method), -32600) << no_method.dump();
  auto not_object = conn_->roundtrip(R"([{"jsonrpc":"2.0","id":19,"method":"health"}])");
  EXPECT_EQ(code(not_object), -32600) << not_object.dump();
  expect_still_serving();
}

TEST_P(RpcErrors, UnknownMethodIsMethodNotFoundNamingIt) {
  auto r = conn_->roundtrip(R"({"jsonrpc":"2.0","id":"a1","method":"message.explode"})");
  EXPECT_EQ(code(r), -32601) << r.dump();
  EXPECT_EQ(r["error"]["message"], "method 'message.explode' is not registered");
  EXPECT_EQ(r["id"], "a1");
  expect_still_serving();
}

TEST_P(RpcErrors, WrongParamTypesAreInvalidParams) {
  auto r = conn_->roundtrip(
      R"({"jsonrpc":"2.0","id":1,"method":"message.get","params":{"message_id":42}})");
  EXPECT_EQ(code(r), -32602) << r.dump();
  EXPECT_NE(r["error"]["message"].get<std::string>().find("message_id"), std::string::npos)
      << r.dump();

  auto arr = conn_->roundtrip(R"({"jsonrpc":"2.0","id":2,"method":"health","params":[1]})");
  EXPECT_EQ(code(arr), -32602) << arr.dump();

  auto caller = conn_->roundtrip(
      R"({"jsonrpc":"2.0","id":3,"method":"message.send","params":{"caller_agent_id":7,"content":"x","to":"@a"}})");
  EXPECT_EQ(code(caller), -32602) << caller.dump();

  auto reg = conn_->roundtrip(
      R"({"jsonrpc":"2.0","id":4,"method":"agent.register","params":{"name":"zed","role":["r"]}})");
  EXPECT_EQ(code(reg), -32602) << reg.dump();
  expect_still_serving();
}

TEST_P(RpcErrors, HandlerErrorIsReportedWithAHumanMessage) {
  auto r = conn_->call("message.get", {{"message_id", "msg_DOESNOTEXIST"}});
  EXPECT_EQ(code(r), -32000) << r.dump();
  EXPECT_NE(r["error"]["message"].get<std::string>().find("msg_DOESNOTEXIST"), std::string::npos);
  auto unknown_caller = conn_->call("message.list", {{"caller_agent_id", "ghost"}});
  EXPECT_EQ(code(unknown_caller), -32000) << unknown_caller.dump();
  EXPECT_NE(unknown_caller["error"]["message"].get<std::string>().find("thrum quickstart"),
            std::string::npos);
  expect_still_serving();
}

TEST_P(RpcErrors, ManyBadRequestsInARowThenAGoodOne) {
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(code(conn_->roundtrip("not json " + std::to_string(i))), -32700);
    ASSERT_EQ(code(conn_->roundtrip(R"({"jsonrpc":"2.0","id":1,"method":"nope"})")), -32601);
  }
  expect_still_serving();
}

INSTANTIATE_TEST_SUITE_P(BothSockets, RpcErrors,
                         ::testing::Values(Channel::kUnix, Channel::kWebSocket), channel_name);

TEST(RpcErrorsWs, RequestsActAsTheAuthenticatedAgentOnly) {
  TempRepo repo;
  repo.start_daemon();
  repo.register_agent("alice");
  repo.register_agent("bob");
  WsRpcClient ws(*read_ws_port(repo.var()), ws_auth(repo.var(), "alice"));
  auto as_bob = ws.call("message.list", {{"caller_agent_id", "bob"}});
  ASSERT_TRUE(as_bob.contains("error")) << as_bob.dump();
  EXPECT_EQ(as_bob["error"]["code"], -32602);
  EXPECT_NE(as_bob["error"]["message"].get<std::string>().find("alice"), std::string::npos);
  auto as_self = ws.call("message.list", json::object());
  EXPECT_TRUE(as_self.contains("result"))
      << "the session's agent is the caller: " << as_self.dump();
}

TEST(RpcErrorsUnix, LineOver8MiBClosesThatConnectionOnly) {
  TempRepo repo;
  repo.start_daemon();
  const int pid = repo.daemon_pid();
  UnixRpcClient bystander(repo.var() / "thrum.sock");
  ASSERT_EQ(bystander.call("health")["result"]["status"], "ok");

  UnixRpcClient big(repo.var() / "thrum.sock");
  std::string line = R"({"jsonrpc":"2.0","id":1,"method":"health","params":{"pad":")";
  line.append((8u << 20) + 1024, 'x');
  line += "\"}}\n";
  big.send_raw(line);  // may fail part-way: the daemon hangs up once the limit is passed
  EXPECT_TRUE(big.wait_closed(10s)) << "the daemon must close a connection sending a huge line";

  EXPECT_TRUE(process_alive(pid));
  auto h = bystander.call("health");
  EXPECT_EQ(h["result"]["status"], "ok") << "other connections keep working: " << h.dump();
  UnixRpcClient fresh(repo.var() / "thrum.sock");
  EXPECT_EQ(fresh.call("health")["result"]["status"], "ok");
}

TEST(RpcErrorsUnix, PipelinedRequestsAreAnsweredInOrder) {
  TempRepo repo;
  repo.start_daemon();
  UnixRpcClient c(repo.var() / "thrum.sock");
  ASSERT_TRUE(
      c.send_raw("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"health\"}\n"
                 "garbage\n"
                 "\n"
                 "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"nope\"}\r\n"
                 "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"health\"}\n"));
  std::vector<json> got;
  for (int i = 0; i < 4; ++i) {
    auto line = c.read_line(10s);
    ASSERT_TRUE(line.has_value()) << "missing response " << i;
    got.push_back(json::parse(*line));
  }
  EXPECT_EQ(got[0]["id"], 1);
  EXPECT_EQ(got[0]["result"]["status"], "ok");
  EXPECT_EQ(got[1]["error"]["code"], -32700);
  EXPECT_EQ(got[2]["id"], 3);
  EXPECT_EQ(got[2]["error"]["code"], -32601);
  EXPECT_EQ(got[3]["id"], 4) << "the blank line got no answer of its own";
}

TEST(RpcErrorsUnix, LineJustUnder8MiBIsStillServed) {
  TempRepo repo;
  repo.start_daemon();
  UnixRpcClient c(repo.var() / "thrum.sock");
  std::string line = R"({"jsonrpc":"2.0","id":5,"method":"health","params":{"pad":")";
  line.append((8u << 20) - 4096, 'x');
  line += "\"}}";
  auto r = c.roundtrip(line, 20s);
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["id"], 5);
  EXPECT_EQ(r["result"]["status"], "ok");
}

TEST(RpcErrorsWs, FrameOver8MiBClosesThatConnectionOnly) {
  TempRepo repo;
  repo.start_daemon();
  const int pid = repo.daemon_pid();
  const auto port = *read_ws_port(repo.var());
  WsRpcClient bystander(port, ws_auth(repo.var(), "probe"));
  WsRpcClient big(port, ws_auth(repo.var(), "probe"));
  std::string frame = R"({"jsonrpc":"2.0","id":1,"method":"health","params":{"pad":")";
  frame.append((8u << 20) + 1024, 'x');
  frame += "\"}}";
  big.send_text(frame);
  EXPECT_FALSE(big.next_text(10s).has_value());
  EXPECT_FALSE(big.is_open()) << "an oversized frame closes that connection";
  EXPECT_TRUE(process_alive(pid));
  EXPECT_EQ(bystander.call("health")["result"]["status"], "ok");
}

TEST(RpcErrorsWs, NonLocalOriginIsRefused) {
  TempRepo repo;
  repo.start_daemon();
  const auto port = *read_ws_port(repo.var());
  // A browser page from elsewhere must not drive the daemon: curl-free check with a raw request.
  auto r =
      run_process("/bin/bash",
                  {"-c", "exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(port) +
                             " 2>/dev/null || exit 99; printf 'GET /ws HTTP/1.1\\r\\nHost: "
                             "127.0.0.1\\r\\nOrigin: http://evil.example\\r\\nConnection: "
                             "Upgrade\\r\\nUpgrade: websocket\\r\\nSec-WebSocket-Version: "
                             "13\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\n\\r\\n' "
                             ">&3; head -c 200 <&3"},
                  repo.root(), {}, std::nullopt, 10s);
  if (r.exit_code == 99) GTEST_SKIP() << "bash cannot open /dev/tcp here";
  EXPECT_NE(r.out.find("403"), std::string::npos) << r.out << r.err;
}

}  // namespace
}  // namespace thrum::test
