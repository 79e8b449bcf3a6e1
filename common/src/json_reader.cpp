#include "json_reader.hpp"
#include "json_utf8.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace thrum::core::json_reader {

namespace {

using json = nlohmann::json;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void append_utf8(std::string& out, uint32_t cp) {
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

class Reader {
 public:
  Reader(std::string_view text, int max_depth)
      : p_(text.data()), end_(text.data() + text.size()), max_depth_(max_depth) {}

  Result document(json& out) {
    // nlohmann skips a UTF-8 byte order mark at the very start, and refuses a partial one.
    if (p_ != end_ && static_cast<unsigned char>(*p_) == 0xEF) {
      if (end_ - p_ < 3 || static_cast<unsigned char>(p_[1]) != 0xBB ||
          static_cast<unsigned char>(p_[2]) != 0xBF)
        return Result::kSyntax;
      p_ += 3;
    }
    skip_space();
    if (!value(out, 0)) return result_;
    skip_space();
    return p_ == end_ ? Result::kOk : Result::kSyntax;
  }

 private:
  bool fail(Result why = Result::kSyntax) {
    result_ = why;
    return false;
  }

  void skip_space() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  /// One value at `depth` (the number of containers around it); `*p_` is its first byte.
  bool value(json& out, int depth) {
    if (p_ == end_) return fail();
    switch (*p_) {
      case '{':
        return object(out, depth + 1);
      case '[':
        return array(out, depth + 1);
      case '"': {
        std::string s;
        if (!string(s)) return false;
        out = std::move(s);
        return true;
      }
      case 't':
        return literal("true", json(true), out);
      case 'f':
        return literal("false", json(false), out);
      case 'n':
        return literal("null", json(nullptr), out);
      default:
        return number(out);
    }
  }

  bool literal(std::string_view word, json v, json& out) {
    if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word)
      return fail();
    p_ += word.size();
    out = std::move(v);
    return true;
  }

  /// The elements of an object or array (`*p_` is its opening bracket), each read by
  /// `element` where it starts, separated by commas, up to `close`.
  template <class Element>
  bool elements(char close, Element element) {
    ++p_;
    skip_space();
    if (p_ != end_ && *p_ == close) {
      ++p_;
      return true;
    }
    for (;;) {
      if (!element()) return false;
      skip_space();
      if (p_ == end_) return fail();
      if (*p_ == close) {
        ++p_;
        return true;
      }
      if (*p_ != ',') return fail();
      ++p_;
      skip_space();
    }
  }

  bool object(json& out, int depth) {
    if (depth > max_depth_) return fail(Result::kTooDeep);
    out = json(json::value_t::object);
    auto& members = out.get_ref<json::object_t&>();
    return elements('}', [&] {
      if (p_ == end_ || *p_ != '"') return fail();
      std::string key;
      if (!string(key)) return false;
      skip_space();
      if (p_ == end_ || *p_ != ':') return fail();
      ++p_;
      skip_space();
      // Straight into the member's slot; a later duplicate overwrites it, as nlohmann does.
      return value(members[std::move(key)], depth);
    });
  }

  bool array(json& out, int depth) {
    if (depth > max_depth_) return fail(Result::kTooDeep);
    out = json(json::value_t::array);
    auto& items = out.get_ref<json::array_t&>();
    return elements(']', [&] {
      items.emplace_back();
      return value(items.back(), depth);
    });
  }

  /// Four hex digits after "\u".
  bool hex4(uint32_t& cp) {
    if (end_ - p_ < 4) return false;
    cp = 0;
    for (int i = 0; i < 4; ++i) {
      const int h = hex_value(p_[i]);
      if (h < 0) return false;
      cp = (cp << 4) | static_cast<uint32_t>(h);
    }
    p_ += 4;
    return true;
  }

  /// The escape after a backslash (`*p_` is the byte after it).
  bool escape(std::string& out) {
    if (p_ == end_) return fail();
    const char c = *p_++;
    switch (c) {
      case '"':
      case '\\':
      case '/':
        out.push_back(c);
        return true;
      case 'b':
        out.push_back('\b');
        return true;
      case 'f':
        out.push_back('\f');
        return true;
      case 'n':
        out.push_back('\n');
        return true;
      case 'r':
        out.push_back('\r');
        return true;
      case 't':
        out.push_back('\t');
        return true;
      case 'u':
        break;
      default:
        return fail();
    }
    uint32_t cp = 0;
    if (!hex4(cp)) return fail();
    if (cp >= 0xDC00 && cp <= 0xDFFF) return fail();  // a low surrogate alone
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      // A high surrogate must be followed by an escaped low one.
      uint32_t low = 0;
      if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return fail();
      p_ += 2;
      if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) return fail();
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    append_utf8(out, cp);
    return true;
  }

