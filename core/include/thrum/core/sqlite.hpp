#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace thrum::core::sql {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Stmt;

/// One SQLite connection. Not thread-safe: each connection belongs to one thread.
class Db {
 public:
  Db() = default;
  /// Opens (creating if needed) `path`. Throws sql::Error. `batch_wal_writes`: hand each
  /// transaction's WAL frames to the file in one write instead of two per page (for the one
  /// connection that writes; see sqlite.cpp).
  explicit Db(const std::string& path, bool read_only = false, bool batch_wal_writes = false);
  ~Db();
  Db(Db&& o) noexcept;
  Db& operator=(Db&& o) noexcept;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  void exec(std::string_view sql);
  Stmt prepare(std::string_view sql);
  /// A statement prepared once per connection and reused. The returned Stmt borrows it and
  /// resets it when destroyed, so no half-read statement keeps a read transaction (and thus a
  /// stale snapshot) open. `sql` must be a string literal: its address is the cache key.
  Stmt cached(const char* sql);
  int64_t last_insert_rowid() const;
  int changes() const;
  sqlite3* handle() const { return db_; }
  bool is_open() const { return db_ != nullptr; }

 private:
  sqlite3* db_ = nullptr;
  std::map<const char*, sqlite3_stmt*> cache_;
};

/// A prepared statement. Bind with 1-based indexes; step() returns true while rows remain.
class Stmt {
 public:
  Stmt(sqlite3* db, std::string_view sql);
  /// Borrows a statement owned by a Db's cache: reset (not finalized) on destruction.
  Stmt(sqlite3* db, sqlite3_stmt* borrowed) : db_(db), st_(borrowed), owned_(false) {}
  ~Stmt();
  Stmt(Stmt&& o) noexcept : db_(o.db_), st_(o.st_), owned_(o.owned_) { o.st_ = nullptr; }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, std::string_view v);
  Stmt& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
  Stmt& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
  Stmt& bind(int i, int64_t v);
  Stmt& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
  Stmt& bind_null(int i);
  Stmt& bind(int i, const std::optional<std::string>& v) { return v ? bind(i, *v) : bind_null(i); }

  bool step();  ///< throws sql::Error on failure
  void run() {  ///< step() once for statements that return no rows
    step();
  }
  void reset();

  std::string text(int col) const;
  std::optional<std::string> opt_text(int col) const;
  int64_t integer(int col) const;
  bool is_null(int col) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
  bool owned_ = true;
};

}  // namespace thrum::core::sql
