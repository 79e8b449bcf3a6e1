#include "options.hpp"

#include <nlohmann/json.hpp>

#include "thrum/common/bounded_json.hpp"

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

/// Options are small: a few keys, a path or two. Deeper or larger text is refused.
constexpr int kMaxOptionsDepth = 8;
constexpr std::size_t kMaxOptionsBytes = 1 << 20;

JsonObject decode_object(const nlohmann::json& j);

JsonValue decode_value(const nlohmann::json& v) {
  JsonValue out;
  switch (v.type()) {
    case nlohmann::json::value_t::null:
      break;
    case nlohmann::json::value_t::boolean:
      out.kind = JsonValue::Kind::kBool;
      out.boolean = v.get<bool>();
      break;
    case nlohmann::json::value_t::string:
      out.kind = JsonValue::Kind::kString;
      out.text = v.get_ref<const std::string&>();
      break;
    case nlohmann::json::value_t::object:
      out.kind = JsonValue::Kind::kObject;
      out.object = std::make_shared<JsonObject>(decode_object(v));
      break;
    case nlohmann::json::value_t::array:
      out.kind = JsonValue::Kind::kArray;
      out.text = core::dump_compact(v);
      break;
    default:  // the three number kinds
      out.kind = JsonValue::Kind::kNumber;
      out.text = core::dump_compact(v);
      break;
  }
  return out;
}

JsonObject decode_object(const nlohmann::json& j) {
  JsonObject out;
  for (const auto& [key, value] : j.items()) out[key] = decode_value(value);
  return out;
}

}  // namespace

std::optional<JsonObject> parse_json_object(std::string_view text, std::string& error) {
  core::JsonRefusal why;
  auto doc = core::parse_bounded(text, &why, kMaxOptionsDepth, kMaxOptionsBytes);
  if (!doc) {
    error = "options are not a JSON object: " + why.message;
    return std::nullopt;
  }
  if (!doc->is_object()) {
    error = std::string("options are not a JSON object: got ") +
            (doc->is_array() ? "a list" : "a single value");
    return std::nullopt;
  }
  try {
    return decode_object(*doc);
  } catch (const std::exception& e) {  // allocation failure
    error = std::string("options could not be read: ") + e.what();
    return std::nullopt;
  }
}

}  // namespace thrum::transport::tailscale
