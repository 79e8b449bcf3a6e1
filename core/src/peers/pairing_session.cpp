#include "peers/pairing_session.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "peers/context.hpp"
#include "peers/pairing_record.hpp"
#include "peers/protocol.hpp"
#include "thrum/common/ids.hpp"
#include "thrum/core/pairing.hpp"

namespace thrum::core::peers {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct PairingSessions::Session {
  std::string code, transport, advertised;
  std::string prefix;  ///< --prefix of `peer add` ("" for the default)
  Clock::time_point started, expires;
  int attempts_left = 3;
  State state = State::kOpen;
  std::string paired_name, paired_address, paired_prefix, failure;
  std::shared_ptr<EventLoop::Timer> expiry;
  struct Waiter {
    rpc::Respond respond;
    std::shared_ptr<EventLoop::Timer> timer;
    uint64_t id;
  };
  std::vector<Waiter> waiters;
  uint64_t next_waiter = 1;
};

PairingSessions::PairingSessions(Context& ctx, Fingerprint own_fingerprint, Store store)
    : ctx_(ctx), own_fingerprint_(std::move(own_fingerprint)), store_(std::move(store)) {}

PairingSessions::~PairingSessions() {
  *alive_ = false;
  if (session_) {
    if (session_->expiry) session_->expiry->cancel();
    for (auto& w : session_->waiters)
      if (w.timer) w.timer->cancel();
  }
}

std::optional<PairingSessions::State> PairingSessions::state() const {
  if (!session_) return std::nullopt;
  return session_->state;
}

void PairingSessions::expire() {
  if (!session_ || session_->state != State::kOpen) return;
  if (ctx_.loop.now() < session_->expires) return;
  finish(State::kFailed, "pairing code expired; run 'thrum peer add' again");
  spdlog::info("pairing session expired");
}

void PairingSessions::finish(State state, const std::string& failure) {
  if (!session_) return;
  session_->state = state;
  session_->failure = failure;
  if (session_->expiry) session_->expiry->cancel();
  auto waiters = std::move(session_->waiters);
  session_->waiters.clear();
  for (auto& w : waiters) {
    if (w.timer) w.timer->cancel();
    respond_wait(w.respond);
  }
}

void PairingSessions::respond_wait(const rpc::Respond& respond) {
  if (!session_) {
    respond(rpc::Error{rpc::kHandlerError, "no pairing session in progress", nullptr});
    return;
  }
  switch (session_->state) {
    case State::kPaired:
      respond(json{{"status", "paired"},
                   {"peer_name", session_->paired_name},
                   {"peer_address", session_->paired_address},
                   {"proxy_prefix", session_->paired_prefix}});
      return;
    case State::kOpen:
    case State::kConsumed: {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(session_->expires -
                                                                        ctx_.loop.now());
      respond(json{{"status", "waiting"}, {"remaining_ms", std::max<int64_t>(0, left.count())}});
      return;
    }
    default:
      respond(rpc::Error{rpc::kHandlerError, session_->failure, nullptr});
  }
}

std::string PairingSessions::busy() {
  expire();
  if (!session_ || session_->state != State::kOpen) return "";
  auto age = std::chrono::duration_cast<std::chrono::seconds>(ctx_.loop.now() - session_->started);
  return "pairing already in progress (started " + std::to_string(age.count()) + "s ago)";
}

json PairingSessions::open(const std::string& transport, const std::string& name,
                           const sdk::Endpoint& advertised, const std::string& prefix) {
  auto s = std::make_unique<Session>();
  s->prefix = prefix;
  s->code = pairing::generate_code(ctx_.opts.pairing_code_length);
  s->transport = transport;
  s->advertised = endpoint_text(advertised);
  s->started = ctx_.loop.now();
  s->expires = s->started + ctx_.tc().pairing_expiry;
  s->attempts_left = ctx_.tc().pairing_attempts;
  if (session_) finish(State::kCancelled, "pairing cancelled: a new session started");
  session_ = std::move(s);
  session_->expiry = ctx_.loop.run_after(ctx_.tc().pairing_expiry, [this, alive = alive_] {
    if (*alive) expire();
  });
  pairing::Peercode pc{name, advertised.ip, advertised.port, session_->code};
  spdlog::info("pairing session started transport={} address={} expires_in_ms={}", transport,
               session_->advertised, ctx_.tc().pairing_expiry.count());
  return json{{"peercode", pairing::format_peercode(pc)},
              {"name", pc.name},
              {"address", session_->advertised},
              {"transport", transport},
              {"expires_in_ms", ctx_.tc().pairing_expiry.count()}};
}

void PairingSessions::wait(int64_t timeout_ms, rpc::Respond respond) {
  expire();
  const bool pending =
      session_ && (session_->state == State::kOpen || session_->state == State::kConsumed);
  if (!pending || timeout_ms <= 0) {
    respond_wait(respond);
    return;
  }
  const uint64_t id = session_->next_waiter++;
  auto timer =
      ctx_.loop.run_after(std::chrono::milliseconds(timeout_ms), [this, alive = alive_, id] {
        if (!*alive || !session_) return;
        auto& ws = session_->waiters;
        for (auto it = ws.begin(); it != ws.end(); ++it) {
          if (it->id != id) continue;
          auto r = std::move(it->respond);
          ws.erase(it);
          expire();
          respond_wait(r);
          return;
        }
      });
  session_->waiters.push_back(Session::Waiter{std::move(respond), timer, id});
}

json PairingSessions::cancel() {
  if (session_ && (session_->state == State::kOpen || session_->state == State::kConsumed)) {
    finish(State::kCancelled, "pairing cancelled");
    spdlog::info("pairing session cancelled");
    return json{{"status", "cancelled"}};
  }
  return json{{"status", "none"}};
}

std::optional<std::string> PairingSessions::open_transport() {
  expire();
  if (!session_ || session_->state != State::kOpen) return std::nullopt;
  return session_->transport;
}

std::string PairingSessions::refuse_connection(bool for_this_listener) {
  expire();
  // Without a token, a WebSocket is opened only while a code is waiting to be used; the
  // refusal says why, so the joiner can tell its user what to do.
  if (!session_ || session_->state == State::kPaired)
    return "no pairing session in progress (run 'thrum peer add' on the other side first, then "
           "join with the peercode it prints)";
  if (session_->state == State::kConsumed)
    return "this pairing code was already used; run 'thrum peer add' on the other side again";
  if (session_->state == State::kLocked)
    return "too many failed attempts; run 'thrum peer add' on the other side again";
  if (session_->state != State::kOpen) return session_->failure;
  if (!for_this_listener)
    return "this pairing session is for --type " + session_->transport + " on " +
           session_->advertised + ", not for this address";
  return "";
}

std::string PairingSessions::session_error(const std::string& method) {
  expire();
  if (!session_)
    return "no pairing session in progress on the other side; run 'thrum peer add' there "
           "first, then join with the peercode it prints";
  if (session_->state == State::kOpen) return "";
  if (session_->state == State::kConsumed && method == "pair.confirm") return "";
  if (session_->state == State::kLocked)
    return "too many failed attempts; run 'thrum peer add' on the other side again";
  if (session_->state == State::kFailed || session_->state == State::kCancelled)
    return session_->failure;
  return "this pairing code was already used; run 'thrum peer add' on the other side again";
}

void PairingSessions::on_request(const std::shared_ptr<Connection>& conn,
                                 const std::shared_ptr<Link>& link, const std::string& method,
                                 const json& p, rpc::Respond respond) {
  if (auto e = session_error(method); !e.empty()) {
    respond(rpc::Error{rpc::kHandlerError, e, nullptr});
    return;
  }
  Session& s = *session_;
  if (method == "pair.hello") {
    auto hello = decode_pair_hello(p);
    if (!hello) {
      respond(rpc::Error{rpc::kInvalidParams, hello.error(), nullptr});
      return;
    }
    if (hello.value().transport != s.transport) {
      respond(rpc::Error{
          rpc::kHandlerError,
          "this pairing session is for --type " + s.transport + ", not " + hello.value().transport,
          nullptr});
      return;
    }
    conn->nonce_j = hello.value().nonce;
    conn->joiner_id = hello.value().daemon_id;
    conn->nonce_l = pairing::generate_nonce();
    respond(json{{"nonce", conn->nonce_l},
                 {"daemon_id", ctx_.opts.daemon_id},
                 {"cert_sha256", own_fingerprint_(s.transport)}});
    return;
  }
  if (method == "pair.proof") {
    if (conn->nonce_l.empty()) rpc::fail("pair.hello must come first");
    if (conn->pending) rpc::fail("pair.proof was already accepted on this connection");
    auto msg = decode_pair_proof(p);
    if (!msg) {
      respond(rpc::Error{rpc::kInvalidParams, msg.error(), nullptr});
      return;
    }
    // Both certificates as seen on this TLS connection, and its endpoints: a relay in the
    // middle would have shown the joiner another view, and its proof would not match.
    pairing::Transcript tr{conn->nonce_l,
                           conn->nonce_j,
                           ctx_.opts.daemon_id,
                           conn->joiner_id,
                           own_fingerprint_(s.transport),
                           conn->joiner_cert,
                           s.transport,
                           conn->endpoints};
    if (!pairing::equal_ct(msg.value().proof, pairing::proof(s.code, "joiner", tr))) {
      s.attempts_left--;
      spdlog::warn("pairing attempt failed reason=\"wrong code\" attempts_remaining={}",
                   s.attempts_left);
      if (s.attempts_left <= 0) {
        finish(State::kLocked, "too many failed attempts; run 'thrum peer add' again");
        respond(rpc::Error{rpc::kHandlerError,
                           "too many failed attempts; run 'thrum peer add' on the other side again",
                           nullptr});
      } else {
        respond(rpc::Error{rpc::kHandlerError,
                           "invalid pairing code (" + std::to_string(s.attempts_left) +
                               (s.attempts_left == 1 ? " attempt" : " attempts") + " remaining)",
                           nullptr});
      }
      return;
    }
    const Identity& id = msg.value().identity;
    PeerRecord r;
    r.daemon_id = conn->joiner_id;
    if (auto e = settle_pairing_record(ctx_.registry, r, id.name, s.prefix); !e.empty()) {
      spdlog::warn("pairing refused reason=\"{}\"", e);
      finish(State::kFailed, e + "; run 'thrum peer add' again");
      respond(rpc::Error{rpc::kHandlerError, "the other side refused the pairing: " + e, nullptr});
      return;
    }
    r.address = id.address;
    r.token = pairing::generate_token();
    r.transport = s.transport;
    r.role = "listener";
    r.paired_at = now_rfc3339();
    r.last_sync = r.paired_at;
    r.remote_repo_name = id.repo_name;
    r.remote_hostname = id.hostname;
    r.remote_repo_path = id.repo_path;
    r.remote_git_origin_url = id.git_origin_url;
    r.remote_cert_sha256 = conn->joiner_cert;
    conn->pending = r;
    s.state = State::kConsumed;  // the code is single-use from here on
    // A joiner that stays connected but never confirms must not hold `peer add` for ever.
    std::weak_ptr<Link> wl = link;
    conn->confirm_deadline = ctx_.loop.run_after(ctx_.tc().dial_timeout * 2, [wl] {
      if (auto l = wl.lock()) l->close("no pair.confirm in time");
    });
    respond(json{{"proof", pairing::proof(s.code, "listener", tr)},
                 {"token", r.token},
                 {"identity", ctx_.identity(s.transport)}});
    return;
  }
  if (method == "pair.confirm") {
    if (!conn->pending) rpc::fail("pair.proof must succeed first");
    if (conn->confirm_deadline) conn->confirm_deadline->cancel();
    PeerRecord r = std::move(*conn->pending);
    conn->pending.reset();
    if (auto error = store_(r); !error.empty()) {
      finish(State::kFailed, "could not save peers.json: " + error);
      respond(rpc::Error{rpc::kHandlerError, "the other side could not save the pairing", nullptr});
      return;
    }
    s.paired_name = r.name;
    s.paired_address = r.address;
    s.paired_prefix = r.proxy_prefix;
    spdlog::info("paired peer={} transport={} role=listener address={}", r.name, r.transport,
                 r.address);
    finish(State::kPaired, "");
    respond(json{{"ok", true}, {"name", r.name}});
    if (link) {
      // Let the answer go out before the pairing connection is closed.
      std::weak_ptr<Link> wl = link;
      ctx_.loop.run_after(std::chrono::milliseconds(200), [wl] {
        if (auto l = wl.lock()) l->close("pairing complete");
      });
    }
    return;
  }
  respond(rpc::Error{rpc::kMethodNotFound,
                     "method '" + method + "' is not available before pairing", nullptr});
}

void PairingSessions::link_closed(const std::shared_ptr<Connection>& conn,
                                  const std::string& reason) {
  if (conn->confirm_deadline) conn->confirm_deadline->cancel();
  if (!conn->pending || !session_ || session_->state != State::kConsumed) return;
  spdlog::warn("pairing failed reason=\"joiner left before confirming: {}\"", reason);
  conn->pending.reset();
  finish(State::kFailed,
         "the other side disconnected before confirming the pairing; run 'thrum peer add' again");
}

}  // namespace thrum::core::peers
