#include "thrum/core/pairing.hpp"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <array>
#include <cctype>

#include "thrum/core/ids.hpp"

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

std::optional<Peercode> parse_peercode(std::string_view text, int code_length, std::string& error) {
  std::string s(text);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.erase(0, 1);
  const std::string expected = "invalid peercode: expected name:ip:port:code";
  // Split from the right: the code and port are fixed-shape, the name is anything before.
  auto c3 = s.rfind(':');
  if (c3 == std::string::npos) {
    error = expected + " (no ':' separators)";
    return std::nullopt;
  }
  auto c2 = c3 == 0 ? std::string::npos : s.rfind(':', c3 - 1);
  auto c1 = (c2 == std::string::npos || c2 == 0) ? std::string::npos : s.rfind(':', c2 - 1);
  if (c2 == std::string::npos || c1 == std::string::npos) {
    error = expected + " (too few fields)";
    return std::nullopt;
  }
  Peercode p;
  p.name = s.substr(0, c1);
  p.ip = s.substr(c1 + 1, c2 - c1 - 1);
  std::string port = s.substr(c2 + 1, c3 - c2 - 1);
  p.code = s.substr(c3 + 1);
  if (p.name.empty() || p.name.find(':') != std::string::npos) {
    error =
        expected + (p.name.empty() ? " (empty name)"
                                   : " (an IPv6 address or extra ':' fields are not supported)");
    return std::nullopt;
  }
  in_addr a{};
  if (::inet_pton(AF_INET, p.ip.c_str(), &a) != 1) {
    error = expected + " (\"" + p.ip + "\" is not an IPv4 address)";
    return std::nullopt;
  }
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stol(port) < 1 ||
      std::stol(port) > 65535) {
    error = expected + " (port must be 1..65535, got \"" + port + "\")";
    return std::nullopt;
  }
  p.port = static_cast<unsigned short>(std::stol(port));
  if (p.code.empty() || p.code.find_first_not_of("0123456789") != std::string::npos) {
    error = expected + " (the code must be digits only)";
    return std::nullopt;
  }
  if (static_cast<int>(p.code.size()) != code_length) {
    error = expected + " (the code must be " + std::to_string(code_length) + " digits, got " +
            std::to_string(p.code.size()) + ")";
    return std::nullopt;
  }
  return p;
}

std::string format_peercode(const Peercode& p) {
  return p.name + ":" + p.ip + ":" + std::to_string(p.port) + ":" + p.code;
}

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
  std::string msg = "thrum-pair-v1";
  for (std::string_view part :
       {role, std::string_view(t.listener_nonce), std::string_view(t.joiner_nonce),
        std::string_view(t.listener_daemon_id), std::string_view(t.joiner_daemon_id),
        std::string_view(t.listener_cert_sha256), std::string_view(t.joiner_cert_sha256),
        std::string_view(t.transport)}) {
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
