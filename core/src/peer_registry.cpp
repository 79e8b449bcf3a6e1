#include "thrum/core/peer_registry.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "peers/link_auth.hpp"
#include "thrum/core/fs_util.hpp"
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

PeerRecord PeerRecord::from_json(const json& j) {
  PeerRecord r;
  auto s = [&](const char* k) {
    return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string();
  };
  r.name = s("name");
  r.address = s("address");
  r.daemon_id = s("daemon_id");
  r.token = s("token");
  r.transport = s("transport");
  r.role = s("role");
  r.proxy_prefix = s("proxy_prefix");
  if (j.contains("remote_agents") && j["remote_agents"].is_array())
    for (const auto& a : j["remote_agents"])
      if (a.is_string()) r.remote_agents.push_back(a.get<std::string>());
  r.repo_path = s("repo_path");
  r.paired_at = s("paired_at");
  r.last_sync = s("last_sync");
  if (j.contains("last_seq") && j["last_seq"].is_number_integer())
    r.last_seq = j["last_seq"].get<int64_t>();
  r.remote_repo_name = s("remote_repo_name");
  r.remote_hostname = s("remote_hostname");
  r.remote_repo_path = s("remote_repo_path");
  r.remote_git_origin_url = s("remote_git_origin_url");
  r.reconcile_status = s("reconcile_status");
  r.remote_cert_sha256 = s("remote_cert_sha256");
  r.removed_by_peer = s("removed_by_peer");
  return r;
}

PeerRegistry::PeerRegistry(std::filesystem::path path, std::string daemon_id)
    : path_(std::move(path)), daemon_id_(std::move(daemon_id)) {
  local_ = {{"daemon_id", daemon_id_}};
  auto text = read_file(path_);
  if (!text) return;
  json doc = json::parse(*text, nullptr, false);
  json peers;
  bool migrate = false;
  if (doc.is_array()) {  // legacy: a bare array of peers
    peers = doc;
    migrate = true;
  } else if (doc.is_object() && doc.contains("peers") && doc["peers"].is_array()) {
    peers = doc["peers"];
    if (doc.contains("local") && doc["local"].is_object()) local_ = doc["local"];
    int schema = doc.value("schema", 0);
    std::string stored_id = local_.value("daemon_id", "");
    if (schema != kSchema || stored_id != daemon_id_) migrate = true;
  } else {
    auto moved = move_aside_corrupt(path_);
    problems_.push_back("peers.json was unreadable; moved it to " + moved.string() +
                        " and started with no peers (restore it from there, or re-pair)");
    spdlog::error("peers.json corrupt; moved aside to={}", moved.string());
    return;
  }
  for (const auto& p : peers)
    if (p.is_object()) peers_.push_back(PeerRecord::from_json(p));
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
  atomic_write_file(path_, doc.dump(2) + "\n", 0600);
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
