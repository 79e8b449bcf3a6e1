// PeerRouter (peers/router.hpp): which peer gets which copy of a message — one item per peer with
// every proxy it holds, @everyone once per live peer, replies threaded in the peer's numbering.
#include "peers/router.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "store/messages.hpp"
#include "testbed.hpp"
#include "thrum/common/bounded_json.hpp"
#include "thrum/core/peer_registry.hpp"

namespace thrum::core::peers {
namespace {

using json = nlohmann::json;

/// The peer.deliver params an item carries, as the peer will read them.
json payload(const OutboxItem& item) {
  auto doc = parse_bounded(item.wire);
  EXPECT_TRUE(doc.has_value()) << "the wire is not JSON: " << item.wire;
  return doc.value_or(json());
}

class RouterTest : public ::testing::Test {
 protected:
  RouterTest() : router_(*bed_.ctx, [](const std::string&) { return nullptr; }) {
    add_peer("api", "api");
    add_peer("infra", "infra");
  }
  void add_peer(const std::string& name, const std::string& prefix, bool removed = false) {
    PeerRecord r;
    r.name = name;
    r.address = "127.0.0.1:4200";
    r.daemon_id = "d_" + name;
    r.token = std::string(64, 'c');
    r.transport = "t1";
    r.role = "dialer";
    r.proxy_prefix = prefix;
    if (removed) r.removed_by_peer = "2026-12-02T00:00:00Z";
    bed_.ctx->registry.upsert(r);
  }
  static Agent proxy(const std::string& peer, const std::string& remote) {
    Agent a;
    a.agent_id = peer + ":" + remote;
    a.kind = "proxy";
    a.peer_name = peer;
    a.remote_name = remote;
    return a;
  }
  static StoredMessage message(const std::string& id = "msg_1") {
    StoredMessage m;
    m.message_id = id;
    m.author_id = "coordinator_main";
    m.body = "Auth module ready for review";
    m.format = "markdown";
    m.created_at = "2026-12-02T10:00:00Z";
    return m;
  }

  /// Stores `m` with a queued delivery row for each of `queued` (as a send to proxies does).
  void store_message(StoredMessage m, std::vector<std::string> queued) {
    bool done = false;
    bed_.store->write(
        [&](sql::Db& db) {
          m.audience = "agent:x";
          store::insert_message(db, m, "thr_" + m.message_id);
          for (const auto& q : queued) store::insert_queued_delivery(db, q, m.seq, m.message_id);
        },
        [&](std::exception_ptr e) {
          ASSERT_FALSE(e);
          done = true;
        });
    ASSERT_TRUE(bed_.loop.run_until([&] { return done; }));
  }

  /// Stores `id` as a message api's reviewer_api sent us, where it is `origin_id`.
  void store_from_api(const std::string& id, const std::string& origin_id) {
    StoredMessage in = message(id);
    in.author_id = "api:reviewer_api";
    in.origin_daemon = "d_api";
    in.origin_message_id = origin_id;
    in.origin_peer = "api";
    store_message(in, {});
  }
  /// api acknowledges our `local` for `recipient` as its `theirs` (the outbox pump's settle).
  void settle_on_api(const std::string& local, const std::string& theirs,
                     const std::string& recipient) {
    bool done = false;
    bed_.ctx->outbox.settle("api", {store::Settlement{1, true, local, theirs, "", {recipient}}},
                            [&](std::exception_ptr e) {
                              EXPECT_FALSE(e);
                              done = true;
                            });
    ASSERT_TRUE(bed_.loop.run_until([&] { return done; }));
  }

  test::PeerTestbed bed_;
  PeerRouter router_;
};

TEST_F(RouterTest, ProxiesOnOnePeerShareOneItemAndEachPeerGetsItsOwn) {
  Agent a = proxy("api", "reviewer_api"), b = proxy("api", "tester_api"), c = proxy("infra", "ops");
  auto items = router_.route(message(), {&a, &b, &c}, false);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].peer, "api");
  EXPECT_EQ(payload(items[0])["to"], json({"reviewer_api", "tester_api"}));
  EXPECT_EQ(items[0].queued_recipients,
            (std::vector<std::string>{"api:reviewer_api", "api:tester_api"}));
  EXPECT_EQ(payload(items[0])["origin_daemon"], "d_self");
  EXPECT_EQ(payload(items[0])["broadcast"], false);
  EXPECT_EQ(items[1].peer, "infra");
  EXPECT_EQ(payload(items[1])["to"], json({"ops"}));
}

