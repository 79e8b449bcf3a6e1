#include "thrum/common/bounded_json.hpp"

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

template <class Json>
std::optional<Json> parse_impl(std::string_view text, JsonRefusal* why, int max_depth,
                               std::size_t max_bytes) {
  auto refuse = [why](JsonRefusal::Kind k, std::string msg) -> std::optional<Json> {
    if (why) *why = JsonRefusal{k, std::move(msg)};
    return std::nullopt;
  };
  if (text.size() > max_bytes)
    return refuse(JsonRefusal::Kind::kTooLarge, "document of " + std::to_string(text.size()) +
                                                    " bytes exceeds the limit of " +
                                                    std::to_string(max_bytes) + " bytes");
  if (json_nesting_depth(text, max_depth) > max_depth)
    return refuse(JsonRefusal::Kind::kTooDeep,
                  "document nests deeper than " + std::to_string(max_depth) + " levels");
  Json doc = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded())
    return refuse(JsonRefusal::Kind::kSyntax, "not valid JSON (or not valid UTF-8)");
  return doc;
}

}  // namespace

std::optional<nlohmann::json> parse_bounded(std::string_view text, JsonRefusal* why, int max_depth,
                                            std::size_t max_bytes) {
  return parse_impl<nlohmann::json>(text, why, max_depth, max_bytes);
}

std::optional<nlohmann::ordered_json> parse_bounded_ordered(std::string_view text, JsonRefusal* why,
                                                            int max_depth, std::size_t max_bytes) {
  return parse_impl<nlohmann::ordered_json>(text, why, max_depth, max_bytes);
}

std::string dump_compact(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string dump_pretty(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string dump_pretty(const nlohmann::ordered_json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace thrum::core
