#pragma once
/// @file
/// What the JSON reader and writer (common/src/json_reader.*, json_writer.*) share about the
/// bytes of a string literal: which are plain, how to skip a run of them, and UTF-8
/// well-formedness as RFC 3629 and Unicode's table 3-7 define it.

#include <array>
#include <cstdint>
#include <cstring>

namespace thrum::core::json_utf8 {

/// Bytes a string literal holds as they are: printable ASCII but the quote and the backslash.
/// (Control characters must be escaped; bytes >= 0x80 are checked as UTF-8.)
inline constexpr auto kPlain = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x80; ++c) t[c] = c != '"' && c != '\\';
  return t;
}();

/// The first byte in [p, end) that is not plain. Eight bytes at a time while none of them is
/// a control character, a quote, a backslash or >= 0x80 (each test is exact for "is there
/// any"), then byte by byte.
inline const unsigned char* skip_plain(const unsigned char* p, const unsigned char* end) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  auto has_zero = [](uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  while (end - p >= 8) {
    uint64_t x = 0;
    std::memcpy(&x, p, 8);
    const uint64_t special = (x & kHigh) | ((x - kOnes * 0x20) & ~x & kHigh) |
                             has_zero(x ^ (kOnes * '"')) | has_zero(x ^ (kOnes * '\\'));
    if (special) break;
    p += 8;
  }
  while (p != end && kPlain[*p]) ++p;
  return p;
}

/// Length of the well-formed UTF-8 sequence that starts at `p` with a byte >= 0x80, or 0 when
/// it is not one: no overlong forms, no surrogates, nothing past U+10FFFF.
inline int sequence(const unsigned char* p, const unsigned char* end) {
  auto in = [](unsigned char c, unsigned char lo, unsigned char hi) { return c >= lo && c <= hi; };
  const unsigned char b0 = p[0];
  const auto left = end - p;
  if (in(b0, 0xC2, 0xDF)) return left >= 2 && in(p[1], 0x80, 0xBF) ? 2 : 0;
  if (in(b0, 0xE0, 0xEF)) {
    if (left < 3) return 0;
    const unsigned char lo = b0 == 0xE0 ? 0xA0 : 0x80;
    const unsigned char hi = b0 == 0xED ? 0x9F : 0xBF;
    return in(p[1], lo, hi) && in(p[2], 0x80, 0xBF) ? 3 : 0;
  }
  if (in(b0, 0xF0, 0xF4)) {
    if (left < 4) return 0;
    const unsigned char lo = b0 == 0xF0 ? 0x90 : 0x80;
    const unsigned char hi = b0 == 0xF4 ? 0x8F : 0xBF;
    return in(p[1], lo, hi) && in(p[2], 0x80, 0xBF) && in(p[3], 0x80, 0xBF) ? 4 : 0;
  }
  return 0;
}

}  // namespace thrum::core::json_utf8
