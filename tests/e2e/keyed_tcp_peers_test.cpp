// keyed_tcp (tests/e2e/plugins/keyed_tcp), a transport of the test suite's own that no Thrum
// source names, through the real CLI and daemons: its credential is asked for by the name and
// variable its profile declares, given with the variable on one side and --auth-key on the
// other, kept for restarts and never logged; the daemons pair and message both ways over its own
// listener; and when the listener comes back on another port (it records the move where its
// resolve() looks, poll_resolve) the dialer finds it again although announced moves are refused.
#include <regex>

#include "e2e/third_party_peers.hpp"

namespace thrum::test {
namespace {

constexpr const char* kApiKey = "ktk-api-0123456789abcdef";
constexpr const char* kMainKey = "ktk-main-fedcba9876543210";
constexpr const char* kMissing =
    "access key is required for --type keyed_tcp (set THRUM_KEYED_TCP_KEY or pass --auth-key)";

class KeyedTcpPeers : public ThirdPartyPeers {
 protected:
  std::string plugin_dir() const override { return THRUM_KEYED_TCP_PLUGIN_DIR; }
  std::string policy_transports() const override {
    return "  keyed_tcp: { enabled: true, dir: " +
           (main_.root().parent_path() / "rendezvous").string() + " }\n";
  }
  /// The port api's keyed_tcp listener is on (it keeps it in its state_dir, var/keyed-tcp).
  std::string api_listener_port() const { return slurp(api_.var() / "keyed-tcp" / "port"); }
};

TEST_F(KeyedTcpPeers, PairsWithItsCredentialMessagesAndIsFoundAgainAfterAMove) {
  remember_secret(kApiKey);
  remember_secret(kMainKey);
  // Listed with its own help, like the shipped transports.
  auto help = api_.thrum({"peer", "join"});
  EXPECT_EQ(help.exit_code, 2);
  EXPECT_NE(help.err.find("  --type keyed_tcp   Loopback TCP behind an access key"),
            std::string::npos)
      << help.err;

  // No key anywhere and no terminal: the transport's own words, nothing kept.
  auto none = api_.thrum({"peer", "add", "--type", "keyed_tcp"});
  EXPECT_EQ(none.exit_code, 1) << none.out << none.err;
  EXPECT_NE(none.err.find(kMissing), std::string::npos) << none.err;
  EXPECT_FALSE(std::filesystem::exists(api_.root() / ".thrum/.env"));

  // The key from the variable its CredentialSpec names (api) and from --auth-key (main).
  ASSERT_NO_FATAL_FAILURE(
      pair_over("keyed_tcp", {{"THRUM_KEYED_TCP_KEY", kApiKey}}, {"--auth-key", kMainKey}));
  EXPECT_NE(slurp(api_.root() / ".thrum/.env").find(std::string("THRUM_KEYED_TCP_KEY=") + kApiKey),
            std::string::npos);
  EXPECT_NE(
      slurp(main_.root() / ".thrum/.env").find(std::string("THRUM_KEYED_TCP_KEY=") + kMainKey),
      std::string::npos);
  ASSERT_NO_FATAL_FAILURE(exchange_both_ways("over keyed_tcp"));
  const std::string before = api_listener_port();
  ASSERT_FALSE(before.empty());
  EXPECT_EQ(address_of(main_, "api"), "127.0.0.1:" + before);

  // api restarts with no key in its environment (the saved one is used) and its listener
  // comes up on another port, recorded in the rendezvous directory. Its announcement is refused
  // by keyed_tcp's rule; main finds it again (resolve() follows the record, and the core's
  // reconcile does too) and the link carries messages both ways again.
  ASSERT_NO_FATAL_FAILURE(api_.stop_daemon());
  ASSERT_NO_FATAL_FAILURE(start(api_, env()));
  ASSERT_TRUE(wait_until([&] { return api_listener_port() != before; }, 20s)) << api_.daemon_log();
  const std::string after = api_listener_port();
  EXPECT_EQ(slurp(main_.root().parent_path() / "rendezvous" / ("moved-" + before)), after);
  ASSERT_TRUE(wait_until([&] { return address_of(main_, "api") == "127.0.0.1:" + after; }, 30s))
      << peer_state(main_, "api") << "\n"
      << main_.daemon_log();
  ASSERT_TRUE(wait_peer_state(main_, "api", "connected")) << peer_state(main_, "api");
  ASSERT_NO_FATAL_FAILURE(exchange_both_ways("after the move"));
}

}  // namespace
}  // namespace thrum::test
