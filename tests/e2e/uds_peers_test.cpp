// The SDK's uds example as a third party ships it (issue 12): built against the *installed* SDK
// in a separate CMake project (ctest fixture e2e_uds_external_build), installed into a plugin
// directory, enabled by the operator policy, and then a first-class `--type uds`: listed by
// `peer add` without --type with its own help, paired, messaging both ways, surviving a restart
// and following a move of the listener's socket under uds's own address rule (only the socket
// number may change).
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <regex>

#include "e2e/third_party_peers.hpp"

namespace thrum::test {
namespace {

std::string uds_plugin_dir() {
  return slurp(std::filesystem::path(THRUM_UDS_EXTERNAL_DIR) / "plugin_dir.txt");
}

/// A live Unix-socket listener at `path`, as another process holding a socket name would be.
class SocketHolder {
 public:
  explicit SocketHolder(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
          ::listen(fd_, 4) == 0;
    path_ = path;
  }
  ~SocketHolder() {
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
  }
  bool ok() const { return ok_; }

 private:
  int fd_ = -1;
  bool ok_ = false;
  std::string path_;
};

class UdsPeers : public ThirdPartyPeers {
 protected:
  std::string plugin_dir() const override { return uds_plugin_dir(); }
  std::string policy_transports() const override {
    return "  uds: { enabled: true, dir: " + sockets().string() +
           " }\n  tailscale: { enabled: false }\n";
  }
  std::filesystem::path sockets() const { return main_.root().parent_path() / "uds"; }
  static std::uint16_t port_of(const std::string& address) {
    auto c = address.rfind(':');
    return c == std::string::npos ? 0
                                  : static_cast<std::uint16_t>(std::stoi(address.substr(c + 1)));
  }
};

TEST_F(UdsPeers, TheInstalledPluginIsListedWithItsHelpAndUnknownOrDisabledIdsAreExplained) {
  auto list = api_.thrum({"plugins", "list"}, env());
  ASSERT_EQ(list.exit_code, 0) << list.out << list.err;
  EXPECT_TRUE(
      std::regex_search(list.out, std::regex("\nuds +1\\.0\\.0 +1\\.[0-9]+ +enabled +" +
                                             uds_plugin_dir() + "/libthrum_transport_uds.so")))
      << list.out;

  for (const char* sub : {"add", "join"}) {
    SCOPED_TRACE(sub);
    auto r = api_.thrum({"peer", sub});
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    const std::string all = r.out + r.err;
    EXPECT_NE(all.find("--type is required. Choose one:"), std::string::npos) << all;
    // uds's entry is its profile's help, first line beside the flag, the rest under it.
    EXPECT_NE(all.find("  --type uds         Same-host daemons over Unix-domain sockets (no TCP "
                       "port at all).\n"
                       "                     Use when both daemons run on one machine or in "
                       "containers\n"),
              std::string::npos)
        << all;
    EXPECT_NE(all.find("--type local"), std::string::npos) << all;
    EXPECT_NE(all.find("--type repair"), std::string::npos) << all;
    // The policy's allow-list leaves out network and disables tailscale: not offered, but
    // said why.
    EXPECT_EQ(all.find("--type tailscale"), std::string::npos) << all;
    EXPECT_NE(all.find("Not available here (see 'thrum plugins list'):\n"
                       "  network: disabled by policy (" +
                       policy_.string() + ")\n  tailscale: disabled by policy (" +
                       policy_.string() + ")"),
              std::string::npos)
        << all;

    auto u = api_.thrum({"peer", sub, "--type", "carrier_pigeon"});
    EXPECT_EQ(u.exit_code, 2) << u.out << u.err;
    EXPECT_NE(u.err.find("unknown --type \"carrier_pigeon\" (available: local, uds)"),
              std::string::npos)
        << u.err;
  }
  auto off = api_.thrum({"peer", "add", "--type", "tailscale"});
  EXPECT_EQ(off.exit_code, 1) << off.out << off.err;
  EXPECT_NE(off.err.find("Error: transport \"tailscale\" is not available: disabled by policy (" +
                         policy_.string() + ")"),
            std::string::npos)
      << off.err;
  auto peers = api_.thrum({"peer", "list"});
  EXPECT_NE(peers.out.find("No peers paired."), std::string::npos) << peers.out;
}

TEST_F(UdsPeers, PairsMessagesSurvivesARestartAndFollowsAMovedSocket) {
  Pairing p;
  ASSERT_NO_FATAL_FAILURE(pair_over("uds", {}, {}, &p));
  EXPECT_NE(p.add.out.find("  thrum peer join --type uds --peercode api:127.0.0.1:"),
            std::string::npos)
      << p.add.out;
  EXPECT_TRUE(
      std::regex_search(p.join.out, std::regex(R"(Paired with "api" \(127\.0\.0\.1:\d+\))")))
      << p.join.out;
  ASSERT_NO_FATAL_FAILURE(exchange_both_ways("over uds"));

  // The link really is a socket in the policy's directory.
  const std::string first = address_of(main_, "api");
  const std::uint16_t port = port_of(first);
  ASSERT_NE(port, 0) << first;
  const std::string socket = (sockets() / ("thrum-" + std::to_string(port) + ".sock")).string();
  EXPECT_TRUE(std::filesystem::is_socket(socket)) << socket;

  // A restart of the listener: it takes its socket number back, the dialer reconnects.
  ASSERT_NO_FATAL_FAILURE(api_.stop_daemon());
  ASSERT_NO_FATAL_FAILURE(start(api_, env()));
  ASSERT_TRUE(wait_peer_state(main_, "api", "connected")) << peer_state(main_, "api");
  EXPECT_EQ(address_of(main_, "api"), first);
  ASSERT_NO_FATAL_FAILURE(exchange_both_ways("after a restart"));

  // Its socket name is held by someone else when it restarts again: it listens on another
  // socket number and tells main, which accepts the move under uds's rule (same 127.0.0.1,
  // another number) and dials the new socket.
  ASSERT_NO_FATAL_FAILURE(api_.stop_daemon());
  SocketHolder squatter(socket);
  ASSERT_TRUE(squatter.ok()) << socket;
  ASSERT_NO_FATAL_FAILURE(start(api_, env()));
  std::string moved;
  ASSERT_TRUE(wait_until(
      [&] {
        moved = address_of(main_, "api");
        return !moved.empty() && moved != first;
      },
      30s))
      << peer_state(main_, "api") << "\n"
      << api_.daemon_log();
  EXPECT_TRUE(std::regex_match(moved, std::regex(R"(127\.0\.0\.1:\d+)"))) << moved;
  EXPECT_TRUE(std::filesystem::is_socket(sockets() /
                                         ("thrum-" + std::to_string(port_of(moved)) + ".sock")));
  ASSERT_TRUE(wait_peer_state(main_, "api", "connected")) << peer_state(main_, "api");
  EXPECT_NE(api_.daemon_log().find("address change accepted by peer=main"), std::string::npos)
      << api_.daemon_log();
  ASSERT_NO_FATAL_FAILURE(exchange_both_ways("after the move"));
}

}  // namespace
}  // namespace thrum::test
