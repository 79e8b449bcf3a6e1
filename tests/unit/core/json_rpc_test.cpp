// The JSON-RPC 2.0 envelope (SPEC §4): every way a request can be wrong gets its own error code,
// and the caller's id comes back on every answer it can be matched to.
#include "thrum/core/json_rpc.hpp"

#include "thrum/core/incidents.hpp"
#include "thrum/core/log_throttle.hpp"

#include <limits>
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
    d_.add("throw_int", [](const json&, const CallContext&, Respond) { throw 42; });
    d_.add("answer_then_throw", [](const json&, const CallContext&, Respond respond) {
      respond(json("first"));
      throw std::runtime_error("after answering");
    });
    d_.add("answer_twice", [](const json&, const CallContext&, Respond respond) {
      respond(json("first"));
      respond(json("second"));
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

std::uint64_t handler_exceptions() {
  return Incidents::global().count(Incident::kHandlerException);
}

TEST_F(DispatcherTest, NonStandardExceptionIsInternalErrorCountedAndContained) {
  const auto before = handler_exceptions();
  std::vector<json> out;
  EXPECT_NO_THROW(out = handle(R"({"jsonrpc":"2.0","id":1,"method":"throw_int"})"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(code_of(out[0]), kInternalError);
  EXPECT_EQ(out[0]["id"], 1);
  EXPECT_EQ(handler_exceptions(), before + 1);
  EXPECT_EQ(one(R"({"jsonrpc":"2.0","id":2,"method":"echo"})")["id"], 2);
}

TEST_F(DispatcherTest, AHandlerThatThrowsAfterAnsweringIsAnsweredOnce) {
  const auto before = handler_exceptions();
  auto all = handle(R"({"jsonrpc":"2.0","id":1,"method":"answer_then_throw"})");
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0]["result"], "first");
  EXPECT_EQ(handler_exceptions(), before + 1);
  auto twice = handle(R"({"jsonrpc":"2.0","id":2,"method":"answer_twice"})");
  ASSERT_EQ(twice.size(), 1u) << "a second answer to one request is dropped";
  EXPECT_EQ(twice[0]["result"], "first");
}

TEST_F(DispatcherTest, AReplyCallbackThatThrowsDoesNotEscape) {
  const auto before = handler_exceptions();
  CallContext ctx;
  auto throwing = [](std::string) { throw std::runtime_error("socket gone"); };
  EXPECT_NO_THROW(d_.handle(R"({"jsonrpc":"2.0","id":1,"method":"echo"})", ctx, throwing));
  EXPECT_NO_THROW(d_.handle("{broken", ctx, throwing));
  EXPECT_NO_THROW(d_.handle(R"({"jsonrpc":"2.0","id":1,"method":"later"})", ctx, throwing));
  ASSERT_TRUE(deferred_);
  EXPECT_NO_THROW(deferred_(json("late")));  // the deferred answer runs under the same guard
  EXPECT_EQ(handler_exceptions(), before + 3);
  EXPECT_NO_THROW(d_.call("echo", json::object(), ctx, [](Outcome) { throw 7; }));
}

TEST_F(DispatcherTest, IdIsOnlyAStringAnIntegerOrNull) {
  EXPECT_EQ(one(R"({"jsonrpc":"2.0","id":null,"method":"echo"})")["id"], nullptr);
  for (const char* text : {R"({"jsonrpc":"2.0","id":1.5,"method":"echo"})",
                           R"({"jsonrpc":"2.0","id":true,"method":"echo"})",
                           R"({"jsonrpc":"2.0","id":[1],"method":"echo"})"}) {
    auto r = one(text);
    EXPECT_EQ(code_of(r), kInvalidRequest) << text;
    EXPECT_TRUE(r["id"].is_null()) << "a refused id is never echoed: " << text;
  }
  const std::string long_id(Dispatcher::kMaxIdBytes + 1, 'x');
  auto r = one(R"({"jsonrpc":"2.0","id":")" + long_id + R"(","method":"echo"})");
  EXPECT_EQ(code_of(r), kInvalidRequest);
  EXPECT_TRUE(r["id"].is_null());
  EXPECT_LT(r.dump().size(), 400u) << "the answer does not grow with the id";
}

TEST_F(DispatcherTest, DeeplyNestedRequestIsAParseErrorNamingTheDepth) {
  const int depth = 60000;
  std::string deep_id = R"({"jsonrpc":"2.0","method":"echo","id":)" + std::string(depth, '[') +
                        std::string(depth, ']') + "}";
  auto r = one(deep_id);
  EXPECT_EQ(code_of(r), kParseError);
  EXPECT_NE(message_of(r).find("deeper than"), std::string::npos) << message_of(r);
  std::string deep_params = R"({"jsonrpc":"2.0","id":1,"method":"echo","params":{"a":)" +
                            std::string(depth, '[') + std::string(depth, ']') + "}}";
  EXPECT_EQ(code_of(one(deep_params)), kParseError);
}

TEST_F(DispatcherTest, AnUnknownHugeMethodNameIsNotEchoedWhole) {
  const std::string name(100000, 'm');
  auto r = one(R"({"jsonrpc":"2.0","id":1,"method":")" + name + R"("})");
  EXPECT_EQ(code_of(r), kMethodNotFound);
  EXPECT_LT(message_of(r).size(), 200u);
}

TEST_F(DispatcherTest, AConnectionBoundToAnAgentActsAsThatAgentOnly) {
  CallContext ctx;
  ctx.channel = CallContext::Channel::kWebSocket;
  ctx.agent = "alice";
  std::vector<json> out;
  auto collect = [&out](std::string r) { out.push_back(json::parse(r)); };
  d_.handle(R"({"jsonrpc":"2.0","id":1,"method":"echo"})", ctx, collect);
  d_.handle(R"({"jsonrpc":"2.0","id":2,"method":"echo","params":{"caller_agent_id":"alice"}})", ctx,
            collect);
  d_.handle(R"({"jsonrpc":"2.0","id":3,"method":"echo","params":{"caller_agent_id":"bob"}})", ctx,
            collect);
  d_.handle(R"({"jsonrpc":"2.0","id":4,"method":"echo","params":{"caller_agent_id":7}})", ctx,
            collect);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0]["result"]["params"]["caller_agent_id"], "alice");
  EXPECT_EQ(out[1]["result"]["params"]["caller_agent_id"], "alice");
  EXPECT_EQ(code_of(out[2]), kInvalidParams);
  EXPECT_NE(message_of(out[2]).find("alice"), std::string::npos);
  EXPECT_EQ(code_of(out[3]), kInvalidParams);
}

