#include "peers/peer.hpp"

#include <spdlog/spdlog.h>

#include "peers/connector.hpp"
#include "peers/context.hpp"
#include "peers/protocol.hpp"
#include "thrum/common/ids.hpp"
#include "thrum/core/messaging.hpp"
#include "thrum/core/peer_registry.hpp"

namespace thrum::core::peers {

using Steady = std::chrono::steady_clock;

Peer::Peer(std::string name, Context& ctx, Dialer& connector, RequestHandler on_request)
    : name_(std::move(name)),
      ctx_(ctx),
      connector_(connector),
      on_request_(std::move(on_request)),
      pump_(name_, ctx.loop, ctx.outbox, [this](int64_t delivered) {
        if (auto* rec = record()) ctx_.touch(*rec, delivered);
      }) {
  if (auto* rec = record())
    state_ = rec->role == "dialer" ? LinkState::kIdle : LinkState::kWaitingForPeer;
  wanted_ = ctx.opts.auto_connect;
}

Peer::~Peer() {
  shutdown("peer gone");
}

PeerRecord* Peer::record() const {
  return ctx_.registry.find(name_);
}

bool Peer::is_dialer() const {
  auto* rec = record();
  return rec && rec->role == "dialer";
}

void Peer::change_state(LinkEvent e) {
  state_ = next_state(state_, e, is_dialer());
}

// -- dialing ----------------------------------------------------------------------------------

void Peer::connect() {
  if (stopped_ || ctx_.stopping) return;
  auto* rec = record();
  if (!rec || rec->role != "dialer" || link_ || dialing_) return;
  wanted_ = true;
  if (!rec->removed_by_peer.empty()) {
    state_ = LinkState::kRemovedByPeer;
    return;
  }
  // The peer rejected our token: dialing again only repeats the refusal. Repair (which clears
  // the status first) or a re-pair ends it.
  if (rec->reconcile_status == "drift_reconcile_failed") {
    state_ = LinkState::kDriftReconcileFailed;
    return;
  }
  std::string why;
  if (!ctx_.transport(rec->transport, why)) {
    last_error_ = why;
    fail_repair_waiters("transport \"" + rec->transport + "\" is not available: " + why);
    return;
  }
  if (retry_) retry_->cancel();
  dial();
}

void Peer::connect_now() {
  backoff_.failures = 0;
  if (retry_) retry_->cancel();
  if (!dialing_) connect();
}

void Peer::dial() {
  dialing_ = true;
  change_state(LinkEvent::kDial);
  auto* rec = record();
  connector_.open(*rec, [weak = weak()](OutgoingLink out, std::string error, int status,
                                        sdk::Endpoint target) {
    auto self = weak.lock();
    if (!self) {
      if (out.link) out.link->close("peer removed");
      return;
    }
    self->dialing_ = false;
    if (self->stopped_) {
      if (out.link) out.link->close("peer removed");
      return;
    }
    if (!out.link) {
      if (status == 401)
        self->token_rejected();
      else
        self->connect_failed(error);
      return;
    }
    auto* peer = self->record();
    if (!peer) {
      out.link->close("peer removed");
      return;
    }
    const std::string host = endpoint_text(target);
    if (peer->address != host) {
      // Where the transport found the peer now (local: its current ws.port).
      spdlog::info("peer address updated peer={} from={} to={}", self->name_, peer->address, host);
      peer->address = host;
      self->ctx_.registry.save();
    }
    auto link = out.link;
    self->install(link);
    Connector::send_link_auth(out);
    self->dialing_ = true;  // until the hello is answered
    link->call("peer.hello", self->ctx_.identity(peer->transport), [weak, link](rpc::Outcome o) {
      auto me = weak.lock();
      if (!me) return;
      me->dialing_ = false;
      if (!o.ok()) {
        link->close("hello refused: " + o.error().message);
        return;
      }
      auto id = decode_identity(o.result(), "hello answer");
      if (!id) {
        link->close("malformed hello answer: " + id.error());
        return;
      }
      me->heard_identity(id.value());
      me->linked_up(link);
    });
  });
}

void Peer::token_rejected() {
  change_state(LinkEvent::kTokenRejected);
  last_error_ = "token rejected";
  if (auto* rec = record()) {
    rec->reconcile_status = "drift_reconcile_failed";
    ctx_.registry.save();
  }
  spdlog::warn("peer link refused by peer peer={} reason=\"token rejected\"; not retrying", name_);
  fail_repair_waiters("peer \"" + name_ +
                      "\" no longer recognises our token; re-pair with 'thrum peer add' on " +
                      name_ + " and 'thrum peer join' here");
}

void Peer::connect_failed(const std::string& error) {
  last_error_ = error;
  backoff_.failures++;
  fail_repair_waiters("cannot reach peer \"" + name_ + "\": " + error);
  if (backoff_.failures == ctx_.tc().reconcile_after_failures && reconcile_round_ == 0) {
    spdlog::info("peer reconcile scheduled peer={} after={} failed dials", name_,
                 backoff_.failures);
    schedule_reconcile(0);
  }
  change_state(LinkEvent::kDialFailed);
  schedule_retry();
  spdlog::debug("peer dial failed peer={} failures={} error=\"{}\"", name_, backoff_.failures,
                error);
}

void Peer::schedule_retry() {
  if (stopped_ || ctx_.stopping) return;
  const auto delay = timing::next_delay(backoff_, ctx_.tc(), ctx_.rng);
  if (timing::quarantined(backoff_, ctx_.tc())) change_state(LinkEvent::kQuarantine);
  retry_at_ = ctx_.loop.now() + delay;
  if (retry_) retry_->cancel();
  retry_ = ctx_.loop.run_after(delay, [weak = weak()] {
    if (auto self = weak.lock()) self->connect();
  });
}

void Peer::poll_resolve() {
  auto* rec = record();
  if (!wanted_ || !rec || rec->role != "dialer" || link_ || dialing_ ||
      !rec->removed_by_peer.empty() || rec->reconcile_status == "drift_reconcile_failed")
    return;
  auto t = ctx_.transport(rec->transport);
  if (!t || !t.profile.poll_resolve) return;
  sdk::PeerRecordView v;
  v.name = rec->name;
  v.address = parse_endpoint(rec->address).value_or(sdk::Endpoint{});
  v.transport = rec->transport;
  v.repo_path = rec->repo_path;
  auto where = t->resolve(v);
  const std::string seen = where ? endpoint_text(where.value()) : "";
  if (seen == watched_) return;
  watched_ = seen;
  if (!where) return;
  spdlog::info("peer endpoint changed peer={} address={}; reconnecting now", name_, seen);
  connect();
}

// -- the link ---------------------------------------------------------------------------------

void Peer::install(std::shared_ptr<Link> link) {
  if (link_ && link_ != link) link_->close("replaced by a new link");
  link_ = link;
  ++generation_;
  presence_known_ = false;
  const uint64_t gen = generation_;
  auto w = weak();
  link->set_handlers(
      [w](const std::string& method, const nlohmann::json& params, rpc::Respond respond) {
        auto self = w.lock();
        if (!self) {
          respond(rpc::Error{rpc::kHandlerError, "peer removed", nullptr});
          return;
        }
        self->on_request_(self->name_, method, params, std::move(respond));
      },
      [w, gen](const std::string& reason) {
        if (auto self = w.lock()) self->link_down(gen, reason);
      });
  pump_.link_up(link);
}

void Peer::attach(std::shared_ptr<Link> link) {
  install(std::move(link));
  change_state(LinkEvent::kLinkUp);
  spdlog::info("peer link accepted peer={}", name_);
}

void Peer::linked_up(const std::shared_ptr<Link>& link) {
  if (link != link_) return;  // replaced meanwhile
  change_state(LinkEvent::kLinkUp);
  last_error_.clear();
  backoff_.healthy_since = ctx_.loop.now();
  reconcile_round_ = 0;
  if (reconcile_timer_) reconcile_timer_->cancel();
  if (auto* rec = record()) {
    if (rec->reconcile_status == "drift_reconcile_failed") {
      rec->reconcile_status.clear();
      ctx_.registry.save();
    }
    ctx_.touch(*rec);
  }
  spdlog::info("peer link up peer={}", name_);
  auto waiters = std::move(repair_waiters_);
  repair_waiters_.clear();
  for (auto& w : waiters) {
    auto* rec = record();
    w(nlohmann::json{
        {"status", "repaired"}, {"peer_name", name_}, {"peer_address", rec ? rec->address : ""}});
  }
  send_presence();
  pump_.kick();
  if (announce_) announce_now();
}

void Peer::link_down(uint64_t generation, const std::string& reason) {
  if (generation != generation_) return;  // an older link, already replaced
  link_.reset();
  pump_.link_down();
  presence_known_ = false;
  spdlog::info("peer link down peer={} reason=\"{}\"", name_, reason);
  auto* rec = record();
  if (!rec || stopped_ || ctx_.stopping) return;
  if (rec->role == "dialer" && rec->removed_by_peer.empty()) {
    dialing_ = false;
    timing::on_disconnect(backoff_, ctx_.loop.now(), ctx_.tc());
    change_state(LinkEvent::kLinkDown);
    schedule_retry();
  } else if (rec->role == "listener") {
    change_state(rec->removed_by_peer.empty() ? LinkEvent::kLinkDown : LinkEvent::kRemovedByPeer);
  }
}

void Peer::fail_repair_waiters(const std::string& error) {
  auto waiters = std::move(repair_waiters_);
  repair_waiters_.clear();
  for (auto& w : waiters) w(rpc::Error{rpc::kHandlerError, error, nullptr});
}

void Peer::repair(rpc::Respond respond) {
  auto* rec = record();
  rec->reconcile_status.clear();
  rec->removed_by_peer.clear();
  ctx_.registry.save();
  change_state(LinkEvent::kRepair);
  if (link_ && link_->is_open()) {
    change_state(LinkEvent::kLinkUp);
    respond(nlohmann::json{
        {"status", "repaired"}, {"peer_name", name_}, {"peer_address", rec->address}});
    return;
  }
  repair_waiters_.push_back(std::move(respond));
  backoff_.failures = 0;
  if (retry_) retry_->cancel();
  dialing_ = false;
  connect();
}

void Peer::removed_by_peer() {
  if (auto* rec = record()) {
    rec->removed_by_peer = now_rfc3339();
    ctx_.registry.save();
  }
  spdlog::warn("peer removed us peer={}", name_);
  change_state(LinkEvent::kRemovedByPeer);
  if (link_) {
    // Let the answer go out first.
    std::weak_ptr<Link> wl = link_;
    ctx_.loop.run_after(std::chrono::milliseconds(100), [wl] {
      if (auto l = wl.lock()) l->close("removed by peer");
    });
  }
}

void Peer::shutdown(const std::string& reason) {
  if (stopped_) return;
  stopped_ = true;
  for (auto* t : {&retry_, &reconcile_timer_, &announce_timer_})
    if (*t) (*t)->cancel();
  fail_repair_waiters("peer \"" + name_ + "\" " + reason);
  ++generation_;  // late answers on the old link are ignored
  pump_.link_down();
  if (link_) {
    auto l = std::move(link_);
    link_.reset();
    l->close(reason);
  }
}

// -- reconcile (SPEC §7.3) --------------------------------------------------------------------

void Peer::schedule_reconcile(int round) {
  if (round >= 3 || stopped_ || ctx_.stopping) return;
  if (reconcile_timer_) reconcile_timer_->cancel();
  reconcile_timer_ = ctx_.loop.run_after(ctx_.tc().reconcile_waits[round], [weak = weak(), round] {
    auto self = weak.lock();
    if (!self) return;
    auto* rec = self->record();
    if (!rec || self->link_ || rec->reconcile_status == "drift_reconcile_failed") return;
    spdlog::info("peer reconcile peer={} attempt={}", self->name_, round + 1);
    self->reconcile(round);
  });
}

void Peer::reconcile(int round) {
  auto* rec = record();
  if (!rec || stopped_ || ctx_.stopping || link_ || !rec->removed_by_peer.empty() ||
      rec->reconcile_status == "drift_reconcile_failed")
    return;
  if (rec->role == "dialer") {
    reconcile_round_ = round + 1;
    if (!dialing_) {
      if (retry_) retry_->cancel();
      connect();
    }
    schedule_reconcile(round + 1);
    return;
  }
  // We are the listener: dial its last known address with the token and exchange identities.
  reconcile_round_ = round;
  connector_.control_call(*rec, "peer.repair", ctx_.identity(rec->transport),
                          [weak = weak(), round](rpc::Outcome o, bool, int status) {
                            auto self = weak.lock();
                            if (!self) return;
                            if (o.ok()) {
                              auto id = decode_identity(o.result(), "repair answer");
                              if (id) {
                                self->heard_identity(id.value());
                                spdlog::info("peer reconciled peer={}", self->name_);
                                return;
                              }
                              spdlog::warn("peer reconcile failed peer={} error=\"{}\"",
                                           self->name_, id.error());
                            }
                            if (status == 401) {
                              self->token_rejected();
                              return;
                            }
                            self->schedule_reconcile(round + 1);
                          });
}

void Peer::boot_reconcile() {
  auto* rec = record();
  if (!rec || link_ || stopped_) return;
  spdlog::info("peer boot reconcile peer={}", name_);
  if (rec->role == "listener") {
    reconcile(0);
  } else if (!dialing_) {
    if (retry_) retry_->cancel();
    connect();
  }
}

void Peer::heard_identity(const Identity& id) {
  auto* rec = record();
  if (!rec) return;
  const bool differs =
      (!id.repo_path.empty() && id.repo_path != rec->remote_repo_path) ||
      (!id.git_origin_url.empty() && id.git_origin_url != rec->remote_git_origin_url) ||
      (!id.daemon_id.empty() && id.daemon_id != rec->daemon_id);
  if (differs && !identity_warned_) {
    identity_warned_ = true;
    spdlog::warn(
        "peer identity differs from the pairing peer={}; kept the paired one (re-pair to update "
        "it)",
        name_);
  }
  if (rec->role != "listener") return;
  // Where the dialer listens (for our address announcements), checked against the rule.
  auto next = parse_endpoint(id.address);
  auto cur = parse_endpoint(rec->address);
  if (!next || (cur && *next == *cur)) return;
  auto t = ctx_.transport(rec->transport);
  auto ok = !t || !cur ? sdk::Status::success() : t->validate_address_change(*cur, *next);
  if (ok) {
    rec->address = endpoint_text(*next);
    ctx_.registry.save();
  } else {
    address_rejected_ = ok.message;
    spdlog::warn("peer address change rejected peer={} from={} to={} rule=\"{}\"", name_,
                 rec->address, endpoint_text(*next), ok.message);
  }
}

// -- announcing our address -------------------------------------------------------------------

void Peer::announce(sdk::Endpoint now) {
  announce_ = std::move(now);
  announce_backoff_ = {};
  announce_now();
}

void Peer::announce_now() {
  auto* rec = record();
  if (!rec || stopped_ || ctx_.stopping || !announce_ || announcing_) return;
  const sdk::Endpoint ep = *announce_;
  nlohmann::json params{{"new_ip", ep.ip}, {"new_port", ep.port}};
  announcing_ = true;
  auto w = weak();
  if (link_ && link_->is_open()) {
    link_->call("peer.address_changed", params, [w, ep](rpc::Outcome o) {
      // The link may die under the call (our old address is gone): that is no answer, so it
      // is retried over the next link or a control call, not taken as a refusal.
      const bool answered = o.ok() || o.error().code != Link::kClosedCode;
      if (auto self = w.lock()) self->announced(ep, std::move(o), answered, 101);
    });
    return;
  }
  if (rec->role == "dialer") {
    announcing_ = false;  // linked_up() tells it over the link
    return;
  }
  connector_.control_call(*rec, "peer.address_changed", params,
                          [w, ep](rpc::Outcome o, bool answered, int status) {
                            if (auto self = w.lock())
                              self->announced(ep, std::move(o), answered, status);
                          });
}

void Peer::announced(const sdk::Endpoint& ep, rpc::Outcome o, bool answered, int status) {
  announcing_ = false;
  if (!announce_ || !(*announce_ == ep)) {  // superseded by a newer change
    announce_now();
    return;
  }
  if (o.ok()) {
    announce_.reset();
    spdlog::info("address change accepted by peer={} address={}", name_, endpoint_text(ep));
    return;
  }
  if (status == 401) {
    announce_.reset();
    token_rejected();
    return;
  }
  if (answered) {
    announce_.reset();
    spdlog::warn("address change refused by peer={} address={} reason=\"{}\"", name_,
                 endpoint_text(ep), o.error().message);
    return;
  }
  announce_backoff_.failures++;
  auto delay = timing::next_delay(announce_backoff_, ctx_.tc(), ctx_.rng);
  spdlog::debug("address change not delivered peer={} retry_in_ms={} error=\"{}\"", name_,
                delay.count(), o.error().message);
  announce_timer_ = ctx_.loop.run_after(delay, [w = weak()] {
    if (auto self = w.lock()) self->announce_now();
  });
}

// -- presence ---------------------------------------------------------------------------------

void Peer::set_presence(std::vector<PresenceAgent> agents) {
  presence_.clear();
  for (auto& a : agents) presence_[a.name] = {std::move(a.status), std::move(a.role)};
  presence_known_ = true;
}

std::pair<std::string, std::string> Peer::presence_of(const std::string& remote_name) const {
  auto p = presence_.find(remote_name);
  if (!link_) return {"offline", p != presence_.end() ? p->second.second : ""};
  if (p == presence_.end()) return {"unknown", ""};
  return p->second;
}

void Peer::send_presence() {
  if (!link_ || !link_->is_open()) return;
  nlohmann::json agents = nlohmann::json::array();
  for (const auto& [id, a] : ctx_.messaging.agents())
    if (!a.is_proxy())
      agents.push_back(
          {{"name", id}, {"role", a.role}, {"status", a.active() ? "active" : "offline"}});
  link_->call("peer.presence", {{"agents", agents}}, [](rpc::Outcome) {});
}

// -- status -----------------------------------------------------------------------------------

void Peer::describe(nlohmann::json& j) {
  auto* rec = record();
  if (!rec) return;
  std::string why;
  const bool available = static_cast<bool>(ctx_.transport(rec->transport, why));
  std::string state = state_text(
      state_, std::chrono::duration_cast<std::chrono::milliseconds>(retry_at_ - ctx_.loop.now()));
  if (!rec->reconcile_status.empty()) state = rec->reconcile_status;
  if (!rec->removed_by_peer.empty()) state = "removed by peer";
  if (!available) state = "disabled";
  const bool healthy = available && rec->removed_by_peer.empty() && rec->reconcile_status.empty();
  if (rec->role == "listener" && !link_ && healthy) state = "waiting for peer";
  if (!address_rejected_.empty() && healthy && !link_)
    state = "address change rejected: " + address_rejected_;
  j["state"] = state;
  if (!last_error_.empty()) j["last_error"] = last_error_;
  if (!available && !why.empty())
    j["last_error"] = "transport \"" + rec->transport + "\" is not available: " + why;
  j["connected"] = link_ != nullptr;
}

}  // namespace thrum::core::peers
