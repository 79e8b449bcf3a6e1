#include "thrum/common/config.hpp"

#include <unistd.h>

#include <array>
#include <cstdio>

#include "thrum/common/bounded_json.hpp"
#include "thrum/common/fs_util.hpp"
#include "thrum/common/ids.hpp"

namespace thrum::core {
namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) return out;
  std::array<char, 512> buf{};
  while (std::fgets(buf.data(), buf.size(), f)) out += buf.data();
  ::pclose(f);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'')
      q += "'\\''";
    else
      q += c;
  }
  return q + "'";
}

// Accepts a port as a number or a numeric string; "auto" (or absent) means nullopt.
// Returns false when the value is present but unusable.
bool parse_port(const ojson& v, std::optional<unsigned short>& out) {
  out.reset();
  if (v.is_null()) return true;
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (s == "auto" || s.empty()) return true;
    try {
      size_t pos = 0;
      long n = std::stol(s, &pos);
      if (pos != s.size() || n < 1 || n > 65535) return false;
      out = static_cast<unsigned short>(n);
      return true;
    } catch (...) {
      return false;
    }
  }
  if (v.is_number_integer()) {
    auto n = v.get<long long>();
    if (n == 0) return true;
    if (n < 1 || n > 65535) return false;
    out = static_cast<unsigned short>(n);
    return true;
  }
  return false;
}

// A value as it appears in an error message: JSON text, cut short, never throwing.
std::string shown(const ojson& v) {
  std::string text = v.dump(-1, ' ', false, ojson::error_handler_t::replace);
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

const char* kind_of(const ojson& v) {
  switch (v.type()) {
    case ojson::value_t::null:
      return "null";
    case ojson::value_t::boolean:
      return "a boolean";
    case ojson::value_t::string:
      return "a string";
    case ojson::value_t::array:
      return "a list";
    case ojson::value_t::object:
      return "an object";
    default:
      return "a number";
  }
}

}  // namespace

std::string git_origin_url(const fs::path& dir) {
  return run_capture("git -C " + shell_quote(dir.string()) +
                     " config --get remote.origin.url 2>/dev/null");
}

std::string host_name() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

std::optional<ojson> decode_config(std::string_view text, std::string& error) {
  JsonRefusal why;
  auto doc = parse_bounded_ordered(text, &why);
  if (!doc) {
    error = why.message;
    return std::nullopt;
  }
  if (!doc->is_object()) {
    error = "expected a JSON object";
    return std::nullopt;
  }
  return doc;
}

Config Config::load(const RepoPaths& paths) {
  Config c;
  auto text = read_file(paths.config);
  if (!text) return c;
  std::string error;
  auto parsed = decode_config(*text, error);
  if (!parsed) {
    auto moved = move_aside_corrupt(paths.config);
    c.problems_.push_back("config.json could not be used (" + error + "); moved it to " +
                          moved.string() +
                          " and started from defaults (fix and restore it from there if needed)");
    return c;
  }
  c.doc_ = std::move(*parsed);
  return c;
}

void Config::save(const RepoPaths& paths) const {
  atomic_write_file(paths.config, dump_pretty(doc_) + "\n", 0600);
}

const ojson* Config::find(const char* section, const char* key) const {
  auto s = doc_.find(section);
  if (s == doc_.end() || !s->is_object()) return nullptr;
  auto k = s->find(key);
  if (k == s->end()) return nullptr;
  return &*k;
}

bool Config::bootstrap_identity(const RepoPaths& paths) {
  bool changed = false;
  if (!doc_.contains("identity") || !doc_["identity"].is_object()) {
    doc_["identity"] = ojson::object();
  }
  auto& id = doc_["identity"];
  auto set = [&](const char* key, const std::string& value) {
    if (!id.contains(key) || !id[key].is_string() || id[key].get<std::string>() != value) {
      id[key] = value;
      changed = true;
    }
  };
  const bool need_id = !id.contains("daemon_id") || !id["daemon_id"].is_string() ||
                       id["daemon_id"].get<std::string>().empty();
  if (need_id) {
    // Keep what the user had before Thrum first wrote an identity into their file.
    if (fs::exists(paths.config))
      copy_file_once(paths.config, fs::path(paths.config) += ".pre-identity-bak");
    id["daemon_id"] = new_daemon_id();
    id["init_at"] = rfc3339_seconds(Clock::now());
    id["git_origin_url"] = ::thrum::core::git_origin_url(paths.root);
    changed = true;
  }
  set("repo_name", paths.root.filename().string());
  set("hostname", host_name());
  set("repo_path", paths.root.string());
  if (!id.contains("init_at")) {
    id["init_at"] = rfc3339_seconds(Clock::now());
    changed = true;
  }
  return changed;
}

