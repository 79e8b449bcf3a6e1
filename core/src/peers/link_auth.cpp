#include "peers/link_auth.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace thrum::core::peers::link_auth {

namespace {

std::string hex(const unsigned char* p, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  return out;
}

std::string hmac_hex(std::string_view key, std::string_view msg, std::size_t bytes) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac, &len);
  return hex(mac, std::min<std::size_t>(len, bytes));
}

}  // namespace

std::string token_id(std::string_view token) {
  return hmac_hex(token, "thrum-token-id-v1", kTokenIdChars / 2);
}

std::string proof(std::string_view token, Role role, const Transcript& t) {
  std::string msg = "thrum-link-v1";
  const std::string_view label = role == Role::kInitiator ? "initiator" : "responder";
  for (std::string_view part :
       {label, std::string_view(t.initiator_nonce), std::string_view(t.responder_nonce),
        std::string_view(t.token_id), std::string_view(t.initiator_daemon_id),
        std::string_view(t.responder_daemon_id), std::string_view(t.transport),
        std::string_view(t.channel_binding)}) {
    // Length-prefixed so that no two different transcripts serialise the same way.
    msg += '|';
    msg += std::to_string(part.size());
    msg += ':';
    msg += part;
  }
  return hmac_hex(token, msg, 32);
}

}  // namespace thrum::core::peers::link_auth
