#include "thrum/core/sqlite.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

namespace thrum::core::sql {

namespace {
[[noreturn]] void throw_db(sqlite3* db, const std::string& what) {
  throw Error(what + ": " + (db ? sqlite3_errmsg(db) : "no database"));
}

// -- "thrum-walbatch": the default VFS, except that WAL appends are batched -------------------
//
// SQLite writes each WAL frame as two pwrite()s (a 24-byte header, then the page), so a commit
// of N pages is 2N system calls, each touching one or two page-cache pages. This VFS keeps
// consecutive WAL writes in a buffer and hands them to the real file in one write when the
// transaction's commit frame (a frame header whose "database size after commit" field is not
// zero) has been written, i.e. still inside the xWrite that completes the commit frame, before
// SQLite syncs the WAL or publishes the frames in the wal-index (so an error is reported as
// the commit's, and no reader can be told about a frame that is not in the file). Anything
// else on the WAL file (a read, sync, truncate, size query, a non-consecutive write, close)
// writes the buffer out first. Only the Store's writer connection uses it; store_test checks
// that another connection sees every commit, synced or not.

constexpr const char* kBatchVfsName = "thrum-walbatch";
constexpr sqlite3_int64 kMaxBuffered = 4 << 20;

// SQLite allocates szOsFile bytes with 8-byte alignment only, so nothing here may ask for more.
struct BatchFile {
  sqlite3_file base;
  sqlite3_file* real;  // the default VFS's file, stored right after this struct
  bool wal;
  bool commit_pending;  // the last write was a commit frame's header
  char* buf;
  sqlite3_int64 buf_off, buf_len, buf_cap;
};
// The real file starts right after this struct and must stay 8-byte aligned.
static_assert(alignof(BatchFile) <= 8 && sizeof(BatchFile) % 8 == 0);

sqlite3_vfs* g_real_vfs = nullptr;

// The unix VFS takes at most 128 KiB - 1 per xWrite (it masks the length with 0x1ffff: it
// expects pages, and reports a longer write as SQLITE_FULL), so the buffer goes out in chunks.
constexpr sqlite3_int64 kMaxWrite = 124 << 10;

int flush(BatchFile* f) {
  int rc = SQLITE_OK;
  for (sqlite3_int64 done = 0; done < f->buf_len && rc == SQLITE_OK; done += kMaxWrite) {
    const auto n = static_cast<int>(std::min(kMaxWrite, f->buf_len - done));
    rc = f->real->pMethods->xWrite(f->real, f->buf + done, n, f->buf_off + done);
  }
  f->buf_len = 0;
  return rc;
}

int x_close(sqlite3_file* file) {
  auto* f = reinterpret_cast<BatchFile*>(file);
  int rc = flush(f);
  std::free(f->buf);
  f->buf = nullptr;
  int rc2 = f->real->pMethods->xClose(f->real);
  return rc != SQLITE_OK ? rc : rc2;
}
int x_read(sqlite3_file* file, void* out, int amt, sqlite3_int64 off) {
  auto* f = reinterpret_cast<BatchFile*>(file);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  return f->real->pMethods->xRead(f->real, out, amt, off);
}
int x_write(sqlite3_file* file, const void* data, int amt, sqlite3_int64 off) {
  auto* f = reinterpret_cast<BatchFile*>(file);
  if (!f->wal) return f->real->pMethods->xWrite(f->real, data, amt, off);
  if (f->buf_len > 0 && (off != f->buf_off + f->buf_len || f->buf_len + amt > kMaxBuffered)) {
    if (int rc = flush(f); rc != SQLITE_OK) return rc;
  }
  if (amt > kMaxWrite) return f->real->pMethods->xWrite(f->real, data, amt, off);
  if (f->buf_len + amt > f->buf_cap) {
    sqlite3_int64 cap = f->buf_cap ? f->buf_cap : 256 << 10;
    while (cap < f->buf_len + amt) cap *= 2;
    char* grown = static_cast<char*>(std::realloc(f->buf, static_cast<size_t>(cap)));
    if (!grown) {
      if (int rc = flush(f); rc != SQLITE_OK) return rc;
      return f->real->pMethods->xWrite(f->real, data, amt, off);
    }
    f->buf = grown;
    f->buf_cap = cap;
  }
  if (f->buf_len == 0) f->buf_off = off;
  std::memcpy(f->buf + f->buf_len, data, static_cast<size_t>(amt));
  f->buf_len += amt;
  if (f->commit_pending) {  // this was the commit frame's page: the transaction is complete
    f->commit_pending = false;
    return flush(f);
  }
  // A frame header: page number, then "database size after commit" (non-zero on the last
  // frame of a transaction), both big-endian.
  const auto* h = static_cast<const unsigned char*>(data);
  if (amt == 24 && (h[4] | h[5] | h[6] | h[7]) != 0) f->commit_pending = true;
  return SQLITE_OK;
}
int x_truncate(sqlite3_file* file, sqlite3_int64 size) {
  auto* f = reinterpret_cast<BatchFile*>(file);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  return f->real->pMethods->xTruncate(f->real, size);
}
int x_sync(sqlite3_file* file, int flags) {
  auto* f = reinterpret_cast<BatchFile*>(file);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  return f->real->pMethods->xSync(f->real, flags);
}
int x_file_size(sqlite3_file* file, sqlite3_int64* size) {
  auto* f = reinterpret_cast<BatchFile*>(file);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  return f->real->pMethods->xFileSize(f->real, size);
}
int x_lock(sqlite3_file* file, int lock) {
  auto* f = reinterpret_cast<BatchFile*>(file);
  return f->real->pMethods->xLock(f->real, lock);
}
int x_unlock(sqlite3_file* file, int lock) {
  auto* f = reinterpret_cast<BatchFile*>(file);
  return f->real->pMethods->xUnlock(f->real, lock);
}
int x_check_reserved(sqlite3_file* file, int* out) {
  auto* f = reinterpret_cast<BatchFile*>(file);
  return f->real->pMethods->xCheckReservedLock(f->real, out);
}
int x_file_control(sqlite3_file* file, int op, void* arg) {
  auto* f = reinterpret_cast<BatchFile*>(file);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  return f->real->pMethods->xFileControl(f->real, op, arg);
}
int x_sector_size(sqlite3_file* file) {
  auto* f = reinterpret_cast<BatchFile*>(file);
  return f->real->pMethods->xSectorSize(f->real);
}
int x_device_characteristics(sqlite3_file* file) {
  auto* f = reinterpret_cast<BatchFile*>(file);
  return f->real->pMethods->xDeviceCharacteristics(f->real);
}
int x_shm_map(sqlite3_file* file, int page, int size, int extend, void volatile** out) {
  auto* f = reinterpret_cast<BatchFile*>(file);
  return f->real->pMethods->xShmMap(f->real, page, size, extend, out);
}
int x_shm_lock(sqlite3_file* file, int offset, int n, int flags) {
  auto* f = reinterpret_cast<BatchFile*>(file);
  return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}
void x_shm_barrier(sqlite3_file* file) {
  auto* f = reinterpret_cast<BatchFile*>(file);
  f->real->pMethods->xShmBarrier(f->real);
}
int x_shm_unmap(sqlite3_file* file, int del) {
  auto* f = reinterpret_cast<BatchFile*>(file);
  return f->real->pMethods->xShmUnmap(f->real, del);
}
int x_fetch(sqlite3_file* file, sqlite3_int64 off, int amt, void** out) {
  auto* f = reinterpret_cast<BatchFile*>(file);
  return f->real->pMethods->xFetch(f->real, off, amt, out);
}
int x_unfetch(sqlite3_file* file, sqlite3_int64 off, void* p) {
  auto* f = reinterpret_cast<BatchFile*>(file);
  return f->real->pMethods->xUnfetch(f->real, off, p);
}

// One table per io_methods version, so that SQLite sees exactly what the real file offers.
sqlite3_io_methods g_methods[3];

int x_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  auto* f = reinterpret_cast<BatchFile*>(file);
  std::memset(f, 0, sizeof(BatchFile));
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + sizeof(BatchFile));
  int rc = g_real_vfs->xOpen(g_real_vfs, name, f->real, flags, out_flags);
  if (rc != SQLITE_OK || !f->real->pMethods) {
    f->base.pMethods = nullptr;
    return rc;
  }
  const int version = f->real->pMethods->iVersion;
  f->base.pMethods = &g_methods[std::min(std::max(version, 1), 3) - 1];
  f->wal = (flags & SQLITE_OPEN_WAL) != 0;
  return SQLITE_OK;
}

