#pragma once
// Two paired daemons for the peer benchmarks (peer_bench.cpp, anchors/anchors_bench.cpp): temp
// repos with real daemons, paired over the local transport with the real CLI.

#include <chrono>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "support/helpers.hpp"
#include "support/process.hpp"
#include "support/rpc_socket.hpp"
#include "support/streaming_child.hpp"

namespace thrum::bench {

/// A temp repo named `name` (the peer name defaults to the dir name) with a running daemon.
class NamedRepo {
 public:
  explicit NamedRepo(const std::string& name) {
    std::string tmpl = (fs::temp_directory_path() / "thrum-bench-peers-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    base_ = tmpl;
    root_ = base_ / name;
    fs::create_directories(root_);
    must({"init"});
    must({"daemon", "start"});
  }
  ~NamedRepo() {
    test::run_thrum({"daemon", "stop"}, root_);
    std::error_code ec;
    if (!::getenv("THRUM_BENCH_KEEP")) fs::remove_all(base_, ec);
  }
  const fs::path& root() const { return root_; }
  fs::path var() const { return root_ / ".thrum" / "var"; }
  fs::path sock() const { return var() / "thrum.sock"; }
  test::RunResult must(const std::vector<std::string>& args,
                       const std::map<std::string, std::string>& env = {}) const {
    auto r = test::run_thrum(args, root_, env);
    if (r.exit_code != 0) {
      std::string a;
      for (const auto& x : args) a += " " + x;
      throw std::runtime_error("thrum" + a + " failed: " + r.out + r.err);
    }
    return r;
  }
  int pid() const {
    auto doc = test::parse_json(test::slurp(var() / "thrum.pid"));
    return doc.is_object() ? doc.value("pid", -1) : -1;
  }

 private:
  fs::path base_, root_;
};

inline int64_t total_for(test::UnixRpcClient& c, const std::string& agent) {
  auto r =
      c.call("message.list",
             {{"caller_agent_id", agent}, {"limit", 1}, {"unread", false}, {"mark_read", false}});
  if (!r.contains("result")) throw std::runtime_error("message.list failed: " + r.dump());
  return r["result"].value("total", int64_t{-1});
}

inline std::string peer_state(const NamedRepo& r, const std::string& peer) {
  auto doc = test::parse_json(test::run_thrum({"--json", "peer", "status"}, r.root()).out);
  if (doc.is_array())
    for (const auto& p : doc)
      if (p.value("name", "") == peer) return p.value("state", "");
  return "";
}

inline void pair(NamedRepo& listener, NamedRepo& dialer) {
  auto add = test::start_peer_add(listener.root(), "local");
  auto code = test::wait_for_peercode(*add);
  if (!code) throw std::runtime_error("peer add printed no peercode: " + add->out() + add->err());
  dialer.must({"peer", "join", "--type", "local", "--peercode", *code, "--repo-path",
               listener.root().string()});
  auto r = add->wait(std::chrono::seconds(30));
  if (r.exit_code != 0) throw std::runtime_error("peer add failed: " + r.out + r.err);
}

/// main's queue for api (peer.list "queued": outbox rows not yet acknowledged by api).
inline int64_t queued_for_api(test::UnixRpcClient& main_client) {
  auto r = main_client.call("peer.list", json::object());
  if (!r.contains("result")) throw std::runtime_error("peer.list failed: " + r.dump());
  for (const auto& p : r["result"]["peers"])
    if (p.value("name", "") == "api") return p.value("queued", int64_t{-1});
  throw std::runtime_error("peer api is not in main's peer.list");
}

}  // namespace thrum::bench
