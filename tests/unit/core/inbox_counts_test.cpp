// Inbox counts kept in the write transaction (schema v2) and keyset pages of an inbox, on a real
// SQLite file: whatever writes the delivery rows, the counts `inbox` and `team` show are the
// ones a full count of the rows gives, and a database made by the v1 schema gets exact counts
// when this version opens it.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "store/messages.hpp"
#include "store_file_test.hpp"
#include "thrum/core/sqlite.hpp"
#include "thrum/core/store.hpp"

namespace thrum::core {
namespace {

class InboxCountsTest : public test::StoreFileTest {
 protected:
  /// A message from `author` delivered to `recipients`; returns its id.
  std::string send(const std::string& author, std::vector<std::string> recipients) {
    const std::string id = "msg_" + std::to_string(++n_);
    commit([=](sql::Db& db) {
      StoredMessage m;
      m.message_id = id;
      m.author_id = author;
      m.body = "body " + id;
      m.format = "markdown";
      m.audience = "agent:" + recipients.front();
      m.created_at = "2026-01-01T00:00:00Z";
      m.recipients = recipients;
      store::insert_message(db, m, "thr_" + id);
    });
    return id;
  }

  /// What a scan of the delivery rows gives: {delivered, delivered unread} for the inbox.
  store::InboxCounts scanned(const std::string& agent) {
    auto st = store_->reader().prepare(
        "SELECT count(*), coalesce(sum(read_at IS NULL), 0) FROM deliveries WHERE "
        "recipient_id=?1 AND delivered_at IS NOT NULL");
    st.bind(1, agent);
    st.step();
    return {st.integer(0), st.integer(1)};
  }
  void expect_counts(const std::string& agent, int64_t total, int64_t unread) {
    const auto kept = store::inbox_counts(store_->reader(), agent);
    const auto scan = scanned(agent);
    EXPECT_EQ(kept.total, total) << agent;
    EXPECT_EQ(kept.unread, unread) << agent;
    EXPECT_EQ(kept.total, scan.total) << agent;
    EXPECT_EQ(kept.unread, scan.unread) << agent;
  }

