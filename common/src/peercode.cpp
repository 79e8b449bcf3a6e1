// Peercode parsing: no OpenSSL, so the thin `thrum` CLI can check a peercode before sending it.
#include "thrum/common/peercode.hpp"

#include <arpa/inet.h>

#include <cctype>

namespace thrum::core::pairing {

std::optional<Peercode> parse_peercode(std::string_view text, std::string& error) {
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
    // Never quote a field: a peercode with its fields out of order would put the secret
    // code in the message (and from there in a terminal log or a bug report).
    error = expected + " (the ip field is not an IPv4 address like 192.0.2.10)";
    return std::nullopt;
  }
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stol(port) < 1 ||
      std::stol(port) > 65535) {
    error = expected + " (the port field must be a number from 1 to 65535)";
    return std::nullopt;
  }
  p.port = static_cast<unsigned short>(std::stol(port));
  if (p.code.empty() || p.code.find_first_not_of("0123456789") != std::string::npos) {
    error = expected + " (the code must be digits only)";
    return std::nullopt;
  }
  // The adder's peers.pairing_code_length decides the length; any it may choose is accepted.
  if (static_cast<int>(p.code.size()) < kMinCodeLength ||
      static_cast<int>(p.code.size()) > kMaxCodeLength) {
    error = expected + " (the code must be " + std::to_string(kMinCodeLength) + " to " +
            std::to_string(kMaxCodeLength) + " digits, got " + std::to_string(p.code.size()) + ")";
    return std::nullopt;
  }
  return p;
}

std::string format_peercode(const Peercode& p) {
  return p.name + ":" + p.ip + ":" + std::to_string(p.port) + ":" + p.code;
}

}  // namespace thrum::core::pairing
