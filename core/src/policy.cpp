#include "thrum/core/policy.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

namespace thrum::core {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class Checker {
 public:
  Checker(fs::path file, const std::string& text) : file_(std::move(file)) {
    lines_ = static_cast<int>(std::count(text.begin(), text.end(), '\n'));
    if (!text.empty() && text.back() != '\n') ++lines_;
  }

  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& problem) const {
    if (mark.is_null()) throw PolicyError(file_.string() + ": " + problem);
    // yaml-cpp counts from 0 and reports "end of file" one past the last line.
    const int line = std::max(1, std::min(mark.line + 1, std::max(lines_, 1)));
    throw PolicyError(file_.string() + ":" + std::to_string(line) + ": " + problem);
  }
  [[noreturn]] void fail(const YAML::Node& node, const std::string& problem) const {
    fail(node.Mark(), problem);
  }

  static const char* kind(const YAML::Node& n) {
    switch (n.Type()) {
      case YAML::NodeType::Null:
        return "nothing";
      case YAML::NodeType::Scalar:
        return "a scalar";
      case YAML::NodeType::Sequence:
        return "a list";
      case YAML::NodeType::Map:
        return "a map";
      default:
        return "nothing";
    }
  }

  std::string key_of(const YAML::Node& key) const {
    if (!key.IsScalar()) fail(key, "keys must be plain names");
    return key.Scalar();
  }

  // YAML scalars are text; plain (unquoted) ones that read as a bool or number become one.
  json to_json(const YAML::Node& n) const {
    switch (n.Type()) {
      case YAML::NodeType::Null:
        return nullptr;
      case YAML::NodeType::Scalar: {
        const std::string& s = n.Scalar();
        if (n.Tag() == "!") return s;  // quoted: a string
        if (s == "true" || s == "True" || s == "TRUE") return true;
        if (s == "false" || s == "False" || s == "FALSE") return false;
        if (s == "~" || s == "null") return nullptr;
        if (!s.empty()) {
          errno = 0;
          char* end = nullptr;
          long long i = std::strtoll(s.c_str(), &end, 10);
          if (errno == 0 && end == s.c_str() + s.size()) return i;
          errno = 0;
          double d = std::strtod(s.c_str(), &end);
          if (errno == 0 && end == s.c_str() + s.size() &&
              s.find_first_of("0123456789") != std::string::npos &&
              s.find_first_not_of("0123456789.eE+-") == std::string::npos) {
            return d;
          }
        }
        return s;
      }
      case YAML::NodeType::Sequence: {
        json a = json::array();
        for (const auto& e : n) a.push_back(to_json(e));
        return a;
      }
      case YAML::NodeType::Map: {
        json o = json::object();
        for (const auto& kv : n) o[key_of(kv.first)] = to_json(kv.second);
        return o;
      }
      default:
        return nullptr;
    }
  }

 private:
  fs::path file_;
  int lines_ = 0;
};

bool valid_id(const std::string& id) {
  if (id.empty()) return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

}  // namespace

std::optional<fs::path> Policy::locate(const fs::path& etc_path) {
  if (const char* env = std::getenv("THRUM_POLICY"); env != nullptr && *env != '\0') {
    return fs::path(env);  // must exist: load_file says so if it does not
  }
  std::error_code ec;
  if (fs::exists(etc_path, ec)) return etc_path;
  return std::nullopt;
}

Policy Policy::load_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw PolicyError(file.string() + ": cannot read policy file: " + std::strerror(errno));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), file);
}

Policy Policy::parse(const std::string& text, const fs::path& file) {
  Checker c(file, text);
  Policy p;
  p.source_ = file;

  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    c.fail(e.mark, e.msg);
  } catch (const YAML::Exception& e) {
    c.fail(e.mark, e.msg);
  }
  if (root.IsNull()) return p;  // empty file: no restrictions
  if (!root.IsMap())
    c.fail(root, std::string("expected a map with plugin_dirs and transports, got ") +
                     Checker::kind(root));

  for (const auto& kv : root) {
    const std::string key = c.key_of(kv.first);
    const YAML::Node& v = kv.second;
    if (key == "plugin_dirs") {
      if (!v.IsSequence())
        c.fail(v.IsNull() ? kv.first : v,
               std::string("plugin_dirs: expected a list of directories, got ") + Checker::kind(v));
      p.has_plugin_dirs_ = true;
      for (const auto& e : v) {
        if (!e.IsScalar() || e.Scalar().empty())
          c.fail(e, "plugin_dirs: each entry must be a directory path");
        fs::path dir(e.Scalar());
        if (dir.is_relative()) dir = file.parent_path() / dir;
        p.plugin_dirs_.push_back(dir.lexically_normal());
      }
    } else if (key == "transports") {
      if (v.IsNull()) {
        p.has_transports_ = true;  // `transports:` with nothing: every transport disabled
        continue;
      }
      if (!v.IsMap())
        c.fail(v,
               std::string("transports: expected a map of transport ids, got ") + Checker::kind(v));
      p.has_transports_ = true;
      for (const auto& t : v) {
        const std::string id = c.key_of(t.first);
        if (!valid_id(id))
          c.fail(t.first, "transports: \"" + id + "\" is not a transport id ([a-z0-9_]+)");
        const YAML::Node& body = t.second;
        Transport tr;
        tr.line = t.first.Mark().line + 1;
        if (!body.IsNull()) {
          if (!body.IsMap())
            c.fail(body, "transports." + id + ": expected a map like { enabled: true }, got " +
                             Checker::kind(body));
          for (const auto& o : body) {
            const std::string okey = c.key_of(o.first);
            if (okey == "enabled") {
              const YAML::Node& en = o.second;
              bool b = false;
              const std::string s = en.IsScalar() ? en.Scalar() : std::string();
              if (!en.IsScalar() || en.Tag() == "!" || !(s == "true" || s == "false")) {
                c.fail(en.IsNull() ? o.first : en,
                       "transports." + id + ".enabled: expected true or false, got " +
                           (en.IsScalar() ? "\"" + s + "\"" : std::string(Checker::kind(en))));
              }
              b = s == "true";
              tr.enabled = b;
            } else {
              tr.options[okey] = c.to_json(o.second);
            }
          }
        }
        if (p.transports_.count(id) != 0)
          c.fail(t.first, "transports: \"" + id + "\" is listed twice");
        p.transports_.emplace(id, std::move(tr));
      }
    } else {
      c.fail(kv.first, "unknown key \"" + key + "\" (expected plugin_dirs or transports)");
    }
  }
  return p;
}

bool Policy::enabled(const std::string& id) const {
  if (source_.empty() || !has_transports_) return true;
  auto it = transports_.find(id);
  return it != transports_.end() && it->second.enabled;
}

nlohmann::json Policy::options(const std::string& id) const {
  auto it = transports_.find(id);
  return it == transports_.end() ? json::object() : it->second.options;
}

}  // namespace thrum::core
