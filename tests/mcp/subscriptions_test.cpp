// The subscription registry behind `message.subscribe` (core/src/messaging/subscriptions.*).
#include "messaging/subscriptions.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace thrum::core::messaging {
namespace {

using json = nlohmann::json;

StoredMessage to(std::vector<std::string> recipients, std::string id = "msg_1") {
  StoredMessage m;
  m.message_id = std::move(id);
  m.body = "hello";
  m.recipients = std::move(recipients);
  return m;
}

Subscriptions::Shape shape = [](const StoredMessage& m) {
  return json{{"message_id", m.message_id}, {"body", m.body}};
};

TEST(Subscriptions, PushesOnlyToSubscribersOfARecipient) {
  Subscriptions subs(shape);
  std::vector<std::string> alice, bob;
  subs.add(
      "alice",
      [&](std::string l) {
        alice.push_back(l);
        return true;
      },
      nullptr);
  subs.add(
      "bob",
      [&](std::string l) {
        bob.push_back(l);
        return true;
      },
      nullptr);
  subs.announce(to({"alice"}));
  ASSERT_EQ(alice.size(), 1u);
  EXPECT_TRUE(bob.empty());
  json n = json::parse(alice[0]);
  EXPECT_EQ(n["method"], "message.received");
  EXPECT_EQ(n["params"]["message"]["message_id"], "msg_1");
  EXPECT_FALSE(n.contains("id"));
}

TEST(Subscriptions, ARefusedPushEndsTheSubscription) {
  Subscriptions subs(shape);
  int pushes = 0;
  subs.add(
      "alice",
      [&](std::string) {
        ++pushes;
        return false;
      },
      nullptr);
  subs.announce(to({"alice"}));
  subs.announce(to({"alice"}, "msg_2"));
  EXPECT_EQ(pushes, 1);
  EXPECT_EQ(subs.size(), 0u);
}

TEST(Subscriptions, ClosedConnectionsAreDroppedWithoutAMessage) {
  Subscriptions subs(shape);
  bool open = true;
  subs.add(
      "alice", [](std::string) { return true; }, [&] { return open; });
  open = false;
  subs.add(
      "bob", [](std::string) { return true; }, nullptr);
  EXPECT_EQ(subs.size(), 1u);
}

TEST(Subscriptions, TheMessageIsShapedOnceForManySubscribers) {
  int shaped = 0;
  Subscriptions subs([&](const StoredMessage& m) {
    ++shaped;
    return json{{"message_id", m.message_id}};
  });
  int got = 0;
  for (int i = 0; i < 3; ++i)
    subs.add(
        "alice",
        [&](std::string) {
          ++got;
          return true;
        },
        nullptr);
  subs.announce(to({"bob"}));
  EXPECT_EQ(shaped, 0);
  subs.announce(to({"alice", "bob"}));
  EXPECT_EQ(shaped, 1);
  EXPECT_EQ(got, 3);
}

}  // namespace
}  // namespace thrum::core::messaging
