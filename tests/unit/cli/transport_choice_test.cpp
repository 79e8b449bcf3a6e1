// cli/transport_choice: what `thrum peer add|join` make of the daemon's `peer.transports` answer.
#include "transport_choice.hpp"

#include <cstdlib>

#include <gtest/gtest.h>

namespace thrum::cli {

// transport_choice.cpp asks for the repo only in load_transports(), which these tests do not call.
core::RepoPaths require_repo(const Context&) {
  throw Error("no repo in unit tests");
}

namespace {

// What a daemon with local, uds (from a plugin, with a credential) and a disabled tailscale says.
json daemon_answer() {
  return json::parse(R"j([
    {"id": "local", "available": true, "help": "Same-host sibling repos.\nSecond line.",
     "needs_address": false, "needs_repo_path": true, "provides_listener": false,
     "loopback_only": true},
    {"id": "tailscale", "available": false, "why": "disabled by policy (/etc/thrum/t.yaml)"},
    {"id": "uds", "available": true, "help": "Unix sockets.", "needs_address": false,
     "needs_repo_path": false,
     "credential": {"name": "door key", "env": "THRUM_TEST_DOOR_KEY", "prompt": "Key: "}}
  ])j");
}

TEST(TransportChoice, DecodesTheDaemonsAnswerAndSkipsWhatIsNotATransport) {
  json list = daemon_answer();
  list.push_back(42);
  list.push_back(json{{"available", true}});                  // no id
  list.push_back(json{{"id", "odd"}, {"available", "yes"}});  // wrong type: not available
  const TransportChoices c = decode_transports(list);
  ASSERT_EQ(c.transports.size(), 4u);
  EXPECT_EQ(c.transports[0].id, "local");
  EXPECT_TRUE(c.transports[0].needs_repo_path);
  EXPECT_EQ(c.transports[1].why, "disabled by policy (/etc/thrum/t.yaml)");
  EXPECT_EQ(c.transports[2].credential.env, "THRUM_TEST_DOOR_KEY");
  EXPECT_EQ(c.transports[3].id, "odd");
  EXPECT_FALSE(c.transports[3].available);
  EXPECT_TRUE(decode_transports(json::object()).transports.empty());
}

TEST(TransportChoice, HelpListsTheAvailableTransportsThenRepairThenWhatIsNot) {
  const TransportChoices c = decode_transports(daemon_answer());
  EXPECT_EQ(type_help(c, true),
            "--type is required. Choose one:\n"
            "\n"
            "  --type local       Same-host sibling repos.\n"
            "                     Second line.\n"
            "\n"
            "  --type uds         Unix sockets.\n"
            "\n"
            "  --type repair      Re-verify an existing peer entry.\n"
            "                     Use when peers.json has drifted (e.g. after a\n"
            "                     daemon_id rotation) and you want to reconcile via\n"
            "                     stored secrets without a full re-pair. Valid only\n"
            "                     on 'peer join'.\n"
            "\n"
            "Not available here (see 'thrum plugins list'):\n"
            "  tailscale: disabled by policy (/etc/thrum/t.yaml)");
  const std::string add = type_help(c, false);
  EXPECT_EQ(add.find("  --type repair "), std::string::npos) << add;
  EXPECT_NE(add.find("--type repair is only valid on 'peer join'"), std::string::npos) << add;
}

TEST(TransportChoice, HelpWidensForLongIdsAndSaysWhenTheListIsAScan) {
  TransportChoices c = decode_transports(
      json::parse(R"([{"id": "a_very_long_id", "available": true, "help": "One.\nTwo."}])"));
  c.scanned = true;
  const std::string h = type_help(c, false);
  EXPECT_NE(h.find("  --type a_very_long_id   One.\n"
                   "                          Two.\n"),
            std::string::npos)
      << h;
  EXPECT_NE(h.find("The daemon is not running"), std::string::npos) << h;
  const std::string none = type_help(TransportChoices{}, false);
  EXPECT_NE(none.find("no transport is available"), std::string::npos) << none;
}

TEST(TransportChoice, ChoosingChecksTheIdAgainstTheDaemonsList) {
  const TransportChoices c = decode_transports(daemon_answer());
  const TransportInfo* uds = choose_transport("uds", false, c);
  ASSERT_NE(uds, nullptr);
  EXPECT_EQ(uds->id, "uds");
  EXPECT_EQ(choose_transport("repair", true, c), nullptr);

  try {
    choose_transport("", false, c);
    ADD_FAILURE() << "no error without --type";
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("--type is required. Choose one:", 0), 0u) << e.what();
  }
  try {
    choose_transport("repair", false, c);
    ADD_FAILURE() << "repair accepted on add";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("peer join --type repair"), std::string::npos);
  }
  try {
    choose_transport("carrier_pigeon", true, c);
    ADD_FAILURE() << "unknown id accepted";
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(
                  "Error: unknown --type \"carrier_pigeon\" (available: local, uds)\n\n", 0),
              0u)
        << e.what();
  }
  try {
    choose_transport("tailscale", false, c);
    ADD_FAILURE() << "disabled id accepted";
  } catch (const UsageError&) {
    ADD_FAILURE() << "a disabled transport is not a usage error";
  } catch (const Error& e) {
    EXPECT_STREQ(
        e.what(),
        "transport \"tailscale\" is not available: disabled by policy (/etc/thrum/t.yaml)");
  }
}

TEST(TransportChoice, TheCredentialComesFromTheFlagElseTheProfilesVariable) {
  const TransportChoices c = decode_transports(daemon_answer());
  const TransportInfo& uds = *choose_transport("uds", false, c);
  const TransportInfo& local = *choose_transport("local", false, c);
  ::unsetenv("THRUM_TEST_DOOR_KEY");
  json p = json::object();
  add_credential(p, uds, "");
  EXPECT_FALSE(p.contains("auth_key")) << "nothing given, nothing sent (the daemon may hold one)";
  ::setenv("THRUM_TEST_DOOR_KEY", "from-env", 1);
  add_credential(p, uds, "");
  EXPECT_EQ(p.value("auth_key", ""), "from-env");
  add_credential(p, uds, "from-flag");
  EXPECT_EQ(p.value("auth_key", ""), "from-flag");
  json q = json::object();
  add_credential(q, local, "from-flag");
  EXPECT_FALSE(q.contains("auth_key")) << "a transport without a credential gets none";
  ::unsetenv("THRUM_TEST_DOOR_KEY");
}

}  // namespace
}  // namespace thrum::cli
