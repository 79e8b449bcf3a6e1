// OutboxPump (peers/outbox_pump.hpp) on a manual loop, a fake link and a real store: what leaves
// in which frame, one frame in flight, what a new link resends, what an answer settles.
#include "peers/outbox_pump.hpp"

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "fake_link.hpp"
#include "manual_loop.hpp"
#include "thrum/core/sqlite.hpp"
#include "thrum/core/store.hpp"

namespace thrum::core::peers {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using test::FakeLink;

class OutboxPumpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "thrum-pump-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    store_ = std::make_unique<Store>(dir_ / "thrum.db", loop_);
    outbox_ = std::make_unique<store::Outbox>(*store_);
    pump_ = std::make_unique<OutboxPump>("api", loop_, *outbox_,
                                         [this](int64_t n) { delivered_ += n; });
  }
  void TearDown() override {
    pump_.reset();
    store_->close();
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  /// Commits `n` rows of `kind` for peer "api" (ids m<first>..), like a send does.
  void queue(int n, const std::string& kind = "deliver", int first = 0) {
    bool done = false;
    store_->write(
        [=](sql::Db& db) {
          for (int i = first; i < first + n; ++i) {
            const std::string id = "m" + std::to_string(i);
            const std::string wire = json{{"message_id", id}, {"body", "hi"}}.dump();
            store::Outbox::insert(
                db, "api", kind, id,
                kind == "deliver" ? store::Outbox::encode(wire, {"reviewer"}) : wire,
                "2026-12-02T00:00:00Z");
          }
        },
        [&](std::exception_ptr e) {
          ASSERT_FALSE(e);
          done = true;
        });
    ASSERT_TRUE(loop_.run_until([&] { return done; }));
  }
  static json results(size_t n) {
    json r = json::array();
    for (size_t i = 0; i < n; ++i) r.push_back({{"message_id", "remote_" + std::to_string(i)}});
    return {{"results", r}};
  }
  static size_t items(const FakeLink::Call& c) { return c.params.at("items").size(); }
  int64_t queued() { return outbox_->queued("api"); }

  test::ManualLoop loop_;
  fs::path dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<store::Outbox> outbox_;
  std::unique_ptr<OutboxPump> pump_;
  int64_t delivered_ = 0;
};

TEST_F(OutboxPumpTest, ALoneMessageLeavesAtOnceInItsOwnFrame) {
  queue(1);
  auto link = std::make_shared<FakeLink>();
  pump_->link_up(link);
  loop_.run_ready();
  ASSERT_EQ(link->calls.size(), 1u);
  EXPECT_EQ(link->calls[0].method, "peer.deliver");
  EXPECT_EQ(items(link->calls[0]), 1u);
  EXPECT_EQ(link->calls[0].params["items"][0]["message_id"], "m0");
}

TEST_F(OutboxPumpTest, RowsCommittedWhileAFrameIsOutLeaveTogetherWithTheNext) {
  queue(1);
  auto link = std::make_shared<FakeLink>();
  pump_->link_up(link);
  loop_.run_ready();
  queue(5, "deliver", 1);
  pump_->kick();
  pump_->kick();  // several kicks in one turn pump once
  loop_.run_ready();
  ASSERT_EQ(link->calls.size(), 1u) << "one frame in flight";
  EXPECT_EQ(pump_->in_flight(), 1);
  link->answer_first(results(1));
  loop_.run_ready();
  ASSERT_EQ(link->calls.size(), 1u);
  EXPECT_EQ(items(link->calls[0]), 5u);
  EXPECT_EQ(link->calls[0].params["items"][0]["message_id"], "m1");
}

TEST_F(OutboxPumpTest, AFrameCarriesAtMost256Rows) {
  queue(300);
  auto link = std::make_shared<FakeLink>();
  pump_->link_up(link);
  loop_.run_ready();
  ASSERT_EQ(link->calls.size(), 1u);
  EXPECT_EQ(items(link->calls[0]), 256u);
  link->answer_first(results(256));
  loop_.run_ready();
  ASSERT_EQ(link->calls.size(), 1u);
  EXPECT_EQ(items(link->calls[0]), 44u);
  link->answer_first(results(44));
  EXPECT_EQ(delivered_, 300);
  ASSERT_TRUE(loop_.run_until([&] { return queued() == 0; }));
}

