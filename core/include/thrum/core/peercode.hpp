#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace thrum::core::pairing {

/// A peercode `name:ip:port:code` (SPEC §6.1).
struct Peercode {
  std::string name;
  std::string ip;
  unsigned short port = 0;
  std::string code;
};

/// Parses a peercode. On failure returns nullopt and sets `error` to a message that never
/// contains the code itself.
std::optional<Peercode> parse_peercode(std::string_view text, int code_length, std::string& error);
std::string format_peercode(const Peercode& p);

}  // namespace thrum::core::pairing
