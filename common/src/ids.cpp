#include "thrum/common/ids.hpp"

#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

namespace thrum::core {

namespace {
constexpr char kCrockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

struct UlidState {
  std::mutex mu;
  uint64_t last_ms = 0;
  std::array<uint8_t, 10> last_rand{};
};

UlidState& ulid_state() {
  static UlidState s;
  return s;
}

void increment(std::array<uint8_t, 10>& r) {
  for (int i = 9; i >= 0; --i) {
    if (++r[static_cast<size_t>(i)] != 0) return;
  }
}

std::tm utc_tm(Clock::time_point t) {
  std::time_t tt = Clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return tm;
}
}  // namespace

void secure_random_bytes(void* out, std::size_t n) {
  auto* p = static_cast<uint8_t*>(out);
  while (n > 0) {
    ssize_t got = ::getrandom(p, n, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      std::abort();
    }
    p += got;
    n -= static_cast<size_t>(got);
  }
}

std::string new_ulid() {
  auto& st = ulid_state();
  uint64_t ms = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
          .count());
  std::array<uint8_t, 10> rnd{};
  {
    std::lock_guard lk(st.mu);
    if (ms <= st.last_ms) {
      ms = st.last_ms;
      increment(st.last_rand);
      rnd = st.last_rand;
    } else {
      secure_random_bytes(rnd.data(), rnd.size());
      st.last_ms = ms;
      st.last_rand = rnd;
    }
  }
  // 48-bit time + 80-bit randomness = 128 bits, written as 26 base32 digits.
  std::array<uint8_t, 16> b{};
  for (int i = 0; i < 6; ++i) b[static_cast<size_t>(i)] = static_cast<uint8_t>(ms >> (40 - 8 * i));
  for (size_t i = 0; i < 10; ++i) b[6 + i] = rnd[i];
  std::string out(26, '0');
  // The 128 bits, left-padded with two zero bits to 130, read five at a time.
  auto bit = [&](int i) -> unsigned {
    if (i < 2) return 0;
    int k = i - 2;
    return (b[static_cast<size_t>(k / 8)] >> (7 - k % 8)) & 1u;
  };
  for (int c = 0; c < 26; ++c) {
    unsigned v = 0;
    for (int j = 0; j < 5; ++j) v = (v << 1) | bit(c * 5 + j);
    out[static_cast<size_t>(c)] = kCrockford[v];
  }
  return out;
}

std::string rfc3339(Clock::time_point t) {
  const auto since = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch());
  auto secs = since.count() / 1000000;
  auto us = since.count() % 1000000;
  if (us < 0) {
    us += 1000000;
    --secs;
  }
  // A daemon stamps several rows per message within the same second: the date and time part
  // is formatted once per second (per thread), the microseconds by hand.
  thread_local long long cached_secs = -1;
  thread_local char cached[80] = {0};  // 19 used; room for what snprintf could print
  if (secs != cached_secs) {
    auto tm = utc_tm(t);
    std::snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached_secs = secs;
  }
  std::string out(cached);
  char frac[9] = {'.', '0', '0', '0', '0', '0', '0', 'Z', 0};
  for (int i = 6; i >= 1; --i) {
    frac[i] = static_cast<char>('0' + us % 10);
    us /= 10;
  }
  out.append(frac, 8);
  return out;
}

std::string rfc3339_seconds(Clock::time_point t) {
  auto tm = utc_tm(t);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string compact_utc_timestamp() {
  auto tm = utc_tm(Clock::now());
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::optional<Clock::time_point> parse_rfc3339(std::string_view s) {
  std::tm tm{};
  int y, mo, d, h, mi, sec;
  char tail[32] = {0};
  std::string str(s);
  if (std::sscanf(str.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%31s", &y, &mo, &d, &h, &mi, &sec, tail) < 6)
    return std::nullopt;
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  std::time_t tt = timegm(&tm);
  auto tp = Clock::from_time_t(tt);
  std::string_view rest(tail);
  if (!rest.empty() && rest.front() == '.') {
    rest.remove_prefix(1);
    long long frac = 0;
    int digits = 0;
    while (!rest.empty() && rest.front() >= '0' && rest.front() <= '9') {
      if (digits < 6) {
        frac = frac * 10 + (rest.front() - '0');
        ++digits;
      }
      rest.remove_prefix(1);
    }
    while (digits++ < 6) frac *= 10;
    tp += std::chrono::microseconds(frac);
  }
  if (rest != "Z") return std::nullopt;
  return tp;
}

}  // namespace thrum::core
