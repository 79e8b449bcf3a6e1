#include "thrum/core/store.hpp"

#include <pthread.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

namespace thrum::core {

namespace {

constexpr auto kGroupCommitWait = std::chrono::microseconds(1000);
constexpr int kCheckpointPages = 1000;  // SQLite's default for its automatic checkpoint
constexpr int kPageSize = 512;          // new databases; docs/design-decisions.md, "Page size"

// Version 1. Later versions append steps; a database newer than this binary is refused.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE IF NOT EXISTS agents (
  agent_id TEXT PRIMARY KEY,
  kind TEXT NOT NULL DEFAULT 'agent',         -- 'agent' | 'proxy'
  role TEXT NOT NULL DEFAULT '',
  module TEXT NOT NULL DEFAULT '',
  display TEXT NOT NULL DEFAULT '',
  worktree TEXT NOT NULL DEFAULT '',
  hostname TEXT NOT NULL DEFAULT '',
  agent_pid INTEGER,
  intent TEXT NOT NULL DEFAULT '',
  session_id TEXT,
  session_started_at TEXT,
  peer_name TEXT,                             -- proxies: the peer they live on
  remote_name TEXT,                           -- proxies: the agent's name over there
  registered_at TEXT NOT NULL,
  last_seen_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  message_id TEXT NOT NULL UNIQUE,
  thread_id TEXT,
  reply_to TEXT,
  author_id TEXT NOT NULL,
  body TEXT NOT NULL,
  format TEXT NOT NULL DEFAULT 'markdown',
  audience TEXT NOT NULL,                     -- 'agent:<id>' | 'broadcast:everyone'
  created_at TEXT NOT NULL,
  origin_daemon TEXT,                         -- set when the message came over a peer link
  origin_message_id TEXT
);
CREATE INDEX IF NOT EXISTS messages_author ON messages(author_id, seq);
CREATE INDEX IF NOT EXISTS messages_thread ON messages(thread_id);
CREATE UNIQUE INDEX IF NOT EXISTS messages_origin ON messages(origin_daemon, origin_message_id)
  WHERE origin_daemon IS NOT NULL;
CREATE TABLE IF NOT EXISTS deliveries (
  recipient_id TEXT NOT NULL,
  seq INTEGER NOT NULL,                       -- messages.seq, so an inbox is one index range
  message_id TEXT NOT NULL,
  delivered_at TEXT,                          -- NULL while queued for a peer
  read_at TEXT,
  failed TEXT,                                -- why a peer refused it (never retried)
  PRIMARY KEY (recipient_id, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS deliveries_message ON deliveries(message_id, recipient_id);
-- Durable per-peer queue of what still has to cross a link, in order.
CREATE TABLE IF NOT EXISTS outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  peer TEXT NOT NULL,
  kind TEXT NOT NULL,                         -- 'deliver' | 'receipt'
  message_id TEXT,
  payload TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_peer ON outbox(peer, id);
-- Our message id <-> the peer's id for the same message, both directions, so replies thread.
CREATE TABLE IF NOT EXISTS message_map (
  peer TEXT NOT NULL,
  local_id TEXT NOT NULL,
  remote_id TEXT NOT NULL,
  PRIMARY KEY (peer, local_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS message_map_remote ON message_map(peer, remote_id);
)sql";

// A delivery row's contribution to its recipient's counts row (schema v2, below): taking the
// old row's away, and adding the new row's (creating the counts row if needed). The triggers
// of v2 and v3 are built from these two, so every trigger counts the same way.
constexpr const char* kCountsSubtractOld = R"sql(
  UPDATE inbox_counts SET rows = rows - 1, rows_unread = rows_unread - (OLD.read_at IS NULL),
    inbox = inbox - (OLD.delivered_at IS NOT NULL),
    inbox_unread = inbox_unread - (OLD.delivered_at IS NOT NULL AND OLD.read_at IS NULL)
    WHERE recipient_id = OLD.recipient_id;
)sql";
constexpr const char* kCountsAddNew = R"sql(
  INSERT INTO inbox_counts(recipient_id, rows, rows_unread, inbox, inbox_unread)
    VALUES(NEW.recipient_id, 1, NEW.read_at IS NULL, NEW.delivered_at IS NOT NULL,
           NEW.delivered_at IS NOT NULL AND NEW.read_at IS NULL)
    ON CONFLICT(recipient_id) DO UPDATE SET rows = rows + 1,
      rows_unread = rows_unread + excluded.rows_unread, inbox = inbox + excluded.inbox,
      inbox_unread = inbox_unread + excluded.inbox_unread;
)sql";

// Version 2: per-recipient counts kept by triggers inside the transaction that changes a
// delivery row, so message.list and team read one row instead of counting an inbox
// (docs/design-decisions.md, "Inbox counts maintained in the write transaction").
//   rows / rows_unread: every delivery row (queued ones too), and those without read_at
//   inbox / inbox_unread: delivered rows only (what `inbox` shows), and those without read_at
// Each trigger adds the new row's contribution and subtracts the old one's, whatever writes
// the row; the backfill makes the counts of an existing database exact at migration.
// Also: messages_thread goes. No statement looks messages up by thread_id (threads are joined
// through the parent's message_id), so the index cost a page per message and served nothing.
constexpr const char* kSchemaV2Tables = R"sql(
DROP INDEX IF EXISTS messages_thread;
CREATE TABLE IF NOT EXISTS inbox_counts (
  recipient_id TEXT PRIMARY KEY,
  rows INTEGER NOT NULL DEFAULT 0,
  rows_unread INTEGER NOT NULL DEFAULT 0,
  inbox INTEGER NOT NULL DEFAULT 0,
  inbox_unread INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
INSERT OR REPLACE INTO inbox_counts(recipient_id, rows, rows_unread, inbox, inbox_unread)
  SELECT recipient_id, count(*), sum(read_at IS NULL), sum(delivered_at IS NOT NULL),
         sum(delivered_at IS NOT NULL AND read_at IS NULL)
  FROM deliveries GROUP BY recipient_id;
)sql";

// Version 3: the message map folds into the rows it described, so a message costs two B-tree
// pages fewer on each side (the map's table and its index; docs/design-decisions.md, "Schema
// v3: the message map lives on its rows").
//   messages.origin_peer: the peer a message came over (its id there is origin_message_id),
//     which is where read receipts and replies to it go.
//   deliveries.peer / deliveries.remote_id: on a row that crossed a link, the peer that
//     stored it and the id it gave it there (set by the acknowledgement, in the UPDATE that
//     marks the row delivered: no page of its own), which replies to it use.
// The backfill moves every map row that can be placed: inbound messages by their origin id;
// a message the map knows on one peer only by that; a message sent to several peers by the
// prefix of its recipients' rows, matched to the peer through its current proxies.
// Also: the counts' update trigger splits in two. A row that keeps its recipient (a peer's
// ack, a read: every update on the message path) changes its counts row with one UPDATE, and
// only when a NULL-ness that is counted changes; a row moved to another recipient (an agent
// renamed) still subtracts from one and adds to the other.
constexpr const char* kSchemaV3Body = R"sql(
ALTER TABLE messages ADD COLUMN origin_peer TEXT;
ALTER TABLE deliveries ADD COLUMN peer TEXT;
ALTER TABLE deliveries ADD COLUMN remote_id TEXT;
UPDATE messages SET origin_peer = mm.peer FROM message_map mm
  WHERE messages.origin_daemon IS NOT NULL AND mm.local_id = messages.message_id
    AND mm.remote_id = messages.origin_message_id;
UPDATE deliveries SET peer = mm.peer, remote_id = mm.remote_id
  FROM (SELECT local_id, min(peer) AS peer, min(remote_id) AS remote_id FROM message_map
        GROUP BY local_id HAVING count(*) = 1) AS mm
  WHERE deliveries.message_id = mm.local_id AND instr(deliveries.recipient_id, ':') > 0
    AND deliveries.delivered_at IS NOT NULL;
CREATE TEMP TABLE v3_peer_prefix AS
  SELECT DISTINCT peer_name AS peer, substr(agent_id, 1, instr(agent_id, ':') - 1) AS prefix
  FROM agents WHERE kind = 'proxy' AND peer_name IS NOT NULL AND instr(agent_id, ':') > 1;
UPDATE deliveries SET peer = mm.peer, remote_id = mm.remote_id
  FROM message_map mm JOIN v3_peer_prefix pp ON pp.peer = mm.peer
  WHERE deliveries.peer IS NULL AND deliveries.delivered_at IS NOT NULL
    AND deliveries.message_id = mm.local_id
    AND pp.prefix = substr(deliveries.recipient_id, 1, instr(deliveries.recipient_id, ':') - 1);
DROP TABLE v3_peer_prefix;
DROP TABLE message_map;
DROP TRIGGER IF EXISTS deliveries_count_update;
CREATE TRIGGER deliveries_count_update_same
AFTER UPDATE OF recipient_id, delivered_at, read_at ON deliveries
WHEN OLD.recipient_id = NEW.recipient_id
  AND ((OLD.delivered_at IS NULL) != (NEW.delivered_at IS NULL)
       OR (OLD.read_at IS NULL) != (NEW.read_at IS NULL)) BEGIN
  UPDATE inbox_counts SET rows_unread = rows_unread + (NEW.read_at IS NULL) - (OLD.read_at IS NULL),
    inbox = inbox + (NEW.delivered_at IS NOT NULL) - (OLD.delivered_at IS NOT NULL),
    inbox_unread = inbox_unread + (NEW.delivered_at IS NOT NULL AND NEW.read_at IS NULL)
                                - (OLD.delivered_at IS NOT NULL AND OLD.read_at IS NULL)
    WHERE recipient_id = NEW.recipient_id;
END;
)sql";

std::string schema_v2() {
  return std::string(kSchemaV2Tables) +
         "CREATE TRIGGER IF NOT EXISTS deliveries_count_insert AFTER INSERT ON deliveries BEGIN" +
         kCountsAddNew +
         "END;\n"
         "CREATE TRIGGER IF NOT EXISTS deliveries_count_delete AFTER DELETE ON deliveries BEGIN" +
         kCountsSubtractOld +
         "END;\n"
         "CREATE TRIGGER IF NOT EXISTS deliveries_count_update\n"
         "AFTER UPDATE OF recipient_id, delivered_at, read_at ON deliveries BEGIN" +
         kCountsSubtractOld + kCountsAddNew + "END;\n";
}

std::string schema_v3() {
  return std::string(kSchemaV3Body) +
         "CREATE TRIGGER deliveries_count_update_moved\n"
         "AFTER UPDATE OF recipient_id, delivered_at, read_at ON deliveries\n"
         "WHEN OLD.recipient_id != NEW.recipient_id BEGIN" +
         kCountsSubtractOld + kCountsAddNew + "END;\n";
}

}  // namespace

