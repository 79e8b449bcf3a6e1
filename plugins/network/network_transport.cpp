#include "network_transport.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "thrum/common/bounded_json.hpp"

namespace thrum::transport::network {

using sdk::Errc;
using sdk::Status;

namespace {

bool parse_ipv4(const std::string& s, std::uint32_t& out) {
  in_addr a{};
  if (::inet_pton(AF_INET, s.c_str(), &a) != 1) return false;
  out = ntohl(a.s_addr);
  return true;
}

std::string errno_text(int e) {
  return std::strerror(e);
}

bool in(std::uint32_t ip, std::uint32_t base, int prefix) {
  std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
  return (ip & mask) == (base & mask);
}

// A string from the options for a message: JSON-escaped, cut short.
std::string quoted(const std::string& s) {
  std::string q = core::dump_compact(nlohmann::json(s));
  if (q.size() > 66) q = q.substr(0, 62) + "...\"";
  return q;
}

const char* kind_of(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::array:
      return "a list";
    case nlohmann::json::value_t::object:
      return "an object";
    default:
      return "a number";
  }
}

class TcpListener final : public sdk::IListener {
 public:
  TcpListener(int fd, sdk::Endpoint ep) : fd_(fd), ep_(std::move(ep)) {}
  ~TcpListener() override { close(); }
  int fd() const noexcept override { return fd_; }
  sdk::Result<int> accept() noexcept override {
    if (fd_ < 0) return Status::error(Errc::kUnavailable, "network: listener is closed");
    int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0)
      return Status::error(errno == EAGAIN || errno == EWOULDBLOCK ? Errc::kUnavailable : Errc::kIo,
                           "network: accept: " + errno_text(errno));
    int one = 1;
    ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return c;
  }
  sdk::Endpoint local_endpoint() const noexcept override { return ep_; }
  void close() noexcept override {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
  sdk::Endpoint ep_;
};

}  // namespace

bool Subnet::contains(std::uint32_t ip) const {
  return in(ip, base, prefix);
}

bool Subnet::parse(const std::string& cidr, Subnet& out) {
  auto slash = cidr.find('/');
  if (slash == std::string::npos) return false;
  std::uint32_t ip = 0;
  if (!parse_ipv4(cidr.substr(0, slash), ip)) return false;
  char* end = nullptr;
  long p = std::strtol(cidr.c_str() + slash + 1, &end, 10);
  if (*end != '\0' || p < 0 || p > 32 || slash + 1 == cidr.size()) return false;
  out.prefix = static_cast<int>(p);
  std::uint32_t mask = p == 0 ? 0 : ~std::uint32_t{0} << (32 - p);
  out.base = ip & mask;
  return true;
}

sdk::TransportProfile NetworkTransport::profile() const noexcept {
  sdk::TransportProfile p;
  p.help =
      "Same-LAN, no Tailscale. Requires --address <ip>.\n"
      "Use when both daemons are on the same network\n"
      "segment and you want direct TCP (TLS) without tsnet.";
  p.follows_host_addresses = true;  // a new DHCP lease moves the listener, peers are told
  return p;
}

sdk::Capabilities NetworkTransport::capabilities() const noexcept {
  sdk::Capabilities c;
  c.needs_tls = true;  // the LAN is not trusted: TLS 1.3 with pinned certificates, always
  c.loopback_only = false;
  c.needs_repo_path = false;
  c.needs_address = true;
  c.provides_listener = true;
  return c;
}

