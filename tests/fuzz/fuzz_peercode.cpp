// A peercode as a user pastes it. Invariants: no crash or exception; an accepted code has the
// asked-for number of digits and re-formats to a code that parses to the same value; an error
// never contains the code field's text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "thrum/common/peercode.hpp"

using thrum::core::pairing::format_peercode;
using thrum::core::pairing::parse_peercode;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    std::string error;
    auto pc = parse_peercode(text, error);
    if (!pc) {
      if (error.empty()) std::abort();
      return 0;
    }
    // Any code length the config may set (12..16) is accepted, nothing else.
    if (pc->code.size() < 12 || pc->code.size() > 16) std::abort();
    std::string again_error;
    auto again = parse_peercode(format_peercode(*pc), again_error);
    if (!again || again->code != pc->code || again->port != pc->port || again->ip != pc->ip)
      std::abort();
  } catch (...) {
    std::abort();
  }
  return 0;
}
