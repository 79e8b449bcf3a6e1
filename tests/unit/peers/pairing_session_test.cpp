// PairingSessions (peers/pairing_session.hpp), the listener side of pairing, on a manual loop:
// one session at a time, the code's expiry, three attempts, single use, and a `peer add` that
// always gets an answer.
#include "peers/pairing_session.hpp"

#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fake_link.hpp"
#include "testbed.hpp"
#include "thrum/common/peercode.hpp"
#include "thrum/core/pairing.hpp"

namespace thrum::core::peers {
namespace {

using json = nlohmann::json;
using State = PairingSessions::State;

class PairingSessionTest : public ::testing::Test {
 protected:
  PairingSessionTest()
      : sessions_(
            *bed_.ctx, [](const std::string&) { return std::string(); },
            [this](const PeerRecord& r) {
              stored_.push_back(r);
              return std::string();
            }) {}

  /// Opens a session and returns its code.
  std::string open() {
    json r = sessions_.open("t1", "web", sdk::Endpoint{"127.0.0.1", 4100});
    std::string error;
    auto pc = pairing::parse_peercode(r.at("peercode").get<std::string>(), error);
    EXPECT_TRUE(pc) << error;
    return pc ? pc->code : "";
  }

  /// Calls `method` on `conn` and returns what it answered.
  rpc::Outcome call(const std::shared_ptr<PairingSessions::Connection>& conn,
                    const std::string& method, const json& params) {
    std::optional<rpc::Outcome> out;
    try {
      sessions_.on_request(conn, link_, method, params, [&](rpc::Outcome o) { out = o; });
    } catch (const rpc::Failure& f) {
      out = rpc::Error{f.code, f.what(), nullptr};
    }
    EXPECT_TRUE(out) << method << " was not answered";
    return out ? *out : rpc::Outcome(rpc::Error{0, "unanswered", nullptr});
  }

  /// pair.hello then pair.proof with `code`; returns the proof's answer.
  rpc::Outcome prove(const std::shared_ptr<PairingSessions::Connection>& conn,
                     const std::string& code, const std::string& transport = "t1") {
    const std::string nonce_j = pairing::generate_nonce();
    auto hello = call(conn, "pair.hello",
                      {{"daemon_id", "d_joiner"}, {"nonce", nonce_j}, {"transport", transport}});
    if (!hello.ok()) return hello;
    pairing::Transcript tr{
        hello.result()["nonce"], nonce_j, "d_self", "d_joiner", "", "", transport, ""};
    return call(conn, "pair.proof",
                {{"proof", pairing::proof(code, "joiner", tr)},
                 {"identity",
                  {{"daemon_id", "d_joiner"},
                   {"name", "api"},
                   {"repo_name", "api"},
                   {"hostname", "host-b"},
                   {"repo_path", "/srv/api"},
                   {"git_origin_url", ""},
                   {"address", "127.0.0.1:4200"}}}});
  }

  /// What `peer add` (peer.wait_pairing) is told now.
  rpc::Outcome wait_now() {
    std::optional<rpc::Outcome> out;
    sessions_.wait(0, [&](rpc::Outcome o) { out = o; });
    return *out;
  }