sqlite3_vfs g_batch_vfs;

void register_batch_vfs() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_real_vfs = sqlite3_vfs_find(nullptr);
    if (!g_real_vfs) throw Error("no default SQLite VFS");
    for (int v = 1; v <= 3; ++v) {
      sqlite3_io_methods& m = g_methods[v - 1];
      m.iVersion = v;
      m.xClose = x_close;
      m.xRead = x_read;
      m.xWrite = x_write;
      m.xTruncate = x_truncate;
      m.xSync = x_sync;
      m.xFileSize = x_file_size;
      m.xLock = x_lock;
      m.xUnlock = x_unlock;
      m.xCheckReservedLock = x_check_reserved;
      m.xFileControl = x_file_control;
      m.xSectorSize = x_sector_size;
      m.xDeviceCharacteristics = x_device_characteristics;
      if (v >= 2) {
        m.xShmMap = x_shm_map;
        m.xShmLock = x_shm_lock;
        m.xShmBarrier = x_shm_barrier;
        m.xShmUnmap = x_shm_unmap;
      }
      if (v >= 3) {
        m.xFetch = x_fetch;
        m.xUnfetch = x_unfetch;
      }
    }
    g_batch_vfs = *g_real_vfs;
    g_batch_vfs.zName = kBatchVfsName;
    g_batch_vfs.szOsFile = static_cast<int>(sizeof(BatchFile)) + g_real_vfs->szOsFile;
    g_batch_vfs.xOpen = x_open;
    g_batch_vfs.pNext = nullptr;
    if (sqlite3_vfs_register(&g_batch_vfs, 0) != SQLITE_OK)
      throw Error("cannot register the " + std::string(kBatchVfsName) + " VFS");
  });
}
}  // namespace

