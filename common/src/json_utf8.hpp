#pragma once
/// @file
/// UTF-8 well-formedness as RFC 3629 and Unicode's table 3-7 define it, shared by the JSON
/// reader and writer (common/src/json_reader.*, json_writer.*).

namespace thrum::core::json_utf8 {

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
