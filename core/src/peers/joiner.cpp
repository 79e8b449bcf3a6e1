#include "peers/joiner.hpp"

#include <spdlog/spdlog.h>

#include "peers/context.hpp"
#include "peers/pairing_record.hpp"
#include "peers/protocol.hpp"
#include "thrum/common/daemon_registry.hpp"
#include "thrum/common/ids.hpp"
#include "thrum/common/repo.hpp"
#include "thrum/core/pairing.hpp"

namespace thrum::core::peers {

using json = nlohmann::json;

namespace {

/// The repo of this user's running daemon `daemon_id` (from the daemon registry, `thrum daemon
/// list`), or "" when none of them is it (another user's, another machine's, not registered).
std::string repo_of_daemon(const std::string& daemon_id) {
  try {
    for (const auto& e : DaemonRegistry().list())
      if (recorded_daemon_id(e.repo_path) == daemon_id) return e.repo_path;
  } catch (const std::exception&) {
    // Only an error message is at stake: without the registry it names the daemon ids alone.
  }
  return "";
}

struct Attempt {
  Context& ctx;
  std::shared_ptr<Link> link;
  JoinRequest req;
  std::string listener_cert, endpoints, nonce_j;
  pairing::Transcript tr;
  std::function<std::string(const PeerRecord&)> store;
  rpc::Respond done;

  void refuse(const std::string& why_log, const std::string& why_user) {
    spdlog::error("pairing aborted reason=\"{}\" address={}", why_log, endpoint_text(req.listener));
    link->close(why_log);
    done(rpc::Error{rpc::kHandlerError, why_user, nullptr});
  }
};

void on_proof_answer(const std::shared_ptr<Attempt>& a, rpc::Outcome o) {
  if (!o.ok()) {
    a->link->close("pairing refused");
    a->done(o.error());
    return;
  }
  auto res = decode_pair_proof_answer(o.result());
  if (!res) {
    a->refuse(
        "malformed pair.proof answer: " + res.error(),
        "the other side's answer is not a Thrum pairing answer (" + res.error() + "); not paired");
    return;
  }
  if (!pairing::equal_ct(res.value().proof, pairing::proof(a->req.code, "listener", a->tr))) {
    a->refuse("listener proof mismatch",
              "the other side could not prove it holds the pairing code; not paired");
    return;
  }
  const Identity& id = res.value().identity;
  PeerRecord r;
  r.daemon_id = a->tr.listener_daemon_id;
  if (auto e = settle_pairing_record(a->ctx.registry, r, id.name, a->req.prefix); !e.empty()) {
    a->refuse("pairing record refused: " + e, e + "; not paired");
    return;
  }
  r.address = endpoint_text(a->req.listener);
  r.token = res.value().token;
  r.transport = a->req.transport;
  r.role = "dialer";
  r.repo_path = a->req.repo_path;
  r.paired_at = now_rfc3339();
  r.last_sync = r.paired_at;
  r.remote_repo_name = id.repo_name;
  r.remote_hostname = id.hostname;
  r.remote_repo_path = id.repo_path;
  r.remote_git_origin_url = id.git_origin_url;
  r.remote_cert_sha256 = a->tr.listener_cert_sha256;
  if (auto error = a->store(r); !error.empty()) {
    a->link->close("save failed");
    a->done(rpc::Error{rpc::kHandlerError, "could not save peers.json: " + error, nullptr});
    return;
  }
  spdlog::info("paired peer={} transport={} role=dialer address={}", r.name, r.transport,
               r.address);
  a->link->call("pair.confirm", json::object(), [a, r](rpc::Outcome o3) {
    a->link->close("pairing complete");
    if (!o3.ok()) {
      a->done(rpc::Error{rpc::kHandlerError,
                         "pairing not confirmed by the other side: " + o3.error().message,
                         nullptr});
      return;
    }
    a->done(json{{"status", "paired"},
                 {"peer_name", r.name},
                 {"peer_address", r.address},
                 {"proxy_prefix", r.proxy_prefix}});
  });
}

void on_hello_answer(const std::shared_ptr<Attempt>& a, rpc::Outcome o) {
  if (!o.ok()) {
    a->link->close("pairing refused");
    a->done(o.error());
    return;
  }
  auto hello = decode_pair_hello_answer(o.result());
  if (!hello) {
    a->refuse("malformed pair.hello answer: " + hello.error(),
              "the other side's answer is not a Thrum pairing answer (" + hello.error() +
                  "); not paired");
    return;
  }
  if (!a->req.expected_daemon_id.empty() && hello.value().daemon_id != a->req.expected_daemon_id) {
    // Checked before our proof goes out and long before a token exists: nothing is stored.
    const std::string printer = repo_of_daemon(hello.value().daemon_id);
    a->refuse(
        "the listener is not the daemon of --repo-path",
        "the peercode from \"" + a->req.peercode_name + "\" (" + endpoint_text(a->req.listener) +
            ") was not printed by the daemon of --repo-path " + a->req.repo_path +
            (printer.empty() ? "" : " but by the daemon of " + printer) +
            " (that repo's daemon is " + a->req.expected_daemon_id + ", the peercode's daemon is " +
            hello.value().daemon_id + "); run 'thrum peer join' " +
            (printer.empty() ? "with the --repo-path printed beside the peercode"
                             : "with --repo-path " + printer) +
            ". Nothing was stored.");
    return;
  }
  {
    // A --prefix another peer uses is refused before the code is proven and the token minted.
    PeerRecord probe;
    probe.daemon_id = hello.value().daemon_id;
    if (auto e = settle_pairing_record(a->ctx.registry, probe, "", a->req.prefix); !e.empty()) {
      a->refuse("pairing record refused: " + e, e + "; not paired");
      return;
    }
  }
  a->tr = pairing::Transcript{hello.value().nonce,   a->nonce_j,       hello.value().daemon_id,
                              a->ctx.opts.daemon_id, a->listener_cert, a->req.our_cert,
                              a->req.transport,      a->endpoints};
  json params = {{"proof", pairing::proof(a->req.code, "joiner", a->tr)},
                 {"identity", a->ctx.identity(a->req.transport)}};
  a->link->call("pair.proof", params, [a](rpc::Outcome o2) { on_proof_answer(a, std::move(o2)); });
}

}  // namespace

void join_over(Context& ctx, PairingConnection conn, JoinRequest req,
               std::function<std::string(const PeerRecord&)> store, rpc::Respond done) {
  auto a = std::make_shared<Attempt>(Attempt{ctx,
                                             conn.link,
                                             std::move(req),
                                             conn.listener_cert,
                                             conn.endpoints,
                                             pairing::generate_nonce(),
                                             {},
                                             std::move(store),
                                             std::move(done)});
  a->link->set_handlers(
      [](const std::string&, const json&, rpc::Respond r) {
        r(rpc::Error{rpc::kMethodNotFound, "not accepted while pairing", nullptr});
      },
      [](const std::string&) {});
  a->link->call(
      "pair.hello",
      {{"daemon_id", ctx.opts.daemon_id}, {"nonce", a->nonce_j}, {"transport", a->req.transport}},
      [a](rpc::Outcome o) { on_hello_answer(a, std::move(o)); });
}

}  // namespace thrum::core::peers
