#include "thrum/core/policy.hpp"

#include "thrum/common/policy_lookup.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
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
    text_of(key);
    return key.Scalar();
  }

  // A scalar's text, refused unless it is valid UTF-8 (it becomes JSON for the plugin, and
  // serialising invalid UTF-8 would throw far from here, without the line).
  const std::string& text_of(const YAML::Node& n) const {
    const std::string& s = n.Scalar();
    if (!valid_utf8(s)) fail(n, "text is not valid UTF-8");
    return s;
  }

  static bool valid_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
      const auto c = static_cast<unsigned char>(s[i]);
      std::size_t n = 0;
      std::uint32_t cp = 0;
      if (c < 0x80) {
        ++i;
        continue;
      } else if ((c & 0xE0) == 0xC0) {
        n = 1;
        cp = c & 0x1F;
      } else if ((c & 0xF0) == 0xE0) {
        n = 2;
        cp = c & 0x0F;
      } else if ((c & 0xF8) == 0xF0) {
        n = 3;
        cp = c & 0x07;
      } else {
        return false;
      }
      for (std::size_t k = 1; k <= n; ++k) {
        if (i + k >= s.size()) return false;
        const auto cc = static_cast<unsigned char>(s[i + k]);
        if ((cc & 0xC0) != 0x80) return false;
        cp = (cp << 6) | (cc & 0x3F);
      }
      static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
      if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
      i += n + 1;
    }
    return true;
  }

  // A transport's options as JSON. Aliases make YAML a graph: `*a` repeated ten times in ten
  // levels is 10^10 values ("billion laughs"), so the expansion is bounded in values and depth.
  // The budget is for the whole file, so many small expansions cannot add up either.
  json options_to_json(const YAML::Node& n) { return to_json(n, 0, budget_); }

  static constexpr std::size_t kMaxOptionValues = 10000;
  static constexpr int kMaxOptionDepth = 16;

 private:
  // YAML scalars are text; plain (unquoted) ones that read as a bool or number become one.
  json to_json(const YAML::Node& n, int depth, std::size_t& budget) const {
    if (budget == 0)
      fail(n, "transport options expand to more than " + std::to_string(kMaxOptionValues) +
                  " values (YAML aliases repeating a subtree?); write the options out without "
                  "aliases");
    --budget;
    if (depth > kMaxOptionDepth)
      fail(n, "transport options nest deeper than " + std::to_string(kMaxOptionDepth) + " levels");
    switch (n.Type()) {
      case YAML::NodeType::Null:
        return nullptr;
      case YAML::NodeType::Scalar: {
        const std::string& s = text_of(n);
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
        for (const auto& e : n) a.push_back(to_json(e, depth + 1, budget));
        return a;
      }
      case YAML::NodeType::Map: {
        json o = json::object();
        for (const auto& kv : n) o[key_of(kv.first)] = to_json(kv.second, depth + 1, budget);
        return o;
      }
      default:
        return nullptr;
    }
  }

  fs::path file_;
  int lines_ = 0;
  std::size_t budget_ = kMaxOptionValues;
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
  return policy_file_for_start(etc_path);
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
        fs::path dir(c.text_of(e));
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
              tr.options[okey] = c.options_to_json(o.second);
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
