#pragma once
/// @file
/// The transport interface: how bytes get between two Thrum daemons (DESIGN.md §3).
///
/// A transport deals in connected stream sockets (file descriptors), never in messages: the core
/// wraps every fd it gets from a transport into its own I/O objects and runs WebSocket (+TLS
/// when Capabilities::needs_tls) and the peer protocol on it.
///
/// Rules for every method below:
///  - noexcept: an exception must never leave a plugin. Report failures as Status/Result.
///  - File descriptors handed to the caller are owned by the caller from then on (the plugin
///    must not close or reuse them). They are stream sockets, blocking or not (the core sets the
///    mode it needs), with FD_CLOEXEC set.
///  - Methods added in a later ABI minor are appended at the end and are called by the host only
///    on plugins whose descriptor declares that minor or newer.

#include <chrono>
#include <memory>
#include <string_view>

#include "thrum/sdk/types.hpp"

namespace thrum::sdk {

/// A listening endpoint created by ITransport::listen().
///
/// Thread-safety: the core uses one listener from one thread at a time (its I/O thread), except
/// close(), which may be called from any thread and concurrently with accept().
/// Destruction closes the listener if close() was not called.
class IListener {
 public:
  virtual ~IListener() = default;

  /// A file descriptor the core can poll for readability; readable means accept() will not block
  /// (or will fail at once). Owned by the listener: the caller must not close it. -1 after close().
  virtual int fd() const noexcept = 0;

  /// Accepts one connection. Returns a connected stream-socket fd owned by the caller, or a
  /// Status: Errc::kUnavailable when nothing is pending (would block), Errc::kIo on other
  /// errors. Never blocks when fd() was reported readable.
  virtual Result<int> accept() noexcept = 0;

  /// Where the listener is bound (port filled in when ListenSpec::port was 0).
  virtual Endpoint local_endpoint() const noexcept = 0;

  /// Stops listening and releases its resources. Idempotent: a second call does nothing.
  virtual void close() noexcept = 0;
};

/// One transport (local, network, tailscale, uds, ...). Created once per daemon by the plugin's
/// factory (see plugin.hpp) and kept for the daemon's lifetime.
///
/// Thread-safety: id(), capabilities(), resolve(), advertise() and validate_address_change() may
/// be called from any thread, concurrently. configure() is called once, before any other method
/// except id() and capabilities(). dial() is called on worker threads, possibly several at once.
/// listen() is called on a worker thread too, one call at a time per transport, and may block
/// (an embedded node logging in); the listener it returns is then used from the I/O thread.
class ITransport {
 public:
  virtual ~ITransport() = default;

  /// The transport id (`[a-z0-9_]+`), equal to the descriptor's id and the `<id>` in the file name
  /// `libthrum_transport_<id>.so`. The view stays valid for the object's lifetime.
  virtual std::string_view id() const noexcept = 0;

  /// Static facts about the transport; must return the same value on every call.
  virtual Capabilities capabilities() const noexcept = 0;

  /// Applies the operator policy's options for this transport (`transports.<id>` in the policy
  /// file minus `enabled`), as a JSON object text; "{}" when there are none. Called once, right
  /// after creation. A failed Status names the offending option; the host then refuses the
  /// transport (`refused: configure: <message>`). Unknown options should be refused rather than
  /// ignored.
  virtual Status configure(std::string_view options_json) noexcept = 0;

  /// Starts listening for peers. Returns the listener, owned by the caller, or a Status
  /// (Errc::kUnsupported when Capabilities::provides_listener is false; Errc::kIo with the OS
  /// error when binding fails). May be called again after the previous listener was closed (the
  /// core rebuilds listeners on restart and after an address change).
  virtual Result<std::unique_ptr<IListener>> listen(const ListenSpec& spec) noexcept = 0;

  /// Connects to `to`. Blocks for at most `timeout` (the core calls it on a worker thread, never
  /// on the I/O thread). Returns a connected stream-socket fd owned by the caller, or a Status:
  /// Errc::kTimeout when the deadline passed, Errc::kUnavailable when the other side refused or
  /// is absent, Errc::kInvalidArgument when `to` is not an address of this transport.
  virtual Result<int> dial(const Endpoint& to, std::chrono::milliseconds timeout) noexcept = 0;

  /// The endpoint to put into a peercode for this host (`peer add`) and to announce in
  /// `peer.address_changed`. Errc::kInvalidArgument when `spec.requested_ip` is not acceptable
  /// for this transport (the message says why).
  virtual Result<Endpoint> advertise(const AdvertiseSpec& spec) noexcept = 0;

  /// Where to dial `peer` now. Called before every connection attempt, so that transports whose
  /// address moves (local: the other repo's ws.port) pick up the current one.
  virtual Result<Endpoint> resolve(const PeerRecordView& peer) noexcept = 0;

  /// Whether a peer that was paired at `old_address` may move to `new_address`
  /// (`peer.address_changed`). Status::success() to accept; otherwise Errc::kRejected with a
  /// message naming the rule, e.g. "IP must stay 127.0.0.1 (only the port may change)".
  virtual Status validate_address_change(const Endpoint& old_address,
                                         const Endpoint& new_address) noexcept = 0;

  // -- ABI 1.1 -----------------------------------------------------------------------------------

  /// How the core should treat this transport beyond capabilities(): its help text, whether it
  /// follows host addresses or polls resolve(), its credential, its state directory (see
  /// TransportProfile). Called from any thread; must return the same value on every call. The
  /// host calls it only on plugins whose descriptor declares ABI minor 1 or newer; plugins built
  /// for 1.0 get TransportProfile's defaults. Override it to describe your transport.
  virtual TransportProfile profile() const noexcept { return {}; }
};

}  // namespace thrum::sdk
