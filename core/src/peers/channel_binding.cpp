#include "peers/channel_binding.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace thrum::core::peers {

namespace {

bool endpoint_text(const sockaddr_storage& ss, std::string& out) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
    out = std::string(buf) + ":" + std::to_string(ntohs(sin->sin_port));
    return true;
  }
  if (ss.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf);
    out = "[" + std::string(buf) + "]:" + std::to_string(ntohs(sin6->sin6_port));
    return true;
  }
  return false;
}

}  // namespace

std::string endpoint_binding(int fd, bool initiator) {
  sockaddr_storage local{}, remote{};
  socklen_t ll = sizeof local, rl = sizeof remote;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0 ||
      ::getpeername(fd, reinterpret_cast<sockaddr*>(&remote), &rl) != 0)
    return "";
  std::string l, r;
  if (!endpoint_text(local, l) || !endpoint_text(remote, r)) return "";
  return initiator ? "tcp:" + l + ">" + r : "tcp:" + r + ">" + l;
}

std::string channel_binding(std::string_view endpoints, std::string_view initiator_cert,
                            std::string_view responder_cert) {
  std::string out(endpoints);
  if (!initiator_cert.empty() || !responder_cert.empty()) {
    out += "|tls:";
    out += initiator_cert;
    out += '>';
    out += responder_cert;
  }
  return out;
}

}  // namespace thrum::core::peers
