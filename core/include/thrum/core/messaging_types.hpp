#pragma once
// The values of messaging (SPEC §5) as the store, the messaging units and the peer layer pass
// them around. No logic beyond Agent::active().

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace thrum::core {

/// A registered agent (local, or a proxy for an agent on a peer).
struct Agent {
  std::string agent_id;
  std::string kind = "agent";  ///< "agent" | "proxy"
  std::string role;
  std::string module;
  std::string display;
  std::string worktree;
  std::string hostname;
  std::optional<int64_t> agent_pid;
  std::string intent;
  std::optional<std::string> session_id;
  std::optional<std::string> session_started_at;
  std::optional<std::string> peer_name;    ///< proxies only: the peer they live on
  std::optional<std::string> remote_name;  ///< proxies only
  std::string registered_at;
  std::string last_seen_at;

  bool is_proxy() const { return kind == "proxy"; }
  /// Local agents: active while their session is open and their process (if known) lives.
  bool active() const;
};

/// A message as stored and as shown to callers.
struct StoredMessage {
  int64_t seq = 0;
  std::string message_id;
  std::optional<std::string> thread_id;
  std::optional<std::string> reply_to;
  std::string author_id;
  std::string body;
  std::string format;
  std::string audience;  ///< "agent:<id>[,agent:<id>...]" or "broadcast:everyone"
  std::string created_at;
  std::optional<std::string> origin_daemon;
  std::optional<std::string> origin_message_id;
  /// The peer it came over (written with it; not read back into this struct).
  std::optional<std::string> origin_peer;
  std::vector<std::string> recipients;
};

/// What must cross a peer link for one message, stored with it in the same transaction. The
/// outbox row's payload is the params serialised once, as they go on the wire, then a newline
/// and the queued recipients as a JSON array (a serialised JSON value never contains a raw
/// newline); receipts store the params alone.
struct OutboxItem {
  std::string peer;
  std::string kind;  ///< "deliver" | "receipt"
  std::string message_id;
  /// The peer.deliver params for this message, serialised (written field by field by the
  /// router: the body is copied once, into this text).
  std::string wire;
  /// Delivery rows created queued (delivered_at NULL) until the peer acknowledges.
  std::vector<std::string> queued_recipients;
};

/// A message that arrived over a peer link, to be stored for local agents.
struct InboundMessage {
  std::string peer;           ///< our name for the sending daemon
  std::string prefix;         ///< our proxy prefix for it
  std::string origin_daemon;  ///< its daemon id
  std::string origin_id;      ///< its id for the message
  std::string author;         ///< the sending agent's name over there
  std::vector<std::string> to;
  bool broadcast = false;
  std::string body;
  std::string format = "markdown";
  std::string created_at;
  std::optional<std::string> reply_to;  ///< our id for the parent, when the sender knew it
};

/// What became of one InboundMessage.
struct InboundResult {
  std::string local_id;  ///< our id for it (new, or the one it got the first time it came)
  std::string refused;   ///< why it cannot be stored here; empty when local_id is set
};

}  // namespace thrum::core
