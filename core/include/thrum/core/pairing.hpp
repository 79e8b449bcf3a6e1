#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "thrum/common/peercode.hpp"

namespace thrum::core::pairing {

/// `length` decimal digits from the OS CSPRNG, each digit by rejection sampling (no modulo bias).
std::string generate_code(int length);
/// 32 random bytes as 64 lowercase hex characters.
std::string generate_token();
/// 32 random bytes as hex, for handshake nonces.
std::string generate_nonce();

/// The transcript both sides MAC: every value that must match for the pairing to be genuine.
struct Transcript {
  std::string listener_nonce, joiner_nonce;
  std::string listener_daemon_id, joiner_daemon_id;
  std::string listener_cert_sha256, joiner_cert_sha256;  ///< empty when not TLS
  std::string transport;
  /// The connection's TCP endpoints as both ends see them (peers/channel_binding.hpp), for
  /// loopback transports; "" otherwise. A relay in the middle makes the two views differ.
  std::string channel_binding;
};

/// HMAC-SHA256(code, "thrum-pair-v2" ‖ role ‖ transcript), hex. `role` is "joiner" or "listener"
/// so that one side's proof can never be replayed as the other's.
std::string proof(std::string_view code, std::string_view role, const Transcript& t);

/// Constant-time equality (length leaks, content does not).
bool equal_ct(std::string_view a, std::string_view b);
/// SHA-256 of `data` as lowercase hex.
std::string sha256_hex(std::string_view data);

}  // namespace thrum::core::pairing
