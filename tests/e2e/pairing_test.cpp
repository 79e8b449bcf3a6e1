// Pairing with bad input (SPEC §6.1): wrong codes counted down, lock-out after three, expiry,
// malformed peercodes, missing/unknown --type, one session at a time. Real daemons, real CLI.
#include <signal.h>

#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "e2e/peer_env.hpp"
#include "support/helpers.hpp"

namespace thrum::test {
namespace {

/// A 16-digit code that differs from `code` in every digit.
std::string wrong_code(const std::string& code, int variant) {
  std::string w = code;
  for (auto& c : w) c = static_cast<char>('0' + ((c - '0' + 1 + variant) % 10));
  if (w == code) w[0] = static_cast<char>('0' + ((code[0] - '0' + 5) % 10));
  return w;
}

/// Whether process `pid` has a handler installed for `sig` (SigCgt in /proc/<pid>/status).
bool catches_signal(int pid, int sig) {
  std::string status = slurp("/proc/" + std::to_string(pid) + "/status");
  auto at = status.find("SigCgt:");
  if (at == std::string::npos) return false;
  unsigned long long mask = std::stoull(status.substr(at + 7), nullptr, 16);
  return (mask >> (sig - 1)) & 1ULL;
}

/// `name:ip:port:` + `code`.
std::string with_code(const std::string& peercode, const std::string& code) {
  return peercode.substr(0, peercode.rfind(':') + 1) + code;
}

class Pairing : public PeerTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(start(main_));
    ASSERT_NO_FATAL_FAILURE(start(api_));
  }
  RunResult join(const std::string& peercode) {
    return main_.thrum({"peer", "join", "--type", "local", "--peercode", peercode, "--repo-path",
                        api_.root().string()});
  }
  /// `peer add` in api; returns its peercode.
  std::string begin_add() {
    add_ = start_peer_add(api_.root(), "local");
    auto code = wait_for_peercode(*add_);
    EXPECT_TRUE(code.has_value()) << add_->out() << add_->err();
    if (!code) return "";
    remember_secret(code_of(*code));
    return *code;
  }
  void expect_not_paired() {
    EXPECT_EQ(main_.thrum({"peer", "list"}).out,
              "No peers paired. Use 'thrum peer add' to start pairing.\n");
    EXPECT_EQ(api_.thrum({"peer", "list"}).out,
              "No peers paired. Use 'thrum peer add' to start pairing.\n");
  }

  TempRepo main_{"main"};
  TempRepo api_{"api"};
  std::unique_ptr<StreamingChild> add_;
};

TEST_F(Pairing, WrongCodeCountsDownThenLocksOut) {
  const std::string pc = begin_add();
  ASSERT_FALSE(pc.empty());
  const std::string code = code_of(pc);

  const char* expected[] = {
      "invalid pairing code (2 attempts remaining)", "invalid pairing code (1 attempt remaining)",
      "too many failed attempts; run 'thrum peer add' on the other side again"};
  for (int i = 0; i < 3; ++i) {
    const std::string wc = wrong_code(code, i);
    remember_secret(wc);
    auto r = join(with_code(pc, wc));
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.err.find(expected[i]), std::string::npos) << "attempt " << i + 1 << ": " << r.err;
    EXPECT_EQ(r.err.find(wc), std::string::npos) << "the wrong code is echoed";
    EXPECT_EQ(r.err.find(code), std::string::npos) << "the real code is echoed";
  }
  // The 4th try fails even with the right code: the session is over.
  auto fourth = join(pc);
  EXPECT_NE(fourth.exit_code, 0);
  EXPECT_NE(
      fourth.err.find("too many failed attempts; run 'thrum peer add' on the other side again"),
      std::string::npos)
      << fourth.err;
  EXPECT_EQ(fourth.err.find(code), std::string::npos);

  // `peer add` gives up with the same message instead of waiting on.
  auto added = add_->wait(10s);
  EXPECT_NE(added.exit_code, 0) << added.out;
  EXPECT_NE(added.err.find("too many failed attempts; run 'thrum peer add' again"),
            std::string::npos)
      << added.err;
  expect_not_paired();

  // A fresh `peer add` works again.
  const std::string pc2 = begin_add();
  ASSERT_FALSE(pc2.empty());
  auto ok = join(pc2);
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_EQ(add_->wait(30s).exit_code, 0);
  remember_tokens(main_);
  remember_tokens(api_);
}

