// Store: group commit on a real SQLite file. One bad job never takes its batch down with it,
// concurrent writers share commits, and what `done` reports is visible to the next read.
#include "thrum/core/store.hpp"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "support/manual_loop.hpp"
#include "support/temp_dir.hpp"

namespace thrum::core {
namespace {

using namespace std::chrono_literals;

/// A real EventLoop driven by the test thread (posts from any thread, a manual clock for the
/// deferred-commit timer).
using TestLoop = thrum::test::ManualLoop;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = std::make_unique<Store>(dir_ / "thrum.db", loop_, commit_on()); }
  virtual Store::CommitOn commit_on() const { return Store::CommitOn::kWriterThread; }
  void TearDown() override { store_.reset(); }

  static Store::Job insert_agent(std::string id) {
    return [id](sql::Db& db) {
      db.prepare(
            "INSERT INTO agents(agent_id, registered_at, last_seen_at) VALUES(?1, 'now', 'now')")
          .bind(1, id)
          .run();
    };
  }
  /// An agent row carrying `pad` as its intent: rows big enough to fill WAL pages quickly.
  static void insert_padded(sql::Db& db, const std::string& id, const std::string& pad) {
    db.prepare(
          "INSERT INTO agents(agent_id, intent, registered_at, last_seen_at) "
          "VALUES(?1, ?2, 'now', 'now')")
        .bind(1, id)
        .bind(2, pad)
        .run();
  }
  /// What PRAGMA synchronous says inside a job: 2 = FULL (fsync at commit), 1 = NORMAL.
  static int64_t sync_level(sql::Db& db) {
    auto st = db.prepare("PRAGMA synchronous");
    st.step();
    return st.integer(0);
  }
  int64_t count_agents() {
    auto st = store_->reader().prepare("SELECT count(*) FROM agents");
    st.step();
    return st.integer(0);
  }
  /// What the next process finds in the file: a fresh Store (its own loop, this fixture's mode).
  struct OnDisk {
    int64_t agents;
    int64_t intent_bytes;
  };
  OnDisk reopen_and_count() {
    TestLoop loop;
    Store reopened(dir_ / "thrum.db", loop, commit_on());
    auto st =
        reopened.reader().prepare("SELECT count(*), coalesce(sum(length(intent)), 0) FROM agents");
    st.step();
    return {st.integer(0), st.integer(1)};
  }
  bool agent_exists(const std::string& id) {
    auto st = store_->reader().prepare("SELECT 1 FROM agents WHERE agent_id=?1");
    st.bind(1, id);
    return st.step();
  }

  thrum::test::TempDir dir_{"thrum-store"};
  TestLoop loop_;
  std::unique_ptr<Store> store_;
};

std::string what(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  }
}

TEST_F(StoreTest, ReadAfterDoneSeesTheWrite) {
  for (int i = 0; i < 20; ++i) {
    bool done = false;
    std::exception_ptr err;
    const std::string id = "agent-" + std::to_string(i);
    store_->write(insert_agent(id), [&](std::exception_ptr e) {
      err = e;
      done = true;
      // Checked inside the callback too: this is where the daemon answers its client.
      EXPECT_TRUE(agent_exists(id));
    });
    ASSERT_TRUE(loop_.run_until([&] { return done; }));
    ASSERT_FALSE(err);
    EXPECT_TRUE(agent_exists(id));
    EXPECT_EQ(count_agents(), i + 1);
  }
}

