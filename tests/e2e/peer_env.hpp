#pragma once

// Shared by the peer end-to-end tests: two (or more) real repos with real daemons, paired over
// the local transport through the real CLI.
//
// Timing: every daemon here is started with THRUM_TIME_SCALE=0.05 (SPEC §7.4, for tests only),
// which scales all peer timers: ping 5 s -> 250 ms, link dead after 15 s -> 750 ms, backoff
// 250 ms..30 s -> 12 ms..1.5 s, quarantine probe 60 s -> 3 s, pairing expiry 5 min -> 15 s.
// The ws.port poll (500 ms) is not scaled. Tests poll with wait_until; no sleep is an assertion.
//
// Secrets: every fixture remembers the pairing codes it saw (right or wrong) and the tokens in
// every peers.json, and TearDown stops the daemons and checks that none of them appears in any
// daemon.log (SPEC §1: "daemon.log never contains codes, tokens or auth keys").

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/helpers.hpp"
#include "support/netns.hpp"
#include "support/process.hpp"
#include "support/streaming_child.hpp"
#include "support/temp_repo.hpp"

namespace thrum::test {

using json = nlohmann::json;
using namespace std::chrono_literals;

/// See the file comment: all peer timers ×0.05.
inline constexpr const char* kTimeScale = "0.05";

inline std::string join_args(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

/// A loopback TCP port that nothing listens on right now.
inline unsigned short free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

/// Merges `patch` into the repo's config.json (the daemon reads it at start).
inline void patch_config(const TempRepo& r, const json& patch) {
  const std::filesystem::path p = r.root() / ".thrum" / "config.json";
  json cfg = parse_json(slurp(p));
  if (!cfg.is_object()) cfg = json::object();
  cfg.merge_patch(patch);
  std::ofstream(p) << cfg.dump(2) << "\n";
}

class PeerTest : public ::testing::Test {
 protected:
  /// Environment for `daemon start`: the test time scale plus `extra`.
  static std::map<std::string, std::string> daemon_env(
      std::map<std::string, std::string> extra = {}) {
    extra.emplace("THRUM_TIME_SCALE", kTimeScale);
    return extra;
  }

  void start(TempRepo& r, std::map<std::string, std::string> extra = {}) {
    watch(r);
    r.start_daemon(daemon_env(std::move(extra)));
  }

  /// `daemon start` for `r` inside network namespace `where` (another "machine").
  void start_in(const InNetns& where, TempRepo& r, std::map<std::string, std::string> extra = {}) {
    watch(r);
    auto res = run_thrum(where, {"daemon", "start"}, r.root(), daemon_env(std::move(extra)));
    ASSERT_EQ(res.exit_code, 0) << res.out << res.err << "\nlog:\n" << r.daemon_log();
  }

  /// Whose daemon.log TearDown checks.
  void watch(TempRepo& r) {
    for (auto* x : watched_)
      if (x == &r) return;
    watched_.push_back(&r);
  }

  void remember_secret(const std::string& s) {
    if (s.size() >= 8) secrets_.insert(s);
  }
  /// The code of a peercode `name:ip:port:code`.
  static std::string code_of(const std::string& peercode) {
    auto c = peercode.rfind(':');
    return c == std::string::npos ? peercode : peercode.substr(c + 1);
  }
  /// Every token in `r`'s peers.json.
  void remember_tokens(const TempRepo& r) {
    auto doc = parse_json(slurp(r.var() / "peers.json"));
    if (!doc.is_object() || !doc.contains("peers")) return;
    for (const auto& p : doc["peers"])
      if (p.contains("token") && p["token"].is_string())
        remember_secret(p["token"].get<std::string>());
  }

  /// `thrum --json args...` in `r` as `agent` (empty: no THRUM_NAME); fails unless exit 0 + JSON.
  json j(const TempRepo& r, const std::string& agent, std::vector<std::string> args) {
    args.insert(args.begin(), "--json");
    auto res =
        r.thrum(args, agent.empty() ? std::map<std::string, std::string>{} : TempRepo::as(agent));
    EXPECT_EQ(res.exit_code, 0) << "thrum " << join_args(args) << " in " << r.root().filename()
                                << ":\n"
                                << res.out << res.err;
    auto doc = parse_json(res.out);
    EXPECT_FALSE(doc.is_discarded()) << res.out;
    return doc.is_discarded() ? json::object() : doc;
  }

  /// `peer status --json`'s record for `peer` in `r` (null when absent or the call failed).
  json peer_record(const TempRepo& r, const std::string& peer) {
    auto res = r.thrum({"--json", "peer", "status"});
    auto doc = parse_json(res.out);
    if (res.exit_code != 0 || !doc.is_array()) return nullptr;
    for (const auto& p : doc)
      if (p.value("name", "") == peer) return p;
    return nullptr;
  }
  /// Where `r` dials or was last reached at `peer` ("" when unknown).
  std::string address_of(const TempRepo& r, const std::string& peer) {
    auto rec = peer_record(r, peer);
    return rec.is_object() ? rec.value("address", "") : "";
  }

  /// Polls `peer status --json` in `r` until `peer`'s state is `state`.
  bool wait_peer_state(const TempRepo& r, const std::string& peer, const std::string& state,
                       std::chrono::milliseconds timeout = 20s) {
    return wait_until(
        [&] {
          auto rec = peer_record(r, peer);
          return rec.is_object() && rec.value("state", "") == state;
        },
        timeout);
  }
  std::string peer_state(const TempRepo& r, const std::string& peer) {
    auto rec = peer_record(r, peer);
    return rec.is_object() ? rec.dump() : "(no record)";
  }

  /// Output of both sides of a pairing.
  struct Pairing {
    std::string peercode;
    RunResult add;   ///< the listener's `peer add`
    RunResult join;  ///< the dialer's `peer join`
  };

  /// `peer add --type local` in `listener`, `peer join` with its peercode in `dialer`. Both
  /// must succeed. Use as ASSERT_NO_FATAL_FAILURE(pair(a, b, &out)).
  void pair(TempRepo& listener, TempRepo& dialer, Pairing* out = nullptr) {
    watch(listener);
    watch(dialer);
    auto add = start_peer_add(listener.root(), "local");
    auto code = wait_for_peercode(*add);
    ASSERT_TRUE(code.has_value()) << "peer add printed no peercode:\n" << add->out() << add->err();
    remember_secret(code_of(*code));
    auto join = dialer.thrum({"peer", "join", "--type", "local", "--peercode", *code, "--repo-path",
                              listener.root().string()});
    auto added = add->wait(30s);
    const size_t known = secrets_.size();
    remember_tokens(listener);
    remember_tokens(dialer);
    // Both sides hold the same 32-byte token: exactly one new secret for the log check.
    EXPECT_EQ(secrets_.size(), known + 1)
        << "peers.json on both sides should hold one shared token";
    ASSERT_EQ(join.exit_code, 0) << "peer join:\n"
                                 << join.out << join.err << "\npeer add:\n"
                                 << added.out << added.err;
    ASSERT_EQ(added.exit_code, 0) << "peer add:\n" << added.out << added.err;
    if (out) *out = Pairing{*code, added, join};
  }

  /// The listener's peer name for a repo dir is the dir name (SPEC §1 peers.name default).
  static std::string name_of(const TempRepo& r) { return r.root().filename().string(); }

  void TearDown() override {
    for (auto* r : watched_) remember_tokens(*r);
    // Stop first so that everything the daemons will ever log is on disk.
    for (auto* r : watched_) {
      int pid = r->daemon_pid();
      if (pid > 0 && process_alive(pid)) r->thrum({"daemon", "stop"});
    }
    for (auto* r : watched_) {
      const std::string log = r->daemon_log();
      for (const auto& s : secrets_)
        EXPECT_EQ(log.find(s), std::string::npos)
            << "daemon.log of " << r->root().filename() << " contains a pairing code or token ("
            << s.substr(0, 4) << "…, " << s.size() << " chars)";
    }
  }

  std::vector<TempRepo*> watched_;
  std::set<std::string> secrets_;
};

/// The common setup: repo "main" (coordinator_main) joins repo "api" (reviewer), which ran
/// `peer add`. main's proxy for reviewer is `api:reviewer`.
class MainAndApi : public PeerTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(start(main_));
    ASSERT_NO_FATAL_FAILURE(start(api_));
    ASSERT_NO_FATAL_FAILURE(main_.register_agent("coordinator_main", "coordinator"));
    ASSERT_NO_FATAL_FAILURE(api_.register_agent("reviewer", "reviewer"));
  }
  void pair_and_configure(Pairing* out = nullptr) {
    ASSERT_NO_FATAL_FAILURE(pair(api_, main_, out));
    auto cfg = main_.thrum({"peer", "configure", "api", "add-agent", "reviewer"});
    ASSERT_EQ(cfg.exit_code, 0) << cfg.out << cfg.err;
    ASSERT_NE(cfg.out.find("✓ api: add-agent reviewer"), std::string::npos) << cfg.out;
    ASSERT_TRUE(wait_peer_state(main_, "api", "connected")) << peer_state(main_, "api");
  }
  /// Sends as coordinator_main to @api:reviewer; returns the message id (main's).
  std::string send_to_reviewer(const std::string& body) {
    auto r = j(main_, "coordinator_main", {"send", body, "--to", "@api:reviewer"});
    return r.value("message_id", "");
  }
  /// reviewer's inbox without marking anything read.
  json reviewer_unread() { return j(api_, "reviewer", {"inbox", "--unread", "--limit", "1000"}); }
  /// Polls until reviewer has `n` messages delivered (counting read ones).
  bool wait_reviewer_total(int64_t n, std::chrono::milliseconds timeout = 30s) {
    return wait_until(
        [&] {
          auto res =
              api_.thrum({"--json", "inbox", "--unread", "--limit", "1"}, TempRepo::as("reviewer"));
          auto doc = parse_json(res.out);
          return doc.is_object() && doc.value("total", int64_t{-1}) >= n;
        },
        timeout);
  }
  /// State of `recipient` for `message_id` in coordinator_main's `sent --json`.
  std::string sent_state(const std::string& message_id,
                         const std::string& recipient = "api:reviewer") {
    auto res = main_.thrum({"--json", "sent", "--limit", "1000"}, TempRepo::as("coordinator_main"));
    auto doc = parse_json(res.out);
    if (!doc.is_object()) return "(sent failed: " + res.err + ")";
    for (const auto& m : doc["messages"])
      if (m.value("message_id", "") == message_id)
        for (const auto& r : m["recipients"])
          if (r.value("agent_id", "") == recipient) return r.value("state", "");
    return "(not found)";
  }

  TempRepo main_{"main"};
  TempRepo api_{"api"};
};

}  // namespace thrum::test
