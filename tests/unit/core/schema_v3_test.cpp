// Schema v3 (the message map folded into the rows it described), on a real SQLite file: a
// database made by version 1 keeps every peer id it knew — replies still thread and read
// receipts still find their peer — and the map's table is gone.

#include <memory>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "store/outbox.hpp"
#include "store_file_test.hpp"
#include "thrum/core/sqlite.hpp"
#include "thrum/core/store.hpp"

namespace thrum::core {
namespace {

class SchemaV3Test : public test::StoreFileTest {
 protected:
  /// A version-1 database of a daemon paired with api and infra.
  void make_v1() {
    sql::Db db(db_path().string());
    db.exec("PRAGMA journal_mode=WAL");
    db.exec(test::kFrozenV1);
    db.exec(
        "INSERT INTO agents(agent_id, kind, peer_name, remote_name, registered_at, last_seen_at) "
        "VALUES('api:rev','proxy','api','rev','t','t'),('infra:ops','proxy','infra','ops','t','t'),"
        "('bob','agent',NULL,NULL,'t','t')");
    // m1 went to both peers, m2 to api, m4 to everyone on api; m3 came from api; m5 is queued.
    db.exec(
        "INSERT INTO messages(seq, message_id, author_id, body, audience, created_at, "
        "origin_daemon, origin_message_id) VALUES"
        "(1,'m1','bob','a','agent:api:rev,agent:infra:ops','t',NULL,NULL),"
        "(2,'m2','bob','b','agent:api:rev','t',NULL,NULL),"
        "(3,'m3','api:rev','c','agent:bob','t','d_api','r3'),"
        "(4,'m4','bob','d','broadcast:everyone','t',NULL,NULL),"
        "(5,'m5','bob','e','agent:api:rev','t',NULL,NULL)");
    db.exec(
        "INSERT INTO deliveries(recipient_id, seq, message_id, delivered_at) VALUES"
        "('api:rev',1,'m1','t'),('infra:ops',1,'m1','t'),('api:rev',2,'m2','t'),"
        "('bob',3,'m3','t'),('api:*',4,'m4','t'),('api:rev',5,'m5',NULL)");
    db.exec(
        "INSERT INTO message_map(peer, local_id, remote_id) VALUES"
        "('api','m1','r1a'),('infra','m1','r1i'),('api','m2','r2'),('api','m3','r3'),"
        "('api','m4','r4')");
  }
  void open_outbox() {
    open();
    outbox_ = std::make_unique<store::Outbox>(*store_);
  }
  void TearDown() override {
    outbox_.reset();
    StoreFileTest::TearDown();
  }
  bool table_exists(const std::string& name) {
    auto st = store_->reader().prepare("SELECT 1 FROM sqlite_master WHERE name=?1");
    st.bind(1, name);
    return st.step();
  }

  std::unique_ptr<store::Outbox> outbox_;
};

TEST_F(SchemaV3Test, AVersionOneDatabaseKeepsEveryPeerIdItKnew) {
  make_v1();
  open_outbox();
  {
    auto v = store_->reader().prepare("PRAGMA user_version");
    v.step();
    EXPECT_EQ(v.integer(0), Store::kSchemaVersion);
  }
  EXPECT_FALSE(table_exists("message_map"));
  // A message sent to two peers keeps each one's id, told apart by its recipients' rows.
  EXPECT_EQ(outbox_->remote_id("api", "m1"), "r1a");
  EXPECT_EQ(outbox_->remote_id("infra", "m1"), "r1i");
  EXPECT_EQ(outbox_->remote_id("api", "m2"), "r2");
  EXPECT_EQ(outbox_->remote_id("infra", "m2"), std::nullopt);
  // A broadcast row names no proxy; the message went to one peer only, so it is still placed.
  EXPECT_EQ(outbox_->remote_id("api", "m4"), "r4");
  // What came from api answers in api's numbering, and its read receipt goes there.
  EXPECT_EQ(outbox_->remote_id("api", "m3"), "r3");
  EXPECT_EQ(outbox_->remote_id("infra", "m3"), std::nullopt);
  auto targets = outbox_->receipt_targets({"m1", "m3"});
  ASSERT_EQ(targets.size(), 1u);
  EXPECT_EQ(targets[0], std::make_pair(std::string("api"), std::string("r3")));
  // A row still queued has no peer id until the peer answers for it.
  EXPECT_EQ(outbox_->remote_id("api", "m5"), std::nullopt);
  bool done = false;
  outbox_->settle("api", {store::Settlement{0, true, "m5", "r5", "", {"api:rev"}}},
                  [&](std::exception_ptr e) {
                    EXPECT_FALSE(e);
                    done = true;
                  });
  ASSERT_TRUE(loop_.run_until([&] { return done; }));
  EXPECT_EQ(outbox_->remote_id("api", "m5"), "r5");
  // And it all survives a reopen (no second migration runs).
  outbox_.reset();
  store_.reset();
  open_outbox();
  EXPECT_EQ(outbox_->remote_id("infra", "m1"), "r1i");
  EXPECT_EQ(outbox_->remote_id("api", "m5"), "r5");
}

TEST_F(SchemaV3Test, ANewDatabaseHasNoMessageMap) {
  open_outbox();
  EXPECT_FALSE(table_exists("message_map"));
  EXPECT_TRUE(table_exists("outbox"));
  EXPECT_EQ(outbox_->remote_id("api", "nothing"), std::nullopt);
}

}  // namespace
}  // namespace thrum::core