TEST_F(StoreTest, FailingJobInABatchDoesNotUndoTheOthers) {
  // Hold the writer inside a first job so that the next three land in one batch.
  std::mutex gate;
  std::unique_lock hold(gate);
  std::atomic<bool> blocker_running{false};
  int done_count = 0;
  store_->write(
      [&](sql::Db& db) {
        blocker_running = true;
        std::lock_guard wait_for_test(gate);
        insert_agent("first")(db);
      },
      [&](std::exception_ptr e) {
        EXPECT_FALSE(e);
        ++done_count;
      });
  while (!blocker_running) std::this_thread::yield();

  std::vector<std::exception_ptr> results(3);
  std::vector<bool> reported(3, false);
  store_->write(insert_agent("alice"), [&](std::exception_ptr e) {
    results[0] = e;
    reported[0] = true;
  });
  store_->write(
      [](sql::Db& db) {
        insert_agent("half-done")(db);  // written, then the job fails: must be rolled back
        db.exec("INSERT INTO no_such_table VALUES(1)");
      },
      [&](std::exception_ptr e) {
        results[1] = e;
        reported[1] = true;
      });
  store_->write(insert_agent("bob"), [&](std::exception_ptr e) {
    results[2] = e;
    reported[2] = true;
  });
  hold.unlock();

  ASSERT_TRUE(loop_.run_until([&] { return reported[0] && reported[1] && reported[2]; }));
  EXPECT_EQ(done_count, 1);
  EXPECT_FALSE(results[0]);
  ASSERT_TRUE(results[1]) << "the failing job reports its own error";
  EXPECT_NE(what(results[1]).find("no_such_table"), std::string::npos) << what(results[1]);
  EXPECT_FALSE(results[2]);
  EXPECT_TRUE(agent_exists("first"));
  EXPECT_TRUE(agent_exists("alice"));
  EXPECT_TRUE(agent_exists("bob"));
  EXPECT_FALSE(agent_exists("half-done")) << "a failed job leaves nothing behind";
  EXPECT_EQ(store_->stats().commits, 2u) << "alice, the failure and bob shared one commit";
  EXPECT_EQ(store_->stats().jobs, 4u);
}

TEST_F(StoreTest, ConcurrentWritersShareCommits) {
  constexpr int kThreads = 8, kEach = 200;
  std::atomic<int> done{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t)
    writers.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i)
        store_->write(insert_agent("w" + std::to_string(t) + "-" + std::to_string(i)),
                      [&](std::exception_ptr e) {
                        if (e) ++failed;
                        ++done;
                      });
    });
  for (auto& w : writers) w.join();
  ASSERT_TRUE(loop_.run_until([&] { return done == kThreads * kEach; }, 60s));
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(count_agents(), kThreads * kEach);
  const auto stats = store_->stats();
  EXPECT_EQ(stats.jobs, static_cast<uint64_t>(kThreads * kEach));
  EXPECT_LT(stats.commits, stats.jobs) << "writers queued together must share a commit";
}

TEST_F(StoreTest, DeferredJobsCommitWithoutSyncAndSyncedOnesStillSync) {
  auto run = [&](Store::Durability d, const std::string& id) {
    int64_t level = -1;
    bool done = false;
    store_->write(
        [&, id](sql::Db& db) {
          level = sync_level(db);
          insert_agent(id)(db);
        },
        [&](std::exception_ptr e) {
          EXPECT_FALSE(e);
          EXPECT_TRUE(agent_exists(id)) << "a deferred commit is still committed before done";
          done = true;
        },
        d);
    EXPECT_TRUE(loop_.run_until([&] { return done; }));
    return level;
  };
  EXPECT_EQ(run(Store::Durability::kSynced, "a"), 2);
  EXPECT_EQ(run(Store::Durability::kDeferred, "b"), 1);
  EXPECT_EQ(run(Store::Durability::kDeferred, "c"), 1);
  EXPECT_EQ(run(Store::Durability::kSynced, "d"), 2) << "back to FULL for a synced job";
  EXPECT_EQ(store_->stats().unsynced_commits, 2u);

  // A batch mixing both kinds is synced as a whole.
  std::mutex gate;
  std::unique_lock hold(gate);
  std::atomic<bool> blocker_running{false};
  int done = 0;
  store_->write(
      [&](sql::Db&) {
        blocker_running = true;
        std::lock_guard wait_for_test(gate);
      },
      [&](std::exception_ptr) { ++done; }, Store::Durability::kDeferred);
  while (!blocker_running) std::this_thread::yield();
  int64_t mixed = -1;
  store_->write([&](sql::Db& db) { mixed = sync_level(db); }, [&](std::exception_ptr) { ++done; },
                Store::Durability::kDeferred);
  store_->write(insert_agent("e"), [&](std::exception_ptr) { ++done; });
  hold.unlock();
  ASSERT_TRUE(loop_.run_until([&] { return done == 3; }));
  EXPECT_EQ(mixed, 2);
  EXPECT_EQ(count_agents(), 5);
}

