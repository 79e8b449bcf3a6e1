#pragma once
/// @file
/// Parsing untrusted JSON text: the only way text from outside the process (a socket line, a
/// peer frame, a file) becomes a nlohmann::json in Thrum.
///
/// Copying, comparing and dumping a nlohmann::json recurse once per nesting level: a
/// 60,000-deep array copied by a handler overflows the stack. So depth is bounded while the
/// text is read: parse_bounded() refuses text nested deeper than `max_depth` as soon as it
/// gets there, without building the rest. It also refuses invalid UTF-8 and never throws. The
/// reading is Thrum's own (common/src/json_reader.hpp: the same documents as nlohmann's
/// parser, checked differentially, in about a third of the instructions; a NUL byte outside
/// a string, where nlohmann would stop reading, is refused).
///
/// After parsing, handlers must not copy untrusted values wholesale (decode the fields into
/// typed structs instead) and must check a value's type before get<>()/value().

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace thrum::core {

/// Deep enough for every document Thrum reads or writes (a peer.deliver frame is 5 levels).
inline constexpr int kMaxJsonDepth = 32;

/// Why parse_bounded() refused.
struct JsonRefusal {
  enum class Kind { kSyntax, kTooDeep, kTooLarge };
  Kind kind = Kind::kSyntax;
  std::string message;  ///< for the user; never quotes the input
};

/// The nesting depth of the arrays/objects in `text` (0 for a scalar), counted outside string
/// literals, stopping as soon as it passes `limit` (then returns limit + 1). Linear, no
/// allocation. Malformed text gets some number; parsing decides whether it is valid.
int json_nesting_depth(std::string_view text, int limit);

/// Parses one JSON document. nullopt (and `*why`, when given) when the text is not valid JSON
/// (including invalid UTF-8), nests deeper than `max_depth`, or is longer than `max_bytes`.
std::optional<nlohmann::json> parse_bounded(std::string_view text, JsonRefusal* why = nullptr,
                                            int max_depth = kMaxJsonDepth,
                                            std::size_t max_bytes = std::string_view::npos);

/// The same for documents whose key order must survive a rewrite (config.json).
std::optional<nlohmann::ordered_json> parse_bounded_ordered(
    std::string_view text, JsonRefusal* why = nullptr, int max_depth = kMaxJsonDepth,
    std::size_t max_bytes = std::string_view::npos);

/// Serialises compactly; invalid UTF-8 in strings (e.g. read from a file or a database) is
/// replaced by U+FFFD instead of throwing type_error.316.
/// (Thrum's writer, common/src/json_writer.hpp: the bytes of nlohmann's dump, written faster.)
std::string dump_compact(const nlohmann::json& j);
/// The same, appended to `out` (envelopes written around a value without a copy of it).
void append_compact(std::string& out, const nlohmann::json& j);
/// `s` as a JSON string literal, appended to `out` (what append_compact(out, json(s)) writes,
/// without building the value): for documents written field by field.
void append_json_string(std::string& out, std::string_view s);
std::string dump_pretty(const nlohmann::json& j, int indent = 2);
std::string dump_pretty(const nlohmann::ordered_json& j, int indent = 2);

}  // namespace thrum::core
