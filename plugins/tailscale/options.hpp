#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace thrum::transport::tailscale {

/// One JSON value, as much of it as the tailscale transport's options need: strings, booleans,
/// numbers (kept as compact JSON text), null, objects (decoded) and arrays (kept as compact
/// JSON text).
struct JsonValue {
  enum class Kind { kNull, kBool, kNumber, kString, kObject, kArray };
  Kind kind = Kind::kNull;
  bool boolean = false;
  std::string text;  ///< kString: the decoded string; kNumber / kArray: the raw text
  std::shared_ptr<std::map<std::string, JsonValue>> object;  ///< kObject only

  const char* kind_name() const;
};

using JsonObject = std::map<std::string, JsonValue>;

/// Parses `text` as one JSON object through the core's bounded parse (nlohmann::json; depth
/// and size bounded, UTF-8 checked). Returns nullopt and sets `error` when it is not one.
/// Duplicate keys: the last one wins.
std::optional<JsonObject> parse_json_object(std::string_view text, std::string& error);

}  // namespace thrum::transport::tailscale