namespace {
void configure_library() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Before SQLite initialises (the first open or VFS lookup): no allocation statistics.
    // Nothing reads them, and keeping them takes a global mutex on every sqlite3_malloc and
    // sqlite3_free (~20 k instructions per message, docs/benchmarks.md). If something in the
    // process initialised SQLite already this is refused (SQLITE_MISUSE) and changes nothing.
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  });
}
}  // namespace

Db::Db(const std::string& path, bool read_only, bool batch_wal_writes) {
  configure_library();
  int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  flags |= SQLITE_OPEN_NOMUTEX;
  if (batch_wal_writes) register_batch_vfs();
  if (sqlite3_open_v2(path.c_str(), &db_, flags, batch_wal_writes ? kBatchVfsName : nullptr) !=
      SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error("open " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db_, 5000);
  sqlite3_extended_result_codes(db_, 1);
}

Db::~Db() {
  for (auto& [k, st] : cache_) sqlite3_finalize(st);
  cache_.clear();
  if (db_) sqlite3_close_v2(db_);
}

Db::Db(Db&& o) noexcept : db_(o.db_), cache_(std::move(o.cache_)) {
  o.db_ = nullptr;
}
Db& Db::operator=(Db&& o) noexcept {
  if (this != &o) {
    for (auto& [k, st] : cache_) sqlite3_finalize(st);
    cache_.clear();
    if (db_) sqlite3_close_v2(db_);
    db_ = o.db_;
    cache_ = std::move(o.cache_);
    o.db_ = nullptr;
  }
  return *this;
}

Stmt Db::cached(const char* sql) {
  // Keyed by the literal's address: callers pass string literals, one per call site.
  auto& slot = cache_[sql];
  if (!slot) {
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &slot, nullptr) != SQLITE_OK) {
      cache_.erase(sql);
      throw_db(db_, "prepare");
    }
  }
  return Stmt(db_, slot);
}

void Db::exec(std::string_view sql) {
  std::string s(sql);
  char* err = nullptr;
  if (sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw Error("sql: " + msg);
  }
}

Stmt Db::prepare(std::string_view sql) {
  return Stmt(db_, sql);
}
int64_t Db::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(db_);
}
int Db::changes() const {
  return sqlite3_changes(db_);
}

Stmt::Stmt(sqlite3* db, std::string_view sql) : db_(db) {
  if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &st_, nullptr) != SQLITE_OK)
    throw_db(db, "prepare");
}

Stmt::~Stmt() {
  if (!st_) return;
  if (owned_) {
    sqlite3_finalize(st_);
  } else {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
  }
}

Stmt& Stmt::bind(int i, std::string_view v) {
  if (sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT) !=
      SQLITE_OK)
    throw_db(db_, "bind");
  return *this;
}
Stmt& Stmt::bind(int i, int64_t v) {
  if (sqlite3_bind_int64(st_, i, v) != SQLITE_OK) throw_db(db_, "bind");
  return *this;
}
Stmt& Stmt::bind_null(int i) {
  if (sqlite3_bind_null(st_, i) != SQLITE_OK) throw_db(db_, "bind");
  return *this;
}

bool Stmt::step() {
  int rc = sqlite3_step(st_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  throw_db(db_, "step");
}

void Stmt::reset() {
  sqlite3_reset(st_);
  sqlite3_clear_bindings(st_);
}

std::string Stmt::text(int col) const {
  auto* p = sqlite3_column_text(st_, col);
  if (!p) return {};
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<size_t>(sqlite3_column_bytes(st_, col)));
}
std::optional<std::string> Stmt::opt_text(int col) const {
  if (is_null(col)) return std::nullopt;
  return text(col);
}
int64_t Stmt::integer(int col) const {
  return sqlite3_column_int64(st_, col);
}
bool Stmt::is_null(int col) const {
  return sqlite3_column_type(st_, col) == SQLITE_NULL;
}

}  // namespace thrum::core::sql