  int n_ = 0;
};

TEST_F(InboxCountsTest, CountsFollowDeliveriesReadsAndPeerAcks) {
  open();
  expect_counts("alice", 0, 0);
  send("bob", {"alice"});
  send("bob", {"alice", "carol"});
  const std::string third = send("carol", {"alice"});
  expect_counts("alice", 3, 3);
  expect_counts("carol", 1, 1);

  std::vector<std::string> newly, unknown;
  commit([&](sql::Db& db) {
    store::mark_read(db, "alice", {third, "msg_nope"}, "2026-01-01T00:00:01Z", &newly, &unknown);
  });
  expect_counts("alice", 3, 2);
  // Marking the same message again changes nothing.
  commit([&](sql::Db& db) {
    store::mark_read(db, "alice", {third}, "2026-01-01T00:00:02Z", nullptr, nullptr);
  });
  expect_counts("alice", 3, 2);
  commit([&](sql::Db& db) { store::mark_all_read(db, "alice", "2026-01-01T00:00:03Z", nullptr); });
  expect_counts("alice", 3, 0);
  expect_counts("carol", 1, 1);

  // A delivery queued for a peer is not in the inbox until the peer acknowledges it, but team
  // (all_inbox_counts) counts it for the proxy right away.
  const std::string queued = send("alice", {"carol"});
  commit([&](sql::Db& db) { store::insert_queued_delivery(db, "api:reviewer", 999, queued); });
  expect_counts("api:reviewer", 0, 0);
  auto all = store::all_inbox_counts(store_->reader());
  EXPECT_EQ(all["api:reviewer"].total, 1);
  EXPECT_EQ(all["api:reviewer"].unread, 1);
  EXPECT_EQ(all["alice"].total, 3);
  EXPECT_EQ(all["alice"].unread, 0);
  commit([&](sql::Db& db) {
    db.prepare("UPDATE deliveries SET delivered_at='now' WHERE recipient_id='api:reviewer'").run();
  });
  expect_counts("api:reviewer", 1, 1);
  // A row moved to another recipient (an agent renamed) moves its counts with it.
  commit([&](sql::Db& db) {
    db.prepare("UPDATE deliveries SET recipient_id='carol2' WHERE recipient_id='carol'").run();
  });
  expect_counts("carol", 0, 0);
  expect_counts("carol2", 2, 2);
}

TEST_F(InboxCountsTest, AFailedJobLeavesTheCountsAsTheyWere) {
  open();
  send("bob", {"alice"});
  bool done = false;
  store_->write(
      [](sql::Db& db) {
        StoredMessage m;
        m.message_id = "msg_x";
        m.author_id = "bob";
        m.body = "x";
        m.format = "markdown";
        m.audience = "agent:alice";
        m.created_at = "2026-01-01T00:00:00Z";
        m.recipients = {"alice"};
        store::insert_message(db, m, "thr_x");
        throw std::runtime_error("job fails after its insert");
      },
      [&](std::exception_ptr) { done = true; });
  ASSERT_TRUE(loop_.run_until([&] { return done; }));
  expect_counts("alice", 1, 1);
}

TEST_F(InboxCountsTest, ADatabaseMadeByVersionOneGetsExactCounts) {
  {
    sql::Db db(db_path().string());
    db.exec("PRAGMA journal_mode=WAL");
    db.exec(test::kFrozenV1);
    db.exec(
        "INSERT INTO messages(seq, message_id, author_id, body, audience, created_at) VALUES"
        "(1,'m1','bob','a','agent:alice','t'),(2,'m2','bob','b','agent:alice','t'),"
        "(3,'m3','bob','c','agent:alice','t')");
    db.exec(
        "INSERT INTO deliveries(recipient_id, seq, message_id, delivered_at, read_at) VALUES"
        "('alice',1,'m1','t','t'),('alice',2,'m2','t',NULL),('alice',3,'m3','t',NULL),"
        "('carol',3,'m3','t',NULL),('api:rev',3,'m3',NULL,NULL)");
  }
  open();
  {
    auto v = store_->reader().prepare("PRAGMA user_version");
    v.step();
    EXPECT_EQ(v.integer(0), Store::kSchemaVersion);
  }
  expect_counts("alice", 3, 2);
  expect_counts("carol", 1, 1);
  expect_counts("api:rev", 0, 0);
  EXPECT_EQ(store::all_inbox_counts(store_->reader())["api:rev"].total, 1);
  // And the triggers keep them from there on, after a reopen too.
  send("bob", {"alice"});
  store_.reset();
  open();
  expect_counts("alice", 4, 3);
}

TEST_F(InboxCountsTest, PagesFollowEachOtherWithoutGapsOrRepeats) {
  open();
  std::vector<std::string> sent;
  for (int i = 0; i < 45; ++i) sent.push_back(send(i % 3 ? "bob" : "carol", {"alice"}));
  send("bob", {"carol"});  // someone else's message is never on alice's pages

  std::vector<std::string> seen;
  std::optional<int64_t> before;
  for (int page = 0; page < 10; ++page) {
    auto entries = store::inbox_page(store_->reader(), "alice", false, 20, before);
    if (entries.empty()) break;
    for (const auto& e : entries) seen.push_back(e.message.message_id);
    before = store::delivery_seq(store_->reader(), "alice", entries.back().message.message_id);
    ASSERT_TRUE(before);
  }
  std::vector<std::string> newest_first(sent.rbegin(), sent.rend());
  EXPECT_EQ(seen, newest_first);
  EXPECT_FALSE(store::delivery_seq(store_->reader(), "alice", "msg_unknown"));
}

}  // namespace
}  // namespace thrum::core
