#include "peers/connector.hpp"

#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <spdlog/spdlog.h>

#include "peers/channel_binding.hpp"
#include "peers/context.hpp"
#include "peers/fields.hpp"
#include "peers/link_auth.hpp"
#include "peers/peer_link.hpp"
#include "peers/protocol.hpp"
#include "peers/tls.hpp"
#include "thrum/core/pairing.hpp"

namespace thrum::core::peers {

namespace asio = boost::asio;
namespace la = link_auth;

namespace {

std::string header(const HeaderFields& fields, const char* name) {
  for (const auto& [k, v] : fields)
    if (strcasecmp(k.c_str(), name) == 0) return v;
  return "";
}

sdk::PeerRecordView view_of(const PeerRecord& r) {
  sdk::PeerRecordView v;
  v.name = r.name;
  v.address = parse_endpoint(r.address).value_or(sdk::Endpoint{});
  v.transport = r.transport;
  // A listener-role record dials back only for control calls (address change, reconcile); for
  // transports that resolve through the other repo, its path is where its current port is.
  v.repo_path = r.repo_path.empty() ? r.remote_repo_path : r.repo_path;
  return v;
}

}  // namespace

struct Connector::Impl : std::enable_shared_from_this<Connector::Impl> {
  explicit Impl(Context& c) : ctx(c), pool(2), tls(c.opts.paths.tls, "thrum-" + c.opts.daemon_id) {}

  Context& ctx;
  asio::thread_pool pool;  // resolve + dial: plugin calls that may block
  tls::LazyIdentity tls;
  bool stopped = false;

  PeerLink::Timing link_timing() const { return {ctx.tc().ping_interval, ctx.tc().dead_after}; }

  std::string own_fingerprint(const std::string& transport_id) {
    return ctx.needs_tls(transport_id) ? tls.fingerprint() : "";
  }

  /// Resolve (unless `ep` is given) and dial on the pool; `done(fd, error, target)` on the loop.
  void dial(Transport t, std::optional<sdk::Endpoint> ep,
            std::shared_ptr<const sdk::PeerRecordView> view,
            std::function<void(int fd, std::string error, sdk::Endpoint target)> done) {
    if (stopped) {
      done(-1, "the daemon is stopping", {});
      return;
    }
    const auto timeout = ctx.tc().dial_timeout;
    asio::post(pool, [weak = weak_from_this(), t, ep, view, timeout, done]() mutable {
      int fd = -1;
      std::string error;
      sdk::Endpoint target;
      if (ep) {
        target = *ep;
      } else {
        auto r = view ? t->resolve(*view)
                      : sdk::Result<sdk::Endpoint>(
                            sdk::Status::error(sdk::Errc::kInvalidArgument, "nothing to resolve"));
        if (!r)
          error = r.status().message;
        else
          target = r.value();
      }
      if (error.empty()) {
        auto d = t->dial(target, timeout);
        if (d)
          fd = d.value();
        else
          error = d.status().message;
      }
      auto self = weak.lock();
      if (!self) {
        if (fd >= 0) ::close(fd);
        return;
      }
      self->ctx.loop.post([weak, fd, error, done, target]() mutable {
        if (!weak.lock()) {
          if (fd >= 0) ::close(fd);
          return;
        }
        done(fd, error, target);
      });
    });
  }

  /// Wraps a dialed fd: in TLS when the transport asks for it, checking the other side's
  /// certificate against `pin` when one is given. `done(stream, fingerprint, error)`.
  void open_stream(
      const std::string& transport_id, int fd, const std::string& pin,
      std::function<void(std::optional<peerwire::AnyStream>, std::string fp, std::string error)>
          done) {
    peerwire::Socket sock(ctx.ioc);
    try {
      sock = adopt_fd(ctx.ioc, fd);
    } catch (const std::exception& e) {
      done(std::nullopt, "", e.what());
      return;
    }
    if (!ctx.needs_tls(transport_id)) {
      done(peerwire::AnyStream(std::move(sock)), "", "");
      return;
    }
    std::weak_ptr<Impl> weak = shared_from_this();
    tls::handshake(std::move(sock), tls.client(), false, ctx.tc().dial_timeout,
                   [weak, pin, done](std::unique_ptr<peerwire::TlsStream> s, std::string fp,
                                     std::string error) {
                     if (!weak.lock()) return;
                     if (!s) {
                       done(std::nullopt, "", error);
                       return;
                     }
                     if (!pin.empty() && !pairing::equal_ct(fp, pin)) {
                       done(std::nullopt, fp,
                            "the peer presented a different TLS certificate (sha256 " +
                                tls::short_fp(fp) + "…, pinned " + tls::short_fp(pin) +
                                "…); refusing the link");
                       return;
                     }
                     done(peerwire::AnyStream(std::move(*s)), fp, "");
                   });
  }

