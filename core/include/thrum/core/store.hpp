#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "thrum/core/event_loop.hpp"
#include "thrum/core/sqlite.hpp"

namespace thrum::core {

/// The SQLite store (`var/thrum.db`, WAL): the single source of truth for agents, messages,
/// deliveries (with the ids peers gave them), and the peer outbox.
///
/// Writes are group-committed: write() queues a job for a dedicated writer thread, which runs
/// every queued job in one transaction (each in its own savepoint, so one failing job does not
/// undo the others), commits with synchronous=FULL, and only then reports each job's outcome on
/// the event loop. A caller that answers its client from `done` therefore acknowledges only
/// what is on disk, while N concurrent writers share one fsync.
///
/// A job may instead ask for a *deferred* sync (Durability::kDeferred): for writes that are
/// safe to lose on power failure because they would be redone (e.g. deleting an outbox row the
/// peer has acknowledged: if the deletion is lost, the row is sent again and the peer
/// de-duplicates it). A batch made only of deferred jobs commits without fsync
/// (synchronous=NORMAL); the next synced commit fsyncs the WAL, which makes every earlier
/// commit durable too, since the WAL is appended in commit order. A deferred commit is still a
/// commit: `done` runs after it, later reads see it, and it survives the process being killed.
///
/// When several writers are active at once (each waiting for its last write before sending
/// the next, like N agents sending), the writer thread waits up to 1 ms for the ones whose
/// commit just finished, so that they share the next fsync; a lone writer never waits.
///
/// `done` callbacks of one batch run on the event loop in queue order, in one loop handler.
/// The WAL is checkpointed (committed pages copied back into the database file) by the writer
/// thread once the WAL passes 1000 pages, after that batch's callbacks are posted rather than
/// inside its commit, so no caller waits for it.
///
/// Reads use a separate connection owned by the loop thread (WAL readers never block the
/// writer); with CommitOn::kLoop they use the writer's connection. A read issued after a
/// write's `done` has run sees that write.
///
/// CommitOn::kLoop commits on the event loop instead of the writer thread, as Redis does with
/// `appendfsync always`: write() queues the job and posts one flush; the flush runs after the
/// handlers that were already ready (every request read in the same loop iteration joins the
/// batch), commits them in one transaction and runs their `done`s at once. That removes two
/// thread hand-offs per write (loop -> writer -> loop), each a scheduler wake-up, at the price
/// of the loop not serving while it fsyncs. Batching, savepoints, durability and the order of
/// `done`s are the same in both modes (docs/design-decisions.md, "Store: where commits run").
/// A deferred job posts no flush of its own: it rides with the next synced write's commit, or
/// commits alone after kDeferredWait, so a peer's acknowledgement shares the pages of the send
/// after it. Until then it is not committed: a process killed in that window loses it, as a
/// power cut loses an unsynced commit, and whatever it would have recorded is redone.
class Store {
 public:
  using Job = std::function<void(sql::Db&)>;
  /// Loop thread. nullptr on success; otherwise what the job (or the commit) threw.
  using Done = std::function<void(std::exception_ptr)>;
  enum class Durability {
    kSynced,    ///< on disk (WAL fsynced) before `done` runs
    kDeferred,  ///< committed before `done` runs; on disk with the next synced commit
  };

  enum class CommitOn {
    kWriterThread,  ///< a dedicated thread commits; the loop keeps serving during fsync
    kLoop,          ///< the event loop commits (no thread hand-off per write)
  };

  /// Opens or creates the database and brings its schema up to date. Throws sql::Error.
  /// `batch_wal_writes`: the writer hands each transaction's WAL frames to the file in one
  /// write (the "thrum-walbatch" VFS, core/src/sqlite.cpp) instead of two per page.
  Store(const std::filesystem::path& path, EventLoop& loop,
        CommitOn commit_on = CommitOn::kWriterThread, bool batch_wal_writes = true);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  /// Queues `job`. Thread-safe. After close() the job fails with an error. With
  /// CommitOn::kLoop the job itself runs on the loop thread too.
  void write(Job job, Done done, Durability durability = Durability::kSynced);
  /// The loop thread's read connection (with CommitOn::kLoop, the writer's own connection,
  /// used between flushes; never from inside a job).
  sql::Db& reader() { return *reads_; }
  /// Commits everything queued, then stops the writer thread. Idempotent. With CommitOn::kLoop
  /// it commits on the calling thread, which must be the loop's (or the loop has stopped), and
  /// posts the `done`s to the loop like the writer thread would.
  void close();

  struct Stats {
    uint64_t commits = 0;
    uint64_t jobs = 0;
    uint64_t unsynced_commits = 0;  ///< commits of deferred jobs only (no fsync)
    uint64_t wal_bytes = 0;         ///< WAL frames appended by those commits, in bytes
    bool wal_batch = true;          ///< WAL writes batched per transaction (THRUM_WAL_BATCH)
  };
  Stats stats() const;

  static constexpr int kSchemaVersion = 3;
  /// CommitOn::kLoop: how long a batch of deferred jobs alone waits for a synced write to
  /// share its commit.
  static constexpr std::chrono::milliseconds kDeferredWait{5};

 private:
  struct Pending {
    Job job;
    Done done;
    Durability durability;
  };
  void run_writer();
  void flush_on_loop();
  void flush_deferred();  // kLoop: kDeferredWait after a deferred write found no flush posted
  /// Moves everything queued into `batch` (and zeroes the synced count). Caller holds mu_.
  void take_queue_locked(std::vector<Pending>& batch);
  /// Runs `batch` in one transaction (a savepoint per job) on the calling thread: each job's
  /// outcome, or the commit's error for all of them. Whichever thread commits; never both.
  std::vector<std::exception_ptr> commit(std::vector<Pending>& batch);
  void checkpoint_if_due();
  void post_dones(std::vector<Pending>& batch, const std::vector<std::exception_ptr>& results);
  void migrate();
  static int on_wal_commit(void* self, sqlite3* db, const char* name, int frames);

  EventLoop& loop_;
  sql::Db writer_;
  sql::Db reader_;             // kWriterThread: the loop's own connection, query_only
  sql::Db* reads_ = &reader_;  // what reader() hands out
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  size_t synced_queued_ = 0;  // kSynced jobs in queue_
  size_t expect_ = 1;         // synced jobs the writer expects per batch (see run_writer)
  bool closing_ = false;
  Stats stats_;
  int wal_pages_ = 0;        // committing thread: WAL size after the last commit
  int wal_seen_ = 0;         // committing thread: the same, for counting what each commit appends
  uint64_t wal_frames_ = 0;  // committing thread: frames appended so far
  int frame_bytes_ = 0;      // a WAL frame: the page and its 24-byte header
  bool synced_ = true;       // committing thread: PRAGMA synchronous is FULL (the constructor's)
  const CommitOn commit_on_;
  bool flush_posted_ = false;    // kLoop: a flush is on the loop
  bool deferred_armed_ = false;  // kLoop: a kDeferredWait timer will flush the deferred jobs
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // kLoop: for that flush
  std::thread thread_;
};

}  // namespace thrum::core
