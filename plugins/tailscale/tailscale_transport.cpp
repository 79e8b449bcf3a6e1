#include "tailscale_transport.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <exception>
#include <filesystem>

#include "options.hpp"

namespace thrum::transport::tailscale {

using sdk::Errc;
using sdk::Status;

namespace {

constexpr const char* kAuthKeyRequired =
    "auth key is required for --type tailscale (set THRUM_TS_AUTHKEY or pass --auth-key)";
constexpr const char* kNotRunning = "tailscale node is not running";
constexpr const char* kNoSystemAddress =
    "no tailscale address (100.64.0.0/10) on this host; is tailscaled up?";

/// Runs `f`, turning any exception into a kInternal Status: nothing may leave the plugin.
template <class F>
auto guarded(F&& f) noexcept -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return Status::error(Errc::kInternal, std::string("tailscale: internal error: ") + e.what());
  } catch (...) {
    return Status::error(Errc::kInternal, "tailscale: internal error");
  }
}

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

std::string default_hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "thrum";
  return std::string(buf) + "-thrum";
}

std::chrono::milliseconds up_timeout() {
  const std::string v = env_or("THRUM_TS_UP_TIMEOUT_MS", "");
  if (!v.empty()) {
    char* end = nullptr;
    const long ms = std::strtol(v.c_str(), &end, 10);
    if (end != nullptr && *end == '\0' && ms > 0) return std::chrono::milliseconds(ms);
  }
  return std::chrono::milliseconds(60000);
}

struct HostOptions {
  std::string state_dir;
  std::string auth_key;
};

/// Reads the daemon's `host` object from ListenSpec::options_json. Other keys (the policy's)
/// were checked by configure().
sdk::Result<HostOptions> parse_host_options(const std::string& json) {
  std::string err;
  auto obj = parse_json_object(json.empty() ? "{}" : json, err);
  if (!obj) return Status::error(Errc::kInvalidArgument, "tailscale: listen " + err);
  HostOptions out;
  auto it = obj->find("host");
  if (it == obj->end() || it->second.kind == JsonValue::Kind::kNull) return out;
  if (it->second.kind != JsonValue::Kind::kObject)
    return Status::error(Errc::kInvalidArgument,
                         std::string("tailscale: listen options: host must be an object, got ") +
                             it->second.kind_name());
  for (const auto& [key, value] : *it->second.object) {
    std::string* target = key == "state_dir"  ? &out.state_dir
                          : key == "auth_key" ? &out.auth_key
                                              : nullptr;
    if (target == nullptr) continue;  // newer daemons may pass more; nothing to do with them
    if (value.kind == JsonValue::Kind::kNull) continue;
    if (value.kind != JsonValue::Kind::kString)
      return Status::error(
          Errc::kInvalidArgument,
          "tailscale: listen options: host." + key + " must be a string, got " + value.kind_name());
    *target = value.text;
  }
  return out;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

}  // namespace

TailscaleTransport::TailscaleTransport(sdk::IHost* host) : log_(std::make_shared<HostLog>(host)) {}

TailscaleTransport::~TailscaleTransport() {
  std::shared_ptr<TsnetNode> n;
  {
    std::lock_guard lock(mu_);
    n = std::move(node_);
  }
  if (n) n->close();
  log_->detach();
}

sdk::TransportProfile TailscaleTransport::profile() const noexcept {
  sdk::TransportProfile p;
  p.help =
      "Cross-host via Tailscale (requires THRUM_TS_AUTHKEY or --auth-key).\n"
      "Use when the other daemon is on a different machine\n"
      "reachable through your tailnet.";
  p.credential.name = "auth key";
  p.credential.env = "THRUM_TS_AUTHKEY";
  p.credential.prompt = "Tailscale auth key (tskey-...): ";
  p.state_dir = "tsnet";  // .thrum/var/tsnet, as before ABI 1.1
  return p;
}

sdk::Capabilities TailscaleTransport::capabilities() const noexcept {
  sdk::Capabilities c;
  c.needs_tls = false;  // WireGuard already encrypts and authenticates the nodes
  c.loopback_only = false;
  c.needs_repo_path = false;
  c.needs_address = false;  // the address is the node's own tailnet IP
  c.provides_listener = true;
  return c;
}

