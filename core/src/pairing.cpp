#include "thrum/core/pairing.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <array>
#include <cctype>

#include "thrum/common/ids.hpp"

namespace thrum::core::pairing {

namespace {
std::string hex(const unsigned char* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  return out;
}
std::string random_hex(size_t bytes) {
  std::array<unsigned char, 64> buf{};
  secure_random_bytes(buf.data(), bytes);
  std::string h = hex(buf.data(), bytes);
  OPENSSL_cleanse(buf.data(), buf.size());
  return h;
}
}  // namespace

std::string generate_code(int length) {
  std::string code;
  code.reserve(static_cast<size_t>(length));
  while (static_cast<int>(code.size()) < length) {
    unsigned char b = 0;
    secure_random_bytes(&b, 1);
    if (b >= 250) continue;  // 250 = 25 * 10: keep each digit uniform
    code.push_back(static_cast<char>('0' + b % 10));
  }
  return code;
}

std::string generate_token() {
  return random_hex(32);
}
std::string generate_nonce() {
  return random_hex(32);
}

std::string proof(std::string_view code, std::string_view role, const Transcript& t) {
  std::string msg = "thrum-pair-v2";
  for (std::string_view part :
       {role, std::string_view(t.listener_nonce), std::string_view(t.joiner_nonce),
        std::string_view(t.listener_daemon_id), std::string_view(t.joiner_daemon_id),
        std::string_view(t.listener_cert_sha256), std::string_view(t.joiner_cert_sha256),
        std::string_view(t.transport), std::string_view(t.channel_binding)}) {
    // Length-prefixed so that no two different transcripts serialise the same way.
    msg += '|';
    msg += std::to_string(part.size());
    msg += ':';
    msg += part;
  }
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), code.data(), static_cast<int>(code.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac, &len);
  return hex(mac, len);
}

bool equal_ct(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string sha256_hex(std::string_view data) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), d);
  return hex(d, sizeof d);
}

}  // namespace thrum::core::pairing
