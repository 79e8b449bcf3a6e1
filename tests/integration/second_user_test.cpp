// Another local OS user (issue 11, finding 4): `nobody`, run with setpriv, can neither reach the
// Unix socket nor use `/ws` without the client secret it cannot read, even when the repo's
// directories are opened up for traversal (the socket and the secret are 0600 themselves).
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/helpers.hpp"
#include "support/process.hpp"
#include "support/rpc_socket.hpp"
#include "support/temp_repo.hpp"

namespace thrum::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

/// client_probe's one-word answer, run as `nobody`.
std::string as_nobody(const std::vector<std::string>& args) {
  std::vector<std::string> full = {"--reuid=65534", "--regid=65534", "--clear-groups",
                                   THRUM_CLIENT_PROBE};
  full.insert(full.end(), args.begin(), args.end());
  auto r = run_process("/usr/bin/setpriv", full, "/", {}, std::nullopt, 20s);
  std::string out = r.out;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return r.exit_code == 0 ? out : "exit " + std::to_string(r.exit_code) + ": " + r.err;
}

std::string as_owner(const std::vector<std::string>& args) {
  auto r = run_process(THRUM_CLIENT_PROBE, args, "/", {}, std::nullopt, 20s);
  std::string out = r.out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class SecondUser : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to another user";
    if (!fs::exists("/usr/bin/setpriv") || as_nobody({"read", "/"}) != "readable")
      GTEST_SKIP() << "setpriv cannot run a program as nobody here";
    repo_.start_daemon();
    port_ = *read_ws_port(repo_.var());
    // The temp dirs above the repo are opened for traversal, as a home directory often is.
    for (fs::path p = repo_.root(); p != p.parent_path() && p != fs::temp_directory_path();
         p = p.parent_path())
      ::chmod(p.c_str(), 0755);
  }
  TempRepo repo_;
  unsigned short port_ = 0;
};

TEST_F(SecondUser, CannotReachTheUnixSocket) {
  const std::string sock = (repo_.var() / "thrum.sock").string();
  EXPECT_EQ(as_owner({"unix", sock}), "connected");
  EXPECT_EQ(file_mode(repo_.var() / "thrum.sock"), 0600);
  EXPECT_EQ(file_mode(repo_.var()), 0700);
  EXPECT_EQ(as_nobody({"unix", sock}), "EACCES") << "the 0700 directories stop it";
  // Even with the directories traversable, the socket's own mode stops it.
  ::chmod((repo_.root() / ".thrum").c_str(), 0711);
  ::chmod(repo_.var().c_str(), 0711);
  EXPECT_EQ(as_nobody({"unix", sock}), "EACCES") << "the 0600 socket stops it";
  ::chmod(repo_.var().c_str(), 0700);
  ::chmod((repo_.root() / ".thrum").c_str(), 0700);
}

TEST_F(SecondUser, CannotUseWsWithoutTheSecretNorReadIt) {
  const std::string secret = ws_auth(repo_.var(), "alice").secret;
  ASSERT_FALSE(secret.empty());
  const std::string port = std::to_string(port_);
  EXPECT_EQ(as_nobody({"ws", port}), "401");
  EXPECT_EQ(as_nobody({"ws", port, std::string(64, '0')}), "401");
  ::chmod((repo_.root() / ".thrum").c_str(), 0711);
  ::chmod(repo_.var().c_str(), 0711);
  EXPECT_EQ(as_nobody({"read", (repo_.var() / "ws.secret").string()}), "EACCES");
  ::chmod(repo_.var().c_str(), 0700);
  ::chmod((repo_.root() / ".thrum").c_str(), 0700);
  // The owner, who can read the secret, gets in; so would nobody, were it leaked.
  EXPECT_EQ(as_owner({"ws", port, secret}), "101");
  auto h = UnixRpcClient(repo_.var() / "thrum.sock").call("health");
  EXPECT_EQ(h["result"]["status"], "ok") << "the daemon kept serving";
}

}  // namespace
}  // namespace thrum::test
