// Unit tests of the `thrum mcp serve` units (cli/mcp_*): framing, the session's protocol
// handling, tool argument decoding against a fake daemon, and the push line decoder.
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "client.hpp"
#include "mcp_push.hpp"
#include "mcp_session.hpp"
#include "mcp_stdio.hpp"
#include "mcp_tools.hpp"

namespace thrum::cli::mcp {
namespace {

using json = nlohmann::json;

// -- LineSplitter ------------------------------------------------------------------------------

TEST(McpLineSplitter, SplitsAcrossChunksAndDropsCr) {
  LineSplitter s(100);
  EXPECT_TRUE(s.feed("{\"a\":").empty());
  auto lines = s.feed("1}\r\n{\"b\":2}\n{\"c\"");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].text, "{\"a\":1}");
  EXPECT_EQ(lines[1].text, "{\"b\":2}");
  auto last = s.finish();
  ASSERT_TRUE(last);
  EXPECT_EQ(last->text, "{\"c\"");
}

TEST(McpLineSplitter, TooLongLineIsReportedOnceAndSkipped) {
  LineSplitter s(8);
  auto lines = s.feed("0123456789");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(lines[0].too_long);
  lines = s.feed("more\nok\n");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_FALSE(lines[0].too_long);
  EXPECT_EQ(lines[0].text, "ok");
  EXPECT_FALSE(s.finish());
}

// -- Tools against a fake daemon ---------------------------------------------------------------

struct FakeDaemon {
  std::vector<std::pair<std::string, json>> calls;
  std::function<json(const std::string&, const json&)> answer =
      [](const std::string&, const json&) { return json::object(); };
  DaemonCall fn() {
    return [this](const std::string& m, const json& p, std::chrono::milliseconds) {
      calls.emplace_back(m, p);
      return answer(m, p);
    };
  }
};

TEST(McpTools, ListIsSmallAndEveryToolHasAnObjectSchema) {
  const json l = Tools::list();
  EXPECT_LE(l.dump().size(), 6u * 1024);
  std::vector<std::string> names;
  for (const auto& t : l["tools"]) {
    names.push_back(t["name"]);
    EXPECT_EQ(t["inputSchema"]["type"], "object") << t["name"];
  }
  EXPECT_EQ(names, (std::vector<std::string>{"send_message", "check_messages", "wait_for_message",
                                             "list_agents", "message_status", "list_peers"}));
}

TEST(McpTools, SendMessagePassesRecipientsAndReturnsTheIds) {
  FakeDaemon d;
  d.answer = [](const std::string&, const json&) {
    return json{{"message_id", "msg_1"}, {"thread_id", nullptr}, {"recipients", {"bob"}}};
  };
  Tools t(d.fn(), "alice");
  json r = t.call("send_message", {{"to", "@api:bob"}, {"content", "hi"}});
  EXPECT_FALSE(r.contains("isError"));
  EXPECT_EQ(r["structuredContent"]["message_id"], "msg_1");
  EXPECT_EQ(r["structuredContent"]["recipients"], json({"bob"}));
  ASSERT_EQ(d.calls.size(), 1u);
  EXPECT_EQ(d.calls[0].first, "message.send");
  EXPECT_EQ(d.calls[0].second["caller_agent_id"], "alice");
  EXPECT_EQ(d.calls[0].second["to"], json({"@api:bob"}));
}

TEST(McpTools, BadArgumentsAreToolErrorsNamingTheArgument) {
  FakeDaemon d;
  Tools t(d.fn(), "alice");
  auto err = [&](const std::string& tool, const json& args) {
    json r = t.call(tool, args);
    EXPECT_EQ(r.value("isError", false), true) << tool << " " << args.dump();
    return r["content"][0]["text"].get<std::string>();
  };
  EXPECT_NE(err("send_message", {{"to", "@bob"}}).find("content is required"), std::string::npos);
  EXPECT_NE(err("send_message", {{"to", 5}, {"content", "x"}}).find("to must be"),
            std::string::npos);
  EXPECT_NE(err("send_message", {{"content", "x"}}).find("missing recipient"), std::string::npos);
  EXPECT_NE(err("check_messages", {{"limit", 0}}).find("limit must be between 1 and 100"),
            std::string::npos);
  EXPECT_NE(err("check_messages", {{"peek", "yes"}}).find("peek must be true or false"),
            std::string::npos);
  EXPECT_NE(err("wait_for_message", {{"timeout", 601}}).find("between 0 and 600"),
            std::string::npos);
  EXPECT_NE(err("message_status", json::object()).find("message_id is required"),
            std::string::npos);
  EXPECT_NE(err("list_agents", {{"bogus", 1}}).find("unknown argument 'bogus'"), std::string::npos);
  EXPECT_NE(err("no_such_tool", json::object()).find("unknown tool"), std::string::npos);
  EXPECT_TRUE(d.calls.empty()) << "nothing reaches the daemon when the arguments are wrong";
}

