#pragma once
// Link authentication (SPEC §7.1, second wave): a challenge-response over the token both sides
// stored at pairing. The token itself never crosses the wire, on any transport:
//
//   initiator → upgrade request:  Thrum-Link: 1, Thrum-Token-Id: <token_id(token)>,
//                                 Thrum-Nonce: <n_i>, Thrum-Daemon-Id: <initiator id>
//   responder → 101 response:     Thrum-Nonce: <n_r>, Thrum-Daemon-Id: <responder id>,
//                                 Thrum-Proof: proof(token, responder, transcript)
//   initiator → first frame:      link.auth {"proof": proof(token, initiator, transcript)}
//
// The responder proves first, so the initiator checks the other side's proof and daemon id
// before it sends anything derived from the secret; the responder accepts nothing on the link
// before a good link.auth. The transcript binds both nonces, both daemon ids, the token id, the
// transport and the connection (channel_binding.hpp): a proof made on one connection is useless
// on another, so a relay in the middle (e.g. another local user on a stale port, forwarding to
// the real daemon) cannot complete either side. Token ids are public handles (an HMAC of the
// token), used only to find the record; they reveal nothing a proof could be made from.

#include <string>
#include <string_view>

namespace thrum::core::peers::link_auth {

inline constexpr const char* kLinkHeader = "Thrum-Link";
inline constexpr const char* kTokenIdHeader = "Thrum-Token-Id";
inline constexpr const char* kNonceHeader = "Thrum-Nonce";
inline constexpr const char* kDaemonIdHeader = "Thrum-Daemon-Id";
inline constexpr const char* kProofHeader = "Thrum-Proof";
inline constexpr const char* kVersion = "1";
inline constexpr std::size_t kTokenIdChars = 32;

/// HMAC-SHA256(token, "thrum-token-id-v1"), first 16 bytes as hex.
std::string token_id(std::string_view token);

struct Transcript {
  std::string initiator_nonce, responder_nonce;
  std::string token_id;
  std::string initiator_daemon_id, responder_daemon_id;
  std::string transport;
  std::string channel_binding;
};

enum class Role { kInitiator, kResponder };

/// HMAC-SHA256(token, "thrum-link-v1" ‖ role ‖ length-prefixed transcript), hex. The role label
/// makes one side's proof useless as the other's (no reflection).
std::string proof(std::string_view token, Role role, const Transcript& t);

}  // namespace thrum::core::peers::link_auth
