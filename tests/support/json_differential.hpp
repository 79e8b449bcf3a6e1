#pragma once
/// @file
/// The contract of Thrum's JSON reader (common/src/json_reader.hpp), as one check shared by
/// its unit test and the `json_differential` fuzz target: the reader accepts `text` exactly
/// when nlohmann::json::parse does, and builds the same value, number types included — except
/// that a NUL byte outside a string, where nlohmann stops reading, makes the reader refuse.

#include <cmath>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "json_reader.hpp"
#include "thrum/common/bounded_json.hpp"

namespace thrum::core::test {

/// Empty when `a` and `b` are the same value of the same types throughout; otherwise where
/// they differ. Recursion is bounded by the reader's depth limit.
inline std::string json_value_differs(const nlohmann::json& a, const nlohmann::json& b,
                                      const std::string& at = "$") {
  using nlohmann::json;
  if (a.type() != b.type())
    return at + ": type " + std::string(a.type_name()) + " vs " + b.type_name() +
           (a.is_number() ? " (number kinds differ)" : "");
  switch (a.type()) {
    case json::value_t::object: {
      if (a.size() != b.size()) return at + ": object sizes differ";
      auto ib = b.begin();
      for (auto ia = a.begin(); ia != a.end(); ++ia, ++ib) {
        if (ia.key() != ib.key()) return at + ": keys differ";
        if (auto d = json_value_differs(ia.value(), ib.value(), at + "." + ia.key()); !d.empty())
          return d;
      }
      return {};
    }
    case json::value_t::array: {
      if (a.size() != b.size()) return at + ": array sizes differ";
      for (size_t i = 0; i < a.size(); ++i)
        if (auto d = json_value_differs(a[i], b[i], at + "[" + std::to_string(i) + "]"); !d.empty())
          return d;
      return {};
    }
    case json::value_t::number_float: {
      const double x = a.get<double>();
      const double y = b.get<double>();
      if (x != y || std::signbit(x) != std::signbit(y)) return at + ": doubles differ";
      return {};
    }
    default:
      return a == b ? std::string() : at + ": values differ";
  }
}

/// Empty when the reader and nlohmann agree on `text` (with `max_depth` for the reader; a
/// text it refuses as too deep must nest deeper than that, and is not compared further).
inline std::string json_reader_differs(std::string_view text, int max_depth) {
  nlohmann::json mine;
  const auto r = json_reader::read(text, max_depth, mine);
  if (r == json_reader::Result::kTooDeep)
    return json_nesting_depth(text, max_depth) > max_depth
               ? std::string()
               : "refused as too deep, but it nests no deeper than the limit";
  nlohmann::json theirs = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  const bool they_accept = !theirs.is_discarded();
  const bool i_accept = r == json_reader::Result::kOk;
  if (they_accept && !i_accept && text.find('\0') != std::string_view::npos) {
    // The one deliberate difference: nlohmann takes a NUL byte outside a string for the end
    // of the input and ignores what follows it; the reader refuses the text. Up to that
    // byte, they must agree.
    const auto prefix = text.substr(0, text.find('\0'));
    if (json_reader::read(prefix, max_depth, mine) != json_reader::Result::kOk)
      return "refused text nlohmann accepts (up to its NUL byte)";
    return json_value_differs(mine, theirs);
  }
  if (they_accept != i_accept)
    return i_accept ? "accepted text nlohmann refuses" : "refused text nlohmann accepts";
  return i_accept ? json_value_differs(mine, theirs) : std::string();
}

/// Empty when Thrum's writer (common/src/json_writer.hpp) writes `j` byte for byte as
/// nlohmann's compact dump with invalid UTF-8 replaced does.
inline std::string json_writer_differs(const nlohmann::json& j) {
  const std::string mine = dump_compact(j);
  const std::string theirs = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (mine == theirs) return {};
  size_t at = 0;
  while (at < mine.size() && at < theirs.size() && mine[at] == theirs[at]) ++at;
  return "writer output differs from nlohmann's at byte " + std::to_string(at);
}

}  // namespace thrum::core::test