Store::Store(const std::filesystem::path& path, EventLoop& loop, CommitOn commit_on,
             bool batch_wal_writes)
    : loop_(loop), writer_(path.string(), false, batch_wal_writes), commit_on_(commit_on) {
  stats_.wal_batch = batch_wal_writes;
  // A new database gets 512-byte pages: a message dirties 13-17 B-tree pages (rows and index
  // entries of a few dozen bytes each, leaf splits, the header) and each goes to the WAL
  // whole, so the page size is what a message costs on disk: ~9 KB on the sender at 512 bytes,
  // ~15 KB at 1 KiB, ~60 KB at 4 KiB. Ignored for an existing database (WAL mode fixes the
  // page size); docs/design-decisions.md, "Page size".
  writer_.exec("PRAGMA page_size=" + std::to_string(kPageSize));
  if (commit_on_ == CommitOn::kLoop) {
    // One connection does everything (below), and the daemon lock keeps a second daemon out:
    // the WAL index can live in this process's heap. Set before the first WAL access, so
    // SQLite never maps var/thrum.db-shm nor takes its fcntl() locks, two or more syscalls
    // per transaction and per read statement. Another process opening the database while
    // the daemon runs gets "database is locked" (docs/design-decisions.md, "Store: where
    // commits run").
    writer_.exec("PRAGMA locking_mode=EXCLUSIVE");
  }
  writer_.exec("PRAGMA journal_mode=WAL");
  // FULL: a commit is on disk (WAL fsynced) before we acknowledge anything built on it.
  writer_.exec("PRAGMA synchronous=FULL");
  writer_.exec("PRAGMA foreign_keys=ON");
  // Every job runs in a savepoint, and a savepoint journals the original of each page it
  // changes. With the default temp_store that statement journal spills into a temp file past
  // 64 KiB: thousands of 4 KiB pwrite()s a second under load, for data that is never read back
  // unless a job fails. Keep it in memory; it is dropped at each commit.
  writer_.exec("PRAGMA temp_store=MEMORY");
  migrate();
  {
    auto ps = writer_.prepare("PRAGMA page_size");
    ps.step();
    frame_bytes_ = static_cast<int>(ps.integer(0)) + 24;
  }
  // Replaces SQLite's automatic checkpoint, which would run inside the commit that crossed
  // 1000 pages and hold up every caller in that batch for a few milliseconds (see run_writer).
  sqlite3_wal_hook(writer_.handle(), &Store::on_wal_commit, this);
  if (commit_on_ == CommitOn::kLoop) {
    // Jobs and reads run on the same thread, never interleaved (a flush runs its jobs and
    // commits before the loop does anything else), so reads use the writer's connection: its
    // page cache is never stale, where a second connection re-read from the WAL, one pread
    // each, every page a commit had changed (docs/design-decisions.md, "Store: where commits
    // run").
    reads_ = &writer_;
  } else {
    reader_ = sql::Db(path.string());
    reader_.exec("PRAGMA query_only=ON");
    thread_ = std::thread([this] { run_writer(); });
  }
}

