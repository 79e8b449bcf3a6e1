// The peer protocol's decoders (core/src/peers/protocol.*): what a hostile or buggy peer can
// send, and what each decoder makes of it.
#include "peers/protocol.hpp"

#include <gtest/gtest.h>

#include "peers/channel_binding.hpp"
#include "peers/link_auth.hpp"

namespace thrum::core::peers {
namespace {

std::string deep_array(int depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

TEST(PeerFrame, DeeplyNestedIdIsRefusedWithoutBeingBuilt) {
  // Issue 11 finding 1: this id made the listener SIGSEGV while `peer add` waited.
  auto f = decode_frame(
      "{\"jsonrpc\":\"2.0\",\"method\":\"pair.hello\",\"id\":" + deep_array(60000) + "}");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().find("deeper"), std::string::npos) << f.error();
}

TEST(PeerFrame, NonIntegerIdsAreRefused) {
  EXPECT_FALSE(decode_frame(R"({"method":"peer.hello","id":"7"})").ok());
  EXPECT_FALSE(decode_frame(R"({"method":"peer.hello","id":[1]})").ok());
  EXPECT_FALSE(decode_frame(R"({"method":"peer.hello","id":18446744073709551615})").ok());
  auto ok = decode_frame(R"({"method":"peer.hello","id":7,"params":{}})");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok.value().kind, Frame::Kind::kRequest);
  EXPECT_EQ(ok.value().id, 7);
}

TEST(PeerFrame, NotificationsAndBadParams) {
  auto n = decode_frame(R"({"method":"peer.removed"})");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n.value().kind, Frame::Kind::kNotification);
  EXPECT_FALSE(decode_frame(R"({"method":"peer.deliver","id":1,"params":[1,2]})").ok());
  EXPECT_FALSE(decode_frame(R"({"method":5,"id":1})").ok());
  EXPECT_FALSE(decode_frame("not json").ok());
  EXPECT_FALSE(decode_frame("[1,2,3]").ok());
  EXPECT_FALSE(decode_frame("{\"method\":\"x\",\"params\":{\"a\":\"\xff\"}}").ok());
}

TEST(PeerFrame, MalformedErrorStillAnswersTheCall) {
  // Issue 11 finding 3: a non-integer error.code threw out of ioc.run().
  auto f = decode_frame(R"({"id":3,"error":{"code":"boom","message":5}})");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f.value().kind, Frame::Kind::kResponse);
  EXPECT_EQ(f.value().id, 3);
  ASSERT_TRUE(f.value().error.has_value());
  EXPECT_EQ(f.value().error->code, rpc::kInternalError);
  auto good = decode_frame(R"({"id":4,"error":{"code":-32000,"message":"no\u0007pe"}})");
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(good.value().error->code, -32000);
  EXPECT_EQ(good.value().error->message, "no pe");  // control characters never reach a log
}

TEST(PeerFrame, ResultIsMovedOut) {
  auto f = decode_frame(R"({"id":9,"result":{"results":[{"message_id":"msg_1"}]}})");
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f.value().error.has_value());
  EXPECT_TRUE(f.value().result.is_object());
}

json item(json patch = json::object()) {
  json it = {{"message_id", "msg_01"}, {"author", "alice"},
             {"to", {"bob"}},          {"body", "hi"},
             {"format", "markdown"},   {"created_at", "2026-01-01T00:00:00Z"}};
  it.merge_patch(patch);
  return it;
}

TEST(PeerDeliver, BatchedItemsDecodeOneByOne) {
  json params = {{"items",
                  {item(), item({{"author", "Not Valid"}}), item({{"to", json::array()}}),
                   item({{"body", 5}}), item({{"to", {"@carol", "dave"}}})}}};
  auto d = decode_deliver(params);
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d.value().items.size(), 5u);
  EXPECT_TRUE(d.value().items[0].ok());
  EXPECT_FALSE(d.value().items[1].ok());
  EXPECT_NE(d.value().items[1].error().find("items[1]"), std::string::npos);
  EXPECT_FALSE(d.value().items[2].ok());  // `to: []` is no recipient
  EXPECT_NE(d.value().items[2].error().find("no recipient"), std::string::npos);
  EXPECT_FALSE(d.value().items[3].ok());
  ASSERT_TRUE(d.value().items[4].ok());
  EXPECT_EQ(d.value().items[4].value().to, (std::vector<std::string>{"carol", "dave"}));
}

TEST(PeerDeliver, OriginClaimedByTheFrameIsNotPartOfTheItem) {
  // Identity comes from the link: the decoder does not even read origin_daemon.
  auto d = decode_deliver({{"items", {item({{"origin_daemon", "d_someone_else"}})}}});
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(d.value().items[0].ok());
}

TEST(PeerDeliver, TooManyItemsIsRefusedAsAWhole) {
  json items = json::array();
  for (size_t i = 0; i < kMaxItemsPerFrame + 1; ++i) items.push_back(json::object());
  auto d = decode_deliver({{"items", items}});
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().find("more than 256"), std::string::npos) << d.error();
}

TEST(PeerDeliver, SingleFormIsStillUnderstood) {
  auto d = decode_deliver(item());
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d.value().batched);
  ASSERT_EQ(d.value().items.size(), 1u);
  EXPECT_TRUE(d.value().items[0].ok());
}

