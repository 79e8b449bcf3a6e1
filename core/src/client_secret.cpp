#include "client_secret.hpp"

#include <openssl/crypto.h>

#include <array>

#include "thrum/common/fs_util.hpp"
#include "thrum/common/ids.hpp"

namespace thrum::core {

std::string create_client_secret(const std::filesystem::path& path) {
  std::array<unsigned char, 32> raw{};
  secure_random_bytes(raw.data(), raw.size());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    hex += kHex[c >> 4];
    hex += kHex[c & 0x0f];
  }
  // Rewritten at every start: a power loss cannot outlive the daemon that would read it.
  atomic_write_file(path, hex + "\n", 0600, Durability::kRuntime);
  return hex;
}

bool client_secret_matches(std::string_view presented, std::string_view secret) {
  if (secret.empty() || presented.size() != secret.size()) return false;
  return CRYPTO_memcmp(presented.data(), secret.data(), secret.size()) == 0;
}

}  // namespace thrum::core