int Store::on_wal_commit(void* self, sqlite3*, const char*, int frames) {
  auto* store = static_cast<Store*>(self);  // on the committing thread
  store->wal_pages_ = frames;
  // `frames` is the WAL's length after this commit; it starts over after a checkpoint.
  store->wal_frames_ +=
      static_cast<uint64_t>(frames >= store->wal_seen_ ? frames - store->wal_seen_ : frames);
  store->wal_seen_ = frames;
  return SQLITE_OK;
}

Store::~Store() {
  close();
  *alive_ = false;  // a flush still posted to the loop finds the store gone and does nothing
}

void Store::migrate() {
  int version = 0;
  {
    // Finalized before the steps run: DROP INDEX refuses while a statement is active.
    auto st = writer_.prepare("PRAGMA user_version");
    st.step();
    version = static_cast<int>(st.integer(0));
  }
  if (version > kSchemaVersion) {
    throw sql::Error("database schema version " + std::to_string(version) +
                     " is newer than this thrum understands (" + std::to_string(kSchemaVersion) +
                     "); upgrade thrum, or move var/thrum.db aside to start empty");
  }
  // Each step is one transaction: a crash mid-migration leaves the previous version intact.
  const std::string steps[] = {kSchemaV1, schema_v2(), schema_v3()};
  static_assert(sizeof(steps) / sizeof(steps[0]) == kSchemaVersion);
  for (int v = version + 1; v <= kSchemaVersion; ++v) {
    writer_.exec("BEGIN IMMEDIATE");
    try {
      writer_.exec(steps[v - 1]);
      writer_.exec("PRAGMA user_version=" + std::to_string(v));
      writer_.exec("COMMIT");
    } catch (...) {
      writer_.exec("ROLLBACK");
      throw;
    }
  }
}