sdk::Result<NetworkOptions> parse_network_options(std::string_view options_json) {
  auto invalid = [](std::string msg) {
    return Status::error(Errc::kInvalidArgument, "network: " + std::move(msg));
  };
  core::JsonRefusal why;
  auto doc = core::parse_bounded(options_json.empty() ? std::string_view("{}") : options_json, &why,
                                 /*max_depth=*/8, /*max_bytes=*/1 << 20);
  if (!doc) return invalid("options are not usable: " + why.message);
  if (!doc->is_object())
    return invalid(std::string("options must be a JSON object, got ") + kind_of(*doc));
  NetworkOptions out;
  for (const auto& [key, value] : doc->items()) {
    if (key == "allowed_subnets") {
      if (!value.is_array())
        return invalid(std::string("allowed_subnets must be a list of IPv4 CIDRs, e.g. "
                                   "[198.51.100.0/24], got ") +
                       kind_of(value));
      for (const auto& c : value) {
        Subnet sub;
        if (!c.is_string())
          return invalid(std::string("allowed_subnets: each entry must be a CIDR string like "
                                     "198.51.100.0/24, got ") +
                         kind_of(c));
        if (!Subnet::parse(c.get_ref<const std::string&>(), sub))
          return invalid("allowed_subnets: " + quoted(c.get_ref<const std::string&>()) +
                         " is not an IPv4 CIDR like 198.51.100.0/24");
        out.allowed_subnets.push_back(sub);
      }
    } else if (key == "enabled") {
      // The host strips it; accept it anyway so that a whole policy entry can be passed.
      if (!value.is_boolean()) return invalid("enabled must be true or false");
    } else if (key == "host") {
      // The daemon's reserved per-repo settings (SDK types.hpp); nothing here uses them.
      if (!value.is_object()) return invalid("host must be an object");
    } else {
      return invalid("unknown option " + quoted(key) + " (known: allowed_subnets, enabled)");
    }
  }
  return out;
}

Status NetworkTransport::configure(std::string_view options_json) noexcept {
  try {
    auto opts = parse_network_options(options_json);
    if (!opts.ok()) return opts.status();
    allowed_ = std::move(opts).value().allowed_subnets;
    return Status::success();
  } catch (const std::exception& e) {  // allocation failure: refuse rather than terminate
    return Status::error(Errc::kInternal, std::string("network: configure failed: ") + e.what());
  }
}

std::string NetworkTransport::check_local_address(const std::string& ip_text) const {
  std::uint32_t ip = 0;
  if (!parse_ipv4(ip_text, ip)) return "\"" + ip_text + "\" is not an IPv4 address";
  if (in(ip, 0x7F000000u, 8))
    return ip_text + " is loopback; use --type local for repos on one machine";
  if (in(ip, 0x64400000u, 10))
    return ip_text + " is in the tailnet range 100.64.0.0/10; use --type tailscale";
  if (in(ip, 0xA9FE0000u, 16)) return ip_text + " is link-local (169.254.0.0/16)";
  if (ip == 0 || in(ip, 0xE0000000u, 4)) return ip_text + " is not a unicast address";
  if (!allowed_.empty()) {
    bool ok = false;
    for (const auto& s : allowed_) ok = ok || s.contains(ip);
    if (!ok) return ip_text + " is outside the policy's allowed_subnets";
  }
  ifaddrs* ifs = nullptr;
  if (::getifaddrs(&ifs) != 0) return "cannot list network interfaces: " + errno_text(errno);
  bool found = false, up = false;
  for (ifaddrs* i = ifs; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    auto* sin = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
    if (ntohl(sin->sin_addr.s_addr) != ip) continue;
    found = true;
    up = up || (i->ifa_flags & IFF_UP);
  }
  ::freeifaddrs(ifs);
  if (!found) return ip_text + " is not assigned to any interface of this machine";
  if (!up) return ip_text + " is on an interface that is down";
  return "";
}

