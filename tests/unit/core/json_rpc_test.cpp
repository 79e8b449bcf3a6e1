// The JSON-RPC 2.0 envelope (SPEC §4): every way a request can be wrong gets its own error code,
// and the caller's id comes back on every answer it can be matched to.
#include "thrum/core/json_rpc.hpp"

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace thrum::core::rpc {
namespace {

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    d_.add("echo", [](const json& params, const CallContext&, Respond respond) {
      respond(json{{"params", params}});
    });
    d_.add("typed", [](const json& p, const CallContext&, Respond respond) {
      Params params(p);
      respond(json{{"name", params.str("name")},
                   {"count", params.opt_int("count").value_or(0)},
                   {"flag", params.flag("flag")}});
    });
    d_.add("refuse", [](const json&, const CallContext&, Respond) {
      fail("agent \"bob\" is not registered");
    });
    d_.add("unchecked", [](const json& p, const CallContext&, Respond respond) {
      respond(json{{"n", p.at("n").get<int>() + 1}});  // throws json::type_error on a string
    });
    d_.add("explode", [](const json&, const CallContext&, Respond) {
      throw std::runtime_error("disk on fire");
    });
    d_.add("later", [this](const json&, const CallContext&, Respond respond) {
      deferred_ = std::move(respond);
    });
    d_.add(
        "unix_only", [](const json&, const CallContext&, Respond respond) { respond(json("ok")); },
        Dispatcher::kUnix);
  }

  /// Every response the dispatcher produced for one request.
  std::vector<json> handle(const std::string& text,
                           CallContext::Channel channel = CallContext::Channel::kUnix) {
    std::vector<json> out;
    CallContext ctx;
    ctx.channel = channel;
    d_.handle(text, ctx, [&out](std::string r) { out.push_back(json::parse(r)); });
    return out;
  }
  /// The single response, failing the test if there is not exactly one.
  json one(const std::string& text, CallContext::Channel channel = CallContext::Channel::kUnix) {
    auto all = handle(text, channel);
    EXPECT_EQ(all.size(), 1u) << text;
    return all.empty() ? json() : all[0];
  }

  Dispatcher d_;
  Respond deferred_;
};

int code_of(const json& resp) {
  return resp.at("error").at("code").get<int>();
}
std::string message_of(const json& resp) {
  return resp.at("error").at("message").get<std::string>();
}

TEST_F(DispatcherTest, AnswersAWellFormedRequestWithItsId) {
  auto r = one(R"({"jsonrpc":"2.0","id":7,"method":"echo","params":{"a":1}})");
  EXPECT_EQ(r["jsonrpc"], "2.0");
  EXPECT_EQ(r["id"], 7);
  EXPECT_EQ(r["result"]["params"], json({{"a", 1}}));
  EXPECT_FALSE(r.contains("error"));

  auto s = one(R"({"jsonrpc":"2.0","id":"req-abc","method":"echo"})");
  EXPECT_EQ(s["id"], "req-abc");
  EXPECT_EQ(s["result"]["params"], json::object()) << "absent params are an empty object";
}

TEST_F(DispatcherTest, MalformedJsonIsParseErrorWithNullId) {
  for (const char* text :
       {"{not json", R"({"jsonrpc":"2.0","id":1,"method":"echo")", "", "\x01\x02"}) {
    auto r = one(text);
    EXPECT_EQ(code_of(r), kParseError) << text;
    EXPECT_TRUE(r.contains("id") && r["id"].is_null()) << text;
  }
}

