#include "options.hpp"

#include <cstdint>

namespace thrum::transport::tailscale {

const char* JsonValue::kind_name() const {
  switch (kind) {
    case Kind::kNull:
      return "null";
    case Kind::kBool:
      return "a boolean";
    case Kind::kNumber:
      return "a number";
    case Kind::kString:
      return "a string";
    case Kind::kObject:
      return "an object";
    case Kind::kArray:
      return "a list";
  }
  return "a value";
}

namespace {

/// Recursive-descent reader over a string_view. Depth is bounded so that hostile input cannot
/// exhaust the stack.
class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}

  bool object(JsonObject& out, int depth) {
    if (depth > 32) return fail("nested too deeply");
    if (!eat('{')) return fail("expected '{'");
    skip_ws();
    if (eat('}')) return true;
    for (;;) {
      skip_ws();
      std::string key;
      if (!string(key)) return false;
      skip_ws();
      if (!eat(':')) return fail("expected ':' after a key");
      JsonValue v;
      if (!value(v, depth)) return false;
      out[key] = std::move(v);
      skip_ws();
      if (eat(',')) continue;
      if (eat('}')) return true;
      return fail("expected ',' or '}'");
    }
  }

  bool at_end() {
    skip_ws();
    return i_ == s_.size();
  }
  const std::string& error() const { return error_; }
  std::size_t offset() const { return i_; }

 private:
  bool value(JsonValue& v, int depth) {
    skip_ws();
    if (i_ >= s_.size()) return fail("unexpected end");
    const char c = s_[i_];
    if (c == '"') {
      v.kind = JsonValue::Kind::kString;
      return string(v.text);
    }
    if (c == '{') {
      v.kind = JsonValue::Kind::kObject;
      v.object = std::make_shared<JsonObject>();
      return object(*v.object, depth + 1);
    }
    if (c == '[') {
      v.kind = JsonValue::Kind::kArray;
      const std::size_t start = i_;
      if (!array(depth + 1)) return false;
      v.text = std::string(s_.substr(start, i_ - start));
      return true;
    }
    if (word("true")) {
      v.kind = JsonValue::Kind::kBool;
      v.boolean = true;
      return true;
    }
    if (word("false")) {
      v.kind = JsonValue::Kind::kBool;
      return true;
    }
    if (word("null")) {
      v.kind = JsonValue::Kind::kNull;
      return true;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      v.kind = JsonValue::Kind::kNumber;
      const std::size_t start = i_;
      while (i_ < s_.size() &&
             std::string_view("+-.eE0123456789").find(s_[i_]) != std::string_view::npos)
        ++i_;
      v.text = std::string(s_.substr(start, i_ - start));
      return true;
    }
    return fail("unexpected character");
  }

  bool array(int depth) {
    if (depth > 32) return fail("nested too deeply");
    eat('[');
    skip_ws();
    if (eat(']')) return true;
    for (;;) {
      JsonValue ignored;
      if (!value(ignored, depth)) return false;
      skip_ws();
      if (eat(',')) continue;
      if (eat(']')) return true;
      return fail("expected ',' or ']'");
    }
  }

  bool string(std::string& out) {
    if (!eat('"')) return fail("expected a string");
    while (i_ < s_.size()) {
      const char c = s_[i_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return fail("control character in a string");
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (i_ >= s_.size()) break;
      const char e = s_[i_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out.push_back(e);
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          std::uint32_t cp = 0;
          if (!hex4(cp)) return fail("bad \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            std::uint32_t lo = 0;
            if (!(eat('\\') && eat('u') && hex4(lo)) || lo < 0xDC00 || lo > 0xDFFF)
              return fail("unpaired surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          utf8(cp, out);
          break;
        }
        default:
          return fail("bad escape in a string");
      }
    }
    return fail("unterminated string");
  }

  bool hex4(std::uint32_t& cp) {
    if (i_ + 4 > s_.size()) return false;
    cp = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = s_[i_++];
      cp <<= 4;
      if (h >= '0' && h <= '9')
        cp |= static_cast<std::uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f')
        cp |= static_cast<std::uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F')
        cp |= static_cast<std::uint32_t>(h - 'A' + 10);
      else
        return false;
    }
    return true;
  }

  static void utf8(std::uint32_t cp, std::string& out) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  bool word(std::string_view w) {
    if (s_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }
  bool eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  bool fail(const char* what) {
    if (error_.empty()) error_ = what;
    return false;
  }

  std::string_view s_;
  std::size_t i_ = 0;
  std::string error_;
};

}  // namespace

std::optional<JsonObject> parse_json_object(std::string_view text, std::string& error) {
  Reader r(text);
  JsonObject out;
  if (r.at_end()) {
    error = "empty options (expected a JSON object)";
    return std::nullopt;
  }
  if (!r.object(out, 0)) {
    error =
        "options are not a JSON object: " + r.error() + " at offset " + std::to_string(r.offset());
    return std::nullopt;
  }
  if (!r.at_end()) {
    error = "options are not a JSON object: trailing text at offset " + std::to_string(r.offset());
    return std::nullopt;
  }
  return out;
}

}  // namespace thrum::transport::tailscale
