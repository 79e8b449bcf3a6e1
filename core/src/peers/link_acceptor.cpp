#include "peers/link_acceptor.hpp"

#include <spdlog/spdlog.h>

#include "peers/channel_binding.hpp"
#include "peers/connector.hpp"
#include "peers/context.hpp"
#include "peers/fields.hpp"
#include "peers/link_auth.hpp"
#include "peers/pairing_session.hpp"
#include "peers/peer_link.hpp"
#include "peers/protocol.hpp"
#include "peers/tls.hpp"
#include "thrum/core/pairing.hpp"

namespace thrum::core::peers {

namespace la = link_auth;
using json = nlohmann::json;

namespace {
std::string header(const peerwire::Request& req, const char* name) {
  auto it = req.find(name);
  return it == req.end() ? std::string() : std::string(it->value());
}
}  // namespace

LinkAcceptor::LinkAcceptor(Context& ctx, Connector& connector, PairingSessions& pairing,
                           Authenticated on_link)
    : ctx_(ctx), connector_(connector), pairing_(pairing), on_link_(std::move(on_link)) {}

bool LinkAcceptor::arrived_over(const PeerUpgrade& up, const std::string& transport_id) const {
  if (!up.transport.empty()) return up.transport == transport_id;
  auto t = ctx_.transport(transport_id);
  return t && !t.caps.provides_listener;
}

void LinkAcceptor::on_upgrade(std::unique_ptr<PeerUpgrade> up) {
  if (ctx_.stopping) return;
  if (up->request.find(peerwire::http::field::authorization) != up->request.end()) {
    // An older thrum sends its token in the clear; this one never accepts that.
    spdlog::warn("peer link refused reason=\"bearer token (older thrum)\" remote={}", up->remote);
    reject_upgrade(std::move(up), peerwire::http::status::unauthorized,
                   "this daemon no longer accepts bearer tokens: upgrade thrum on the other side, "
                   "then run 'thrum peer join --type repair <name>' there");
    return;
  }
  if (up->request.find(la::kLinkHeader) != up->request.end())
    accept_link(std::move(up));
  else
    accept_pairing(std::move(up));
}

void LinkAcceptor::accept_pairing(std::unique_ptr<PeerUpgrade> up) {
  const auto transport = pairing_.open_transport();
  const std::string refusal =
      pairing_.refuse_connection(transport && arrived_over(*up, *transport));
  if (!refusal.empty()) {
    spdlog::warn("peer link refused reason=\"no token; {}\" remote={}", refusal, up->remote);
    reject_upgrade(std::move(up), peerwire::http::status::unauthorized, refusal);
    return;
  }
  auto conn = std::make_shared<PairingSessions::Connection>();
  conn->joiner_cert = up->peer_cert_sha256;
  if (ctx_.binds_endpoints(*transport))
    conn->endpoints = endpoint_binding(native_fd(up->stream), /*initiator=*/false);
  PeerLink::Timing timing{ctx_.tc().ping_interval, ctx_.tc().dead_after};
  PeerLink::accept(std::move(up), timing, {},
                   [this, alive = alive_, conn](std::shared_ptr<PeerLink> link) {
                     if (!*alive) return;
                     // Nothing a joiner legitimately sends before pairing comes near this.
                     link->set_max_frame_bytes(kMaxPreAuthFrameBytes);
                     std::weak_ptr<PeerLink> wl = link;
                     link->set_handlers(
                         [this, alive, conn, wl](const std::string& method, const json& params,
                                                 rpc::Respond respond) {
                           if (!*alive) return;
                           pairing_.on_request(conn, wl.lock(), method, params, std::move(respond));
                         },
                         [this, alive, conn](const std::string& reason) {
                           if (*alive) pairing_.link_closed(conn, reason);
                         });
                   });
}

void LinkAcceptor::accept_link(std::unique_ptr<PeerUpgrade> up) {
  la::Transcript t;
  t.token_id = header(up->request, la::kTokenIdHeader);
  t.initiator_nonce = header(up->request, la::kNonceHeader);
  t.initiator_daemon_id = header(up->request, la::kDaemonIdHeader);
  if (header(up->request, la::kLinkHeader) != la::kVersion ||
      !is_hex(t.token_id, la::kTokenIdChars) || !is_hex(t.initiator_nonce, 64) ||
      !is_id_token(t.initiator_daemon_id, kMaxIdBytes)) {
    spdlog::warn("peer link refused reason=\"malformed link request\" remote={}", up->remote);
    reject_upgrade(std::move(up), peerwire::http::status::bad_request,
                   "malformed Thrum link request (both sides must run the same thrum version)");
    return;
  }
  auto* rec = ctx_.registry.find_by_token_id(t.token_id);
  if (!rec) {
    spdlog::warn("peer link refused reason=\"unknown token\" remote={}", up->remote);
    reject_upgrade(std::move(up), peerwire::http::status::unauthorized, "unknown peer token");
    return;
  }
  const std::string name = rec->name;
  // A token is only good on the transport it was paired over, never in the clear when that
  // transport runs over TLS, and only from the daemon it was paired with.
  std::string refusal;
  if (!arrived_over(*up, rec->transport))
    refusal = "peer \"" + name + "\" is paired over " + rec->transport + ", not this listener";
  else if (ctx_.needs_tls(rec->transport) && !up->tls)
    refusal = "peer \"" + name + "\" must connect over TLS";
  else if (up->tls && !rec->remote_cert_sha256.empty() &&
           !pairing::equal_ct(up->peer_cert_sha256, rec->remote_cert_sha256))
    refusal = "peer \"" + name + "\" presented a different TLS certificate (sha256 " +
              tls::short_fp(up->peer_cert_sha256) + "…, pinned " +
              tls::short_fp(rec->remote_cert_sha256) + "…)";
  else if (t.initiator_daemon_id != rec->daemon_id)
    refusal = "peer \"" + name + "\" connected as another daemon id than the one it paired with";
  if (!refusal.empty()) {
    spdlog::warn("peer link refused reason=\"{}\" remote={}", refusal, up->remote);
    reject_upgrade(std::move(up), peerwire::http::status::forbidden,
                   "refused: the connection does not match how this peer was paired");
    return;
  }
  const std::string endpoints =
      ctx_.binds_endpoints(rec->transport) ? endpoint_binding(native_fd(up->stream), false) : "";
  t.responder_nonce = pairing::generate_nonce();
  t.responder_daemon_id = ctx_.opts.daemon_id;
  t.transport = rec->transport;
  t.channel_binding =
      channel_binding(endpoints, up->peer_cert_sha256, connector_.own_fingerprint(rec->transport));
  const std::string expected = la::proof(rec->token, la::Role::kInitiator, t);
  HeaderFields headers = {{la::kNonceHeader, t.responder_nonce},
                          {la::kDaemonIdHeader, t.responder_daemon_id},
                          {la::kProofHeader, la::proof(rec->token, la::Role::kResponder, t)}};
  const std::string remote = up->remote;
  PeerLink::Timing timing{ctx_.tc().ping_interval, ctx_.tc().dead_after};
  PeerLink::accept(
      std::move(up), timing, std::move(headers),
      [this, alive = alive_, name, remote, expected](std::shared_ptr<PeerLink> link) {
        if (!*alive || !ctx_.registry.find(name)) {
          if (link) link->close("peer removed");
          return;
        }
        link->set_max_frame_bytes(kMaxPreAuthFrameBytes);
        std::weak_ptr<PeerLink> wl = link;
        auto deadline = ctx_.loop.run_after(ctx_.tc().dial_timeout, [wl, name] {
          if (auto l = wl.lock(); l && l->is_open()) {
            spdlog::warn("peer link refused peer={} reason=\"no link.auth in time\"", name);
            l->close("no link.auth in time");
          }
        });
        link->set_handlers(
            [this, alive, wl, name, remote, expected, deadline](
                const std::string& method, const json& params, rpc::Respond respond) {
              auto l = wl.lock();
              if (!*alive || !l) return;
              deadline->cancel();
              auto proof = method == "link.auth"
                               ? decode_link_auth(params)
                               : Decoded<std::string>(Refusal{"link.auth must come first"});
              if (!proof || !pairing::equal_ct(proof.value(), expected)) {
                spdlog::warn("peer link refused peer={} reason=\"{}\" remote={}", name,
                             proof ? "wrong proof" : proof.error(), remote);
                respond(rpc::Error{rpc::kHandlerError, "link authentication failed", nullptr});
                l->close("link authentication failed");
                return;
              }
              respond(json{{"ok", true}});
              l->set_max_frame_bytes(kMaxFrameBytes);
              on_link_(name, l, remote);
            },
            [deadline](const std::string&) { deadline->cancel(); });
      });
}

}  // namespace thrum::core::peers
