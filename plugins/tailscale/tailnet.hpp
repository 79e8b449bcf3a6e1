#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "thrum/sdk/host.hpp"
#include "thrum/sdk/transport.hpp"

namespace thrum::transport::tailscale {

/// Tailscale assigns node addresses from the CGNAT range 100.64.0.0/10.
inline constexpr std::uint32_t kTailnetBase = 0x64400000u;  // 100.64.0.0
inline constexpr int kTailnetPrefix = 10;
inline constexpr const char* kTailnetCidr = "100.64.0.0/10";

/// Parses a dotted-quad IPv4 address into host byte order.
bool parse_ipv4(const std::string& text, std::uint32_t& out);
/// Whether `ip` (host byte order) is inside 100.64.0.0/10.
bool in_tailnet(std::uint32_t ip);
/// Whether `text` is an IPv4 address inside 100.64.0.0/10.
bool is_tailnet_ipv4(const std::string& text);

/// strerror(e), thread-safe.
std::string errno_text(int e);
/// Sets FD_CLOEXEC on `fd`.
void set_cloexec(int fd);

/// The IPv4 addresses in 100.64.0.0/10 of this network namespace's interfaces that are up, in
/// interface order (tailscaled's `tailscale0` in system mode). Empty on error, with `error` set.
std::vector<std::string> interface_tailnet_addresses(std::string& error);

/// Connects a TCP socket to ip:port through the kernel, waiting at most `timeout`. Returns a
/// blocking, FD_CLOEXEC, TCP_NODELAY stream fd, or kTimeout / kUnavailable / kIo.
sdk::Result<int> tcp_connect(const std::string& ip, std::uint16_t port,
                             std::chrono::milliseconds timeout);

/// Binds and listens on ip:port (0 = the kernel picks) through the kernel.
sdk::Result<std::unique_ptr<sdk::IListener>> tcp_listen(const std::string& ip, std::uint16_t port);

/// Replaces `secret` (when non-empty) and anything that looks like a Tailscale auth key
/// (`tskey-...`) in `text`, so that neither reaches a log line or an error message.
std::string redact_secrets(std::string text, std::string_view secret);

/// The host's log callback, shareable with objects that may outlive the transport (listeners,
/// the library's log pump): detach() makes every later log() a no-op. Thread-safe.
class HostLog {
 public:
  explicit HostLog(sdk::IHost* host) : host_(host) {}
  void log(sdk::LogLevel level, const std::string& message);
  /// Secrets to scrub from every line (the current auth key).
  void set_secret(std::string secret);
  void detach();

 private:
  std::mutex mu_;
  sdk::IHost* host_;
  std::string secret_;
};

}  // namespace thrum::transport::tailscale
