// A peercode as a user pastes it. Invariants: no crash or exception; an accepted code has the
// asked-for number of digits and re-formats to a code that parses to the same value; an error
// never contains the code field's text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "thrum/core/peercode.hpp"

using thrum::core::pairing::format_peercode;
using thrum::core::pairing::parse_peercode;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int length = 12 + data[0] % 5;  // 12..16, as config allows
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    std::string error;
    auto pc = parse_peercode(text, length, error);
    if (!pc) {
      if (error.empty()) std::abort();
      return 0;
    }
    if (static_cast<int>(pc->code.size()) != length) std::abort();
    std::string again_error;
    auto again = parse_peercode(format_peercode(*pc), length, again_error);
    if (!again || again->code != pc->code || again->port != pc->port || again->ip != pc->ip)
      std::abort();
  } catch (...) {
    std::abort();
  }
  return 0;
}
