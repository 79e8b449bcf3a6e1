#include "thrum/core/server_limits.hpp"

#include <cstdint>
#include <optional>

#include "thrum/common/config.hpp"
#include "thrum/core/logging.hpp"

namespace thrum::core {

namespace {

/// The integer at daemon.<key>, or nullopt when absent/null; a wrong type or range is reported.
std::optional<int64_t> daemon_int(const Config& config, const char* key, int64_t lo, int64_t hi,
                                  std::vector<std::string>& errors) {
  const auto& doc = config.doc();
  if (!doc.is_object()) return std::nullopt;
  auto d = doc.find("daemon");
  if (d == doc.end() || !d->is_object()) return std::nullopt;
  auto v = d->find(key);
  if (v == d->end() || v->is_null()) return std::nullopt;
  const bool in_range =
      (v->is_number_unsigned() && v->get<uint64_t>() <= static_cast<uint64_t>(hi) &&
       static_cast<int64_t>(v->get<uint64_t>()) >= lo) ||
      (v->is_number_integer() && !v->is_number_unsigned() && v->get<int64_t>() >= lo &&
       v->get<int64_t>() <= hi);
  if (!in_range) {
    errors.push_back(std::string("daemon.") + key + " must be an integer from " +
                     std::to_string(lo) + " to " + std::to_string(hi) +
                     " (remove the key for the default)");
    return std::nullopt;
  }
  return v->is_number_unsigned() ? static_cast<int64_t>(v->get<uint64_t>()) : v->get<int64_t>();
}

}  // namespace

ServerLimits server_limits(const Config& config, std::vector<std::string>& errors) {
  ServerLimits out;
  if (auto n = daemon_int(config, "max_connections", 1,
                          static_cast<int64_t>(ServerLimits::kMaxConnectionsCeiling), errors))
    out.max_connections = static_cast<std::size_t>(*n);
  if (auto s = daemon_int(config, "unix_idle_timeout_seconds", 0, 7 * 24 * 3600, errors))
    out.unix_idle_timeout = std::chrono::seconds(*s);
  return out;
}

LogRotation log_rotation(const Config& config, std::vector<std::string>& errors) {
  LogRotation out;
  if (auto n = daemon_int(config, "log_max_bytes", static_cast<int64_t>(LogRotation::kMinMaxBytes),
                          static_cast<int64_t>(LogRotation::kMaxMaxBytes), errors))
    out.max_bytes = static_cast<std::size_t>(*n);
  if (auto n = daemon_int(config, "log_files", LogRotation::kMinKeepFiles,
                          LogRotation::kMaxKeepFiles, errors))
    out.keep_files = static_cast<int>(*n);
  return out;
}

}  // namespace thrum::core
