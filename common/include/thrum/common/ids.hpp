#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace thrum::core {

/// A 26-character Crockford base32 ULID. Monotonic within the process: two ids made in the
/// same millisecond still sort in creation order. Thread-safe.
std::string new_ulid();

inline std::string new_message_id() {
  return "msg_" + new_ulid();
}
inline std::string new_thread_id() {
  return "thr_" + new_ulid();
}
inline std::string new_session_id() {
  return "ses_" + new_ulid();
}
inline std::string new_daemon_id() {
  return "d_" + new_ulid();
}

using Clock = std::chrono::system_clock;

/// RFC 3339 UTC with microseconds, e.g. `2026-11-27T16:30:00.123456Z`. Sorts as a string.
std::string rfc3339(Clock::time_point t);
inline std::string now_rfc3339() {
  return rfc3339(Clock::now());
}
/// RFC 3339 UTC to whole seconds, e.g. `2026-11-27T16:30:00Z`.
std::string rfc3339_seconds(Clock::time_point t);
/// Parses what rfc3339() and rfc3339_seconds() produce (a trailing `Z` is required).
std::optional<Clock::time_point> parse_rfc3339(std::string_view s);
/// `20261127T163000Z`, for file names.
std::string compact_utc_timestamp();

/// Fills `out` with `n` bytes from the OS CSPRNG (getrandom). Aborts if the kernel cannot
/// supply randomness, since every caller needs it for a secret.
void secure_random_bytes(void* out, std::size_t n);

}  // namespace thrum::core