void Store::write(Job job, Done done, Durability durability) {
  {
    std::lock_guard lk(mu_);
    if (!closing_) {
      queue_.push_back(Pending{std::move(job), std::move(done), durability});
      if (durability == Durability::kSynced) ++synced_queued_;
      if (commit_on_ == CommitOn::kLoop) {
        if (durability == Durability::kDeferred) {
          // Waits for the next synced write's flush (it takes the whole queue), or for
          // kDeferredWait: committed with that write, a peer's acknowledgement rewrites pages
          // the write dirties anyway (the delivery row's leaf, the outbox's), so it costs the
          // WAL almost nothing instead of a transaction of its own.
          if (flush_posted_ || deferred_armed_) return;
          deferred_armed_ = true;
          loop_.post([this, alive = alive_] {  // timers are armed on the loop thread
            if (!*alive) return;
            loop_.run_after(kDeferredWait, [this, alive] {
              if (*alive) flush_deferred();
            });
          });
          return;
        }
        // One flush for everything queued before it runs: behind the handlers already ready,
        // so the requests read in this loop iteration share its commit.
        if (!flush_posted_) {
          flush_posted_ = true;
          loop_.post([this, alive = alive_] {
            if (*alive) flush_on_loop();
          });
        }
        return;
      }
      // Wake the writer only when it has something to act on: a first job, or the last one
      // of the group it is waiting for (a wake-up per job costs two context switches).
      if (queue_.size() == 1 || synced_queued_ == expect_) cv_.notify_one();
      return;
    }
  }
  auto err = std::make_exception_ptr(sql::Error("store is closed (daemon shutting down)"));
  loop_.post([done = std::move(done), err] {
    if (done) done(err);
  });
}

