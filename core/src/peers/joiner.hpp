#pragma once
// The joiner's side of pairing (SPEC §6.1): over a fresh connection to the listener's peercode
// address, pair.hello → pair.proof (our HMAC over the transcript, bound to the connection) →
// check the listener's proof before anything is stored → store the record → pair.confirm.
// Every answer is decoded (protocol.hpp); a malformed one ends the attempt with a clear error.

#include <functional>
#include <memory>
#include <string>

#include "peers/connector.hpp"
#include "thrum/core/json_rpc.hpp"
#include "thrum/core/peer_registry.hpp"
#include "thrum/sdk/types.hpp"

namespace thrum::core::peers {

class Context;

struct JoinRequest {
  std::string transport;
  std::string repo_path;           ///< for transports that need it ("" otherwise)
  std::string code;                ///< the peercode's code: never logged
  sdk::Endpoint listener;          ///< the peercode's address
  std::string our_cert;            ///< our TLS fingerprint on this transport ("" without TLS)
  std::string expected_daemon_id;  ///< the daemon of repo_path, when given: hello must match
  std::string peercode_name;       ///< the name in the peercode, for errors
  std::string prefix;              ///< --prefix ("" for the default, or the kept one on re-pairing)
};

/// Runs the joiner's handshake on `conn`. `store(record)` saves the new record and returns ""
/// or why not; `done` gets the peer.join answer ({status, peer_name, peer_address,
/// proxy_prefix}) or the error, once pair.confirm was answered.
void join_over(Context& ctx, PairingConnection conn, JoinRequest req,
               std::function<std::string(const PeerRecord&)> store, rpc::Respond done);

}  // namespace thrum::core::peers