TEST_F(OutboxPumpTest, KindsAreNeverMixedInOneFrameAndOrderIsKept) {
  queue(2, "deliver", 0);
  queue(1, "receipt", 2);
  queue(1, "deliver", 3);
  auto link = std::make_shared<FakeLink>();
  pump_->link_up(link);
  loop_.run_ready();
  ASSERT_EQ(link->calls.size(), 1u);
  EXPECT_EQ(link->calls[0].method, "peer.deliver");
  EXPECT_EQ(items(link->calls[0]), 2u);
  link->answer_first(results(2));
  loop_.run_ready();
  ASSERT_EQ(link->calls.size(), 1u);
  EXPECT_EQ(link->calls[0].method, "peer.receipt");
  link->answer_first(json{{"results", json::array({json::object()})}});
  loop_.run_ready();
  ASSERT_EQ(link->calls.size(), 1u);
  EXPECT_EQ(link->calls[0].method, "peer.deliver");
  EXPECT_EQ(link->calls[0].params["items"][0]["message_id"], "m3");
}

TEST_F(OutboxPumpTest, ANewLinkResendsWhatWasUnansweredAndALateAnswerIsIgnored) {
  queue(2);
  auto first = std::make_shared<FakeLink>();
  pump_->link_up(first);
  loop_.run_ready();
  ASSERT_EQ(first->calls.size(), 1u);
  pump_->link_down();
  auto second = std::make_shared<FakeLink>();
  pump_->link_up(second);
  loop_.run_ready();
  ASSERT_EQ(second->calls.size(), 1u);
  EXPECT_EQ(items(second->calls[0]), 2u);
  first->answer_first(results(2));  // the old link's answer: the rows ride the new link
  loop_.run_ready();
  EXPECT_EQ(pump_->in_flight(), 1);
  EXPECT_EQ(delivered_, 0);
  EXPECT_EQ(queued(), 2);
  second->answer_first(results(2));
  EXPECT_EQ(delivered_, 2);
  ASSERT_TRUE(loop_.run_until([&] { return queued() == 0; }));
}

TEST_F(OutboxPumpTest, AnErrorOrMalformedAnswerKeepsTheRowsForTheNextLink) {
  queue(2);
  auto link = std::make_shared<FakeLink>();
  pump_->link_up(link);
  loop_.run_ready();
  link->fail_first("disk full");
  loop_.run_ready();
  EXPECT_EQ(queued(), 2);
  EXPECT_EQ(delivered_, 0);
  pump_->link_down();
  pump_->link_up(link);
  loop_.run_ready();
  ASSERT_EQ(link->calls.size(), 1u);
  link->answer_first(json{{"results", json::array()}});  // wrong count: not an acknowledgement
  EXPECT_EQ(delivered_, 0);
  EXPECT_EQ(queued(), 2);
}

TEST_F(OutboxPumpTest, ARefusedDeliveryIsSettledNotRetried) {
  queue(1);
  auto link = std::make_shared<FakeLink>();
  pump_->link_up(link);
  loop_.run_ready();
  link->answer_first(json{{"results", json::array({{{"refused", "no agent named reviewer"}}})}});
  ASSERT_TRUE(loop_.run_until([&] { return queued() == 0; }));
  pump_->link_down();
  pump_->link_up(link);
  loop_.run_ready();
  EXPECT_TRUE(link->calls.empty());
}

TEST_F(OutboxPumpTest, NothingIsSentWithoutALink) {
  queue(3);
  pump_->kick();
  loop_.run_ready();
  auto link = std::make_shared<FakeLink>();
  link->close("gone");
  pump_->link_up(link);  // a link that closed before it came up
  loop_.run_ready();
  EXPECT_TRUE(link->calls.empty());
  EXPECT_EQ(queued(), 3);
}

}  // namespace
}  // namespace thrum::core::peers