  void open_link(const PeerRecord& rec, int fd, const sdk::Endpoint& target, Opened done) {
    const std::string endpoints =
        ctx.binds_endpoints(rec.transport) ? endpoint_binding(fd, /*initiator=*/true) : "";
    const std::string token = rec.token, peer_id = rec.daemon_id, tid = rec.transport,
                      name = rec.name;
    std::weak_ptr<Impl> weak = shared_from_this();
    open_stream(
        tid, fd, rec.remote_cert_sha256,
        [weak, endpoints, token, peer_id, tid, name, target, done](
            std::optional<peerwire::AnyStream> stream, std::string cert, std::string error) {
          auto self = weak.lock();
          if (!self) return;
          if (!stream) {
            if (!cert.empty()) spdlog::warn("peer link refused peer={} reason=\"{}\"", name, error);
            done({}, error, 0, target);
            return;
          }
          la::Transcript t;
          t.initiator_nonce = pairing::generate_nonce();
          t.token_id = la::token_id(token);
          t.initiator_daemon_id = self->ctx.opts.daemon_id;
          t.responder_daemon_id = peer_id;
          t.transport = tid;
          t.channel_binding = channel_binding(endpoints, self->own_fingerprint(tid), cert);
          HeaderFields headers = {{la::kLinkHeader, la::kVersion},
                                  {la::kTokenIdHeader, t.token_id},
                                  {la::kNonceHeader, t.initiator_nonce},
                                  {la::kDaemonIdHeader, t.initiator_daemon_id}};
          PeerLink::connect(
              std::move(*stream), endpoint_text(target), std::move(headers), self->link_timing(),
              [weak, t, token, name, target, done](std::shared_ptr<PeerLink> link, std::string err,
                                                   int status, HeaderFields got) mutable {
                auto me = weak.lock();
                if (!me || !link) {
                  if (link) link->close("daemon stopping");
                  done({}, err, status, target);
                  return;
                }
                t.responder_nonce = header(got, la::kNonceHeader);
                const std::string their_id = header(got, la::kDaemonIdHeader);
                const std::string their_proof = header(got, la::kProofHeader);
                std::string refusal;
                if (!is_hex(t.responder_nonce, 64) || !is_hex(their_proof, 64))
                  refusal =
                      "the other side did not authenticate (not a Thrum daemon of this version?); "
                      "refusing the link";
                else if (their_id != t.responder_daemon_id)
                  refusal =
                      "the other side is another daemon than the one we paired with (its daemon "
                      "id changed?); re-pair with 'thrum peer add' on " +
                      name + " and 'thrum peer join' here";
                else if (!pairing::equal_ct(their_proof, la::proof(token, la::Role::kResponder, t)))
                  refusal = "the other side could not prove it holds our token; refusing the link";
                if (!refusal.empty()) {
                  spdlog::warn("peer link refused peer={} reason=\"{}\"; nothing was sent", name,
                               refusal);
                  link->close(refusal);
                  done({}, refusal, 0, target);
                  return;
                }
                done(OutgoingLink{link, la::proof(token, la::Role::kInitiator, t)}, "", 101,
                     target);
              });
        });
  }
};

Connector::Connector(Context& ctx) : impl_(std::make_shared<Impl>(ctx)) {}

Connector::~Connector() {
  shutdown();
}

void Connector::shutdown() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->pool.stop();
  impl_->pool.join();
}

tls::LazyIdentity& Connector::tls() {
  return impl_->tls;
}