// Expiry: a listener with THRUM_TIME_SCALE=0.01 has a 3 s pairing window instead of 5 min.
TEST_F(Pairing, ExpiredCodeIsRefused) {
  ASSERT_NO_FATAL_FAILURE(api_.stop_daemon());
  api_.start_daemon({{"THRUM_TIME_SCALE", "0.01"}});
  const std::string pc = begin_add();
  ASSERT_FALSE(pc.empty());
  // `peer add` itself reports the expiry when the window closes.
  auto added = add_->wait(20s);
  EXPECT_NE(added.exit_code, 0) << added.out;
  EXPECT_NE(added.err.find("pairing code expired"), std::string::npos) << added.err;
  // And the (right) code no longer pairs.
  auto r = join(pc);
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_NE(r.err.find("pairing code expired"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(code_of(pc)), std::string::npos);
  expect_not_paired();
}

struct BadPeercode {
  const char* what;
  const char* peercode;
  const char* secret;  ///< the code-like part that must never be echoed
};

TEST_F(Pairing, MalformedPeercodesAreRefusedWithoutEchoingTheCode) {
  const BadPeercode table[] = {
      {"too few fields", "127.0.0.1:4000:4829175036284719", "4829175036284719"},
      {"no separators", "4829175036284719", "4829175036284719"},
      {"IPv6", "api:::1:4000:4829175036284719", "4829175036284719"},
      {"IPv6 bracketed", "api:[::1]:4000:4829175036284719", "4829175036284719"},
      {"port 0", "api:127.0.0.1:0:4829175036284719", "4829175036284719"},
      {"port 70000", "api:127.0.0.1:70000:4829175036284719", "4829175036284719"},
      {"letters in code", "api:127.0.0.1:4000:48291750362847ab", "48291750362847ab"},
      // A joiner accepts 12 to 16 digits, the range an adder may be configured for.
      {"11 digits", "api:127.0.0.1:4000:48291750362", "48291750362"},
      {"17 digits", "api:127.0.0.1:4000:48291750362847190", "48291750362847190"},
      {"hostname instead of IP", "api:localhost:4000:4829175036284719", "4829175036284719"},
  };
  for (const auto& t : table) {
    SCOPED_TRACE(t.what);
    remember_secret(t.secret);
    auto r = join(t.peercode);
    EXPECT_NE(r.exit_code, 0) << r.out;
    EXPECT_NE(r.err.find("invalid peercode: expected name:ip:port:code"), std::string::npos)
        << r.err;
    EXPECT_EQ(r.err.find(t.secret), std::string::npos) << "stderr echoes the code: " << r.err;
    EXPECT_EQ(r.out.find(t.secret), std::string::npos) << r.out;
    // Also on stdin and as a positional argument.
    auto s = main_.thrum({"peer", "join", "--type", "local", "--repo-path", api_.root().string()},
                         {}, std::string(t.peercode) + "\n");
    EXPECT_NE(s.exit_code, 0);
    EXPECT_NE(s.err.find("invalid peercode: expected name:ip:port:code"), std::string::npos)
        << s.err;
    EXPECT_EQ(s.err.find(t.secret), std::string::npos) << s.err;
  }
  expect_not_paired();
}

TEST_F(Pairing, TypeIsMandatoryAndChecked) {
  for (const char* sub : {"add", "join"}) {
    SCOPED_TRACE(sub);
    auto r = api_.thrum({"peer", sub});
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    const std::string all = r.out + r.err;
    EXPECT_NE(all.find("--type is required"), std::string::npos) << all;
    for (const char* t : {"--type tailscale", "--type local", "--type network", "--type repair"})
      EXPECT_NE(all.find(t), std::string::npos) << t << " missing from:\n" << all;

    auto u = api_.thrum({"peer", sub, "--type", "carrier-pigeon"});
    EXPECT_NE(u.exit_code, 0);
    EXPECT_EQ(u.exit_code, 2);
    EXPECT_NE((u.out + u.err).find("unknown --type \"carrier-pigeon\""), std::string::npos)
        << u.out << u.err;
  }
  auto rep = api_.thrum({"peer", "add", "--type", "repair"});
  EXPECT_EQ(rep.exit_code, 2) << rep.out << rep.err;
  EXPECT_NE(rep.err.find("peer join --type repair"), std::string::npos) << rep.err;
  expect_not_paired();
}

TEST_F(Pairing, SecondAddWhileOnePendingIsRefused) {
  const std::string pc = begin_add();
  ASSERT_FALSE(pc.empty());
  auto second = api_.thrum({"peer", "add", "--type", "local"});
  EXPECT_EQ(second.exit_code, 1) << second.out << second.err;
  EXPECT_TRUE(std::regex_search(second.err,
                                std::regex(R"(pairing already in progress \(started \d+s ago\))")))
      << second.err;
  EXPECT_EQ(second.out.find("--peercode"), std::string::npos) << "a second code was issued:\n"
                                                              << second.out;
  // The first session is untouched: its code still pairs.
  auto ok = join(pc);
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_EQ(add_->wait(30s).exit_code, 0);
  remember_tokens(main_);
  remember_tokens(api_);
}

TEST_F(Pairing, CtrlCOnAddCancelsTheSession) {
  const std::string pc = begin_add();
  ASSERT_FALSE(pc.empty());
  // The CLI installs its SIGINT handler right after printing the code.
  ASSERT_TRUE(wait_until([&] { return catches_signal(add_->pid(), SIGINT); }, 5s));
  add_->kill(SIGINT);
  auto added = add_->wait(10s);
  EXPECT_EQ(added.exit_code, 130) << added.out << added.err;
  EXPECT_NE(added.err.find("Pairing cancelled."), std::string::npos) << added.err;
  auto r = join(pc);
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.err.find(code_of(pc)), std::string::npos) << r.err;
  expect_not_paired();
  // And a new session can start at once.
  const std::string pc2 = begin_add();
  EXPECT_FALSE(pc2.empty());
}

}  // namespace
}  // namespace thrum::test