TEST_F(DispatcherTest, WrongEnvelopeIsInvalidRequest) {
  auto wrong_version = one(R"({"jsonrpc":"1.0","id":3,"method":"echo"})");
  EXPECT_EQ(code_of(wrong_version), kInvalidRequest);
  EXPECT_EQ(wrong_version["id"], 3) << "the id is echoed when it could be read";
  EXPECT_EQ(code_of(one(R"({"id":3,"method":"echo"})")), kInvalidRequest);
  EXPECT_EQ(code_of(one(R"({"jsonrpc":2.0,"id":3,"method":"echo"})")), kInvalidRequest);
  EXPECT_EQ(code_of(one(R"({"jsonrpc":"2.0","id":3})")), kInvalidRequest);
  EXPECT_EQ(code_of(one(R"({"jsonrpc":"2.0","id":3,"method":42})")), kInvalidRequest);
  EXPECT_EQ(code_of(one(R"({"jsonrpc":"2.0","id":{"x":1},"method":"echo"})")), kInvalidRequest);
  EXPECT_EQ(code_of(one(R"([1,2,3])")), kInvalidRequest);
  EXPECT_EQ(code_of(one(R"("just a string")")), kInvalidRequest);
}

TEST_F(DispatcherTest, UnknownMethodNamesTheMethod) {
  auto r = one(R"({"jsonrpc":"2.0","id":9,"method":"message.sned"})");
  EXPECT_EQ(code_of(r), kMethodNotFound);
  EXPECT_EQ(message_of(r), "method 'message.sned' is not registered");
  EXPECT_EQ(r["id"], 9);
}

TEST_F(DispatcherTest, MethodOutsideItsScopeIsNotFoundOnThatChannel) {
  EXPECT_EQ(one(R"({"jsonrpc":"2.0","id":1,"method":"unix_only"})")["result"], "ok");
  auto r =
      one(R"({"jsonrpc":"2.0","id":1,"method":"unix_only"})", CallContext::Channel::kWebSocket);
  EXPECT_EQ(code_of(r), kMethodNotFound);
  EXPECT_EQ(message_of(r), "method 'unix_only' is not registered");
}

TEST_F(DispatcherTest, WrongParamTypesAreInvalidParamsNamingTheParam) {
  auto not_object = one(R"({"jsonrpc":"2.0","id":1,"method":"echo","params":[1,2]})");
  EXPECT_EQ(code_of(not_object), kInvalidParams);
  EXPECT_EQ(not_object["id"], 1);

  auto r = one(R"({"jsonrpc":"2.0","id":2,"method":"typed","params":{"name":42}})");
  EXPECT_EQ(code_of(r), kInvalidParams);
  EXPECT_NE(message_of(r).find("name"), std::string::npos) << message_of(r);
  EXPECT_EQ(r["id"], 2);

  auto missing = one(R"({"jsonrpc":"2.0","id":3,"method":"typed","params":{}})");
  EXPECT_EQ(code_of(missing), kInvalidParams);
  EXPECT_NE(message_of(missing).find("name is required"), std::string::npos);

  auto bad_int =
      one(R"({"jsonrpc":"2.0","id":4,"method":"typed","params":{"name":"a","count":"3"}})");
  EXPECT_EQ(code_of(bad_int), kInvalidParams);
  EXPECT_NE(message_of(bad_int).find("count"), std::string::npos);

  auto bad_flag =
      one(R"({"jsonrpc":"2.0","id":5,"method":"typed","params":{"name":"a","flag":"yes"}})");
  EXPECT_EQ(code_of(bad_flag), kInvalidParams);
  EXPECT_NE(message_of(bad_flag).find("flag"), std::string::npos);

  auto ok = one(
      R"({"jsonrpc":"2.0","id":6,"method":"typed","params":{"name":"a","count":3,"flag":true}})");
  EXPECT_EQ(ok["result"], json({{"name", "a"}, {"count", 3}, {"flag", true}}));
}

TEST_F(DispatcherTest, HandlerReadingAWrongTypeUncheckedIsStillInvalidParams) {
  auto r = one(R"({"jsonrpc":"2.0","id":1,"method":"unchecked","params":{"n":"five"}})");
  EXPECT_EQ(code_of(r), kInvalidParams);
  EXPECT_EQ(one(R"({"jsonrpc":"2.0","id":1,"method":"unchecked","params":{"n":5}})")["result"]["n"],
            6);
}

