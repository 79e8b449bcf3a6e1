// Peer (peers/peer.hpp), one paired daemon's link supervisor, on a manual loop with a fake dialer:
// backoff and quarantine, the terminal token rejection, reconcile rounds at 2/8/30 s, the link
// coming up, the transport's address-change rule, and late callbacks for a removed peer.
#include "peers/peer.hpp"

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fake_link.hpp"
#include "fake_transport.hpp"
#include "peers/connector.hpp"
#include "peers/protocol.hpp"
#include "testbed.hpp"
#include "thrum/core/peer_registry.hpp"

namespace thrum::core::peers {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using std::chrono::milliseconds;

class FakeDialer final : public Dialer {
 public:
  struct Control {
    std::string method;
    json params;
    ControlDone done;
  };
  void open(const PeerRecord&, Opened done) override { opens.push_back(std::move(done)); }
  void control_call(const PeerRecord&, const std::string& method, const json& params,
                    ControlDone done) override {
    controls.push_back({method, params, std::move(done)});
  }
  /// Fails the oldest open with `error` (401: the token was rejected).
  void fail_open(std::string error, int status = 0) {
    auto d = std::move(opens.front());
    opens.erase(opens.begin());
    d(OutgoingLink{}, std::move(error), status, sdk::Endpoint{});
  }
  /// Completes the oldest open with `link`.
  void succeed_open(std::shared_ptr<Link> link) {
    auto d = std::move(opens.front());
    opens.erase(opens.begin());
    d(OutgoingLink{std::move(link), std::string(64, 'a')}, "", 101,
      sdk::Endpoint{"127.0.0.1", 4200});
  }
  std::vector<Opened> opens;
  std::vector<Control> controls;
};

class PeerTest : public ::testing::Test {
 protected:
  PeerTest() : bed_(test::lookup_of(transport_, enabled_)) {}

  std::shared_ptr<Peer> make(const std::string& role) {
    PeerRecord r;
    r.name = "api";
    r.address = "127.0.0.1:4200";
    r.daemon_id = "d_api";
    r.token = std::string(64, 'b');
    r.transport = "t1";
    r.role = role;
    r.proxy_prefix = "api";
    bed_.ctx->registry.upsert(r);
    return std::make_shared<Peer>("api", *bed_.ctx, dialer_,
                                  [](const std::string&, const std::string&, const json&,
                                     rpc::Respond respond) { respond(json::object()); });
  }
  std::string state(Peer& p) {
    json j;
    p.describe(j);
    return j.value("state", "");
  }
  /// Brings a dialer's link up: the open succeeds, link.auth and peer.hello are answered.
  std::shared_ptr<test::FakeLink> link_up(Peer& p) {
    auto link = std::make_shared<test::FakeLink>();
    dialer_.succeed_open(link);
    EXPECT_EQ(link->calls.at(0).method, "link.auth");
    EXPECT_EQ(link->calls.at(1).method, "peer.hello");
    link->answer_first(json{{"ok", true}});
    link->answer_first(
        to_json(Identity{"d_api", "api", "api", "host-b", "/srv/api", "", "127.0.0.1:4200"}));
    bed_.loop.run_ready();
    EXPECT_TRUE(p.linked());
    return link;
  }

