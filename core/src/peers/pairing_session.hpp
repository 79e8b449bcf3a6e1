#pragma once
// The listener side of pairing (SPEC §6.1, design-decisions.md "Pairing proof"): at most one
// session per daemon, a code valid for the pairing expiry with 3 attempts, the joiner's proof
// checked in constant time over a transcript bound to the connection, the token minted only
// after a good proof, the record stored only after pair.confirm. `peer add` waits on it; a
// session ends paired, expired, locked, cancelled or failed — never stuck. No I/O here: the
// connections come in as Links; time comes from the EventLoop. Loop thread only.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "peers/link.hpp"
#include "thrum/core/event_loop.hpp"
#include "thrum/core/json_rpc.hpp"
#include "thrum/core/peer_registry.hpp"
#include "thrum/sdk/types.hpp"

namespace thrum::core::peers {

class Context;

class PairingSessions {
 public:
  /// Stores a record pair.confirm completed; returns "" or why it could not be saved.
  using Store = std::function<std::string(const PeerRecord&)>;
  /// Our TLS fingerprint on `transport` ("" without TLS), for the transcript.
  using Fingerprint = std::function<std::string(const std::string& transport)>;

  PairingSessions(Context& ctx, Fingerprint own_fingerprint, Store store);
  ~PairingSessions();

  /// Why `peer add` cannot open a session now ("pairing already in progress (started 3s ago)"),
  /// or "".
  std::string busy();
  /// Opens a session for `transport` at `advertised` (the listener is up) and returns the
  /// peer.start_pairing answer: {peercode, name, address, transport, expires_in_ms}. `prefix`
  /// is the proxy prefix the joiner gets here ("" for a slug of its name, or the prefix it
  /// already has when it is re-pairing).
  nlohmann::json open(const std::string& transport, const std::string& name,
                      const sdk::Endpoint& advertised, const std::string& prefix = "");
  /// peer.wait_pairing: answers at once unless the session is open (or consumed and waiting for
  /// its confirm), else when it ends or after `timeout_ms`.
  void wait(int64_t timeout_ms, rpc::Respond respond);
  /// peer.cancel_pairing.
  nlohmann::json cancel();
  /// The open session's transport, if one is open.
  std::optional<std::string> open_transport();

  /// Why an upgrade without a token is refused now; "" to take it as a pairing connection.
  /// `for_this_listener`: whether the connection arrived where the session's transport listens.
  std::string refuse_connection(bool for_this_listener);

  /// One pairing connection (before the joiner proved the code).
  struct Connection {
    std::string nonce_l, nonce_j, joiner_id;
    std::string joiner_cert;  ///< the joiner's TLS certificate as seen in the handshake
    std::string endpoints;    ///< channel_binding.hpp endpoint binding ("" when unbound)
    std::optional<PeerRecord> pending;
    std::shared_ptr<EventLoop::Timer> confirm_deadline;
  };
  /// Serves one request on a pairing connection.
  void on_request(const std::shared_ptr<Connection>& conn, const std::shared_ptr<Link>& link,
                  const std::string& method, const nlohmann::json& params, rpc::Respond respond);
  /// The joiner went away (or never confirmed) after a correct proof: the code is used up, so
  /// the session ends now instead of leaving `peer add` waiting for ever.
  void link_closed(const std::shared_ptr<Connection>& conn, const std::string& reason);

  enum class State { kOpen, kLocked, kConsumed, kPaired, kCancelled, kFailed };
  /// The session's state, nullopt when there is none (tests, status).
  std::optional<State> state() const;

 private:
  struct Session;
  void expire();
  void finish(State state, const std::string& failure);
  void respond_wait(const rpc::Respond& respond);
  std::string session_error(const std::string& method);

  Context& ctx_;
  Fingerprint own_fingerprint_;
  Store store_;
  std::unique_ptr<Session> session_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace thrum::core::peers