TEST(McpTools, DaemonRefusalIsAToolErrorWithItsMessage) {
  FakeDaemon d;
  d.answer = [](const std::string&, const json&) -> json {
    throw RpcError(-32000, "unknown recipient @nobody");
  };
  Tools t(d.fn(), "alice");
  json r = t.call("send_message", {{"to", "@nobody"}, {"content", "x"}});
  EXPECT_EQ(r["isError"], true);
  EXPECT_EQ(r["content"][0]["text"], "unknown recipient @nobody");
}

TEST(McpTools, CheckMessagesPeekDoesNotMarkRead) {
  FakeDaemon d;
  d.answer = [](const std::string&, const json&) {
    return json{{"messages", json::array()}, {"total", 0}, {"unread", 0}};
  };
  Tools t(d.fn(), "alice");
  t.call("check_messages", {{"peek", true}});
  t.call("check_messages", json::object());
  ASSERT_EQ(d.calls.size(), 2u);
  EXPECT_EQ(d.calls[0].second["mark_read"], false);
  EXPECT_EQ(d.calls[1].second["mark_read"], true);
  EXPECT_EQ(d.calls[1].second["unread"], true);
}

TEST(McpTools, WaitReturnsAtOnceWhenSomethingIsUnread) {
  FakeDaemon d;
  d.answer = [](const std::string& m, const json&) {
    if (m == "message.list")
      return json{{"messages", {{{"message_id", "msg_9"}, {"body", "b"}, {"author", "bob"}}}}};
    return json{{"status", "timeout"}};
  };
  Tools t(d.fn(), "alice");
  json r = t.call("wait_for_message", {{"timeout", 600}});
  EXPECT_EQ(r["structuredContent"]["status"], "received");
  EXPECT_EQ(r["structuredContent"]["messages"][0]["message_id"], "msg_9");
  for (const auto& c : d.calls) EXPECT_NE(c.first, "message.wait");
}

TEST(McpTools, ListAgentsSaysWhichPeerAProxyIsReachedThrough) {
  FakeDaemon d;
  d.answer = [](const std::string&, const json&) {
    return json{{"members",
                 {{{"agent_id", "alice"}, {"status", "active"}, {"is_local", true}},
                  {{"agent_id", "api:bob"},
                   {"status", "active"},
                   {"is_local", false},
                   {"peer_name", "api"}}}}};
  };
  Tools t(d.fn(), "alice");
  json a = t.call("list_agents", json::object())["structuredContent"]["agents"];
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0]["me"], true);
  EXPECT_FALSE(a[0].contains("via_peer"));
  EXPECT_EQ(a[1]["via_peer"], "api");
}

// -- Session -----------------------------------------------------------------------------------

struct Wire {
  std::vector<json> sent;
  Session::Send fn() {
    return [this](const json& m) { sent.push_back(m); };
  }
};

json init_line(const std::string& version) {
  return json{{"jsonrpc", "2.0"},
              {"id", 1},
              {"method", "initialize"},
              {"params", {{"protocolVersion", version}, {"capabilities", json::object()}}}};
}