void Store::run_writer() {
  ::pthread_setname_np(::pthread_self(), "thrum-store");  // for top -H, perf, /proc/<pid>/task
  std::vector<Pending> batch;
  // Group commit across writers that each wait for their previous write before the next (e.g.
  // N agents sending): the synced jobs of the last batch plus those that queued while it
  // committed are the writers currently active. When more than one is, wait (up to
  // kGroupCommitWait) until that many synced jobs are queued, so that the writers whose
  // commit just finished join the ones already waiting, and one fsync serves them all instead
  // of alternating halves. A lone writer (expect_ == 1) never waits.
  size_t in_batch = 0;  // synced jobs in the batch being committed
  for (;;) {
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return closing_ || !queue_.empty(); });
      if (queue_.empty() && closing_) return;
      if (expect_ > 1 && synced_queued_ < expect_)
        cv_.wait_for(lk, kGroupCommitWait, [&] { return closing_ || synced_queued_ >= expect_; });
      in_batch = synced_queued_;
      take_queue_locked(batch);
    }
    const std::vector<std::exception_ptr> results = commit(batch);
    {
      std::lock_guard lk(mu_);
      // Counted before the dones go out: what queued meanwhile came from other writers.
      if (in_batch > 0) expect_ = in_batch + synced_queued_;
    }
    post_dones(batch, results);
    batch.clear();
    checkpoint_if_due();  // while the callers handle their answers
  }
}

void Store::take_queue_locked(std::vector<Pending>& batch) {
  batch.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
  queue_.clear();
  synced_queued_ = 0;
}

void Store::post_dones(std::vector<Pending>& batch,
                       const std::vector<std::exception_ptr>& results) {
  // One loop handler for the whole batch, in queue order.
  auto dones = std::make_shared<std::vector<std::pair<Done, std::exception_ptr>>>();
  dones->reserve(batch.size());
  for (size_t i = 0; i < batch.size(); ++i)
    dones->emplace_back(std::move(batch[i].done), results[i]);
  loop_.post([dones] {
    for (auto& [done, err] : *dones)
      if (done) done(err);
  });
}