TEST_F(RouterTest, TheWireIsTheDocumentItDescribesByteForByte) {
  // Written field by field; the bytes must be those of dumping the document (keys sorted), so
  // a peer of any version reads it and the outbox's stored rows do not change shape.
  Agent a = proxy("api", "reviewer_api");
  StoredMessage m = message("msg_wire");
  m.body = "tab\there \"quoted\" \\ caf\xC3\xA9 \x01 bad\xFF";
  auto items = router_.route(m, {&a}, false);
  ASSERT_EQ(items.size(), 1u);
  json doc = json::object();
  doc["message_id"] = m.message_id;
  doc["origin_daemon"] = "d_self";
  doc["author"] = m.author_id;
  doc["to"] = json::array({"reviewer_api"});
  doc["broadcast"] = false;
  doc["body"] = m.body;
  doc["format"] = m.format;
  doc["created_at"] = m.created_at;
  EXPECT_EQ(items[0].wire, doc.dump(-1, ' ', false, json::error_handler_t::replace));
}

TEST_F(RouterTest, EveryoneGoesOnceToEachLivePeerAndNeverToOneThatRemovedUs) {
  add_peer("gone", "gone", true);
  Agent a = proxy("api", "reviewer_api");
  auto items = router_.route(message(), {&a}, true);
  ASSERT_EQ(items.size(), 2u);
  for (auto& it : items) {
    EXPECT_NE(it.peer, "gone");
    EXPECT_EQ(payload(it)["broadcast"], true);
  }
  EXPECT_EQ(payload(items[0])["to"], json({"reviewer_api"}));
  EXPECT_EQ(items[0].queued_recipients.back(), "api:*");
  EXPECT_EQ(items[1].queued_recipients, std::vector<std::string>{"infra:*"});
}

TEST_F(RouterTest, AProxyWhosePeerIsGoneIsAClearError) {
  Agent a = proxy("nowhere", "x");
  try {
    router_.route(message(), {&a}, false);
    FAIL() << "routed to a removed peer";
  } catch (const rpc::Failure& f) {
    EXPECT_NE(std::string(f.what()).find("its peer was removed"), std::string::npos);
  }
}

TEST_F(RouterTest, AReplyCarriesThePeersIdForTheMessageItAnswers) {
  // We sent msg_local to api:reviewer_api; the peer acknowledged it as its msg_theirs.
  store_message(message("msg_local"), {"api:reviewer_api"});
  settle_on_api("msg_local", "msg_theirs", "api:reviewer_api");
  Agent a = proxy("api", "reviewer_api"), c = proxy("infra", "ops");
  StoredMessage m = message("msg_reply");
  m.reply_to = "msg_local";
  auto items = router_.route(m, {&a, &c}, false);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(payload(items[0])["reply_to"], "msg_theirs");
  EXPECT_FALSE(payload(items[1]).contains("reply_to")) << "infra never saw that message";
}

TEST_F(RouterTest, AReplyToAMessageFromAPeerCarriesItsIdThere) {
  // msg_in came over api, where it is msg_origin.
  store_from_api("msg_in", "msg_origin");
  Agent a = proxy("api", "reviewer_api"), c = proxy("infra", "ops");
  StoredMessage m = message("msg_reply");
  m.reply_to = "msg_in";
  auto items = router_.route(m, {&a, &c}, false);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(payload(items[0])["reply_to"], "msg_origin");
  EXPECT_FALSE(payload(items[1]).contains("reply_to")) << "msg_in never went to infra";
  // Reading it sends the receipt to api, in api's numbering.
  auto targets = bed_.ctx->outbox.receipt_targets({"msg_in", "msg_reply"});
  ASSERT_EQ(targets.size(), 1u);
  EXPECT_EQ(targets[0], std::make_pair(std::string("api"), std::string("msg_origin")));
}

TEST_F(RouterTest, RemovingAPeerForgetsTheIdsItGaveUs) {
  store_message(message("msg_local"), {"api:reviewer_api"});
  store_from_api("msg_in", "msg_origin");
  settle_on_api("msg_local", "msg_theirs", "api:reviewer_api");
  ASSERT_EQ(bed_.ctx->outbox.remote_id("api", "msg_local"), "msg_theirs");
  bool done = false;
  bed_.ctx->outbox.drop("api", "api", [&](int64_t, std::exception_ptr) { done = true; });
  ASSERT_TRUE(bed_.loop.run_until([&] { return done; }));
  EXPECT_EQ(bed_.ctx->outbox.remote_id("api", "msg_local"), std::nullopt);
  EXPECT_EQ(bed_.ctx->outbox.remote_id("api", "msg_in"), std::nullopt);
  EXPECT_TRUE(bed_.ctx->outbox.receipt_targets({"msg_in"}).empty());
}

TEST_F(RouterTest, PrefixesNameTheirPeer) {
  add_peer("mock-salesforce", "mock-sf");
  EXPECT_EQ(router_.peer_for_prefix("mock-sf"), "mock-salesforce");
  EXPECT_EQ(router_.peer_for_prefix("api"), "api");
  EXPECT_EQ(router_.peer_for_prefix("mock-salesforce"), std::nullopt);
}

}  // namespace
}  // namespace thrum::core::peers
