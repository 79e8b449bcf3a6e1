#include "peers/fields.hpp"

namespace thrum::core::peers {

Fields::Fields(const json& obj, std::string where) : obj_(obj), where_(std::move(where)) {
  if (!obj_.is_object()) fail("must be an object");
}

void Fields::fail(std::string_view what) {
  if (!error_.empty()) return;
  error_ = where_.empty() ? std::string(what) : where_ + ": " + std::string(what);
}

std::string Fields::path(std::string_view key) const {
  return where_.empty() ? std::string(key) : where_ + "." + std::string(key);
}

std::string Fields::path(std::size_t index) const {
  return where_ + "[" + std::to_string(index) + "]";
}

const nlohmann::json* Fields::find(std::string_view key) const {
  if (!ok() || !obj_.is_object()) return nullptr;
  auto it = obj_.find(key);
  if (it == obj_.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<std::string> Fields::opt_str(std::string_view key, std::size_t max_len) {
  const json* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_string()) {
    fail(std::string(key) + " must be a string");
    return std::nullopt;
  }
  const auto& s = v->get_ref<const std::string&>();
  if (s.size() > max_len) {
    fail(std::string(key) + " is longer than " + std::to_string(max_len) + " bytes");
    return std::nullopt;
  }
  return s;
}

std::string Fields::str(std::string_view key, std::size_t max_len) {
  if (!ok()) return {};
  auto s = opt_str(key, max_len);
  if (!ok()) return {};
  if (!s || s->empty()) {
    fail(std::string(key) + " is required");
    return {};
  }
  return std::move(*s);
}

std::string Fields::str_or(std::string_view key, std::size_t max_len, std::string def) {
  auto s = opt_str(key, max_len);
  return s ? std::move(*s) : std::move(def);
}

bool Fields::boolean_or(std::string_view key, bool def) {
  const json* v = find(key);
  if (!v) return def;
  if (!v->is_boolean()) {
    fail(std::string(key) + " must be true or false");
    return def;
  }
  return v->get<bool>();
}

std::optional<int64_t> Fields::opt_integer(std::string_view key, int64_t min, int64_t max) {
  const json* v = find(key);
  if (!v) return std::nullopt;
  // Unsigned values above INT64_MAX are integers to nlohmann but not to us.
  if (!v->is_number_integer() || (v->is_number_unsigned() && v->get<uint64_t>() > INT64_MAX)) {
    fail(std::string(key) + " must be an integer");
    return std::nullopt;
  }
  const int64_t n = v->get<int64_t>();
  if (n < min || n > max) {
    fail(std::string(key) + " must be between " + std::to_string(min) + " and " +
         std::to_string(max));
    return std::nullopt;
  }
  return n;
}

int64_t Fields::integer(std::string_view key, int64_t min, int64_t max) {
  if (!ok()) return min;
  auto n = opt_integer(key, min, max);
  if (!ok()) return min;
  if (!n) {
    fail(std::string(key) + " is required");
    return min;
  }
  return *n;
}

std::vector<std::string> Fields::str_list(std::string_view key, std::size_t max_items,
                                          std::size_t max_len) {
  std::vector<std::string> out;
  const json* v = find(key);
  if (!v) return out;
  if (!v->is_array()) {
    fail(std::string(key) + " must be an array of strings");
    return out;
  }
  if (v->size() > max_items) {
    fail(std::string(key) + " has more than " + std::to_string(max_items) + " entries");
    return out;
  }
  out.reserve(v->size());
  for (std::size_t i = 0; i < v->size(); ++i) {
    const json& e = (*v)[i];
    if (!e.is_string() || e.get_ref<const std::string&>().size() > max_len) {
      fail(std::string(key) + "[" + std::to_string(i) + "] must be a string of at most " +
           std::to_string(max_len) + " bytes");
      return {};
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

const nlohmann::json* Fields::array(std::string_view key, std::size_t max_items) {
  const json* v = find(key);
  if (!ok()) return nullptr;
  if (!v || !v->is_array()) {
    fail(std::string(key) + " must be an array");
    return nullptr;
  }
  if (v->size() > max_items) {
    fail(std::string(key) + " has more than " + std::to_string(max_items) + " entries");
    return nullptr;
  }
  return v;
}

const nlohmann::json* Fields::object(std::string_view key) {
  const json* v = find(key);
  if (!v) return nullptr;
  if (!v->is_object()) {
    fail(std::string(key) + " must be an object");
    return nullptr;
  }
  return v;
}

bool is_hex(std::string_view s, std::size_t len) {
  if (s.size() != len) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool is_id_token(std::string_view s, std::size_t max_len) {
  if (s.empty() || s.size() > max_len) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-' || c == '.' || c == ':'))
      return false;
  return true;
}

}  // namespace thrum::core::peers