TEST(PeerDeliverAnswer, EveryResultIsTyped) {
  auto ok = decode_deliver_answer(
      {{"results", {{{"message_id", "msg_a"}}, {{"refused", "no agent named @x\nhere"}}}}}, 2);
  ASSERT_TRUE(ok.ok()) << ok.error();
  EXPECT_EQ(ok.value()[0].message_id, "msg_a");
  EXPECT_EQ(ok.value()[1].refused, "no agent named @x here");
  // Issue 11 finding 3: a non-string message_id threw out of ioc.run().
  EXPECT_FALSE(decode_deliver_answer({{"results", {{{"message_id", 5}}}}}, 1).ok());
  EXPECT_FALSE(decode_deliver_answer({{"results", {{{"message_id", "msg_a"}}}}}, 2).ok());
  EXPECT_FALSE(decode_deliver_answer("gotcha", 1).ok());
  EXPECT_FALSE(decode_deliver_answer({{"results", {json::object()}}}, 1).ok());
}

TEST(PeerReceipt, ReaderMustBeAnAgentName) {
  auto r = decode_receipt({{"items",
                            {{{"message_id", "msg_1"}, {"reader", "bob"}},
                             {{"message_id", "msg_2"}, {"reader", "../../etc"}}}}});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.value().items[0].ok());
  EXPECT_FALSE(r.value().items[1].ok());
}

TEST(PeerIdentity, FieldsAreTypedAndPlain) {
  EXPECT_TRUE(decode_identity({{"daemon_id", "d_1"}, {"name", "api"}}).ok());
  EXPECT_FALSE(decode_identity({{"daemon_id", 5}}).ok());
  EXPECT_FALSE(decode_identity({{"name", "evil\u001b[2J"}}).ok());
  EXPECT_FALSE(decode_identity("gotcha").ok());
}

TEST(PeerPairing, HelloAnswerGotchaIsRefused) {
  // Issue 11 finding 3: `"result":"gotcha"` from a fake listener, before any authentication.
  EXPECT_FALSE(decode_pair_hello_answer("gotcha").ok());
  EXPECT_FALSE(decode_pair_hello_answer({{"nonce", "xyz"}, {"daemon_id", "d_1"}}).ok());
  EXPECT_TRUE(
      decode_pair_hello_answer({{"nonce", std::string(64, 'a')}, {"daemon_id", "d_1"}}).ok());
  EXPECT_FALSE(decode_pair_proof_answer({{"proof", std::string(64, 'a')}, {"token", 7}}).ok());
}

TEST(PeerPresence, UnknownStatusesBecomeUnknown) {
  auto p = decode_presence({{"agents", {{{"name", "bob"}, {"status", "pwned"}}}}});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.value()[0].status, "unknown");
  EXPECT_FALSE(decode_presence({{"agents", {{{"name", 1}}}}}).ok());
}

TEST(PeerAddressChange, PortMustBeAPort) {
  EXPECT_TRUE(decode_address_change({{"new_ip", "127.0.0.1"}, {"new_port", 5}}).ok());
  EXPECT_FALSE(decode_address_change({{"new_ip", "127.0.0.1"}, {"new_port", 70000}}).ok());
  EXPECT_FALSE(decode_address_change({{"new_ip", "127.0.0.1"}, {"new_port", "5"}}).ok());
}

TEST(PeerEndpoint, ParsesOnlyRealPorts) {
  EXPECT_EQ(parse_endpoint("127.0.0.1:9").value().port, 9);
  EXPECT_FALSE(parse_endpoint("127.0.0.1:0"));
  EXPECT_FALSE(parse_endpoint("127.0.0.1:99999"));
  EXPECT_FALSE(parse_endpoint("127.0.0.1:"));
  EXPECT_FALSE(parse_endpoint(":80"));
  EXPECT_FALSE(parse_endpoint("127.0.0.1:8a"));
}

TEST(LinkAuth, ProofsDependOnEveryTranscriptFieldAndRole) {
  link_auth::Transcript t{"ni", "nr", "tid", "d_i", "d_r", "local", "tcp:a>b"};
  const std::string token(64, 'f');
  const auto base = link_auth::proof(token, link_auth::Role::kInitiator, t);
  EXPECT_EQ(base.size(), 64u);
  EXPECT_NE(base, link_auth::proof(token, link_auth::Role::kResponder, t));
  auto changed = t;
  changed.channel_binding = "tcp:a>c";  // a relay's second connection
  EXPECT_NE(base, link_auth::proof(token, link_auth::Role::kInitiator, changed));
  changed = t;
  changed.responder_nonce = "nr2";
  EXPECT_NE(base, link_auth::proof(token, link_auth::Role::kInitiator, changed));
  EXPECT_NE(base, link_auth::proof(std::string(64, 'e'), link_auth::Role::kInitiator, t));
}

TEST(LinkAuth, TokenIdRevealsNothingOfTheToken) {
  const std::string token(64, 'a');
  const auto id = link_auth::token_id(token);
  EXPECT_EQ(id.size(), link_auth::kTokenIdChars);
  EXPECT_EQ(token.find(id), std::string::npos);
  EXPECT_NE(id, link_auth::token_id(std::string(64, 'b')));
}

TEST(ChannelBinding, TlsFingerprintsAndEndpointsCombine) {
  EXPECT_EQ(channel_binding("", "", ""), "");
  EXPECT_EQ(channel_binding("tcp:a>b", "", ""), "tcp:a>b");
  EXPECT_EQ(channel_binding("", "c1", "c2"), "|tls:c1>c2");
  EXPECT_EQ(endpoint_binding(-1, true), "");
}

}  // namespace
}  // namespace thrum::core::peers
