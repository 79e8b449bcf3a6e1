#pragma once
// One authenticated connection to another daemon as the peer layer's units see it: JSON-RPC
// both ways. PeerLink (peer_link.hpp) is the WebSocket one; unit tests use a fake. Loop thread
// only; no Asio or Beast here, so that units include this and stay cheap to build and test.

#include <cstddef>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "thrum/core/json_rpc.hpp"

namespace thrum::core::peers {

class Link {
 public:
  using Json = nlohmann::json;
  /// A request from the other side; answer exactly once.
  using RequestHandler =
      std::function<void(const std::string& method, const Json& params, rpc::Respond respond)>;
  using CloseHandler = std::function<void(const std::string& reason)>;
  using Reply = std::function<void(rpc::Outcome)>;
  /// The error code of a call the link closed under (or that found it closed): the other side
  /// did not answer it, so the caller may try again; any other error is the other side's answer.
  static constexpr int kClosedCode = -32010;

  virtual ~Link() = default;
  /// Sets who handles requests and the close; the first call starts reading, later ones replace
  /// the handlers (after authentication) and the next frame goes to the new ones.
  virtual void set_handlers(RequestHandler on_request, CloseHandler on_close) = 0;
  /// Sends a request; `reply` runs with the answer, or with kClosedCode if the link closes first.
  virtual void call(const std::string& method, const Json& params, Reply reply) = 0;
  /// The same, with `params` already serialised (a JSON object).
  virtual void call_text(const std::string& method, const std::string& params, Reply reply) = 0;
  virtual void notify(const std::string& method, const Json& params) = 0;
  /// Closes now; pending calls fail with `reason`; the close handler runs once. Idempotent.
  virtual void close(const std::string& reason) = 0;
  virtual bool is_open() const = 0;
  /// The largest message accepted from now on (a larger one closes the link).
  virtual void set_max_frame_bytes(std::size_t n) = 0;
};

}  // namespace thrum::core::peers
