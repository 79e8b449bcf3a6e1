#pragma once
// Opening connections to other daemons (DESIGN.md §3, §5): resolve and dial through the
// transport on a worker pool (never on the loop), TLS when the transport asks for it (pinned
// to the paired certificate), the WebSocket upgrade, and the link authentication as the
// initiator (link_auth.hpp): the other side's daemon id and proof are checked before anything
// derived from the token goes out. Results come back on the loop.

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "peers/link.hpp"
#include "thrum/core/json_rpc.hpp"
#include "thrum/core/transport_registry.hpp"

namespace thrum::core {
struct PeerRecord;
namespace tls {
class LazyIdentity;
}
}  // namespace thrum::core

namespace thrum::core::peers {

class Context;

/// A link we opened and the other side proved itself on; not started. Its first frame must be
/// `link.auth` with `auth_proof` (send_link_auth()).
struct OutgoingLink {
  std::shared_ptr<Link> link;
  std::string auth_proof;
};

/// A connection opened for pairing (no token yet): the link, the listener's certificate as seen
/// in TLS ("" without TLS) and the endpoint binding of the connection.
struct PairingConnection {
  std::shared_ptr<Link> link;
  std::string listener_cert;
  std::string endpoints;
};

/// What a Peer needs to reach its daemon: an authenticated link, or one request over a short
/// one. Connector is the real one; unit tests give a Peer a fake.
class Dialer {
 public:
  /// `done(link, error, http_status, target)`: status 401 means the token was rejected.
  using Opened =
      std::function<void(OutgoingLink, std::string error, int http_status, sdk::Endpoint target)>;
  /// `answered` is false when the peer could not be reached (retrying helps).
  using ControlDone = std::function<void(rpc::Outcome, bool answered, int http_status)>;

  virtual ~Dialer() = default;
  /// Resolves `rec` through its transport (local: reads the other repo's port file), dials,
  /// and opens an authenticated link.
  virtual void open(const PeerRecord& rec, Opened done) = 0;
  /// One request over a short authenticated link to `rec`, which is then closed (address
  /// change, reconcile from the listener side).
  virtual void control_call(const PeerRecord& rec, const std::string& method,
                            const nlohmann::json& params, ControlDone done) = 0;
};

class Connector final : public Dialer {
 public:
  using PairingOpened = std::function<void(PairingConnection, std::string error, int http_status)>;

  explicit Connector(Context& ctx);
  ~Connector() override;
  Connector(const Connector&) = delete;
  Connector& operator=(const Connector&) = delete;

  void open(const PeerRecord& rec, Opened done) override;
  /// Dials `ep` over `transport_id` for a pairing.
  void open_for_pairing(const std::string& transport_id, const sdk::Endpoint& ep,
                        PairingOpened done);
  void control_call(const PeerRecord& rec, const std::string& method, const nlohmann::json& params,
                    ControlDone done) override;
  /// The TLS fingerprint we present on `transport_id`'s links ("" when it needs no TLS).
  std::string own_fingerprint(const std::string& transport_id);
  /// The daemon's TLS identity (made on first use), shared with the listeners.
  tls::LazyIdentity& tls();
  /// Stops the worker pool; dials in flight finish and are dropped. Idempotent.
  void shutdown();

  /// The first frame on a link we opened.
  static void send_link_auth(const OutgoingLink& out);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace thrum::core::peers