  test::PeerTestbed bed_;
  std::shared_ptr<test::FakeLink> link_ = std::make_shared<test::FakeLink>();
  std::vector<PeerRecord> stored_;
  PairingSessions sessions_;
};

TEST_F(PairingSessionTest, OneSessionAtATimeAndANewOneCancelsTheWaitingPeerAdd) {
  open();
  EXPECT_NE(sessions_.busy().find("pairing already in progress"), std::string::npos);
  EXPECT_EQ(sessions_.open_transport(), "t1");
  std::optional<rpc::Outcome> first;
  sessions_.wait(60000, [&](rpc::Outcome o) { first = o; });
  EXPECT_FALSE(first);
  open();
  ASSERT_TRUE(first);
  ASSERT_FALSE(first->ok());
  EXPECT_NE(first->error().message.find("cancelled"), std::string::npos);
}

TEST_F(PairingSessionTest, TheCodeExpiresAndPeerAddIsToldSo) {
  open();
  std::optional<rpc::Outcome> waiting;
  sessions_.wait(10 * 60 * 1000, [&](rpc::Outcome o) { waiting = o; });
  bed_.loop.advance(bed_.ctx->tc().pairing_expiry - std::chrono::milliseconds(1));
  EXPECT_FALSE(waiting);
  EXPECT_EQ(sessions_.state(), State::kOpen);
  bed_.loop.advance(std::chrono::milliseconds(1));
  ASSERT_TRUE(waiting);
  ASSERT_FALSE(waiting->ok());
  EXPECT_NE(waiting->error().message.find("expired"), std::string::npos);
  EXPECT_EQ(sessions_.busy(), "");
  auto conn = std::make_shared<PairingSessions::Connection>();
  EXPECT_NE(sessions_.refuse_connection(true), "");
}

TEST_F(PairingSessionTest, ThreeWrongCodesLockTheSessionEvenForTheRightOne) {
  const std::string code = open();
  std::string wrong = code;
  wrong[0] = wrong[0] == '1' ? '2' : '1';
  auto r1 = prove(std::make_shared<PairingSessions::Connection>(), wrong);
  ASSERT_FALSE(r1.ok());
  EXPECT_NE(r1.error().message.find("2 attempts remaining"), std::string::npos);
  auto r2 = prove(std::make_shared<PairingSessions::Connection>(), wrong);
  EXPECT_NE(r2.error().message.find("1 attempt remaining"), std::string::npos);
  auto r3 = prove(std::make_shared<PairingSessions::Connection>(), wrong);
  EXPECT_NE(r3.error().message.find("too many failed attempts"), std::string::npos);
  EXPECT_EQ(sessions_.state(), State::kLocked);
  auto right = prove(std::make_shared<PairingSessions::Connection>(), code);
  ASSERT_FALSE(right.ok());
  EXPECT_TRUE(stored_.empty());
  EXPECT_FALSE(wait_now().ok());
}

TEST_F(PairingSessionTest, ARightProofMintsATokenAndConfirmStoresTheRecordOnce) {
  const std::string code = open();
  auto conn = std::make_shared<PairingSessions::Connection>();
  auto proof = prove(conn, code);
  ASSERT_TRUE(proof.ok()) << proof.error().message;
  EXPECT_EQ(proof.result()["token"].get<std::string>().size(), 64u);
  EXPECT_EQ(sessions_.state(), State::kConsumed);
  EXPECT_TRUE(stored_.empty()) << "nothing is stored before pair.confirm";
  auto confirm = call(conn, "pair.confirm", json::object());
  ASSERT_TRUE(confirm.ok());
  ASSERT_EQ(stored_.size(), 1u);
  EXPECT_EQ(stored_[0].daemon_id, "d_joiner");
  EXPECT_EQ(stored_[0].role, "listener");
  EXPECT_EQ(stored_[0].token, proof.result()["token"]);
  auto w = wait_now();
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w.result()["status"], "paired");
  // The code is single-use.
  auto again = prove(std::make_shared<PairingSessions::Connection>(), code);
  EXPECT_FALSE(again.ok());
  EXPECT_EQ(stored_.size(), 1u);
}

TEST_F(PairingSessionTest, AJoinerThatLeavesAfterItsProofEndsTheSession) {
  const std::string code = open();
  auto conn = std::make_shared<PairingSessions::Connection>();
  ASSERT_TRUE(prove(conn, code).ok());
  std::optional<rpc::Outcome> waiting;
  sessions_.wait(60000, [&](rpc::Outcome o) { waiting = o; });
  EXPECT_FALSE(waiting);
  sessions_.link_closed(conn, "connection reset");
  ASSERT_TRUE(waiting);
  ASSERT_FALSE(waiting->ok());
  EXPECT_NE(waiting->error().message.find("disconnected before confirming"), std::string::npos);
  EXPECT_TRUE(stored_.empty());
}

TEST_F(PairingSessionTest, AJoinerThatNeverConfirmsIsCutOff) {
  const std::string code = open();
  auto conn = std::make_shared<PairingSessions::Connection>();
  ASSERT_TRUE(prove(conn, code).ok());
  bed_.loop.advance(bed_.ctx->tc().dial_timeout * 2);
  EXPECT_FALSE(link_->is_open());
  EXPECT_EQ(link_->closed_reason, "no pair.confirm in time");
}

TEST_F(PairingSessionTest, ProofBeforeHelloOrForAnotherTransportIsRefused) {
  const std::string code = open();
  auto conn = std::make_shared<PairingSessions::Connection>();
  auto early = call(conn, "pair.proof", {{"proof", std::string(64, 'a')}});
  ASSERT_FALSE(early.ok());
  EXPECT_NE(early.error().message.find("pair.hello must come first"), std::string::npos);
  auto other = prove(std::make_shared<PairingSessions::Connection>(), code, "t2");
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.error().message.find("for --type t1, not t2"), std::string::npos);
  EXPECT_EQ(sessions_.state(), State::kOpen) << "a wrong transport costs no attempt";
}

TEST_F(PairingSessionTest, WithNoSessionTheJoinerIsToldToRunPeerAddOnTheOtherSide) {
  EXPECT_NE(sessions_.refuse_connection(true).find("on the other side"), std::string::npos);
  EXPECT_FALSE(wait_now().ok());
}

}  // namespace
}  // namespace thrum::core::peers