void Store::flush_deferred() {
  {
    std::lock_guard lk(mu_);
    deferred_armed_ = false;
    if (flush_posted_) return;  // that flush takes the queue
  }
  flush_on_loop();
}

void Store::flush_on_loop() {
  std::vector<Pending> batch;
  {
    std::lock_guard lk(mu_);
    flush_posted_ = false;
    if (closing_) return;  // close() committed the queue and reported it
    take_queue_locked(batch);
  }
  if (batch.empty()) return;
  const std::vector<std::exception_ptr> results = commit(batch);
  // Already on the loop, in a handler of our own: the answers go out now, in queue order. A
  // `done` that writes again queues for the next flush.
  for (size_t i = 0; i < batch.size(); ++i)
    if (batch[i].done) batch[i].done(results[i]);
  checkpoint_if_due();
}

std::vector<std::exception_ptr> Store::commit(std::vector<Pending>& batch) {
  const bool need_sync = std::any_of(batch.begin(), batch.end(), [](const Pending& p) {
    return p.durability == Durability::kSynced;
  });
  std::vector<std::exception_ptr> results(batch.size());
  std::exception_ptr commit_error;
  try {
    // Transaction control statements are prepared once (cached): a batch of N jobs runs
    // 2N + 2 of them.
    if (need_sync != synced_) {
      if (need_sync)
        writer_.cached("PRAGMA synchronous=FULL").run();
      else
        writer_.cached("PRAGMA synchronous=NORMAL").run();
      synced_ = need_sync;
    }
    writer_.cached("BEGIN IMMEDIATE").run();
    for (size_t i = 0; i < batch.size(); ++i) {
      writer_.cached("SAVEPOINT job").run();
      try {
        batch[i].job(writer_);
        writer_.cached("RELEASE job").run();
      } catch (...) {
        results[i] = std::current_exception();
        writer_.cached("ROLLBACK TO job").run();
        writer_.cached("RELEASE job").run();
      }
    }
    writer_.cached("COMMIT").run();
  } catch (...) {
    commit_error = std::current_exception();
    try {
      writer_.exec("ROLLBACK");
    } catch (...) {
    }
    spdlog::error("store commit failed jobs={}", batch.size());
  }
  if (commit_error) std::fill(results.begin(), results.end(), commit_error);
  std::lock_guard lk(mu_);
  stats_.commits++;
  stats_.jobs += batch.size();
  if (!need_sync) stats_.unsynced_commits++;
  stats_.wal_bytes = wal_frames_ * static_cast<uint64_t>(frame_bytes_);
  return results;
}

void Store::checkpoint_if_due() {
  // PASSIVE never waits for readers; with no write in between it usually copies everything,
  // and the next transaction starts the WAL over.
  if (wal_pages_ < kCheckpointPages) return;
  int log_pages = 0, copied = 0;
  int rc = sqlite3_wal_checkpoint_v2(writer_.handle(), "main", SQLITE_CHECKPOINT_PASSIVE,
                                     &log_pages, &copied);
  if (rc != SQLITE_OK && rc != SQLITE_BUSY)
    spdlog::warn("store checkpoint failed rc={} error=\"{}\"", rc,
                 sqlite3_errmsg(writer_.handle()));
  wal_pages_ = 0;
}

void Store::close() {
  std::vector<Pending> batch;
  {
    std::lock_guard lk(mu_);
    if (closing_ && !thread_.joinable()) return;
    closing_ = true;
    if (commit_on_ == CommitOn::kLoop) take_queue_locked(batch);
  }
  if (commit_on_ == CommitOn::kLoop) {
    if (batch.empty()) return;
    // The flush that was posted for these finds the store closing and does nothing; their
    // answers go to the loop as the writer thread's would (a stopped loop drops them).
    post_dones(batch, commit(batch));
    return;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Store::Stats Store::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

}  // namespace thrum::core