TEST_F(StoreTest, StatsCountTheWalBytesEachCommitAppendsAcrossCheckpoints) {
  // What benchmarks read from health.store.wal_bytes: whole frames (a page and its 24-byte
  // header), growing with every commit, also after the WAL starts over at a checkpoint.
  EXPECT_EQ(store_->stats().wal_bytes, 0u);
  uint64_t frame = 0;
  {
    auto ps = store_->reader().prepare("PRAGMA page_size");
    ps.step();
    frame = static_cast<uint64_t>(ps.integer(0)) + 24;
  }
  const std::string pad(3000, 'x');
  uint64_t last = 0;
  for (int i = 0; i < 400; ++i) {  // several pages a row: past the 1000-page checkpoint
    bool done = false;
    store_->write([&, id = "p" + std::to_string(i)](sql::Db& db) { insert_padded(db, id, pad); },
                  [&](std::exception_ptr e) {
                    EXPECT_FALSE(e);
                    done = true;
                  });
    ASSERT_TRUE(loop_.run_until([&] { return done; }));
    const uint64_t now = store_->stats().wal_bytes;
    ASSERT_GE(now, last + 3000 / (frame - 24) * frame) << "commit " << i;
    ASSERT_EQ(now % frame, 0u);
    last = now;
  }
  EXPECT_GT(last, 1000u * frame) << "the WAL was checkpointed and started over on the way";
}

TEST_F(StoreTest, ReaderSeesEveryCommitAndAReopenRecoversThemAllPastCheckpoints) {
  // The writer hands SQLite's WAL frames to the file in one write per transaction (sqlite.cpp,
  // "thrum-walbatch"): whatever a commit published must be readable by the other connection at
  // once, synced or not, across WAL checkpoints and restarts (rows of ~2 KiB, > 1000 pages).
  // Every 50th job writes 200 rows at once: a commit of ~100 pages (> 400 KiB of WAL).
  const std::string pad(2000, 'x');
  int done_count = 0;
  for (int i = 0; i < 3000; ++i) {
    const std::string id = "r" + std::to_string(i);
    auto done = std::make_shared<bool>(false);
    store_->write(
        [id, pad, big = i % 50 == 0](sql::Db& db) {
          for (int k = 0; k < (big ? 200 : 1); ++k)
            insert_padded(db, k == 0 ? id : id + "-" + std::to_string(k), pad);
        },
        [this, id, done, &done_count](std::exception_ptr e) {
          EXPECT_FALSE(e);
          EXPECT_TRUE(agent_exists(id)) << id;
          *done = true;
          ++done_count;
        },
        i % 3 == 0 ? Store::Durability::kSynced : Store::Durability::kDeferred);
    if (i % 7 == 0) {  // some one at a time
      ASSERT_TRUE(loop_.run_until([&] { return *done; }));
    }
  }
  ASSERT_TRUE(loop_.run_until([&] { return done_count == 3000; }, 60s));
  const int rows = 3000 + 60 * 199;
  EXPECT_EQ(count_agents(), rows);
  store_.reset();
  const auto on_disk = reopen_and_count();
  EXPECT_EQ(on_disk.agents, rows);
  EXPECT_EQ(on_disk.intent_bytes, int64_t{rows} * 2000);
}

TEST_F(StoreTest, CloseCommitsWhatIsQueuedAndRefusesLaterWrites) {
  int done = 0;
  for (int i = 0; i < 50; ++i)
    store_->write(insert_agent("q" + std::to_string(i)), [&](std::exception_ptr e) {
      EXPECT_FALSE(e);
      ++done;
    });
  store_->close();
  std::exception_ptr late;
  bool late_reported = false;
  store_->write(insert_agent("too-late"), [&](std::exception_ptr e) {
    late = e;
    late_reported = true;
  });
  ASSERT_TRUE(loop_.run_until([&] { return done == 50 && late_reported; }));
  ASSERT_TRUE(late);
  EXPECT_NE(what(late).find("closed"), std::string::npos) << what(late);
  store_->close();  // idempotent

  // Everything acknowledged is in the file for the next process.
  EXPECT_EQ(reopen_and_count().agents, 50);
}

TEST_F(StoreTest, DatabaseFromANewerThrumIsRefused) {
  store_.reset();
  {
    sql::Db db((dir_ / "thrum.db").string());
    db.exec("PRAGMA user_version=99");
  }
  TestLoop loop2;
  try {
    Store s(dir_ / "thrum.db", loop2);
    FAIL() << "a newer schema must not be opened";
  } catch (const sql::Error& e) {
    EXPECT_NE(std::string(e.what()).find("99"), std::string::npos) << e.what();
  }
}

