#include "thrum/core/peer_registry.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>

#include <spdlog/spdlog.h>

#include "peers/link_auth.hpp"
#include "thrum/common/bounded_json.hpp"
#include "thrum/common/fs_util.hpp"
#include "thrum/core/pairing.hpp"

namespace thrum::core {

using json = nlohmann::json;

json PeerRecord::to_json(bool with_token) const {
  json j = {{"name", name},
            {"address", address},
            {"daemon_id", daemon_id},
            {"transport", transport},
            {"role", role},
            {"proxy_prefix", proxy_prefix},
            {"remote_agents", remote_agents},
            {"paired_at", paired_at},
            {"last_sync", last_sync},
            {"last_seq", last_seq},
            {"remote_repo_name", remote_repo_name},
            {"remote_hostname", remote_hostname},
            {"remote_repo_path", remote_repo_path},
            {"remote_git_origin_url", remote_git_origin_url},
            {"reconcile_status", reconcile_status}};
  if (with_token) j["token"] = token;
  if (!repo_path.empty()) j["repo_path"] = repo_path;
  if (!remote_cert_sha256.empty()) j["remote_cert_sha256"] = remote_cert_sha256;
  if (!removed_by_peer.empty()) j["removed_by_peer"] = removed_by_peer;
  return j;
}

namespace {

const char* kind_of(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "a list";
    case json::value_t::object:
      return "an object";
    case json::value_t::discarded:
      return "nothing";
    default:
      return "a number";
  }
}

// Field-by-field decoding of one record; `where` is "peers[3]" for messages.
class RecordDecoder {
 public:
  RecordDecoder(const json& j, std::string where) : j_(j), where_(std::move(where)) {}

  bool str(const char* key, std::string& out) {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return true;
    if (!it->is_string()) return wrong(key, "a string", *it);
    out = it->get_ref<const std::string&>();
    return true;
  }
  bool int64(const char* key, int64_t& out) {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return true;
    if (!it->is_number_integer() ||
        (it->is_number_unsigned() &&
         it->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())))
      return wrong(key, "an integer", *it);
    out = it->get<int64_t>();
    return true;
  }
  bool strings(const char* key, std::vector<std::string>& out) {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return true;
    if (!it->is_array()) return wrong(key, "a list of strings", *it);
    for (std::size_t i = 0; i < it->size(); ++i) {
      const json& e = (*it)[i];
      if (!e.is_string())
        return wrong((std::string(key) + "[" + std::to_string(i) + "]").c_str(), "a string", e);
      out.push_back(e.get_ref<const std::string&>());
    }
    return true;
  }
  const std::string& error() const { return error_; }

 private:
  bool wrong(const std::string& key, const char* expected, const json& got) {
    error_ = where_ + "." + key + ": expected " + expected + ", got " + kind_of(got);
    return false;
  }
  const json& j_;
  std::string where_;
  std::string error_;
};

}  // namespace

std::optional<PeerRecord> PeerRecord::decode(const json& j, const std::string& where,
                                             std::string& error) {
  if (!j.is_object()) {
    error = where + ": expected an object, got " + kind_of(j);
    return std::nullopt;
  }
  PeerRecord r;
  RecordDecoder d(j, where);
  const bool ok =
      d.str("name", r.name) && d.str("address", r.address) && d.str("daemon_id", r.daemon_id) &&
      d.str("token", r.token) && d.str("transport", r.transport) && d.str("role", r.role) &&
      d.str("proxy_prefix", r.proxy_prefix) && d.strings("remote_agents", r.remote_agents) &&
      d.str("repo_path", r.repo_path) && d.str("paired_at", r.paired_at) &&
      d.str("last_sync", r.last_sync) && d.int64("last_seq", r.last_seq) &&
      d.str("remote_repo_name", r.remote_repo_name) &&
      d.str("remote_hostname", r.remote_hostname) &&
      d.str("remote_repo_path", r.remote_repo_path) &&
      d.str("remote_git_origin_url", r.remote_git_origin_url) &&
      d.str("reconcile_status", r.reconcile_status) &&
      d.str("remote_cert_sha256", r.remote_cert_sha256) &&
      d.str("removed_by_peer", r.removed_by_peer);
  if (!ok) {
    error = d.error();
    return std::nullopt;
  }
  if (r.name.empty()) {
    error = where + ".name: missing or empty (every peer needs a name)";
    return std::nullopt;
  }
  return r;
}

std::optional<PeersFile> decode_peers_file(std::string_view text, std::string& error) {
  JsonRefusal why;
  auto doc = parse_bounded(text, &why);
  if (!doc) {
    error = why.message;
    return std::nullopt;
  }
  PeersFile out;
  const json* peers = nullptr;
  if (doc->is_array()) {  // legacy: a bare array of peers
    peers = &*doc;
    out.legacy = true;
  } else if (doc->is_object()) {
    auto it = doc->find("peers");
    if (it == doc->end() || !it->is_array()) {
      error = it == doc->end() ? std::string("no \"peers\" list")
                               : std::string("\"peers\": expected a list, got ") + kind_of(*it);
      return std::nullopt;
    }
    peers = &*it;
    if (auto s = doc->find("schema"); s != doc->end()) {
      if (!s->is_number_integer() || s->get<int64_t>() < 0 ||
          s->get<int64_t>() > std::numeric_limits<int>::max()) {
        error = std::string("\"schema\": expected a small integer, got ") + kind_of(*s);
        return std::nullopt;
      }
      out.schema = s->get<int>();
    }
    if (auto l = doc->find("local"); l != doc->end() && !l->is_null()) {
      if (!l->is_object()) {
        error = std::string("\"local\": expected an object, got ") + kind_of(*l);
        return std::nullopt;
      }
      if (auto id = l->find("daemon_id"); id != l->end()) {
        if (!id->is_string()) {
          error = std::string("\"local.daemon_id\": expected a string, got ") + kind_of(*id);
          return std::nullopt;
        }
        out.local_daemon_id = id->get_ref<const std::string&>();
      }
      out.local = *l;  // depth-bounded by parse_bounded, so copying is safe
    }
  } else {
    error = std::string("expected an object {schema, local, peers}, got ") + kind_of(*doc);
    return std::nullopt;
  }
  for (std::size_t i = 0; i < peers->size(); ++i) {
    auto rec = PeerRecord::decode((*peers)[i], "peers[" + std::to_string(i) + "]", error);
    if (!rec) return std::nullopt;
    out.peers.push_back(std::move(*rec));
  }
  return out;
}

