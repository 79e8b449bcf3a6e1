#include "json_writer.hpp"
#include "json_utf8.hpp"

#include <charconv>
#include <cstdint>

namespace thrum::core::json_writer {

namespace {

using json = nlohmann::json;

/// The escape nlohmann writes for a byte below 0x20 (lowercase hex, as its "\\u%04x").
void escape_control(std::string& out, unsigned char c) {
  switch (c) {
    case '\b':
      out += "\\b";
      return;
    case '\t':
      out += "\\t";
      return;
    case '\n':
      out += "\\n";
      return;
    case '\f':
      out += "\\f";
      return;
    case '\r':
      out += "\\r";
      return;
    default: {
      static constexpr char kHex[] = "0123456789abcdef";
      const char e[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
      out.append(e, 6);
    }
  }
}

/// Appends `s` as a string literal, or returns false (with `out` as it was) when it is not
/// valid UTF-8, so that nlohmann repairs it its own way.
bool append_valid_string(std::string& out, std::string_view s) {
  const size_t mark = out.size();  // (no reserve(): an exact one would reallocate per string)
  out += '"';
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  const auto* run = p;  // bytes not yet copied
  for (;;) {
    p = json_utf8::skip_plain(p, end);
    if (p == end) break;
    const unsigned char c = *p;
    if (c >= 0x80) {
      const int n = json_utf8::sequence(p, end);
      if (n == 0) {
        out.resize(mark);
        return false;
      }
      p += n;
      continue;
    }
    out.append(reinterpret_cast<const char*>(run), static_cast<size_t>(p - run));
    if (c == '"')
      out += "\\\"";
    else if (c == '\\')
      out += "\\\\";
    else
      escape_control(out, c);
    run = ++p;
  }
  out.append(reinterpret_cast<const char*>(run), static_cast<size_t>(p - run));
  out += '"';
  return true;
}

template <class Int>
void append_integer(std::string& out, Int v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void append_with_nlohmann(std::string& out, const json& j) {
  out += j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

void append_string(std::string& out, std::string_view s) {
  if (!append_valid_string(out, s)) append_with_nlohmann(out, json(std::string(s)));
}

namespace {

void write(std::string& out, const json& j) {
  switch (j.type()) {
    case json::value_t::null:
      out += "null";
      return;
    case json::value_t::boolean:
      out += j.get<bool>() ? "true" : "false";
      return;
    case json::value_t::number_integer:
      append_integer(out, j.get<json::number_integer_t>());
      return;
    case json::value_t::number_unsigned:
      append_integer(out, j.get<json::number_unsigned_t>());
      return;
    case json::value_t::string:
      append_string(out, j.get_ref<const json::string_t&>());
      return;
    case json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& v : j.get_ref<const json::array_t&>()) {
        if (!first) out += ',';
        first = false;
        write(out, v);
      }
      out += ']';
      return;
    }
    case json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [k, v] : j.get_ref<const json::object_t&>()) {
        if (!first) out += ',';
        first = false;
        append_string(out, k);
        out += ':';
        write(out, v);
      }
      out += '}';
      return;
    }
    default:  // number_float, binary, discarded: nlohmann's own formats
      append_with_nlohmann(out, j);
  }
}

}  // namespace

void append(std::string& out, const nlohmann::json& j) {
  write(out, j);
}

}  // namespace thrum::core::json_writer
