#pragma once
/// @file
/// Value types that cross the plugin boundary. Only std types and PODs: the host and the plugin
/// are built with the same toolchain (checked through the toolchain tag, see version.hpp).

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace thrum::sdk {

/// Error codes a plugin reports in a Status. Append-only.
enum class Errc : int {
  kOk = 0,
  kInvalidArgument = 1,  ///< the input is malformed (bad option, bad address)
  kUnavailable = 2,      ///< the peer or the resource is not there (connection refused, no file)
  kTimeout = 3,          ///< the operation did not finish within its deadline
  kRejected = 4,         ///< a rule refused the request (address change outside the rule)
  kIo = 5,               ///< an operating-system call failed
  kUnsupported = 6,      ///< this transport does not implement the operation
  kInternal = 7,         ///< a bug or an unexpected state in the plugin
};

/// The outcome of an operation that returns nothing else. Exceptions never cross the plugin
/// boundary; failures are values.
struct Status {
  /// 0 (Errc::kOk) on success, otherwise an Errc value.
  int code = 0;
  /// What a user should read when `code != 0`; empty on success. Never contains a secret.
  std::string message;

  bool ok() const noexcept { return code == 0; }
  explicit operator bool() const noexcept { return ok(); }

  static Status success() { return {}; }
  static Status error(Errc c, std::string msg) {
    return Status{static_cast<int>(c), std::move(msg)};
  }
};

/// A value or a failed Status. `T` must be movable.
template <class T>
class Result {
 public:
  /// A successful result holding `value`.
  Result(T value) : value_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  /// A successful result holding a T made from `value` (e.g. `std::unique_ptr<Derived>` for a
  /// `Result<std::unique_ptr<Base>>`, so that `return std::make_unique<MyListener>(...);` works).
  template <class U>
  requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::remove_cvref_t<U>, T> &&
           !std::is_same_v<std::remove_cvref_t<U>, Status> &&
           !std::is_same_v<std::remove_cvref_t<U>, Result>)
      Result(U&& value)  // NOLINT(google-explicit-constructor)
      : value_(std::in_place, std::forward<U>(value)) {}
  /// A failed result. `status.ok()` must be false; an ok status without a value is turned into
  /// Errc::kInternal so that a Result is never "ok and empty".
  Result(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (status_.ok()) status_ = Status::error(Errc::kInternal, "result without a value");
  }

  bool ok() const noexcept { return value_.has_value(); }
  explicit operator bool() const noexcept { return ok(); }
  /// The failure; `Status::success()` when ok().
  const Status& status() const noexcept { return status_; }
  /// The value. Precondition: ok().
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }

 private:
  std::optional<T> value_;
  Status status_;
};