  /// A string literal; `*p_` is its opening quote.
  bool string(std::string& out) {
    ++p_;
    const char* run = p_;  // plain bytes not yet copied
    for (;;) {
      // Plain printable ASCII, the bulk of any message, in a tight loop of its own.
      p_ = reinterpret_cast<const char*>(
          json_utf8::skip_plain(reinterpret_cast<const unsigned char*>(p_),
                                reinterpret_cast<const unsigned char*>(end_)));
      if (p_ == end_) return fail();
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        out.append(run, p_);
        ++p_;
        return true;
      }
      if (c == '\\') {
        out.append(run, p_);
        ++p_;
        if (!escape(out)) return false;
        run = p_;
        continue;
      }
      if (c < 0x20) return fail();  // control characters must be escaped
      if (c < 0x80) {
        ++p_;
        continue;
      }
      const int n = json_utf8::sequence(reinterpret_cast<const unsigned char*>(p_),
                                        reinterpret_cast<const unsigned char*>(end_));
      if (n == 0) return fail();
      p_ += n;
    }
  }

  bool number(json& out) {
    const char* start = p_;
    const bool negative = *p_ == '-';
    if (negative) ++p_;
    if (p_ == end_) return fail();
    if (*p_ == '0') {
      ++p_;
    } else if (*p_ >= '1' && *p_ <= '9') {
      while (p_ != end_ && is_digit(*p_)) ++p_;
    } else {
      return fail();
    }
    bool integral = true;
    if (p_ != end_ && *p_ == '.') {
      ++p_;
      if (p_ == end_ || !is_digit(*p_)) return fail();
      while (p_ != end_ && is_digit(*p_)) ++p_;
      integral = false;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || !is_digit(*p_)) return fail();
      while (p_ != end_ && is_digit(*p_)) ++p_;
      integral = false;
    }
    if (integral) {
      // As nlohmann: unsigned when not negative, signed when negative, a double when the
      // integer fits neither.
      if (negative) {
        int64_t v = 0;
        auto r = std::from_chars(start, p_, v);
        if (r.ec == std::errc() && r.ptr == p_) {
          out = v;
          return true;
        }
      } else {
        uint64_t v = 0;
        auto r = std::from_chars(start, p_, v);
        if (r.ec == std::errc() && r.ptr == p_) {
          out = v;
          return true;
        }
      }
    }
    double d = 0;
    auto r = std::from_chars(start, p_, d);
    if (r.ec == std::errc::result_out_of_range) {
      // from_chars refuses underflow too; strtod gives what nlohmann keeps (0 or a subnormal),
      // and infinity for an overflow, which nlohmann refuses.
      const std::string token(start, p_);
      d = std::strtod(token.c_str(), nullptr);
    } else if (r.ec != std::errc() || r.ptr != p_) {
      return fail();
    }
    if (!std::isfinite(d)) return fail();
    out = d;
    return true;
  }

  const char* p_;
  const char* end_;
  int max_depth_;
  Result result_ = Result::kSyntax;
};

}  // namespace

Result read(std::string_view text, int max_depth, nlohmann::json& out) {
  return Reader(text, max_depth).document(out);
}

}  // namespace thrum::core::json_reader