TEST_F(DispatcherTest, HandlerFailureBecomesHandlerErrorWithItsMessage) {
  auto r = one(R"({"jsonrpc":"2.0","id":"x","method":"refuse"})");
  EXPECT_EQ(code_of(r), kHandlerError);
  EXPECT_EQ(message_of(r), "agent \"bob\" is not registered");
  EXPECT_EQ(r["id"], "x");
}

TEST_F(DispatcherTest, UnexpectedExceptionIsInternalErrorAndTheDispatcherCarriesOn) {
  auto r = one(R"({"jsonrpc":"2.0","id":1,"method":"explode"})");
  EXPECT_EQ(code_of(r), kInternalError);
  EXPECT_NE(message_of(r).find("disk on fire"), std::string::npos);
  EXPECT_EQ(one(R"({"jsonrpc":"2.0","id":2,"method":"echo"})")["id"], 2);
}

TEST_F(DispatcherTest, RequestWithoutIdIsAnsweredWithoutId) {
  auto r = one(R"({"jsonrpc":"2.0","method":"echo"})");
  EXPECT_FALSE(r.contains("id"));
  EXPECT_TRUE(r.contains("result"));
  auto e = one(R"({"jsonrpc":"2.0","method":"nope"})");
  EXPECT_FALSE(e.contains("id"));
  EXPECT_EQ(code_of(e), kMethodNotFound);
}

TEST_F(DispatcherTest, DeferredResponseCarriesTheRightId) {
  std::vector<json> out;
  CallContext ctx;
  d_.handle(R"({"jsonrpc":"2.0","id":41,"method":"later"})", ctx,
            [&out](std::string r) { out.push_back(json::parse(r)); });
  EXPECT_TRUE(out.empty()) << "nothing is sent until the handler responds";
  ASSERT_TRUE(deferred_);
  deferred_(json{{"status", "received"}});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]["id"], 41);
  EXPECT_EQ(out[0]["result"]["status"], "received");
}

TEST_F(DispatcherTest, CallRunsAMethodDirectly) {
  std::optional<Outcome> got;
  d_.call("echo", json{{"k", "v"}}, CallContext{}, [&](Outcome o) { got = std::move(o); });
  ASSERT_TRUE(got.has_value());
  ASSERT_TRUE(got->ok());
  EXPECT_EQ(got->result()["params"]["k"], "v");
  got.reset();
  d_.call("nope", json::object(), CallContext{}, [&](Outcome o) { got = std::move(o); });
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->error().code, kMethodNotFound);
  EXPECT_EQ(got->error().message, "method 'nope' is not registered");
}

TEST_F(DispatcherTest, CallTurnsAHandlerFailureIntoAnError) {
  // Internal callers (e.g. the peer layer) get the handler's refusal as an Outcome, exactly
  // like a socket client would; the dispatcher must not lose the respond callback on the way.
  std::optional<Outcome> got;
  EXPECT_NO_THROW(
      d_.call("refuse", json::object(), CallContext{}, [&](Outcome o) { got = std::move(o); }));
  ASSERT_TRUE(got.has_value());
  ASSERT_FALSE(got->ok());
  EXPECT_EQ(got->error().code, kHandlerError);
  EXPECT_EQ(got->error().message, "agent \"bob\" is not registered");
}

TEST(JsonRpcEnvelope, NotificationHasMethodAndParamsButNoId) {
  auto n = json::parse(make_notification("notification.message", {{"message_id", "msg_1"}}));
  EXPECT_EQ(n["jsonrpc"], "2.0");
  EXPECT_EQ(n["method"], "notification.message");
  EXPECT_EQ(n["params"]["message_id"], "msg_1");
  EXPECT_FALSE(n.contains("id"));
}

TEST(JsonRpcEnvelope, InvalidUtf8InAResultDoesNotBreakTheResponse) {
  auto text = make_response(1, Outcome(json{{"body", std::string("bad \xff byte")}}), true);
  auto doc = json::parse(text, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << text;
  EXPECT_EQ(doc["id"], 1);
}

}  // namespace
}  // namespace thrum::core::rpc
