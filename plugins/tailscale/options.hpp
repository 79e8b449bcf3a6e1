#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace thrum::transport::tailscale {

/// One JSON value, as much of it as the tailscale transport's options need: strings, booleans,
/// numbers (kept as text), null, objects (parsed) and arrays (kept as raw text).
struct JsonValue {
  enum class Kind { kNull, kBool, kNumber, kString, kObject, kArray };
  Kind kind = Kind::kNull;
  bool boolean = false;
  std::string text;  ///< kString: the decoded string; kNumber / kArray: the raw text
  std::shared_ptr<std::map<std::string, JsonValue>> object;  ///< kObject only

  const char* kind_name() const;
};

using JsonObject = std::map<std::string, JsonValue>;

/// Parses `text` as one JSON object. Returns nullopt and sets `error` when it is not one.
/// The SDK keeps plugins free of JSON libraries; this reads what the policy and the daemon
/// produce (and any other well-formed JSON object). Duplicate keys: the last one wins.
std::optional<JsonObject> parse_json_object(std::string_view text, std::string& error);

}  // namespace thrum::transport::tailscale