/// A transport address: an IPv4 dotted quad (or another transport-defined string) and a port.
/// This is what goes into a peercode (`name:ip:port:code`) and into peers.json `address`.
struct Endpoint {
  /// Empty means "unset".
  std::string ip;
  /// 0 means "unset" / "pick one" depending on where it is used.
  std::uint16_t port = 0;

  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

/// What to listen on.
struct ListenSpec {
  /// Address to bind; empty means the transport's default (e.g. loopback for local).
  std::string bind_ip;
  /// Port to bind; 0 means "pick a free one" (the chosen one is in IListener::local_endpoint()).
  std::uint16_t port = 0;
  /// The operator policy's options for this transport, as a JSON object text ("{}" if none),
  /// plus, under the reserved key `"host"`, an object with what the daemon knows about this repo
  /// that a transport may need: `state_dir` (a private directory for the transport's state,
  /// `<repo>/.thrum/var/<id>`-like, e.g. tailscale's `<repo>/.thrum/var/tsnet`) and `auth_key`
  /// (a credential the user gave, "" when none; a secret: never log or return it). Example:
  /// `{"mode": "embedded", "host": {"state_dir": "/r/.thrum/var/tsnet", "auth_key": ""}}`.
  /// Transports that need none of it ignore `host`.
  std::string options_json = "{}";
};

/// What `advertise()` needs to compute the endpoint that goes into a peercode.
struct AdvertiseSpec {
  /// The `--address` the user gave on `peer add`; empty when none was given.
  std::string requested_ip;
  /// The port the peer-facing listener is bound to (from IListener::local_endpoint(), or the
  /// daemon's loopback WebSocket port for transports that do not own a listener).
  std::uint16_t listen_port = 0;
};

/// A read-only view of a stored peer (peers.json), as much as a transport needs to resolve it.
struct PeerRecordView {
  std::string name;       ///< the peer's name
  Endpoint address;       ///< last known address
  std::string transport;  ///< the transport id the peer was paired over
  std::string repo_path;  ///< the other repo's path (local transports only; empty otherwise)
  std::string options_json = "{}";  ///< transport-specific per-peer data as JSON object text
};

/// Static facts about a transport. Must not change over the transport object's lifetime.
struct Capabilities {
  /// The core must wrap the stream in TLS (and pin the peer's certificate).
  bool needs_tls = false;
  /// Connections never leave the host (loopback, Unix-domain sockets, ...).
  bool loopback_only = false;
  /// `peer join` must pass `--repo-path` (resolve() reads the other repo).
  bool needs_repo_path = false;
  /// `peer add`/`join` must pass `--address`.
  bool needs_address = false;
  /// The transport owns its peer listener (listen() is implemented). When false the core serves
  /// the transport's peers on its loopback WebSocket server and listen() returns kUnsupported.
  bool provides_listener = true;
};

/// A secret the user supplies for a transport (ABI 1.1), e.g. tailscale's auth key. The CLI takes
/// it from `--auth-key`, else from the environment variable `env` of its own shell, else — only
/// when the daemon reports that it still has none and stdin is a terminal — from a prompt without
/// echo. The daemon also reads `env` from its own environment and from `.thrum/.env`, where it
/// saves a credential once a listener came up with it. The core hands it to listen() as
/// ListenSpec `host.auth_key`. Never logged, never returned in an error.
struct CredentialSpec {
  /// What the user calls it, lowercase, e.g. "auth key". Empty: the transport needs none.
  std::string name;
  /// The environment variable that carries it, e.g. "THRUM_TS_AUTHKEY".
  std::string env;
  /// The terminal prompt, e.g. "Tailscale auth key (tskey-...): ".
  std::string prompt;
};

/// How the core treats a transport beyond Capabilities (ABI 1.1: ITransport::profile()). A
/// plugin built against ABI 1.0 has no profile() and gets the default of every field, as
/// documented on each.
struct TransportProfile {
  /// The transport's entry in the help block that `thrum peer add|join` print without --type:
  /// first line a one-line summary (what it is, which flags it needs), then lines saying when to
  /// use it. Default: "Transport from a plugin (no description)."
  std::string help;
  /// The listener is bound to an address of a host interface, and when that address leaves the
  /// host (a new DHCP lease) the core moves the listener to another one the transport accepts and
  /// tells the peers (network). Default false.
  bool follows_host_addresses = false;
  /// resolve() is cheap and follows the peer wherever it moved (local reads the other repo's port
  /// file): the core calls it every 500 ms while the peer's link is down and dials at once when
  /// the endpoint changed, instead of waiting out a backoff. Default false.
  bool poll_resolve = false;
  /// A credential the user must supply (see CredentialSpec). Default: none.
  CredentialSpec credential;
  /// The transport's private directory under `.thrum/var/`, passed as ListenSpec `host.state_dir`.
  /// Default: the transport id.
  std::string state_dir;
};

/// Log levels for IHost::log.
enum class LogLevel : int { kTrace = 0, kDebug = 1, kInfo = 2, kWarn = 3, kError = 4 };

}  // namespace thrum::sdk