PeerRegistry::PeerRegistry(std::filesystem::path path, std::string daemon_id)
    : path_(std::move(path)), daemon_id_(std::move(daemon_id)) {
  local_ = {{"daemon_id", daemon_id_}};
  auto text = read_file(path_);
  if (!text) return;
  std::string error;
  auto file = decode_peers_file(*text, error);
  if (!file) {
    auto moved = move_aside_corrupt(path_);
    problems_.push_back(path_.filename().string() + " could not be used (" + error +
                        "); moved it to " + moved.string() +
                        " and started with no peers (fix and restore it from there, or re-pair)");
    spdlog::error("peers.json unusable, moved aside; starting with no peers to={} problem=\"{}\"",
                  moved.string(), error);
    return;
  }
  bool migrate = file->legacy;
  if (!file->legacy) {
    if (file->local.is_object()) local_ = std::move(file->local);
    if (file->schema != kSchema || file->local_daemon_id != daemon_id_) migrate = true;
  }
  peers_ = std::move(file->peers);
  std::stable_sort(peers_.begin(), peers_.end(), [](const PeerRecord& a, const PeerRecord& b) {
    return a.paired_at < b.paired_at;
  });
  for (auto& p : peers_)
    if (p.proxy_prefix.empty()) p.proxy_prefix = unique_prefix(p.name, p.name);
  if (migrate) {
    std::filesystem::path bak = path_;
    bak += ".pre-rotation-bak";
    if (copy_file_once(path_, bak))
      spdlog::info("peers.json backed up before migration to={}", bak.string());
    local_["daemon_id"] = daemon_id_;
    save();
  }
}

PeerRecord* PeerRegistry::find(const std::string& name) {
  for (auto& p : peers_)
    if (p.name == name) return &p;
  return nullptr;
}

PeerRecord* PeerRegistry::find_by_prefix(const std::string& prefix) {
  for (auto& p : peers_)
    if (p.proxy_prefix == prefix) return &p;
  return nullptr;
}

PeerRecord* PeerRegistry::find_by_token_id(const std::string& token_id) {
  PeerRecord* hit = nullptr;
  // Compare against every record so the time taken does not say which one matched.
  for (auto& p : peers_)
    if (!p.token.empty() && pairing::equal_ct(peers::link_auth::token_id(p.token), token_id) &&
        !hit)
      hit = &p;
  return hit;
}

void PeerRegistry::upsert(PeerRecord rec) {
  if (auto* existing = find(rec.name))
    *existing = std::move(rec);
  else
    peers_.push_back(std::move(rec));
  save();
}

bool PeerRegistry::remove(const std::string& name) {
  auto it = std::find_if(peers_.begin(), peers_.end(),
                         [&](const PeerRecord& p) { return p.name == name; });
  if (it == peers_.end()) return false;
  peers_.erase(it);
  save();
  return true;
}

void PeerRegistry::save() {
  json doc = {{"schema", kSchema}, {"local", local_}, {"peers", json::array()}};
  for (const auto& p : peers_) doc["peers"].push_back(p.to_json(true));
  atomic_write_file(path_, dump_pretty(doc) + "\n", 0600);
  dirty_ = false;
}

void PeerRegistry::flush_if_dirty() {
  if (!dirty_) return;
  try {
    save();
  } catch (const std::exception& e) {
    spdlog::error("peers.json save failed error=\"{}\"", e.what());
  }
}

std::string PeerRegistry::unique_name(const std::string& base_in) const {
  std::string base = base_in.empty() ? "peer" : base_in;
  auto taken = [&](const std::string& n) {
    return std::any_of(peers_.begin(), peers_.end(),
                       [&](const PeerRecord& p) { return p.name == n; });
  };
  if (!taken(base)) return base;
  for (int i = 2;; ++i)
    if (!taken(base + "-" + std::to_string(i))) return base + "-" + std::to_string(i);
}

std::string PeerRegistry::slug(const std::string& name) {
  std::string out;
  for (char c : name) {
    char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if ((l >= 'a' && l <= 'z') || (l >= '0' && l <= '9'))
      out += l;
    else if (!out.empty() && out.back() != '-')
      out += '-';
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  if (out.size() > 16) out.resize(16);
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "peer" : out;
}

std::string PeerRegistry::unique_prefix(const std::string& name,
                                        const std::string& except_peer) const {
  std::string base = slug(name);
  auto taken = [&](const std::string& pfx) {
    return std::any_of(peers_.begin(), peers_.end(), [&](const PeerRecord& p) {
      return p.name != except_peer && p.proxy_prefix == pfx;
    });
  };
  if (!taken(base)) return base;
  for (int i = 2;; ++i) {
    std::string suffix = "-" + std::to_string(i);
    std::string cand = base.substr(0, 16 - suffix.size()) + suffix;
    if (!taken(cand)) return cand;
  }
}

}  // namespace thrum::core