sdk::Result<std::unique_ptr<sdk::IListener>> NetworkTransport::listen(
    const sdk::ListenSpec& spec) noexcept {
  if (auto why = check_local_address(spec.bind_ip); !why.empty())
    return Status::error(Errc::kInvalidArgument,
                         "network: cannot listen on " + spec.bind_ip + ": " + why);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Status::error(Errc::kIo, "network: socket: " + errno_text(errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(spec.port);
  ::inet_pton(AF_INET, spec.bind_ip.c_str(), &addr.sin_addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0) {
    int e = errno;
    ::close(fd);
    return Status::error(e == EADDRINUSE ? Errc::kUnavailable : Errc::kIo,
                         "network: cannot listen on " + spec.bind_ip + ":" +
                             std::to_string(spec.port) + ": " + errno_text(e));
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return std::unique_ptr<sdk::IListener>(
      std::make_unique<TcpListener>(fd, sdk::Endpoint{spec.bind_ip, ntohs(addr.sin_port)}));
}

sdk::Result<int> NetworkTransport::dial(const sdk::Endpoint& to,
                                        std::chrono::milliseconds timeout) noexcept {
  std::uint32_t ip = 0;
  if (!parse_ipv4(to.ip, ip))
    return Status::error(Errc::kInvalidArgument,
                         "network: \"" + to.ip + "\" is not an IPv4 address");
  if (in(ip, 0x7F000000u, 8))
    return Status::error(Errc::kRejected,
                         "network: refusing to dial loopback " + to.ip + "; use --type local");
  if (to.port == 0) return Status::error(Errc::kInvalidArgument, "network: port 0 is not a port");
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Status::error(Errc::kIo, "network: socket: " + errno_text(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(to.port);
  addr.sin_addr.s_addr = htonl(ip);
  const std::string where = to.ip + ":" + std::to_string(to.port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) {
      int e = errno;
      ::close(fd);
      return Status::error(Errc::kUnavailable, "network: connect " + where + ": " + errno_text(e));
    }
    pollfd p{fd, POLLOUT, 0};
    int pr;
    do {
      pr = ::poll(&p, 1, static_cast<int>(timeout.count()));
    } while (pr < 0 && errno == EINTR);
    if (pr == 0) {
      ::close(fd);
      return Status::error(Errc::kTimeout, "network: connect " + where + " timed out");
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (pr < 0 || err != 0) {
      int e = pr < 0 ? errno : err;
      ::close(fd);
      return Status::error(Errc::kUnavailable, "network: connect " + where + ": " + errno_text(e));
    }
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

sdk::Result<sdk::Endpoint> NetworkTransport::advertise(const sdk::AdvertiseSpec& spec) noexcept {
  if (spec.requested_ip.empty())
    return Status::error(Errc::kInvalidArgument,
                         "--type network requires --address <ip> (this machine's LAN address)");
  if (auto why = check_local_address(spec.requested_ip); !why.empty())
    return Status::error(Errc::kInvalidArgument,
                         "--type network --address " + spec.requested_ip + ": " + why);
  if (spec.listen_port == 0)
    return Status::error(Errc::kUnavailable, "network: no listener port yet");
  return sdk::Endpoint{spec.requested_ip, spec.listen_port};
}

sdk::Result<sdk::Endpoint> NetworkTransport::resolve(const sdk::PeerRecordView& peer) noexcept {
  if (peer.address.ip.empty() || peer.address.port == 0)
    return Status::error(Errc::kUnavailable,
                         "network: peer \"" + peer.name + "\" has no stored address");
  return peer.address;
}

Status NetworkTransport::validate_address_change(const sdk::Endpoint& old_address,
                                                 const sdk::Endpoint& new_address) noexcept {
  std::uint32_t o = 0, n = 0;
  if (!parse_ipv4(old_address.ip, o) || !parse_ipv4(new_address.ip, n))
    return Status::error(Errc::kRejected, "network: addresses must be IPv4");
  if (!in(n, o, 24))
    return Status::error(Errc::kRejected, "network: same /24 only — " + new_address.ip +
                                              " is outside " + old_address.ip + "/24");
  if (new_address.port == 0) return Status::error(Errc::kRejected, "network: port 0 is not a port");
  return Status::success();
}

}  // namespace thrum::transport::network
