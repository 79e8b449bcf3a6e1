#pragma once
// One paired daemon (SPEC §6–§7): the one object that owns everything about its link — the
// link itself, dialing with backoff and quarantine, reconcile rounds, the outbox pump, what it
// told us about its agents, and the announcements of our own address changes it still has to
// hear. Created when a record is loaded or paired, destroyed when it is removed; every callback
// it hands out holds a weak reference, so a late answer for a removed peer is a no-op. Loop
// thread only.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "peers/link.hpp"
#include "peers/link_state.hpp"
#include "peers/outbox_pump.hpp"
#include "thrum/core/event_loop.hpp"
#include "thrum/core/json_rpc.hpp"
#include "thrum/core/timing.hpp"
#include "thrum/sdk/types.hpp"

namespace thrum::core {
struct PeerRecord;
}

namespace thrum::core::peers {

class Context;
class Dialer;
struct Identity;
struct PresenceAgent;

class Peer : public std::enable_shared_from_this<Peer> {
 public:
  /// Serves a request the peer sent over its link (PeerService).
  using RequestHandler = std::function<void(const std::string& peer, const std::string& method,
                                            const nlohmann::json& params, rpc::Respond)>;

  Peer(std::string name, Context& ctx, Dialer& dialer, RequestHandler on_request);
  ~Peer();
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;

  const std::string& name() const { return name_; }
  /// The record in the registry (null only while being removed).
  PeerRecord* record() const;

  // -- the link --------------------------------------------------------------------------------
  /// Dialers dial unless a link is up or a dial is in flight.
  void connect();
  /// The same, forgetting the backoff (they could reach us; an address change; repair).
  void connect_now();
  /// `peer join --type repair`: clears drift, dials now; `respond` once the link is up (or why
  /// not).
  void repair(rpc::Respond respond);
  /// A link the other side opened and proved itself on (we are its listener). Replaces any.
  void attach(std::shared_ptr<Link> link);
  bool linked() const { return link_ != nullptr; }
  const std::shared_ptr<Link>& link() const { return link_; }
  bool dialing() const { return dialing_; }
  /// Whether this daemon dials the peer by itself: peers.auto_connect, or the user asked once
  /// (repair). With auto_connect off, a peer reaching us does not make us dial.
  bool wanted() const { return wanted_; }
  /// For dialers of transports whose resolve() follows the peer (TransportProfile::poll_resolve):
  /// dial at once when the endpoint it resolves to changed.
  void poll_resolve();
  /// Reconcile attempt `round` (0-based) now (SPEC §7.3): dialers dial, listeners call
  /// peer.repair over a control link; later rounds follow at 2 s, 8 s, 30 s.
  void reconcile(int round);
  /// The boot reconcile (2 s after start, for peers without a link): dialers dial now,
  /// listeners start the reconcile rounds.
  void boot_reconcile();
  /// The peer told us it removed us: no more dialing, the link closes.
  void removed_by_peer();
  /// No more work: timers cancelled, the link closed. Called on removal and at shutdown.
  void shutdown(const std::string& reason);

  /// What the peer said about itself (hello, repair). The paired identity stays; only where a
  /// dialer listens may move, under the transport's rule.
  void heard_identity(const Identity& id);
  /// An address change was refused (`rule`), or a later one was accepted ("").
  void set_address_rejected(std::string rule) { address_rejected_ = std::move(rule); }
  /// A problem to show in `peer status` until the link is up (e.g. its listener did not start).
  void set_last_error(std::string error) { last_error_ = std::move(error); }

  // -- the outbox ------------------------------------------------------------------------------
  void kick() { pump_.kick(); }

  // -- our own address -------------------------------------------------------------------------
  /// Tell this peer our address for its transport is now `now` (over the link, or by a control
  /// call when we are its listener); retried with backoff until answered.
  void announce(sdk::Endpoint now);

  // -- presence --------------------------------------------------------------------------------
  void set_presence(std::vector<PresenceAgent> agents);
  /// {"active"|"offline"|"unknown", role} of the agent `remote_name` over there.
  std::pair<std::string, std::string> presence_of(const std::string& remote_name) const;
  /// Sends our local agents' presence over the link.
  void send_presence();

  // -- status ----------------------------------------------------------------------------------
  /// The `peer status` fields this object knows: state, last_error, connected.
  void describe(nlohmann::json& j);

 private:
  void dial();
  void linked_up(const std::shared_ptr<Link>& link);  // after the hello answer (dialer)
  void link_down(uint64_t generation, const std::string& reason);
  void connect_failed(const std::string& error);
  void token_rejected();
  void schedule_retry();
  void schedule_reconcile(int round);
  void fail_repair_waiters(const std::string& error);
  void install(std::shared_ptr<Link> link);
  void announce_now();
  void announced(const sdk::Endpoint& ep, rpc::Outcome o, bool answered, int status);
  void change_state(LinkEvent e);
  bool is_dialer() const;
  std::weak_ptr<Peer> weak() { return weak_from_this(); }

  std::string name_;
  Context& ctx_;
  Dialer& connector_;
  RequestHandler on_request_;
  OutboxPump pump_;

  std::shared_ptr<Link> link_;
  uint64_t generation_ = 0;
  LinkState state_ = LinkState::kIdle;
  std::string last_error_;
  std::string address_rejected_;
  bool dialing_ = false;
  bool stopped_ = false;
  timing::Backoff backoff_;
  std::shared_ptr<EventLoop::Timer> retry_;
  std::chrono::steady_clock::time_point retry_at_{};
  int reconcile_round_ = 0;  // attempts made in this failure streak
  std::shared_ptr<EventLoop::Timer> reconcile_timer_;
  std::vector<rpc::Respond> repair_waiters_;
  std::string watched_;  // poll_resolve: the endpoint last seen
  bool identity_warned_ = false;
  bool wanted_ = false;  // dial by ourselves: peers.auto_connect, or once asked to connect

  bool presence_known_ = false;
  std::map<std::string, std::pair<std::string, std::string>> presence_;  // name → status, role

  std::optional<sdk::Endpoint> announce_;
  timing::Backoff announce_backoff_;
  std::shared_ptr<EventLoop::Timer> announce_timer_;
  bool announcing_ = false;
};

}  // namespace thrum::core::peers