TEST(McpSession, NegotiatesTheClientsRevisionWhenSupportedElseOurNewest) {
  FakeDaemon d;
  Tools t(d.fn(), "alice");
  Wire w;
  Session s(t, w.fn(), [](std::function<void()> j) { j(); });
  s.handle_line(init_line("2025-06-18").dump());
  s.handle_line(init_line("1999-01-01").dump());
  ASSERT_EQ(w.sent.size(), 2u);
  EXPECT_EQ(w.sent[0]["result"]["protocolVersion"], "2025-06-18");
  EXPECT_EQ(w.sent[1]["result"]["protocolVersion"], kProtocolVersions[0]);
  EXPECT_TRUE(w.sent[0]["result"]["capabilities"]["experimental"].contains("claude/channel"));
  EXPECT_EQ(w.sent[0]["result"]["capabilities"]["resources"]["subscribe"], true);
}

TEST(McpSession, RefusesBadLinesWithoutStopping) {
  FakeDaemon d;
  Tools t(d.fn(), "alice");
  Wire w;
  Session s(t, w.fn(), [](std::function<void()> j) { j(); });
  s.handle_line("{not json");
  s.handle_line(std::string(100, '[') + std::string(100, ']'));
  s.handle_line(R"({"jsonrpc":"2.0","id":2,"method":"tools/list"})");  // before initialize
  s.handle_line(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  s.handle_line(init_line("2025-06-18").dump());
  s.handle_line(R"({"jsonrpc":"2.0","id":3,"method":"no/such"})");
  s.handle_line(R"({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":7}})");
  ASSERT_EQ(w.sent.size(), 6u);
  EXPECT_EQ(w.sent[0]["error"]["code"], -32700);
  EXPECT_EQ(w.sent[1]["error"]["code"], -32700);
  EXPECT_EQ(w.sent[2]["error"]["code"], -32600);
  EXPECT_EQ(w.sent[3]["id"], 1);
  EXPECT_EQ(w.sent[4]["error"]["code"], -32601);
  EXPECT_EQ(w.sent[5]["error"]["code"], -32602);
}

TEST(McpSession, PushesAChannelNotificationAndInboxUpdateOnlyWhenSubscribed) {
  FakeDaemon d;
  Tools t(d.fn(), "alice");
  Wire w;
  Session s(t, w.fn(), [](std::function<void()> j) { j(); });
  const json msg = {{"message_id", "msg_1"},
                    {"author", "api:bob"},
                    {"body", "hello"},
                    {"thread_id", nullptr},
                    {"created_at", "2026-01-01T00:00:00Z"}};
  s.message_arrived(msg);
  EXPECT_TRUE(w.sent.empty()) << "nothing is pushed before initialize";
  s.handle_line(init_line("2025-06-18").dump());
  s.message_arrived(msg);
  ASSERT_EQ(w.sent.size(), 2u);
  EXPECT_EQ(w.sent[1]["method"], "notifications/claude/channel");
  EXPECT_EQ(w.sent[1]["params"]["content"], "hello");
  EXPECT_EQ(w.sent[1]["params"]["meta"]["from"], "api:bob");
  EXPECT_EQ(w.sent[1]["params"]["meta"]["message_id"], "msg_1");
  EXPECT_FALSE(w.sent[1]["params"]["meta"].contains("thread_id")) << "meta values are strings";
  s.handle_line(
      R"({"jsonrpc":"2.0","id":5,"method":"resources/subscribe","params":{"uri":"thrum://inbox"}})");
  s.message_arrived(msg);
  ASSERT_EQ(w.sent.size(), 5u);
  EXPECT_EQ(w.sent[4]["method"], "notifications/resources/updated");
  EXPECT_EQ(w.sent[4]["params"]["uri"], "thrum://inbox");
}

// -- Push line decoding ------------------------------------------------------------------------

TEST(McpPush, OnlyMessageReceivedNotificationsAreMessages) {
  EXPECT_TRUE(received_message(
      R"({"jsonrpc":"2.0","method":"message.received","params":{"message":{"message_id":"m"}}})"));
  EXPECT_FALSE(received_message(R"({"jsonrpc":"2.0","id":1,"result":{"subscribed":true}})"));
  EXPECT_FALSE(received_message(R"({"jsonrpc":"2.0","method":"message.received","params":1})"));
  EXPECT_FALSE(received_message("garbage"));
}

}  // namespace
}  // namespace thrum::cli::mcp
