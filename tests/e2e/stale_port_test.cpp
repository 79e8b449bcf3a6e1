// Another local user and the local transport's port file (issue 11 finding 2). After an
// unclean exit `ws.port` stays behind; the dialer used to re-read it and send its bearer token
// to whatever listened there. Another OS user (nobody, via setpriv) squats the port, or relays
// it to the real daemon; neither gets a token, a message, or a link.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "e2e/peer_env.hpp"
#include "support/helpers.hpp"
#include "support/streaming_child.hpp"

namespace thrum::test {
namespace {

namespace fs = std::filesystem;

/// port_squatter run as user nobody.
class Squatter {
 public:
  Squatter(unsigned short port, const fs::path& capture, unsigned short relay_to = 0) {
    std::vector<std::string> args = {"--reuid=65534",     "--regid=65534",      "--clear-groups",
                                     THRUM_PORT_SQUATTER, std::to_string(port), capture.string()};
    if (relay_to) {
      args.push_back("--relay-to");
      args.push_back(std::to_string(relay_to));
    }
    child_ = std::make_unique<StreamingChild>("/usr/bin/setpriv", args, fs::temp_directory_path());
    ready_ = child_->wait_for_out("ready ", std::chrono::seconds(5));
    if (ready_) {
      auto out = child_->out();
      port_ = static_cast<unsigned short>(std::stoi(out.substr(out.find("ready ") + 6)));
    }
  }
  bool ready() const { return ready_; }
  unsigned short port() const { return port_; }
  std::string log() const { return child_->out() + child_->err(); }

 private:
  std::unique_ptr<StreamingChild> child_;
  bool ready_ = false;
  unsigned short port_ = 0;
};

class StalePort : public MainAndApi {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another user (setpriv)";
    MainAndApi::SetUp();
    capture_dir_ = fs::temp_directory_path() /
                   ("thrum-squat-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::create_directories(capture_dir_);
    fs::permissions(capture_dir_, fs::perms::all);
    capture_ = capture_dir_ / "capture.bin";
  }
  void TearDown() override {
    MainAndApi::TearDown();
    std::error_code ec;
    fs::remove_all(capture_dir_, ec);
  }
  std::string captured() const { return fs::exists(capture_) ? slurp(capture_) : ""; }
  std::string token_of(const TempRepo& r) {
    auto doc = parse_json(slurp(r.var() / "peers.json"));
    return doc["peers"][0].value("token", "");
  }

  fs::path capture_dir_, capture_;
  static inline int counter_ = 0;
};

TEST_F(StalePort, AStalePortFileIsPeerDownNotAnAddress) {
  ASSERT_NO_FATAL_FAILURE(pair_and_configure());
  const std::string token = token_of(main_);
  ASSERT_EQ(token.size(), 64u);
  const auto port = read_ws_port(api_.var());
  ASSERT_TRUE(port);
  // An unclean exit: ws.port stays behind, and another user binds the port it names.
  const int api_pid = api_.daemon_pid();
  ::kill(api_pid, SIGKILL);
  ASSERT_TRUE(wait_until([&] { return !process_alive(api_pid); }, 5s));
  ASSERT_TRUE(fs::exists(api_.var() / "ws.port"));
  Squatter squat(*port, capture_);
  ASSERT_TRUE(squat.ready()) << squat.log();

  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(send_to_reviewer("secret plan " + std::to_string(i)));
  // main keeps trying (backoff, the port-file watch): long enough for several attempts.
  ASSERT_TRUE(wait_until(
      [&] {
        return peer_record(main_, "api").value("last_error", "").find("stale port file") !=
               std::string::npos;
      },
      10s))
      << peer_state(main_, "api");
  std::this_thread::sleep_for(2s);
  const std::string seen = captured();
  EXPECT_EQ(seen.find("connection"), std::string::npos)
      << "main dialed a port whose daemon is dead";
  EXPECT_EQ(seen.find(token), std::string::npos);
  EXPECT_EQ(seen.find("secret plan"), std::string::npos);
  for (const auto& id : ids) EXPECT_EQ(sent_state(id), "queued");

  // The real daemon comes back (on another port, the squatter keeps the old one): every
  // message arrives, once.
  ASSERT_NO_FATAL_FAILURE(start(api_));
  ASSERT_TRUE(wait_reviewer_total(20, 30s)) << peer_state(main_, "api");
  for (const auto& id : ids)
    EXPECT_TRUE(wait_until([&] { return sent_state(id) == "delivered"; }, 10s)) << id;
  EXPECT_EQ(reviewer_unread()["messages"].size(), 20u);
}

TEST_F(StalePort, ARelayInTheMiddleCannotCompleteTheLink) {
  ASSERT_NO_FATAL_FAILURE(pair_and_configure());
  const std::string token = token_of(main_);
  const auto real_port = read_ws_port(api_.var());
  ASSERT_TRUE(real_port);
  ASSERT_NO_FATAL_FAILURE(main_.stop_daemon());
  // Another user relays a port of its own to the live daemon, and main is pointed at it.
  Squatter relay(0, capture_, *real_port);
  ASSERT_TRUE(relay.ready()) << relay.log();
  const fs::path port_file = api_.var() / "ws.port";
  const std::string real_text = slurp(port_file);
  std::ofstream(port_file) << relay.port() << "\n";
  ASSERT_NO_FATAL_FAILURE(start(main_));
  const std::string id = send_to_reviewer("through the relay?");
  ASSERT_TRUE(wait_until(
      [&] {
        return main_.daemon_log().find("could not prove it holds our token") != std::string::npos;
      },
      10s))
      << main_.daemon_log();
  EXPECT_NE(captured().find("connection"), std::string::npos) << "the relay was never dialed";
  EXPECT_EQ(captured().find(token), std::string::npos);
  EXPECT_EQ(captured().find("through the relay?"), std::string::npos);
  EXPECT_NE(peer_record(main_, "api").value("state", ""), "connected");
  EXPECT_EQ(sent_state(id), "queued");
  // The port file is right again: the link comes back, directly, and the message crosses.
  std::ofstream(port_file) << real_text;
  EXPECT_TRUE(wait_until([&] { return sent_state(id) == "delivered"; }, 20s))
      << peer_state(main_, "api");
}

}  // namespace
}  // namespace thrum::test
