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

/// The range of peers.pairing_code_length; a joiner accepts a code of any length in it.
inline constexpr int kMinCodeLength = 12;
inline constexpr int kMaxCodeLength = 16;

/// Parses a peercode whose code has kMinCodeLength..kMaxCodeLength digits (whatever the other
/// side's peers.pairing_code_length is). On failure returns nullopt and sets `error` to a
/// message that never contains the code itself.
std::optional<Peercode> parse_peercode(std::string_view text, std::string& error);
std::string format_peercode(const Peercode& p);

}  // namespace thrum::core::pairing