// -- CommitOn::kLoop: the loop commits, with the same batching and durability -----------------

class LoopCommitTest : public StoreTest {
 protected:
  Store::CommitOn commit_on() const override { return Store::CommitOn::kLoop; }
};

TEST_F(LoopCommitTest, JobsRunOnTheLoopAndDoneSeesTheWrite) {
  const auto loop_thread = std::this_thread::get_id();  // run_until runs the loop here
  for (int i = 0; i < 20; ++i) {
    bool done = false;
    std::thread::id job_thread;
    const std::string id = "agent-" + std::to_string(i);
    store_->write(
        [&, id](sql::Db& db) {
          job_thread = std::this_thread::get_id();
          insert_agent(id)(db);
        },
        [&](std::exception_ptr e) {
          EXPECT_FALSE(e);
          EXPECT_TRUE(agent_exists(id)) << "done runs after the commit";
          done = true;
        });
    EXPECT_FALSE(done) << "write() only queues; the loop commits";
    ASSERT_TRUE(loop_.run_until([&] { return done; }));
    EXPECT_EQ(job_thread, loop_thread);
  }
  EXPECT_EQ(count_agents(), 20);
  EXPECT_EQ(store_->stats().commits, 20u);
}

TEST_F(LoopCommitTest, WritesQueuedBeforeTheFlushShareOneCommitAndAFailureStaysItsOwn) {
  // Three requests handled in one loop iteration: one commit, in order, the failing job alone
  // rolled back.
  std::vector<std::string> order;
  std::exception_ptr failed;
  store_->write(insert_agent("alice"), [&](std::exception_ptr e) {
    EXPECT_FALSE(e);
    order.push_back("alice");
  });
  store_->write(
      [](sql::Db& db) {
        insert_agent("half-done")(db);
        db.exec("INSERT INTO no_such_table VALUES(1)");
      },
      [&](std::exception_ptr e) {
        failed = e;
        order.push_back("failed");
      });
  store_->write(insert_agent("bob"), [&](std::exception_ptr e) {
    EXPECT_FALSE(e);
    order.push_back("bob");
  });
  EXPECT_EQ(loop_.run_ready(), 1) << "one flush for the three";
  EXPECT_EQ(order, (std::vector<std::string>{"alice", "failed", "bob"}));
  ASSERT_TRUE(failed);
  EXPECT_NE(what(failed).find("no_such_table"), std::string::npos) << what(failed);
  EXPECT_TRUE(agent_exists("alice"));
  EXPECT_TRUE(agent_exists("bob"));
  EXPECT_FALSE(agent_exists("half-done"));
  EXPECT_EQ(store_->stats().commits, 1u);
  EXPECT_EQ(store_->stats().jobs, 3u);
}

TEST_F(LoopCommitTest, ADoneThatWritesAgainGetsTheNextCommit) {
  bool second = false;
  store_->write(insert_agent("first"), [&](std::exception_ptr e) {
    EXPECT_FALSE(e);
    store_->write(insert_agent("second"), [&](std::exception_ptr e2) {
      EXPECT_FALSE(e2);
      second = true;
    });
  });
  ASSERT_TRUE(loop_.run_until([&] { return second; }));
  EXPECT_EQ(store_->stats().commits, 2u);
  EXPECT_EQ(count_agents(), 2);
}

TEST_F(LoopCommitTest, WritesFromOtherThreadsAreCommittedOnTheLoop) {
  constexpr int kThreads = 4, kEach = 100;
  std::atomic<int> done{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t)
    writers.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i)
        store_->write(insert_agent("w" + std::to_string(t) + "-" + std::to_string(i)),
                      [&](std::exception_ptr e) {
                        EXPECT_FALSE(e);
                        ++done;
                      });
    });
  for (auto& w : writers) w.join();
  ASSERT_TRUE(loop_.run_until([&] { return done == kThreads * kEach; }, 60s));
  EXPECT_EQ(count_agents(), kThreads * kEach);
  EXPECT_LT(store_->stats().commits, store_->stats().jobs);
}