TEST(Params, GettersThrowOnlyFailureWhateverTheParamsHold) {
  for (const json& p : {json::array({1, 2}), json("text"), json(nullptr), json(3)}) {
    Params params(p);
    EXPECT_THROW(params.str("name"), Failure);
    EXPECT_EQ(params.opt_str("name"), std::nullopt);
    EXPECT_EQ(params.opt_int("n"), std::nullopt);
    EXPECT_FALSE(params.flag("f"));
    EXPECT_TRUE(params.str_list("to").empty());
  }
  json big = json::parse(R"({"n":18446744073709551615,"m":9223372036854775807,"k":-5})");
  Params params(big);
  try {
    params.opt_int("n");
    ADD_FAILURE() << "an integer beyond int64 was accepted";
  } catch (const Failure& f) {
    EXPECT_EQ(f.code, kInvalidParams);
    EXPECT_NE(std::string(f.what()).find("out of range"), std::string::npos);
  }
  EXPECT_EQ(params.opt_int("m"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(params.opt_int("k"), -5);
  EXPECT_THROW(Params(json{{"to", {"a", 1}}}).str_list("to"), Failure);
}

TEST(LogThrottle, OneLinePerWindowCarryingTheCountOfSuppressedEvents) {
  using clock = LogThrottle::clock;
  LogThrottle t(std::chrono::seconds(10));
  const auto t0 = clock::time_point{} + std::chrono::hours(1);
  EXPECT_EQ(t.admit(t0), 1u) << "the first event is logged at once";
  for (int i = 1; i <= 500; ++i) EXPECT_EQ(t.admit(t0 + std::chrono::milliseconds(i)), 0u);
  EXPECT_EQ(t.admit(t0 + std::chrono::seconds(10)), 501u)
      << "the next line reports every event since the last one";
  EXPECT_EQ(t.admit(t0 + std::chrono::seconds(11)), 0u);
  EXPECT_EQ(t.admit(t0 + std::chrono::seconds(30)), 2u);
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