Status TailscaleTransport::configure(std::string_view options_json) noexcept {
  return guarded([&]() -> Status {
    std::string err;
    auto obj = parse_json_object(options_json, err);
    if (!obj) return Status::error(Errc::kInvalidArgument, "tailscale: " + err);
    Mode mode = Mode::kEmbedded;
    std::string library;
    for (const auto& [key, value] : *obj) {
      if (key == "mode") {
        if (value.kind != JsonValue::Kind::kString ||
            (value.text != "embedded" && value.text != "system"))
          return Status::error(
              Errc::kInvalidArgument,
              "tailscale: mode must be \"embedded\" or \"system\", got " +
                  (value.kind == JsonValue::Kind::kString ? "\"" + value.text + "\""
                                                          : std::string(value.kind_name())));
        mode = value.text == "system" ? Mode::kSystem : Mode::kEmbedded;
      } else if (key == "library") {
        if (value.kind != JsonValue::Kind::kString || value.text.empty())
          return Status::error(Errc::kInvalidArgument,
                               "tailscale: library must be the path of libtailscale.so");
        if (value.text.front() != '/')
          return Status::error(
              Errc::kInvalidArgument,
              "tailscale: library must be an absolute path, got \"" + value.text + "\"");
        library = value.text;
      } else if (key == "enabled") {
        // The host strips it; accept it anyway so that a whole policy entry can be passed.
        if (value.kind != JsonValue::Kind::kBool)
          return Status::error(Errc::kInvalidArgument, "tailscale: enabled must be true or false");
      } else if (key == "host") {
        // The daemon's per-repo settings (state_dir, auth_key); listen() reads them.
        if (value.kind != JsonValue::Kind::kObject)
          return Status::error(Errc::kInvalidArgument, "tailscale: host must be an object");
      } else {
        return Status::error(Errc::kInvalidArgument, "tailscale: unknown option \"" + key +
                                                         "\" (known options: mode, library)");
      }
    }
    if (mode == Mode::kSystem && !library.empty())
      log_->log(sdk::LogLevel::kWarn,
                "tailscale: library is ignored in mode system (tailscaled does the work)");
    mode_ = mode;
    library_ = library;
    return Status::success();
  });
}

std::shared_ptr<TsnetNode> TailscaleTransport::node() const {
  std::lock_guard lock(mu_);
  return node_;
}

sdk::Result<std::unique_ptr<sdk::IListener>> TailscaleTransport::listen(
    const sdk::ListenSpec& spec) noexcept {
  return guarded([&]() -> sdk::Result<std::unique_ptr<sdk::IListener>> {
    return mode_ == Mode::kSystem ? listen_system(spec) : listen_embedded(spec);
  });
}

sdk::Result<std::shared_ptr<TsnetNode>> TailscaleTransport::ensure_node(
    const std::string& state_dir, const std::string& auth_key) {
  std::lock_guard start(start_mu_);
  if (auto n = node(); n && n->running() && n->state_dir() == state_dir) return n;

  auto lib = load_libtailscale(env_or("THRUM_LIBTAILSCALE", ""), library_);
  if (!lib.ok()) return lib.status();

  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  if (ec)
    return Status::error(Errc::kIo, "tailscale: cannot create the state directory " + state_dir +
                                        ": " + ec.message());
  if (::chmod(state_dir.c_str(), 0700) != 0)
    return Status::error(
        Errc::kIo, "tailscale: cannot make " + state_dir + " private (0700): " + errno_text(errno));
  if (auth_key.empty() && !has_saved_state(state_dir))
    return Status::error(Errc::kInvalidArgument, kAuthKeyRequired);

  NodeConfig cfg;
  cfg.state_dir = state_dir;
  cfg.auth_key = auth_key;
  cfg.hostname = env_or("THRUM_TS_HOSTNAME", default_hostname());
  cfg.control_url = env_or("THRUM_TS_CONTROL_URL", env_or("THRUM_TAILSCALE_CONTROL_URL", ""));
  cfg.up_timeout = up_timeout();
  if (!auth_key.empty()) log_->set_secret(auth_key);
  auto started = TsnetNode::start(lib.value(), cfg, log_);
  if (!started.ok()) return started.status();
  std::shared_ptr<TsnetNode> old;
  {
    std::lock_guard lock(mu_);
    old = std::exchange(node_, started.value());
  }
  if (old) old->close();
  return started.value();
}

sdk::Result<std::unique_ptr<sdk::IListener>> TailscaleTransport::listen_embedded(
    const sdk::ListenSpec& spec) {
  auto host = parse_host_options(spec.options_json);
  if (!host.ok()) return host.status();
  if (host.value().state_dir.empty())
    return Status::error(Errc::kInvalidArgument,
                         "tailscale: listen options lack host.state_dir (the daemon passes "
                         "<repo>/.thrum/var/tsnet)");
  auto n = ensure_node(host.value().state_dir, host.value().auth_key);
  if (!n.ok()) return n.status();
  const auto& node_ptr = n.value();
  if (!spec.bind_ip.empty() && spec.bind_ip != node_ptr->ipv4())
    return Status::error(Errc::kInvalidArgument, "tailscale: cannot listen on " + spec.bind_ip +
                                                     ": this node's tailnet IP is " +
                                                     node_ptr->ipv4());
  return node_ptr->listen(spec.port);
}