std::string Connector::own_fingerprint(const std::string& transport_id) {
  return impl_->own_fingerprint(transport_id);
}

void Connector::send_link_auth(const OutgoingLink& out) {
  std::weak_ptr<Link> wl = out.link;
  out.link->call("link.auth", {{"proof", out.auth_proof}}, [wl](rpc::Outcome o) {
    if (o.ok()) return;
    if (auto l = wl.lock()) l->close("link.auth refused: " + o.error().message);
  });
}

void Connector::open(const PeerRecord& rec, Opened done) {
  std::string why;
  auto t = impl_->ctx.transport(rec.transport, why);
  if (!t) {
    done({}, "transport \"" + rec.transport + "\" is not available: " + why, 0, {});
    return;
  }
  const std::string name = rec.name;
  std::weak_ptr<Impl> weak = impl_;
  impl_->dial(t, std::nullopt, std::make_shared<const sdk::PeerRecordView>(view_of(rec)),
              [weak, name, done](int fd, std::string error, sdk::Endpoint target) {
                auto self = weak.lock();
                if (!self) return;
                auto* r = self->ctx.registry.find(name);
                if (fd < 0 || !r) {
                  if (fd >= 0) ::close(fd);
                  done({}, r ? error : "peer removed", 0, target);
                  return;
                }
                self->open_link(*r, fd, target, done);
              });
}

void Connector::open_for_pairing(const std::string& transport_id, const sdk::Endpoint& ep,
                                 PairingOpened done) {
  std::string why;
  auto t = impl_->ctx.transport(transport_id, why);
  if (!t) {
    done({}, "transport \"" + transport_id + "\" is not available: " + why, 0);
    return;
  }
  std::weak_ptr<Impl> weak = impl_;
  impl_->dial(
      t, ep, nullptr, [weak, transport_id, ep, done](int fd, std::string error, sdk::Endpoint) {
        auto self = weak.lock();
        if (!self) return;
        if (fd < 0) {
          done({}, "cannot reach " + endpoint_text(ep) + ": " + error, 0);
          return;
        }
        const std::string endpoints =
            self->ctx.binds_endpoints(transport_id) ? endpoint_binding(fd, /*initiator=*/true) : "";
        self->open_stream(
            transport_id, fd, "",
            [weak, ep, endpoints, done](std::optional<peerwire::AnyStream> stream, std::string cert,
                                        std::string err) {
              auto me = weak.lock();
              if (!me) return;
              if (!stream) {
                done({}, "cannot pair with " + endpoint_text(ep) + ": " + err, 0);
                return;
              }
              PeerLink::connect(
                  std::move(*stream), endpoint_text(ep), {}, me->link_timing(),
                  [ep, cert, endpoints, done](std::shared_ptr<PeerLink> link, std::string e,
                                              int status, HeaderFields) {
                    if (!link) {
                      // A 401 body is the listener's reason (expired, locked
                      // out, no session).
                      done({},
                           status == 401 ? e : "cannot pair with " + endpoint_text(ep) + ": " + e,
                           status);
                      return;
                    }
                    link->set_max_frame_bytes(kMaxPreAuthFrameBytes);
                    done(PairingConnection{link, cert, endpoints}, "", 101);
                  });
            });
      });
}

void Connector::control_call(const PeerRecord& rec, const std::string& method,
                             const nlohmann::json& params, ControlDone done) {
  open(rec, [method, params, done](OutgoingLink out, std::string e, int status, sdk::Endpoint) {
    if (!out.link) {
      done(rpc::Error{rpc::kHandlerError, e, nullptr}, status == 401 || status == 403, status);
      return;
    }
    auto link = out.link;
    link->set_handlers(
        [](const std::string&, const nlohmann::json&, rpc::Respond answer) {
          answer(rpc::Error{rpc::kMethodNotFound, "control link", nullptr});
        },
        [](const std::string&) {});
    send_link_auth(out);
    link->call(method, params, [link, done](rpc::Outcome o) {
      const bool closed_early = !o.ok() && o.error().code == Link::kClosedCode;
      link->close("control call done");
      done(std::move(o), !closed_early, 101);
    });
  });
}

}  // namespace thrum::core::peers