TEST_F(LoopCommitTest, DeferredBatchesDoNotSyncAndMixedOnesDo) {
  int64_t deferred = -1, mixed = -1;
  int done = 0;
  store_->write([&](sql::Db& db) { deferred = sync_level(db); },
                [&](std::exception_ptr) { ++done; }, Store::Durability::kDeferred);
  // Alone, it waits for a synced write to share a commit with, then commits by itself.
  loop_.run_ready();
  EXPECT_EQ(done, 0);
  EXPECT_EQ(loop_.timers(), 1u);
  loop_.advance(Store::kDeferredWait);
  EXPECT_EQ(done, 1);
  store_->write([&](sql::Db& db) { mixed = sync_level(db); }, [&](std::exception_ptr) { ++done; },
                Store::Durability::kDeferred);
  store_->write(insert_agent("s"), [&](std::exception_ptr) { ++done; });
  ASSERT_TRUE(loop_.run_until([&] { return done == 3; }));
  EXPECT_EQ(deferred, 1);
  EXPECT_EQ(mixed, 2) << "a batch with a synced job is synced as a whole";
  EXPECT_EQ(store_->stats().unsynced_commits, 1u);
}

TEST_F(LoopCommitTest, ADeferredJobRidesWithTheNextSyncedCommit) {
  std::vector<std::string> order;
  store_->write(
      insert_agent("ack"),
      [&](std::exception_ptr e) {
        EXPECT_FALSE(e);
        order.push_back("ack");
      },
      Store::Durability::kDeferred);
  loop_.advance(Store::kDeferredWait / 2);
  EXPECT_TRUE(order.empty());
  store_->write(insert_agent("send"), [&](std::exception_ptr e) {
    EXPECT_FALSE(e);
    order.push_back("send");
  });
  loop_.run_ready();
  EXPECT_EQ(order, (std::vector<std::string>{"ack", "send"})) << "one commit, in queue order";
  EXPECT_EQ(store_->stats().commits, 1u);
  EXPECT_EQ(store_->stats().unsynced_commits, 0u);
  // The timer the deferred job armed finds nothing left to commit.
  loop_.advance(Store::kDeferredWait);
  EXPECT_EQ(store_->stats().commits, 1u);
  EXPECT_EQ(count_agents(), 2);
  // Closing commits a deferred job still waiting, and its timer then does nothing.
  bool late = false;
  store_->write(
      insert_agent("waiting"),
      [&](std::exception_ptr e) {
        EXPECT_FALSE(e);
        late = true;
      },
      Store::Durability::kDeferred);
  loop_.run_ready();
  store_->close();
  loop_.run_ready();
  EXPECT_TRUE(late);
  store_.reset();
  loop_.advance(Store::kDeferredWait);
  EXPECT_EQ(reopen_and_count().agents, 3);
}

TEST_F(LoopCommitTest, CloseCommitsWhatIsQueuedAndThePostedFlushDoesNothing) {
  int done = 0;
  for (int i = 0; i < 50; ++i)
    store_->write(insert_agent("q" + std::to_string(i)), [&](std::exception_ptr e) {
      EXPECT_FALSE(e);
      ++done;
    });
  store_->close();  // as at shutdown: the loop has stopped with the flush still posted
  EXPECT_EQ(store_->stats().commits, 1u);
  std::exception_ptr late;
  store_->write(insert_agent("too-late"), [&](std::exception_ptr e) { late = e; });
  store_.reset();  // the posted flush outlives the store (ASan checks it touches nothing)
  loop_.run_ready();
  EXPECT_EQ(done, 50);
  ASSERT_TRUE(late);
  EXPECT_NE(what(late).find("closed"), std::string::npos) << what(late);

  EXPECT_EQ(reopen_and_count().agents, 50);
}

TEST_F(LoopCommitTest, EveryCommitSurvivesCheckpointsAndAReopen) {
  const std::string pad(2000, 'x');
  int done_count = 0;
  for (int i = 0; i < 1500; ++i) {
    store_->write([id = "r" + std::to_string(i), pad](sql::Db& db) { insert_padded(db, id, pad); },
                  [&](std::exception_ptr e) {
                    EXPECT_FALSE(e);
                    ++done_count;
                  },
                  i % 2 == 0 ? Store::Durability::kSynced : Store::Durability::kDeferred);
    if (i % 5 == 0) loop_.run_ready();
  }
  ASSERT_TRUE(loop_.run_until([&] { return done_count == 1500; }, 60s));
  store_.reset();
  const auto on_disk = reopen_and_count();
  EXPECT_EQ(on_disk.agents, 1500);
  EXPECT_EQ(on_disk.intent_bytes, int64_t{1500} * 2000);
}

}  // namespace
}  // namespace thrum::core