sdk::Result<std::unique_ptr<sdk::IListener>> TailscaleTransport::listen_system(
    const sdk::ListenSpec& spec) {
  std::string err;
  const auto addrs = interface_tailnet_addresses(err);
  if (!err.empty()) return Status::error(Errc::kIo, "tailscale: " + err);
  if (addrs.empty()) return Status::error(Errc::kUnavailable, kNoSystemAddress);
  std::string ip = addrs.front();
  if (!spec.bind_ip.empty()) {
    if (std::find(addrs.begin(), addrs.end(), spec.bind_ip) == addrs.end())
      return Status::error(Errc::kInvalidArgument,
                           "tailscale: cannot listen on " + spec.bind_ip +
                               ": not one of this host's tailnet addresses (" + join(addrs) + ")");
    ip = spec.bind_ip;
  }
  return tcp_listen(ip, spec.port);
}

sdk::Result<int> TailscaleTransport::dial(const sdk::Endpoint& to,
                                          std::chrono::milliseconds timeout) noexcept {
  return guarded([&]() -> sdk::Result<int> {
    std::uint32_t ip = 0;
    if (!parse_ipv4(to.ip, ip))
      return Status::error(Errc::kInvalidArgument,
                           "tailscale: \"" + to.ip + "\" is not an IPv4 address");
    if (!in_tailnet(ip))
      return Status::error(
          Errc::kInvalidArgument,
          "tailscale: " + to.ip + " is not a tailnet address (" + kTailnetCidr + ")");
    if (to.port == 0)
      return Status::error(Errc::kInvalidArgument, "tailscale: port 0 is not a port");
    if (mode_ == Mode::kSystem) return tcp_connect(to.ip, to.port, timeout);
    auto n = node();
    if (!n || !n->running())
      return Status::error(Errc::kUnavailable,
                           std::string(kNotRunning) + " (the daemon starts it when it listens)");
    return n->dial(to, timeout);
  });
}

sdk::Result<std::string> TailscaleTransport::local_tailnet_ip() const {
  if (mode_ == Mode::kSystem) {
    std::string err;
    const auto addrs = interface_tailnet_addresses(err);
    if (!err.empty()) return Status::error(Errc::kIo, "tailscale: " + err);
    if (addrs.empty()) return Status::error(Errc::kUnavailable, kNoSystemAddress);
    return addrs.front();
  }
  auto n = node();
  if (!n || !n->running()) return Status::error(Errc::kUnavailable, kNotRunning);
  return n->ipv4();
}

sdk::Result<sdk::Endpoint> TailscaleTransport::advertise(const sdk::AdvertiseSpec& spec) noexcept {
  return guarded([&]() -> sdk::Result<sdk::Endpoint> {
    auto ip = local_tailnet_ip();
    if (!ip.ok()) return ip.status();
    std::string chosen = ip.value();
    if (!spec.requested_ip.empty() && spec.requested_ip != chosen) {
      bool ours = false;
      if (mode_ == Mode::kSystem) {
        std::string err;
        const auto addrs = interface_tailnet_addresses(err);
        ours = std::find(addrs.begin(), addrs.end(), spec.requested_ip) != addrs.end();
      }
      if (!ours)
        return Status::error(Errc::kInvalidArgument, "--type tailscale --address " +
                                                         spec.requested_ip +
                                                         ": not this node's tailnet IP (" + chosen +
                                                         "); leave --address out");
      chosen = spec.requested_ip;
    }
    if (spec.listen_port == 0)
      return Status::error(Errc::kUnavailable, "tailscale: no listener port yet");
    return sdk::Endpoint{chosen, spec.listen_port};
  });
}

sdk::Result<sdk::Endpoint> TailscaleTransport::resolve(const sdk::PeerRecordView& peer) noexcept {
  return guarded([&]() -> sdk::Result<sdk::Endpoint> {
    if (peer.address.ip.empty() || peer.address.port == 0)
      return Status::error(Errc::kUnavailable,
                           "tailscale: peer \"" + peer.name + "\" has no stored address");
    return peer.address;
  });
}

Status TailscaleTransport::validate_address_change(const sdk::Endpoint& old_address,
                                                   const sdk::Endpoint& new_address) noexcept {
  return guarded([&]() -> Status {
    (void)old_address;  // any tailnet address is acceptable, wherever the peer was before
    if (!is_tailnet_ipv4(new_address.ip))
      return Status::error(Errc::kRejected,
                           "tailscale: IP must stay inside the tailnet (100.64.0.0/10); only the "
                           "port may change (" +
                               (new_address.ip.empty() ? std::string("no IP") : new_address.ip) +
                               " is outside it)");
    if (new_address.port == 0)
      return Status::error(Errc::kRejected, "tailscale: port 0 is not a port");
    return Status::success();
  });
}

}  // namespace thrum::transport::tailscale
