#pragma once
// Typed reads from one untrusted JSON object (a peer frame's params or result, a pairing
// message). Every accessor checks the type and a size bound; the first problem is kept, named
// by its path ("items[2].body"), and later reads return defaults. Nothing is copied but the
// scalars asked for, so a hostile document never gets duplicated.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace thrum::core::peers {

class Fields {
 public:
  using json = nlohmann::json;

  /// `where` prefixes every error ("params", "items[3]"). A non-object is an error at once.
  Fields(const json& obj, std::string where);

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  void fail(std::string_view what);

  /// Required string, 1..max_len bytes.
  std::string str(std::string_view key, std::size_t max_len);
  /// Optional string (absent or null → nullopt), ≤ max_len bytes.
  std::optional<std::string> opt_str(std::string_view key, std::size_t max_len);
  /// Optional string with a default for absent/null.
  std::string str_or(std::string_view key, std::size_t max_len, std::string def = "");
  bool boolean_or(std::string_view key, bool def);
  /// Required integer in [min, max].
  int64_t integer(std::string_view key, int64_t min, int64_t max);
  std::optional<int64_t> opt_integer(std::string_view key, int64_t min, int64_t max);
  /// Optional array of strings (absent/null → empty), ≤ max_items of ≤ max_len bytes each.
  std::vector<std::string> str_list(std::string_view key, std::size_t max_items,
                                    std::size_t max_len);
  /// A required array with at most max_items elements; nullptr (and an error) otherwise.
  const json* array(std::string_view key, std::size_t max_items);
  /// An optional object; nullptr when absent or null, an error when another type.
  const json* object(std::string_view key);

  /// "where.key" / "where[i]" for nested readers.
  std::string path(std::string_view key) const;
  std::string path(std::size_t index) const;

 private:
  const json* find(std::string_view key) const;
  const json& obj_;
  std::string where_;
  std::string error_;
};

/// True for lowercase hex of exactly `len` characters.
bool is_hex(std::string_view s, std::size_t len);
/// True for a plain id token: 1..max_len of [A-Za-z0-9_.:-].
bool is_id_token(std::string_view s, std::size_t max_len);

}  // namespace thrum::core::peers
