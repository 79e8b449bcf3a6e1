#include "thrum/common/bounded_json.hpp"

#include "json_reader.hpp"
#include "json_writer.hpp"

namespace thrum::core {

int json_nesting_depth(std::string_view text, int limit) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > deepest) {
          deepest = depth;
          if (deepest > limit) return limit + 1;
        }
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return deepest;
}

namespace {

JsonRefusal too_large(std::size_t size, std::size_t max_bytes) {
  return {JsonRefusal::Kind::kTooLarge, "document of " + std::to_string(size) +
                                            " bytes exceeds the limit of " +
                                            std::to_string(max_bytes) + " bytes"};
}
JsonRefusal too_deep(int max_depth) {
  return {JsonRefusal::Kind::kTooDeep,
          "document nests deeper than " + std::to_string(max_depth) + " levels"};
}
JsonRefusal not_json() {
  return {JsonRefusal::Kind::kSyntax, "not valid JSON (or not valid UTF-8)"};
}

/// Stores the refusal (when asked) and returns "nothing".
std::nullopt_t refuse(JsonRefusal* why, JsonRefusal refusal) {
  if (why) *why = std::move(refusal);
  return std::nullopt;
}

}  // namespace

std::optional<nlohmann::json> parse_bounded(std::string_view text, JsonRefusal* why, int max_depth,
                                            std::size_t max_bytes) {
  // Thrum's reader (json_reader.hpp): the same documents as nlohmann's parser, in one pass
  // that bounds the depth as it goes. A refusal is classified as the pre-pass would have
  // (too deep whenever the brackets nest too deep, even in text that is malformed anyway).
  if (text.size() > max_bytes) return refuse(why, too_large(text.size(), max_bytes));
  nlohmann::json doc;
  switch (json_reader::read(text, max_depth, doc)) {
    case json_reader::Result::kOk:
      return doc;
    case json_reader::Result::kTooDeep:
      return refuse(why, too_deep(max_depth));
    case json_reader::Result::kSyntax:
      break;
  }
  if (json_nesting_depth(text, max_depth) > max_depth) return refuse(why, too_deep(max_depth));
  return refuse(why, not_json());
}

std::optional<nlohmann::ordered_json> parse_bounded_ordered(std::string_view text, JsonRefusal* why,
                                                            int max_depth, std::size_t max_bytes) {
  // Rare (config.json) and order-keeping: nlohmann's parser behind the depth pre-pass.
  if (text.size() > max_bytes) return refuse(why, too_large(text.size(), max_bytes));
  if (json_nesting_depth(text, max_depth) > max_depth) return refuse(why, too_deep(max_depth));
  auto doc = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return refuse(why, not_json());
  return doc;
}

std::string dump_compact(const nlohmann::json& j) {
  std::string out;
  out.reserve(256);  // most documents on the message path fit; fewer regrowths
  json_writer::append(out, j);
  return out;
}

void append_compact(std::string& out, const nlohmann::json& j) {
  json_writer::append(out, j);
}

void append_json_string(std::string& out, std::string_view s) {
  json_writer::append_string(out, s);
}

std::string dump_pretty(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string dump_pretty(const nlohmann::ordered_json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace thrum::core
