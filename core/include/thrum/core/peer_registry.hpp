#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace thrum::core {

/// One paired daemon, as stored in `var/peers.json` (SPEC §6.3).
struct PeerRecord {
  std::string name;
  std::string address;  ///< "ip:port" last known
  std::string daemon_id;
  std::string token;  ///< 64 hex chars; never logged, never printed
  std::string transport;
  std::string role;  ///< "listener" (ran peer add) | "dialer" (ran peer join)
  std::string proxy_prefix;
  std::vector<std::string> remote_agents;
  std::string repo_path;  ///< local transport, dialer side: the other repo
  std::string paired_at;
  std::string last_sync;
  int64_t last_seq = 0;
  std::string remote_repo_name;
  std::string remote_hostname;
  std::string remote_repo_path;
  std::string remote_git_origin_url;
  std::string reconcile_status;  ///< "" healthy | "drift_reconcile_failed"
  std::string remote_cert_sha256;
  std::string removed_by_peer;  ///< set when the other side removed us (RFC 3339)

  nlohmann::json to_json(bool with_token) const;
  /// Decodes one stored record field by field. A field of the wrong type, or a missing name,
  /// refuses the record with `error` naming `where.field` and what was expected.
  static std::optional<PeerRecord> decode(const nlohmann::json& j, const std::string& where,
                                          std::string& error);
};

/// The decoded content of `peers.json`.
struct PeersFile {
  bool legacy = false;  ///< a bare array of peers (before schema 1)
  int schema = 0;
  std::string local_daemon_id;
  nlohmann::json local = nlohmann::json::object();
  std::vector<PeerRecord> peers;
};

/// Parses (depth-bounded, UTF-8 checked) and decodes peers.json text. nullopt with `error`
/// saying what was wrong (never quoting the file's content) when it cannot be used.
std::optional<PeersFile> decode_peers_file(std::string_view text, std::string& error);

/// `var/peers.json`: {schema, local, peers}. Every change is written atomically (temp, fsync,
/// rename, fsync dir) with mode 0600. A file that does not parse or decode (syntax, depth,
/// invalid UTF-8, a wrongly typed field) is moved aside as `peers.json.corrupt-<ts>` (0600),
/// never overwritten; the registry starts empty and problems() says why. Loop-thread only.
class PeerRegistry {
 public:
  static constexpr int kSchema = 1;

  /// Loads (or starts empty). `daemon_id` is this daemon's current id: when the file was written
  /// under another id, or an older schema, it is copied once to `peers.json.pre-rotation-bak`
  /// before being migrated. Problems (a corrupt file moved aside) land in problems().
  PeerRegistry(std::filesystem::path path, std::string daemon_id);

  const std::vector<PeerRecord>& peers() const { return peers_; }
  PeerRecord* find(const std::string& name);
  PeerRecord* find_by_prefix(const std::string& prefix);
  /// The record whose token has this public id (peers/link_auth.hpp), compared in constant
  /// time over all peers.
  PeerRecord* find_by_token_id(const std::string& token_id);

  /// Adds or replaces (by name) a record and saves.
  void upsert(PeerRecord rec);
  bool remove(const std::string& name);
  /// Saves now (after the caller changed records in place).
  void save();
  void mark_dirty() { dirty_ = true; }
  /// Saves if something was marked dirty (last_sync/last_seq bookkeeping).
  void flush_if_dirty();

  /// A name for a new peer that no existing record uses (`base`, `base-2`, ...).
  std::string unique_name(const std::string& base) const;
  /// A proxy prefix slug for `name` (lowercase [a-z0-9-], ≤16 chars), unique here.
  std::string unique_prefix(const std::string& name, const std::string& except_peer = "") const;
  static std::string slug(const std::string& name);

  nlohmann::json& local() { return local_; }
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::filesystem::path path_;
  std::string daemon_id_;
  nlohmann::json local_ = nlohmann::json::object();
  std::vector<PeerRecord> peers_;
  std::vector<std::string> problems_;
  bool dirty_ = false;
};

}  // namespace thrum::core