void Config::rotate_daemon_id(const RepoPaths& paths) {
  if (fs::exists(paths.config))
    copy_file_once(paths.config, fs::path(paths.config) += ".pre-identity-bak");
  doc_["identity"]["daemon_id"] = new_daemon_id();
  doc_["identity"]["init_at"] = rfc3339_seconds(Clock::now());
}

std::vector<std::string> Config::validate() const {
  std::vector<std::string> errs;
  std::optional<unsigned short> p;
  if (auto* v = find("daemon", "ws_port"); v && !parse_port(*v, p))
    errs.push_back("daemon.ws_port must be \"auto\" or a port 1..65535, got " + shown(*v));
  if (auto* v = find("daemon", "peer_port"); v && !parse_port(*v, p))
    errs.push_back("daemon.peer_port must be \"auto\" or a port 1..65535, got " + shown(*v));
  if (auto* v = find("daemon", "max_message_body_bytes"); v && !v->is_number_integer())
    errs.push_back("daemon.max_message_body_bytes must be an integer number of bytes, got " +
                   shown(*v));
  if (auto* v = find("peers", "auto_connect"); v && !v->is_boolean())
    errs.push_back("peers.auto_connect must be true or false, got " + shown(*v));
  if (auto* v = find("peers", "pairing_code_length")) {
    if (!v->is_number_integer() || v->get<long long>() < 12 || v->get<long long>() > 16)
      errs.push_back(
          "peers.pairing_code_length must be an integer from 12 to 16 (shorter codes make "
          "pairing guessable), got " +
          shown(*v));
  }
  for (const char* section : {"identity", "daemon", "peers"}) {
    auto it = doc_.find(section);
    if (it != doc_.end() && !it->is_object())
      errs.push_back(std::string(section) + " must be an object, got " + kind_of(*it) +
                     " (remove it to use the defaults)");
  }
  for (const char* key :
       {"daemon_id", "repo_name", "hostname", "repo_path", "git_origin_url", "init_at"}) {
    if (auto* v = find("identity", key); v && !v->is_string())
      errs.push_back(std::string("identity.") + key + " must be a string, got " + kind_of(*v) +
                     " (restore it from config.json.pre-identity-bak, or remove it to have it "
                     "recreated)");
  }
  if (auto* v = find("peers", "name"); v && !v->is_string())
    errs.push_back("peers.name must be a string, got " + shown(*v));
  return errs;
}

std::string Config::identity_text(const char* key, std::string fallback) const {
  auto* v = find("identity", key);
  return v && v->is_string() ? v->get<std::string>() : fallback;
}
std::string Config::daemon_id() const {
  return identity_text("daemon_id");
}
std::string Config::repo_name() const {
  return identity_text("repo_name");
}
std::string Config::hostname() const {
  return identity_text("hostname", host_name());
}
std::string Config::git_origin_url() const {
  return identity_text("git_origin_url");
}
std::string Config::init_at() const {
  return identity_text("init_at");
}
std::optional<unsigned short> Config::ws_port() const {
  std::optional<unsigned short> p;
  if (auto* v = find("daemon", "ws_port")) parse_port(*v, p);
  return p;
}
std::optional<unsigned short> Config::peer_port() const {
  std::optional<unsigned short> p;
  if (auto* v = find("daemon", "peer_port")) parse_port(*v, p);
  return p;
}
int64_t Config::max_message_body_bytes() const {
  auto* v = find("daemon", "max_message_body_bytes");
  if (!v || !v->is_number_integer()) return kDefaultMaxBodyBytes;
  auto n = v->get<int64_t>();
  if (n == 0) return kDefaultMaxBodyBytes;
  return n;  // negative disables the limit
}
bool Config::auto_connect() const {
  auto* v = find("peers", "auto_connect");
  return v && v->is_boolean() ? v->get<bool>() : true;
}
int Config::pairing_code_length() const {
  auto* v = find("peers", "pairing_code_length");
  return v && v->is_number_integer() ? v->get<int>() : kDefaultPairingCodeLength;
}
std::optional<std::string> Config::peers_name() const {
  auto* v = find("peers", "name");
  if (v && v->is_string() && !v->get<std::string>().empty()) return v->get<std::string>();
  return std::nullopt;
}

}  // namespace thrum::core