  std::shared_ptr<test::FakeTransport> transport_ = std::make_shared<test::FakeTransport>();
  std::shared_ptr<bool> enabled_ = std::make_shared<bool>(true);
  test::PeerTestbed bed_;
  FakeDialer dialer_;
};

TEST_F(PeerTest, FailedDialsAreRetriedWithinAGrowingBackoffAndStatusSaysSo) {
  auto p = make("dialer");
  p->connect();
  ASSERT_EQ(dialer_.opens.size(), 1u);
  EXPECT_EQ(state(*p), "connecting");
  p->connect();  // a dial in flight: no second one
  EXPECT_EQ(dialer_.opens.size(), 1u);
  // Full jitter under a ceiling that doubles: 250 ms, 500 ms, 1 s, ...
  for (auto ceiling : {250ms, 500ms, 1000ms, 2000ms}) {
    dialer_.fail_open("connection refused");
    EXPECT_EQ(state(*p).rfind("backoff ", 0), 0u) << state(*p);
    json j;
    p->describe(j);
    EXPECT_EQ(j["last_error"], "connection refused");
    bed_.loop.advance(ceiling);
    ASSERT_EQ(dialer_.opens.size(), 1u) << "one retry within " << ceiling.count() << " ms";
  }
}

TEST_F(PeerTest, TenFailuresQuarantineThePeerToOneProbeAMinute) {
  auto p = make("dialer");
  p->connect();
  for (int i = 0; i < bed_.ctx->tc().quarantine_after; ++i) {
    ASSERT_EQ(dialer_.opens.size(), 1u) << "attempt " << i;
    dialer_.fail_open("connection refused");
    bed_.loop.advance(bed_.ctx->tc().backoff_cap);
  }
  EXPECT_EQ(state(*p), "quarantined");
  // The reconcile rounds are over by now; what is left is one probe per quarantine interval.
  dialer_.opens.clear();
  bed_.loop.advance(bed_.ctx->tc().quarantine_probe);
  EXPECT_LE(dialer_.opens.size(), 1u);
}

TEST_F(PeerTest, ARejectedTokenIsTerminalUntilRepair) {
  auto p = make("dialer");
  p->connect();
  dialer_.fail_open("401 Unauthorized", 401);
  EXPECT_EQ(state(*p), "drift_reconcile_failed");
  EXPECT_EQ(bed_.ctx->registry.find("api")->reconcile_status, "drift_reconcile_failed");
  bed_.loop.advance(10min);
  p->connect();
  EXPECT_TRUE(dialer_.opens.empty()) << "no dialing with a token the peer does not know";
  std::optional<rpc::Outcome> repaired;
  p->repair([&](rpc::Outcome o) { repaired = o; });
  ASSERT_EQ(dialer_.opens.size(), 1u);
  link_up(*p);
  ASSERT_TRUE(repaired);
  ASSERT_TRUE(repaired->ok());
  EXPECT_EQ(repaired->result()["status"], "repaired");
  EXPECT_EQ(state(*p), "connected");
  EXPECT_EQ(bed_.ctx->registry.find("api")->reconcile_status, "");
}

TEST_F(PeerTest, AListenerReconcilesAtTwoEightAndThirtySecondsThenStops) {
  auto p = make("listener");
  p->boot_reconcile();
  ASSERT_EQ(dialer_.controls.size(), 1u);
  EXPECT_EQ(dialer_.controls[0].method, "peer.repair");
  auto fail_last = [&] {
    auto c = std::move(dialer_.controls.back());
    dialer_.controls.pop_back();
    c.done(rpc::Error{rpc::kHandlerError, "unreachable", nullptr}, false, 0);
  };
  fail_last();
  bed_.loop.advance(7999ms);
  EXPECT_TRUE(dialer_.controls.empty());
  bed_.loop.advance(1ms);
  ASSERT_EQ(dialer_.controls.size(), 1u) << "second round after 8 s";
  fail_last();
  bed_.loop.advance(29999ms);
  EXPECT_TRUE(dialer_.controls.empty());
  bed_.loop.advance(1ms);
  ASSERT_EQ(dialer_.controls.size(), 1u) << "third round after 30 s";
  fail_last();
  bed_.loop.advance(10min);
  EXPECT_TRUE(dialer_.controls.empty()) << "three rounds, then the dialer's job";
  EXPECT_EQ(state(*p), "waiting for peer");
}

TEST_F(PeerTest, AListenerWhoseTokenIsRejectedInReconcileStops) {
  auto p = make("listener");
  p->boot_reconcile();
  auto c = std::move(dialer_.controls.back());
  dialer_.controls.clear();
  c.done(rpc::Error{rpc::kHandlerError, "401", nullptr}, true, 401);
  EXPECT_EQ(state(*p), "drift_reconcile_failed");
  bed_.loop.advance(10min);
  EXPECT_TRUE(dialer_.controls.empty());
}

TEST_F(PeerTest, ALinkThatDiesAtOnceCountsAsAFailureAndOneThatLastedDoesNot) {
  auto p = make("dialer");
  p->connect();
  auto link = link_up(*p);
  EXPECT_EQ(state(*p), "connected");
  link->close("reset by peer");
  EXPECT_FALSE(p->linked());
  EXPECT_EQ(state(*p).rfind("backoff ", 0), 0u);
  bed_.loop.advance(500ms);  // the second failure's ceiling
  ASSERT_EQ(dialer_.opens.size(), 1u);
  link = link_up(*p);
  bed_.loop.advance(bed_.ctx->tc().healthy_reset);
  link->close("reset by peer");
  bed_.loop.advance(250ms);  // back to the first ceiling
  EXPECT_EQ(dialer_.opens.size(), 1u);
}

TEST_F(PeerTest, ADisabledTransportShowsAsDisabledAndIsNotDialed) {
  auto p = make("dialer");
  *enabled_ = false;
  p->connect();
  EXPECT_TRUE(dialer_.opens.empty());
  json j;
  p->describe(j);
  EXPECT_EQ(j["state"], "disabled");
  EXPECT_NE(j["last_error"].get<std::string>().find("transport \"t1\" is not available"),
            std::string::npos);
}

TEST_F(PeerTest, TheListenerFollowsTheDialerOnlyUnderTheTransportsRule) {
  transport_->same_host_only = true;
  auto p = make("listener");
  p->heard_identity(Identity{"d_api", "api", "api", "host-b", "/srv/api", "", "127.0.0.1:4300"});
  EXPECT_EQ(bed_.ctx->registry.find("api")->address, "127.0.0.1:4300");
  p->heard_identity(Identity{"d_api", "api", "api", "host-b", "/srv/api", "", "10.0.0.9:4300"});
  EXPECT_EQ(bed_.ctx->registry.find("api")->address, "127.0.0.1:4300");
  EXPECT_EQ(state(*p), "address change rejected: the host may not change");
}

TEST_F(PeerTest, HelloCannotRewriteThePairedIdentity) {
  auto p = make("listener");
  p->heard_identity(Identity{"d_other", "api", "api", "host-b", "/elsewhere", "", ""});
  EXPECT_EQ(bed_.ctx->registry.find("api")->daemon_id, "d_api");
}

TEST_F(PeerTest, ALateDialAnswerForARemovedPeerClosesTheLinkAndTouchesNothing) {
  auto p = make("dialer");
  p->connect();
  p->shutdown("removed");
  p.reset();
  auto link = std::make_shared<test::FakeLink>();
  dialer_.succeed_open(link);
  EXPECT_FALSE(link->is_open());
  EXPECT_EQ(link->closed_reason, "peer removed");
  bed_.loop.advance(10min);
  EXPECT_TRUE(dialer_.opens.empty());
}

}  // namespace
}  // namespace thrum::core::peers
