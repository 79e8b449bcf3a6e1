#pragma once

// Shared by the e2e tests of transports that are not shipped with Thrum (issue 12): the uds
// example built against the installed SDK and keyed_tcp, the test suite's own plugin. Both
// daemons run under one operator policy that names the plugin directories (the shipped local
// plugin's, so that `peer add` without --type lists more than one transport, and the third
// party's) and enables the transport with its options. Everything else is MainAndApi: "main"
// joins "api", which ran `peer add`.

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "e2e/peer_env.hpp"

namespace thrum::test {

class ThirdPartyPeers : public MainAndApi {
 protected:
  /// The `transports:` entries of the policy (YAML lines under `transports:`), and the plugin
  /// directory of the transport under test.
  virtual std::string policy_transports() const = 0;
  virtual std::string plugin_dir() const = 0;

  void SetUp() override {
    policy_ = main_.root().parent_path() / "transports.yaml";
    std::ofstream(policy_) << "plugin_dirs: [" << plugin_dir() << ", " << THRUM_SHIPPED_PLUGIN_DIR
                           << "]\ntransports:\n  local: { enabled: true }\n"
                           << policy_transports();
    ASSERT_NO_FATAL_FAILURE(start(main_, env()));
    ASSERT_NO_FATAL_FAILURE(start(api_, env()));
    ASSERT_NO_FATAL_FAILURE(main_.register_agent("coordinator_main", "coordinator"));
    ASSERT_NO_FATAL_FAILURE(api_.register_agent("reviewer", "reviewer"));
  }

  /// The daemons' and CLI's environment: the policy, plus `extra`.
  std::map<std::string, std::string> env(std::map<std::string, std::string> extra = {}) const {
    extra["THRUM_POLICY"] = policy_.string();
    return extra;
  }

  /// `peer add --type <type>` in api (with `add_env`), `peer join --type <type> <join_args>` in
  /// main with the peercode it printed; both must succeed. Then main routes to api's reviewer.
  void pair_over(const std::string& type, const std::map<std::string, std::string>& add_env,
                 const std::vector<std::string>& join_args, Pairing* out = nullptr) {
    auto add = start_peer_add(api_.root(), type, add_env);
    auto code = wait_for_peercode(*add, 30s);
    ASSERT_TRUE(code.has_value()) << "peer add printed no peercode:\n"
                                  << add->out() << add->err() << api_.daemon_log();
    remember_secret(code_of(*code));
    std::vector<std::string> args{"peer", "join", "--type", type, "--peercode", *code};
    args.insert(args.end(), join_args.begin(), join_args.end());
    auto join = main_.thrum(args);
    auto added = add->wait(30s);
    remember_tokens(api_);
    remember_tokens(main_);
    ASSERT_EQ(join.exit_code, 0) << "peer join:\n"
                                 << join.out << join.err << "\npeer add:\n"
                                 << added.out << added.err << main_.daemon_log();
    ASSERT_EQ(added.exit_code, 0) << "peer add:\n" << added.out << added.err;
    auto cfg = main_.thrum({"peer", "configure", "api", "add-agent", "reviewer"});
    ASSERT_EQ(cfg.exit_code, 0) << cfg.out << cfg.err;
    ASSERT_TRUE(wait_peer_state(main_, "api", "connected")) << peer_state(main_, "api");
    if (out) *out = Pairing{*code, added, join};
  }

  /// main -> api's reviewer, then reviewer's reply back to main's coordinator: both directions
  /// over the link. `tag` makes the bodies unique per call.
  void exchange_both_ways(const std::string& tag) {
    const std::string there = "to api " + tag, back = "to main " + tag;
    auto sent = j(main_, "coordinator_main", {"send", there, "--to", "@api:reviewer"});
    const std::string original = sent.value("message_id", "");
    ASSERT_FALSE(original.empty()) << sent.dump();
    json got;
    ASSERT_TRUE(wait_until(
        [&] {
          auto box = j(api_, "reviewer", {"inbox", "--unread", "--limit", "1000"});
          for (const auto& m : box["messages"])
            if (m.value("body", "") == there) got = m;
          return got.is_object();
        },
        30s))
        << peer_state(main_, "api") << "\n"
        << main_.daemon_log();
    EXPECT_EQ(got["author"], "main:coordinator_main");
    auto reply =
        api_.thrum({"reply", got["message_id"].get<std::string>(), back}, TempRepo::as("reviewer"));
    ASSERT_EQ(reply.exit_code, 0) << reply.out << reply.err;
    json seen;
    ASSERT_TRUE(wait_until(
        [&] {
          auto box = j(main_, "coordinator_main", {"inbox", "--unread", "--limit", "1000"});
          for (const auto& m : box["messages"])
            if (m.value("body", "") == back) seen = m;
          return seen.is_object();
        },
        30s))
        << peer_state(api_, "main") << "\n"
        << api_.daemon_log();
    EXPECT_EQ(seen["author"], "api:reviewer");
    EXPECT_EQ(seen["reply_to"], original);
  }

  std::filesystem::path policy_;
};

}  // namespace thrum::test
