#pragma once
// What the store's SQL unit tests share: a real SQLite file in a temp dir with a Store on the
// manual loop, and the schemas earlier versions created, frozen here (the migrations must keep
// accepting them).

#include <exception>
#include <filesystem>
#include <memory>

#include <gtest/gtest.h>

#include "support/manual_loop.hpp"
#include "support/temp_dir.hpp"
#include "thrum/core/store.hpp"

namespace thrum::core::test {

/// Version 1, as it created a database.
inline constexpr const char* kFrozenV1 = R"sql(
CREATE TABLE agents (agent_id TEXT PRIMARY KEY, kind TEXT NOT NULL DEFAULT 'agent',
  role TEXT NOT NULL DEFAULT '', module TEXT NOT NULL DEFAULT '', display TEXT NOT NULL DEFAULT '',
  worktree TEXT NOT NULL DEFAULT '', hostname TEXT NOT NULL DEFAULT '', agent_pid INTEGER,
  intent TEXT NOT NULL DEFAULT '', session_id TEXT, session_started_at TEXT, peer_name TEXT,
  remote_name TEXT, registered_at TEXT NOT NULL, last_seen_at TEXT NOT NULL);
CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL UNIQUE,
  thread_id TEXT, reply_to TEXT, author_id TEXT NOT NULL, body TEXT NOT NULL,
  format TEXT NOT NULL DEFAULT 'markdown', audience TEXT NOT NULL, created_at TEXT NOT NULL,
  origin_daemon TEXT, origin_message_id TEXT);
CREATE INDEX messages_author ON messages(author_id, seq);
CREATE INDEX messages_thread ON messages(thread_id);
CREATE UNIQUE INDEX messages_origin ON messages(origin_daemon, origin_message_id)
  WHERE origin_daemon IS NOT NULL;
CREATE TABLE deliveries (recipient_id TEXT NOT NULL, seq INTEGER NOT NULL,
  message_id TEXT NOT NULL, delivered_at TEXT, read_at TEXT, failed TEXT,
  PRIMARY KEY (recipient_id, seq)) WITHOUT ROWID;
CREATE UNIQUE INDEX deliveries_message ON deliveries(message_id, recipient_id);
CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, peer TEXT NOT NULL, kind TEXT NOT NULL,
  message_id TEXT, payload TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE INDEX outbox_peer ON outbox(peer, id);
CREATE TABLE message_map (peer TEXT NOT NULL, local_id TEXT NOT NULL, remote_id TEXT NOT NULL,
  PRIMARY KEY (peer, local_id)) WITHOUT ROWID;
CREATE UNIQUE INDEX message_map_remote ON message_map(peer, remote_id);
PRAGMA user_version=1;
)sql";

/// A Store over `thrum.db` in a fresh directory (writer-thread mode, the default).
class StoreFileTest : public ::testing::Test {
 protected:
  void TearDown() override { store_.reset(); }
  std::filesystem::path db_path() const { return dir_ / "thrum.db"; }
  void open() { store_ = std::make_unique<Store>(db_path(), loop_); }
  /// Runs `job` in the store and waits for its commit, which must succeed.
  void commit(Store::Job job) {
    bool done = false;
    std::exception_ptr error;
    store_->write(std::move(job), [&](std::exception_ptr e) {
      error = e;
      done = true;
    });
    ASSERT_TRUE(loop_.run_until([&] { return done; }));
    ASSERT_FALSE(error);
  }

  thrum::test::TempDir dir_{"thrum-store"};
  thrum::test::ManualLoop loop_;
  std::unique_ptr<Store> store_;
};

}  // namespace thrum::core::test
